"""float32 networks: a float32 y0 runs the generated module in float32, exact to float32 rounding.

What is compared. Every float32 result is checked against two float64 computations *from the same float32-rounded
inputs* (so that the rounding of the inputs, which no float32 computation can avoid, is not counted): the module
itself run in float64, and the independent numpy implementation (tests/reference.py: forward pass and hand-written
reverse pass). Both agree with each other to ~1e-15 (checked here as well, with the float64 suite's tolerances), so
what is left is the float32 arithmetic's own rounding error.

The tolerance, from float32's unit roundoff u = 2**-24 (eps32 / 2, 5.96e-8):

    tol = C * sqrt(n_ops) * u,    relative to the largest entry of the float64 result (each array on its own),

- n_ops, the roundings on the longest chain of operations from the inputs to an output. Forward: per layer and
  stage the d products and sums of K Y, the bias, the activation (evaluated in float64, rounded once) and the
  stage combination, at most d + 4 roundings; so n_fwd = N s (d + 4). Gradients: the forward chain (the backward
  pass reads the stage values), the same length again backwards (K^T G, D * xi and the eta combinations), and the
  sum over the m samples of dK, dbeta and dh: n_grad = 2 n_fwd + m.
- sqrt(n_ops): rounding errors of independent operations add up like a random walk (Higham and Mary, "A new
  approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 41 (2019)); the worst-case bound
  n_ops * u holds too, but is 10-25x looser than anything observed here and would not catch a real loss of
  precision.
- C = 2: the growth of an error carried through the layers, prod_j (1 + |h_j| L) <= 2 for these problems (L the
  Lipschitz constant of the field, |h_j| <= 0.35, |K| ~ 0.6), times the ~1-sigma factor of the random-walk bound.
  Measured errors sit 10-20x below tol (max ~2e-7 relative for the gradients), so a float32 kernel that lost a few
  bits more than rounding explains (or computed anything in float16, or read a stage value rounded twice) fails.

The tape must hold float32 (the computation really ran in float32: a float64 computation rounded at the end would
pass the tolerance too), and every returned array must be float32.
"""

from __future__ import annotations

import numpy as np
import pytest
import reference as ref
from nojit_check import STEPS, draw_problem, relative_error, relu_margin, tableau_floats

U32 = 2.0**-24  # float32 unit roundoff
C = 2.0
EXACT_TOL = 1e-12  # float64 against the reference, as in test_generated_numerics
FORWARD_TOL = 1e-13
EXPLICIT = ["euler", "rk4", "kutta3"]
RELU_MARGIN32 = 1e-4  # far above the float32 forward error (~1e-6 absolute here)
SIZES = [(70, 2), (150, 18)]  # narrow (hand-written loops, width 2's own), wide (BLAS: SGEMM), two blocks


def tolerances(N, s, d, m):
    """(forward, gradient) tolerance: C sqrt(n_ops) u, n_ops as in the module docstring."""
    n_fwd = N * s * (d + 4)
    n_grad = 2 * n_fwd + m
    return C * np.sqrt(n_fwd) * U32, C * np.sqrt(n_grad) * U32


def rel(got, want):
    """max |got - want| / max |want| for one array."""
    return float(np.max(np.abs(got.astype(np.float64) - want)) / np.max(np.abs(want)))


def f32_problem(A, b, m, d, field, activation, seed=5):
    """A problem in float32 and the same numbers widened to float64 (exactly); K scaled with 1/sqrt(d) so that
    |K| stays O(1) at every width. For relu, the first seed whose pre-activations all stay RELU_MARGIN32 away
    from the kink, where float32 and float64 could take different sides."""
    for s in range(seed, seed + 100):
        y0, K, beta, h, W = draw_problem(A, b, m, d, field, "tanh", seed=s, scale=0.6 / np.sqrt(max(d, 2) / 2))
        f32 = tuple(x.astype(np.float32) for x in (y0, K, beta, h, W))
        wide = tuple(x.astype(np.float64) for x in f32)
        if activation != "relu" or relu_margin(A, b, *wide[:4], field) > RELU_MARGIN32:
            return f32, wide
    raise AssertionError("no seed keeps relu away from its kink")


