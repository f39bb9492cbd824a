"""The examples of Giesecke and Kröner (004) run end to end at tiny sizes: each exits 0, prints its
table with 004's numbers or findings beside rkgen's and the verdicts, and writes results.csv and its
figures; and the pieces of examples/_giesecke.py (004's early-stopping rule, its per-entry
accuracy, the verdict rule) give known answers.

Times on the project's machine (2 cores, warm numba caches): about 10-25 s per example.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from test_examples import assert_figures, rows, run_example

from conftest import ROOT

sys.path.insert(0, str(ROOT / "examples"))
import _giesecke as g  # noqa: E402


def test_stop_004_rule():
    # 41 validation costs (before training and after 40 epochs); flat: 004's rule never fires
    flat = np.full(41, 0.3)
    assert g.stop_004(flat) == 40
    # a rise of 0.2 from epoch 12 on: after epoch 12 the last five (8..12) average 0.34, the five
    # before (3..7) 0.3: +0.04, no stop; after epoch 13: +0.08 > 0.05, stop
    v = np.full(41, 0.3)
    v[12:] = 0.5
    assert g.stop_004(v) == 13
    # the rule looks only from the 11th epoch on: an early rise does not stop
    early = np.full(41, 0.3)
    early[1:4] = 2.0
    assert g.stop_004(early) == 40
    # fewer epochs than the rule needs
    assert g.stop_004(np.linspace(1.0, 2.0, 8)) == 7


def test_reached_epoch():
    e = np.arange(6)
    assert g.reached_epoch(e, [0.5, 0.7, 0.89, 0.93, 0.88, 0.9]) == 2
    assert g.reached_epoch(e, [0.9] * 6) == 0
    assert g.reached_epoch(e + 1, [0.1, 0.2, 0.3, 0.4, 0.5, 0.6]) == 6


def test_entry_accuracy():
    assert g.entry_accuracy(0.9, 2) == pytest.approx(0.9)
    assert g.entry_accuracy(0.7, 6) == pytest.approx(0.9)
    assert g.sample_accuracy(g.entry_accuracy(0.83, 4), 4) == pytest.approx(0.83)

    class Fixed:  # a model whose predictions are given
        def __init__(self, p):
            self.p = p

        def predict_proba(self, flat, x):
            return self.p

    c = np.array([0, 1, 2, 2, 1])
    p = np.eye(3)[[0, 1, 2, 0, 0]]  # two of five wrong
    e = g.entry_accuracy_of(Fixed(p), None, None, c)
    assert e == pytest.approx(1 - 2 * 2 / 5 / 3)
    assert e == pytest.approx(g.entry_accuracy(3 / 5, 3))


def test_judge():
    assert g.judge([90.0, 90.0], 90.5, 1.0)[3] == "agrees"
    assert g.judge([90.0, 90.0], 91.5, 1.0)[3] == "close"
    assert g.judge([90.0, 90.0], 93.0, 1.0)[3] == "differs"
    # spread widens the tolerance: s = 10 over four repetitions, tol = 2 * 10 * sqrt(1/4 + 1/4)
    mean, diff, tol, verdict = g.judge([80.0, 100.0, 80.0, 100.0], 100.0, 1.0)
    assert tol == pytest.approx(2 * np.std([80, 100, 80, 100], ddof=1) * np.sqrt(0.5))
    assert verdict == "agrees" and diff == pytest.approx(-10.0)
    assert g.worst("agrees", "close") == "close" and g.worst("agrees", "-") == "agrees"


def test_giesecke_depth_sweep(tmp_path):
    out = tmp_path / "sweep"
    args = ("--depths", "1", "20", "--repetitions", "2", "--epochs", "1", "--samples", "100")
    text = run_example("giesecke_depth_sweep", out, *args)
    assert "inputs random (a fixed random map, as 004)" in text
    assert "Table 1, accuracy %" in text and "Table 2, cost x 10" in text and "rows that agree" in text
    assert "004's early stopping" in text and "RK4Net at depth >= 10 reaches about 99% training accuracy" in text
    assert "92.73 / 91.88" in text  # 004's StandardNet at depth 1 beside rkgen's
    got = sorted((r["net"], int(r["depth"]), int(r["repetition"])) for r in rows(out))
    assert got == sorted((n, d, k) for n in ("StandardNet", "RK4Net") for d in (1, 20) for k in (1, 2))
    assert all(r["stop_004"] == "1" for r in rows(out))  # one epoch: 004's rule never fires
    assert_figures(out, "depth", "features_L20")


def test_giesecke_depth_sweep_width3_zeros(tmp_path):
    out = tmp_path / "sweep3"
    args = ("--width", "3", "--augment", "zeros", "--depths", "20", "40", "--repetitions", "1", "--epochs", "1")
    text = run_example("giesecke_depth_sweep", out, *args, "--samples", "60")
    assert "width 3, inputs zeros (padded with zeros)" in text
    assert "StandardNet never exceeds 80% (width 3)" in text and "RK4Net nearly perfect at depth >= 40" in text
    assert "Table 1," not in text and "004 section 4.2 (no table)" in text
    assert sorted({int(r["depth"]) for r in rows(out)}) == [20, 40]
    assert_figures(out, "depth", "features_L20")


def test_giesecke_multiclass(tmp_path):
    out = tmp_path / "multi"
    args = ("--sets", "donut2d-6c", "squares3d-4c", "--repetitions", "2", "--epochs", "1", "--samples", "60")
    text = run_example("giesecke_multiclass", out, *args, "--layers", "2", "4")
    assert "rkgen a" in text and "004 as a" in text and "rows that agree" in text
    assert "StandardNet does as well as EulerNet and RK4Net" in text
    err = float(text.split("equals 1 - 2 (1 - a) / K to ")[1].split(")")[0])
    assert err < 1e-12  # the per-entry accuracy counted as 004's code counts it follows the formula
    r = rows(out)
    got = sorted((x["set"], x["net"], int(x["layers"])) for x in r if x["repetition"] == "1")
    nets = (("EulerNet", 4), ("RK4Net", 4), ("StandardNet", 2))
    assert got == sorted((s, n, L) for s in ("donut2d-6c", "squares3d-4c") for n, L in nets)
    for x in r:
        k, a, e = int(x["classes"]), float(x["test_accuracy"]), float(x["test_entry_accuracy"])
        assert e == pytest.approx(1 - 2 * (1 - a) / k, abs=1e-5)  # results.csv keeps 6 digits
    assert_figures(out, "fig9_donut2d-6c", "fig12_squares3d-4c")
    assert not (out / "fig10_squares2d-4c.png").exists()


def test_giesecke_width(tmp_path):
    out = tmp_path / "width"
    text = run_example("giesecke_width", out, "--repetitions", "1", "--epochs", "1", "--samples", "60", "--layers", "4")
    assert "inputs padded with zeros" in text and "donut2d: width 3 better than width 2 (paired" in text
    assert "squares: width 3 simpler to learn (reaches" in text
    assert sorted((r["set"], int(r["width"])) for r in rows(out)) == [
        ("donut2d", 2),
        ("donut2d", 3),
        ("squares", 2),
        ("squares", 3),
    ]
    assert_figures(out, "fig3_donut2d", "fig4_squares")


def test_giesecke_activations(tmp_path):
    out = tmp_path / "acts"
    args = ("--repetitions", "1", "--epochs", "2", "--samples", "60", "--layers", "3", "--depths", "1")
    text = run_example("giesecke_activations", out, *args)
    assert "tanh converges faster than the logistic function" in text
    assert "tanh needs fewer layers than the logistic function" in text
    got = sorted((r["activation"], int(r["layers"])) for r in rows(out))
    assert got == sorted([("relu", 3), ("softplus", 3), ("sigmoid", 3), ("tanh", 3), ("tanh", 1), ("sigmoid", 1)])
    assert_figures(out, "fig6_prediction", "fig7_history", "depth")
