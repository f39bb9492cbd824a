"""Parameter layouts in the trainer (--params shared|stage|continuous), and swapping the solver of a
continuous run (rkgen evaluate).

Most tests run on the numpy fakes of tests/fake_net.py, whose stage and continuous layouts are written
independently of rkgen.runtime; the compiled golden modules (euler, rk4) are checked against them and
against finite differences once their modules have the layouts.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fake_net import fake

import rkgen.train.models as models_mod
from conftest import GENERATED
from rkgen.errors import RkgenError
from rkgen.train import cli as train_cli
from rkgen.train import evaluate_cli, losses, memory, plots, predict_cli
from rkgen.train.evaluate import evaluate_run, swapped
from rkgen.train.models import Model
from rkgen.train.predict import load_run
from rkgen.train.trainer import train

LAYOUTS = ("shared", "stage", "continuous")
TINY = dict(samples=40, layers=3, plots=False, progress=False)


@pytest.fixture
def fake_loader(monkeypatch):
    """Tableau names load fake networks (training, load_run and evaluate all call models._load)."""
    monkeypatch.setattr(models_mod, "_load", lambda spec: fake(spec))


def _model(layout, kind="odenet", tab="rk4", N=4, width=3, classes=2, **kw):
    return Model(kind, N, width, 2, classes, network=fake(tab), params=layout, final_time=1.2, **kw)


# -- the flat layout -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("layout", "K", "beta"),
    [("shared", (4, 3, 3), (4, 3)), ("stage", (4, 4, 3, 3), (4, 4, 3)), ("continuous", (5, 3, 3), (5, 3))],
)
def test_flat_vector_and_its_views(layout, K, beta):
    model = _model(layout)
    shapes = {k: shape for k, (_, _, shape) in model.layout.items()}
    assert shapes == {"K": K, "beta": beta, "h": (4,), "W": (1, 3), "mu": (1,)}
    # the views tile the flat vector in this order, without gaps
    ends = [(a, b) for a, b, _ in model.layout.values()]
    assert (
        ends[0][0] == 0
        and all(b == a2 for (_, b), (a2, _) in zip(ends[:-1], ends[1:], strict=True))
        and ends[-1][1] == model.size
    )
    assert model.size == int(np.prod(K) + np.prod(beta)) + 4 + 3 + 1
    flat = np.arange(model.size, dtype=float)
    v = model.views(flat)
    assert v["K"].flat[0] == 0.0 and v["beta"].flat[0] == np.prod(K)
    v["K"][-1, ...] = -1.0  # views write through
    assert flat[int(np.prod(K)) - 1] == -1.0
    if layout == "continuous":
        assert model.nodes.tolist() == pytest.approx([0.0, 0.3, 0.6, 0.9, 1.2], abs=1e-15)
        assert model.nodes[-1] == 1.2 and not model.nodes.flags.writeable
    else:
        assert model.nodes is None


def test_initialisation_has_the_same_distribution_per_entry():
    a = 1.0 / np.sqrt(3)
    for layout in LAYOUTS:
        model = _model(layout, N=40)
        v = model.views(model.init_params(np.random.default_rng(0)))
        for k in ("K", "beta"):
            assert np.all(np.abs(v[k]) <= a) and np.abs(v[k]).max() > 0.9 * a
        assert abs(np.mean(v["K"] ** 2) - a * a / 3) < 0.1 * a * a  # uniform on [-a, a]: variance a^2/3
        assert np.all(v["h"] == model.step0) and model.step0 == pytest.approx(1.2 / 40)
    shared = _model("shared").init_params(np.random.default_rng(7))
    # the shared layout draws as before: K, beta, W, mu in this order, uniform on [-a, a]
    rng = np.random.default_rng(7)
    want = np.concatenate([rng.uniform(-a, a, n) for n in (36, 12)])
    assert np.array_equal(shared[:48], want)


def test_net_and_old_modules_refuse_other_layouts(fake_loader, capsys):
    with pytest.raises(RkgenError, match="--model net has one"):
        Model("net", 3, 2, 2, 2, params="stage")
    old = fake("euler")
    del old.PARAMS
    with pytest.raises(RkgenError, match="regenerate it"):
        Model("rk", 3, 2, 2, 2, network=old, params="continuous")
    Model("rk", 3, 2, 2, 2, network=old)  # the shared layout passes no new options: old modules serve it
    assert train_cli.main(["--model", "net", "--params", "continuous", "--iterations", "1", "--no-plots"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkgen: error: --params continuous applies to the Runge-Kutta"), err
    with pytest.raises(RkgenError, match="unknown params 'stages'; choose one of shared, stage, continuous"):
        train(tableau="euler", params="stages", **TINY)


def test_memory_counts_the_parameters_of_each_layout():
    N, d, s = 10, 3, 4
    assert memory.parameters(N, d, s, "shared") == N * (d * d + d + 1) == 130
    assert memory.parameters(N, d, s, "stage") == N * s * (d * d + d) + N == 490
    assert memory.parameters(N, d, s, "continuous") == (N + 1) * (d * d + d) + N == 142
    kw = dict(layers=N, width=d, stages=s, samples=100, test_samples=100, dim=2, classes=2)
    for layout in LAYOUTS:
        est = memory.estimate(params=layout, **kw)
        assert est.items["parameters"] == 8 * 8 * (memory.parameters(N, d, s, layout) + 2 * (d + 1))
    model = _model("stage", N=10, width=3)
    assert model.size == memory.parameters(10, 3, 4, "stage") + 3 + 1


# -- gradients -------------------------------------------------------------------------------------


def _fd(model, flat, x, c, eps=1e-6):
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


def _setup(model, seed=3, m=7):
    rng = np.random.default_rng(seed)
    flat = model.init_params(rng, scale=2.0)
    a, b, _ = model.layout["h"]
    # steps off the uniform grid, so that no stage time sits on a node (where t -> K(t) has a kink)
    flat[a:b] = model.step0 * (1.0 + 0.3 * rng.uniform(-1, 1, b - a))
    model.project(flat)
    return flat, rng.normal(size=(m, 2)), rng.integers(0, model.n_classes, m)


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize(
    ("kind", "tab", "field", "act"),
    [
        ("rk", "euler", "resnet", "tanh"),
        ("odenet", "rk4", "stable", "softplus"),
        ("odenet", "implicit_midpoint", "resnet", "sigmoid"),
    ],
)
def test_gradient_matches_finite_differences(layout, kind, tab, field, act):
    model = Model(kind, 4, 3, 2, 2, network=fake(tab), field=field, activation=act, params=layout, final_time=1.2)
    flat, x, c = _setup(model)
    grad, fd = _fd(model, flat, x, c)
    assert np.max(np.abs(grad - fd)) < 1e-7 * max(1.0, np.max(np.abs(fd)))
    v = model.views(grad)
    assert np.max(np.abs(v["K"])) > 1e-4
    if kind == "rk":
        assert np.all(v["h"] == 0.0)
    else:
        assert np.max(np.abs(v["h"])) > 1e-4


def _stage_values(fake_net, h, nodes, P):
    """The fake's own interpolation of nodal values P at the stage times of h (the test oracle's, not rkgen's)."""
    _, seg, w = fake_net.forward.__self__.stage_times(h, np.asarray(nodes, dtype=float))
    w = w.reshape(w.shape + (1,) * (P.ndim - 1))
    return (1.0 - w) * P[seg] + w * P[seg + 1]


