"""Numerics of the generated network modules (the golden copies in generated/).

Compiled in-process (conftest.COMPILED: euler, rk4, heun3, kutta3, midpoint, gauss2, sdirk2, radau_iia2),
each once per session:

- the whole gradient (y0, K, beta, h) of J = sum(W * y_N) against central differences, every field
  and activation, steps h = (0.35, 0, -0.25);
- agreement with the independent numpy implementation (tests/reference.py): forward, hand-written
  reverse pass, complex step;
- the xi-form adjoint (the module) against the P form (the partner tableau, rkgen.reference);
- a dot test and a Taylor test;
- Newton: convergence reported on normal inputs, failures reported (never silent) otherwise;
- keep_states, keep_tape=False, and the parallel path against the serial one;
- the contract's input handling and edge sizes.

Every other built-in tableau runs the same generated source with NUMBA_DISABLE_JIT=1 in one
subprocess (tests/nojit_check.py: FD, reference and P-form checks, printed as JSON), started in the
background right after collection (``prestart``, see conftest.py) so that it overlaps with the numba
compilation of the modules above; the tests here parse its JSON and assert.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import reference as ref
from nojit_check import (
    FD_STEP,
    RELU_MARGIN,
    STEPS,
    central_gradient,
    check_module,
    draw_problem,
    loss,
    relative_error,
    relu_margin,
    tableau_floats,
)

from conftest import COMPILED, GENERATED, ROOT, TESTS, Background, golden_module
from rkgen import builtin_names, load

FIELDS = ref.FIELDS
ACTIVATIONS = ref.ACTIVATIONS
IMPLICIT = tuple(n for n in COMPILED if load(n).structure != "explicit")
OTHERS = tuple(n for n in builtin_names() if n not in COMPILED)
M, D = 2, 3  # in-process instances: m samples of width d, N = len(STEPS) layers

FD_TOL = 1e-7  # central differences: truncation and cancellation
EXACT_TOL = 1e-12  # two computations that are both exact to rounding
FORWARD_TOL = 1e-13

CASES = [(n, f, a) for n in COMPILED for f in FIELDS for a in ACTIVATIONS]


def case_id(case):
    return "-".join(case)


@functools.cache
def _measure(name, field, activation):
    return check_module(golden_module(name), name, field, activation, M, D)


def measure(net, field, activation):
    """check_module's numbers for a compiled module (computed once per case)."""
    return _measure(net.NAME, field, activation)


# --------------------------------------------------------------------------------------------------
# the no-JIT subprocess, started early in the background
# --------------------------------------------------------------------------------------------------

NOJIT_TEST = "test_nojit_modules_match_finite_differences_and_reference"
NOJIT_TIMEOUT = 1200
_nojit: dict = {}


def _start_nojit():
    if "job" not in _nojit:
        env = dict(os.environ)
        env["NUMBA_DISABLE_JIT"] = "1"
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        args = [sys.executable, str(TESTS / "nojit_check.py"), *OTHERS]
        _nojit["job"] = Background(args, env=env, cwd=str(ROOT))
    return _nojit["job"]


def prestart(items):
    """Called by conftest after collection: start the no-JIT subprocess at once when its test is
    selected, so that it runs while this process compiles."""
    if any(getattr(item, "originalname", "") == NOJIT_TEST for item in items):
        _start_nojit()


@pytest.fixture(scope="module")
def nojit_results():
    if "result" not in _nojit:
        try:
            code, out, err = _start_nojit().result(timeout=NOJIT_TIMEOUT)
        except subprocess.TimeoutExpired:
            pytest.fail(f"tests/nojit_check.py took more than {NOJIT_TIMEOUT} s")
        assert code == 0, f"tests/nojit_check.py exited with {code}:\n{err[-3000:]}"
        _nojit["result"] = json.loads(out)
    return _nojit["result"]


# --------------------------------------------------------------------------------------------------
# 1. gradient against central differences
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize(("net", "field", "activation"), CASES, indirect=["net"], ids=[case_id(c) for c in CASES])
def test_gradient_matches_central_differences(net, field, activation):
    r = measure(net, field, activation)
    assert r["finite"]
    assert r["fd"] <= FD_TOL, f"relative error {r['fd']:.2e} against central differences"
    # the h_j = 0 layer: no parameter gradient, but a nonzero dJ/dh_j (no division by h)
    assert r["dK_zero_layer"] == 0.0 and r["dh_zero_layer"] != 0.0


def test_problems_have_zero_and_negative_steps_and_relu_margin():
    assert 0.0 in STEPS and min(STEPS) < 0 and max(STEPS) > 0
    A, b = tableau_floats("rk4")
    for field in FIELDS:
        y0, K, beta, h, _ = draw_problem(A, b, M, D, field, "relu")
        # the margin dwarfs what a central difference can move a pre-activation
        assert relu_margin(A, b, y0, K, beta, h, field) > RELU_MARGIN > 100 * FD_STEP


