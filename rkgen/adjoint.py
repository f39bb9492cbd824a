"""The stage equations of one network layer, forward and backward, as exact data.

One layer with step h and parameters shared by the s stages::

    Y_i = y + h Σ_l a_il F_l,   F_i = f(Y_i),   y⁺ = y + h Σ_i b_i F_i.

Its exact discrete adjoint in the ξ form (valid for every tableau; it never divides by b_i or h).  With
p = ∂J/∂y⁺ and J_k = ∂f/∂y at Y_k, write ξ_i = h η_i (the adjoint of F_i) and μ_k = J_kᵀ ξ_k::

    η_i = b_i p + Σ_k a_ki μ_k            (explicit: k > i only; DIRK: k ≥ i; fully implicit: all k)
    ∂J/∂y  = p + Σ_i μ_i
    ∂J/∂h  = Σ_i η_i · F_i
    ∂J/∂θ  = Σ_i (∂f/∂θ at Y_i)ᵀ ξ_i      (θ = K, β)

Where every b_i ≠ 0, P_i = η_i / b_i turns this into the partner tableau applied to the adjoint equation
(000 eq. 24, 001 Prop. 1)::

    P_i = p + h Σ_k (a_ki b_k / b_i) J_kᵀ P_k = p + h Σ_k (b_k − ã_ik) J_kᵀ P_k,
    ∂J/∂y = p + h Σ_i b_i J_iᵀ P_i.

This module holds these equations for a given tableau as data (exact sympy coefficients with their names).  The
code printer, the derivation document and the tests all read them from here.

>>> from rkgen import load
>>> eq = layer_equations(load("rk4"))
>>> [str(s) for s in eq.forward]
['Y_1 = y', 'Y_2 = y + h*(a_2_1*F_1)', 'Y_3 = y + h*(a_3_2*F_2)', 'Y_4 = y + h*(a_4_3*F_3)']
>>> [str(s) for s in eq.backward]
['eta_4 = b_4*p', 'eta_3 = b_3*p + a_4_3*mu_4', 'eta_2 = b_2*p + a_3_2*mu_3', 'eta_1 = b_1*p + a_2_1*mu_2']
>>> eq.coefficients["a_2_1"]
1/2
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import sympy

if TYPE_CHECKING:
    from .tableau import Tableau

__all__ = ["Term", "ForwardStage", "BackwardStage", "LayerEquations", "layer_equations", "coefficient_name"]


def coefficient_name(letter: str, *indices: int) -> str:
    """The name of a tableau coefficient with 1-based indices, used in code and documents alike.

    >>> coefficient_name("a", 2, 1), coefficient_name("b", 3)
    ('a_2_1', 'b_3')
    """
    return letter + "".join(f"_{k}" for k in indices)


@dataclass(frozen=True)
class Term:
    """``coefficient × vector[index]``: an exact coefficient with its name, and a 0-based stage index."""

    name: str
    value: sympy.Expr
    index: int


def _sum(terms: tuple[Term, ...], vector: str) -> str:
    return " + ".join(f"{t.name}*{vector}_{t.index + 1}" for t in terms)


@dataclass(frozen=True)
class ForwardStage:
    """Y_i = y + h Σ_l a_il F_l over the nonzero a_il.  ``implicit`` when some l ≥ i occurs."""

    i: int
    terms: tuple[Term, ...]

    @property
    def implicit(self) -> bool:
        return any(t.index >= self.i for t in self.terms)

    @property
    def diagonal(self) -> Term | None:
        return next((t for t in self.terms if t.index == self.i), None)

    def __str__(self) -> str:
        rhs = "y" + (f" + h*({_sum(self.terms, 'F')})" if self.terms else "")
        return f"Y_{self.i + 1} = {rhs}"


@dataclass(frozen=True)
class BackwardStage:
    """η_i = b_i p + Σ_k a_ki μ_k over the nonzero entries (``weight`` is None when b_i = 0)."""

    i: int
    weight: Term | None
    terms: tuple[Term, ...]

    @property
    def diagonal(self) -> Term | None:
        return next((t for t in self.terms if t.index == self.i), None)

    @property
    def explicit_terms(self) -> tuple[Term, ...]:
        return tuple(t for t in self.terms if t.index != self.i)

    def __str__(self) -> str:
        parts = ([f"{self.weight.name}*p"] if self.weight else []) + (
            [_sum(self.terms, "mu")] if self.terms else []
        )
        return f"eta_{self.i + 1} = {' + '.join(parts) if parts else '0'}"


@dataclass(frozen=True)
class LayerEquations:
    """Forward and backward stage equations of one layer for one tableau (see the module docstring)."""

    tableau: Tableau
    forward: tuple[ForwardStage, ...]
    update: tuple[Term, ...]
    backward: tuple[BackwardStage, ...]
    coefficients: dict[str, sympy.Expr]

    @property
    def structure(self) -> str:
        return self.tableau.structure

    @property
    def stages(self) -> int:
        return self.tableau.stages

    @property
    def backward_order(self) -> tuple[int, ...]:
        """0-based stage indices in the order the backward pass computes them."""
        return tuple(st.i for st in self.backward)

    @cached_property
    def p_form(self) -> tuple[tuple[Term, ...], ...] | None:
        """P_i = p + h Σ_k w_ik J_kᵀ P_k with w_ik = a_ki b_k / b_i = b_k − ã_ik; None when some b_i = 0.

        Term names are ``w_i_k`` (1-based).
        """
        t = self.tableau
        if t.zero_weights:
            return None
        F = t.number_field
        A, b, _ = t.exact
        from .partner import _namer

        name = _namer(t)
        rows = []
        for i in range(t.stages):
            row = []
            for k in range(t.stages):
                w = F.div(F.mul(A[k][i], b[k]), b[i])
                if not w.is_zero():
                    row.append(Term(coefficient_name("w", i + 1, k + 1), name(w), k))
            rows.append(tuple(row))
        return tuple(rows)

    def sympy_forward(self) -> list[sympy.Eq]:
        """The forward stage equations as sympy equations (for documents)."""
        y, h = sympy.symbols("y h", commutative=False)
        out = []
        for st in self.forward:
            F = [sympy.Symbol(f"F_{t.index + 1}", commutative=False) for t in st.terms]
            rhs = y + h * sympy.Add(*[t.value * f for t, f in zip(st.terms, F, strict=True)])
            out.append(sympy.Eq(sympy.Symbol(f"Y_{st.i + 1}", commutative=False), rhs))
        return out


def layer_equations(tableau: Tableau) -> LayerEquations:
    """The forward and backward stage equations of ``tableau`` (exact coefficients, zeros dropped)."""
    s = tableau.stages
    nz = tableau.nonzero
    A, b, c = tableau.A, tableau.b, tableau.c
    coefficients: dict[str, sympy.Expr] = {}

    def a_term(i: int, j: int, index: int) -> Term:
        name = coefficient_name("a", i + 1, j + 1)
        coefficients[name] = A[i][j]
        return Term(name, A[i][j], index)

    forward = tuple(
        ForwardStage(i, tuple(a_term(i, l, l) for l in range(s) if nz[i][l])) for i in range(s)
    )
    zero_b = set(tableau.zero_weights)
    update = []
    weights = []
    for i in range(s):
        if i in zero_b:
            weights.append(None)
            continue
        name = coefficient_name("b", i + 1)
        coefficients[name] = b[i]
        weights.append(Term(name, b[i], i))
        update.append(weights[-1])
    for i in range(s):
        coefficients[coefficient_name("c", i + 1)] = c[i]
    order = range(s - 1, -1, -1) if tableau.structure != "fully implicit" else range(s)
    backward = tuple(
        BackwardStage(i, weights[i], tuple(a_term(k, i, k) for k in range(s) if nz[k][i])) for i in order
    )
    return LayerEquations(tableau, forward, tuple(update), backward, dict(sorted(coefficients.items())))
