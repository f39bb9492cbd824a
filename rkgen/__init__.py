"""rkgen: Runge–Kutta networks from Butcher tableaux, with exact gradients from the symplectic partner.

>>> import rkgen
>>> t = rkgen.load("rk4")
>>> t.order, t.structure, t.is_symplectic
(4, 'explicit', False)
"""

from .errors import RkgenError
from .tableau import Tableau, builtin_names, from_json, load
from .train import train

__version__ = "0.1.0"

__all__ = ["RkgenError", "Tableau", "builtin_names", "from_json", "load", "train", "__version__"]
