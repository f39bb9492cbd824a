"""rkgen.reference, the package's numpy network, against the independent oracle of tests/reference.py.

- forward values against ``rk_forward`` and gradients against the hand-written reverse pass
  (``hand_reverse_gradient``) for explicit, diagonally implicit and fully implicit tableaux, zero
  weights included, both fields, every activation, on instances with a zero and a negative step;
- gradients against complex steps (exact to rounding, no shared code) for one case per tableau;
- the xi form against the P form of the partner tableau, wherever every b_i != 0;
- the coefficients are those of rkgen.adjoint.layer_equations, rounded once;
- the activations against the oracle's, and the tape, the errors and a Newton failure.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as oracle
from nojit_check import draw_problem, tableau_floats

from rkgen import builtin_names, load
from rkgen.adjoint import layer_equations
from rkgen.reference import ACTIVATIONS, FIELDS, Network, activation, backward_p_form

#: explicit (heun3 and dopri5 with zero weights), diagonally implicit, fully implicit
NAMES = ("euler", "rk4", "heun3", "dopri5", "sdirk2", "trapezoid", "midpoint", "gauss2", "radau_iia2", "lobatto_iiic3")
TOL = 1e-12


def relative(got, want) -> float:
    got = np.concatenate([np.ravel(g) for g in got])
    want = np.concatenate([np.ravel(w) for w in want])
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def problem(name, field, act, m=3, d=2):
    A, b = tableau_floats(name)
    return A, b, draw_problem(A, b, m, d, field, act, seed=11)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("field", FIELDS)
@pytest.mark.parametrize("name", NAMES)
def test_against_the_hand_written_reverse_pass(name, field, act):
    A, b, (y0, K, beta, h, W) = problem(name, field, act)
    net = Network(name)
    yN, tape = net.forward(y0, K, beta, h, field, act)
    assert tape.failures == 0
    assert relative([yN], [oracle.rk_forward(A, b, y0, K, beta, h, field, act)]) <= TOL
    want = oracle.hand_reverse_gradient(A, b, y0, K, beta, h, W, field, act)
    assert relative(net.backward(tape, W), want) <= TOL
    assert net.backward(tape, W)[3][1] != 0.0  # dJ/dh at the layer with h = 0


@pytest.mark.parametrize("name", NAMES)
def test_against_complex_steps(name):
    field, act = ("stable", "sigmoid") if load(name).structure == "explicit" else ("resnet", "softplus")
    A, b, (y0, K, beta, h, W) = problem(name, field, act, m=2)
    _, tape = Network(name).forward(y0, K, beta, h, field, act)
    want = oracle.complex_step_gradient(A, b, y0, K, beta, h, W, field, act)
    assert relative(Network(name).backward(tape, W), want) <= TOL


@pytest.mark.parametrize("name", [n for n in builtin_names() if not load(n).zero_weights])
def test_xi_form_equals_p_form(name):
    net = Network(name)
    for field, act in zip(FIELDS, ("tanh", "softplus"), strict=True):
        _, _, (y0, K, beta, h, W) = problem(name, field, act)
        _, tape = net.forward(y0, K, beta, h, field, act)
        xi, p = net.backward(tape, W), net.backward(tape, W, form="p")
        assert relative(p, xi) <= 1e-13, field
        # the same P form from the partner tableau: w_ik = b_k - ã_ik
        At = np.array(load(name).partner.floats()[0])
        weights = [[(k, net.b[k] - At[i, k]) for k in range(net.stages)] for i in range(net.stages)]
        args = (tape.stages, tape.K, tape.beta, tape.h, W, field, act)
        assert relative(backward_p_form(net.b, weights, *args), xi) <= 1e-13, field


@pytest.mark.parametrize("name", ["heun3", "dopri5"])
def test_zero_weights_have_no_p_form(name):
    net = Network(name)
    _, tape = net.forward(np.ones((1, 2)), np.zeros((1, 2, 2)), np.zeros((1, 2)), [0.1])
    assert net.coefficients.p_form is None
    with pytest.raises(ValueError, match="zero weight"):
        net.backward(tape, np.ones((1, 2)), form="p")


def test_coefficients_are_the_layer_equations_rounded_once():
    c = Network("rk4").coefficients
    assert c.forward == ((0, ()), (1, ((0, 0.5),)), (2, ((1, 0.5),)), (3, ((2, 1.0),)))
    assert c.update == ((0, 1 / 6), (1, 1 / 3), (2, 1 / 3), (3, 1 / 6))
    assert [i for i, _, _ in c.backward] == [3, 2, 1, 0]
    assert c.backward[1] == (2, 1 / 3, ((3, 1.0),))
    eq = layer_equations(load("gauss2"))
    c = Network(eq).coefficients
    assert c.structure == "fully implicit" and c.implicit
    F = eq.tableau.number_field
    assert c.forward[0][1][1] == (1, F.to_float(F.element(eq.forward[0].terms[1].value)))
    assert c.p_form == tuple(tuple((x.index, F.to_float(F.element(x.value))) for x in row) for row in eq.p_form)


def test_activations_match_the_oracle():
    z = np.concatenate([np.linspace(-40, 40, 801), [-1e-300, 0.0, 1e-300, 700.0, -700.0]])
    for name in ACTIVATIONS:
        value, slope = activation(name, z)
        np.testing.assert_allclose(value, oracle.activation_function(z, name), rtol=1e-15, atol=1e-300)
        # tanh' is 1 - tanh^2, as in the derivation's check (its numbers must not move): a few ulp near 1,
        # and 0 instead of about 4 exp(-2|z|) for |z| > 19; the oracle keeps the tails
        np.testing.assert_allclose(slope, oracle.activation_derivative(z, name), rtol=0, atol=4.5e-16)
        assert np.all(np.isfinite(value)) and np.all(np.isfinite(slope)), name
    with pytest.raises(ValueError):
        activation("gelu", z)


def test_tape_states_and_refusals():
    net = Network("rk4")
    rng = np.random.default_rng(0)
    y0, K, beta, h = rng.normal(size=(4, 3)), rng.normal(size=(2, 3, 3)), rng.normal(size=(2, 3)), [0.2, -0.1]
    yN, tape = net.forward(y0, K, beta, h, keep_states=True)
    assert tape.states.shape == (3, 4, 3) and np.array_equal(tape.states[-1], yN)
    assert np.array_equal(tape.states[0], y0) and tape.stages.shape == (2, 4, 4, 3)
    _, light = net.forward(y0, K, beta, h, keep_tape=False)
    assert light.states is None and light.stages is None
    with pytest.raises(ValueError, match="keep_tape"):
        net.backward(light, np.ones((4, 3)))
    with pytest.raises(ValueError, match="field"):
        net.forward(y0, K, beta, h, field="other")
    with pytest.raises(ValueError, match="shapes"):
        net.forward(y0, K[:1], beta, h)
    with pytest.raises(ValueError, match="form"):
        net.backward(tape, np.ones((4, 3)), form="q")


def test_newton_counts_a_non_finite_solve_as_a_failure():
    """The reproducer of issue 11: at h = 1e37 the stages go non-finite, which is a failure."""
    y0, K, beta = [[1.6, -1.1]], [[[-1.5, -0.2], [1.9, 0.3]]], [[0.1, 1.0]]
    _, tape = Network("gauss2").forward(y0, K, beta, [1e37], "stable", "relu")
    assert tape.failures == 1 and tape.iterations == 100
