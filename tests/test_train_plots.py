"""Every plot kind is written, as PNG and PDF, and is not empty (smoke tests with tiny runs)."""

import numpy as np
import pytest
from fake_net import fake
from matplotlib.figure import Figure

from rkgen.train import plots, train
from rkgen.train.datasets import make_dataset

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
