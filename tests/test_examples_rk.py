"""The examples of 000 section 5.3 (Runge-Kutta networks), 001 Fig. 2 (implicit midpoint) and 002's
stability claim run end to end at tiny sizes: each exits 0, prints its table with the papers'
findings beside rkgen's, and writes results.csv and its figures. Their verdicts follow stated
tolerances; the tolerances are checked here on made-up numbers, so that a verdict can fail.

Each example test takes 20-30 s here (most of it importing and drawing); they reuse the tableaux
euler, heun2, kutta3, rk4 and midpoint, which other tests compile as well.
"""

from __future__ import annotations

import importlib

import pytest
from test_examples import assert_figures, rows, run_example

from conftest import ROOT

pytestmark = pytest.mark.numba


@pytest.fixture
def example(monkeypatch):
    """Import an example module by name (examples/ on the path for its _common)."""
    monkeypatch.syspath_prepend(str(ROOT / "examples"))
    return importlib.import_module


def test_benning2019_rk_methods(tmp_path):
    out = tmp_path / "rk"
    args = ("--quick", "--iterations", "3", "--samples", "40", "--datasets", "benning-spiral")
    text = run_example("benning2019_rk_methods", out, *args)
    assert "000 section 5.3 in the authors' setting: 40 points, 15 layers, h = 0.1" in text
    assert "the four methods perform rather similarly" in text and "verdict" in text
    got = [(r["dataset"], r["tableau"], r["iterations"]) for r in rows(out)]
    assert got == [("benning-spiral", t, "3") for t in ("euler", "heun2", "kutta3", "rk4")]
    assert all(r["status"] == "completed" for r in rows(out))
    assert_figures(out, "fig9_spiral", "fig10-12_spiral_layers", "fig13_loss", "accuracy")


def test_ifac2021_implicit_midpoint(tmp_path):
    out = tmp_path / "ifac"
    args = ("--iterations", "3", "--samples", "40", "--datasets", "benning-donut2d")
    text = run_example("ifac2021_implicit_midpoint", out, *args)
    assert "001 Fig. 2: 000's data sets, 5 layers, h = 0.1 (T = 0.5), 3 iterations" in text
    assert "RK networks perform rather similarly" in text
    got = [(r["dataset"], r["method"]) for r in rows(out)]
    assert got == [("benning-donut2d", "implicit midpoint"), ("benning-donut2d", "ResNet (Euler)")]
    assert_figures(out, "fig2_donut2d", "loss")


def test_stability_amplification(tmp_path):
    out = tmp_path / "stab"
    args = ("--iterations", "3", "--samples", "40", "--steps", "0.5", "--tableaux", "euler", "midpoint")
    text = run_example("stability_amplification", out, *args)
    assert "continuous stable flow is non-expansive (C = 1)" in text
    assert "implicit midpoint keeps it for every h" in text
    got = rows(out)
    assert [(r["field"], r["tableau"], r["layers"]) for r in got] == [
        ("resnet", "euler", "2"),
        ("resnet", "midpoint", "2"),
        ("stable", "euler", "2"),
        ("stable", "midpoint", "2"),
    ]
    # what the theory guarantees for any parameters, trained or not: the stable field's flow and its
    # implicit midpoint network are non-expansive
    for r in got[2:]:
        assert float(r["flow_amp_max"]) <= 1.001
    assert float(got[3]["amp_max"]) <= 1.001 and float(got[3]["jac_max"]) <= 1.001
    assert_figures(out, "amplification", "h_mu")


def test_verdict_tolerances(example):
    rk = example("benning2019_rk_methods")
    assert [rk.verdict(s) for s in (0.0, 3.0, 3.1, 6.0, 6.1)] == ["agrees", "agrees", "close", "close", "differs"]
    ifac = example("ifac2021_implicit_midpoint")
    assert [ifac.verdict(g) for g in (1.0, 4.0, 9.0)] == ["agrees", "close", "differs"]


def test_stability_helpers(example):
    """The hand-written flows read K, beta, h as the networks do; the Euler map of a stable layer with
    h |K|^2 > 2 expands, the fine flow of the same layer does not."""
    np = pytest.importorskip("numpy")
    st = example("stability_amplification")
    K = np.array([[3.0, 0.0], [0.0, 0.5]])
    params = {"K": K[None], "beta": np.zeros((1, 2)), "h": np.array([0.5])}  # h |K|^2 = 4.5
    x = np.array([[0.0, 0.0]])
    eps = 1e-6
    e = np.array([[eps, 0.0]])
    euler = np.linalg.norm(st.euler_map(params, "stable", x + e) - st.euler_map(params, "stable", x)) / eps
    flow = np.linalg.norm(st.continuous_flow(params, "stable", x + e, 64) - st.continuous_flow(params, "stable", x, 64))
    assert euler == pytest.approx(abs(1.0 - 0.5 * 9.0), rel=1e-5)  # I - h K^T K at the origin (tanh' = 1)
    assert flow / eps == pytest.approx(np.exp(-0.5 * 9.0), rel=1e-3)  # exp(-h K^T K), linearised
    jac = st.jacobian_norm(lambda p: st.euler_map(params, "stable", p), x)
    assert jac[0] == pytest.approx(3.5, rel=1e-6)
    assert st.joined([0.5, 1.0]) == "0.5, 1" and st.joined([]) == "none"
