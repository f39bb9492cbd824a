"""The examples run end to end at tiny sizes: each exits 0, prints its table with the paper's
findings beside rkgen's, and writes results.csv and its figures.

The two examples of 000 train 16 networks each and draw 16 sets of run plots; they take about 100 s
apiece here and are marked slow. The examples compile their networks into rkgen's user cache, as a
user's run would.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.numba


def run_example(name: str, out: Path, *args: str) -> str:
    cmd = [sys.executable, str(ROOT / "examples" / f"{name}.py"), "--out", str(out), "--no-progress", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=900, cwd=out.parent)
    assert r.returncode == 0, f"{name} exited with {r.returncode}:\n{r.stderr[-3000:]}"
    return r.stdout


def rows(out: Path) -> list[dict]:
    with open(out / "results.csv", newline="") as f:
        return list(csv.DictReader(f))


def assert_figures(out: Path, *names: str) -> None:
    for name in names:
        for ext in ("png", "pdf"):
            path = out / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 2000, path


def test_ifac2021_implicit_midpoint(tmp_path):
    out = tmp_path / "ifac"
    text = run_example("ifac2021_implicit_midpoint", out, "--quick", "--iterations", "3")
    assert "implicit midpoint" in text and "ResNet (Euler)" in text and "001 reports" in text
    assert [r["method"] for r in rows(out)] == ["implicit midpoint", "ResNet (Euler)"]
    assert_figures(out, "fig2_dynamics", "loss")


def test_giesecke_depth_sweep(tmp_path):
    out = tmp_path / "sweep"
    text = run_example("giesecke_depth_sweep", out, "--depths", "1", "20", "--repetitions", "1", "--epochs", "1")
    assert "RK4Net at depth >= 10 reaches about 99% training accuracy" in text
    got = sorted((r["net"], int(r["depth"])) for r in rows(out))
    assert got == [("RK4Net", 1), ("RK4Net", 20), ("StandardNet", 1), ("StandardNet", 20)]
    assert_figures(out, "depth", "features_L20")


def test_solver_swap(tmp_path):
    out = tmp_path / "swap"
    args = ("--quick", "--iterations", "3", "--samples", "40", "--layers", "10", "20")
    text = run_example("solver_swap", out, *args)
    assert "the Euler network with N = 10 learned" in text and "euler *" in text
    got = [(r["tableau"], int(r["layers"])) for r in rows(out)]
    assert got == [("rk4", 10), ("rk4", 20), ("euler", 10), ("euler", 20)]
    assert rows(out)[2]["yN_change"] == "0"  # euler at N = 10 is the run's own network
    assert_figures(out, "evaluate")
    assert (out / "run" / "config.json").is_file() and (out / "evaluate.csv").is_file()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "figures"),
    [
        ("benning2019_models", ("fig6_loss", "fig8_steps")),
        ("benning2019_rk_methods", ("fig13_loss", "fig9_spiral", "fig10-12_spiral_layers")),
    ],
)
def test_benning2019_examples(tmp_path, name, figures):
    out = tmp_path / name
    text = run_example(name, out, "--quick", "--iterations", "3")
    assert "The paper's findings beside ours:" in text
    assert len(rows(out)) == 16  # four networks on four data sets
    assert_figures(out, *figures)
