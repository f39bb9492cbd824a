"""The stage equations of one network layer, forward and backward, as exact data: the chain's one source of truth.

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

Implicit tableaux add linear systems over coupled stages, also as data (:class:`StageSystem`): the Newton matrix of
the forward stages, I − h (A ⊗ I) blockdiag(J_l), and the adjoint system I − h (Aᵀ ⊗ I) blockdiag(J_kᵀ), stage by
stage for a diagonally implicit tableau (one d × d block each) and coupled for a fully implicit one (s × s blocks).

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
>>> [str(m) for m in layer_equations(load("midpoint")).newton]
['(I - h*a_1_1*J_1) dY_1 = R_1']
>>> [str(m) for m in layer_equations(load("sdirk2")).adjoint]
['(I - h*a_2_2*J_2^T) eta_2 = b_2*p', '(I - h*a_1_1*J_1^T) eta_1 = b_1*p + a_2_1*mu_2']
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING

import sympy

if TYPE_CHECKING:
    from .tableau import Tableau

__all__ = [
    "PARAMS",
    "ParameterLayout",
    "parameter_layout",
    "Term",
    "ForwardStage",
    "BackwardStage",
    "Block",
    "StageSystem",
    "LayerEquations",
    "layer_equations",
    "coefficient_name",
]


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
        parts = ([f"{self.weight.name}*p"] if self.weight else []) + ([_sum(self.terms, "mu")] if self.terms else [])
        return f"eta_{self.i + 1} = {' + '.join(parts) if parts else '0'}"


@dataclass(frozen=True)
class Block:
    """Block (i, k) of a stage system: δ_ik I − h·coefficient·J, with J = J_k (Newton) or J_kᵀ (adjoint).

    ``term`` is None where the coefficient is zero (the block is then δ_ik I)."""

    i: int
    k: int
    term: Term | None


@dataclass(frozen=True)
class StageSystem:
    """A linear system over the coupled stages ``stages`` (0-based), one d-vector unknown per stage.

    Newton (``transposed`` False): (I − h (A ⊗ I) blockdiag(J_l)) ΔY = R, with the residuals R_i = y + h Σ_l a_il F_l
    − Y_i of the forward stages.  Adjoint (``transposed`` True): (I − h (Aᵀ ⊗ I) blockdiag(J_kᵀ)) η = r, where r_i is
    the explicit part of the backward stage i, b_i p + Σ a_ki μ_k over the stages solved before.  ``blocks`` run
    row by row over stages × stages."""

    stages: tuple[int, ...]
    blocks: tuple[Block, ...]
    transposed: bool
    rhs: tuple[BackwardStage, ...] = ()

    def block(self, i: int, k: int) -> Block:
        return next(b for b in self.blocks if b.i == i and b.k == k)

    def __str__(self) -> str:
        J = "J_{}^T" if self.transposed else "J_{}"
        if len(self.stages) == 1:
            (i,) = self.stages
            t = self.block(i, i).term
            matrix = f"(I - h*{t.name}*{J.format(i + 1)})" if t else "I"
            if not self.transposed:
                return f"{matrix} dY_{i + 1} = R_{i + 1}"
            (st,) = self.rhs
            return f"{matrix} eta_{i + 1} = {str(st).split(' = ')[1]}"
        unknown = "eta" if self.transposed else "dY"
        return f"(I - h (A{'^T' if self.transposed else ''} kron I) blockdiag({J.format('k')})) {unknown} = " + (
            "b kron p" if self.transposed else "R"
        )


@dataclass(frozen=True)
class LayerEquations:
    """Forward and backward stage equations of one layer for one tableau (see the module docstring)."""

    tableau: Tableau
    forward: tuple[ForwardStage, ...]
    update: tuple[Term, ...]
    backward: tuple[BackwardStage, ...]
    coefficients: dict[str, sympy.Expr]
    newton: tuple[StageSystem, ...] = ()
    adjoint: tuple[StageSystem, ...] = ()

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


PARAMS = ("shared", "stage", "continuous")


@dataclass(frozen=True)
class ParameterLayout:
    """Which parameters stage i of layer j uses, and where the stage's gradient goes: one layout as exact data.

    Every layout runs the same stages and the same adjoint; the stage-wise gradient (000 Prop. 3.1, in ξ form, so
    that it holds for b_i = 0 too) is ``g_i = h_j (∂f/∂u at Y_i, u_i)ᵀ η_i`` for every stage, and the layout
    decides only which parameters u_i is and how the g_i add up:

    - ``shared``: u_i = u_j for every stage (000 Prop. 3.2); ∂J/∂u_j = Σ_i g_i.
    - ``stage``: u_i = u_(j,i), one set per stage; ∂J/∂u_(j,i) = g_i.
    - ``continuous``: nodal values u_k at fixed times τ_k, linear in between; u_i = u(t_j + c_i h_j). On the
      segment [τ_k, τ_(k+1)) that holds the stage time, u_i = (1 − θ_i) u_k + θ_i u_(k+1) with
      θ_i = (t_j + c_i h_j − τ_k)/(τ_(k+1) − τ_k); g_i goes to u_k with weight 1 − θ_i and to u_(k+1) with θ_i, and
      ∂J/∂h_l gains u'(t_ji)·g_i times ∂t_ji/∂h_l = 1 (l < j), c_i (l = j). On the grid of the layer boundaries
      (τ_k = t_k, k = j) θ_i = c_i: the stage nodes of the tableau are where the parameters are read.

    ``weights[i]`` = (1 − c_i, c_i) exactly: the interpolation weights on the layer-boundary grid.

    >>> from rkgen import load
    >>> lay = parameter_layout(load("rk4"), "continuous")
    >>> lay.weights
    ((1, 0), (1/2, 1/2), (1/2, 1/2), (0, 1))
    >>> [str(e) for e in lay.stage_parameters()][:2]
    ['Eq(u_1, u_j)', 'Eq(u_2, u_j/2 + u_j+1/2)']
    """

    name: str
    nodes: tuple[sympy.Expr, ...]

    @property
    def stages(self) -> int:
        return len(self.nodes)

    @property
    def weights(self) -> tuple[tuple[sympy.Expr, sympy.Expr], ...]:
        return tuple((sympy.expand(1 - c), c) for c in self.nodes)

    def stage_parameters(self) -> list[sympy.Eq]:
        """u_i in terms of the layer's parameters (continuous: on the grid of the layer boundaries)."""
        u = [sympy.Symbol(f"u_{i + 1}") for i in range(self.stages)]
        if self.name == "shared":
            return [sympy.Eq(ui, sympy.Symbol("u_j")) for ui in u]
        if self.name == "stage":
            return [sympy.Eq(ui, sympy.Symbol(f"u_j,{i + 1}")) for i, ui in enumerate(u)]
        left, right = sympy.Symbol("u_j"), sympy.Symbol("u_j+1")
        return [sympy.Eq(ui, wl * left + wr * right) for ui, (wl, wr) in zip(u, self.weights, strict=True)]

    def gradients(self) -> list[sympy.Eq]:
        """Where the stage gradients g_i go (continuous: on the grid of the layer boundaries; the step term aside)."""
        g = [sympy.Symbol(f"g_{i + 1}") for i in range(self.stages)]
        if self.name == "shared":
            return [sympy.Eq(sympy.Symbol("dJ/du_j"), sympy.Add(*g))]
        if self.name == "stage":
            return [sympy.Eq(sympy.Symbol(f"dJ/du_j,{i + 1}"), gi) for i, gi in enumerate(g)]
        left = sympy.Add(*[wl * gi for (wl, _), gi in zip(self.weights, g, strict=True)])
        right = sympy.Add(*[wr * gi for (_, wr), gi in zip(self.weights, g, strict=True)])
        return [
            sympy.Eq(sympy.Symbol("dJ/du_j (from layer j)"), left),
            sympy.Eq(sympy.Symbol("dJ/du_j+1 (from layer j)"), right),
        ]


