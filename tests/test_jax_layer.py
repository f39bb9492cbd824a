"""rkgen.jax: rk_block, a jax.custom_vjp function whose backward is the generated module's exact adjoint.

The golden modules the pytest session already compiles serve every test (tests/conftest.py). Each test runs with x64 on
(float64) unless it says otherwise.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

jax = pytest.importorskip("jax")

import jax.numpy as jnp  # noqa: E402
from jax.test_util import check_grads  # noqa: E402

try:
    from jax import enable_x64  # noqa: E402
except ImportError:  # older JAX
    from jax.experimental import enable_x64  # noqa: E402

from rkgen import jax as rj  # noqa: E402
from rkgen.layers import SolveFailure  # noqa: E402

pytestmark = pytest.mark.numba


@pytest.fixture(autouse=True)
def x64():
    with enable_x64(True):
        yield


def _setup(net, d=2, N=2, m=3, **kw):
    block = rj.RKBlock(net, d, N, **kw)
    params = block.init(jax.random.key(0))
    x = jax.random.normal(jax.random.key(1), (m, d))
    return block, params, x


@pytest.mark.parametrize(
    "net", ["rk4", "heun3", "sdirk2", "gauss2"], indirect=True, ids=["explicit", "zero-weight", "dirk", "implicit"]
)
def test_check_grads_under_jit(net):
    block, p, x = _setup(net, step=0.3, field="stable")
    f = jax.jit(lambda x, K, beta, h: rj.rk_block(block.spec, x, K, beta, h))
    check_grads(f, (x, p["K"], p["beta"], p["h"]), order=1, modes=["rev"])


def test_check_grads_tied(net_rk4):
    """One K and beta for every layer: finite differences against the summed adjoint, under jit and vmap's folding."""
    block, p, x = _setup(net_rk4, params="tied", N=3)
    assert p["K"].shape == (2, 2) and p["beta"].shape == (2,)
    f = jax.jit(lambda x, K, beta, h: rj.rk_block(block.spec, x, K, beta, h))
    check_grads(f, (x, p["K"], p["beta"], p["h"]), order=1, modes=["rev"])
    batched = jax.vmap(lambda x: block(p, x))(jnp.stack([x, 2 * x]))
    np.testing.assert_array_equal(batched[1], block(p, 2 * x))


def test_check_grads_continuous(net_rk4):
    block, p, x = _setup(net_rk4, params="continuous")
    h = jnp.array([0.37, 0.55])  # stage times off the nodes (0, 1/2, 1), where the interpolation has its kinks
    check_grads(lambda x, K, beta, h: rj.rk_block(block.spec, x, K, beta, h), (x, p["K"], p["beta"], h), 1,
                modes=["rev"])


def test_gradient_is_the_module_adjoint(net_gauss2):
    block, p, x = _setup(net_gauss2, d=3, N=3, m=5)
    w = jax.random.normal(jax.random.key(2), (5, 3))
    grads = jax.jit(jax.grad(lambda x, q: jnp.sum(block(q, x) * w), argnums=(0, 1)))(x, p)
    _, tape = net_gauss2.forward(np.asarray(x), np.asarray(p["K"]), np.asarray(p["beta"]), np.asarray(p["h"]))
    dy0, dK, dbeta, dh = net_gauss2.backward(tape, np.asarray(w))
    np.testing.assert_array_equal(grads[0], dy0)
    for key, want in (("K", dK), ("beta", dbeta), ("h", dh)):
        np.testing.assert_array_equal(grads[1][key], want)


@pytest.mark.parametrize("params", ["shared", "tied"])
def test_a_lost_tape_is_recomputed(net_sdirk2, params):
    """A VJP pulled back twice, or after its tape was dropped, gives the same gradient from a new forward pass."""
    block, p, x = _setup(net_sdirk2, params=params)
    y, vjp = jax.vjp(lambda q: block(q, x), p)
    ct = jnp.ones_like(y)
    before = dict(rj._STATS)
    first = vjp(ct)[0]
    again = vjp(ct)[0]
    assert rj._STATS["used"] == before["used"] + 1 and rj._STATS["recomputed"] == before["recomputed"] + 1
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])


