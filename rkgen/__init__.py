"""rkgen: Runge–Kutta networks from Butcher tableaux, with exact gradients from the symplectic partner.

>>> import rkgen
>>> t = rkgen.load("rk4")
>>> t.order, t.structure, t.is_symplectic
(4, 'explicit', False)
"""

from .errors import RkgenError
from .tableau import Tableau, builtin_names, from_json, load

__version__ = "0.1.0"

__all__ = [
    "RkgenError",
    "Tableau",
    "builtin_names",
    "from_json",
    "load",
    "load_run",
    "train",
    "__version__",
]


def __getattr__(name):
    # rkgen.train is the training subpackage, imported on first use (it pulls in matplotlib); the module
    # itself is callable: rkgen.train(...) is rkgen.train.train(...). rkgen.load_run(RUN) reloads a
    # trained run for prediction (rkgen.train.predict), imported on first use as well.
    if name == "train":
        import importlib

        return importlib.import_module(".train", __name__)
    if name == "load_run":
        from .train.predict import load_run

        return load_run
    raise AttributeError(f"module 'rkgen' has no attribute {name!r}")