@pytest.mark.numba
def test_finite_differences_detect_a_wrong_gradient(net_rk4):
    """The FD comparison is not vacuous: a gradient off by 1e-5 in one entry fails it."""
    A, b = tableau_floats("rk4")
    y0, K, beta, h, W = draw_problem(A, b, M, D, "resnet", "tanh")
    _, tape = net_rk4.forward(y0, K, beta, h)
    grad = [g.copy() for g in net_rk4.backward(tape, W)]
    fd = central_gradient(lambda x: loss(net_rk4, x, W, "resnet", "tanh"), (y0, K, beta, h))
    assert relative_error(grad, fd) <= FD_TOL
    grad[3][0] += 1e-5 * np.max(np.abs(grad[3]))
    assert relative_error(grad, fd) > 10 * FD_TOL


# --------------------------------------------------------------------------------------------------
# 2. the independent implementation (tests/reference.py)
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize(("net", "field", "activation"), CASES, indirect=["net"], ids=[case_id(c) for c in CASES])
def test_forward_and_gradient_match_reference(net, field, activation):
    r = measure(net, field, activation)
    assert r["forward"] <= FORWARD_TOL, f"forward differs by {r['forward']:.2e}"
    assert r["reverse"] <= EXACT_TOL, f"gradient differs from hand reverse by {r['reverse']:.2e}"


REFERENCE_SET = ("euler", "rk4", "heun3", "kutta3", "midpoint", "gauss2", "sdirk2", "radau_iia2")


@pytest.mark.numba
@pytest.mark.parametrize("net", REFERENCE_SET, indirect=True)
def test_gradient_matches_complex_step(net):
    k = REFERENCE_SET.index(net.NAME)
    field, activation = FIELDS[k % 2], ACTIVATIONS[k % 4]
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, M, D, field, activation, seed=7)
    _, tape = net.forward(y0, K, beta, h, field=field, activation=activation)
    got = net.backward(tape, W)
    want = ref.complex_step_gradient(A, b, y0, K, beta, h, W, field, activation)
    assert relative_error(got, want) <= EXACT_TOL


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2", "sdirk2"], indirect=True)
@pytest.mark.parametrize(("m", "d"), [(1, 1), (70, 2), (5, 5), (9, 8), (3, 17)])
def test_other_sizes_match_reference(net, m, d):
    """Partial sample blocks (m = 70 > 64; m not a multiple of 8), every block size (d <= 4: 64,
    <= 16: 32, else 16), narrow (d < 8) and wide (register-blocked) K products, gradient outer
    products with and without a remainder of rows (d = 8, d = 17)."""
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, m, d, "stable", "softplus", seed=3, scale=0.4)
    yN, tape = net.forward(y0, K, beta, h, field="stable", activation="softplus")
    assert tape.failures == 0
    want = ref.rk_forward(A, b, y0, K, beta, h, "stable", "softplus")
    assert np.max(np.abs(yN - want)) <= FORWARD_TOL * np.max(np.abs(want))
    got = net.backward(tape, W)
    rev = ref.hand_reverse_gradient(A, b, y0, K, beta, h, W, "stable", "softplus")
    assert relative_error(got, rev) <= EXACT_TOL


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "sdirk2"], indirect=True)
@pytest.mark.parametrize("m", [70, 300])
def test_width_two_matches_reference(net, m):
    """Width 2 has loops of its own (K Y + beta in one pass, fused with tanh; the resnet field's
    adjoint stage in one pass). m = 70 is one partial block; m = 300 is a full block of 256 and a
    partial one."""
    A, b = tableau_floats(net.NAME)
    for field in FIELDS:
        for activation in ACTIVATIONS:
            y0, K, beta, h, W = draw_problem(A, b, m, 2, field, activation, seed=5, scale=0.6)
            yN, tape = net.forward(y0, K, beta, h, field=field, activation=activation)
            assert tape.failures == 0
            want = ref.rk_forward(A, b, y0, K, beta, h, field, activation)
            assert np.max(np.abs(yN - want)) <= FORWARD_TOL * np.max(np.abs(want)), (field, activation)
            got = net.backward(tape, W)
            rev = ref.hand_reverse_gradient(A, b, y0, K, beta, h, W, field, activation)
            assert relative_error(got, rev) <= EXACT_TOL, (field, activation)


