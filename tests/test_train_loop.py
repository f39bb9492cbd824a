"""The training loop, data sets, run folders, resume, divergence and the command line, all on
fake networks."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from fake_net import fake

import rkgen.train.models as models_mod
from rkgen.errors import RkgenError
from rkgen.train import TrainConfig, cli, train
from rkgen.train.datasets import MULTI_PATTERN, Dataset, load_file, make_dataset
from rkgen.train.optimizers import Adam, armijo_accepts
from rkgen.train.progress import Progress
from rkgen.train.runs import create_run_dir, read_history

TINY = dict(samples=60, layers=3, plots=False)


@pytest.fixture
def fake_loader(monkeypatch):
    """Make tableau names load fake networks (the CLI path calls models._load)."""
    monkeypatch.setattr(models_mod, "_load", lambda spec: fake(spec))


# -- data sets -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "dim", "k", "n"),
    [
        ("donut1d", 2, 2, 500),
        ("donut2d", 2, 2, 1000),
        ("squares", 2, 2, 1000),
        ("spiral", 2, 2, 1000),
        ("donut3d-6c", 3, 6, 1500),
        ("donut2d-6c", 2, 6, 1500),
        ("squares2d-4c", 2, 4, 1500),
        ("squares3d-4c", 3, 4, 1500),
    ],
)
def test_builtin_datasets(name, dim, k, n):
    ds = make_dataset(name, np.random.default_rng(0))
    assert ds.x_train.shape == (n, dim) and ds.x_test.shape == (n, dim)
    assert ds.n_classes == k
    counts = np.bincount(ds.c_train, minlength=k)
    assert np.all(counts > 0)  # every class present
    again = make_dataset(name, np.random.default_rng(0))
    assert np.array_equal(ds.x_train, again.x_train) and np.array_equal(ds.c_test, again.c_test)
    assert not np.array_equal(ds.x_train, ds.x_test)  # an independent draw
    other = make_dataset(name, np.random.default_rng(1))
    assert not np.array_equal(ds.x_train, other.x_train)


def test_dataset_shapes_follow_their_definitions():
    rng = np.random.default_rng(0)
    sp = make_dataset("spiral", rng, 1500)
    assert len(sp.x_train) == 1500 and abs(np.mean(sp.c_train) - 0.5) < 0.05
    assert np.max(np.abs(sp.x_train)) < 6  # scaled by 1/5: radius about (4 pi + pi)/5
    sq = make_dataset("squares3d-4c", rng, 4000)
    # without the noise the classes are octant pairs; most points sit away from the boundaries
    x, c = sq.x_train, sq.c_train
    inner = np.all(np.abs(x) > 1.0, axis=1)
    s = np.sign(x[inner])
    s = s * s[:, :1]  # reflect into x1 > 0
    expect = np.where(s[:, 1] > 0, np.where(s[:, 2] > 0, 0, 1), np.where(s[:, 2] > 0, 3, 2))
    assert np.mean(expect == c[inner]) > 0.97
    d = make_dataset("donut3d-3c", rng, 3000)
    r = np.linalg.norm(d.x_train, axis=1)
    assert np.mean(r[d.c_train == 0]) < np.mean(r[d.c_train == 1]) < np.mean(r[d.c_train == 2])
    assert MULTI_PATTERN.match("donut3d-6c") and not MULTI_PATTERN.match("donut3d")


def test_unknown_dataset_is_one_clear_error():
    with pytest.raises(RkgenError, match="unknown dataset 'spiarl'"):
        make_dataset("spiarl", np.random.default_rng(0))
    with pytest.raises(RkgenError, match="squares"):
        make_dataset("squares2d-3c", np.random.default_rng(0))


def test_csv_and_npz_files(tmp_path):
    rng = np.random.default_rng(0)
    rows = ["a,b,label"] + [f"{i},{-i},{'yes' if i % 3 else 'no'}" for i in range(20)]
    (tmp_path / "d.csv").write_text("\n".join(rows) + "\n")
    ds = load_file(tmp_path / "d.csv", rng)
    assert ds.x_train.shape == (10, 2) and ds.x_test.shape == (10, 2)
    assert ds.class_names == ("no", "yes") and ds.n_classes == 2
    together = np.concatenate([ds.x_train[:, 0], ds.x_test[:, 0]])
    assert sorted(together.tolist()) == list(range(20))
    np.savez(
        tmp_path / "e.npz",
        x=np.arange(12.0).reshape(6, 2),
        y=[5, 7, 5, 9, 7, 5],
        x_test=np.zeros((2, 2)),
        y_test=[9, 5],
    )
    ds = load_file(tmp_path / "e.npz", rng)
    assert ds.n_classes == 3 and ds.c_train.tolist() == [0, 1, 0, 2, 1, 0]
    assert ds.c_test.tolist() == [2, 0] and ds.class_names == ("5", "7", "9")
    np.savez(tmp_path / "bad.npz", x=np.zeros((3, 2)))
    with pytest.raises(RkgenError, match="'x' and 'y'"):
        load_file(tmp_path / "bad.npz", rng)
    with pytest.raises(RkgenError, match="does not exist"):
        make_dataset(str(tmp_path / "none.csv"), rng)


def test_digits_stand_in():
    pytest.importorskip("sklearn")
    ds = make_dataset("digits08", np.random.default_rng(0))
    assert ds.x_train.shape == (100, 64) and len(ds.x_test) > 200
    assert set(np.unique(ds.c_train)) == {0, 1} and ds.x_train.max() <= 1.0


# -- optimisers ----------------------------------------------------------------------------------


def test_armijo_test_and_adam_step():
    g = np.array([1.0, -2.0])
    d = -g / 4.0
    assert armijo_accepts(0.0, 1.0, g, d, 4.0)
    assert not armijo_accepts(0.99, 1.0, g, d, 4.0)  # 1 - 5/4 + 5/8 = 0.375 < 0.99
    assert not armijo_accepts(float("nan"), 1.0, g, d, 4.0)
    opt = Adam(2, lr=0.1)
    u = np.zeros(2)
    opt.step(u, np.array([3.0, -0.5]))
    assert u == pytest.approx([-0.1, 0.1])  # the first Adam step is lr * sign(g)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_steps_match_the_textbook_formulas(dtype):
    """Ten compiled Adam steps against Kingma and Ba's algorithm written out in numpy in float64 (an independent
    oracle): equal to float64 rounding; in float32 within one rounding of u and one of the step per step (each step
    rounds u + step, |u| about 1, and computes the step, about lr, in float32)."""
    rng = np.random.default_rng(4)
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    n = 37
    u = rng.normal(size=n).astype(dtype)
    opt = Adam(n, lr=lr, dtype=dtype)
    ref_u, m, v = u.astype(np.float64), np.zeros(n), np.zeros(n)
    for t in range(1, 11):
        g = rng.normal(size=n).astype(dtype)
        opt.step(u, g)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g.astype(np.float64) ** 2
        ref_u = ref_u - lr / (1 - b1**t) * m / (np.sqrt(v) / np.sqrt(1 - b2**t) + eps)
    assert u.dtype == dtype and opt.m.dtype == dtype
    if dtype == np.float64:
        np.testing.assert_allclose(u, ref_u, rtol=0, atol=1e-15)
    else:
        bound = 10 * np.finfo(np.float32).eps * (np.abs(ref_u).max() + lr)
        np.testing.assert_allclose(u, ref_u, rtol=0, atol=bound)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adam_step_keeps_the_parameters_before_it(dtype):
    """Adam.step(u, g, before=prev) writes u as it was into prev in the step's own pass, and steps u to the same bits
    as a step without it."""
    rng = np.random.default_rng(5)
    u = rng.normal(size=41).astype(dtype)
    g = rng.normal(size=41).astype(dtype)
    plain, kept = Adam(41, lr=0.01, dtype=dtype), Adam(41, lr=0.01, dtype=dtype)
    u1, u2, prev = u.copy(), u.copy(), np.full(41, np.nan, dtype)
    plain.step(u1, g)
    kept.step(u2, g, before=prev)
    np.testing.assert_array_equal(prev, u)
    np.testing.assert_array_equal(u2, u1)
    np.testing.assert_array_equal(kept.m, plain.m)
    assert not np.array_equal(u1, u)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_all_finite(dtype):
    """all_finite reads the exponent bits: inf, -inf and NaN (quiet, signalling, any sign) anywhere are caught; the
    largest finite numbers, subnormals and signed zeros are finite."""
    from rkgen.train._kernels import all_finite

    info = np.finfo(dtype)
    ok = np.array([0.0, -0.0, info.max, -info.max, info.tiny / 4, 1.0, -3.5] * 5, dtype)
    assert all_finite(ok) and all_finite(ok[:0]) and all_finite(ok[:1])
    bits = np.int32 if dtype == np.float32 else np.int64
    signalling = np.array([0x7F800001 if dtype == np.float32 else 0x7FF0000000000001], bits).view(dtype)[0]
    for bad in (np.inf, -np.inf, np.nan, -np.nan, signalling):
        for where in (0, 17, len(ok) - 1):
            a = ok.copy()
            a[where] = bad
            assert not all_finite(a), (bad, where)


def test_backtracking_accepts_only_decreasing_steps():
    res = train(
        tableau="rk4",
        network=fake("rk4"),
        model="odenet",
        dataset="spiral",
        iterations=40,
        eval_every=1,
        out=False,
        **TINY,
    )
    loss = res.history["train_loss"]
    assert res.status == "completed" and len(loss) == 41
    assert np.all(np.diff(loss) < 0)
    assert loss[-1] < 0.8 * loss[0]


def test_backtracking_rejects_failed_solves(monkeypatch):
    """A trial step whose implicit solve fails is rejected, never accepted."""
    net = fake("euler")
    forward = net.forward
    seen, fresh = [], {"n": 0}

    def flaky(*a, **k):  # every other new set of weights (a trial step) fails to solve
        y, tape = forward(*a, **k)
        if not any(np.array_equal(a[1], K) for K in seen):
            fresh["n"] += 1
            if fresh["n"] % 2 == 0:
                return y, tape._replace(failures=1)
            seen.append(a[1].copy())
        return y, tape

    flaky_net = SimpleNamespace(**{**vars(net), "forward": flaky})
    res = train(
        tableau="euler",
        network=flaky_net,
        model="rk",
        dataset="donut1d",
        iterations=10,
        eval_every=1,
        out=False,
        **TINY,
    )
    assert res.status == "completed" and fresh["n"] >= 20
    assert np.all(np.diff(res.history["train_loss"]) < 0)


# -- training on every data set ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dataset", "model", "opt", "width"),
    [
        ("donut1d", "rk", "gd-backtracking", 2),
        ("donut2d", "odenet", "gd-backtracking", 3),
        ("squares", "odenet-simplex", "gd-backtracking", 2),
        ("spiral", "net", "gd-backtracking", 2),
        ("donut3d-6c", "rk", "adam", 4),
        ("squares2d-4c", "net", "adam", 3),
        ("donut2d-3c", "odenet", "gd", 3),
    ],
)
def test_short_training_lowers_the_loss(dataset, model, opt, width):
    kw = {"epochs": 3, "lr": 0.01} if opt == "adam" else {"iterations": 30}
    if opt == "gd":
        kw["lr"] = 0.5
    res = train(
        tableau=None if model == "net" else "rk4",
        network=None if model == "net" else fake("rk4"),
        model=model,
        dataset=dataset,
        width=width,
        optimizer=opt,
        final_time=None if model == "net" else 2.0,
        out=False,
        **kw,
        **TINY,
    )
    assert res.status == "completed", res.message
    assert res.history["train_loss"][-1] < 0.97 * res.history["train_loss"][0]


def test_simplex_keeps_steps_on_the_simplex():
    res = train(
        tableau="euler",
        network=fake("euler"),
        model="odenet-simplex",
        dataset="spiral",
        final_time=3.0,
        iterations=60,
        out=False,
        **{**TINY, "layers": 6},
    )
    h = res.params["h"]
    assert np.all(h >= 0) and h.sum() == pytest.approx(3.0)
    assert np.count_nonzero(h) < 6  # some steps reach exactly 0 and the gradient stays finite


def test_same_seed_same_numbers_and_seed_matters():
    kw = dict(
        tableau="rk4",
        network=fake("rk4"),
        model="odenet",
        dataset="donut2d",
        optimizer="adam",
        epochs=2,
        batch_size=5,
        out=False,
        **TINY,
    )
    a, b = train(seed=3, **kw), train(seed=3, **kw)
    assert np.array_equal(a.flat, b.flat)
    assert np.array_equal(a.history["test_loss"], b.history["test_loss"])
    c = train(seed=4, **kw)
    assert not np.array_equal(a.flat, c.flat)


def test_data_scale_multiplies_the_inputs(tmp_path):
    kw = dict(tableau="euler", network=fake("euler"), dataset="squares", iterations=2, **TINY)
    a = train(out=False, **kw)
    b = train(out=str(tmp_path / "b"), data_scale=0.25, **kw)
    for k in ("x_train", "x_test"):
        np.testing.assert_array_equal(getattr(b.dataset, k), 0.25 * getattr(a.dataset, k))
    np.testing.assert_array_equal(b.dataset.c_train, a.dataset.c_train)
    assert not np.array_equal(a.flat, b.flat)  # the scaled data trained differently
    saved = Dataset.load(tmp_path / "b" / "dataset.npz")  # what --resume reads: the scaled points
    np.testing.assert_array_equal(saved.x_train, b.dataset.x_train)
    assert json.loads((tmp_path / "b" / "config.json").read_text())["config"]["data_scale"] == 0.25
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(RkgenError, match="--data-scale"):
            TrainConfig(data_scale=bad).resolved()


def test_learning_rate_is_honoured():
    kw = dict(
        tableau="euler",
        network=fake("euler"),
        dataset="donut1d",
        optimizer="adam",
        epochs=1,
        out=False,
        **TINY,
    )
    a, b = train(lr=1e-3, **kw), train(lr=1e-2, **kw)
    assert a.history["train_loss"][-1] != b.history["train_loss"][-1]


# -- run folders, resume, divergence -------------------------------------------------------------


def test_run_folder_files(tmp_path):
    out = tmp_path / "r1"
    res = train(
        tableau="rk4",
        network=fake("rk4"),
        model="odenet",
        dataset="spiral",
        iterations=20,
        out=str(out),
        **TINY,
    )
    for name in (
        "config.json",
        "dataset.npz",
        "history.csv",
        "params.npz",
        "state.npz",
        "summary.json",
    ):
        assert (out / name).stat().st_size > 0, name
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["config"]["iterations"] == 20 and cfg["config"]["eval_every"] == 10
    assert cfg["network"]["name"] == "rk4" and cfg["network"]["B"][1] == pytest.approx(1 / 3)
    hist = read_history(out / "history.csv")
    assert hist["iteration"].tolist() == [0, 10, 20]
    assert np.array_equal(hist["train_loss"], res.history["train_loss"])
    with np.load(out / "params.npz") as z:
        assert np.array_equal(z["K"], res.params["K"]) and z["h"].shape == (3,)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["iteration"] == 20
    with pytest.raises(RkgenError, match="exists and is not empty"):
        train(tableau="rk4", network=fake("rk4"), out=str(out), **TINY)


def test_default_run_folders_are_unique(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dirs = {create_run_dir(None, "spiral", "rk4", "rk") for _ in range(20)}
    assert len(dirs) == 20 and all(d.parent == tmp_path / "runs" for d in dirs)
    assert all(d.name.startswith("spiral-rk4-rk-") for d in dirs)


@pytest.mark.parametrize(
    ("opt", "stop", "kw"),
    [
        ("gd-backtracking", 13, {"iterations": 30}),
        ("gd", 7, {"iterations": 20, "lr": 0.3}),
        ("adam", 17, {"epochs": 3, "batch_size": 7}),
    ],  # 17: in the middle of the second epoch
)
def test_resume_equals_an_uninterrupted_run(tmp_path, opt, stop, kw):
    common = dict(
        tableau="rk4",
        network=fake("rk4"),
        model="odenet-simplex",
        dataset="spiral",
        optimizer=opt,
        eval_every=1,
        **kw,
        **TINY,
    )
    whole = train(out=str(tmp_path / "whole"), **common)
    part = train(out=str(tmp_path / "part"), interrupt_at=stop, **common)
    assert part.status == "interrupted" and part.iteration == stop
    assert json.loads((tmp_path / "part" / "summary.json").read_text())["status"] == "interrupted"
    done = train(resume=tmp_path / "part", network=fake("rk4"))
    assert done.status == "completed"
    assert np.array_equal(done.flat, whole.flat)
    for k in ("iteration", "train_loss", "test_loss", "test_accuracy"):
        assert np.array_equal(done.history[k], whole.history[k]), k
    on_disk = read_history(tmp_path / "part" / "history.csv")
    assert np.array_equal(on_disk["train_loss"], whole.history["train_loss"])


def test_resume_can_extend_and_refuses_other_options(tmp_path):
    common = dict(tableau="euler", network=fake("euler"), dataset="donut1d", **TINY)
    train(out=str(tmp_path / "a"), iterations=10, **common)
    more = train(resume=tmp_path / "a", network=fake("euler"), iterations=15)
    ref = train(out=str(tmp_path / "b"), iterations=15, **common)
    assert more.iteration == 15 and np.array_equal(more.flat, ref.flat)
    with pytest.raises(RkgenError, match="only --iterations"):
        train(resume=tmp_path / "a", network=fake("euler"), layers=5)
    with pytest.raises(RkgenError, match="not a resumable run folder"):
        train(resume=tmp_path, network=fake("euler"))


def test_divergence_stops_and_keeps_the_last_good_parameters(tmp_path):
    res = train(
        tableau="euler",
        network=fake("euler"),
        model="odenet",
        dataset="spiral",
        optimizer="gd",
        lr=1e6,
        iterations=50,
        final_time=5.0,
        eval_every=1,
        activation="softplus",
        loss="cross-entropy",
        out=str(tmp_path / "d"),
        **TINY,
    )
    assert res.status == "diverged" and "non-finite" in res.message
    assert np.all(np.isfinite(res.flat))
    model = res.model
    assert np.isfinite(model.forward(res.flat, res.dataset.x_train, res.dataset.c_train).cost)
    with np.load(tmp_path / "d" / "params.npz") as z:
        assert np.array_equal(z["flat"], res.flat)


def test_failed_implicit_solve_stops_gd():
    net = fake("euler")
    forward = net.forward
    calls = {"n": 0}

    def failing(*a, **k):
        calls["n"] += 1
        y, tape = forward(*a, **k)
        return y, (tape._replace(failures=2, iterations=50) if calls["n"] > 4 else tape)

    broken = SimpleNamespace(**{**vars(net), "forward": failing})
    res = train(
        tableau="euler",
        network=broken,
        dataset="donut1d",
        optimizer="gd",
        iterations=10,
        out=False,
        **TINY,
    )
    assert res.status == "diverged" and "did not converge" in res.message


# -- configuration and the command line ----------------------------------------------------------


def test_config_checks():
    with pytest.raises(RkgenError, match="--epochs"):
        TrainConfig(optimizer="adam", iterations=5).resolved()
    with pytest.raises(RkgenError, match="--lr"):
        TrainConfig(lr=0.1).resolved()
    with pytest.raises(RkgenError, match="either --final-time or --step"):
        TrainConfig(final_time=1.0, step=0.1).resolved()
    c = TrainConfig(optimizer="adam").resolved()
    assert (c.lr, c.epochs, c.eval_every, c.final_time) == (1e-3, 40, 1, 5.0)
    assert TrainConfig(model="net").resolved().tableau is None


def test_cli_runs_and_writes(tmp_path, fake_loader, capsys):
    out = tmp_path / "cli"
    code = cli.main(
        [
            "--tableau",
            "rk4",
            "--dataset",
            "donut1d",
            "--samples",
            "40",
            "--layers",
            "2",
            "--iterations",
            "5",
            "--out",
            str(out),
            "--no-plots",
            "--seed",
            "2",
        ]
    )
    assert code == 0
    text = capsys.readouterr().out
    assert text.startswith("completed: rk-rk4 on donut1d, 5 iterations") and str(out) in text
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["seed"] == 2 and cfg["samples"] == 40 and cfg["plots"] is False
    assert cli.main(["--resume", str(out), "--iterations", "8", "--no-plots"]) == 0
    assert json.loads((out / "summary.json").read_text())["iteration"] == 8


def test_cli_errors_are_one_line(tmp_path, fake_loader, capsys):
    code = cli.main(["--dataset", "nope", "--out", str(tmp_path / "x")])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("rkgen: error: unknown dataset 'nope'")
    assert err.count("\n") == 1
    code = cli.main(["--optimizer", "adam", "--iterations", "3", "--out", str(tmp_path / "y")])
    assert code == 2 and "adam counts --epochs" in capsys.readouterr().err


def test_cli_reports_divergence(tmp_path, fake_loader, capsys):
    code = cli.main(
        [
            "--tableau",
            "euler",
            "--model",
            "odenet",
            "--dataset",
            "spiral",
            "--samples",
            "40",
            "--optimizer",
            "gd",
            "--lr",
            "1e6",
            "--final-time",
            "5",
            "--activation",
            "softplus",
            "--loss",
            "cross-entropy",
            "--iterations",
            "30",
            "--out",
            str(tmp_path / "z"),
            "--no-plots",
        ]
    )
    assert code == 1
    assert "rkgen: error: the cost became non-finite" in capsys.readouterr().err


def test_progress_line():
    import io

    buf = io.StringIO()
    p = Progress(200, enabled=True, stream=buf)
    p.start(0)
    p.metrics(0.5, 0.9, 0.6, 0.85)
    p.update(100, 0.4)
    p.close()
    line = p.line()
    assert "100/200 it" in line and "acc 90.0%/85.0%" in line and "#" * 12 in line
    assert Progress(5, enabled=None, stream=io.StringIO()).enabled is False


def test_dataset_round_trip(tmp_path):
    ds = make_dataset("donut3d-6c", np.random.default_rng(0), 30)
    ds.save(tmp_path / "d.npz")
    back = Dataset.load(tmp_path / "d.npz")
    assert back.name == ds.name and back.n_classes == 6
    assert np.array_equal(back.x_test, ds.x_test) and np.array_equal(back.c_train, ds.c_train)


def test_ctrl_c_stops_cleanly_and_resumes_exactly(tmp_path):
    """A real SIGINT in the middle of training: the run stops at an iteration boundary and saves."""
    import os
    import signal

    net = fake("euler")
    forward = net.forward
    calls = {"n": 0}

    def interrupting(*a, **k):
        calls["n"] += 1
        if calls["n"] == 12:
            os.kill(os.getpid(), signal.SIGINT)
        return forward(*a, **k)

    before = signal.getsignal(signal.SIGINT)  # SIG_IGN in a background job, else the default
    kw = dict(tableau="euler", dataset="donut1d", iterations=20, eval_every=1, **TINY)
    whole = train(network=net, out=str(tmp_path / "w"), **kw)
    part = train(
        network=SimpleNamespace(**{**vars(net), "forward": interrupting}),
        out=str(tmp_path / "p"),
        **kw,
    )
    assert part.status == "interrupted" and 0 < part.iteration < 20
    assert signal.getsignal(signal.SIGINT) is before  # the caller's handler restored
    done = train(resume=tmp_path / "p", network=net)
    assert np.array_equal(done.flat, whole.flat)
