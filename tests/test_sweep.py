"""rkgen sweep: spec checks, executors giving identical numbers, resume after a killed worker, a clean stop."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rkgen.cli import main
from rkgen.errors import RkgenError
from rkgen.train import sweep as sw

TINY = """
[base]
dataset = "spiral"
samples = 40
test-samples = 40
iterations = 12
plots = false

[grid]
tableau = ["euler"]
layers = [2, 3]
seed = [1, 2]

[summary]
x = "layers"
"""


def spec(tmp_path, text=TINY, name="tiny.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def rows(folder):
    with open(folder / "results.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def numbers(folder):
    """Every run's numbers that must not depend on the executor: the result row without its times, and the final
    parameters, bit for bit."""
    out = {}
    for row in rows(folder):
        params = np.load(folder / row["run"] / "params.npz")
        out[row["run"]] = (
            {k: v for k, v in row.items() if k != "seconds"},
            {k: params[k].tobytes() for k in params.files},
        )
    return out


# -- the spec ------------------------------------------------------------------------------------------------------


def test_grid_and_runs_resolve_to_named_runs(tmp_path):
    s = sw.parse_spec(
        {
            "base": {"dataset": "spiral", "iterations": 5},
            "runs": [{"label": "Net", "model": "net"}, {"label": "RK4", "model": "rk", "tableau": "rk4"}],
            "grid": {"layers": [1, 20], "seed": [1, 2]},
        },
        "s.toml",
    )
    assert s.axes == ["label", "layers", "seed"] and s.repeat == "seed"
    assert [r.name for r in s.runs][:3] == ["label-Net_layers-1_seed-1", "label-Net_layers-1_seed-2",
                                            "label-Net_layers-20_seed-1"]
    assert len(s.runs) == 8 and s.runs[-1].options == {
        "dataset": "spiral", "iterations": 5, "model": "rk", "tableau": "rk4", "layers": 20, "seed": 2,
    }
    text = sw.resolved_toml(s)
    import tomllib

    resolved = tomllib.loads(text)
    assert len(resolved["runs"]) == 8 and resolved["runs"][0]["model"] == "net"
    assert resolved["runs"][-1]["final_time"] == 5.0  # the defaults are filled in


def test_an_axis_of_option_sets_and_the_shipped_specs(tmp_path):
    s = sw.parse_spec(
        {
            "base": {"optimizer": "adam"},
            "grid": {
                "data": [{"label": "spiral", "dataset": "spiral", "epochs": 4}, {"dataset": "donut2d", "epochs": 2}],
                "seed": [3],
            },
        },
        "s.toml",
    )
    assert [r.name for r in s.runs] == ["data-spiral_seed-3", "data-donut2d-2_seed-3"]
    assert s.runs[1].axes == {"data": "donut2d-2", "seed": 3}
    assert s.runs[1].options == {"optimizer": "adam", "dataset": "donut2d", "epochs": 2, "seed": 3}
    with pytest.raises(RkgenError, match="epochs is set both in grid.data and in grid.epochs"):
        sw.parse_spec({"grid": {"data": [{"dataset": "spiral", "epochs": 4}], "epochs": [1]}}, "s.toml")
    shipped = {p.stem: sw.load_spec(p) for p in (Path(__file__).parent.parent / "examples" / "sweeps").glob("*.toml")}
    assert {k: len(v.runs) for k, v in shipped.items()} == {
        "giesecke_table1": 56, "benning2019_models": 16, "benning2019_rk_methods": 16,
    }
    table1 = shipped["giesecke_table1"]
    assert table1.x == "layers" and table1.repeat == "seed"
    rk4 = [r for r in table1.runs if r.axes["network"] == "RK4Net" and r.axes["layers"] == 20][0]
    assert sw.run_config(rk4, 1)["step"] == 0.05 and sw.run_config(rk4, 1)["epochs"] == 40


@pytest.mark.parametrize(
    "text, message",
    [
        ('[base]\nbogus = 1\n[grid]\nseed = [1]', "s.toml: base.bogus: unknown option"),
        ("[grid]\nseed = []", "s.toml: grid.seed: the axis is empty"),
        ('[grid]\nlayers = [1, "two"]', "s.toml: grid.layers: mixes number and string values"),
        ('[grid]\nlayers = ["two"]', "s.toml: run layers-two: --layers must be an integer"),
        ('[[runs]]\nlayers = 2\n[[runs]]\nlayers = 2', "s.toml: duplicate run name 'layers-2'"),
        ('[[runs]]\nlabel = "a"\n[[runs]]\nlabel = "a"', "duplicate run name 'label-a'"),
        ("[grid]\nout = ['x']", "grid.out: cannot be set in a sweep"),
        ('[base]\ntableau = "rk4"', "nothing to run"),
        ("[grid]\nseed = [1]\n[summary]\nx = 'seed'", "summary.x"),
        ("[sweep]\nthreads = 0\n[grid]\nseed = [1]", "sweep.threads: expected a positive integer"),
        ("[grid\nseed = [1]", "s.toml: not valid TOML"),
    ],
)
def test_spec_errors_are_one_line_exit_2_and_start_nothing(tmp_path, capsys, text, message):
    path = spec(tmp_path, text, "s.toml")
    out = tmp_path / "out"
    assert main(["sweep", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert not out.exists()


def test_a_folder_of_another_sweep_is_refused(tmp_path):
    out = tmp_path / "out"
    sw.run_sweep(spec(tmp_path), out=out, workers=1, dry_run=False, report=lambda t: None)
    other = spec(tmp_path, TINY.replace("layers = [2, 3]", "layers = [2, 4]"), "other.toml")
    with pytest.raises(RkgenError, match="holds a sweep of another spec"):
        sw.run_sweep(other, out=out, workers=1, report=lambda t: None)


# -- executors -----------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_serial_pool_and_dask_give_identical_numbers(tmp_path):
    """The same grid one run after another in this process, on a pool of 2 processes and on a Dask LocalCluster
    of 2 processes: every row (but its time) and every parameter array bit for bit the same."""
    pytest.importorskip("distributed", reason="Dask is an optional extra; the test command installs it")
    path = spec(tmp_path)
    quiet = dict(report=lambda t: None)
    a = sw.run_sweep(path, out=tmp_path / "serial", workers=1, **quiet)
    b = sw.run_sweep(path, out=tmp_path / "pool", workers=2, **quiet)
    c = sw.run_sweep(path, out=tmp_path / "dask", dask="local:2", **quiet)
    assert a["completed"] == b["completed"] == c["completed"] == 4
    serial = numbers(tmp_path / "serial")
    assert len(serial) == 4
    assert numbers(tmp_path / "pool") == serial
    assert numbers(tmp_path / "dask") == serial
    summary = (tmp_path / "serial" / "summary.md").read_text()
    assert "| euler | 2 |" in summary and "2/2" in summary
    for metric in sw.METRICS:
        assert (tmp_path / "serial" / f"{metric}.png").stat().st_size > 0
    # a second invocation finds every run ended and starts nothing
    again = sw.run_sweep(path, out=tmp_path / "pool", workers=2, **quiet)
    assert {k: again[k] for k in ("ended", "unfinished", "signal")} == {"ended": 4, "unfinished": 0, "signal": None}
    assert "completed" not in again  # nothing ran
    assert len(rows(tmp_path / "pool")) == 4


# -- faults --------------------------------------------------------------------------------------------------------

def long_spec(tmp_path, iterations):
    text = TINY.replace("iterations = 12", f"iterations = {iterations}\ncheckpoint-seconds = 0.2")
    return spec(tmp_path, text.replace("seed = [1, 2]", "seed = [1]"))


NAMES = ["tableau-euler_layers-2_seed-1", "tableau-euler_layers-3_seed-1"]


def _sweep_process(path, out):
    return subprocess.Popen(
        [sys.executable, "-m", "rkgen", "sweep", str(path), "--out", str(out), "--workers", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
    )


def _wait_for_checkpoints(out, proc, timeout=180):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all((out / n / "state.npz").exists() for n in NAMES):
            return
        if proc.poll() is not None:
            raise AssertionError(proc.communicate())
        time.sleep(0.1)
    proc.kill()
    raise AssertionError("the runs did not checkpoint in time")


def _workers(pid):
    """The pool's worker processes: children of the sweep whose command line runs multiprocessing's spawn."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and "spawn_main" in cmd:
            found.append(int(entry.name))
    return found


