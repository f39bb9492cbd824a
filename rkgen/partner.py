"""Analysis beside the chain, of a rkgen.butcher tableau: symplecticity and the partner, conditions (19) transposed.

A pair (A, b, c) / (Ã, b̃, c̃) is symplectic (Hairer–Lubich–Wanner, Thm VI.4.6) iff

    b_i = b̃_i   and   b_i ã_ij + b̃_j a_ji − b_i b̃_j = 0   for all i, j.

The seed papers print a_ij in the second condition; that is a misprint (their gradient formula uses a_ki).
Solved for the partner when every b_i ≠ 0: ã_ij = b_j − b_j a_ji / b_i.  A single method is its own partner
iff M = diag(b) A + Aᵀ diag(b) − b bᵀ = 0.

>>> from rkgen import load
>>> p = load("euler").partner
>>> p.A, p.b, p.c
(((1,),), (1,), (1,))
>>> load("lobatto_iiia3").pair_report(load("lobatto_iiib3")).symplectic
True
>>> load("heun3").partner is None
True

The partner is built through the constructor of the tableau's own class (a ButcherTableau's partner is a
ButcherTableau, a :class:`rkgen.tableau.Tableau`'s a Tableau, with its analyses), so this module needs only
:mod:`rkgen.butcher`; it never writes into a tableau.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

import sympy

from .butcher import ButcherTableau

__all__ = [
    "symplecticity_matrix",
    "symplecticity_elements",
    "partner_tableau",
    "partner_entry",
    "check_pair",
    "PairReport",
    "Violation",
    "c_matches",
]

T = TypeVar("T", bound=ButcherTableau)


def _namer(tableau: ButcherTableau):
    """Turn field elements back into sympy numbers, reusing the tableau's own expressions where they match."""
    F = tableau.number_field
    known = {}
    for x in [*tableau.b, *tableau.c, *(y for row in tableau.A for y in row)]:
        for v in (x, -x):
            known.setdefault(_key(F.element(v)), v)

    def name(el):
        if el.degree() < 1:  # a rational (or zero): its own canonical form, never a tableau expression for it
            return F.to_sympy(el)
        got = known.get(_key(el))
        if got is None:
            got = F.to_sympy(el)
            known[_key(el)] = got
        return got

    return name


def _key(el) -> tuple[str, ...]:
    return tuple(str(c) for c in el.coeffs())


def symplecticity_matrix(tableau: ButcherTableau) -> tuple[tuple[sympy.Expr, ...], ...]:
    """M = diag(b) A + Aᵀ diag(b) − b bᵀ, exactly.

    >>> from rkgen import load
    >>> symplecticity_matrix(load("heun2"))
    ((-1/4, 1/4), (1/4, -1/4))
    """
    name = _namer(tableau)
    return tuple(tuple(name(x) for x in row) for row in symplecticity_elements(tableau))


def symplecticity_elements(tableau: ButcherTableau) -> list[list]:
    """M = diag(b) A + Aᵀ diag(b) − b bᵀ as field elements of ``tableau.number_field`` (for exact decisions)."""
    F = tableau.number_field
    A, b, _ = tableau.exact
    s = tableau.stages
    return [
        [F.sub(F.add(F.mul(b[i], A[i][j]), F.mul(b[j], A[j][i])), F.mul(b[i], b[j])) for j in range(s)]
        for i in range(s)
    ]


def partner_entry(tableau: ButcherTableau, i: int, j: int):
    """ã_ij = b_j − b_j a_ji / b_i as a field element (requires b_i ≠ 0)."""
    F = tableau.number_field
    A, b, _ = tableau.exact
    return F.sub(b[j], F.div(F.mul(b[j], A[j][i]), b[i]))


def _partner_elements(tableau: ButcherTableau) -> list[list]:
    """Ã as field elements of ``tableau.number_field`` (requires every b_i ≠ 0)."""
    s = tableau.stages
    return [[partner_entry(tableau, i, j) for j in range(s)] for i in range(s)]