def assert_float32(*arrays):
    for x in arrays:
        assert x.dtype == np.float32, x.dtype


@pytest.mark.numba
@pytest.mark.parametrize("net", EXPLICIT, indirect=True)
@pytest.mark.parametrize(("m", "d"), SIZES)
@pytest.mark.parametrize("field", ref.FIELDS)
def test_float32_matches_float64_and_reference(net, m, d, field):
    A, b = tableau_floats(net.NAME)
    for activation in ref.ACTIVATIONS:
        (y0, K, beta, h, W), wide = f32_problem(A, b, m, d, field, activation)
        tol_fwd, tol_grad = tolerances(len(STEPS), len(b), d, m)
        yN, tape = net.forward(y0, K, beta, h, field, activation)
        grads = net.backward(tape, W)
        assert_float32(yN, *grads, *tape.stages)
        yN64, tape64 = net.forward(*wide[:4], field, activation)
        grads64 = net.backward(tape64, wide[4])
        want = ref.rk_forward(A, b, *wide[:4], field, activation)
        rev = ref.hand_reverse_gradient(A, b, *wide, field, activation)
        # float64 still matches the reference exactly, as before
        assert np.max(np.abs(yN64 - want)) <= FORWARD_TOL * np.max(np.abs(want))
        assert relative_error(grads64, rev) <= EXACT_TOL
        # float32: exact to float32 rounding, against both
        for w in (yN64, want):
            assert rel(yN, w) <= tol_fwd, (activation, rel(yN, w) / U32)
        for name, g, g64, r in zip(("dy0", "dK", "dbeta", "dh"), grads, grads64, rev, strict=True):
            for w in (g64, r):
                assert rel(g, w) <= tol_grad, (activation, name, rel(g, w) / U32)


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4"], indirect=True)
@pytest.mark.parametrize("d", [2, 18])
@pytest.mark.parametrize("params", ["stage", "continuous"])
def test_float32_parameter_layouts(net, d, params):
    """Per-stage and continuous parameters in float32 (continuous: the interpolation is computed in float64 and
    the stage sets rounded once), against the float64 module (checked against the reference in test_param_layouts)
    on the same rounded inputs."""
    m, N, s = 40, 3, 4
    rng = np.random.default_rng(11)
    rows = (N, s) if params == "stage" else (N + 1,)
    y0 = rng.normal(size=(m, d)).astype(np.float32)
    K = (0.5 / np.sqrt(d) * rng.normal(size=rows + (d, d))).astype(np.float32)
    beta = (0.3 * rng.normal(size=rows + (d,))).astype(np.float32)
    h = np.array([0.3, 0.2, 0.25], np.float32)
    W = rng.normal(size=(m, d)).astype(np.float32)
    tol_fwd, tol_grad = tolerances(N, s, d, m)
    yN, tape = net.forward(y0, K, beta, h, "stable", "tanh", params=params)
    grads = net.backward(tape, W)
    assert_float32(yN, *grads)
    yN64, tape64 = net.forward(*(x.astype(np.float64) for x in (y0, K, beta, h)), "stable", "tanh", params=params)
    grads64 = net.backward(tape64, W.astype(np.float64))
    assert [g.shape for g in grads] == [g.shape for g in grads64]
    assert rel(yN, yN64) <= tol_fwd
    for g, g64 in zip(grads, grads64, strict=True):
        assert rel(g, g64) <= tol_grad


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4"], indirect=True)
def test_float32_states_and_evaluation(net):
    """keep_states keeps float32 states (the last is yN); keep_tape=False evaluates to the same yN."""
    A, b = tableau_floats("rk4")
    (y0, K, beta, h, _), _ = f32_problem(A, b, 20, 18, "resnet", "tanh")
    yN, tape = net.forward(y0, K, beta, h, keep_states=True)
    assert tape.states.dtype == np.float32 and tape.states.shape == (len(h) + 1, 20, 18)
    assert np.array_equal(tape.states[0], y0) and np.array_equal(tape.states[-1], yN)
    yN2, tape2 = net.forward(y0, K, beta, h, keep_tape=False)
    assert np.array_equal(yN2, yN) and tape2.stages is None


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4"], indirect=True)
def test_input_dtypes(net):
    """The contract: float32 y0 runs in float32 (other arrays rounded to float32 once, on entry); any other y0
    (float64, float16, integers, a list) runs in float64."""
    rng = np.random.default_rng(2)
    y0 = rng.normal(size=(6, 2))
    K, beta, h, W = 0.5 * rng.normal(size=(2, 2, 2)), rng.normal(size=(2, 2)), np.array([0.2, 0.1]), np.ones((6, 2))
    y32 = y0.astype(np.float32)
    rounded = [x.astype(np.float32) for x in (K, beta, h)]
    yN, tape = net.forward(y32, K, beta, h)  # float64 parameters: rounded to float32
    yR, tapeR = net.forward(y32, *rounded)
    assert yN.dtype == np.float32 and np.array_equal(yN, yR)
    for g, gR in zip(net.backward(tape, W), net.backward(tapeR, W.astype(np.float32)), strict=True):
        assert g.dtype == np.float32 and np.array_equal(g, gR)
    for other in (y0.astype(np.float16), np.round(3 * y0).astype(np.int64), y0.tolist(), y0):
        yN, tape = net.forward(other, *rounded)  # float32 parameters widened for a float64 run
        assert yN.dtype == np.float64 and tape.stages[0].dtype == np.float64
        want, _ = net.forward(np.asarray(other, dtype=np.float64), *(x.astype(np.float64) for x in rounded))
        assert np.array_equal(yN, want)
        assert all(g.dtype == np.float64 for g in net.backward(tape, W.astype(np.float32)))