@pytest.mark.parametrize("params", ["shared", "tied"])
def test_vmap(net_rk4, params):
    """vmap folds a batch of inputs into the samples, runs batched parameters one call each (tied: K (B, d, d)), and
    gives per-example gradients under vmap(grad)."""
    block, p, x = _setup(net_rk4, m=3, params=params)
    xb = jax.random.normal(jax.random.key(3), (4, 3, 2))
    one = jnp.stack([block(p, xi) for xi in xb])
    np.testing.assert_array_equal(jax.jit(jax.vmap(lambda xi: block(p, xi)))(xb), one)  # folded into the samples
    pb = jax.vmap(block.init)(jax.random.split(jax.random.key(4), 3))  # batched parameters: one call each
    want = jnp.stack([block(jax.tree.map(lambda a, i=i: a[i], pb), x) for i in range(3)])
    np.testing.assert_array_equal(jax.vmap(lambda q: block(q, x))(pb), want)
    # per-example gradients (vmap of grad) and the gradient of a vmapped loss (grad of vmap)
    per = jax.vmap(jax.grad(lambda q, xi: block(q, xi[None]).sum()), in_axes=(None, 0))(p, x)
    for i in range(3):
        np.testing.assert_array_equal(per["K"][i], jax.grad(lambda q, i=i: block(q, x[i : i + 1]).sum())(p)["K"])
    total = jax.grad(lambda q: jax.vmap(lambda xi: block(q, xi))(xb).sum())(p)
    folded = jax.grad(lambda q: block(q, xb.reshape(-1, 2)).sum())(p)
    np.testing.assert_allclose(total["K"], folded["K"], rtol=1e-13, atol=1e-14)


U32 = 2.0**-24  # float32's unit roundoff (eps32 / 2)


def f32_tolerances(N, s, d, m, K, h):
    """(forward, gradient) tolerances of a float32 block against the float64 block on the same float32 inputs,
    relative to the largest entry of each float64 array: C sqrt(n_ops) u (the derivation is in
    tests/test_float32.py and tests/test_torch_layer.py's f32_tolerances): n_fwd = N s (d + 4) roundings on the
    longest forward chain, n_grad = 2 n_fwd + m, random-walk accumulation (sqrt), and
    C = prod_j (1 + |h_j| ||K_j||_2), the growth of an error carried through the layers (tanh' <= 1)."""
    C = float(np.prod([1.0 + abs(hj) * np.linalg.norm(Kj, 2) for Kj, hj in zip(K, h, strict=True)]))
    n_fwd = N * s * (d + 4)
    return C * np.sqrt(n_fwd) * U32, C * np.sqrt(2 * n_fwd + m) * U32


def _rel(got, want):
    got, want = np.asarray(got, np.float64), np.asarray(want)
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("ffi", [True, False], ids=["ffi", "callbacks"])
@pytest.mark.parametrize("d", [3, 18], ids=["narrow", "wide"])
def test_float32_without_x64(net_rk4, d, ffi, monkeypatch):
    """With x64 off the block runs the float32 kernels (its tape holds float32) and agrees with the float64 block
    on the same float32-rounded numbers within float32 rounding; output and gradients are float32. Through the
    module's XLA handlers (the tape an XLA residual, no float64 array in the step) and through callbacks (the tape
    kept on the Python side)."""
    monkeypatch.setattr(rj, "USE_FFI", ffi)
    m, N = 20, 3
    with enable_x64(False):
        block = rj.RKBlock(net_rk4, d, N)
        p = block.init(jax.random.key(0))
        x = jax.random.normal(jax.random.key(1), (m, d))
        w = jax.random.normal(jax.random.key(2), (m, d))
        assert p["K"].dtype == x.dtype == jnp.float32
        y, vjp = jax.vjp(lambda q, x: block(q, x), p, x)
        if ffi:
            text = str(jax.make_jaxpr(lambda q, x: jax.vjp(block, q, x)[0])(p, x))
            assert "rkgen_" in text and "f64" not in text
        else:
            assert rj._last_tape().stages[0].dtype == np.float32
        assert y.dtype == jnp.float32
        g, gx = jax.jit(jax.grad(lambda q, x: jnp.sum(block(q, x) * w), argnums=(0, 1)))(p, x)
        assert g["K"].dtype == g["h"].dtype == gx.dtype == jnp.float32
    p64 = {k: jnp.asarray(np.asarray(v, np.float64)) for k, v in p.items()}  # the same numbers, widened exactly
    x64, w64 = (jnp.asarray(np.asarray(a, np.float64)) for a in (x, w))
    y64 = block(p64, x64)
    g64, gx64 = jax.grad(lambda q, x: jnp.sum(block(q, x) * w64), argnums=(0, 1))(p64, x64)
    tol_fwd, tol_grad = f32_tolerances(N, 4, d, m, np.asarray(p64["K"]), np.asarray(p64["h"]))
    assert _rel(y, y64) <= tol_fwd
    assert _rel(gx, gx64) <= tol_grad
    for key in ("K", "beta", "h"):
        assert _rel(g[key], g64[key]) <= tol_grad, key


