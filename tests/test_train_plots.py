"""Every plot kind is written, as PNG and PDF, and is not empty (smoke tests with tiny runs)."""

import numpy as np
import pytest
from fake_net import fake
from matplotlib.figure import Figure

from rkgen.train import plots, train
from rkgen.train.config import TrainConfig
from rkgen.train.datasets import make_dataset
from rkgen.train.trainer import build_model

KINDS_2D = {"data", "prediction", "features", "layers", "history", "steps"}


def _files(run_dir):
    return {p.stem for p in run_dir.iterdir() if p.suffix in (".png", ".pdf")}


def _check(run_dir, expect):
    assert _files(run_dir) == expect
    for stem in expect:
        for ext in (".png", ".pdf"):
            assert (run_dir / (stem + ext)).stat().st_size > 2000, stem + ext
    # a PNG that is not blank: more than one colour
    from matplotlib.image import imread

    img = imread(run_dir / "prediction.png") if "prediction" in expect else None
    if img is not None:
        assert np.unique(img.reshape(-1, img.shape[-1]), axis=0).shape[0] > 50


def test_plots_of_a_2d_binary_run(tmp_path):
    res = train(
        tableau="rk4",
        network=fake("rk4"),
        model="odenet-simplex",
        dataset="spiral",
        samples=50,
        layers=4,
        iterations=5,
        out=str(tmp_path / "a"),
    )
    assert res.status == "completed" and "plots failed" not in res.message
    _check(tmp_path / "a", KINDS_2D)


def test_plots_of_a_3d_multiclass_net_run(tmp_path):
    res = train(
        model="net",
        dataset="donut3d-3c",
        samples=60,
        layers=3,
        width=5,
        optimizer="adam",
        epochs=1,
        out=str(tmp_path / "b"),
    )
    assert "plots failed" not in res.message
    _check(tmp_path / "b", {"data", "features", "layers", "history"})  # no input plane, no steps


def test_plots_with_pca_of_wide_features(tmp_path):
    res = train(
        tableau="euler",
        network=fake("euler"),
        dataset="squares2d-4c",
        samples=60,
        layers=2,
        width=6,
        iterations=3,
        out=str(tmp_path / "c"),
    )
    assert "plots failed" not in res.message
    _check(tmp_path / "c", KINDS_2D)


def test_extent_comes_from_the_data():
    pts = np.array([[10.0, -3.0], [20.0, 5.0]])
    assert plots.extent(pts, 0.1) == pytest.approx((9.0, 21.0, -3.8, 5.8))
    assert plots.layer_choice(15) == [0, 5, 10, 15]
    assert plots.layer_choice(2) == [0, 1, 2]


def test_pca_recovers_a_plane():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(200, 2)) * [3.0, 1.0]
    basis = np.linalg.qr(rng.normal(size=(5, 2)))[0].T
    y = z @ basis + 7.0
    mean, comps, coords = plots.pca(y, 2)
    assert np.allclose(mean, y.mean(axis=0))
    assert np.allclose(np.abs(comps @ basis.T), np.eye(2), atol=0.05)
    assert np.allclose(coords @ comps + mean, y)


def test_draw_helpers_compose_a_figure(tmp_path):
    ds = make_dataset("donut1d", np.random.default_rng(0), 40)
    fig = Figure(layout="constrained")
    plots.draw_dataset(fig.add_subplot(1, 2, 1), ds)
    plots.draw_steps(fig.add_subplot(1, 2, 2), np.array([0.5, 0.0, 0.5]))
    files = plots.save(fig, tmp_path / "combo")
    assert [f.name for f in files] == ["combo.png", "combo.pdf"]
    assert all(f.stat().st_size > 1000 for f in files)


# -- labels, colorbars, legends and titles of the run's figures (inspected, not drawn) ----------


@pytest.fixture(scope="module")
def binary_run():
    return train(
        tableau="euler",
        network=fake("euler"),
        model="odenet-simplex",
        dataset="spiral",
        samples=40,
        layers=3,
        iterations=2,
        out=False,
    )


@pytest.fixture(scope="module")
def six_class_run():
    return train(
        tableau="euler",
        network=fake("euler"),
        dataset="donut2d-6c",
        samples=60,
        layers=2,
        optimizer="adam",
        epochs=1,
        out=False,
    )


@pytest.fixture(scope="module")
def net_3d_run():
    return train(model="net", dataset="squares3d-4c", samples=40, layers=2, iterations=2, out=False)


def _colorbar_axes(fig):
    return {im.colorbar.ax for ax in fig.axes for im in ax.images if im.colorbar is not None}


def _panels(fig):
    """The axes of a figure other than its colorbars."""
    cbars = _colorbar_axes(fig)
    return [ax for ax in fig.axes if ax not in cbars]