def test_continuous_gradient_in_h_includes_the_motion_of_the_stage_times():
    """The fake's dh in the continuous layout, less the stage layout's dh at the interpolated parameters, is the
    motion term sum_ji dJ/dt_ji dt_ji/dh_k: checked against moving only the stage times."""
    model = _model("continuous", kind="odenet", tab="heun3")
    flat, x, c = _setup(model)
    grad = np.zeros(model.size)
    fw = model.loss_and_grad(flat, x, c, grad)
    v = model.views(flat)
    h = v["h"].copy()
    stage = fake("heun3")
    Ks, bs = _stage_values(stage, h, model.nodes, v["K"]), _stage_values(stage, h, model.nodes, v["beta"])
    p = fw.dlogits @ v["W"]
    _, _, _, dh_stage = stage.backward(stage.forward(model.pad(x), Ks, bs, h, params="stage")[1], p)
    assert np.max(np.abs(model.views(grad)["h"] - dh_stage)) > 1e-3  # the motion term is there
    eps = 1e-6
    motion = np.zeros(len(h))
    for k in range(len(h)):
        costs = []
        for sgn in (1, -1):
            hk = h.copy()
            hk[k] += sgn * eps
            u = flat.copy()
            Kk, bk = _stage_values(stage, hk, model.nodes, v["K"]), _stage_values(stage, hk, model.nodes, v["beta"])
            yN = stage.forward(model.pad(x), Kk, bk, h, params="stage")[0]
            costs.append(losses.get(model.loss)(yN @ model.views(u)["W"].T + model.views(u)["mu"], c)[0])
        motion[k] = (costs[0] - costs[1]) / (2 * eps)
    assert np.allclose(model.views(grad)["h"] - dh_stage, motion, rtol=1e-6, atol=1e-9)