@pytest.mark.parametrize("net", ["euler", "gauss2"], indirect=True)
def test_relu_derivative_is_zero_at_the_kink(net):
    """Pre-activations exactly 0 everywhere (y0 = 0, beta = 0): relu'(0) = 0 as the contract says,
    so no parameter gradient flows and dJ/dy0 = p."""
    m, d, N = 3, 2, 2
    rng = np.random.default_rng(5)
    K, W = rng.normal(size=(N, d, d)), rng.normal(size=(m, d))
    yN, tape = net.forward(np.zeros((m, d)), K, np.zeros((N, d)), np.array([0.5, -0.3]), activation="relu")
    assert np.all(yN == 0) and tape.failures == 0
    dy0, dK, dbeta, dh = net.backward(tape, W)
    assert np.array_equal(dy0, W) and not dK.any() and not dbeta.any() and not dh.any()


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2", "sdirk2"], indirect=True)
def test_saturated_activations_match_reference(net):
    """Large pre-activations (|K y + beta| up to ~100): tanh, sigmoid and softplus in their tails."""
    A, b = tableau_floats(net.NAME)
    rng = np.random.default_rng(1)
    y0, K, beta = 5 * rng.normal(size=(3, 2)), 8 * rng.normal(size=(2, 2, 2)), rng.normal(size=(2, 2))
    h, W = np.array([0.05, -0.03]), rng.normal(size=(3, 2))
    for activation in ("tanh", "sigmoid", "softplus"):
        for field in FIELDS:
            yN, tape = net.forward(y0, K, beta, h, field, activation)
            assert tape.failures == 0
            want = ref.rk_forward(A, b, y0, K, beta, h, field, activation)
            assert np.max(np.abs(yN - want)) <= FORWARD_TOL * np.max(np.abs(want))
            rev = ref.hand_reverse_gradient(A, b, y0, K, beta, h, W, field, activation)
            assert relative_error(net.backward(tape, W), rev) <= 1e-14


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True)
def test_empty_batch_and_no_layers(net):
    rng = np.random.default_rng(0)
    K, beta = rng.normal(size=(2, 2, 2)), rng.normal(size=(2, 2))
    yN, tape = net.forward(np.zeros((0, 2)), K, beta, np.array([0.2, 0.1]), keep_states=True)
    assert yN.shape == (0, 2) and tape.states.shape == (3, 0, 2) and tape.failures == 0
    dy0, dK, dbeta, dh = net.backward(tape, np.zeros((0, 2)))
    assert dy0.shape == (0, 2) and not dK.any() and not dbeta.any() and not dh.any()
    y0 = rng.normal(size=(3, 2))
    yN, tape = net.forward(y0, np.zeros((0, 2, 2)), np.zeros((0, 2)), np.zeros(0))
    assert np.array_equal(yN, y0)  # no layer: the identity
    dy0, dK, dbeta, dh = net.backward(tape, np.ones((3, 2)))
    assert np.array_equal(dy0, np.ones((3, 2))) and dK.shape == (0, 2, 2) and dh.shape == (0,)


# --------------------------------------------------------------------------------------------------
# 4 (second half). xi form (the module) = P form (partner tableau) wherever every b_i != 0
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize(("net", "field", "activation"), CASES, indirect=["net"], ids=[case_id(c) for c in CASES])
def test_xi_form_equals_p_form(net, field, activation):
    r = measure(net, field, activation)
    if load(net.NAME).zero_weights:
        assert r["pform"] is None  # heun3: b_2 = 0, no partner, no P form
    else:
        assert r["pform"] <= EXACT_TOL, f"xi and P form differ by {r['pform']:.2e}"


# --------------------------------------------------------------------------------------------------
# 3. dot test and Taylor test
# --------------------------------------------------------------------------------------------------


def _direction(rng, y0, K, beta, h):
    return tuple(rng.normal(size=x.shape) for x in (y0, K, beta, h))


@pytest.mark.numba
@pytest.mark.parametrize("net", COMPILED, indirect=True)
@pytest.mark.parametrize("layers", [1, 3])
def test_dot_product(net, layers):
    """<p, J v> = <J^T p, v> for the linearised map (y0, K, beta, h) -> y_N (one layer, or three).

    J v: complex step through the reference forward pass (exact to rounding), and a central
    difference of the module's own forward pass; J^T p: the module's backward pass."""
    A, b = tableau_floats(net.NAME)
    field, activation = ("stable", "tanh") if layers == 1 else ("resnet", "sigmoid")
    steps = STEPS[:layers]
    y0, K, beta, h, p = draw_problem(A, b, M, D, field, activation, seed=11, steps=steps)
    v = _direction(np.random.default_rng(12), y0, K, beta, h)
    _, tape = net.forward(y0, K, beta, h, field=field, activation=activation)
    JTp = net.backward(tape, p)
    rhs = sum(float(np.sum(g * w)) for g, w in zip(JTp, v, strict=True))
    scale = sum(float(np.sum(np.abs(g * w))) for g, w in zip(JTp, v, strict=True))
    eps = 1e-30
    x = [np.asarray(a, dtype=complex) + 1j * eps * w for a, w in zip((y0, K, beta, h), v, strict=True)]
    Jv = ref.rk_forward(A, b, *x, field, activation).imag / eps
    lhs = float(np.sum(p * Jv))
    assert abs(lhs - rhs) <= EXACT_TOL * scale
    delta = 1e-6
    up = net.forward(
        *[a + delta * w for a, w in zip((y0, K, beta, h), v, strict=True)],
        field=field,
        activation=activation,
    )[0]
    down = net.forward(
        *[a - delta * w for a, w in zip((y0, K, beta, h), v, strict=True)],
        field=field,
        activation=activation,
    )[0]
    lhs_fd = float(np.sum(p * (up - down))) / (2 * delta)
    assert abs(lhs_fd - rhs) <= 1e-8 * scale


