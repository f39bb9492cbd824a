"""The examples run end to end at tiny sizes: each exits 0, prints its table with the paper's
findings beside rkgen's, and writes results.csv and its figures. The helpers here serve the tests of
every example (test_examples_benning.py: 000 sections 5.2 and 5.4; test_examples_rk.py: 000 section
5.3, 001 Fig. 2 and the slides' stability claim; test_examples_giesecke.py: 004); this file tests the
solver swap. The examples compile their networks into rkgen's user cache, as a user's run would.
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
