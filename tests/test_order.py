"""Order conditions, stage order, simplifying assumptions and the tolerant order, against the literature.

Orders: Hairer-Norsett-Wanner I (explicit methods), Hairer-Wanner II Sec. IV.5 (collocation and Lobatto
methods: Gauss 2s, Radau IIA 2s-1, Lobatto IIIA/B/C 2s-2), Dormand-Prince (5). Simplifying assumptions:
Hairer-Wanner II Table IV.5.13 (Gauss B(2s) C(s) D(s); Radau IIA B(2s-1) C(s) D(s-1); Lobatto IIIA
B(2s-2) C(s) D(s-2); IIIB B(2s-2) C(s-2) D(s); IIIC B(2s-2) C(s-1) D(s-1)).
"""

from __future__ import annotations

import functools
import json
import math
import re
from fractions import Fraction
from math import factorial

import pytest
import sympy

from rkgen import from_json, load
from rkgen.order import analyse_order, simplifying_assumptions
from rkgen.report import check_data, format_report
from rkgen.trees import tree, trees_of_order, trees_up_to

R = sympy.Rational


@functools.cache
def builtin(name: str):
    """A built-in, loaded once per test module (tableaux are immutable; their analysis is cached on them)."""
    return load(name)


ORDERS = {
    "euler": 1,
    "backward_euler": 1,
    "midpoint": 2,  # = Gauss s = 1
    "trapezoid": 2,
    "heun2": 2,
    "ralston2": 2,
    "kutta3": 3,
    "heun3": 3,
    "ssprk3": 3,
    "rk4": 4,
    "rk38": 4,
    "gauss2": 4,
    "gauss3": 6,
    "gauss4": 8,
    "gauss5": 10,
    "radau_iia2": 3,
    "radau_iia3": 5,
    "lobatto_iiia2": 2,
    "lobatto_iiia3": 4,
    "lobatto_iiib2": 2,
    "lobatto_iiib3": 4,
    "lobatto_iiic2": 2,
    "lobatto_iiic3": 4,
    "sdirk2": 2,
    "dopri5": 5,
}

# (B, C, D) exactly: the largest p, q, r for which they hold
SIMPLIFYING = {
    "midpoint": (2, 1, 1),  # Gauss s = 1
    "gauss2": (4, 2, 2),
    "gauss3": (6, 3, 3),
    "gauss4": (8, 4, 4),
    "gauss5": (10, 5, 5),
    "backward_euler": (1, 1, 0),  # Radau IIA s = 1
    "radau_iia2": (3, 2, 1),
    "radau_iia3": (5, 3, 2),
    "lobatto_iiia2": (2, 2, 0),
    "lobatto_iiia3": (4, 3, 1),
    "lobatto_iiib2": (2, 0, 2),
    "lobatto_iiib3": (4, 1, 3),
    "lobatto_iiic2": (2, 1, 1),
    "lobatto_iiic3": (4, 2, 2),
}

STAGE_ORDER = {
    "midpoint": 1, "gauss2": 2, "gauss3": 3, "gauss4": 4, "gauss5": 5,
    "backward_euler": 1, "radau_iia2": 2, "radau_iia3": 3,
    "lobatto_iiia2": 2, "lobatto_iiia3": 3, "trapezoid": 2,
    "lobatto_iiib2": 0, "lobatto_iiib3": 1,
    "lobatto_iiic2": 1, "lobatto_iiic3": 2,
    "sdirk2": 1,
    # explicit methods have stage order 1 (C(2) needs a_21 c_1 = c_2^2 / 2 with c_1 = 0, c_2 != 0)
    "euler": 1, "heun2": 1, "ralston2": 1, "kutta3": 1, "heun3": 1, "ssprk3": 1, "rk4": 1, "rk38": 1, "dopri5": 1,
}  # fmt: skip


def test_every_builtin_has_literature_values():
    assert set(ORDERS) == set(STAGE_ORDER) == set(json_name for json_name in ORDERS)
    from rkgen import builtin_names

    assert set(ORDERS) == set(builtin_names())


@pytest.mark.parametrize("name", sorted(ORDERS))
def test_order_of_builtins(name):
    r = builtin(name).order_report
    assert r.order == ORDERS[name]
    assert r.order_tolerant == ORDERS[name]
    assert r.max_residual == 0.0
    assert not r.order_is_lower_bound
    # the failing conditions are those of the next order, each nonzero, exactly
    assert r.failing and all(c.tree.order == ORDERS[name] + 1 and not c.holds for c in r.failing)
    for n in range(1, ORDERS[name] + 1):
        assert all(c.holds and c.residual == 0 and c.residual_float == 0.0 for c in r.conditions_of_order(n))