def _taylor_remainders(net, grad_error=0.0):
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, M, D, "stable", "softplus", seed=21)
    x = (y0, K, beta, h)
    v = _direction(np.random.default_rng(22), *x)
    J0 = loss(net, x, W, "stable", "softplus")
    _, tape = net.forward(*x, field="stable", activation="softplus")
    g = net.backward(tape, W)
    gv = sum(float(np.sum(a * w)) for a, w in zip(g, v, strict=True))
    gv += grad_error * abs(gv)
    eps = 0.05 * 0.5 ** np.arange(10)  # 5e-2 .. 1e-4
    r0, r1 = [], []
    for e in eps:
        Je = loss(net, [a + e * w for a, w in zip(x, v, strict=True)], W, "stable", "softplus")
        r0.append(abs(Je - J0))
        r1.append(abs(Je - J0 - e * gv))
    return eps, np.array(r0), np.array(r1)


@pytest.mark.numba
@pytest.mark.parametrize("net", COMPILED, indirect=True)
def test_taylor_remainder_decays_quadratically(net):
    eps, r0, r1 = _taylor_remainders(net)
    slope0 = np.log2(r0[:-1] / r0[1:])
    slope1 = np.log2(r1[:-1] / r1[1:])
    assert np.all(np.abs(slope0 - 1) < 0.1), slope0
    assert np.all(np.abs(slope1 - 2) < 0.2), slope1
    fit = np.polyfit(np.log(eps), np.log(r1), 1)[0]
    assert abs(fit - 2) < 0.05, fit


@pytest.mark.numba
def test_taylor_test_detects_a_wrong_gradient(net_gauss2):
    """With g.v off by 1 %, the remainder decays with slope 1 at small epsilon: the test fails."""
    eps, _, r1 = _taylor_remainders(net_gauss2, grad_error=0.01)
    slope1 = np.log2(r1[:-1] / r1[1:])
    assert abs(slope1[-1] - 1) < 0.15, slope1


# --------------------------------------------------------------------------------------------------
# 5. Newton
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize(("net", "field", "activation"), CASES, indirect=["net"], ids=[case_id(c) for c in CASES])
def test_newton_reports_convergence(net, field, activation):
    r = measure(net, field, activation)
    assert r["failures"] == 0
    if net.NAME in IMPLICIT:
        assert 1 <= r["iterations"] <= net.NEWTON_MAXITER
    else:
        assert r["iterations"] == 0


@pytest.mark.numba
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_newton_failure_is_reported_for_huge_steps(net_midpoint, activation):
    """h = 1e6 with large weights: Newton for the midpoint stage cannot converge; failures > 0."""
    rng = np.random.default_rng(1)
    y0, K, beta = rng.normal(size=(3, 2)), 30 * rng.normal(size=(1, 2, 2)), rng.normal(size=(1, 2))
    field = "resnet" if activation == "relu" else "stable"
    _, tape = net_midpoint.forward(y0, K, beta, np.array([1e6]), field=field, activation=activation)
    assert tape.failures > 0
    # the same samples with an ordinary step converge
    _, tape = net_midpoint.forward(y0, K, beta, np.array([1e-2]), field=field, activation=activation)
    assert tape.failures == 0 and tape.iterations >= 1


@pytest.mark.numba
@pytest.mark.parametrize("net", ["midpoint", "gauss2", "sdirk2", "radau_iia2"], indirect=True)
@pytest.mark.parametrize("where", ["y0", "K", "h"])
def test_newton_failure_is_reported_for_nan_input(net, where):
    m, d, N = 4, 2, 3
    rng = np.random.default_rng(2)
    y0, K, beta = rng.normal(size=(m, d)), 0.5 * rng.normal(size=(N, d, d)), rng.normal(size=(N, d))
    h = np.array([0.3, 0.2, -0.1])
    if where == "y0":
        y0[1, 0] = np.nan  # one sample: every layer's solve for it fails
        bad = N
    elif where == "K":
        K[2, 0, 1] = np.nan  # the last layer, every sample
        bad = m
    else:
        h[0] = np.nan  # the first layer, every sample (and the NaN then reaches every layer)
        bad = m * N
    for activation in ("tanh", "softplus"):
        _, tape = net.forward(y0, K, beta, h, activation=activation)
        implicit_stages = sum(1 for i in range(net.STAGES) if net.A[i, i] != 0)
        per_solve = implicit_stages if net.STRUCTURE == "diagonally implicit" else 1
        assert tape.failures == bad * per_solve, (tape.failures, bad, per_solve)