def test_pure_callback_path(net_sdirk2, monkeypatch):
    """Without jax.experimental.buffer_callback (older JAX) the block runs through jax.pure_callback: the same
    output and gradients, bit for bit, under jit, and the folded vmap."""
    block, p, x = _setup(net_sdirk2, m=4)
    xb = jax.random.normal(jax.random.key(3), (2, 4, 2))

    def results():
        y = jax.jit(lambda q: block(q, x))(p)
        g = jax.jit(jax.grad(lambda q, x: jnp.sum(block(q, x) ** 2), argnums=(0, 1)))(p, x)
        return y, g, jax.vmap(lambda xi: block(p, xi))(xb)

    want = results()
    monkeypatch.setattr(rj, "USE_BUFFER_CALLBACK", not rj.USE_BUFFER_CALLBACK)
    got = results()
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_array_equal(a, b)


def test_eager_calls_compile_once(net_rk4, caplog):
    """Each block's callbacks are made once, so a second eager call (no jit) reuses what JAX compiled for the first
    (before, every eager call compiled its callback again: 20 ms a call instead of 1-2 ms)."""
    import logging

    block, p, x = _setup(net_rk4)
    grad = jax.grad(lambda q: jnp.sum(block(q, x) ** 2))
    block(p, x), grad(p)  # the first calls compile
    with jax.log_compiles(True), caplog.at_level(logging.DEBUG):
        caplog.clear()
        block(p, x), grad(p)
        compiled = [r.getMessage() for r in caplog.records if "ompil" in r.getMessage()]
    assert compiled == []


def test_solve_failure_raises(net_gauss2):
    block, p, x = _setup(net_gauss2, step=50.0)
    p["K"] = jnp.array([[[40.0, -90.0], [90.0, 40.0]]] * 2)
    x = jnp.full((2, 2), 3.0)
    with pytest.raises(Exception, match="did not converge") as info:
        jax.jit(jax.grad(lambda q: block(q, x).sum()))(p)
    assert info.type is SolveFailure or "SolveFailure" in str(info.value) or "converge" in str(info.value)


def test_shapes_checked(net_rk4):
    block, p, x = _setup(net_rk4)
    with pytest.raises(ValueError, match="expected"):
        rj.rk_block(block.spec, x, p["K"][:1], p["beta"], p["h"])
    assert block(p, x.reshape(3, 1, 2)).shape == (3, 1, 2)
    assert hash(block) == hash(rj.RKBlock(net_rk4, 2, 2)) and block == rj.RKBlock(net_rk4, 2, 2)


@pytest.mark.slow  # a subprocess that imports torch or jax and trains: 30-60 s
def test_example_jax_digits():
    """The example at its smallest, with a golden module as the user's tableau (its kernels are the test session's)."""
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, str(root / "examples" / "jax_digits.py"), "--quick", "--compare", "",
           "--tableau", str(root / "generated" / "kutta3_net.py")]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {line[:22].strip(): line[22:].split() for line in out.stdout.splitlines()[2:]}
    assert set(rows) == {"RK kutta3_net", "MLP"}
    assert int(rows["RK kutta3_net"][0]) == int(rows["MLP"][0]) == 64 * 65 + 3 * 64 * 65 + 10 * 65
    assert float(rows["RK kutta3_net"][2]) > 0.5  # one epoch on 300 images: far above chance (0.1)


