"""Symplecticity and the symplectic partner: conditions (19), exactly.

(19):  b_i = b~_i  and  b_i a~_ij + b~_j a_ji - b_i b~_j = 0  for all i, j;
partner:  a~_ij = b_j - b_j a_ji / b_i  (all b_i != 0).
"""

from __future__ import annotations

import functools
import json
from fractions import Fraction

import pytest
import sympy
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from rkgen import RkgenError, Tableau, builtin_names, from_json, load
from rkgen.numbers import is_zero
from rkgen.partner import c_matches, check_pair, partner_tableau, symplecticity_matrix
from rkgen.report import check_data, format_report

R = sympy.Rational


@functools.cache
def builtin(name: str):
    """A built-in, loaded once per test module (tableaux are immutable; their analysis is cached on them)."""
    return load(name)


WITH_PARTNER = sorted(set(builtin_names()) - {"heun3", "dopri5"})
SYMPLECTIC = {"midpoint", "gauss2", "gauss3", "gauss4", "gauss5"}


def same(x, y) -> bool:
    return is_zero(sympy.sympify(x) - sympy.sympify(y))


def same_matrix(X, Y) -> bool:
    return len(X) == len(Y) and all(
        len(rx) == len(ry) and all(same(x, y) for x, y in zip(rx, ry, strict=True)) for rx, ry in zip(X, Y, strict=True)
    )


def same_vector(x, y) -> bool:
    return len(x) == len(y) and all(same(a, b) for a, b in zip(x, y, strict=True))


def test_which_builtins_have_partners():
    assert [n for n in builtin_names() if builtin(n).partner is None] == ["dopri5", "heun3"]


@pytest.mark.parametrize("name", WITH_PARTNER)
def test_partner_is_an_involution(name):
    t = builtin(name)
    p = t.partner
    pp = p.partner
    assert pp.name == name
    assert same_matrix(pp.A, t.A)
    assert same_vector(pp.b, t.b)
    assert p.b == t.b
    # the partner's nodes are its row sums, so c comes back exactly when c = A·1
    if t.is_consistent:
        assert same_vector(pp.c, t.c)
    else:
        assert same_vector(pp.c, t.row_sums)


@pytest.mark.parametrize("name", WITH_PARTNER)
def test_builtin_and_partner_satisfy_19(name):
    t = builtin(name)
    pair = check_pair(t, t.partner)
    assert pair.symplectic and pair.violations == ()
    assert check_pair(t.partner, t).symplectic
    assert pair.c_matches == c_matches(t)


@pytest.mark.parametrize("name", WITH_PARTNER)
def test_partner_formula_entrywise(name):
    t = builtin(name)
    p = t.partner
    s = t.stages
    for i in range(s):
        for j in range(s):
            assert same(p.A[i][j], t.b[j] - t.b[j] * t.A[j][i] / t.b[i])
    assert same_vector(p.c, [sympy.Add(*row) for row in p.A])


@pytest.mark.parametrize("name", WITH_PARTNER)
def test_M_of_the_partner_is_minus_M(name):
    t = builtin(name)
    M, Mp = t.symplecticity_matrix, t.partner.symplecticity_matrix
    assert same_matrix(Mp, [[-x for x in row] for row in M])


@pytest.mark.parametrize("name", sorted(builtin_names()))
def test_symplectic_builtins(name):
    t = builtin(name)
    assert t.is_symplectic == (name in SYMPLECTIC)
    M = t.symplecticity_matrix
    assert all(M[i][j] == M[j][i] for i in range(t.stages) for j in range(t.stages))
    b, A = t.b, t.A
    for i in range(t.stages):
        for j in range(t.stages):
            assert same(M[i][j], b[i] * A[i][j] + b[j] * A[j][i] - b[i] * b[j])


@pytest.mark.parametrize("name", sorted(SYMPLECTIC))
def test_midpoint_and_gauss_are_their_own_partner(name):
    t = builtin(name)
    assert t.is_symplectic
    assert all(x == 0 for row in t.symplecticity_matrix for x in row)
    assert t.order >= 2
    p = partner_tableau(t)
    assert same_matrix(p.A, t.A) and same_vector(p.c, t.c) and p.b == t.b
    assert c_matches(t) is True
    assert check_pair(t, t).symplectic
    assert p.order == t.order and p.is_symplectic