# --------------------------------------------------------------------------------------------------
# 6. keep_states and the parallel path
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "sdirk2", "gauss2"], indirect=True)
def test_keep_states(net):
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, _ = draw_problem(A, b, 3, 2, "resnet", "tanh", seed=4)
    yN, tape = net.forward(y0, K, beta, h, keep_states=True)
    N = len(h)
    assert tape.states.shape == (N + 1, 3, 2)
    assert np.array_equal(tape.states[0], y0) and np.array_equal(tape.states[-1], yN)
    for j in range(1, N + 1):  # states[j] is the output of the first j layers
        yj, _ = net.forward(y0, K[:j], beta[:j], h[:j])
        np.testing.assert_array_equal(tape.states[j], yj)
    yN2, tape2 = net.forward(y0, K, beta, h)
    assert tape2.states is None and np.array_equal(yN2, yN)


@pytest.fixture(scope="module")
def wide_problem():
    m, d = 2000, 2
    rng = np.random.default_rng(6)
    y0 = rng.normal(size=(m, d))
    K, beta = 0.7 * rng.normal(size=(3, d, d)), 0.5 * rng.normal(size=(3, d))
    return y0, K, beta, np.array(STEPS), rng.normal(size=(m, d))


@pytest.fixture
def parallel(monkeypatch):
    """Count the calls of a module's parallel kernels; lower its work threshold so that m = 2000
    runs in parallel; ``serial()`` runs a block with numba on one thread (the serial path)."""
    import contextlib

    import numba

    if numba.get_num_threads() < 2:
        pytest.skip("numba runs one thread: no parallel path")
    calls = []

    def spy(net):
        monkeypatch.setattr(net, "PARALLEL_WORK", 0, raising=False)
        for kernel in ("_forward_parallel", "_backward_parallel"):
            real = getattr(net, kernel)

            def wrapper(*args, _real=real, _kernel=kernel):
                calls.append(_kernel)
                return _real(*args)

            monkeypatch.setattr(net, kernel, wrapper)
        return calls

    @contextlib.contextmanager
    def serial():
        threads = numba.get_num_threads()
        numba.set_num_threads(1)
        try:
            yield
        finally:
            numba.set_num_threads(threads)

    return spy, serial


def _close(got, want, tol=1e-13):
    scale = np.max(np.abs(want))
    assert np.max(np.abs(got - want)) <= tol * scale, np.max(np.abs(got - want)) / scale


@pytest.mark.numba
@pytest.mark.parametrize("net", ["gauss2"], indirect=True)
def test_parallel_path_equals_serial(net, wide_problem, parallel, monkeypatch):
    y0, K, beta, h, W = wide_problem
    m, d = y0.shape
    spy, serial = parallel
    calls = spy(net)
    yN, tape = net.forward(y0, K, beta, h, field="stable", activation="tanh", keep_states=True)
    grad = net.backward(tape, W)
    assert calls == ["_forward_parallel", "_backward_parallel"]
    assert tape.failures == 0 and tape.iterations >= 1

    # the serial path: the same blocks on one thread
    with serial():
        yS, tS = net.forward(y0, K, beta, h, field="stable", activation="tanh", keep_states=True)
        gS = net.backward(tS, W)
        yE, tE = net.forward(y0, K, beta, h, field="stable", activation="tanh", keep_tape=False)
    assert len(calls) == 2
    assert (tS.failures, tS.iterations) == (tape.failures, tape.iterations)
    _close(yS, yN)
    _close(tS.states, tape.states)
    for got, want in zip(grad, gS, strict=True):
        _close(got, want)

    # evaluation without a tape, parallel and serial: the same y_N
    yP, tP = net.forward(y0, K, beta, h, field="stable", activation="tanh", keep_tape=False)
    assert calls[-1] == "_forward_parallel" and tP.stages is None and tP.failures == 0
    _close(yP, yN)
    _close(yE, yN)
    with pytest.raises(ValueError, match="keep_tape"):
        net.backward(tP, W)

    # small batches (serial path each): outputs concatenate, parameter gradients add up
    monkeypatch.setattr(net, "PARALLEL_WORK", 10**12)
    outs, grads = [], []
    for idx in np.array_split(np.arange(m), 40):
        y, t = net.forward(y0[idx], K, beta, h, field="stable", activation="tanh")
        outs.append(y)
        grads.append(net.backward(t, W[idx]))
    assert calls.count("_forward_parallel") == 2  # the batches ran serially
    _close(np.concatenate(outs), yN)
    _close(np.concatenate([g[0] for g in grads]), grad[0])
    for k in (1, 2, 3):
        _close(sum(g[k] for g in grads), grad[k])