def _statuses(out):
    return {r["run"]: r["status"] for r in rows(out)}


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the pool's workers through /proc (Linux only)")
def test_a_killed_worker_leaves_its_run_unfinished_and_the_next_invocation_resumes_it(tmp_path):
    path = long_spec(tmp_path, 20000)
    out = tmp_path / "out"
    proc = _sweep_process(path, out)
    _wait_for_checkpoints(out, proc)
    workers = _workers(proc.pid)
    assert len(workers) == 2
    os.kill(workers[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 1, stderr
    assert _statuses(out) == dict.fromkeys(NAMES, "unfinished")  # the pool broke: both runs in flight
    assert "ended abruptly" in (out / "results.csv").read_text()
    assert all(sw.run_state(out / n) == "resume" for n in NAMES)
    proc = _sweep_process(path, out)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert "2 to resume" in stdout
    assert _statuses(out) == dict.fromkeys(NAMES, "completed")
    assert all(r["iteration"] == "20000" for r in rows(out))


def test_sigterm_stops_the_runs_at_a_checkpoint_with_whole_rows(tmp_path):
    out = tmp_path / "out"
    proc = _sweep_process(long_spec(tmp_path, 10**7), out)
    _wait_for_checkpoints(out, proc)
    os.kill(proc.pid, signal.SIGTERM)  # to the sweep alone: it tells its workers
    _, stderr = proc.communicate(timeout=180)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    text = (out / "results.csv").read_text()
    assert text.endswith("\n") and len(text.splitlines()) == 3  # the header and two whole rows
    assert _statuses(out) == dict.fromkeys(NAMES, "unfinished")
    for n in NAMES:  # each stopped at an iteration boundary and saved, so the next invocation resumes it
        assert sw.run_state(out / n) == "resume"
        assert '"status": "interrupted"' in (out / n / "summary.json").read_text()