def test_nodes_of_another_grid_are_interpolated_in_the_model():
    """A model on N layers with the node times of another grid (as rkgen evaluate builds it) runs the module's
    stage layout at the interpolated values: its cost agrees with np.interp of every entry, its gradient with
    finite differences."""
    model = Model(
        "odenet", 5, 2, 2, 2, network=fake("rk4"), params="continuous", final_time=1.0, nodes=np.linspace(0.0, 1.0, 4)
    )
    assert model.layout["K"][2] == (4, 2, 2)
    flat, x, c = _setup(model, seed=5)
    v = model.views(flat)
    times = model.stage_times(v["h"])
    Ks = np.stack(
        [[np.interp(t, model.nodes, v["K"][:, a, b]) for a in range(2) for b in range(2)] for t in times.ravel()]
    ).reshape(times.shape + (2, 2))
    bs = np.stack([[np.interp(t, model.nodes, v["beta"][:, a]) for a in range(2)] for t in times.ravel()]).reshape(
        times.shape + (2,)
    )
    assert times.max() < 1.0  # inside the nodes, where np.interp interpolates as the layout does
    yN = fake("rk4").forward(model.pad(x), Ks, bs, v["h"], params="stage")[0]
    assert np.allclose(model.forward(flat, x).y_final, yN, rtol=0, atol=1e-13)
    grad, fd = _fd(model, flat, x, c)
    assert np.max(np.abs(grad - fd)) < 1e-7 * max(1.0, np.max(np.abs(fd)))


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("kind", ["rk", "odenet", "odenet-simplex"])
def test_a_training_step_lowers_the_loss(layout, kind):
    model = _model(layout, kind=kind, N=3, width=2)
    rng = np.random.default_rng(1)
    flat = model.init_params(rng)
    x, c = rng.normal(size=(30, 2)), (rng.uniform(size=30) > 0.5).astype(int)
    grad = np.zeros(model.size)
    before = model.loss_and_grad(flat, x, c, grad).cost
    step = flat - 0.5 * grad
    model.project(step)
    after = model.forward(step, x, c).cost
    assert after < before - 1e-4 * np.dot(grad, grad)
    if kind == "odenet-simplex":
        assert model.views(step)["h"].sum() == pytest.approx(1.2)


# -- runs: files, resume, reload -------------------------------------------------------------------


def test_resume_is_bit_identical_in_the_continuous_layout(tmp_path):
    common = dict(
        tableau="rk4",
        network=fake("rk4"),
        model="odenet",
        params="continuous",
        dataset="spiral",
        iterations=12,
        eval_every=1,
        **TINY,
    )
    whole = train(out=str(tmp_path / "whole"), **common)
    part = train(out=str(tmp_path / "part"), interrupt_at=5, **common)
    assert part.status == "interrupted"
    done = train(resume=tmp_path / "part", network=fake("rk4"))
    assert done.status == "completed" and np.array_equal(done.flat, whole.flat)
    assert np.array_equal(done.history["train_loss"], whole.history["train_loss"])
    saved = json.loads((tmp_path / "part" / "config.json").read_text())
    assert saved["config"]["params"] == "continuous"
    assert saved["layout"] == {
        "params": "continuous",
        "K": [4, 2, 2],
        "beta": [4, 2],
        "nodes": [0.0, 5 / 3, 10 / 3, 5.0],
    }
    with np.load(tmp_path / "part" / "params.npz") as z:
        assert z["nodes"].tolist() == saved["layout"]["nodes"] and z["K"].shape == (4, 2, 2)
    assert not np.array_equal(whole.params["h"], np.full(3, 5 / 3))  # the steps were learned


@pytest.fixture(scope="module")
def layout_runs(tmp_path_factory):
    """Tiny runs with fake networks: rk4 in the stage layout, euler (rk) and rk4 (odenet) continuous, and a
    shared euler run."""
    base = tmp_path_factory.mktemp("layouts")
    mp = pytest.MonkeyPatch()
    mp.setattr(models_mod, "_load", lambda spec: fake(spec))
    specs = {
        "stage": dict(tableau="rk4", params="stage", dataset="donut2d", iterations=4),
        "continuous": dict(tableau="euler", params="continuous", dataset="spiral", iterations=6, samples=50),
        "odenet": dict(tableau="rk4", model="odenet", params="continuous", dataset="squares", iterations=3),
        "shared": dict(tableau="euler", dataset="spiral", iterations=2),
    }
    try:
        for name, kw in specs.items():
            res = train(out=str(base / name), **{**TINY, **kw})
            assert res.status == "completed", res.message
        yield {name: base / name for name in specs}
    finally:
        mp.undo()