@pytest.mark.numba
def test_block_layout(net_rk4, monkeypatch):
    """Long blocks for narrow and for wide layers; at least two blocks per thread when the work is split."""
    import numba

    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    layout = net_rk4._layout
    assert layout(5, 16, 100)[:2] == (8, 1)  # 004's batches of 5: one block, serial
    bs, nblocks, bounds = layout(1000, 2, 15)  # 000 example 2: over the threshold
    assert (bs, nblocks) == (256, 4) and bounds.tolist() == [0, 2, 4]
    bs, nblocks, bounds = layout(600, 2, 100)
    assert bs == 152 and nblocks == 4 and bounds.tolist() == [0, 2, 4]
    assert layout(200, 2, 15) == (200, 1, None)  # small work: one block, one thread
    assert layout(1500, 16, 100)[0] == 128  # width 16, a long batch: BLAS on every machine (products._wide)
    assert layout(40, 16, 3)[0] == (40 if net_rk4.WIDE <= 16 else 32)  # a short one (serial): BLAS only on AVX-512
    assert layout(1500, 12, 100)[0] == (128 if net_rk4.LONG_WIDTH <= 12 else 32)  # narrow loops: blocks of 32
    assert layout(1500, 64, 100)[:2] == (128, 12)  # wide layers (BLAS products): long blocks
    assert layout(10, 64, 3) == (16, 1, None)
    monkeypatch.setattr(numba, "get_num_threads", lambda: 1)
    assert layout(1000, 2, 15) == (256, 4, None)
    # layouts are remembered, but a changed threshold is honoured at once for a shape already seen
    monkeypatch.setattr(numba, "get_num_threads", lambda: 2)
    monkeypatch.setattr(net_rk4, "PARALLEL_WORK", 0)
    assert layout(200, 2, 15)[2].tolist() == [0, 2, 4]
    monkeypatch.setattr(net_rk4, "PARALLEL_WORK", 10**12)
    assert layout(1000, 2, 15) == (256, 4, None)


@pytest.mark.numba
def test_parallel_path_counts_failures(net_gauss2, wide_problem, parallel):
    """NaN samples in different chunks: failures add up over chunks, the other samples are
    untouched."""
    y0, K, beta, h, W = wide_problem
    m, d = y0.shape
    spy, _ = parallel
    calls = spy(net_gauss2)
    bad = [3, 1234, 1999]
    y0 = y0.copy()
    y0[bad, 0] = np.nan
    yN, tape = net_gauss2.forward(y0, K, beta, h)
    assert calls == ["_forward_parallel"]
    assert tape.failures == len(bad) * len(h) and tape.iterations >= 1
    good = np.setdiff1d(np.arange(m), bad)
    y_good, t_good = net_gauss2.forward(y0[good], K, beta, h)
    assert t_good.failures == 0
    _close(yN[good], y_good)


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "sdirk2"], indirect=True)
def test_evaluation_without_tape(net):
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, 70, 2, "resnet", "softplus", seed=9)
    yN, tape = net.forward(y0, K, beta, h, "resnet", "softplus")
    yE, tE = net.forward(y0, K, beta, h, "resnet", "softplus", keep_tape=False, keep_states=True)
    np.testing.assert_array_equal(yE, yN)
    assert tE.stages is None and tE.failures == tape.failures
    assert tE.states.shape == (4, 70, 2) and np.array_equal(tE.states[-1], yN)
    with pytest.raises(ValueError, match="keep_tape"):
        net.backward(tE, W)


# --------------------------------------------------------------------------------------------------
# tape memory: recycled only when nothing refers to it
# --------------------------------------------------------------------------------------------------


def _base(tape):
    return tape.stages[0].base


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True)
def test_tape_memory_is_reused_only_when_free(net, monkeypatch):
    monkeypatch.setattr(net, "_POOL", [])
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, 40, 3, "resnet", "tanh", seed=12)
    K2 = K + 0.1
    assert tape_stages_share_one_base(net, y0, K, beta, h)

    # a live tape is never overwritten: its gradient is the same after other forward passes
    _, keep = net.forward(y0, K, beta, h)
    want = [g.copy() for g in net.backward(keep, W)]
    stages = [a.copy() for a in keep.stages]
    for _ in range(net.POOL_BUFFERS + 2):
        y_other, other = net.forward(y0, K2, beta, h)
        assert _base(other) is not _base(keep)
    g_other = [g.copy() for g in net.backward(other, W)]
    for got, w in zip(net.backward(keep, W), want, strict=True):
        np.testing.assert_array_equal(got, w)
    for got, w in zip(keep.stages, stages, strict=True):
        np.testing.assert_array_equal(got, w)
    del got  # the loop variable would hold the stages too

    # a dropped tape's memory is taken by the next pass of the same size, and that pass is right
    del other
    base = id(_base(keep))  # an id: a reference of our own would hold the memory
    del keep
    net._POOL[:] = [p for p in net._POOL if id(p) == base]  # the only free array of its size
    yN, again = net.forward(y0, K2, beta, h)
    assert id(_base(again)) == base
    np.testing.assert_array_equal(yN, y_other)
    for got, w in zip(net.backward(again, W), g_other, strict=True):
        np.testing.assert_array_equal(got, w)

    # a view into the stages holds the memory as firmly as the tape does
    view = again.stages[1][0, 0]
    copy = view.copy()
    base = id(_base(again))
    del again
    for _ in range(net.POOL_BUFFERS + 2):
        _, other = net.forward(y0, K, beta, h)
        assert id(_base(other)) != base
    np.testing.assert_array_equal(view, copy)