def partner_tableau(tableau: T) -> T | None:
    """The symplectic partner of ``tableau``, or None when a weight b_i is zero (then none exists).

    The partner is an instance of ``type(tableau)``, built with the data class's fields (subclasses of
    :class:`~rkgen.butcher.ButcherTableau` add members, not fields): the partner of a Tableau is a Tableau.

    >>> from rkgen import load
    >>> rk4 = load("rk4")
    >>> p = rk4.partner
    >>> p.A[0]
    (1/6, -2/3, 1/3, 1/6)
    >>> p.partner.A == rk4.A
    True
    """
    if tableau.zero_weights:
        return None
    F = tableau.number_field
    name = _namer(tableau)
    elements = _partner_elements(tableau)
    A = tuple(tuple(name(x) for x in row) for row in elements)
    c = tuple(name(sum(row, F.zero)) for row in elements)
    base = tableau.name[: -len("_partner")] if tableau.name.endswith("_partner") else None
    A_exact, _, _ = tableau.exact
    itself = tableau.is_consistent and all(
        F.sub(x, y).is_zero() for row, own in zip(elements, A_exact, strict=True) for x, y in zip(row, own, strict=True)
    )
    return type(tableau)(
        name=base or f"{tableau.name}_partner",
        A=tableau.A if itself else A,
        b=tableau.b,
        c=tableau.c if itself else c,
        description=f"symplectic partner of {tableau.name} (conditions (19))",
        source=f"partner of {tableau.source or tableau.name}",
        # M = 0 and c = A·1: the partner is the method itself, so is everything computed about it
        same_as=tableau if itself else None,
        # else its entries are elements of the tableau's field, known exactly already: no second conversion
        elements=None if itself else (F, (elements, tableau.exact[1], [sum(row, F.zero) for row in elements])),
    )


def c_matches(tableau: ButcherTableau) -> bool | None:
    """Whether the partner's nodes c̃ equal c (when the weights sum to 1, equivalently D(1) holds); None when there
    is no partner.

    >>> from rkgen import load
    >>> c_matches(load("rk4")), c_matches(load("euler"))
    (True, False)
    """
    if tableau.zero_weights:
        return None
    F = tableau.number_field
    c_partner = (sum(row, F.zero) for row in _partner_elements(tableau))  # c̃ = Ã·1, the partner's nodes
    return all(F.sub(x, y).is_zero() for x, y in zip(tableau.exact[2], c_partner, strict=True))


@dataclass(frozen=True)
class Violation:
    """One violated condition of (19): ``kind`` is 'b' (b_i ≠ b̃_i) or 'a' (the (i, j) condition)."""

    kind: str
    i: int
    j: int | None
    value: sympy.Expr

    def describe(self) -> str:
        if self.kind == "b":
            return f"b[{self.i}] - b~[{self.i}] = {self.value}"
        i, j = self.i, self.j
        return f"b[{i}]*a~[{i}][{j}] + b~[{j}]*a[{j}][{i}] - b[{i}]*b~[{j}] = {self.value}"

    def to_dict(self) -> dict:
        return {"kind": self.kind, "i": self.i, "j": self.j, "value": str(self.value)}


@dataclass(frozen=True)
class PairReport:
    """Conditions (19) for a pair: symplectic or the list of violations; c̃ = c or not."""

    symplectic: bool
    violations: tuple[Violation, ...]
    c_matches: bool


def check_pair(tableau: ButcherTableau, other: ButcherTableau) -> PairReport:
    """Check conditions (19) for (tableau, other) exactly; list every violated condition with its value.

    >>> from rkgen import load
    >>> r = check_pair(load("rk4"), load("rk4"))
    >>> r.symplectic, len(r.violations), r.violations[0].describe()
    (False, 16, 'b[0]*a~[0][0] + b~[0]*a[0][0] - b[0]*b~[0] = -1/36')
    """
    from .errors import RkgenError
    from .exact import NumberField

    if other.stages != tableau.stages:
        raise RkgenError(
            f"{other.source or other.name}: the partner has {other.stages} stages, the tableau {tableau.stages}"
        )
    F = tableau.number_field
    try:  # usually the other tableau lies in the same field (a partner always does)
        At = [[F.element(x) for x in row] for row in other.A]
        bt = [F.element(x) for x in other.b]
        ct = [F.element(x) for x in other.c]
    except ValueError:
        entries = [*tableau.b, *tableau.c, *(y for row in tableau.A for y in row)]
        entries += [*other.b, *other.c, *(y for row in other.A for y in row)]
        try:
            F = NumberField.for_numbers(entries)
        except RkgenError as exc:
            raise RkgenError(f"{other.source or other.name}: {exc} (with the tableau's)") from None
        At = [[F.element(x) for x in row] for row in other.A]
        bt = [F.element(x) for x in other.b]
        ct = [F.element(x) for x in other.c]
    s = tableau.stages
    A = [[F.element(x) for x in row] for row in tableau.A]
    b = [F.element(x) for x in tableau.b]
    violations = []
    for i in range(s):
        d = F.sub(b[i], bt[i])
        if not d.is_zero():
            violations.append(Violation("b", i, None, F.to_sympy(d)))
    for i in range(s):
        for j in range(s):
            v = F.sub(F.add(F.mul(b[i], At[i][j]), F.mul(bt[j], A[j][i])), F.mul(b[i], bt[j]))
            if not v.is_zero():
                violations.append(Violation("a", i, j, F.to_sympy(v)))
    same_c = all(F.sub(F.element(x), y).is_zero() for x, y in zip(tableau.c, ct, strict=True))
    return PairReport(not violations, tuple(violations), same_c)