def test_gauss_order_2s():
    for s, name in enumerate(["midpoint", "gauss2", "gauss3", "gauss4", "gauss5"], start=1):
        assert builtin(name).order == 2 * s


def test_lobatto_order_2s_minus_2():
    for family in ("iiia", "iiib", "iiic"):
        for s in (2, 3):
            assert builtin(f"lobatto_{family}{s}").order == 2 * s - 2


@pytest.mark.parametrize("name", sorted(SIMPLIFYING))
def test_simplifying_assumptions(name):
    r = builtin(name).order_report
    assert (r.B, r.C, r.D) == SIMPLIFYING[name]


@pytest.mark.parametrize("name", sorted(STAGE_ORDER))
def test_stage_order(name):
    assert builtin(name).order_report.stage_order == STAGE_ORDER[name]


def test_simplifying_assumptions_of_explicit_methods():
    assert builtin("rk4").order_report.B == 4
    assert builtin("kutta3").order_report.B == 4  # Simpson's rule: sum b c^3 = 1/4 as well
    assert builtin("ralston2").order_report.B == 3
    assert builtin("heun3").order_report.D == 0  # b_2 = 0 but sum_i b_i a_i2 = 2/3 b_3 != 0


def test_heun3_failing_conditions():
    r = builtin("heun3").order_report
    got = [(c.tree.notation, c.residual, c.tree.gamma) for c in r.failing]
    # by hand: c = (0, 1/3, 2/3), b = (1/4, 0, 3/4), Ac = (0, 0, 2/9), Ac^2 = (0, 0, 2/27), A^2 c = 0
    assert got == [
        ("[τ³]", R(3, 4) * R(8, 27) - R(1, 4), 4),  # -1/36
        ("[τ[τ]]", R(3, 4) * R(2, 3) * R(2, 9) - R(1, 8), 8),  # -1/72
        ("[[τ²]]", R(3, 4) * R(2, 27) - R(1, 12), 12),  # -1/36
        ("[[[τ]]]", R(0) - R(1, 24), 24),
    ]
    assert [c.residual_float for c in r.failing] == [-1 / 36, -1 / 72, -1 / 36, -1 / 24]


def test_rk4_order_five_residuals():
    r = builtin("rk4").order_report
    by_tree = {c.tree.notation: c.residual for c in r.failing}
    assert len(by_tree) == 9
    assert by_tree["[τ⁴]"] == 2 * R(1, 3) * R(1, 16) + R(1, 6) - R(1, 5)  # 1/120
    assert by_tree["[[[[τ]]]]"] == -R(1, 120)  # A^3 c = 0 for four explicit stages


# -- an independent check of the elementary weights: plain fractions, explicit recursion ---------------


def _phi(A, t):
    """Φ(t) by the definition, with Fractions (independent of rkgen.order)."""
    s = len(A)
    out = [Fraction(1)] * s
    for child in t.children:
        p = _phi(A, tree(child))
        ap = [sum(A[i][j] * p[j] for j in range(s)) for i in range(s)]
        out = [x * y for x, y in zip(out, ap, strict=True)]
    return out


@pytest.mark.parametrize("name", ["rk4", "rk38", "kutta3", "ssprk3", "dopri5", "lobatto_iiic3", "radau_iia2"])
def test_residuals_match_a_direct_computation(name):
    t = builtin(name)
    A = [[Fraction(str(x)) for x in row] for row in t.A]
    b = [Fraction(str(x)) for x in t.b]
    r = analyse_order(t, max_order=6)
    for cond in r.conditions:
        phi = _phi(A, cond.tree)
        residual = sum(bi * p for bi, p in zip(b, phi, strict=True)) - Fraction(1, cond.tree.gamma)
        assert cond.residual == R(residual.numerator, residual.denominator), cond.tree.notation
        assert cond.residual_float == float(residual)


# -- trees -----------------------------------------------------------------------------------------------


def test_tree_counts():
    # OEIS A000081
    assert [len(trees_of_order(n)) for n in range(1, 13)] == [1, 1, 2, 4, 9, 20, 48, 115, 286, 719, 1842, 4766]
    assert trees_of_order(0) == []
    assert len(trees_up_to(5)) == 17


@pytest.mark.parametrize("n", range(1, 10))
def test_tree_densities_and_symmetries(n):
    ts = trees_of_order(n)
    # n!/(σγ) counts monotone labellings: they sum to (n-1)!;  n!/σ counts labellings: n^(n-1) labelled rooted trees
    assert sum(Fraction(factorial(n), t.sigma * t.gamma) for t in ts) == factorial(n - 1)
    assert sum(Fraction(factorial(n), t.sigma) for t in ts) == n ** (n - 1)
    assert len({t.notation for t in ts}) == len(ts)
    assert all(t.order == n for t in ts)


