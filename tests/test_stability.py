"""Linear stability, decided exactly (rkgen.stability), against the literature and independent computations.

Literature: Hairer & Wanner, Solving ODEs II (2nd ed.), Sec. IV.2-IV.5 and IV.12 (A-, L- and algebraic stability
of Gauss, Radau IIA, Lobatto IIIA/B/C, SDIRK); Hairer, Nørsett & Wanner I, Sec. IV.2 (real stability intervals of
explicit methods: RK4 -2.785..., RK3 -2.512..., Dormand-Prince -3.306...).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
import sympy

from rkgen import builtin_names, from_json, load
from rkgen.stability import Z, _charpoly, _odd_part, _Poly

z = Z


def _direct_R(t):
    """Oracle: R(z) = 1 + z bᵀ(I − zA)⁻¹𝟙 by sympy's own linear algebra, simplified."""
    A = sympy.Matrix(t.A)
    b = sympy.Matrix(t.b)
    s = t.stages
    expr = 1 + z * (b.T * (sympy.eye(s) - z * A).LUsolve(sympy.ones(s, 1)))[0]
    return sympy.cancel(sympy.radsimp(sympy.together(expr)))


@pytest.mark.parametrize("name", ["euler", "rk4", "midpoint", "gauss2", "radau_iia2", "sdirk2", "lobatto_iiic3"])
def test_R_equals_the_resolvent_formula(name):
    t = load(name)
    assert sympy.simplify(t.stability.R - _direct_R(t)) == 0


@pytest.mark.parametrize(
    "name, R",
    [
        ("euler", 1 + z),
        ("backward_euler", 1 / (1 - z)),
        ("midpoint", (1 + z / 2) / (1 - z / 2)),
        ("rk4", 1 + z + z**2 / 2 + z**3 / 6 + z**4 / 24),
        ("gauss2", (1 + z / 2 + z**2 / 12) / (1 - z / 2 + z**2 / 12)),
        ("radau_iia2", (1 + z / 3) / (1 - 2 * z / 3 + z**2 / 6)),
        ("lobatto_iiic2", 1 / (1 - z + z**2 / 2)),
    ],
)
def test_R_of_known_methods(name, R):
    """Padé approximants of e^z: Gauss (s,s), Radau IIA (s-1,s), Lobatto IIIC (s-2,s)."""
    assert sympy.simplify(load(name).stability.R - R) == 0


@pytest.mark.parametrize("name", ["gauss2", "gauss3", "gauss5", "radau_iia2", "radau_iia3", "lobatto_iiic2",
                                  "lobatto_iiic3", "lobatto_iiia2", "lobatto_iiia3", "lobatto_iiib3", "midpoint",
                                  "trapezoid", "backward_euler", "sdirk2"])
def test_a_stable_methods(name):
    assert load(name).stability.a_stable


@pytest.mark.parametrize("name", [n for n in builtin_names() if load(n).is_explicit])
def test_explicit_methods_are_never_a_stable(name):
    s = load(name).stability
    assert not s.a_stable and not s.l_stable
    assert s.degrees[1] == 0  # R is a polynomial


@pytest.mark.parametrize(
    "name, l_stable",
    [("radau_iia2", True), ("radau_iia3", True), ("lobatto_iiic2", True), ("lobatto_iiic3", True),
     ("backward_euler", True), ("sdirk2", True), ("gauss2", False), ("gauss5", False), ("midpoint", False),
     ("trapezoid", False), ("lobatto_iiia3", False)],
)
def test_l_stability(name, l_stable):
    assert load(name).stability.l_stable is l_stable


@pytest.mark.parametrize(
    "name, algebraic",
    [("gauss2", True), ("gauss4", True), ("radau_iia3", True), ("lobatto_iiic3", True), ("backward_euler", True),
     ("midpoint", True), ("lobatto_iiia3", False), ("lobatto_iiib3", False), ("trapezoid", False),
     ("sdirk2", False), ("rk4", False), ("euler", False)],
)
def test_algebraic_stability(name, algebraic):
    """Gauss, Radau IA/IIA and Lobatto IIIC are algebraically stable; Lobatto IIIA/IIIB are not (HW II,
    Thm IV.12.9); the L-stable SDIRK with γ = 1 − √2/2 is not: M₁₁ = (1 − γ)(3γ − 1) < 0."""
    assert load(name).stability.algebraic.holds is algebraic