def _check_figures(res, names, tableau):
    figs = plots.run_figures(res)
    assert set(figs) == names
    n = res.dataset.n_classes
    for name, fig in figs.items():
        assert isinstance(fig, Figure)
        title = fig.get_suptitle()
        assert plots.MODEL_LABELS[res.config.model] in title, name
        assert res.dataset.name in title and f"N = {res.model.N}" in title, name
        if tableau:
            assert f"({tableau})" in title, name
        for ax in _panels(fig):
            assert ax.get_xlabel() and ax.get_ylabel(), (name, ax.get_title())
            if hasattr(ax, "zaxis"):
                assert ax.get_zlabel(), name
            assert ax.get_xticks().size and ax.get_yticks().size, name
            if ax.images:  # a probability background: the figure has its labelled colorbar
                cbars = _colorbar_axes(fig)
                assert cbars, name
                labels = [cax.get_ylabel() for cax in cbars]
                assert all(("P(" in lab or "probability" in lab) for lab in labels), labels
        if name in ("data", "prediction", "features", "layers"):
            texts = [t.get_text() for leg in fig.legends for t in leg.get_texts()]
            assert texts == plots.class_labels(n, res.dataset.class_names), name
    return figs


def test_figures_of_a_binary_run_are_labelled(binary_run):
    figs = _check_figures(binary_run, KINDS_2D, "euler")
    assert figs["prediction"].get_suptitle() == "ODENet+simplex (euler), spiral, N = 3"
    (cax,) = _colorbar_axes(figs["prediction"])
    assert cax.get_ylabel() == "P(class 1)"
    (cax,) = _colorbar_axes(figs["layers"])  # one colorbar for the row of snapshots
    assert len(_panels(figs["layers"])) == 4
    (ax,) = _panels(figs["steps"])
    assert ax.get_xlabel() == "layer $j$" and "h_j" in ax.get_ylabel()
    assert list(ax.get_xticks()) == [1, 2, 3]
    loss, acc = _panels(figs["history"])
    assert loss.get_xlabel() == "iteration" and "loss" in loss.get_ylabel()
    assert "accuracy" in acc.get_ylabel()
    assert [t.get_text() for t in acc.get_legend().get_texts()] == ["train", "test"]


def test_figures_of_a_six_class_run_have_a_legend_entry_per_class(six_class_run):
    figs = _check_figures(six_class_run, KINDS_2D, "euler")
    (leg,) = figs["data"].legends
    assert [t.get_text() for t in leg.get_texts()] == [f"class {k}" for k in range(6)]
    assert len({h.get_color() for h in leg.legend_handles}) == 6  # a colour and a marker per class
    assert len({h.get_marker() for h in leg.legend_handles}) == 6
    (cax,) = _colorbar_axes(figs["prediction"])
    assert "probability" in cax.get_ylabel()
    assert cax.get_ylim() == pytest.approx((1 / 6, 1.0))
    assert _panels(figs["history"])[0].get_xlabel() == "epoch"


def test_figures_of_a_net_on_3d_data(net_3d_run):
    figs = _check_figures(net_3d_run, {"data", "features", "layers", "history"}, None)
    assert figs["data"].get_suptitle() == "Net, squares3d-4c, N = 2"
    assert hasattr(_panels(figs["data"])[0], "zaxis")
    assert len(_colorbar_axes(figs["features"])) == 1  # the PCA panel's classifier


def test_figures_use_the_class_names_of_the_data_set(binary_run):
    from dataclasses import replace

    res = replace(binary_run, dataset=replace(binary_run.dataset, class_names=("inner", "outer")))
    figs = _check_figures(res, KINDS_2D, "euler")
    (cax,) = _colorbar_axes(figs["prediction"])
    assert cax.get_ylabel() == "P(outer)"
    assert [t.get_text() for t in figs["layers"].legends[0].get_texts()] == ["inner", "outer"]


def test_layer_ticks_are_integers_and_few():
    for n in (1, 5, 12, 15, 20, 37, 100, 250):
        fig = Figure()
        ax = fig.add_subplot()
        plots.draw_steps(ax, np.full(n, 1.0 / n))
        ticks = ax.get_xticks()
        assert ticks[0] == 1 and np.all(ticks == np.round(ticks)) and np.all(ticks <= n), n
        if n <= 12:
            assert list(ticks) == list(range(1, n + 1))
        else:
            assert 4 <= len(ticks) <= 10 and np.all(np.diff(ticks) >= n / 20), (n, ticks)
        assert ax.get_xlim() == pytest.approx((0.3, n + 0.7))
        if n == 100:
            assert list(ticks) == [1, 20, 40, 60, 80, 100]
            marked = set(ticks) | set(ax.xaxis.get_minorticklocs())
            assert marked >= set(range(1, 101))  # a minor tick at every other layer


def test_run_titles_name_model_tableau_and_data():
    ds = make_dataset("donut2d-6c", np.random.default_rng(0), 30)
    m = build_model(TrainConfig(model="odenet", tableau="rk4", layers=10, width=4).resolved(), ds, fake("rk4"))
    assert plots.run_title(m, ds) == r"ODENet (rk4), donut2d-6c, N = 10, $\hat{d}$ = 4"
    assert plots.class_labels(3) == ["class 0", "class 1", "class 2"]
    assert plots.class_labels(2, ("a", "b")) == ["a", "b"]
