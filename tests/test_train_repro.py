"""The settings the papers' authors ran: 000's data sets as its published code draws them, the
initialisations of 000 sections 5.2 and 5.3, the summed cost, the Armijo step rule of section 5.3
(gd-armijo) and 004's fixed random embedding (--augment random). All on fake networks or the plain
net: nothing is compiled."""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_net import fake

from rkgen.errors import RkgenError
from rkgen.train import TrainConfig, train
from rkgen.train.datasets import BENNING, make_dataset
from rkgen.train.models import Model
from rkgen.train.optimizers import ARMIJO_DECREASE, ARMIJO_MAX_STEP

# -- 000's data sets ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", BENNING)
def test_benning_sets_have_the_authors_sizes_and_span(name):
    ds = make_dataset(name, np.random.default_rng(3))
    assert ds.x_train.shape == (500, 2) and ds.x_test.shape == (500, 2) and ds.n_classes == 2
    assert np.max(np.abs(ds.x_train)) < 1.6  # [-1, 1]^2 plus noise of 0.1 (at most a few sigma)
    again = make_dataset(name, np.random.default_rng(3))
    assert np.array_equal(ds.x_train, again.x_train) and not np.array_equal(ds.x_train, ds.x_test)


def test_benning_class_shares():
    rng = np.random.default_rng(0)
    share = {name: make_dataset(name, rng, 3000).c_train.mean() for name in BENNING}
    assert share["benning-donut1d"] == pytest.approx(1 / 3, abs=1e-3)  # a third in class 1, exactly drawn
    assert share["benning-donut2d"] == 0.5 and share["benning-spiral"] == 0.5
    assert share["benning-squares"] == pytest.approx(0.5, abs=0.04)  # x1 x2 > 0 for half of the square


def test_benning_donuts_are_radial_and_donut1d_lies_on_a_line():
    rng = np.random.default_rng(1)
    d1 = make_dataset("benning-donut1d", rng, 3000)
    assert np.std(d1.x_train[:, 1]) == pytest.approx(0.1, rel=0.1)  # x2 = 0 plus N(0, 0.1^2)
    for ds in (d1, make_dataset("benning-donut2d", rng, 3000)):
        r = np.hypot(*ds.x_train.T)
        inner, outer = np.median(r[ds.c_train == 1]), np.median(r[ds.c_train == 0])
        assert inner < 0.25 and 0.4 < outer < 0.6  # around radius 0 and radius 0.5


def test_benning_squares_and_spiral_follow_their_rules():
    rng = np.random.default_rng(2)
    sq = make_dataset("benning-squares", rng, 4000)
    agree = np.mean((sq.x_train[:, 0] * sq.x_train[:, 1] > 0) == (sq.c_train == 1))
    assert 0.85 < agree < 0.99  # the rule, blurred by the noise added after labelling
    sp = make_dataset("benning-spiral", rng, 4000)
    r = np.hypot(*sp.x_train.T)
    assert 0.0 < np.min(r) < 0.2 and 0.95 < np.max(r) < 1.25  # radius from 0.1 to 1, noise 0.05
    # the second arm is the first rotated by pi: mirrored through the origin, the classes swap
    a, b = sp.x_train[sp.c_train == 0], sp.x_train[sp.c_train == 1]
    nearest = np.min(np.linalg.norm(a[:, None, :] + b[None, :, :], axis=2), axis=1)
    assert np.median(nearest) < 0.1


# -- initialisation, reduction, embedding -------------------------------------------------------------


def _rk(**kw):
    return Model("rk", 4, 3, 2, 2, network=fake("euler"), final_time=1.0, **kw)


def test_init_schemes():
    m = _rk()
    big = Model("net", 40, 30, 2, 2)
    v = big.views(big.init_params(np.random.default_rng(0), 2.0, "normal"))
    assert np.all(v["beta"] == 0.0) and np.all(v["mu"] == 0.0)
    assert np.std(v["K"]) == pytest.approx(2.0, rel=0.05) and abs(np.mean(v["K"])) < 0.05
    v = big.views(big.init_params(np.random.default_rng(0), 1.0, "normal-bias"))
    assert np.std(v["beta"]) == pytest.approx(1.0, rel=0.05) and np.std(v["K"]) == pytest.approx(1.0, rel=0.05)
    assert 0.0 <= v["mu"].min() and v["mu"].max() <= 1.0
    v = m.views(m.init_params(np.random.default_rng(0), 1.0, "uniform"))
    assert np.max(np.abs(v["K"])) <= 1 / np.sqrt(3) and np.all(v["h"] == 0.25)
    with pytest.raises(RkgenError, match="unknown init"):
        m.init_params(np.random.default_rng(0), 1.0, "xavier")


def test_summed_cost_is_m_times_the_mean():
    rng = np.random.default_rng(4)
    x, c = rng.standard_normal((17, 2)), rng.integers(0, 2, 17)
    mean, total = _rk(), _rk(reduction="sum")
    flat = mean.init_params(rng, 1.0, "normal-bias")
    g1, g2 = np.empty(mean.size), np.empty(total.size)
    f1, f2 = mean.loss_and_grad(flat, x, c, g1), total.loss_and_grad(flat, x, c, g2)
    assert f2.cost == pytest.approx(17 * f1.cost, rel=1e-14)
    np.testing.assert_allclose(g2, 17 * g1, rtol=1e-13, atol=1e-15)
    # the squared loss summed is 1/2 sum (sigmoid(z) - c)^2 (000 section 5.3)
    p = 1 / (1 + np.exp(-f2.logits[:, 0]))
    assert f2.cost == pytest.approx(0.5 * np.sum((p - c) ** 2), rel=1e-13)