def tape_stages_share_one_base(net, y0, K, beta, h):
    _, tape = net.forward(y0, K, beta, h)
    tY, tS = tape.stages
    return tY.base is tS.base and tY.base is not None and tY.base.size == tY.size + tS.size


@pytest.mark.numba
def test_tape_pool_is_bounded(net_rk4, monkeypatch):
    rng = np.random.default_rng(13)
    N, d = 2, 2
    K, beta, h = rng.normal(size=(N, d, d)), rng.normal(size=(N, d)), np.full(N, 0.1)
    monkeypatch.setattr(net_rk4, "_POOL", [])
    tapes = [net_rk4.forward(rng.normal(size=(8 * (k + 1), d)), K, beta, h)[1] for k in range(6)]
    pool = net_rk4._POOL
    assert len(pool) == net_rk4.POOL_BUFFERS  # all held: the newest were not kept
    assert all(any(p is _base(t) for t in tapes) for p in pool)
    del tapes
    net_rk4.forward(rng.normal(size=(100, d)), K, beta, h)  # a new size evicts the oldest free array
    assert len(pool) == net_rk4.POOL_BUFFERS
    # too large to keep
    monkeypatch.setattr(net_rk4, "POOL_BYTES", 1024)
    _, big = net_rk4.forward(rng.normal(size=(200, d)), K, beta, h)
    assert all(p is not _base(big) for p in pool)


# --------------------------------------------------------------------------------------------------
# the contract: input conversion, shapes, inputs left alone
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True)
def test_inputs_are_converted_and_left_unchanged(net):
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, 3, 2, "resnet", "sigmoid", seed=8)
    copies = [x.copy() for x in (y0, K, beta, h, W)]
    yN, tape = net.forward(y0, K, beta, h, "resnet", "sigmoid")
    grad = net.backward(tape, W)
    for x, c in zip((y0, K, beta, h, W), copies, strict=True):
        assert np.array_equal(x, c)
    # lists, Fortran order, a strided view: the same numbers
    strided = np.repeat(beta, 2, axis=1)[:, ::2]
    assert not strided.flags.c_contiguous
    yF, tF = net.forward(y0.tolist(), np.asfortranarray(K), strided, list(h), "resnet", "sigmoid")
    np.testing.assert_array_equal(yF, yN)
    for g1, g2 in zip(net.backward(tF, np.asfortranarray(W)), grad, strict=True):
        np.testing.assert_array_equal(g1, g2)


@pytest.mark.numba
def test_bad_shapes_and_names_raise(net_rk4):
    y0, K, beta, h = np.zeros((2, 3)), np.zeros((2, 3, 3)), np.zeros((2, 3)), np.zeros(2)
    bad = [
        ((np.zeros(3), K, beta, h), "y0"),
        ((y0, np.zeros((2, 3, 2)), beta, h), "K"),
        ((y0, K, np.zeros((3, 3)), h), "beta"),
        ((y0, K, beta, np.zeros(3)), "h"),
    ]
    for args, what in bad:
        with pytest.raises(ValueError, match=what):
            net_rk4.forward(*args)
    with pytest.raises(ValueError, match="field"):
        net_rk4.forward(y0, K, beta, h, field="resnets")
    with pytest.raises(ValueError, match="activation"):
        net_rk4.forward(y0, K, beta, h, activation="elu")
    _, tape = net_rk4.forward(y0, K, beta, h)
    with pytest.raises(ValueError, match="p has shape"):
        net_rk4.backward(tape, np.zeros((3, 2)))


# --------------------------------------------------------------------------------------------------
# every other built-in: the same source without the JIT, in one subprocess
# --------------------------------------------------------------------------------------------------


def test_every_builtin_is_checked_somewhere():
    assert set(COMPILED) <= set(builtin_names())
    assert len(OTHERS) + len(COMPILED) == len(builtin_names()) == 25
    for name in builtin_names():
        assert (GENERATED / f"{name}_net.py").is_file(), name