def test_algebraic_stability_finds_negative_weights():
    a = load("dopri5").stability.algebraic
    assert not a.b_nonnegative and a.reason == "b_5 < 0"


@pytest.mark.parametrize(
    "name, left",
    [("euler", -2.0), ("heun2", -2.0), ("rk4", -2.785293563405282), ("kutta3", -2.5127453266183286),
     ("dopri5", -3.3065678926349465)],
)
def test_real_stability_interval(name, left):
    iv = load(name).stability.interval
    assert iv.left == pytest.approx(left, abs=1e-15)
    # the end point is exact: |R(left)| = 1 to rounding and |R| < 1 just inside
    R = load(name).stability
    assert abs(abs(R.evaluate(np.array([iv.left]))[0]) - 1) < 1e-13
    assert abs(R.evaluate(np.array([iv.left * 0.999]))[0]) < 1


def test_interval_end_points_are_exact():
    assert load("euler").stability.interval.exact == -2
    rk4 = load("rk4").stability.interval
    assert sympy.N(rk4.exact, 30) == sympy.N(sympy.CRootOf(sympy.Poly(z**3 + 4 * z**2 + 12 * z + 24, z), 0), 30)
    assert rk4.digits.startswith("-2.78529356340528162352975")


@pytest.mark.parametrize("name", ["gauss2", "radau_iia2", "backward_euler", "lobatto_iiic2", "trapezoid"])
def test_a_stable_methods_have_unbounded_intervals(name):
    iv = load(name).stability.interval
    assert iv.unbounded and iv.text == "(-inf, 0]"


def test_interval_of_a_number_field_method():
    """An explicit method with √2 in its weights: the end point is given by its polynomial and a bracket."""
    t = from_json(
        '{"name": "surd2", "A": [["0", "0"], ["1/sqrt(2)", "0"]], "b": ["1 - 1/sqrt(2)", "1/sqrt(2)"]}'
    )
    iv = t.stability.interval
    # R(x) = 1 + x + x²/2 for every explicit 2-stage method of order 2: the interval is [-2, 0]
    assert iv.left == -2.0 and (iv.exact is not None and iv.exact == -2 or iv.bracket[0] < -2 <= iv.bracket[1])


def test_sampling_agrees_with_the_exact_verdicts():
    """Not the decision (that is exact), a sanity check: on a fine grid of the left half-plane and the imaginary
    axis, |R| ≤ 1 + 1e-12 exactly for the A-stable built-ins."""
    x = np.concatenate([-np.logspace(-3, 3, 200), [0.0]])
    y = np.concatenate([-np.logspace(-3, 3, 200), [0.0], np.logspace(-3, 3, 200)])
    grid = (x[:, None] + 1j * y[None, :]).ravel()
    for name in builtin_names():
        s = load(name).stability
        worst = np.nanmax(np.abs(s.evaluate(grid)))
        assert (worst <= 1 + 1e-12) == s.a_stable, name


def test_e_polynomial_of_rk4():
    """|R(iy)|² = 1 − y⁶/72 + y⁸/576 for RK4: stable on the imaginary axis for |y| ≤ 2√2."""
    yy = sympy.Symbol("y", real=True)
    assert sympy.expand(load("rk4").stability.E_polynomial - (yy**6 / 72 - yy**8 / 576)) == 0
    assert load("gauss3").stability.E_polynomial == 0


# -- the partner's stability function: R̃(z) R(−z) = 1 --------------------------------------------------
@pytest.mark.parametrize(
    "name, partner_R",
    [  # computed by hand from the partner tableaux ã_ij = b_j − b_j a_ji / b_i
        ("euler", 1 / (1 - z)),  # the partner is backward Euler
        ("heun2", 1 / (1 - z + z**2 / 2)),
        ("midpoint", (1 + z / 2) / (1 - z / 2)),  # symplectic: its own partner
        ("rk4", 1 / (1 - z + z**2 / 2 - z**3 / 6 + z**4 / 24)),
        ("radau_iia2", (1 + 2 * z / 3 + z**2 / 6) / (1 - z / 3)),
    ],
)
def test_partner_stability_function(name, partner_R):
    t = load(name)
    s = t.stability
    assert sympy.simplify(s.partner_R - partner_R) == 0
    assert sympy.simplify(partner_R * s.R.subs(z, -z) - 1) == 0
    assert sympy.simplify(_direct_R(t.partner) - partner_R) == 0  # from the partner tableau itself
    assert s.partner_identity is True


