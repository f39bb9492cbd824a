"""Models, losses, the simplex projection and the fake network: gradients against finite
differences."""

import numpy as np
import pytest
from fake_net import TABLEAUX, fake, make_fake_net

from rkgen.errors import RkgenError
from rkgen.train import losses
from rkgen.train.models import Model, simplex_projection


def _fd_check(model, flat, x, c, eps=1e-6):
    grad = np.zeros(model.size)
    model.loss_and_grad(flat, x, c, grad)
    fd = np.zeros(model.size)
    for i in range(model.size):
        u = flat.copy()
        u[i] += eps
        a = model.forward(u, x, c).cost
        u[i] -= 2 * eps
        fd[i] = (a - model.forward(u, x, c).cost) / (2 * eps)
    fd[~model.trainable] = 0.0
    return grad, fd


CASES = [
    ("rk", "euler", "resnet", "tanh", 2),
    ("rk", "rk4", "stable", "softplus", 3),
    ("odenet", "heun3", "resnet", "sigmoid", 2),
    ("odenet", "kutta3", "stable", "tanh", 4),
    ("odenet-simplex", "rk4", "resnet", "tanh", 2),
    ("odenet-simplex", "midpoint", "resnet", "relu", 3),
    ("net", None, "resnet", "tanh", 2),
    ("net", None, "resnet", "softplus", 3),
]


@pytest.mark.parametrize(("kind", "tab", "field", "act", "classes"), CASES)
def test_whole_gradient_matches_finite_differences(kind, tab, field, act, classes):
    rng = np.random.default_rng(3)
    m, d_in, width, N = 7, 2, 3, 4
    model = Model(
        kind,
        N,
        width,
        d_in,
        classes,
        network=fake(tab) if tab else None,
        field=field,
        activation=act,
        final_time=1.2,
    )
    flat = model.init_params(rng, scale=2.0)
    if "h" in model.layout:
        a, b, _ = model.layout["h"]
        flat[a:b] = [0.5, 0.0, 0.7, 0.0] if kind == "odenet-simplex" else [0.4, -0.2, 0.0, 0.3]
    x = rng.normal(size=(m, d_in))
    c = rng.integers(0, classes, size=m)
    grad, fd = _fd_check(model, flat, x, c)
    assert np.max(np.abs(grad - fd)) < 1e-7 * max(1.0, np.max(np.abs(fd)))
    assert np.max(np.abs(fd)) > 1e-4  # the check is not vacuous
    if kind == "rk":  # fixed steps get no update
        a, b, _ = model.layout["h"]
        assert np.all(grad[a:b] == 0.0)


def test_gradient_both_losses_on_two_classes():
    rng = np.random.default_rng(5)
    for loss in ("squared", "cross-entropy"):
        model = Model("odenet", 3, 2, 2, 2, network=fake("rk4"), loss=loss)
        assert model.n_out == (1 if loss == "squared" else 2)
        flat = model.init_params(rng, 2.0)
        x, c = rng.normal(size=(6, 2)), rng.integers(0, 2, 6)
        grad, fd = _fd_check(model, flat, x, c)
        assert np.allclose(grad, fd, atol=1e-8)


def test_fixed_classifier_gets_no_gradient():
    rng = np.random.default_rng(0)
    model = Model("rk", 2, 2, 2, 2, network=fake("euler"), fix_classifier=True)
    flat = model.init_params(rng)
    grad = np.ones(model.size)
    model.loss_and_grad(flat, rng.normal(size=(5, 2)), np.array([0, 1, 0, 1, 1]), grad)
    v = model.views(grad)
    assert np.all(v["W"] == 0) and np.all(v["mu"] == 0) and np.all(v["h"] == 0)
    assert np.any(v["K"] != 0)


def test_net_forward_is_the_plain_recursion():
    rng = np.random.default_rng(1)
    model = Model("net", 3, 4, 2, 3, activation="tanh")
    flat = model.init_params(rng)
    v = model.views(flat)
    x = rng.normal(size=(5, 2))
    y = np.hstack([x, np.zeros((5, 2))])
    for j in range(3):
        y = np.tanh(y @ v["K"][j].T + v["beta"][j])
    fw = model.forward(flat, x)
    assert np.allclose(fw.y_final, y, rtol=0, atol=1e-15)
    assert np.allclose(fw.logits, y @ v["W"].T + v["mu"])