@pytest.mark.numba
@pytest.mark.parametrize("net", ["gauss2", "sdirk2"], indirect=True)
def test_float32_implicit_runs_in_float64(net):
    """Implicit tableaux take float32 input and return float32, computed in float64 (their stage solves are
    float64 only): the results are the float64 ones, rounded once."""
    rng = np.random.default_rng(4)
    y0 = rng.normal(size=(9, 3)).astype(np.float32)
    K = (0.5 * rng.normal(size=(2, 3, 3))).astype(np.float32)
    beta = rng.normal(size=(2, 3)).astype(np.float32)
    h, W = np.array([0.3, -0.2], np.float32), rng.normal(size=(9, 3)).astype(np.float32)
    yN, tape = net.forward(y0, K, beta, h, "stable", "tanh", keep_states=True)
    assert tape.failures == 0
    grads = net.backward(tape, W)
    assert_float32(yN, tape.states, *grads)
    widen = [x.astype(np.float64) for x in (y0, K, beta, h)]
    yN64, tape64 = net.forward(*widen, "stable", "tanh", keep_states=True)
    assert np.array_equal(yN, yN64.astype(np.float32))
    assert np.array_equal(tape.states, tape64.states.astype(np.float32))
    for g, g64 in zip(grads, net.backward(tape64, W.astype(np.float64)), strict=True):
        assert np.array_equal(g, g64.astype(np.float32))


@pytest.mark.numba
@pytest.mark.parametrize("net", ["rk4"], indirect=True)
@pytest.mark.parametrize("field", ref.FIELDS)
def test_long_wide_blocks(net, field, monkeypatch):
    """Layers of d >= 128 run in blocks of d columns (layout._block_size; 128 below): d = 136 with 300 samples,
    serial, is two blocks of 136 columns and one of 28 samples padded to 136. float64 against the reference,
    float32 within its rounding of both (the tolerances above)."""
    monkeypatch.setattr(net, "PARALLEL_WORK", 10**18)  # one thread's layout on any machine
    m, d = 300, 136
    A, b = tableau_floats("rk4")
    (y0, K, beta, h, W), wide = f32_problem(A, b, m, d, field, "tanh")
    yN64, tape64 = net.forward(*wide[:4], field, "tanh")
    assert tape64.block == d and tape64.stages[0].shape[0] == 3
    grads64 = net.backward(tape64, wide[4])
    want = ref.rk_forward(A, b, *wide[:4], field, "tanh")
    rev = ref.hand_reverse_gradient(A, b, *wide, field, "tanh")
    assert np.max(np.abs(yN64 - want)) <= FORWARD_TOL * np.max(np.abs(want))
    assert relative_error(grads64, rev) <= EXACT_TOL
    yN, tape = net.forward(y0, K, beta, h, field, "tanh")
    grads = net.backward(tape, W)
    assert tape.block == d
    assert_float32(yN, *grads, *tape.stages)
    tol_fwd, tol_grad = tolerances(len(STEPS), len(b), d, m)
    assert rel(yN, want) <= tol_fwd
    for g, r in zip(grads, rev, strict=True):
        assert rel(g, r) <= tol_grad


