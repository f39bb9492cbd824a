"""The adjoint as data (rkgen/adjoint.py) and the misprint of conditions (19).

- layer_equations: which terms each stage equation has, in which order the backward pass runs;
- p_form: w_ik = a_ki b_k / b_i = b_k - ã_ik, against the partner tableau of rkgen.partner;
- the misprint: the P-form backward pass (rkgen.reference, through tests/nojit_check.py) with the
  partner built from the untransposed index, ã_ij = b_j - b_j a_ij / b_i, gives gradients that
  are wrong by percents; with the transposed index (rkgen's partner) they are exact to rounding.

No numba here: stage values come from the reference forward pass (tests/reference.py).
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import reference as ref
import sympy
from nojit_check import (
    STEPS,
    central_gradient,
    correct_partner,
    draw_problem,
    misprinted_partner,
    pform_backward,
    reference_stages,
    relative_error,
    tableau_floats,
)

from rkgen import builtin_names, load
from rkgen.adjoint import layer_equations

DIGITS = 50


def value(x) -> sympy.Float:
    return sympy.N(sympy.sympify(x), DIGITS)


def is_zero(x) -> bool:
    """Numerically at 50 digits (independent of rkgen's exact arithmetic): the nonzero
    coefficients of the built-ins are far larger than 1e-40."""
    return abs(value(x)) < sympy.Float(10) ** -40


def same(x, y) -> bool:
    return is_zero(sympy.sympify(x) - sympy.sympify(y))


# --------------------------------------------------------------------------------------------------
# layer_equations: structure
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", builtin_names())
def test_forward_stages_have_exactly_the_nonzero_terms(name):
    t = load(name)
    eq = layer_equations(t)
    s = t.stages
    assert [st.i for st in eq.forward] == list(range(s))
    for st in eq.forward:
        want = [l for l in range(s) if not is_zero(t.A[st.i][l])]
        assert [term.index for term in st.terms] == want
        for term in st.terms:
            assert term.name == f"a_{st.i + 1}_{term.index + 1}" and term.value == t.A[st.i][term.index]
        assert st.implicit == any(l >= st.i for l in want)
    assert [u.index for u in eq.update] == [i for i in range(s) if not is_zero(t.b[i])]
    assert all(u.value == t.b[u.index] and u.name == f"b_{u.index + 1}" for u in eq.update)


@pytest.mark.parametrize("name", builtin_names())
def test_backward_stages_have_exactly_the_nonzero_terms_in_order(name):
    t = load(name)
    eq = layer_equations(t)
    s = t.stages
    order = list(range(s - 1, -1, -1)) if t.structure != "fully implicit" else list(range(s))
    assert list(eq.backward_order) == order == [st.i for st in eq.backward]
    for st in eq.backward:
        i = st.i
        # eta_i = b_i p + sum_k a_ki mu_k over the nonzero a_ki (column i of A)
        want = [k for k in range(s) if not is_zero(t.A[k][i])]
        assert [term.index for term in st.terms] == want
        for term in st.terms:
            assert term.value == t.A[term.index][i] and term.name == f"a_{term.index + 1}_{i + 1}"
        if t.structure == "explicit":
            assert all(k > i for k in want)  # only later stages: s..1 needs no solve
        elif t.structure == "diagonally implicit":
            assert all(k >= i for k in want)
        if is_zero(t.b[i]):
            assert st.weight is None
        else:
            assert st.weight.value == t.b[i] and st.weight.name == f"b_{i + 1}"
        assert (st.diagonal is not None) == (not is_zero(t.A[i][i]))


def test_explicit_backward_runs_from_the_last_stage():
    eq = layer_equations(load("rk4"))
    assert eq.backward_order == (3, 2, 1, 0)
    assert [str(st) for st in eq.backward] == [
        "eta_4 = b_4*p",
        "eta_3 = b_3*p + a_4_3*mu_4",
        "eta_2 = b_2*p + a_3_2*mu_3",
        "eta_1 = b_1*p + a_2_1*mu_2",
    ]
    # heun3 has b_2 = 0: eta_2 has no p term, and it is still there (it feeds eta_1)
    heun3 = layer_equations(load("heun3"))
    assert [str(st) for st in heun3.backward] == [
        "eta_3 = b_3*p",
        "eta_2 = a_3_2*mu_3",
        "eta_1 = b_1*p + a_2_1*mu_2",
    ]


# --------------------------------------------------------------------------------------------------
# p_form against the partner tableau
# --------------------------------------------------------------------------------------------------


def test_p_form_is_none_without_a_partner():
    for name in ("heun3", "dopri5"):
        t = load(name)
        assert t.zero_weights and t.partner is None
        assert layer_equations(t).p_form is None


def test_p_form_weights_of_rk4_exactly():
    t = load("rk4")
    A, b, At = t.A, t.b, t.partner.A
    rows = layer_equations(t).p_form
    for i, row in enumerate(rows):
        terms = {term.index: term for term in row}
        for k in range(4):
            w = A[k][i] * b[k] / b[i]  # exact rationals
            assert isinstance(w, sympy.Rational)
            assert w == b[k] - At[i][k]  # = b_k - ã_ik, exactly
            if w == 0:
                assert k not in terms
            else:
                assert terms[k].value == w and terms[k].name == f"w_{i + 1}_{k + 1}"
    # the nonzero weights of RK4 in P form: w_12 = 1, w_23 = w_34 = 1/2
    assert {(term.name, term.value) for row in rows for term in row} == {
        ("w_1_2", 1),
        ("w_2_3", sympy.Rational(1, 2)),
        ("w_3_4", sympy.Rational(1, 2)),
    }


@pytest.mark.parametrize("name", [n for n in builtin_names() if not load(n).zero_weights])
def test_p_form_weights_match_the_partner(name):
    t = load(name)
    At = t.partner.A
    rows = layer_equations(t).p_form
    assert len(rows) == t.stages
    for i, row in enumerate(rows):
        terms = {term.index: term.value for term in row}
        for k in range(t.stages):
            w = terms.get(k, 0)
            assert same(w, t.A[k][i] * t.b[k] / t.b[i])
            assert same(w, t.b[k] - At[i][k])
            assert (k in terms) == (not is_zero(t.A[k][i]))


# --------------------------------------------------------------------------------------------------
# the misprint of (19)
# --------------------------------------------------------------------------------------------------

MISPRINT = ("rk4", "heun2", "kutta3")


def partner_floats(name):
    """Ã of rkgen's partner (exact, then rounded), as a float array."""
    return np.array(load(name).partner.floats()[0], dtype=float)


@functools.cache
def _problem(name, field):
    A, b = tableau_floats(name)
    y0, K, beta, h, W = draw_problem(A, b, 2, 3, field, "tanh", seed=31)
    stages = reference_stages(A, b, y0, K, beta, h, field, "tanh")
    fd = central_gradient(lambda x: float(np.sum(W * ref.rk_forward(A, b, *x, field, "tanh"))), (y0, K, beta, h))
    cs = ref.complex_step_gradient(A, b, y0, K, beta, h, W, field, "tanh")
    return A, b, (y0, K, beta, h, W), stages, fd, cs


@pytest.mark.parametrize("field", ref.FIELDS)
@pytest.mark.parametrize("name", MISPRINT)
def test_misprinted_partner_gives_wrong_gradients(name, field):
    A, b, (y0, K, beta, h, W), stages, fd, cs = _problem(name, field)
    assert 0.0 in h and np.any(h < 0)
    assert relative_error(cs, fd) < 1e-7  # the two references agree

    right = pform_backward(partner_floats(name), b, stages, K, beta, h, W, field, "tanh")
    assert relative_error(right, fd) < 1e-7
    assert relative_error(right, cs) < 1e-12  # (much tighter than the 1e-10 of the notes)
    # the same partner read from the layer equations: ã_ik = b_k - w_ik
    t = load(name)
    w = np.zeros((t.stages, t.stages))
    for i, row in enumerate(layer_equations(t).p_form):
        for term in row:
            w[i, term.index] = float(term.value)
    from_p_form = pform_backward(b[None, :] - w, b, stages, K, beta, h, W, field, "tanh")
    assert relative_error(from_p_form, cs) < 1e-12

    wrong = pform_backward(misprinted_partner(A, b), b, stages, K, beta, h, W, field, "tanh")
    assert relative_error(wrong, fd) > 1e-3
    assert relative_error(wrong, cs) > 1e-3


@pytest.mark.parametrize("name", MISPRINT)
def test_the_two_partners(name):
    """rkgen's partner satisfies (19) with a_ji; the misprinted one satisfies the misprint, a_ij,
    and not (19). Both are what their formulas say."""
    A, b = tableau_floats(name)
    right, wrong = partner_floats(name), misprinted_partner(A, b)
    np.testing.assert_allclose(right, correct_partner(A, b), rtol=0, atol=1e-15)
    B = np.diag(b)
    bb = np.outer(b, b)
    # (19):  b_i ã_ij + b_j a_ji - b_i b_j = 0
    assert np.max(np.abs(B @ right + (B @ A).T - bb)) < 1e-15
    assert np.max(np.abs(B @ wrong + (B @ A).T - bb)) > 1e-2
    # the misprint:  b_i ã_ij + b_j a_ij - b_i b_j = 0
    assert np.max(np.abs(B @ wrong + A * b[None, :] - bb)) < 1e-15
    assert not np.allclose(right, wrong)


def test_euler_is_blind_to_the_misprint():
    """With one stage a_ij = a_ji: both versions give backward Euler, and the right gradient (the
    misprint only shows from two stages on, which is why the tests use rk4, heun2, kutta3)."""
    A, b = tableau_floats("euler")
    np.testing.assert_array_equal(misprinted_partner(A, b), partner_floats("euler"))
    assert partner_floats("euler").tolist() == [[1.0]]


def test_p_form_backward_divides_by_nothing_at_zero_steps():
    """The P form from the tape of a network with every h_j = 0: y_N = y_0, dJ/dy0 = p,
    no parameter gradient, and dJ/dh_j = p . f(y0) for every j."""
    A, b, (y0, K, beta, _, W), _, _, _ = _problem("rk4", "resnet")
    h = np.zeros(len(STEPS))
    stages = reference_stages(A, b, y0, K, beta, h, "resnet", "tanh")
    dy0, dK, dbeta, dh = pform_backward(partner_floats("rk4"), b, stages, K, beta, h, W)
    assert np.array_equal(dy0, W) and not dK.any() and not dbeta.any()
    for j in range(len(h)):
        np.testing.assert_allclose(dh[j], np.sum(W * ref.vector_field(y0, K[j], beta[j])), rtol=1e-14)