@pytest.mark.parametrize("s", [2, 3])
def test_lobatto_iiia_and_iiib_are_partners(s):
    a, b = builtin(f"lobatto_iiia{s}"), builtin(f"lobatto_iiib{s}")
    assert not a.is_symplectic and not b.is_symplectic
    assert check_pair(a, b).symplectic and check_pair(a, b).violations == ()
    assert check_pair(b, a).symplectic
    # the partner of IIIA is IIIB, entry by entry, exactly (and the other way round)
    assert same_matrix(a.partner.A, b.A) and a.partner.b == b.b
    assert same_matrix(b.partner.A, a.A) and b.partner.b == a.b
    assert a.partner.A == b.A  # even as expressions: all rational


def test_lobatto_iiib2_nodes_are_reported_not_refused():
    a, b = builtin("lobatto_iiia2"), builtin("lobatto_iiib2")
    assert b.c == (0, 1) and not b.is_consistent
    assert a.partner.c == (R(1, 2), R(1, 2))  # the partner's nodes are its row sums
    assert check_pair(a, b).c_matches  # both tableaux list c = (0, 1)
    data = check_data(a, b)
    assert data["pair_symplectic"] is True and data["violations"] == []
    text = format_report(check_data(b))
    assert "c differs from the row sums A·1 = (1/2, 1/2)" in text


def test_lobatto_iiic_partner_is_explicit():
    # Lobatto IIIC* (s = 2) is the explicit trapezoidal rule
    p = builtin("lobatto_iiic2").partner
    assert p.structure == "explicit"
    assert p.A == builtin("heun2").A


def test_euler_partner_is_backward_euler():
    e = builtin("euler")
    p = e.partner
    assert p.name == "euler_partner"
    assert p.A == ((1,),) and p.b == (1,) and p.c == (1,)
    be = builtin("backward_euler")
    assert p.A == be.A and p.b == be.b and p.c == be.c
    assert c_matches(e) is False  # c~ = 1 != c = 0
    assert check_pair(e, be).symplectic
    assert not check_pair(e, be).c_matches
    assert p.structure == "diagonally implicit"
    assert be.partner.A == e.A


def test_heun3_has_no_partner_and_says_why():
    t = builtin("heun3")
    assert t.zero_weights == (1,)
    assert t.partner is None
    assert partner_tableau(t) is None
    assert c_matches(t) is None
    data = check_data(t)
    assert data["partner"] is None and data["zero_weights"] == [1]
    text = format_report(data)
    assert "partner          none: b_2 = 0, so b_i ã_ij + b_j a_ji − b_i b_j = 0 cannot be solved for ã_ij." in text
    assert "cannot be solved for ã_ij" in text
    assert "still makes a network" in text


def test_check_pair_lists_every_violation():
    rk4 = builtin("rk4")
    r = check_pair(rk4, rk4)
    assert not r.symplectic
    # against itself, condition (i, j) is M_ij, and every entry of M is nonzero for rk4
    assert len(r.violations) == 16
    M = rk4.symplecticity_matrix
    for v in r.violations:
        assert v.kind == "a" and v.value == M[v.i][v.j]
    assert r.violations[0].describe() == "b[0]*a~[0][0] + b~[0]*a[0][0] - b[0]*b~[0] = -1/36"
    assert r.violations[0].to_dict() == {"kind": "a", "i": 0, "j": 0, "value": "-1/36"}


def test_check_pair_weight_violations():
    rk4 = builtin("rk4")
    other = Tableau("other", rk4.partner.A, (R(1, 6), R(1, 3), R(1, 6), R(1, 3)))
    r = check_pair(rk4, other)
    kinds = [(v.kind, v.i, v.value) for v in r.violations if v.kind == "b"]
    assert kinds == [("b", 2, R(1, 6)), ("b", 3, -R(1, 6))]
    assert not r.symplectic


def test_check_pair_with_surds_and_a_different_field():
    g = builtin("gauss2")
    # the same method written differently: sqrt(3)/6 as 1/(2*sqrt(3))
    data = {"A": [["1/4", "1/4 - 1/(2*sqrt(3))"], ["1/4 + 1/(2*sqrt(3))", "1/4"]], "b": ["0.5", "1/2"]}
    other = from_json(json.dumps(data))
    assert check_pair(g, other).symplectic
    near = from_json(json.dumps({"A": [["1/4", "1/4 - 0.2886751345948128822545744"], ["1/4 + 1/(2*sqrt(3))", "1/4"]],
                                 "b": ["1/2", "1/2"]}))  # fmt: skip
    r = check_pair(g, near)
    # only ã_01 is off: the condition (0, 1) fails, (1, 0) (with a_01 of gauss2 and the exact ã_10) holds
    assert not r.symplectic and [(v.kind, v.i, v.j) for v in r.violations] == [("a", 0, 1)]
    assert 0 < abs(float(r.violations[0].value)) < 1e-25