def test_random_embedding_is_fixed_and_used():
    rng = np.random.default_rng(5)
    m = Model("rk", 3, 5, 2, 2, network=fake("rk4"), final_time=1.0, augment="random")
    flat = m.init_params(rng)
    E = m.views(flat)["E"]
    assert E.shape == (5, 2) and np.max(np.abs(E)) <= 1 / np.sqrt(2) and np.all(E != 0)
    x, c = rng.standard_normal((9, 2)), rng.integers(0, 2, 9)
    np.testing.assert_array_equal(m.pad(x, flat), x @ E.T)
    grad = np.empty(m.size)
    fw = m.loss_and_grad(flat, x, c, grad)
    assert np.all(m.views(grad)["E"] == 0.0) and np.any(m.views(grad)["K"] != 0.0)  # never trained
    # the same network on the embedded points, padded with zeros (width = input dimension)
    same = Model("rk", 3, 5, 5, 2, network=fake("rk4"), final_time=1.0)
    flat2 = flat[: same.size].copy()
    assert same.forward(flat2, x @ E.T, c).cost == fw.cost
    narrow = Model("rk", 3, 2, 4, 2, network=fake("euler"), final_time=1.0, augment="random")
    assert narrow.views(narrow.init_params(rng))["E"].shape == (2, 4)  # a random map may also narrow
    with pytest.raises(RkgenError, match="augment random"):
        Model("rk", 3, 2, 4, 2, network=fake("euler"), final_time=1.0)


def test_random_embedding_trains_saves_and_resumes(tmp_path):
    common = dict(
        tableau="rk4",
        network=fake("rk4"),
        dataset="spiral",
        samples=40,
        layers=2,
        width=4,
        augment="random",
        optimizer="adam",
        epochs=3,
        batch_size=8,
        plots=False,
        progress=False,
    )
    whole = train(out=str(tmp_path / "whole"), **common)
    E0 = Model("rk", 2, 4, 2, 2, network=fake("rk4"), augment="random", final_time=5.0).views(whole.flat)["E"]
    saved = np.load(tmp_path / "whole" / "params.npz")
    assert np.array_equal(saved["E"], E0)
    first = json.loads((tmp_path / "whole" / "config.json").read_text())["config"]
    assert first["augment"] == "random"
    # stopped after 5 mini-batches of 8 of 40 points: between two epochs, where the next epoch's
    # shuffle is drawn after the stop (a resume draws the same one)
    part = train(out=str(tmp_path / "part"), interrupt_at=5, **common)
    assert (part.iteration, part.epoch) == (5, 1)
    done = train(resume=tmp_path / "part", network=fake("rk4"))
    assert np.array_equal(done.flat, whole.flat)
    assert np.array_equal(whole.params["E"], part.params["E"])  # fixed from the start


# -- gd-armijo ---------------------------------------------------------------------------------------

ARMIJO = dict(
    model="net",
    dataset="benning-donut2d",
    samples=60,
    layers=3,
    optimizer="gd-armijo",
    init="normal-bias",
    reduction="sum",
    eval_every=1,
    out=False,
    plots=False,
    progress=False,
)


def test_armijo_steps_halve_from_twice_the_last_and_decrease_enough():
    res = train(iterations=25, **ARMIJO)
    assert res.status == "completed"
    alpha = res.history["step_control"]
    loss = res.history["train_loss"]
    assert alpha[0] == 0.05
    for k in range(1, len(alpha)):
        first = min(ARMIJO_MAX_STEP, 2 * alpha[k - 1])
        ratio = first / alpha[k]
        halvings = round(np.log2(ratio))
        assert halvings >= 0 and ratio == 2.0**halvings  # the accepted step: the first trial halved
        assert loss[k] < loss[k - 1]
    assert len(set(alpha.tolist())) > 2  # the rule moved the step both ways


def test_armijo_acceptance_is_the_stated_inequality(monkeypatch):
    import rkgen.train.trainer as trainer_mod

    seen = []
    real = trainer_mod.sufficient_decrease

    def spy(new, old, g, d):
        ok = real(new, old, g, d)
        seen.append((new, old, float(g @ d), ok))
        return ok

    monkeypatch.setattr(trainer_mod, "sufficient_decrease", spy)
    train(iterations=10, **ARMIJO)
    assert any(not ok for *_, ok in seen) and any(ok for *_, ok in seen)
    for new, old, gd, ok in seen:
        assert ok == (new <= old + ARMIJO_DECREASE * gd)


def test_armijo_resume_is_bit_identical(tmp_path):
    kw = dict(ARMIJO, out=None)
    kw.pop("out")
    whole = train(iterations=12, out=str(tmp_path / "whole"), **kw)
    train(iterations=12, out=str(tmp_path / "part"), interrupt_at=5, **kw)
    done = train(resume=tmp_path / "part")
    assert np.array_equal(done.flat, whole.flat)
    assert np.array_equal(done.history["step_control"], whole.history["step_control"])


def test_armijo_options():
    cfg = TrainConfig(optimizer="gd-armijo").resolved()
    assert cfg.lr == 0.05 and cfg.max_trials == 60 and cfg.lipschitz is None
    with pytest.raises(RkgenError, match="--lipschitz does not apply"):
        TrainConfig(optimizer="gd-armijo", lipschitz=0.1).resolved()
    with pytest.raises(RkgenError, match="--max-trials does not apply"):
        TrainConfig(optimizer="adam", max_trials=3).resolved()
    for bad in (dict(init="xavier"), dict(augment="ones"), dict(reduction="max")):
        with pytest.raises(RkgenError, match="unknown"):
            TrainConfig(**bad).resolved()