def test_tree_notation():
    assert [t.notation for t in trees_of_order(3)] == ["[τ²]", "[[τ]]"]
    bushy = trees_of_order(4)[0]
    assert (bushy.notation, bushy.gamma, bushy.sigma, bushy.latex) == ("[τ³]", 4, 6, r"[\tau^3]")
    tall = trees_of_order(4)[-1]
    assert (tall.notation, tall.gamma, tall.sigma) == ("[[[τ]]]", 24, 1)


# -- options ---------------------------------------------------------------------------------------------


def test_max_order_makes_a_lower_bound():
    r = analyse_order(builtin("gauss5"), max_order=4)
    assert r.order == 4 and r.order_is_lower_bound and r.failing == ()
    r = analyse_order(builtin("rk4"), max_order=4)
    assert r.order == 4 and r.order_is_lower_bound
    r = analyse_order(builtin("rk4"), max_order=5)
    assert r.order == 4 and not r.order_is_lower_bound


# -- the cap of the simplifying assumptions ----------------------------------------------------------
#
# B(p), C(q), D(r) are reported up to the cap (the report's max_order, `rkgen check --max-order`), never
# beyond it. Euler's C(q) holds for every q (A = 0, c = 0), so its C is the cap itself; stage order
# min(B, C) would hide a C one too large.

CAPS = (1, 2, 3, 5, 12)


def _largest_fractions(A, b, c, limit):
    """(B, C, D) up to ``limit`` for a rational tableau, with plain fractions (independent of rkgen.order)."""
    s = len(b)

    def B(k):
        return sum(b[i] * c[i] ** (k - 1) for i in range(s)) == Fraction(1, k)

    def C(k):
        return all(sum(A[i][j] * c[j] ** (k - 1) for j in range(s)) == c[i] ** k / k for i in range(s))

    def D(k):
        return all(
            sum(b[i] * c[i] ** (k - 1) * A[i][j] for i in range(s)) == b[j] * (1 - c[j] ** k) / k for j in range(s)
        )

    def largest(test):
        k = 0
        while k < limit and test(k + 1):
            k += 1
        return k

    return largest(B), largest(C), largest(D)


def _rational(name):
    t = builtin(name)
    if not all(x.is_Rational for x in [*t.b, *t.c, *(y for row in t.A for y in row)]):
        return None
    A = [[Fraction(str(x)) for x in row] for row in t.A]
    return A, [Fraction(str(x)) for x in t.b], [Fraction(str(x)) for x in t.c]


@pytest.mark.parametrize("cap", CAPS)
def test_euler_simplifying_assumptions_stop_at_the_cap(cap):
    assert simplifying_assumptions(builtin("euler"), cap) == (1, cap, 0)
    r = analyse_order(builtin("euler"), max_order=cap)
    assert (r.B, r.C, r.D, r.stage_order) == (1, cap, 0, 1)


def test_euler_report_at_the_default_cap():
    r = builtin("euler").order_report
    assert r.max_order == 12 and (r.B, r.C, r.D) == (1, 12, 0)


@pytest.mark.parametrize("cap", CAPS)
@pytest.mark.parametrize("name", ["gauss2", "gauss3", "gauss5", "radau_iia3", "lobatto_iiib3", "midpoint"])
def test_simplifying_assumptions_of_implicit_methods_at_a_cap(name, cap):
    want = tuple(min(v, cap) for v in SIMPLIFYING[name])
    assert simplifying_assumptions(builtin(name), cap) == want


@pytest.mark.parametrize("cap", CAPS)
def test_simplifying_assumptions_match_a_direct_computation(cap):
    checked = 0
    for name in sorted(ORDERS):
        exact = _rational(name)
        if exact is None:
            continue
        want = _largest_fractions(*exact, limit=cap)
        assert simplifying_assumptions(builtin(name), cap) == want, name
        checked += 1
    assert checked >= 18


def test_simplifying_assumptions_of_explicit_methods_at_the_default_cap():
    got = {n: simplifying_assumptions(builtin(n), 12) for n in ("rk4", "rk38", "kutta3", "heun3", "ssprk3", "dopri5")}
    assert got == {
        "rk4": (4, 1, 1),
        "rk38": (4, 1, 1),
        "kutta3": (4, 1, 1),
        "heun3": (3, 1, 0),
        "ssprk3": (4, 1, 0),
        "dopri5": (5, 1, 1),
    }