def test_check_pair_stage_mismatch():
    with pytest.raises(RkgenError) as exc:
        check_pair(builtin("rk4"), builtin("heun2"))
    assert "the partner has 2 stages, the tableau 4" in str(exc.value)


def test_hidden_zero_keeps_a_method_symplectic():
    """A surd entry that is exactly 0 must not be used as the printed form of other zeros."""
    zero = "sqrt(5+2*sqrt(6)) - sqrt(2) - sqrt(3)"
    t = from_json(json.dumps({"A": [["1/4", zero], ["1/2", "1/4"]], "b": ["1/2", "1/2"]}))
    assert t.symplecticity_matrix == ((0, 0), (0, 0))
    assert t.is_symplectic
    assert check_data(t)["M"] == [["0", "0"], ["0", "0"]]
    assert same_matrix(t.partner.A, ((R(1, 4), 0), (R(1, 2), R(1, 4))))


def test_partner_entries_reuse_the_tableau_surds():
    p = builtin("sdirk2").partner
    g = 1 - sympy.sqrt(2) / 2
    b = (sympy.sqrt(2) / 2, 1 - sympy.sqrt(2) / 2)
    A = ((g, 0), (sympy.sqrt(2) / 2, g))
    for i in range(2):
        for j in range(2):
            assert same(p.A[i][j], b[j] - b[j] * A[j][i] / b[i])
    assert all(len(str(x)) < 40 for row in p.A for x in row)  # readable: built from the tableau's own surds
    assert same_vector(p.c, (sympy.sqrt(2) - 1, sympy.sqrt(2) / 2))


def test_partner_entries_with_merged_roots():
    """sympy writes sqrt(3)*sqrt(2) as sqrt(6), which is not a generator of the tableau's field Q(sqrt 2, sqrt 3)."""
    t = from_json(json.dumps({"A": [["0", "0"], ["sqrt(2)", "0"]], "b": ["1", "sqrt(3)"]}))
    p = t.partner
    assert same(p.A[0][1], sympy.sqrt(3) - sympy.sqrt(6))  # b_1 - b_1 a_10 / b_0
    assert c_matches(t) is False
    assert check_pair(t, p).symplectic and check_pair(p, t).symplectic
    assert same_matrix(p.partner.A, t.A)
    assert p.order == 0 and p.structure == "fully implicit"
    data = check_data(t, p)
    assert data["pair_symplectic"] is True and data["partner"]["c_matches"] is False
    # three independent roots: the partner has products of them, its analysis stays in the tableau's field
    t = from_json(json.dumps({"A": [["sqrt(5)", "0", "0"], ["sqrt(2)", "0", "0"], ["1", "1", "0"]],
                              "b": ["1", "sqrt(3)", "1/2"]}))  # fmt: skip
    assert check_data(t, t.partner)["pair_symplectic"] is True


# -- property-based: random rational tableaux ---------------------------------------------------------

fractions = st.fractions(min_value=-3, max_value=3, max_denominator=9)
nonzero_fractions = fractions.filter(lambda q: q != 0)


@st.composite
def rational_tableaux(draw, unit_weights: bool = False):
    s = draw(st.integers(1, 4))
    A = [[draw(fractions) for _ in range(s)] for _ in range(s)]
    b = [draw(nonzero_fractions) for _ in range(s)]
    if unit_weights:
        b[-1] = 1 - sum(b[:-1])
        assume(b[-1] != 0)
    to = lambda q: R(q.numerator, q.denominator)  # noqa: E731
    return Tableau("random", tuple(tuple(to(x) for x in row) for row in A), tuple(to(x) for x in b))