def test_padding_and_resnet_steps():
    model = Model("rk", 5, 4, 2, 2, network=fake("euler"), final_time=2.0)
    flat = model.init_params(np.random.default_rng(0))
    assert np.all(model.views(flat)["h"] == 0.4)
    assert model.pad(np.ones((3, 2))).tolist() == [[1, 1, 0, 0]] * 3
    step = Model("rk", 5, 4, 2, 2, network=fake("euler"), step=0.05)
    assert step.final_time == pytest.approx(0.25)


def test_model_rejects_bad_options():
    with pytest.raises(RkgenError, match="width"):
        Model("rk", 2, 1, 2, 2, network=fake("euler"))
    with pytest.raises(RkgenError, match="squared loss"):
        Model("rk", 2, 2, 2, 3, network=fake("euler"), loss="squared")
    with pytest.raises(RkgenError, match="activation"):
        Model("net", 2, 2, 2, 2, activation="gelu")


def test_losses_values():
    z = np.array([[0.0], [2.0]])
    cost, dz, correct = losses.squared(z, np.array([1, 1]))
    s = 1 / (1 + np.exp(-2.0))
    assert cost == pytest.approx(0.5 * (0.25 + (s - 1) ** 2) / 2)
    assert correct == 1  # sigmoid(0) = 0.5 is not > 0.5
    z = np.array([[1.0, 2.0, 3.0]])
    cost, dz, correct = losses.cross_entropy(z, np.array([0]))
    assert cost == pytest.approx(-np.log(np.exp(1) / np.exp([1, 2, 3]).sum()))
    assert dz.sum() == pytest.approx(0.0) and correct == 0
    big = np.array([[1000.0, -1000.0]])
    cost, _, _ = losses.cross_entropy(big, np.array([0]))
    assert cost == 0.0


def test_losses_reject_labels_out_of_range():
    """The compiled passes check each label before using it (an index in cross-entropy)."""
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.1, got 0\.\.2"):
        losses.squared(np.zeros((3, 1)), np.array([0, 2, 1]))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2, got -1\.\.1"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([1, -1]))
    with pytest.raises(ValueError, match=r"labels must lie in 0\.\.2, got 0\.\.3"):
        losses.cross_entropy(np.zeros((2, 3)), np.array([0, 3]))
    with pytest.raises(ValueError, match="one logit per sample"):
        losses.squared(np.zeros((2, 2)), np.array([0, 1]))


def test_losses_match_numpy_formulas():
    """The compiled losses against the same formulas written in numpy, on random logits."""
    rng = np.random.default_rng(3)
    z = rng.normal(0.0, 4.0, (257, 1))
    z[:3, 0] = [0.0, 800.0, -800.0]  # exp(-z) would overflow: the kernel must not
    c = rng.integers(0, 2, 257)
    hyp = 1.0 / (1.0 + np.exp(-np.clip(z[:, 0], -700, 700)))
    r = hyp - c
    cost, dz, correct = losses.squared(z, c)
    assert cost == pytest.approx(0.5 * (r @ r) / 257, rel=1e-14)
    # dz = r hyp (1 - hyp) / m against long double (80-bit on x86-64 Linux, where CI runs): with hyp accurate to a
    # few roundings relative to itself, r = hyp - c and 1 - hyp are each within a few eps hyp of their values, so
    # dz is within a few eps hyp (hyp (1 - hyp) + |r|) / m; relative to dz where nothing cancels (hyp near 0)
    wide = z[:, 0].astype(np.longdouble)
    hyp_wide = 1 / (1 + np.exp(-wide))
    exact = (hyp_wide - c) * hyp_wide * (1 - hyp_wide) / 257
    bound = 8 * np.finfo(float).eps * hyp * (hyp * (1 - hyp) + np.abs(r)) / 257
    assert np.all(np.abs(dz[:, 0] - exact) <= bound + 1e-300)
    assert correct == np.count_nonzero((hyp > 0.5) == (c == 1))
    z = rng.normal(0.0, 4.0, (101, 4))
    z[0] = [3.0, 3.0, 1.0, -1.0]  # a tie: the first largest logit wins, as np.argmax
    c = rng.integers(0, 4, 101)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    cost, dz, correct = losses.cross_entropy(z, c)
    assert cost == pytest.approx(-np.mean(np.log(p[np.arange(101), c])), rel=1e-14)
    p[np.arange(101), c] -= 1.0
    np.testing.assert_allclose(dz, p / 101, rtol=1e-13, atol=1e-17)
    assert correct == np.count_nonzero(np.argmax(z, axis=1) == c)