@pytest.mark.parametrize(
    ("name", "cap", "want"), [("euler", 3, (1, 3, 0)), ("gauss5", 4, (4, 4, 4)), ("rk4", 2, (2, 1, 1))]
)
def test_check_max_order_caps_the_simplifying_assumptions(capsys, name, cap, want):
    from rkgen.cli import main

    assert main(["check", name, "--max-order", str(cap), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["B"], d["C"], d["D"]) == want and d["max_order"] == cap


# -- tolerant order ----------------------------------------------------------------------------------


def _rounded(x: Fraction, digits: int) -> str:
    """x rounded to ``digits`` significant decimal digits, as a decimal string."""
    return f"{sympy.Float(sympy.Rational(x.numerator, x.denominator), digits)}"


RK4_ROUNDED = {
    "name": "rk4_25_digits",
    "A": [["0", "0", "0", "0"], ["0.5", "0", "0", "0"], ["0", "0.5", "0", "0"], ["0", "0", "1", "0"]],
    "b": ["0.1666666666666666666666667", "0.3333333333333333333333333",
          "0.3333333333333333333333333", "0.1666666666666666666666667"],
}  # fmt: skip


def test_rounding_helper():
    assert _rounded(Fraction(1, 6), 25) == "0.1666666666666666666666667"
    assert _rounded(Fraction(1, 3), 25) == "0.3333333333333333333333333"


def test_rk4_rounded_to_25_digits():
    t = from_json(json.dumps(RK4_ROUNDED))
    b = [Fraction(x) for x in RK4_ROUNDED["b"]]
    c = [Fraction(0), Fraction(1, 2), Fraction(1, 2), Fraction(1)]
    # what is exactly true of the rounded weights: they sum to 1 and sum b c = 1/2, but sum b c^2 != 1/3
    assert sum(b) == 1
    assert sum(bi * ci for bi, ci in zip(b, c, strict=True)) == Fraction(1, 2)
    assert sum(bi * ci**2 for bi, ci in zip(b, c, strict=True)) != Fraction(1, 3)
    r = t.order_report
    assert r.order == 2
    assert r.order_tolerant == 4
    assert 1e-27 < r.max_residual < 1e-24
    assert [c.tree.order for c in r.failing] == [3, 3]
    text = format_report(check_data(t))
    assert re.search(r"exact order 2; order 4 to within \d\.\de-2\d", text), text
    # with no tolerance the tolerant order is the exact one
    r0 = analyse_order(t, tolerance=0.0)
    assert r0.order == r0.order_tolerant == 2


def test_rk4_with_rounded_nodes_has_exact_order_0():
    """Round A too (1/2 -> 0.5000000000000000000000001): the weights still sum to 1, the nodes no longer fit."""
    data = json.loads(json.dumps(RK4_ROUNDED))
    data["b"] = ["0.1666666666666666666666667", "0.3333333333333333333333333",
                 "0.3333333333333333333333334", "0.1666666666666666666666667"]  # fmt: skip
    data["A"][1][0] = "0.5000000000000000000000001"
    t = from_json(json.dumps(data))
    b = [Fraction(x) for x in data["b"]]
    assert sum(b) != 1  # so not even order 1, exactly
    r = t.order_report
    assert r.order == 0
    assert r.order_tolerant == 4
    assert 1e-27 < r.max_residual < 1e-23
    text = format_report(check_data(t))
    assert re.search(r"exact order 0; order 4 to within \d\.\de-2\d", text), text


def test_gauss2_with_a_rational_square_root_of_3():
    r3 = "1.73205080756887729352744634151"  # 30 significant digits
    assert abs(float(sympy.sqrt(3) - sympy.Rational(r3).limit_denominator(10**40))) < 1e-29
    data = {
        "name": "gauss2_30_digits",
        "A": [["1/4", f"1/4 - {r3}/6"], [f"1/4 + {r3}/6", "1/4"]],
        "b": ["1/2", "1/2"],
    }
    t = from_json(json.dumps(data))
    assert all(x.is_Rational for row in t.A for x in row)
    r = t.order_report
    # exactly: b sums to 1 and the nodes are symmetric (order 2); sum b c^2 = 1/4 + r3^2/36 != 1/3
    assert r.order == 2
    assert r.order_tolerant == 4
    assert 1e-33 < r.max_residual < 1e-28
    largest = max(abs(c.residual_float) for n in (3, 4) for c in r.conditions_of_order(n))
    assert math.isclose(largest, r.max_residual, rel_tol=1e-12)
    text = format_report(check_data(t))
    assert re.search(r"exact order 2; order 4 to within \d\.\de-(29|3\d)", text), text
    # M = 0 needs only a_11 = a_22 = 1/4 and a_12 + a_21 = 1/2: it stays exactly symplectic
    assert t.is_symplectic


def test_tolerance_option():
    t = from_json(json.dumps(RK4_ROUNDED))
    assert analyse_order(t, tolerance=1e-30).order_tolerant == 2
    assert analyse_order(t, tolerance=1e-20).order_tolerant == 4
    assert analyse_order(t, tolerance=1.0).order_tolerant >= 4