@pytest.mark.parametrize("name", OTHERS)
def test_nojit_modules_match_finite_differences_and_reference(nojit_results, name):
    assert nojit_results["disable_jit"] is True
    results = nojit_results["results"]
    t = load(name)
    problems = []
    for field in FIELDS:
        for activation in ACTIVATIONS:
            key = f"{name}/{field}/{activation}"
            r = results[key]
            if "error" in r:
                problems.append(f"{key}: {r['error']}")
                continue
            checks = {
                "fd": r["fd"] <= FD_TOL,
                "reverse": r["reverse"] <= EXACT_TOL,
                "forward": r["forward"] <= FORWARD_TOL,
                "pform": (r["pform"] is None) if t.zero_weights else r["pform"] <= EXACT_TOL,
                "failures": r["failures"] == 0,
                "iterations": (r["iterations"] >= 1) == (t.structure != "explicit"),
                "finite": r["finite"],
                "zero step": r["dK_zero_layer"] == 0.0 and r["dh_zero_layer"] != 0.0,
            }
            problems += [f"{key}: {what} {r}" for what, ok in checks.items() if not ok]
    assert not problems, "\n".join(problems)


def test_nojit_run_covers_exactly_the_other_tableaux(nojit_results):
    keys = set(nojit_results["results"])
    assert keys == {f"{n}/{f}/{a}" for n in OTHERS for f in FIELDS for a in ACTIVATIONS}


# --------------------------------------------------------------------------------------------------
# a tape of the layers' inputs: explicit tableaux with the resnet field form Y_2.. again, to the bit
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["rk4", "heun3", "kutta3"], indirect=True)  # kutta3: a stage of two terms
@pytest.mark.parametrize(("m", "d", "dtype"), [(300, 2, np.float64), (70, 16, np.float64), (70, 16, np.float32)])
def test_a_tape_of_layer_inputs_gives_the_whole_tapes_gradient(net, monkeypatch, m, d, dtype):
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = (a.astype(dtype) for a in draw_problem(A, b, m, d, "resnet", "tanh", seed=5))
    yN, short = net.forward(y0, K, beta, h)
    assert short.stages[0].shape[2] == 1 and short.stages[1].shape[2] == net.STAGES
    got = net.backward(short, W)
    _, stable = net.forward(y0, K, beta, h, field="stable")
    assert stable.stages[0].shape[2] == net.STAGES  # the stable field's F is not on the tape: every Y_i is
    monkeypatch.setattr(net, "_tape_inputs", lambda field: net.STAGES)
    yF, whole = net.forward(y0, K, beta, h)
    assert whole.stages[0].shape[2] == net.STAGES
    np.testing.assert_array_equal(yN, yF)
    for g, w in zip(got, net.backward(whole, W), strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("net", ["rk4"], indirect=True)
def test_a_tape_of_layer_inputs_on_the_parallel_path(net, parallel, monkeypatch):
    """The short tape through _forward_parallel and _backward_parallel: each chunk forms its Y_i again in its own
    work array; the gradient is the whole tape's to the bit, and evaluation without a tape gives the same y_N."""
    spy, _ = parallel
    calls = spy(net)
    A, b = tableau_floats(net.NAME)
    y0, K, beta, h, W = draw_problem(A, b, 2000, 3, "resnet", "tanh", seed=9)
    yN, short = net.forward(y0, K, beta, h)
    got = net.backward(short, W)
    yE, _ = net.forward(y0, K, beta, h, keep_tape=False)
    assert calls == ["_forward_parallel", "_backward_parallel", "_forward_parallel"]
    assert short.stages[0].shape[2] == 1
    monkeypatch.setattr(net, "_tape_inputs", lambda field: net.STAGES)
    yF, whole = net.forward(y0, K, beta, h)
    np.testing.assert_array_equal(yN, yF)
    np.testing.assert_array_equal(yE, yF)
    for g, w in zip(got, net.backward(whole, W), strict=True):
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True)
def test_evaluation_without_a_tape_keeps_one_layer(net, monkeypatch):
    """keep_tape=False: each thread's chunk writes every layer's stage values over one layer's slot (the memory of
    a whole tape's layers was allocated, and paged in, for nothing), and y_N is the taped pass's, to the bit."""
    monkeypatch.setattr(net, "_POOL", [])
    A, b = tableau_floats(net.NAME)
    m, d = 300, 3
    y0, K, beta, h, _ = draw_problem(A, b, m, d, "resnet", "tanh", seed=8)
    yN, _ = net.forward(y0, K, beta, h)
    pooled = [id(p) for p in net._POOL]
    empty = np.empty
    sizes = []

    def counted(shape, *args, **kwargs):
        sizes.append(math.prod(shape) if isinstance(shape, tuple) else shape)
        return empty(shape, *args, **kwargs)

    monkeypatch.setattr(net.np, "empty", counted)
    yE, light = net.forward(y0, K, beta, h, keep_tape=False)
    monkeypatch.setattr(net.np, "empty", empty)
    np.testing.assert_array_equal(yE, yN)
    bs, _, bounds = net._layout(m, d, len(h))
    slots = 1 if bounds is None else bounds.shape[0] - 1
    assert light.stages is None and [id(p) for p in net._POOL] == pooled  # nothing taken from the pool, or added
    assert max(sizes) <= max(slots * net.STAGES * d * bs, m * d)  # one layer's activations, or y_N, at most