def _fraction_matrix(T):
    return [[Fraction(str(x)) for x in row] for row in T.A], [Fraction(str(x)) for x in T.b]


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rational_tableaux())
def test_random_partner_properties(t):
    p = t.partner
    assert p is not None
    # the formula, with plain fractions
    A, b = _fraction_matrix(t)
    Ap, bp = _fraction_matrix(p)
    s = t.stages
    assert bp == b
    assert Ap == [[b[j] - b[j] * A[j][i] / b[i] for j in range(s)] for i in range(s)]
    # involution, exactly (c = A·1 here, so c comes back too)
    pp = p.partner
    assert pp.A == t.A and pp.b == t.b and pp.c == t.c
    # every derived pair satisfies (19): check_pair says symplectic, both ways
    assert check_pair(t, p).symplectic and check_pair(t, p).violations == ()
    assert check_pair(p, t).symplectic
    # M of the pair: the (19) expression vanishes, and M~ = -M
    for i in range(s):
        for j in range(s):
            assert b[i] * Ap[i][j] + b[j] * A[j][i] - b[i] * b[j] == 0
    assert symplecticity_matrix(p) == tuple(tuple(-x for x in row) for row in symplecticity_matrix(t))
    assert t.is_symplectic == p.is_symplectic == all(x == 0 for row in symplecticity_matrix(t) for x in row)
    # a perturbed partner is caught
    bad = Tableau("bad", tuple(tuple(x + (R(1, 7) if (i, j) == (0, 0) else 0) for j, x in enumerate(row))
                               for i, row in enumerate(p.A)), p.b)  # fmt: skip
    r = check_pair(t, bad)
    assert not r.symplectic and [(v.kind, v.i, v.j) for v in r.violations] == [("a", 0, 0)]
    assert r.violations[0].value == t.b[0] / 7


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rational_tableaux(unit_weights=True))
def test_random_c_matches_is_D1_when_weights_sum_to_1(t):
    assert sum(t.b) == 1
    assert c_matches(t) == (t.order_report.D >= 1)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rational_tableaux())
@example(Tableau("random", ((R(0), R(-1)), (R(-3), R(2))), (R(1), R(-1))))  # R(z) = 1: found by this test in CI
def test_random_check_data_is_json(t):
    data = check_data(t, t.partner)
    again = json.loads(json.dumps(data, allow_nan=False))
    assert again["pair_symplectic"] is True and again["violations"] == []
    assert again["partner"]["c_matches"] == c_matches(t)
    format_report(data)


@pytest.mark.parametrize("name", ["rk4", "gauss3", "lobatto_iiia3", "midpoint"])
def test_partner_is_built_not_written_into(name):
    """partner_tableau leaves the tableau's state alone (it may only have computed its own cached properties) and
    hands the partner everything through the constructor: no cached property of either is written from outside."""
    import dataclasses

    from rkgen.tableau import Tableau

    cached = {n for k in Tableau.__mro__ for n, v in vars(k).items() if isinstance(v, functools.cached_property)}
    t = load(name)  # fresh: nothing computed yet
    before = dict(vars(t))
    p = partner_tableau(t)
    after = vars(t)
    assert all(after[k] is v for k, v in before.items())
    assert set(after) - set(before) <= cached
    assert set(vars(p)) == {f.name for f in dataclasses.fields(Tableau)}  # fields only, no cache filled in
    assert p.number_field is t.number_field
    assert type(p) is Tableau  # built as an instance of the tableau's class, not wrapped afterwards
    if p.same_as is not None:  # a symplectic method is its own partner: same analysis, computed once
        assert name in SYMPLECTIC and p.same_as is t
        assert p.order_report is t.order_report and p.exact is t.exact
    else:
        assert name not in SYMPLECTIC and p.exact[1] is t.exact[1]
        assert p.order == t.order


def test_partner_has_the_class_of_its_tableau():
    """partner_tableau builds ``type(tableau)(...)``: a Tableau's partner is a Tableau (with its analyses), the
    data class's partner is the data class -- rkgen.partner needs only rkgen.butcher."""
    from rkgen.butcher import ButcherTableau

    t = load("rk4")
    assert type(t.partner) is Tableau and type(t.partner.partner) is Tableau and t.partner.partner.order == 4
    assert type(load("gauss2").partner) is Tableau and load("gauss2").partner.same_as is not None  # its own partner
    d = ButcherTableau.load("rk4")
    p = partner_tableau(d)
    assert type(p) is ButcherTableau and p.A == t.partner.A and p.c == t.partner.c
    assert not hasattr(p, "order")
    assert check_pair(d, p).symplectic and c_matches(d) is True and c_matches(ButcherTableau.load("heun3")) is None