@pytest.mark.parametrize(("loss", "classes"), [("squared", 1), ("cross-entropy", 4)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_classifier_head_matches_numpy(loss, classes, dtype):
    """The compiled head (logits, loss and the classifier's gradients, one call each way) against numpy's
    y W^T + mu, the loss passes on those logits, and dz^T y, the column sums of dz and dz W."""
    from rkgen.train._kernels import head_backward

    rng = np.random.default_rng(5)
    y = rng.normal(size=(131, 6)).astype(dtype)
    W, mu = rng.normal(size=(classes, 6)).astype(dtype), rng.normal(size=classes).astype(dtype)
    c = rng.integers(0, max(classes, 2), 131)
    z, cost, dz, correct = losses.classify(loss, y, W, mu, c)
    ref = (y @ W.T + mu).astype(np.float64)
    tol = 10 * np.finfo(dtype).eps
    assert z.dtype == dz.dtype == dtype
    np.testing.assert_allclose(z, ref, rtol=tol, atol=tol * np.abs(ref).max())
    ref_cost, ref_dz, ref_correct = losses.get(loss)(z, c)
    assert (cost, correct) == (ref_cost, ref_correct)  # the same pass on the same logits
    np.testing.assert_array_equal(dz, ref_dz)
    gW, gmu, p = np.empty_like(W), np.empty_like(mu), np.empty_like(y)
    head_backward(dz, y, W, gW, gmu, p)
    d64, y64 = dz.astype(np.float64), y.astype(np.float64)
    for got, want in ((gW, d64.T @ y64), (gmu, d64.sum(axis=0)), (p, d64 @ W.astype(np.float64))):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * np.abs(want).max())
    with pytest.raises(ValueError, match="one logit per sample"):
        losses.classify("squared", y, np.zeros((2, 6), dtype), np.zeros(2, dtype), c)
    with pytest.raises(ValueError, match="labels must lie"):
        losses.classify(loss, y, W, mu, np.full(131, 7))


def test_losses_reject_bad_labels():
    z = np.zeros((3, 2))
    for c, msg in (([0, 1, 5], "0..1"), ([0, -1, 1], "0..1"), ([0.0, 1.0, 1.0], "integers"), ([0, 1], "shape")):
        with pytest.raises(ValueError, match=msg):
            losses.cross_entropy(z, np.array(c))
    with pytest.raises(ValueError, match="0..1"):
        losses.squared(np.zeros((2, 1)), np.array([0, 2]))
    with pytest.raises(ValueError, match="m >= 1"):
        losses.squared(np.zeros((0, 1)), np.array([], dtype=np.int64))
    cost, _, correct = losses.squared(np.array([[3.0], [-3.0]]), np.array([True, False]))
    assert correct == 2 and cost < 0.01


# -- simplex projection ---------------------------------------------------------------------------


def test_simplex_projection_feasible_and_kkt_on_random_vectors():
    rng = np.random.default_rng(42)
    for trial in range(300):
        n = int(rng.integers(1, 30))
        total = float(rng.uniform(0.1, 5.0))
        v = rng.normal(scale=rng.uniform(0.1, 10), size=n)
        if trial % 5 == 0:
            v[rng.integers(0, n)] = v.max()  # ties
        x = simplex_projection(v, total)
        assert np.all(x >= 0) and x.sum() == pytest.approx(total, rel=1e-12, abs=1e-12)
        # KKT: x = max(v - theta, 0) for one theta: v_i - x_i = theta if x_i > 0, else v_i <= theta
        pos = x > 0
        theta = np.mean(v[pos] - x[pos])
        assert np.allclose(v[pos] - x[pos], theta, atol=1e-12 * max(1, np.abs(v).max()))
        assert np.all(v[~pos] <= theta + 1e-12)
        # optimal: no feasible random point is closer
        for _ in range(5):
            y = simplex_projection(rng.normal(size=n), total)
            assert np.sum((v - x) ** 2) <= np.sum((v - y) ** 2) + 1e-12


def test_simplex_projection_examples():
    assert simplex_projection(np.array([0.2, 0.3, 0.5])).tolist() == pytest.approx([0.2, 0.3, 0.5])
    assert simplex_projection(np.array([2.0, 0.0, 0.0])).tolist() == [1.0, 0.0, 0.0]
    assert simplex_projection(np.array([1.0, 1.0]), 4.0).tolist() == [2.0, 2.0]
    assert simplex_projection(np.array([-5.0, 3.0, 2.5]), 1.0).tolist() == pytest.approx(
        [0.0, 0.75, 0.25]
    )


# -- the fake network itself ---------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(TABLEAUX))
def test_fake_net_adjoint_matches_finite_differences_with_zero_steps(name):
    rng = np.random.default_rng(7)
    net = fake(name)
    N, m, d = 3, 4, 3
    y0, K = rng.normal(size=(m, d)), rng.normal(size=(N, d, d))
    beta, p = rng.normal(size=(N, d)), rng.normal(size=(m, d))
    h = np.array([0.3, 0.0, -0.2])
    for field in ("resnet", "stable"):
        _, tape = net.forward(y0, K, beta, h, field, "tanh")
        grads = net.backward(tape, p)
        args = [y0, K, beta, h]
        for i, x in enumerate(args):
            fd = np.zeros_like(x)
            for idx in np.ndindex(x.shape):
                pert = [a.copy() for a in args]
                pert[i][idx] += 1e-6
                up = np.sum(net.forward(*pert, field, "tanh")[0] * p)
                pert[i][idx] -= 2e-6
                fd[idx] = (up - np.sum(net.forward(*pert, field, "tanh")[0] * p)) / 2e-6
            assert np.allclose(grads[i], fd, atol=1e-7), (field, i)


def test_fake_net_takes_implicit_tableaux():
    """The implicit midpoint rule: y1 = y0 + h f((y0 + y1) / 2), solved by Newton to rounding."""
    net = make_fake_net([[0.5]], [1.0], "implicit_midpoint")
    assert net.STRUCTURE == "diagonally implicit"
    rng = np.random.default_rng(3)
    y0, K, beta = rng.normal(size=(5, 2)), rng.normal(size=(1, 2, 2)), rng.normal(size=(1, 2))
    y1, tape = net.forward(y0, K, beta, [0.4], "stable", "softplus")
    z = (0.5 * (y0 + y1)) @ K[0].T + beta[0]
    assert tape.failures == 0 and tape.iterations > 1
    assert np.allclose(y1, y0 - 0.4 * np.logaddexp(0.0, z) @ K[0], rtol=0, atol=1e-14)


@pytest.mark.numba
def test_generated_euler_network_trains_with_exact_gradient():
    """The one test with a real generated module (needs rkgen.codegen.load_network)."""
    from rkgen.train.models import _load

    net = _load("euler")
    rng = np.random.default_rng(2)
    model = Model("odenet", 3, 3, 2, 2, network=net)
    flat = model.init_params(rng, 2.0)
    x, c = rng.normal(size=(6, 2)), rng.integers(0, 2, 6)
    grad, fd = _fd_check(model, flat, x, c)
    assert np.allclose(grad, fd, atol=1e-8)
    ref = Model("odenet", 3, 3, 2, 2, network=fake("euler"))
    assert model.forward(flat, x, c).cost == pytest.approx(ref.forward(flat, x, c).cost, rel=1e-12)