@pytest.mark.parametrize("name", [n for n in builtin_names() if not load(n).zero_weights])
def test_partner_identity_for_every_builtin(name):
    assert load(name).stability.partner_identity is True


def test_no_partner_no_partner_stability():
    s = load("heun3").stability
    assert s.partner_R is None and s.partner_identity is None


# -- the exact tools ---------------------------------------------------------------------------------------
def test_charpoly_matches_sympy():
    t = load("gauss3")
    F = t.number_field
    A, _, _ = t.exact
    got = [F.to_sympy(c) for c in _charpoly(F, A)]
    x = sympy.Symbol("x")
    want = sympy.Poly(sympy.Matrix(t.A).charpoly(x).as_expr(), x).all_coeffs()[::-1]
    assert all(sympy.simplify(a - b) == 0 for a, b in zip(got, want, strict=True))


def test_odd_part_keeps_roots_of_odd_multiplicity():
    t = load("euler")
    F = t.number_field
    P = _Poly(F)

    def poly(*cs):
        return P.trim([F.from_rational(Fraction(c)) for c in cs])

    # (x - 1)^2 (x + 2)^3 x  ->  (x + 2) x
    p = P.mul(P.mul(P.mul(poly(-1, 1), poly(-1, 1)), P.mul(poly(2, 1), P.mul(poly(2, 1), poly(2, 1)))), poly(0, 1))
    assert _odd_part(P, p) == poly(0, 2, 1)


def test_a_stability_is_exact_near_the_boundary():
    """θ-methods: A-stable exactly for θ ≥ 1/2; θ = 1/2 − 10⁻³⁰ is not (no tolerance could tell)."""
    for theta, stable in (("1/2", True), ("1/2 - 1/10**30", False), ("1/2 + 1/10**30", True), ("1", True)):
        t = from_json(f'{{"name": "theta", "A": [["{theta}"]], "b": ["1"]}}')
        assert t.stability.a_stable is stable, theta
    assert math.isinf(from_json('{"name": "t", "A": [["1/2"]], "b": ["1"]}').stability.interval.left)


def test_a_constant_stability_function_has_the_whole_negative_axis():
    """Weights that sum to 0 can make R(z) = 1 (here 1 + z b^T (I - zA)^(-1) 1 with b^T (I - zA)^(-1) 1 = 0): then
    |R(x)|^2 - 1 is the zero polynomial and |R| <= 1 on the whole real axis. A property test found this tableau
    crashing the interval's root search (an empty polynomial divided)."""
    t = from_json('{"name": "flat", "A": [["0", "-1"], ["-3", "2"]], "b": ["1", "-1"]}')
    assert t.stability.degrees == (0, 0)
    iv = t.stability.interval
    assert math.isinf(iv.left) and iv.left < 0 and iv.exact is None
    assert t.stability.to_dict()["interval"] == {
        "left": None, "unbounded": True, "exact": None, "digits": "-inf", "polynomial": None
    }


def test_to_dict_is_json_ready():
    import json

    d = load("sdirk2").stability.to_dict()
    json.dumps(d)
    assert d["A_stable"] and d["L_stable"] and not d["algebraically_stable"] and d["interval"]["unbounded"]


@pytest.mark.parametrize(
    "name, k, C",
    [  # Padé (m, n): R - e^z = (-1)^(n+1) m! n! / ((m+n)! (m+n+1)!) z^(m+n+1) + ...
        ("gauss5", 10, sympy.Rational(1, 10059033600)),
        ("radau_iia3", 5, sympy.Rational(1, 7200)),
        ("lobatto_iiic2", 2, sympy.Rational(-1, 6)),
        ("rk4", 4, sympy.Rational(-1, 120)),
        ("euler", 1, sympy.Rational(-1, 2)),
        ("sdirk2", 2, sympy.sqrt(2) / 2 - sympy.Rational(2, 3)),
    ],
)
def test_linear_order_and_error_constant(name, k, C):
    got_k, got_C = load(name).stability.linear_order
    assert got_k == k and sympy.simplify(got_C - C) == 0