def parameter_layout(tableau: Tableau, name: str) -> ParameterLayout:
    """The parameter layout ``name`` (one of :data:`PARAMS`) of ``tableau``'s layers."""
    if name not in PARAMS:
        raise ValueError(f"unknown parameter layout {name!r}; choose one of {', '.join(PARAMS)}")
    return ParameterLayout(name, tuple(tableau.c))


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

    forward = tuple(ForwardStage(i, tuple(a_term(i, l, l) for l in range(s) if nz[i][l])) for i in range(s))
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
    backward = tuple(BackwardStage(i, weights[i], tuple(a_term(k, i, k) for k in range(s) if nz[k][i])) for i in order)
    newton, adjoint = _stage_systems(tableau.structure, forward, backward)
    return LayerEquations(
        tableau, forward, tuple(update), backward, dict(sorted(coefficients.items())), newton, adjoint
    )


def _stage_systems(structure: str, forward, backward) -> tuple[tuple[StageSystem, ...], tuple[StageSystem, ...]]:
    """The Newton and adjoint systems: none (explicit), one per stage with a_ii ≠ 0 (DIRK), one coupled (FIRK)."""
    if structure == "explicit":
        return (), ()
    if structure == "diagonally implicit":
        newton = tuple(StageSystem((st.i,), (Block(st.i, st.i, st.diagonal),), False) for st in forward if st.diagonal)
        adjoint = tuple(
            StageSystem(
                (st.i,), (Block(st.i, st.i, st.diagonal),), True, (BackwardStage(st.i, st.weight, st.explicit_terms),)
            )
            for st in backward
            if st.diagonal
        )
        return newton, adjoint
    stages = tuple(range(len(forward)))
    by_row = {st.i: {t.index: t for t in st.terms} for st in forward}  # a_il, l = column
    by_col = {st.i: {t.index: t for t in st.terms} for st in backward}  # a_ki of backward stage i, k = column
    newton = StageSystem(tuple(stages), tuple(Block(i, k, by_row[i].get(k)) for i in stages for k in stages), False)
    rhs = tuple(BackwardStage(i, next(st.weight for st in backward if st.i == i), ()) for i in stages)
    adjoint = StageSystem(stages, tuple(Block(i, k, by_col[i].get(k)) for i in stages for k in stages), True, rhs)
    return (newton,), (adjoint,)
