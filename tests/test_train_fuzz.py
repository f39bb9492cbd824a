"""``rkgen train`` driven with random options and random data files: every outcome is either one clean line
(exit 2, ``rkgen: error: ...``, no traceback, no run folder) or a finished run (exit 0, or 1 when training
diverged, with its summary).

The values mix sensible ones with the edges users hit: negative and zero counts, nan and inf, huge sizes (which
the memory estimate must refuse before allocating), out-of-range columns, ragged and mislabelled CSV files. The
networks are the numpy fakes of tests/fake_net.py, so an example costs milliseconds, not a compile."""

import contextlib
import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fake_net import fake
from hypothesis import HealthCheck, currently_in_test_context, event, given, settings
from hypothesis import strategies as st

import rkgen.train.models as models_mod
from rkgen.cli import main

SETTINGS = settings(
    max_examples=120,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

FLOATS = st.sampled_from(["nan", "inf", "-inf", "-1", "0", "1e-300", "1e308", "0.5", "1", "2", "abc"])


def _count(small, huge=(10**12,)):
    """Counts: mostly small and valid, sometimes zero, negative, not a number, or far too large."""
    return st.one_of(
        st.integers(small[0], small[1]).map(str),
        st.sampled_from(["0", "-1", "-7", "x", "1.5", *map(str, huge)]),
    )


OPTIONS = {
    "--model": st.sampled_from(["rk", "odenet", "odenet-simplex", "net", "bogus"]),
    "--tableau": st.sampled_from(["euler", "rk4", "midpoint", "implicit_midpoint"]),
    "--layers": _count((1, 4), (10**9,)),
    "--width": _count((1, 5), (10**6,)),
    "--field": st.sampled_from(["resnet", "stable", "other"]),
    "--activation": st.sampled_from(["tanh", "relu", "softplus", "sigmoid", "cos"]),
    "--final-time": FLOATS,
    "--step": FLOATS,
    "--loss": st.sampled_from(["auto", "squared", "cross-entropy", "hinge"]),
    "--init-scale": FLOATS,
    "--dataset": st.sampled_from(["donut1d", "spiral", "squares", "donut2d-3c", "squares3d-4c", "nope", "FILE"]),
    "--samples": _count((2, 60)),
    "--test-samples": _count((1, 30)),
    "--data-scale": FLOATS,
    "--label-column": st.integers(-5, 5).map(str),
    "--test-fraction": FLOATS,
    "--optimizer": st.sampled_from(["gd", "gd-backtracking", "adam", "sgd"]),
    "--iterations": _count((0, 3), (-1,)),
    "--epochs": _count((0, 1), (-1,)),
    "--lr": FLOATS,
    "--batch-size": _count((1, 20), (0,)),
    "--lipschitz": FLOATS,
    "--rho-up": FLOATS,
    "--rho-down": FLOATS,
    "--max-trials": _count((1, 5), (0,)),
    "--seed": st.sampled_from(["0", "1", "-1", "2**70", "12345678901234567890", "x"]),
    "--eval-every": _count((1, 3), (0,)),
    "--checkpoint-seconds": FLOATS,
}

CELLS = st.sampled_from(["0", "1", "2", "3", "-1", "0.5", "1e3", "nan", "inf", "", "a", "b", " 1 ", '"x,y"', "#"])


@st.composite
def csv_text(draw):
    """A CSV file: a header or not, rows of mostly numbers, sometimes ragged, odd labels, odd bytes."""
    width = draw(st.integers(1, 4))
    rows = []
    if draw(st.booleans()):
        rows.append(",".join(f"col{i}" for i in range(width)))
    for _ in range(draw(st.integers(0, 30))):
        w = width if draw(st.integers(0, 9)) else draw(st.integers(1, 5))
        rows.append(
            ",".join(draw(CELLS) if draw(st.integers(0, 5)) == 0 else str(draw(st.integers(0, 2))) for _ in range(w))
        )
    text = "\n".join(rows) + draw(st.sampled_from(["", "\n", "\n\n"]))
    data = text.encode()
    if draw(st.integers(0, 15)) == 0:
        data += b"\xff\xfe\x00"
    return data


@st.composite
def npz_arrays(draw):
    m = draw(st.integers(0, 12))
    d = draw(st.integers(1, 3))
    arrays = {"x": np.arange(m * d, dtype=float).reshape(m, d) / 7.0}
    kind = draw(st.sampled_from(["ints", "floats", "text", "missing", "short", "nan-x", "objects"]))
    if kind == "ints":
        arrays["y"] = np.arange(m) % 2
    elif kind == "floats":
        arrays["y"] = np.linspace(0, 1, m)
    elif kind == "text":
        arrays["y"] = np.array(["cat", "dog"] * m)[:m]
    elif kind == "short":
        arrays["y"] = np.zeros(max(m - 1, 0))
    elif kind == "nan-x":
        arrays["y"] = np.arange(m) % 2
        if m:
            arrays["x"][0, 0] = np.nan
    elif kind == "objects":
        arrays["y"] = np.array([None] * m, dtype=object)
    return arrays


def _check_outcome(code, out, err, run_dir):
    if currently_in_test_context():
        event(f"exit status {code}")  # shown by --hypothesis-show-statistics
    assert "Traceback" not in err, err
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("rkgen: error:"), err
        assert not run_dir.exists() or not any(run_dir.iterdir()), "a refused run left files"
        return
    assert code in (0, 1), (code, out, err)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] in ("completed", "stalled", "diverged")
    assert (code == 1) == (summary["status"] == "diverged")
    assert out.splitlines()[0].startswith(summary["status"] + ":")
    for name in ("config.json", "dataset.npz", "history.csv", "params.npz", "state.npz"):
        assert (run_dir / name).is_file(), name
    assert not [p for p in run_dir.iterdir() if ".tmp" in p.name]