def test_agrees_with_rkgen_trainer(net_rk4):
    """Five full-batch gradient steps of rkgen's trainer (odenet: K, beta, h and the classifier learned) and of
    jax.grad with the same update, from the same initial parameters, agree to rounding."""
    from rkgen.train import train

    kw = dict(tableau="rk4", model="odenet", dataset="spiral", samples=40, layers=3, loss="cross-entropy",
              optimizer="gd", lr=0.5, out=False, plots=False, progress=False)
    start = train(network=net_rk4, iterations=0, **kw)
    end = train(network=net_rk4, iterations=5, **kw)
    x, c = jnp.asarray(start.dataset.x_train), jnp.asarray(start.dataset.c_train)
    block = rj.RKBlock(net_rk4, x.shape[1], 3)

    def loss(p):
        z = block(p, x) @ p["W"].T + p["mu"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), c[:, None], axis=1))

    step = jax.jit(lambda p: jax.tree.map(lambda a, g: a - 0.5 * g, p, jax.grad(loss)(p)))
    p = {k: jnp.asarray(start.params[k]) for k in ("K", "beta", "h", "W", "mu")}
    for _ in range(5):
        p = step(p)
    for key in p:
        np.testing.assert_allclose(p[key], end.params[key], rtol=1e-12, atol=1e-13)


def _ffi_and_callbacks(block, p, x, w, monkeypatch):
    """(jaxpr text, results) of a jit gradient step through the module's XLA FFI handlers and through host
    callbacks."""
    out = {}
    for ffi in (True, False):
        monkeypatch.setattr(rj, "USE_FFI", ffi)
        step = jax.jit(jax.value_and_grad(lambda q, x: jnp.sum(block(q, x) * w), argnums=(0, 1)))
        out[ffi] = str(jax.make_jaxpr(step)(p, x)), jax.tree.leaves(step(p, x))
    return out


@pytest.fixture
def one_thread():
    """numba on one thread for the test (a call the module would split across threads goes through callbacks)."""
    import numba

    before = numba.get_num_threads()
    numba.set_num_threads(1)
    yield
    numba.set_num_threads(before)


@pytest.mark.parametrize("params", ["shared", "stage", "tied"])
@pytest.mark.parametrize("d", [3, 18], ids=["narrow", "wide"])
@pytest.mark.parametrize("x64", [True, False], ids=["float64", "float32"])
def test_ffi_matches_callbacks(net_rk4, params, d, x64, monkeypatch, one_thread):
    """A differentiated call of an explicit tableau runs as two XLA custom calls of the module's own handlers
    (rkgen.runtime.xla, the tape an XLA residual): the same value and gradients as the host callbacks, bit for bit,
    in every parameter layout (tied: the layers' float32 gradients summed in float64 as rkgen.layers sums them),
    narrow and wide (BLAS) layers, float64 and float32, over several sample blocks, the last one partial."""
    with enable_x64(x64):
        block, p, x = _setup(net_rk4, d=d, N=3, m=300, params=params)
        w = jax.random.normal(jax.random.key(5), x.shape, x.dtype)
        plan = net_rk4.xla_plan(300, d, 3, "resnet", "tanh", block.spec.module_params, x.dtype)
        assert plan["plan"][3] > 1 and 300 % plan["plan"][2] != 0  # several blocks, the last one partial
        out = _ffi_and_callbacks(block, p, x, w, monkeypatch)
    assert "rkgen_" in out[True][0] and "rkgen_" not in out[False][0]  # the FFI targets' names
    assert out[True][1][0].dtype == (np.float64 if x64 else np.float32)
    for a, b in zip(out[True][1], out[False][1], strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "net, field, activation",
    [("euler", "resnet", "relu"), ("heun3", "stable", "tanh"), ("kutta3", "resnet", "softplus"),
     ("rk4", "stable", "sigmoid")],
    indirect=["net"],
)
def test_ffi_matches_callbacks_other_tableaux(net, field, activation, monkeypatch, one_thread):
    """One stage (euler), a zero weight (heun3), a stage of two terms (kutta3), the stable field (whose tape keeps
    every stage value) and the other activations: the handlers' gradients equal the callbacks', bit for bit."""
    block, p, x = _setup(net, d=5, N=4, m=70, field=field, activation=activation)
    w = jax.random.normal(jax.random.key(6), x.shape)
    out = _ffi_and_callbacks(block, p, x, w, monkeypatch)
    assert "rkgen_" in out[True][0]
    for a, b in zip(out[True][1], out[False][1], strict=True):
        np.testing.assert_array_equal(a, b)


