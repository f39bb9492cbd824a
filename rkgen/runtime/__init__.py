"""The runtime of generated modules: ordinary Python, linted and tested here, inlined into each module at render.

Code that is the same for every tableau lives in these modules; the printer (:mod:`rkgen.codegen.printer`) writes
only what a tableau changes, as the functions that :mod:`rkgen.runtime._tableau` describes.  The renderer
(:mod:`rkgen.codegen.renderer`) copies the modules a structure needs into the generated file, in the order of
:func:`modules_for`, without their docstrings and imports, so a generated module still imports only numpy, numba
(with its llvmlite) and the standard library.  Importing this package imports neither numba nor numpy.
"""

from __future__ import annotations

__all__ = ["modules_for", "COMMON", "IMPLICIT", "BY_STRUCTURE", "TAIL", "XLA"]

#: every module needs these, in this order (a module may use names of the modules before it and after it:
#: numba resolves globals when a kernel is compiled, but decorators and constants must come first)
COMMON = ("fastmath", "activations", "blas", "products")
IMPLICIT = ("implicit",)
BY_STRUCTURE = {"explicit": (), "diagonally implicit": ("dirk",), "fully implicit": ("firk",)}
TAIL = ("driver", "layout", "tape", "params", "api")
#: explicit tableaux also get XLA FFI handlers (rkgen.jax calls them; an implicit tableau's stage solves can fail,
#: which a handler could not report as a Python error, so those run through host callbacks)
XLA = ("xla",)


def modules_for(structure: str) -> tuple[str, ...]:
    """The runtime modules a generated module of this structure contains, in file order.

    >>> modules_for("explicit")
    ('fastmath', 'activations', 'blas', 'products', 'driver', 'layout', 'tape', 'params', 'api', 'xla')
    >>> modules_for("fully implicit")[4:6]
    ('implicit', 'firk')
    >>> modules_for("fully implicit")[-1]
    'api'
    """
    extra = BY_STRUCTURE[structure]
    return COMMON + (IMPLICIT if extra else ()) + extra + TAIL + (XLA if structure == "explicit" else ())
