"""Checks of the reference implementation (tests/reference.py) itself.

The reference is what the generated networks are tested against, so it is checked three ways against
each other: complex step against central finite differences (loose, 1e-7: differences are limited
by truncation and cancellation), and the hand-written reverse pass against the complex step
(tight, 1e-12: both are exact to rounding). Every tableau structure is covered (explicit, explicit
with a zero weight, diagonally implicit, fully implicit), both fields and all four activations,
with one step h_j = 0 and one negative step.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
import reference as ref

SQRT2 = np.sqrt(2.0)
SQRT3 = np.sqrt(3.0)
_G = 1.0 - SQRT2 / 2.0

TABLEAUX = {
    "euler": (np.array([[0.0]]), np.array([1.0])),
    "rk4": (
        np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]], dtype=float),
        np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    ),
    # Heun's third-order method: c = (0, 1/3, 2/3), and b_2 = 0
    "heun3": (
        np.array([[0, 0, 0], [1 / 3, 0, 0], [0, 2 / 3, 0]], dtype=float),
        np.array([1 / 4, 0.0, 3 / 4]),
    ),
    "midpoint": (np.array([[0.5]]), np.array([1.0])),
    "gauss2": (
        np.array([[1 / 4, 1 / 4 - SQRT3 / 6], [1 / 4 + SQRT3 / 6, 1 / 4]]),
        np.array([0.5, 0.5]),
    ),
    "sdirk2": (np.array([[_G, 0.0], [1.0 - _G, _G]]), np.array([1.0 - _G, _G])),
}

M, D, N = 2, 3, 3
STEPS = np.array([0.35, 0.0, -0.25])  # one zero step, one negative step
# smallest |pre-activation| allowed for relu (finite differences must not cross the kink)
RELU_MARGIN = 1e-3
FD_STEP = 1e-5

CASES = [(name, field, act) for name in TABLEAUX for field in ref.FIELDS for act in ref.ACTIVATIONS]


def _draw(seed):
    rng = np.random.default_rng(seed)
    y0 = rng.normal(size=(M, D))
    K = 0.6 * rng.normal(size=(N, D, D))
    beta = 0.5 * rng.normal(size=(N, D))
    W = rng.normal(size=(M, D))
    return y0, K, beta, STEPS.copy(), W


def _preactivation_margin(A, b, y0, K, beta, h, field, activation):
    _, stages = ref.rk_forward(A, b, y0, K, beta, h, field, activation, return_stages=True)
    return min(np.abs(Y @ K[j].T + beta[j]).min() for j, (_, Y) in enumerate(stages))


@functools.cache
def problem(name, field, activation):
    """Inputs for one case; for relu, the first seed whose stages stay RELU_MARGIN off the kink."""
    A, b = TABLEAUX[name]
    for seed in range(1000):
        y0, K, beta, h, W = _draw(seed)
        if activation != "relu":
            return A, b, y0, K, beta, h, W
        if _preactivation_margin(A, b, y0, K, beta, h, field, activation) > RELU_MARGIN:
            return A, b, y0, K, beta, h, W
    raise AssertionError("no seed keeps relu away from its kink")


@functools.cache
def complex_step(name, field, activation):
    A, b, y0, K, beta, h, W = problem(name, field, activation)
    return ref.complex_step_gradient(A, b, y0, K, beta, h, W, field, activation)


def central_differences(A, b, y0, K, beta, h, W, field, activation, step=FD_STEP):
    params = [np.array(x, dtype=float) for x in (y0, K, beta, h)]
    grads = [np.zeros(P.shape) for P in params]
    for P, G in zip(params, grads, strict=True):
        for idx in np.ndindex(*P.shape):
            saved = P[idx]
            P[idx] = saved + step
            Jp = np.sum(W * ref.rk_forward(A, b, *params, field, activation))
            P[idx] = saved - step
            Jm = np.sum(W * ref.rk_forward(A, b, *params, field, activation))
            P[idx] = saved
            G[idx] = (Jp - Jm) / (2 * step)
    return tuple(grads)


def relative_error(got, want):
    """max |got - want| / max |want| over all four gradients together."""
    got = np.concatenate([np.ravel(g) for g in got])
    want = np.concatenate([np.ravel(w) for w in want])
    return np.max(np.abs(got - want)) / np.max(np.abs(want))


@pytest.mark.parametrize(("name", "field", "activation"), CASES)
def test_complex_step_matches_finite_differences(name, field, activation):
    fd = central_differences(*problem(name, field, activation), field, activation)
    cs = complex_step(name, field, activation)
    assert relative_error(cs, fd) < 1e-7


@pytest.mark.parametrize(("name", "field", "activation"), CASES)
def test_hand_reverse_matches_complex_step(name, field, activation):
    rev = ref.hand_reverse_gradient(*problem(name, field, activation), field, activation)
    cs = complex_step(name, field, activation)
    for g, c in zip(rev, cs, strict=True):
        assert g.shape == c.shape and g.dtype == np.float64
    assert relative_error(rev, cs) < 1e-12


def test_zero_step_layer_passes_gradient_through():
    # a layer with h = 0 is the identity: dK, dbeta vanish there, dh does not in general
    A, b, y0, K, beta, h, W = problem("rk4", "resnet", "tanh")
    _, dK, dbeta, dh = ref.hand_reverse_gradient(A, b, y0, K, beta, h, W)
    assert h[1] == 0 and np.all(dK[1] == 0) and np.all(dbeta[1] == 0) and dh[1] != 0


@pytest.mark.parametrize("name", ["euler", "rk4", "heun3"])
@pytest.mark.parametrize("field", ref.FIELDS)
def test_newton_and_ift_agree_with_direct_on_explicit_tableaux(name, field):
    A, b, y0, K, beta, h, W = problem(name, field, "softplus")
    direct = ref.rk_forward(A, b, y0, K, beta, h, field, "softplus")
    newton = ref.rk_forward(A, b, y0, K, beta, h, field, "softplus", solver="newton")
    np.testing.assert_allclose(newton, direct, rtol=1e-14, atol=1e-14)
    args = (A, b, y0, K, beta, h, W, field, "softplus")
    stages = ref.hand_reverse_gradient(*args, method="stages")
    ift = ref.hand_reverse_gradient(*args, method="ift")
    assert relative_error(ift, stages) < 1e-13


@pytest.mark.parametrize("name", ["midpoint", "gauss2", "sdirk2"])
def test_implicit_stages_solve_the_stage_equations(name):
    A, b, y0, K, beta, h, _ = problem(name, "stable", "tanh")
    _, stages = ref.rk_forward(A, b, y0, K, beta, h, "stable", "tanh", return_stages=True)
    for j, (y, Y) in enumerate(stages):
        F = ref.vector_field(Y, K[j], beta[j], "stable", "tanh")
        residual = Y - y - h[j] * np.einsum("il,lmd->imd", A, F)
        assert np.max(np.abs(residual)) < 1e-15 * max(1.0, np.max(np.abs(Y)))


def test_newton_failure_raises():
    A, b, y0, K, beta, h, _ = problem("gauss2", "resnet", "tanh")
    with pytest.raises(RuntimeError, match="did not converge"):
        ref.rk_forward(A, b, y0, K, beta, h, max_iter=1)


def test_complex_forward_extends_real_forward():
    A, b, y0, K, beta, h, _ = problem("gauss2", "resnet", "softplus")
    real = ref.rk_forward(A, b, y0, K, beta, h, "resnet", "softplus")
    cplx = ref.rk_forward(A, b, y0 + 0j, K + 0j, beta + 0j, h + 0j, "resnet", "softplus")
    assert cplx.dtype == np.complex128 and np.all(cplx.imag == 0)
    np.testing.assert_allclose(cplx.real, real, rtol=1e-15, atol=1e-15)


@pytest.mark.parametrize("activation", ref.ACTIVATIONS)
def test_activations_are_stable_and_their_derivatives_right(activation):
    z = np.array([-800.0, -30.0, -1.5, -0.2, 0.3, 2.0, 30.0, 800.0])
    with np.errstate(over="raise", divide="raise", invalid="raise"):
        s = ref.activation_function(z, activation)
        ds = ref.activation_derivative(z, activation)
    assert np.all(np.isfinite(s)) and np.all(np.isfinite(ds))
    eps = 1e-30
    cs = ref.activation_function(z + 1j * eps, activation).imag / eps
    np.testing.assert_allclose(ds, cs, rtol=1e-14, atol=1e-300)
    if activation == "softplus":
        np.testing.assert_allclose(s[-1], 800.0, rtol=1e-15)
        np.testing.assert_allclose(s[3], np.log1p(np.exp(-0.2)), rtol=1e-15)
