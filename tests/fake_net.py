"""A pure-numpy stand-in for a generated network module (docs/network-contract.md).

``make_fake_net(A, b, name)`` returns a module-like object with the contract's names, ``forward``
and ``backward``, for any tableau given by float arrays. The mathematics is rkgen's reference
network (:mod:`rkgen.reference`: the layer equations of the tableau, forward with Newton where
the stages are implicit, the stage-wise adjoint in the xi form); this module only dresses it as a
module. It lets the trainer's tests run without compiling numba kernels.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import sympy

from rkgen.reference import ACTIVATIONS, FIELDS, Network, Tape
from rkgen.tableau import Tableau


def make_fake_net(A, b, name="fake"):
    """A module-like object satisfying the network contract for the tableau (A, b) (floats, taken exactly)."""
    A = np.array(A, dtype=float)
    b = np.array(b, dtype=float)
    exact = Tableau(name, [[sympy.Rational(x) for x in row] for row in A], [sympy.Rational(x) for x in b])
    net = Network(exact)
    return SimpleNamespace(
        NAME=name,
        STAGES=net.stages,
        ORDER=None,
        STRUCTURE=net.structure,
        A=net.A,
        B=net.b,
        C=net.c,
        FIELDS=FIELDS,
        ACTIVATIONS=ACTIVATIONS,
        forward=net.forward,
        backward=net.backward,
        Tape=Tape,
    )


TABLEAUX = {
    "euler": ([[0.0]], [1.0]),
    "midpoint": ([[0.0, 0.0], [0.5, 0.0]], [0.0, 1.0]),
    "heun2": ([[0, 0], [1.0, 0]], [0.5, 0.5]),
    "heun3": ([[0, 0, 0], [1 / 3, 0, 0], [0, 2 / 3, 0]], [0.25, 0.0, 0.75]),
    "kutta3": ([[0, 0, 0], [0.5, 0, 0], [-1.0, 2.0, 0]], [1 / 6, 2 / 3, 1 / 6]),
    "rk4": (
        [[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]],
        [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    ),
    "implicit_midpoint": ([[0.5]], [1.0]),
}


def fake(name):
    """The fake network for a built-in name of TABLEAUX."""
    A, b = TABLEAUX[name]
    return make_fake_net(A, b, name)
