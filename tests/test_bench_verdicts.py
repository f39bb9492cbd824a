"""The verdicts of benchmarks/bench_frameworks.py: its ratios, its choice of the equal-accuracy peer and its met /
MISSED lines, on made-up timings (nothing is timed here).

The benchmark decides whether issue 16's targets are met; these tests hold its arithmetic to what its docstring
says: a ratio is the median of the ratios within rounds, the gauss2 peer is the fewest sweeps whose gradient error
is within 10x rkgen's (or 1e-14), and a target that cannot be assessed is reported, not dropped.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_frameworks.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_frameworks_under_test", BENCH)
    module = importlib.util.module_from_spec(spec)
    path = list(sys.path)
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path[:] = path  # the benchmark puts the repository and benchmarks/ first; leave the tests' own path
    return module


def test_ratio_is_the_median_of_the_ratios_within_rounds(bench):
    # the medians' ratio would be 4.0 / 2.0 = 2.0; the rounds' ratios are 1.0, 4.0 / 2.0 = 2.0 and 10.0 / 1.0 = 10
    rows = {"peer": ([1.0, 4.0, 10.0], 0.0), "ours": ([1.0, 2.0, 1.0], 0.0)}
    assert bench._ratio(rows, "peer", "ours") == (2.0, 1.0, 10.0)
    rows = {"peer": ([3.0, 6.0, 9.0, 12.0], 0.0), "ours": ([1.0, 1.0, 1.0, 1.0], 0.0)}
    assert bench._ratio(rows, "peer", "ours") == (7.5, 3.0, 12.0)


def _rows(errors, ours=5e-16):
    rows = {(16, "gauss2", "rkgen.torch"): ([1.0], ours)}
    for k, err in errors.items():
        rows[16, "gauss2", f"torch {k} sweeps"] = ([float(k)], err)
    return rows


def test_equal_accuracy_takes_the_fewest_sweeps_that_reach_rkgen(bench):
    rows = _rows({3: 2e-7, 6: 3e-12, 12: 7e-17, 24: 0.0})
    assert bench._equal_accuracy(rows, 16, [3, 6, 12, 24]) == (16, "gauss2", "torch 12 sweeps")
    assert bench._equal_accuracy(rows, 16, [24, 12, 6, 3]) == (16, "gauss2", "torch 12 sweeps")  # any order
    # within 10x rkgen's error counts as equal; 1e-14 is the floor when rkgen's error is tinier still
    assert bench._equal_accuracy(_rows({6: 4.9e-14}, ours=5e-15), 16, [6]) == (16, "gauss2", "torch 6 sweeps")
    assert bench._equal_accuracy(_rows({6: 5.1e-14}, ours=5e-15), 16, [6]) is None
    assert bench._equal_accuracy(_rows({6: 9e-15}, ours=0.0), 16, [6]) == (16, "gauss2", "torch 6 sweeps")
    assert bench._equal_accuracy(_rows({6: 1.1e-14}, ours=0.0), 16, [6]) is None
    assert bench._equal_accuracy(_rows({3: 2e-7, 6: 3e-12}), 16, [3, 6]) is None


def _report(bench, capsys, rows, widths=(2, 16), iters=(3, 12)):
    args = argparse.Namespace(widths=list(widths), iters=list(iters))
    bench.report(args, rows, 1)
    return [line for line in capsys.readouterr().out.splitlines() if line.startswith(("  met", "  MISSED"))]


def test_report_says_met_or_missed_for_every_target_width(bench, capsys):
    rows = {}
    for d, torch_ratio, jax_ratio, sweeps_ratio in ((2, 8.0, 1.6, 30.0), (16, 2.9, 1.2, 3.1)):
        rows[d, "rk4", "rkgen.torch"] = ([1.0, 1.0, 1.0], 2e-16)
        rows[d, "rk4", "torch"] = ([torch_ratio] * 3, 0.0)
        rows[d, "rk4", "rkgen.jax"] = ([1.0, 1.0, 1.0], 2e-16)
        rows[d, "rk4", "jax"] = ([jax_ratio] * 3, 2e-16)
        rows[d, "gauss2", "rkgen.torch"] = ([1.0, 1.0, 1.0], 5e-16)
        rows[d, "gauss2", "torch 3 sweeps"] = ([0.5] * 3, 2e-7)
        rows[d, "gauss2", "torch 12 sweeps"] = ([sweeps_ratio] * 3, 1e-16)
    lines = _report(bench, capsys, rows)
    verdicts = {(line.split(",")[0].split(maxsplit=1)[1], line.split("d = ")[1].split(",")[0]): line.split()[0]
                for line in lines}
    assert verdicts == {
        ("rk4: rkgen.torch vs plain torch", "2"): "met",
        ("rk4: rkgen.torch vs plain torch", "16"): "MISSED",  # 2.9 < 3
        ("gauss2: rkgen.torch vs torch's sweeps at equal accuracy", "2"): "met",
        ("gauss2: rkgen.torch vs torch's sweeps at equal accuracy", "16"): "met",  # 12 sweeps, not 3: 3.1 >= 3
        ("rk4: rkgen.jax vs jax.jit", "2"): "met",
        ("rk4: rkgen.jax vs jax.jit", "16"): "MISSED",  # 1.2 < 1.5
    }
    assert all("torch 12 sweeps/rkgen.torch" in line for line in lines if line.split(",")[0].endswith("accuracy"))


def test_a_gauss2_target_that_no_sweep_count_reaches_is_reported(bench, capsys):
    rows = {(16, "gauss2", "rkgen.torch"): ([1.0], 5e-16), (16, "gauss2", "torch 3 sweeps"): ([50.0], 2e-7)}
    lines = _report(bench, capsys, rows, widths=(16,), iters=(3,))
    assert len(lines) == 1 and lines[0].startswith("  MISSED") and "not assessed" in lines[0]


def test_the_children_get_the_options_but_the_thread_counts(bench):
    assert bench._without_threads(["--threads", "1", "2", "--quick"]) == ["--quick"]
    assert bench._without_threads(["--widths", "2", "16", "--threads", "2"]) == ["--widths", "2", "16"]
    assert bench._without_threads(["--repeats", "3"]) == ["--repeats", "3"]