@pytest.mark.parametrize("name", ["stage", "continuous", "odenet"])
def test_load_run_and_predict_reproduce_the_run(layout_runs, fake_loader, name, tmp_path, capsys):
    path = layout_runs[name]
    run = load_run(path)
    final = json.loads((path / "summary.json").read_text())["final"]
    assert run.model.params == json.loads((path / "config.json").read_text())["config"]["params"]
    assert run.evaluate("test") == final["test_accuracy"] and run.evaluate("train") == final["train_accuracy"]
    ds = run.dataset
    pts = tmp_path / "pts.npz"
    np.savez(pts, x=ds.x_test, y=ds.c_test)
    assert predict_cli.main([str(path), str(pts), "-o", str(tmp_path / "p.csv")]) == 0
    err = capsys.readouterr().err
    assert f"{100 * final['test_accuracy']:.2f}%" in err


def test_load_run_refuses_changed_node_times(layout_runs, fake_loader, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(layout_runs["continuous"], bad)
    with np.load(bad / "params.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["nodes"] = arrays["nodes"] * 1.5
    np.savez(bad / "params.npz", **arrays)
    with pytest.raises(RkgenError, match="node times"):
        load_run(bad)


# -- rkgen evaluate --------------------------------------------------------------------------------


def test_evaluate_at_the_runs_own_grid_is_the_run(layout_runs, fake_loader, tmp_path, capsys):
    path = layout_runs["continuous"]
    run = load_run(path)
    out = tmp_path / "swap"
    code = evaluate_cli.main([str(path), "--tableau", "euler", "rk4", "--layers", "3", "6", "--out", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    assert "euler *" in text and "* the run's own network" in text
    rows = evaluate_run(run, ["euler", "rk4"], [3, 6])
    assert [(r.tableau, r.layers) for r in rows] == [("euler", 3), ("euler", 6), ("rk4", 3), ("rk4", 6)]
    own = rows[0]
    assert own.run_network and own.yN_change == 0.0
    assert own.test_accuracy == run.evaluate("test") and own.train_accuracy == run.evaluate("train")
    assert all(r.yN_change > 1e-3 for r in rows[1:]) and not any(r.run_network for r in rows[1:])
    assert [r.step for r in rows] == pytest.approx([5 / 3, 5 / 6, 5 / 3, 5 / 6])
    # rk4 at N = 6: the nodal values interpolated at the new stage times, written out with np.interp
    model, flat = swapped(run, fake("rk4"), 6)
    v, old = model.views(flat), run.model.views(run.flat)
    times = model.stage_times(v["h"])
    d = run.model.d
    Ks = np.array(
        [
            [[np.interp(t, run.model.nodes, old["K"][:, a, b]) for b in range(d)] for a in range(d)]
            for t in times.ravel()
        ]
    ).reshape(times.shape + (d, d))
    bs = np.array([[np.interp(t, run.model.nodes, old["beta"][:, a]) for a in range(d)] for t in times.ravel()])
    x = run.model.pad(run.dataset.x_test)
    yN = fake("rk4").forward(x, Ks, bs.reshape(times.shape + (d,)), v["h"], params="stage")[0]
    y_run = run.model.forward(run.flat, run.dataset.x_test).y_final
    assert rows[3].yN_change == pytest.approx(np.abs(yN - y_run).max() / np.abs(y_run).max(), rel=1e-12)
    z = yN @ old["W"].T + old["mu"]
    assert rows[3].test_accuracy == np.mean((z[:, 0] > 0) == (run.dataset.c_test == 1))
    csv = (out / "evaluate.csv").read_text().splitlines()
    assert csv[0] == "tableau,layers,step,test_accuracy,train_accuracy,yN_change,run_network"
    assert csv[1].startswith("euler,3,") and csv[1].endswith(",0.0,1") and len(csv) == 5
    for ext in ("png", "pdf"):
        assert (out / f"evaluate.{ext}").stat().st_size > 2000


def test_evaluate_a_run_with_learned_steps(layout_runs, fake_loader):
    run = load_run(layout_runs["odenet"])
    (row,) = evaluate_run(run, "rk4", 3)
    assert not row.run_network and row.step == pytest.approx(5 / 3)  # equal steps, not the learned ones
    assert 0.0 <= row.test_accuracy <= 1.0 and row.yN_change > 0.0


@pytest.mark.parametrize("name", ["shared", "stage"])
def test_evaluate_refuses_runs_outside_the_continuous_layout(layout_runs, fake_loader, name, capsys):
    assert evaluate_cli.main([str(layout_runs[name]), "--tableau", "rk4", "--layers", "4"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("rkgen: error:"), err
    assert f"{name} layout" in err[0] and "only the continuous layout defines a network at any step size" in err[0]
    assert "Ott et al., ICLR 2021" in err[0]
    with pytest.raises(RkgenError, match="positive integers"):
        evaluate_run(layout_runs["continuous"], "rk4", [0])


# -- plots -----------------------------------------------------------------------------------------


def test_continuous_step_plot_shows_stage_and_node_times(layout_runs, fake_loader):
    from types import SimpleNamespace

    run = load_run(layout_runs["odenet"])
    res = SimpleNamespace(model=run.model, params=run.params, dataset=run.dataset, config=run.config)
    fig = plots.steps_figure(res)
    ax_h, ax_t = fig.axes
    assert ax_h.get_xlabel() == r"layer $j$" and ax_h.get_ylabel() == r"step $h_j$"
    assert ax_t.get_xlabel() == r"time $t$" and ax_t.get_ylabel() == r"layer $j$"
    assert "continuous parameters" in fig.get_suptitle()
    labels = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
    assert r"stage times $t_j + c_i h_j$" in labels and r"node times $\tau_k$" in labels
    (stages,) = [ln for ln in ax_t.lines if ln.get_label().startswith("stage times")]
    want = run.model.stage_times(run.params["h"])
    assert np.array_equal(stages.get_xdata(), want.ravel()) and want.shape == (3, 4)
    assert np.array_equal(stages.get_ydata(), np.repeat([1, 2, 3], 4))
    nodes = [ln.get_xdata()[0] for ln in ax_t.lines if ln.get_linestyle() == ":"]
    assert nodes == pytest.approx(run.model.nodes.tolist())
    shared = plots.steps_figure(
        SimpleNamespace(model=_model("shared"), params={"h": np.full(4, 0.3)}, dataset=run.dataset, config=run.config)
    )
    assert len(shared.axes) == 1


# -- the compiled modules --------------------------------------------------------------------------


def _golden(name):
    from rkgen.codegen import import_path

    net = import_path(GENERATED / f"{name}_net.py")
    if "continuous" not in getattr(net, "PARAMS", ()):
        pytest.skip(f"generated/{name}_net.py has no parameter layouts yet")
    return net


@pytest.mark.numba
@pytest.mark.parametrize("name", ["euler", "rk4"])
@pytest.mark.parametrize("layout", LAYOUTS)
def test_compiled_module_agrees_with_the_fake_and_with_finite_differences(name, layout):
    net, ref = _golden(name), fake(name)
    assert tuple(net.PARAMS) == LAYOUTS
    assert np.allclose(net.C, ref.C, rtol=0, atol=1e-15)
    rng = np.random.default_rng(11)
    m, d, N, s = 6, 3, 4, net.STAGES
    rows = {"shared": N, "stage": N, "continuous": N + 1}[layout]
    lead = (rows, s) if layout == "stage" else (rows,)
    y0, p = rng.normal(size=(m, d)), rng.normal(size=(m, d))
    K, beta = rng.normal(size=lead + (d, d)), rng.normal(size=lead + (d,))
    h = rng.uniform(0.15, 0.35, N)
    kw = {"params": layout} | ({"nodes": np.linspace(0.0, 1.0, N + 1)} if layout == "continuous" else {})
    for field in ("resnet", "stable"):
        yN, tape = net.forward(y0, K, beta, h, field=field, **kw)
        yR, tR = ref.forward(y0, K, beta, h, field=field, **kw)
        assert np.allclose(yN, yR, rtol=0, atol=1e-13)
        for a, b in zip(net.backward(tape, p), ref.backward(tR, p), strict=True):
            assert a.shape == b.shape and np.allclose(a, b, rtol=1e-12, atol=1e-12)
    # the whole model's gradient against finite differences, the compiled module inside
    model = Model("odenet", N, d, 2, 2, network=net, params=layout, final_time=1.2, activation="softplus")
    flat, x, c = _setup(model, seed=4)
    grad, fd = _fd(model, flat, x, c)
    assert np.max(np.abs(grad - fd)) < 1e-7 * max(1.0, np.max(np.abs(fd)))