@pytest.mark.slow  # compiles the parallel kernels for float32 (tens of seconds)
@pytest.mark.numba
@pytest.mark.parametrize("net", ["euler"], indirect=True)
def test_float32_parallel_path(net, monkeypatch):
    """The parallel kernels in float32 (work split over threads, per-thread float64 gradient sums): the same yN
    as the serial path, bit for bit, and gradients within float32 rounding of the float64 ones."""
    import numba

    if numba.get_num_threads() < 2:
        pytest.skip("numba runs one thread: no parallel path")
    A, b = tableau_floats("euler")
    (y0, K, beta, h, W), wide = f32_problem(A, b, 2000, 2, "resnet", "tanh")
    serial, _ = net.forward(y0, K, beta, h)
    monkeypatch.setattr(net, "PARALLEL_WORK", 0)
    calls = []
    real = net._forward_parallel

    def spy(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(net, "_forward_parallel", spy)
    yN, tape = net.forward(y0, K, beta, h)
    assert calls and np.array_equal(yN, serial)
    grads = net.backward(tape, W)
    assert_float32(*grads)
    _, tol_grad = tolerances(len(STEPS), 1, 2, 2000)
    yN64, tape64 = net.forward(*wide[:4])
    for g, g64 in zip(grads, net.backward(tape64, wide[4]), strict=True):
        assert rel(g, g64) <= tol_grad


# --------------------------------------------------------------------------------------------------
# the trainer's --dtype
# --------------------------------------------------------------------------------------------------


@pytest.mark.numba
def test_float32_training_follows_float64(net_rk4, tmp_path):
    """A float32 run trains (the loss falls), keeps everything in float32, and its loss curve follows the float64
    run of the same seed: plain gradient descent takes the same path, apart by rounding that grows slowly
    (measured after 20 iterations: losses 3e-8 relative apart, parameters 5e-8; the bound, 2e-6, is ~30 float32
    unit roundoffs, and far below the 30% the loss falls)."""
    from rkgen.train import train

    common = dict(tableau="rk4", network=net_rk4, dataset="spiral", samples=80, layers=4, width=18,
                  optimizer="gd", lr=0.5, iterations=20, eval_every=2, plots=False)
    f64 = train(out=False, **common)
    f32 = train(out=str(tmp_path / "f32"), dtype="float32", **common)
    assert f32.status == "completed" and f32.config.dtype == "float32"
    assert f32.flat.dtype == np.float32 and all(v.dtype == np.float32 for v in f32.params.values())
    loss32, loss64 = f32.history["train_loss"], f64.history["train_loss"]
    assert loss32[-1] < 0.95 * loss32[0]
    assert np.max(np.abs(loss32 - loss64) / loss64) <= 2e-6
    assert 0 < np.max(np.abs(f32.flat - f64.flat)) <= 2e-6 * np.max(np.abs(f64.flat))


@pytest.mark.numba
def test_float32_run_resumes_in_float32(net_rk4, tmp_path):
    """An interrupted float32 adam run resumes in float32 (parameters and moments read back as float32) and ends
    where the uninterrupted run ends, bit for bit; --dtype cannot be changed on resume."""
    from rkgen.errors import RkgenError
    from rkgen.train import train

    common = dict(tableau="rk4", network=net_rk4, dataset="spiral", samples=40, layers=3, optimizer="adam",
                  epochs=2, batch_size=7, plots=False, dtype="float32")
    whole = train(out=str(tmp_path / "whole"), **common)
    part = train(out=str(tmp_path / "part"), interrupt_at=5, **common)
    assert part.status == "interrupted"
    done = train(resume=tmp_path / "part", network=net_rk4)
    assert done.config.dtype == "float32" and done.flat.dtype == np.float32
    assert np.array_equal(done.flat, whole.flat)
    with pytest.raises(RkgenError, match="only --iterations"):
        train(resume=tmp_path / "part", network=net_rk4, dtype="float64")


def test_dtype_option():
    """--dtype: float64 by default, float32 on request, anything else refused; --help says when float32 helps."""
    from rkgen.errors import RkgenError
    from rkgen.train import TrainConfig, cli

    assert TrainConfig().resolved().dtype == "float64"
    assert TrainConfig(dtype="float32").resolved().dtype == "float32"
    with pytest.raises(RkgenError, match="unknown dtype"):
        TrainConfig(dtype="float16").resolved()
    import argparse

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    text = " ".join(parser.format_help().split())
    assert "--dtype" in text and "wide layers" in text and "6e-8" in text


# --------------------------------------------------------------------------------------------------
# the float32 activation loops: accuracy and vectorisation
# --------------------------------------------------------------------------------------------------


def _tanh32_loop():
    import rkgen.runtime.activations as act

    Z = np.random.default_rng(0).normal(size=(3, 64)).astype(np.float32)
    S = np.empty_like(Z)
    act._activate_shifted(Z, np.zeros(3, np.float32), S, 0, 3, 64)
    return act._activate_shifted


def test_float32_tanh_accuracy_and_special_values():
    """Compiled for float32, _tanh computes in float32 (rkgen/runtime/fastmath.py): max relative error 1.7e-7
    measured (about 1.5 float32 ulp), bounded here by 2.5e-7; signs, infinities, NaN, tiny and huge inputs."""
    loop = _tanh32_loop()
    rng = np.random.default_rng(3)
    x = np.concatenate([np.exp(rng.uniform(np.log(1e-30), np.log(20.0), 10**5)) * rng.choice([-1.0, 1.0], 10**5),
                        rng.uniform(-10.0, 10.0, 10**5)]).astype(np.float32)
    out = np.empty_like(x)[None]
    loop(x[None], np.zeros(1, np.float32), out, 0, 1, x.size)
    want = np.tanh(x.astype(np.float64))
    assert out.dtype == np.float32
    assert np.max(np.abs(out[0] - want) / np.abs(want)) <= 2.5e-7
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-38, 9.9, 10.0, 3e38], np.float32)
    got = np.empty_like(special)[None]
    loop(special[None], np.zeros(1, np.float32), got, 0, 1, special.size)
    assert np.array_equal(got[0], np.tanh(special), equal_nan=True) or np.allclose(
        got[0], np.tanh(special), rtol=2.5e-7, atol=0.0, equal_nan=True)
    assert got[0, 5] == special[5] and got[0, 6] == special[6]  # tanh(x) = x for tiny x


def test_float32_activation_loop_vectorises():
    """A loop of _tanh over float32 arrays (as in the activation passes) runs 8 float32 lanes (AVX2) without
    widening to float64: no float64 constant may promote it. (A fresh, uncached loop: the IR of a kernel loaded
    from numba's cache is not kept.)"""
    import re

    from numba import njit

    import rkgen.runtime.fastmath as fm

    @njit(error_model="numpy")
    def loop(x, out):
        for i in range(x.size):
            out[i] = fm._tanh(x[i])

    x = np.linspace(-3, 3, 64, dtype=np.float32)
    loop(x, np.empty_like(x))
    ir = loop.inspect_llvm(loop.signatures[0])
    body = ir[ir.index("define") : ir.index("define", ir.index("define") + 1)]
    assert re.search(r"fdiv (?:[a-z]+ )*<8 x float>", body), "the float32 tanh loop did not vectorise"
    assert not re.search(r"fpext <\d+ x float>", body), "the float32 tanh loop widens to float64"
