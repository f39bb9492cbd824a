"""rkgen.torch: RKBlock, a PyTorch layer whose gradient is the generated module's exact adjoint.

The golden modules the pytest session already compiles (tests/conftest.py) serve every test: rk4 (explicit), heun3
(explicit with a zero weight, b_2 = 0), sdirk2 (diagonally implicit) and gauss2 (fully implicit).
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rkgen.layers import SolveFailure, Spec, continuous_nodes  # noqa: E402
from rkgen.torch import RKBlock, rk_block  # noqa: E402

pytestmark = pytest.mark.numba


def _block(net, d=2, N=2, **kw):
    torch.manual_seed(0)
    return RKBlock(net, d, N, dtype=torch.float64, **kw)


def _gradcheck(block, m=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(m, block.spec.width, dtype=torch.float64, generator=gen, requires_grad=True)
    K = block.K.detach().clone().requires_grad_()
    beta = block.beta.detach().clone().requires_grad_()
    h = block.h.detach().clone().requires_grad_()
    return torch.autograd.gradcheck(
        lambda x, K, beta, h: rk_block(block.spec, x, K, beta, h), (x, K, beta, h), eps=1e-6, atol=1e-7, rtol=1e-6
    )


@pytest.mark.parametrize(
    "net", ["rk4", "heun3", "sdirk2", "gauss2"], indirect=True, ids=["explicit", "zero-weight", "dirk", "implicit"]
)
@pytest.mark.parametrize("field", ["resnet", "stable"])
def test_gradcheck_every_structure(net, field):
    """The input, K, beta and h: torch's finite differences agree with the block's exact adjoint."""
    assert _gradcheck(_block(net, field=field, learn_steps=True, step=0.3))


@pytest.mark.parametrize("params", ["stage", "continuous", "tied"])
def test_gradcheck_layouts(net_rk4, params):
    block = _block(net_rk4, params=params, learn_steps=True)
    with torch.no_grad():  # stage times off the nodes (0, 1/2, 1), where the interpolation has its kinks
        block.h.copy_(torch.tensor([0.37, 0.55]))
    assert block.K.shape == {"stage": (2, 4, 2, 2), "continuous": (3, 2, 2), "tied": (2, 2)}[params]
    assert _gradcheck(block)


@pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True, ids=["explicit", "implicit"])
def test_tied_is_the_shared_layout_with_equal_layers(net):
    """The tied block against the shared one whose layers all hold the same K and beta, torch's autograd summing
    their gradients through expand. (torch would also sum an unsummed gradient of the tied block by itself, so the sum
    rkgen.layers takes is checked on the arrays, in tests/test_layers.py.)"""
    tied = _block(net, d=3, N=4, params="tied", learn_steps=True, step=0.2)
    shared = _block(net, d=3, N=4, learn_steps=True, step=0.2)
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    K = tied.K.detach().clone().requires_grad_()
    beta = tied.beta.detach().clone().requires_grad_()
    out = rk_block(shared.spec, x, K.expand(4, 3, 3), beta.expand(4, 3), shared.h)
    (out**2).sum().backward()
    y = tied(x)
    (y**2).sum().backward()
    assert torch.equal(y, out)  # the same module call on the same numbers
    torch.testing.assert_close(tied.K.grad, K.grad, rtol=1e-14, atol=1e-15)
    torch.testing.assert_close(tied.beta.grad, beta.grad, rtol=1e-14, atol=1e-15)


def test_gradient_is_the_module_adjoint(net_gauss2):
    """The block's gradient is the generated backward's, bit for bit (autograd does not touch the stages)."""
    block = _block(net_gauss2, d=3, N=3, learn_steps=True)
    x = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 3, dtype=torch.float64)
    (block(x) * w).sum().backward()
    yN, tape = net_gauss2.forward(x.detach().numpy(), block.K.detach().numpy(), block.beta.detach().numpy(),
                                  block.h.detach().numpy())
    dy0, dK, dbeta, dh = net_gauss2.backward(tape, w.numpy())
    for got, want in ((x.grad, dy0), (block.K.grad, dK), (block.beta.grad, dbeta), (block.h.grad, dh)):
        np.testing.assert_array_equal(got.numpy(), want)
    assert block(x).grad_fn is not None and "Block" in type(block(x).grad_fn).__name__


def test_leading_batch_shape(net_rk4):
    block = _block(net_rk4, d=2, N=2)
    x = torch.randn(2, 3, 2, dtype=torch.float64)
    np.testing.assert_array_equal(block(x).detach().numpy(), block(x.reshape(6, 2)).detach().reshape(2, 3, 2).numpy())


U32 = 2.0**-24  # float32's unit roundoff (eps32 / 2)


def f32_tolerances(N, s, d, m, C):
    """(forward, gradient) tolerances of a float32 block against the float64 block on the same float32 inputs,
    relative to the largest entry of each float64 array: C sqrt(n_ops) u, as tests/test_float32.py derives them
    for the module itself (whose float32 kernels a float32 block calls).

    n_ops is the number of roundings on the longest chain from the inputs to an output: per layer and stage the d
    products and sums of K Y, the bias, the activation and the stage combination, n_fwd = N s (d + 4); the
    gradient reads the forward's stages, runs as long a chain backwards and sums over the m samples,
    n_grad = 2 n_fwd + m. Independent rounding errors add like a random walk, hence sqrt(n_ops) (the worst case
    n_ops u is 10-25x looser than anything observed and would miss a real loss of precision). C is the growth of
    an error carried through the layers (:func:`_growth`). A block that computed in float16, or rounded a stage
    value twice, fails. Measured (rk4, widths 3 and 18, five seeds): errors 0.01-0.14 of the tolerance."""
    n_fwd = N * s * (d + 4)
    n_grad = 2 * n_fwd + m
    return C * np.sqrt(n_fwd) * U32, C * np.sqrt(n_grad) * U32


def _growth(K, h):
    """prod_j (1 + |h_j| L_j), L_j = ||K_j||_2 >= the Lipschitz constant of tanh(K_j y + beta_j) (tanh' <= 1): how
    much an error made in one layer can grow by the end, forwards and (the same norms) backwards."""
    K, h = K.detach().double().numpy(), h.detach().double().numpy()
    return float(np.prod([1.0 + abs(hj) * np.linalg.norm(Kj, 2) for Kj, hj in zip(K, h, strict=True)]))


def _rel(got, want):
    """max |got - want| / max |want| (each array on its own)."""
    got, want = got.detach().double().numpy(), want.detach().numpy()
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


@pytest.mark.parametrize("d", [3, 18], ids=["narrow", "wide"])
def test_float32_runs_in_float32(net_rk4, d):
    """A float32 block calls the float32 kernels (its tape holds float32) and agrees with the float64 block on the
    same float32-rounded numbers within float32 rounding (f32_tolerances); everything it returns is float32."""
    torch.manual_seed(0)
    m, N = 20, 3
    b32 = RKBlock(net_rk4, d, N, learn_steps=True, dtype=torch.float32)
    b64 = RKBlock(net_rk4, d, N, learn_steps=True, dtype=torch.float64)
    b64.load_state_dict({k: v.double() for k, v in b32.state_dict().items()})  # the same numbers, widened exactly
    x = torch.randn(m, d)
    w = torch.randn(m, d)
    x32, x64 = x.clone().requires_grad_(), x.double().requires_grad_()
    y32, y64 = b32(x32), b64(x64)
    assert y32.dtype == torch.float32 and y32.grad_fn.tape.stages[0].dtype == np.float32
    (y32 * w).sum().backward()
    (y64 * w.double()).sum().backward()
    tol_fwd, tol_grad = f32_tolerances(N, 4, d, m, _growth(b64.K, b64.h))
    assert _rel(y32, y64) <= tol_fwd
    for g32, g64 in ((x32.grad, x64.grad), (b32.K.grad, b64.K.grad), (b32.beta.grad, b64.beta.grad),
                     (b32.h.grad, b64.h.grad)):
        assert g32.dtype == torch.float32
        assert _rel(g32, g64) <= tol_grad
    with torch.no_grad():  # inference runs in float32 too, to the same output
        assert torch.equal(b32(x), y32.detach())


def test_float32_implicit_is_the_module_float32_call(net_gauss2):
    """A float32 fully implicit block is the module's float32 call, bit for bit (which solves its stages in float64
    and rounds back: tests/test_float32.py), output and gradients."""
    torch.manual_seed(0)
    block = RKBlock(net_gauss2, 3, 2, learn_steps=True, dtype=torch.float32)
    x = torch.randn(5, 3, requires_grad=True)
    w = torch.randn(5, 3)
    y = block(x)
    (y * w).sum().backward()
    yN, tape = net_gauss2.forward(x.detach().numpy(), block.K.detach().numpy(), block.beta.detach().numpy(),
                                  block.h.detach().numpy())
    assert yN.dtype == np.float32
    np.testing.assert_array_equal(y.detach().numpy(), yN)
    for got, want in zip((x.grad, block.K.grad, block.beta.grad, block.h.grad), net_gauss2.backward(tape, w.numpy()),
                         strict=True):
        assert got.dtype == torch.float32
        np.testing.assert_array_equal(got.numpy(), want)


def test_mixed_dtypes_refused(net_rk4):
    with pytest.raises(TypeError, match="same dtype"):
        _block(net_rk4)(torch.zeros(1, 2))


def test_state_dict_round_trip(net_rk4):
    a = _block(net_rk4, learn_steps=True, params="continuous")
    with torch.no_grad():
        a.h.mul_(1.5)
    buf = io.BytesIO()
    torch.save(a.state_dict(), buf)
    torch.manual_seed(5)
    b = RKBlock(net_rk4, 2, 2, learn_steps=True, params="continuous", dtype=torch.float64)
    x = torch.randn(3, 2, dtype=torch.float64)
    assert not torch.equal(a(x), b(x))
    buf.seek(0)
    b.load_state_dict(torch.load(buf))
    assert set(a.state_dict()) == {"K", "beta", "h"}
    assert torch.equal(a(x), b(x))


def test_fixed_steps_are_a_buffer(net_rk4):
    block = _block(net_rk4, step=0.25)
    assert [n for n, _ in block.named_parameters()] == ["K", "beta"]
    assert torch.equal(block.state_dict()["h"], torch.full((2,), 0.25, dtype=torch.float64))


def test_no_grad_keeps_no_tape(net_rk4):
    calls = []

    def recording(*a, **k):
        calls.append(k.get("keep_tape", True))
        return net_rk4.forward(*a, **k)

    spy = SimpleNamespace(**{**vars(net_rk4), "forward": recording})
    block = _block(spy)
    x = torch.randn(3, 2, dtype=torch.float64)
    y = block(x)
    with torch.no_grad():
        z = block(x)
    assert calls == [True, False]
    assert y.requires_grad and not z.requires_grad
    assert torch.equal(y.detach(), z)


def test_solve_failure_raises_and_gives_no_gradient(net_gauss2):
    """A fully implicit block whose Newton solves cannot converge (a stiff, huge step) raises; no gradient."""
    block = _block(net_gauss2, learn_steps=True, step=50.0)
    with torch.no_grad():
        block.K.copy_(torch.tensor([[[40.0, -90.0], [90.0, 40.0]]] * 2, dtype=torch.float64))
    x = torch.full((2, 2), 3.0, dtype=torch.float64, requires_grad=True)
    with pytest.raises(SolveFailure, match="did not converge"):
        block(x).sum().backward()
    assert x.grad is None and block.K.grad is None
    with torch.no_grad(), pytest.raises(SolveFailure):
        block(x)


def test_non_cpu_tensor_refused(net_rk4):
    block = _block(net_rk4)
    with pytest.raises(RuntimeError, match="CPU only"):
        block(torch.zeros(1, 2, dtype=torch.float64, device="meta"))


def test_trains_with_torch_optim(net_sdirk2):
    """A model Linear -> RKBlock (DIRK) -> Linear learns a small problem with torch.optim.Adam."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), RKBlock(net_sdirk2, 3, 2, learn_steps=True),
                                torch.nn.Linear(3, 2)).double()
    x = torch.randn(64, 2, dtype=torch.float64)
    c = (x[:, 0] * x[:, 1] > 0).long()
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    losses = []
    for _ in range(60):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), c)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.6 * losses[0]