def _run(argv, folder):
    run_dir = Path(folder) / "run"
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["train", *argv, "--out", str(run_dir), "--no-plots", "--no-progress"])
        except SystemExit as exit:  # argparse's own refusals (a value of the wrong type, a bad choice)
            code = exit.code
    _check_outcome(code, out.getvalue(), err.getvalue(), run_dir)


@pytest.fixture
def fakes(monkeypatch):
    monkeypatch.setattr(models_mod, "_load", lambda spec: fake(spec))
    monkeypatch.setenv("HOME", tempfile.gettempdir())  # nothing lands in the user's cache


@SETTINGS
@given(
    chosen=st.dictionaries(st.sampled_from(sorted(OPTIONS)), st.just(None), max_size=8),
    data=st.data(),
    csv=csv_text(),
)
def test_random_options_give_one_line_or_a_finished_run(fakes, chosen, data, csv):
    argv = []
    for flag in sorted(chosen):
        argv += [flag, data.draw(OPTIONS[flag], label=flag)]
    if "--iterations" not in chosen and "--epochs" not in chosen:
        argv += ["--iterations" if "adam" not in argv else "--epochs", "2"]
    if "--samples" not in chosen:
        argv += ["--samples", "30"] if "FILE" not in argv else []
    if "--layers" not in chosen:
        argv += ["--layers", "2"]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(csv)
        argv = [str(path) if a == "FILE" else a for a in argv]
        _run(argv, folder)


@SETTINGS
@given(csv=csv_text(), label_column=st.integers(-5, 5), fraction=st.sampled_from(["0.5", "0.1", "0.9"]))
def test_random_csv_files_give_one_line_or_a_finished_run(fakes, csv, label_column, fraction):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.csv"
        path.write_bytes(csv)
        argv = ["--model", "net", "--dataset", str(path), "--label-column", str(label_column)]
        _run([*argv, "--test-fraction", fraction, "--iterations", "2", "--layers", "2"], folder)


@SETTINGS
@given(arrays=npz_arrays(), split=st.booleans())
def test_random_npz_files_give_one_line_or_a_finished_run(fakes, arrays, split):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "data.npz"
        if split and "y" in arrays and len(arrays["y"]) == len(arrays["x"]):
            arrays = {**arrays, "x_test": arrays["x"][:3], "y_test": arrays["y"][:3]}
        np.savez(path, **arrays)
        _run(["--tableau", "euler", "--dataset", str(path), "--iterations", "2", "--layers", "2"], folder)


def test_the_fuzzers_reach_both_outcomes(fakes, tmp_path):
    """The properties above could pass vacuously if every example were refused: show one of each."""
    _run(["--model", "net", "--iterations", "1", "--samples", "20"], tmp_path / "a")
    assert json.loads((tmp_path / "a" / "run" / "summary.json").read_text())["status"] == "completed"
    os.makedirs(tmp_path / "b")
    with pytest.raises(AssertionError, match="a refused run left files"):
        _check_outcome(2, "", "rkgen: error: x\n", tmp_path / "a" / "run")
