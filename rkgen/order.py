"""Analysis beside the chain (of a rkgen.butcher tableau): order conditions by rooted trees, exactly; B(p), C(q), D(r).

For a tree t the stage vector Φ(t) is built recursively (Φ(τ) = 1, Φ([t_1 … t_k]) = ∏ (A Φ(t_k)) componentwise)
and the condition of t is b·Φ(t) = 1/γ(t).  A·Φ is memoised per distinct subtree, and all arithmetic is exact in
the tableau's number field (:mod:`rkgen.exact`).

Besides the exact order, the *tolerant* order is reported: the order that holds when residuals up to a tolerance
count as zero, with the largest such residual — so a published method whose coefficients are 25-digit rational
approximations shows "exact order 0; order 4 to within 1.4e-26".

>>> from rkgen import load
>>> r = load("heun3").order_report
>>> r.order, r.stage_order, r.B, r.C, r.D
(3, 1, 3, 1, 0)
>>> [(c.tree.notation, c.residual) for c in r.failing]      # the order-4 conditions it misses
[('[τ³]', -1/36), ('[τ[τ]]', -1/72), ('[[τ²]]', -1/36), ('[[[τ]]]', -1/24)]
"""

from __future__ import annotations

from dataclasses import dataclass

import sympy

from .butcher import ButcherTableau
from .trees import Tree, trees_of_order

__all__ = ["Condition", "OrderReport", "ElementaryWeights", "analyse_order", "DEFAULT_MAX_ORDER"]

DEFAULT_MAX_ORDER = 12
DEFAULT_TOLERANCE = 1e-12


@dataclass(frozen=True)
class Condition:
    """The order condition of one tree: b·Φ(t) − 1/γ(t) = residual (exact, and as a float)."""

    tree: Tree
    residual: sympy.Expr
    residual_float: float

    @property
    def holds(self) -> bool:
        return self.residual == 0


@dataclass(frozen=True)
class OrderReport:
    """What :func:`analyse_order` found."""

    order: int
    order_tolerant: int
    tolerance: float
    max_residual: float
    max_order: int
    conditions: tuple[Condition, ...]
    failing: tuple[Condition, ...]
    stage_order: int
    B: int
    C: int
    D: int

    @property
    def order_is_lower_bound(self) -> bool:
        """True when every tree up to ``max_order`` holds (the order is at least that)."""
        return self.order >= self.max_order

    def conditions_of_order(self, n: int) -> list[Condition]:
        return [c for c in self.conditions if c.tree.order == n]


class ElementaryWeights:
    """Φ(t) for one tableau, exact, memoised per tree (also A·Φ(t) per subtree)."""

    def __init__(self, tableau: ButcherTableau):
        self.tableau = tableau
        self.F = tableau.number_field
        self.A, self.b, self.c = tableau.exact
        self.s = tableau.stages
        self._phi: dict[int, list] = {}
        self._aphi: dict[int, list] = {}

    def phi(self, t: Tree) -> list:
        got = self._phi.get(t.index)
        if got is None:
            F = self.F
            got = [F.one] * self.s
            from .trees import tree

            for child in t.children:
                a = self.a_phi(tree(child))
                got = [F.mul(x, y) for x, y in zip(got, a, strict=True)]
            self._phi[t.index] = got
        return got

    def a_phi(self, t: Tree) -> list:
        got = self._aphi.get(t.index)
        if got is None:
            F, phi = self.F, self.phi(t)
            got = []
            for row in self.A:
                acc = F.zero
                for a, p in zip(row, phi, strict=True):
                    if not a.is_zero():
                        acc = acc + a * p  # unreduced products; one reduction per sum
                got.append(F.reduce(acc))
            self._aphi[t.index] = got
        return got

    def weight(self, t: Tree):
        """b·Φ(t), the elementary weight (a field element)."""
        F = self.F
        acc = F.zero
        for b, p in zip(self.b, self.phi(t), strict=True):
            acc = acc + b * p
        return F.reduce(acc)

    def residual(self, t: Tree):
        """b·Φ(t) − 1/γ(t) (a field element)."""
        return self.F.sub(self.weight(t), self.F.from_rational(sympy.Rational(1, t.gamma)))

    def phi_sympy(self, t: Tree) -> list[sympy.Expr]:
        return [self.F.to_sympy(x) for x in self.phi(t)]