def test_ffi_rejects_a_call_that_does_not_match_its_plan(net_rk4, one_thread):
    """A handler checks its buffers against the plan before any kernel runs and answers a mismatch with an XLA
    error, which JAX raises (here the forward target called with a tape one block short)."""
    block, p, x = _setup(net_rk4, d=3, N=2, m=300)
    plan = rj._xla_plan(block.spec, x.shape, x.dtype)
    (nb, N, i, d, bs), shape_S = plan["tape"]
    outs = (jax.ShapeDtypeStruct(x.shape, x.dtype), jax.ShapeDtypeStruct((nb - 1, N, i, d, bs), x.dtype),
            jax.ShapeDtypeStruct((nb - 1,) + shape_S[1:], x.dtype))
    call = jax.ffi.ffi_call(plan["names"][0], outs)
    with pytest.raises(Exception, match="do not match the plan"):
        jax.block_until_ready(call(x, p["K"], p["beta"], p["h"], jnp.asarray(plan["rows"]), jnp.asarray(plan["plan"])))
    good = jax.ffi.ffi_call(plan["names"][0], (outs[0], *(jax.ShapeDtypeStruct(t, x.dtype) for t in plan["tape"])))
    y = good(x, p["K"], p["beta"], p["h"], jnp.asarray(plan["rows"]), jnp.asarray(plan["plan"]))[0]
    np.testing.assert_array_equal(y, block(p, x))


def test_ffi_needs_a_jaxlib_of_its_api(net_rk4, monkeypatch, one_thread):
    """The handlers read XLA's call frame by the layout of FFI API 0.3: a jaxlib of an older API (or another
    major version) gets the callbacks."""
    block, p, x = _setup(net_rk4)
    assert rj._jaxlib_ffi_api() >= (0, 3) and net_rk4.XLA_FFI_API == (0, 3)
    def traced():  # a new function each time: JAX reuses the trace of one it has seen
        return str(jax.make_jaxpr(jax.grad(lambda q: jnp.sum(block(q, x) ** 2)))(p))

    assert "rkgen_" in traced()
    for version in ((0, 2), (1, 3)):
        monkeypatch.setattr(rj, "_jaxlib_ffi_api", lambda version=version: version)
        assert "rkgen_" not in traced(), version


def test_ffi_only_for_serial_layouts(net_rk4):
    """XLA runs the handlers on a thread of its own, where numba's parallel regions ran at half speed and slowed the
    process's later ones (rkgen.runtime.xla.xla_plan): a call the module would split across two threads goes
    through the callbacks (which run the parallel kernels as forward does); on one thread, through the handlers."""
    import numba

    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.fail("this test needs numba with two threads (NUMBA_NUM_THREADS >= 2)")
    block, p, x = _setup(net_rk4, d=16, N=8, m=1000)
    traced = {}
    before = numba.get_num_threads()
    try:
        for threads in (1, 2):
            numba.set_num_threads(threads)
            grad = jax.grad(lambda q: jnp.sum(block(q, x) ** 2))
            traced[threads] = "rkgen_" in str(jax.make_jaxpr(grad)(p)), grad(p)
    finally:
        numba.set_num_threads(before)
    assert traced[1][0] and not traced[2][0]
    for a, b in zip(jax.tree.leaves(traced[1][1]), jax.tree.leaves(traced[2][1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-13)  # two threads sum dK in another order: to rounding


def test_implicit_and_continuous_use_callbacks(net_sdirk2, net_rk4):
    """An implicit tableau's stage solves can fail, which a handler could not raise as a Python error, and the
    continuous layout interpolates in Python: both run through host callbacks (no module handler is traced)."""
    for net, params in ((net_sdirk2, "shared"), (net_rk4, "continuous")):
        block, p, x = _setup(net, params=params)
        text = str(jax.make_jaxpr(jax.grad(lambda q, b=block, x=x: jnp.sum(b(q, x))))(p))
        assert "rkgen_" not in text, (net.NAME, params)
    assert net_sdirk2.__dict__.get("xla_plan") is None