def test_torch_compile(net_rk4):
    """torch.compile of a model holding a block: the block runs eagerly (a graph break), the result and the
    gradients are those of the eager model."""
    torch._dynamo.reset()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 2), RKBlock(net_rk4, 2, 2), torch.nn.Tanh(), torch.nn.Linear(2, 3))
    x = torch.randn(5, 4)
    want = model(x)
    want.sum().backward()
    grads = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    got = torch.compile(model, backend="aot_eager")(x)
    got.sum().backward()
    assert torch.equal(got, want)
    for p, g in zip(model.parameters(), grads, strict=True):
        assert torch.equal(p.grad, g)


def test_agrees_with_rkgen_trainer(net_rk4):
    """Five full-batch gradient steps of rkgen's trainer (odenet: K, beta, h and the classifier learned) and of
    torch.optim.SGD on the same model, data and initial parameters agree to rounding."""
    from rkgen.train import train

    kw = dict(tableau="rk4", model="odenet", dataset="spiral", samples=40, layers=3, loss="cross-entropy",
              optimizer="gd", lr=0.5, out=False, plots=False, progress=False)
    start = train(network=net_rk4, iterations=0, **kw)
    end = train(network=net_rk4, iterations=5, **kw)
    p0 = start.params
    x = torch.tensor(start.dataset.x_train)
    c = torch.tensor(start.dataset.c_train).long()
    block = RKBlock(net_rk4, x.shape[1], 3, learn_steps=True, dtype=torch.float64)
    head = torch.nn.Linear(x.shape[1], p0["W"].shape[0]).double()
    block.load_state_dict({"K": torch.tensor(p0["K"]), "beta": torch.tensor(p0["beta"]), "h": torch.tensor(p0["h"])})
    head.load_state_dict({"weight": torch.tensor(p0["W"]), "bias": torch.tensor(p0["mu"])})
    params = [block.K, block.beta, block.h, head.weight, head.bias]
    opt = torch.optim.SGD(params, lr=0.5)
    for _ in range(5):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(head(block(x)), c).backward()
        opt.step()
    for p, key in zip(params, ("K", "beta", "h", "W", "mu"), strict=True):
        np.testing.assert_allclose(p.detach().numpy(), end.params[key], rtol=1e-12, atol=1e-13)
    assert not np.allclose(end.params["K"], p0["K"], atol=1e-3)  # the runs moved