def analyse_order(
    tableau: ButcherTableau, max_order: int = DEFAULT_MAX_ORDER, tolerance: float = DEFAULT_TOLERANCE
) -> OrderReport:
    """Check the order conditions tree by tree, order by order, until they fail exactly and to ``tolerance``.

    >>> from rkgen import load
    >>> r = analyse_order(load("rk4"))
    >>> r.order, r.order_tolerant, r.max_residual, len(r.failing)
    (4, 4, 0.0, 9)
    """
    W = ElementaryWeights(tableau)
    F = W.F
    conditions: list[Condition] = []
    order = order_tol = 0
    exact_ok = tol_ok = True
    max_residual = 0.0
    failing: list[Condition] = []
    for n in range(1, max_order + 1):
        level = []
        for t in trees_of_order(n):
            res = W.residual(t)
            value = F.to_float(res)
            level.append(Condition(t, F.to_sympy(res) if not res.is_zero() else sympy.Integer(0), value))
        conditions.extend(level)
        level_exact = all(c.holds for c in level)
        level_tol = all(abs(c.residual_float) <= tolerance for c in level)
        if exact_ok and level_exact:
            order = n
        elif exact_ok:
            exact_ok = False
            failing = [c for c in level if not c.holds]
        if tol_ok and level_tol:
            order_tol = n
            max_residual = max([max_residual] + [abs(c.residual_float) for c in level])
        else:
            tol_ok = False
        if not exact_ok and not tol_ok:
            break
    B, C, D = simplifying_assumptions(tableau, max_order)
    return OrderReport(
        order=order,
        order_tolerant=order_tol,
        tolerance=tolerance,
        max_residual=max_residual,
        max_order=max_order,
        conditions=tuple(conditions),
        failing=tuple(failing),
        stage_order=min(B, C),
        B=B,
        C=C,
        D=D,
    )


def simplifying_assumptions(tableau: ButcherTableau, cap: int) -> tuple[int, int, int]:
    """The largest p, q, r (up to ``cap``) with B(p), C(q), D(r):

    B(p): Σ_i b_i c_i^(k−1) = 1/k, k ≤ p;   C(q): Σ_j a_ij c_j^(k−1) = c_i^k / k for all i, k ≤ q;
    D(r): Σ_i b_i c_i^(k−1) a_ij = b_j (1 − c_j^k) / k for all j, k ≤ r.
    """
    F = tableau.number_field
    A, b, c = tableau.exact
    s = tableau.stages
    powers = [[F.one] * s]  # powers[k][i] = c_i^k
    for _ in range(cap + 1):
        powers.append([F.mul(x, y) for x, y in zip(powers[-1], c, strict=True)])

    def q(k):
        return F.from_rational(sympy.Rational(1, k))

    def holds_B(k):
        total = sum((F.mul(b[i], powers[k - 1][i]) for i in range(s)), F.zero)
        return F.sub(total, q(k)).is_zero()

    def holds_C(k):
        for i in range(s):
            total = sum((F.mul(A[i][j], powers[k - 1][j]) for j in range(s)), F.zero)
            if not F.sub(total, F.mul(powers[k][i], q(k))).is_zero():
                return False
        return True

    def holds_D(k):
        for j in range(s):
            total = sum((F.mul(F.mul(b[i], powers[k - 1][i]), A[i][j]) for i in range(s)), F.zero)
            rhs = F.mul(F.mul(b[j], F.sub(F.one, powers[k][j])), q(k))
            if not F.sub(total, rhs).is_zero():
                return False
        return True

    def largest(test):
        k = 0
        while k < cap and test(k + 1):
            k += 1
        return k

    return largest(holds_B), largest(holds_C), largest(holds_D)