def test_spec_checks(net_rk4):
    with pytest.raises(Exception, match="unknown field"):
        Spec(net_rk4, 2, 2, field="nope")
    with pytest.raises(Exception, match="node times"):
        Spec(net_rk4, 2, 2, params="continuous")
    assert continuous_nodes(4, 1.0) == (0.0, 0.25, 0.5, 0.75, 1.0)


def test_import_rkgen_imports_neither_framework():
    code = (
        "import sys, rkgen, rkgen.layers, rkgen.codegen\n"
        "bad = sorted(m for m in ('torch', 'jax', 'jaxlib') if m in sys.modules)\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr


def _example(script, *args):
    root = Path(__file__).resolve().parent.parent
    cmd = [sys.executable, str(root / "examples" / script), "--quick", *args]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=root)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = {line[:22].strip(): line[22:].split() for line in out.stdout.splitlines()[2:]}
    return {k: (int(v[0]), float(v[1]), float(v[2])) for k, v in rows.items()}


@pytest.mark.slow  # a subprocess that imports torch or jax and trains: 30-60 s
def test_example_torch_digits():
    """The example at its smallest: the user's JSON tableau (compiled as a user's run would) beside the MLP."""
    rows = _example("torch_digits.py", "--compare", "")
    assert set(rows) == {"RK ralston3", "MLP"}
    assert rows["RK ralston3"][0] == rows["MLP"][0] == 64 * 65 + 3 * 64 * 65 + 10 * 65  # the same size
    assert rows["RK ralston3"][2] > 0.5  # one epoch on 300 images: far above chance (0.1)
