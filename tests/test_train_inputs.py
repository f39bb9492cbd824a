"""Every bad input to ``rkgen train`` is one clear line and exit status 2; faults (signals, a kill while
compiling) leave a run that can be resumed; compile time, threads and memory are reported and honoured.

Each case here was once a traceback, a silent acceptance or a lost run."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
import warnings

import numba
import numpy as np
import pytest
from fake_net import fake

import rkgen.train.models as models_mod
import rkgen.train.trainer as trainer_mod
from conftest import GENERATED
from rkgen.cli import main
from rkgen.errors import RkgenError
from rkgen.train import TrainConfig, memory, train
from rkgen.train.datasets import load_file
from rkgen.train.runs import read_history
from rkgen.train.trainer import summary_line

NET = dict(model="net", dataset="donut1d", samples=40, layers=3, plots=False, progress=False)


@pytest.fixture
def fake_loader(monkeypatch):
    monkeypatch.setattr(models_mod, "_load", lambda spec: fake(spec))


def one_line_error(capsys, argv, *needles):
    """Run ``rkgen ARGV``: exit 2, one line on stderr that starts 'rkgen: error:' and says NEEDLES."""
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rkgen: error:"), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- options ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["--seed", "-1"], ["--seed", "non-negative"]),
        (["--init-scale", "nan"], ["--init-scale", "finite"]),
        (["--init-scale", "-1"], ["--init-scale"]),
        (["--final-time", "nan"], ["--final-time", "finite"]),
        (["--final-time", "inf"], ["--final-time", "finite"]),
        (["--final-time", "-1"], ["--final-time", "positive"]),
        (["--step", "0"], ["--step", "positive"]),
        (["--test-fraction", "1.5", "--dataset", "FILE.csv"], ["--test-fraction", "between 0 and 1"]),
        (["--test-fraction", "0", "--dataset", "FILE.csv"], ["--test-fraction"]),
        (["--model", "net", "--tableau", "gauss3"], ["--tableau does not apply to --model net"]),
        (["--lipschitz", "inf"], ["--lipschitz", "finite"]),
        (["--data-scale", "nan"], ["--data-scale"]),
        (["--max-trials", "0"], ["--max-trials"]),
        (["--threads", "0"], ["--threads"]),
        (["--threads", "100000"], ["--threads 100000 exceeds"]),
        (["--samples", "10", "--dataset", "FILE.csv"], ["--samples applies to the built-in"]),
    ],
)
def test_bad_options_are_one_line(tmp_path, capsys, fake_loader, args, needles):
    data = tmp_path / "FILE.csv"
    data.write_text("".join(f"{i},{i % 3 - 1},{i % 2}\n" for i in range(20)))
    args = [str(data) if a == "FILE.csv" else a for a in args]
    out = tmp_path / "run"
    one_line_error(capsys, ["train", "--iterations", "1", "--out", str(out), *args], *needles)
    assert not out.exists()  # nothing written for a refused run


def test_net_has_no_tableau_but_the_rk_models_default_to_rk4():
    assert TrainConfig(model="net").resolved().tableau is None
    assert TrainConfig(model="odenet").resolved().tableau == "rk4"
    with pytest.raises(RkgenError, match="does not apply"):
        TrainConfig(model="net", tableau="rk4").resolved()


def test_memory_is_estimated_before_allocating(capsys, tmp_path):
    line = one_line_error(capsys, ["train", "--model", "net", "--width", "100000", "--out", str(tmp_path / "r")])
    assert "needs about" in line and "available" in line and "TiB" in line
    assert not (tmp_path / "r").exists()
    line = one_line_error(capsys, ["train", "--model", "net", "--samples", "100000000000", "--no-plots"])
    assert "the data set" in line


def test_memory_estimate_counts_the_tape_and_refuses_with_the_numbers():
    est = memory.estimate(layers=100000, width=2, stages=4, samples=1000, test_samples=1000, dim=2, classes=2)
    assert est.items["tapes"] == 2 * (2 * 100000 * 4 * 1000 * 2) * 8  # two tapes of 2 N s m d float64
    assert est.items["states"] == 100001 * 1000 * 2 * 8
    with pytest.raises(RkgenError, match=r"needs about 25\.\d GiB .*has 16\.0 GiB available"):
        memory.check(est, "this run", have=16 * 2**30)
    memory.check(est, "this run", have=64 * 2**30)  # fits: no error
    adam = memory.estimate(
        layers=100, width=16, stages=4, samples=1500, test_samples=1500, dim=2, classes=2, tape_samples=5
    )
    assert adam.items["tapes"] == 2 * (2 * 100 * 4 * 5 * 16) * 8  # the tape of a mini-batch
    short = memory.estimate(
        layers=100, width=16, stages=4, samples=1500, test_samples=1500, dim=2, classes=2, stage_values=1
    )
    assert short.items["tapes"] == 2 * ((1 + 4) * 100 * 1500 * 16) * 8  # a tape of y_j and the S_i (resnet)
    firk = memory.estimate(
        layers=1, width=100, stages=3, samples=1, test_samples=1, dim=2, classes=2, structure="fully implicit"
    )
    assert firk.items["solver"] == (300**2 + 3 * 3 * 100 * 100) * 8
    assert memory.available() is None or memory.available() > 0


def test_layers_beyond_memory_are_refused(capsys, monkeypatch, fake_loader):
    monkeypatch.setattr(memory, "available", lambda: 8 * 2**30)
    line = one_line_error(capsys, ["train", "--tableau", "rk4", "--layers", "100000", "--no-plots"])
    assert "100000 layers" in line and "8.0 GiB available" in line


# -- data files ------------------------------------------------------------------------------------


def _csv(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


@pytest.mark.parametrize(
    ("text", "kw", "needles"),
    [
        ("x1,x2,label\n", {}, ["a header and no data rows"]),
        ("", {}, ["no rows"]),
        ("".join(f"{i},{i * 0.37:.3f}\n" for i in range(40)), {}, ["40 distinct values in 40 rows", "continuous"]),
        ("1,2,0\n3,4,1\n5,6,nan\n" + "7,8,1\n" * 5, {}, ["line 3", "'nan'", "not a class"]),
        ("1,2,0\n3,4,0.5\n5,6,1\n" + "7,8,1\n" * 5, {}, ["line 2", "'0.5'"]),
        ("1,2,0\n3,4,-1\n5,6,1\n" + "7,8,1\n" * 5, {}, ["line 2", "'-1'", "non-negative integers"]),
        ("1,2,0\n3,4,\n5,6,1\n7,8,1\n", {}, ["line 2", "empty label"]),
        ("1,2,0\n3,4,1\n", {"label_column": 5}, ["--label-column 5 is out of range for 3 columns"]),
        ("1,2,0\n3,4,1\n", {"label_column": -4}, ["--label-column -4 is out of range"]),
        ("1,2,0\n3,4\n5,6,1\n", {}, ["line 2 has 2 columns, the first row 3"]),
        ("1,2,0\n3,x,1\n5,6,1\n", {}, ["line 2, column 2", "'x' is not a number"]),
        ("1,inf,0\n3,4,1\n5,6,1\n", {}, ["line 1, column 2: the feature 'inf' is not finite"]),
        (b"1,2,0\n\xff\xfe,4,1\n", {}, ["not a text file in UTF-8"]),
        ("5\n6\n", {}, ["need at least one feature column and a label column"]),
        ("1,2,0\n3,4,1\n", {"test_fraction": 0.1}, ["2 rows cannot be split"]),
    ],
)
def test_bad_csv_files_are_one_clear_error(tmp_path, text, kw, needles):
    path = _csv(tmp_path, text)
    with pytest.raises(RkgenError) as err:
        load_file(path, np.random.default_rng(0), **kw)
    message = str(err.value)
    assert "\n" not in message and message.startswith(str(path))
    for needle in needles:
        assert needle in message, message


def test_good_csv_files_still_load(tmp_path):
    text = "# a comment\nx1,x2,label\n" + "".join(f"{i},{-i},{'ab'[i % 2]}\n" for i in range(10)) + "\n"
    ds = load_file(_csv(tmp_path, text), np.random.default_rng(0))
    assert ds.n_classes == 2 and ds.class_names == ("a", "b") and len(ds.x_train) + len(ds.x_test) == 10
    integral = "".join(f"{i},{-i},{i % 3}.0\n" for i in range(12))  # 0.0, 1.0, 2.0 are the classes 0, 1, 2
    ds = load_file(_csv(tmp_path, integral, "b.csv"), np.random.default_rng(0))
    assert ds.class_names == ("0", "1", "2")
    first = load_file(_csv(tmp_path, "0,1,2\n1,3,4\n0,5,6\n1,7,8\n", "c.csv"), np.random.default_rng(0), 0)
    assert first.dim == 2 and set(first.class_names) == {"0", "1"}


@pytest.mark.parametrize(
    ("arrays", "needles"),
    [
        ({"x": np.zeros((4, 2))}, ["needs arrays 'x' and 'y'"]),
        ({"x": np.zeros(4), "y": np.zeros(4)}, ["must be (m, d)"]),
        ({"x": np.zeros((8, 2)), "y": np.array([0, 1, 0.5, 1, 0, 1, 0, 1])}, ["entry 3", "'0.5'"]),
        ({"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 3))}, ["give both"]),
        (
            {"x": np.zeros((4, 2)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 3)), "y_test": [0, 1]},
            ["'x' has 2 features, 'x_test' 3"],
        ),
        ({"x": np.array([["a", "b"]] * 4), "y": np.array([0, 1, 0, 1])}, ["must hold numbers"]),
        ({"x": np.array([[None, 1]] * 4, dtype=object), "y": np.array([0, 1, 0, 1])}, ["Python objects"]),
    ],
)
def test_bad_npz_files_are_one_clear_error(tmp_path, arrays, needles):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    with pytest.raises(RkgenError) as err:
        load_file(path, np.random.default_rng(0))
    for needle in needles:
        assert needle in str(err.value), str(err.value)


def test_a_file_that_is_not_npz(tmp_path):
    path = _csv(tmp_path, "not a zip file", "d.npz")
    with pytest.raises(RkgenError, match="not a readable .npz file"):
        load_file(path, np.random.default_rng(0))


# -- faults: signals and kills ---------------------------------------------------------------------


def _signal_soon(signum, when):
    """Send SIGNUM to this process once WHEN() is true (polled from a thread)."""

    def run():
        deadline = time.monotonic() + 60
        while not when() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(os.getpid(), signum)

    threading.Thread(target=run, daemon=True).start()


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_like_ctrl_c_and_the_run_resumes(tmp_path, capsys, signum, code):
    out = tmp_path / "run"
    history = out / "history.csv"
    # the header, then a row per evaluation from iteration 0: four lines once iteration 2 is done
    _signal_soon(signum, lambda: history.is_file() and history.read_text().count("\n") >= 4)
    argv = ["train", "--model", "net", "--dataset", "donut1d", "--samples", "40", "--layers", "3"]
    argv += ["--iterations", "100000000", "--eval-every", "1", "--out", str(out), "--no-plots"]
    assert main(argv) == code
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    name = signal.Signals(signum).name
    assert summary["status"] == "interrupted" and summary["signal"] == name
    assert f"stopped by {name}" in summary["message"] and f"stopped by {name}" in printed
    done = summary["iteration"]
    assert done >= 2 and (out / "state.npz").is_file() and (out / "params.npz").is_file()
    res = train(resume=str(out), iterations=done + 3, progress=False)
    assert res.status == "completed" and res.iteration == done + 3


def test_sigterm_from_outside_exits_143_with_a_checkpoint(tmp_path):
    """The real thing, as `timeout` or a batch scheduler sends it, to a process of its own."""
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "rkgen", "train", "--model", "net", "--dataset", "donut1d"]
    cmd += ["--samples", "40", "--iterations", "100000000", "--out", str(out), "--no-plots"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (out / "history.csv").is_file() or (out / "history.csv").read_text().count("\n") < 3:
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    assert "Traceback" not in stderr and "stopped by SIGTERM" in stdout
    assert json.loads((out / "summary.json").read_text())["status"] == "interrupted"


class _Killed(BaseException):
    """Stands in for kill -9: nothing after it runs."""


def test_a_run_killed_before_its_first_iteration_can_be_resumed(tmp_path, monkeypatch):
    """A checkpoint is written at iteration 0, before any compile: the folder is a resumable run."""
    out = tmp_path / "run"

    def killed(*args, **kwargs):
        raise _Killed

    with monkeypatch.context() as m:
        m.setattr(trainer_mod, "_full_batch", killed)
        with pytest.raises(_Killed):
            train(**NET, iterations=5, seed=3, out=str(out))
    assert sorted(p.name for p in out.iterdir()) == [
        "config.json",
        "dataset.npz",
        "history.csv",
        "params.npz",
        "state.npz",
    ]
    resumed = train(resume=str(out), progress=False)
    clean = train(**NET, iterations=5, seed=3, out=str(tmp_path / "clean"))
    assert resumed.status == "completed" and resumed.iteration == 5
    assert np.array_equal(resumed.flat, clean.flat)  # bit for bit
    hist = read_history(out / "history.csv")
    assert hist["iteration"][0] == 0 and np.array_equal(hist["train_loss"], clean.history["train_loss"])


def test_an_occupied_out_folder_says_how_to_resume(tmp_path, capsys):
    out = tmp_path / "run"
    train(**NET, iterations=1, out=str(out))
    one_line_error(capsys, ["train", "--model", "net", "--out", str(out)], "exists and is not empty", "--resume")


# -- compile time, threads -------------------------------------------------------------------------


@pytest.mark.numba
def test_compile_time_is_reported_apart_from_training(tmp_path):
    module = GENERATED / "euler_net.py"  # compiled by the other tests too: numba's cache is shared
    res = train(tableau=str(module), dataset="donut1d", samples=40, layers=3, iterations=3, out=str(tmp_path / "r"))
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["compile_seconds"] == res.compile_seconds >= 0.0
    line = summary_line(res)
    assert " s (+ " in line and "network" in line.split(";")[0]
    assert f"network module: {module}" in line
    assert json.loads((tmp_path / "r" / "config.json").read_text())["network"]["module"] == str(module)
    net = train(**NET, iterations=2, out=False)
    assert net.compile_seconds == 0.0 and "(+" not in summary_line(net)


def test_threads_limit_numba_and_blas():
    from threadpoolctl import threadpool_info

    before = numba.get_num_threads()
    with trainer_mod.thread_limit(1):
        assert numba.get_num_threads() == 1
        blas = [p for p in threadpool_info() if p["user_api"] == "blas"]
        assert blas and all(p["num_threads"] == 1 for p in blas)
    assert numba.get_num_threads() == before
    seen = []
    real = trainer_mod._run

    def spy(*args, **kwargs):
        seen.append(numba.get_num_threads())
        return real(*args, **kwargs)

    trainer_mod._run = spy
    try:
        train(**NET, iterations=1, out=False, threads=1)
    finally:
        trainer_mod._run = real
    assert seen == [1]


@pytest.mark.parametrize(
    ("name", "content", "needle"),
    [
        ("config.json", b"{bad", "cannot read it as JSON"),
        ("config.json", b"[1, 2]", "not a run's configuration"),
        ("config.json", b'{"config": {"layers": "x"}}', "config.json: layers must be an integer"),
        ("config.json", b'{"config": {"colour": 1}}', "unknown configuration keys: colour"),
        ("state.npz", b"garbage", "state.npz: not a readable .npz file"),
        ("dataset.npz", b"", "dataset.npz"),
    ],
)
def test_a_damaged_run_folder_is_one_line_on_resume(tmp_path, capsys, name, content, needle):
    out = tmp_path / "run"
    train(**NET, iterations=1, out=str(out))
    (out / name).write_bytes(content)
    one_line_error(capsys, ["train", "--resume", str(out)], needle)


def test_a_state_without_its_fields_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    train(**NET, iterations=1, out=str(out))
    np.savez(out / "state.npz", flat=np.zeros(3))
    one_line_error(capsys, ["train", "--resume", str(out)], "not a run's state")


# -- a new user's attempts to break it (review) ----------------------------------------------------


def _file_net(spec):
    """A fake network for a built-in name or a JSON tableau file (the CLI path calls models._load)."""
    from fake_net import make_fake_net

    from rkgen.tableau import load

    t = load(spec)
    A = np.array([[float(v) for v in row] for row in t.A])
    return make_fake_net(A, np.array([float(v) for v in t.b]), t.name)


@pytest.fixture
def file_loader(monkeypatch):
    monkeypatch.setattr(models_mod, "_load", _file_net)


EULER = '{"name": "e", "A": [["0"]], "b": ["1"]}'
HEUN = '{"name": "e", "A": [["0", "0"], ["1", "0"]], "b": ["1/2", "1/2"]}'
RK = ["--dataset", "donut1d", "--samples", "40", "--layers", "2", "--no-plots", "--no-progress"]


def test_a_file_tableau_is_saved_absolute_and_resume_checks_it(tmp_path, monkeypatch, capsys, file_loader):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "e.json").write_text(EULER)
    (tmp_path / "b" / "e.json").write_text(HEUN)  # another method under the same name
    out = tmp_path / "run"
    monkeypatch.chdir(tmp_path / "a")
    assert main(["train", "--tableau", "e.json", *RK, "--iterations", "2", "--out", str(out)]) == 0
    conf = json.loads((out / "config.json").read_text())
    assert conf["config"]["tableau"] == str(tmp_path / "a" / "e.json")
    # a run folder of an older rkgen: the path as typed; resumed from a folder with another e.json
    conf["config"]["tableau"] = "e.json"
    (out / "config.json").write_text(json.dumps(conf))
    monkeypatch.chdir(tmp_path / "b")
    one_line_error(
        capsys, ["train", "--resume", str(out), "--iterations", "4"], "is not the one the run was trained with"
    )
    # the tableau moved: --tableau gives its new place (the same tableau only)
    (tmp_path / "a" / "e.json").rename(tmp_path / "moved.json")
    conf["config"]["tableau"] = str(tmp_path / "a" / "e.json")
    (out / "config.json").write_text(json.dumps(conf))
    one_line_error(capsys, ["train", "--resume", str(out)], "is not there any more", "--tableau")
    one_line_error(capsys, ["train", "--resume", str(out), "--tableau", "e.json"], "is not the one the run was trained")
    assert main(["train", "--resume", str(out), "--tableau", "../moved.json", "--iterations", "4"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["tableau"] == str(tmp_path / "moved.json")
    assert json.loads((out / "summary.json").read_text())["iteration"] == 4
    net = tmp_path / "net"
    train(**NET, iterations=1, out=str(net))
    one_line_error(capsys, ["train", "--resume", str(net), "--tableau", "rk4"], "plain net run")


def _sigterm_then_sleep(*args, **kwargs):
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # drawing, or numba compiling: the signal must cut it short
    raise AssertionError("the signal did not stop it")


def test_sigterm_while_drawing_stops_the_plots_and_exits_143(tmp_path, capsys, monkeypatch):
    import rkgen.train.plots as plots

    monkeypatch.setattr(plots, "run_plots", _sigterm_then_sleep)
    out = tmp_path / "run"
    t0 = time.monotonic()
    argv = ["train", "--model", "net", "--dataset", "donut1d", "--samples", "40", "--layers", "2"]
    assert main([*argv, "--iterations", "3", "--out", str(out), "--no-progress"]) == 143
    assert time.monotonic() - t0 < 20
    printed = capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["iteration"] == 3 and summary["signal"] == "SIGTERM"
    assert "plots were cut short by SIGTERM" in summary["message"] and "cut short" in printed


def test_a_second_signal_exits_with_its_own_status(tmp_path, capsys, monkeypatch):
    stop = trainer_mod._StopFlag()
    stop._handler(signal.SIGTERM, None)
    with pytest.raises(trainer_mod.Interrupted) as e:
        stop._handler(signal.SIGTERM, None)
    assert e.value.signum == signal.SIGTERM and isinstance(e.value, KeyboardInterrupt)

    def second(*args, **kwargs):
        raise trainer_mod.Interrupted(signal.SIGTERM)

    monkeypatch.setattr(trainer_mod, "train", second)
    assert main(["train", "--out", str(tmp_path / "r")]) == 143  # not 130, "interrupted" (SIGINT's)
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "SIGTERM" in err and "Traceback" not in err


CHILD = """
import sys, time
sys.path.insert(0, {tests!r})
from fake_net import fake
import rkgen.train.models as models_mod
import rkgen.train.trainer as trainer_mod
from rkgen.cli import main

def compiling(*args, **kwargs):
    print("compiling", file=sys.stderr, flush=True)
    time.sleep(60)  # numba compiling a network, which no exception may cross
models_mod._load = fake
trainer_mod._warm_up = compiling
sys.exit(main(sys.argv[1:]))
"""


def test_sigterm_while_the_network_compiles_stops_at_once(tmp_path):
    out = tmp_path / "run"
    script = tmp_path / "child.py"
    script.write_text(CHILD.format(tests=os.path.dirname(__file__)))
    cmd = [sys.executable, str(script), "train", "--tableau", "rk4", *RK, "--iterations", "3", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stderr.readline() == "compiling\n"
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143 and time.monotonic() - t0 < 10, stderr
    assert "Traceback" not in stderr and "while the network was compiling" in stdout
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["iteration"] == 0 and summary["signal"] == "SIGTERM"
    assert not list(out.glob("*.png")) and not list(out.glob("*.tmp*"))
    res = train(resume=str(out), network=fake("rk4"), progress=False)  # the iteration-0 checkpoint resumes
    assert res.status == "completed" and res.iteration == 3


def test_a_signal_while_the_network_loads_books_no_training_time(tmp_path, capsys, monkeypatch):
    calls = []

    def load_then_signal(spec):
        os.kill(os.getpid(), signal.SIGTERM)  # lands while the module loads: the flag is set
        net = fake(spec)
        real = net.forward

        def forward(*args, **kwargs):
            calls.append(1)
            return real(*args, **kwargs)

        net.forward = forward
        return net

    monkeypatch.setattr(models_mod, "_load", load_then_signal)
    out = tmp_path / "run"
    assert main(["train", "--tableau", "rk4", *RK, "--iterations", "3", "--out", str(out)]) == 143
    printed = capsys.readouterr().out
    assert not calls  # the network was never run (on a real one: never compiled, never loaded)
    assert "0 iterations in 0.0 s;" in printed and "(+" not in printed and "before training began" in printed


def test_data_scale_that_overflows_is_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no numpy RuntimeWarning on the way
        line = one_line_error(
            capsys, ["train", "--model", "net", "--data-scale", "1e308", "--out", str(out)], "--data-scale 1e+308"
        )
    assert "infinite" in line and "below" in line and not out.exists()


def test_resume_cannot_shrink_a_run(tmp_path, capsys):
    out = tmp_path / "run"
    train(**NET, iterations=40, out=str(out))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    one_line_error(
        capsys,
        ["train", "--resume", str(out), "--iterations", "10"],
        "the run already has 40 iterations; --iterations must be at least that",
    )
    adam = tmp_path / "adam"
    train(**{**NET, "optimizer": "adam", "epochs": 2, "batch_size": 20}, out=str(adam))
    one_line_error(capsys, ["train", "--resume", str(adam), "--epochs", "1"], "already has 2 epochs")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing rewritten
    assert main(["train", "--resume", str(out), "--iterations", "40"]) == 0


def test_out_must_be_a_new_folder_of_its_own(tmp_path, capsys):
    argv = ["train", "--model", "net", "--dataset", "donut1d", "--samples", "40", "--iterations", "1", "--no-plots"]
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "elsewhere")
    one_line_error(capsys, [*argv, "--out", str(dangling)], "is a symbolic link")
    assert not (tmp_path / "elsewhere").exists()
    (tmp_path / "empty").mkdir()
    (tmp_path / "to-empty").symlink_to(tmp_path / "empty")
    one_line_error(capsys, [*argv, "--out", str(tmp_path / "to-empty") + "/"], "is a symbolic link")
    assert not any((tmp_path / "empty").iterdir())
    (tmp_path / "afile").write_text("x")
    os.mkfifo(tmp_path / "fifo")
    for name in ("afile", "fifo"):
        line = one_line_error(capsys, [*argv, "--out", str(tmp_path / name)], "is a file, not a folder")
        assert "--resume" not in line
    one_line_error(capsys, [*argv, "--out", ""], "--out is empty")
    assert main([*argv, "--out", str(tmp_path / "empty")]) == 0  # an empty folder of one's own is fine


def test_messages_say_what_is_wrong(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    one_line_error(capsys, ["train", "--dataset", "spirall", "--samples", "50"], "unknown dataset 'spirall'")
    os.mkfifo(tmp_path / "fifo.csv")
    one_line_error(capsys, ["train", "--dataset", "fifo.csv"], "is not a regular file")
    one_line_error(capsys, ["train", "--dataset", "gone.csv", "--samples", "5"], "does not exist")
    one_line_error(capsys, ["train", "--resume", "nonexist"], "nonexist: no such folder")
    out = tmp_path / "run"
    train(**NET, iterations=1, out=str(out))
    conf = json.loads((out / "config.json").read_text())
    conf["config"]["layers"] = -3
    (out / "config.json").write_text(json.dumps(conf))
    line = one_line_error(capsys, ["train", "--resume", "run"], "config.json: layers must be positive, not -3")
    assert "--layers" not in line
    one_line_error(capsys, ["train", "--resume", "run", "--iterations", "-1"], "--iterations must be non-negative")


def test_long_values_are_cut_in_messages(tmp_path):
    path = _csv(tmp_path, "1,2,0\n3,4,1\n5,6," + "1" * 5000 + "\n" + "7,8,1\n" * 5)
    with pytest.raises(RkgenError) as err:
        load_file(path, np.random.default_rng(0))
    assert len(str(err.value)) < 300 and "line 3" in str(err.value) and "\u2026" in str(err.value)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        (",1,0\n1,2,1\n3,4,0\n5,6,1\n", "line 1, column 1: the feature is empty"),
        ("0x10,1,0\n1,2,1\n3,4,0\n5,6,1\n", "line 1, column 1: the feature '0x10' is not a number"),
        ("1,2,0\n1_000,2,1\n3,4,0\n5,6,1\n", "line 2, column 1: the feature '1_000' is not a number"),
        ("1_000,2,0\n1,2,1\n3,4,0\n5,6,1\n", "line 1, column 1: the feature '1_000' is not a number"),
    ],
)
def test_a_first_row_is_a_header_only_when_all_text(tmp_path, text, needle):
    with pytest.raises(RkgenError) as err:
        load_file(_csv(tmp_path, text), np.random.default_rng(0))
    assert needle in str(err.value), str(err.value)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--optimizer", "adam", "--lipschitz", "2"], "--lipschitz does not apply"),
        (["--optimizer", "gd", "--rho-up", "3"], "--rho-up does not apply"),
        (["--optimizer", "adam", "--rho-down", "0.5"], "--rho-down does not apply"),
        (["--optimizer", "gd", "--max-trials", "3"], "--max-trials does not apply"),
        (["--optimizer", "gd", "--batch-size", "3"], "--batch-size does not apply"),
        (["--test-fraction", "0.3"], "--test-fraction does not apply"),
        (["--label-column", "0"], "--label-column does not apply"),
        (["--model", "net", "--field", "stable"], "--field does not apply"),
        (["--dataset", "donut2d-1000c", "--samples", "50"], "1000 classes on 50 training points"),
    ],
)
def test_options_that_do_not_apply_are_refused(tmp_path, capsys, args, needle):
    out = tmp_path / "run"
    one_line_error(capsys, ["train", "--model", "net", "--iterations", "1", *args, "--out", str(out)], needle)
    assert not out.exists()


def test_an_older_config_with_every_value_filled_in_still_resumes(tmp_path, capsys):
    out = tmp_path / "run"
    res = train(**{**NET, "optimizer": "adam", "epochs": 1, "batch_size": 20}, out=str(out))
    again = TrainConfig(**res.config.to_dict()).resolved()  # a resolved configuration resolves again
    assert again == res.config and again.lipschitz is None and again.field == "resnet"
    conf = json.loads((out / "config.json").read_text())
    assert conf["config"]["test_samples"] == 40 and conf["config"]["samples"] == 40  # the sizes drawn
    old = dict(label_column=-1, test_fraction=0.5, lipschitz=2.0, rho_up=2.0, rho_down=0.9, max_trials=60)
    conf["config"].update(old)  # as older versions wrote it (and accepted --lipschitz 2 with adam)
    (out / "config.json").write_text(json.dumps(conf))
    assert main(["train", "--resume", str(out), "--epochs", "2"]) == 0
    assert json.loads((out / "config.json").read_text())["config"]["lipschitz"] is None


def test_grammar_and_an_absolute_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--model", "net", "--dataset", "donut1d", "--iterations", "1", "--out", "r"]) == 0
    assert "1 iteration in" in capsys.readouterr().out
    assert main(["train", "--resume", "r", "--iterations", "2", "--no-plots"]) == 0
    assert f"-> {tmp_path / 'r'}\n" in capsys.readouterr().out  # absolute, as without --resume
    argv = ["train", "--model", "net", "--optimizer", "adam", "--epochs", "1", "--samples", "40", "--no-plots"]
    assert main([*argv, "--out", "a"]) == 0 and "1 epoch in" in capsys.readouterr().out
    with pytest.raises(RkgenError, match="line 1 has 1 column;"):
        load_file(_csv(tmp_path, "5\n6\n"), np.random.default_rng(0))
    with pytest.raises(RkgenError, match="line 2 has 1 column,"):
        load_file(_csv(tmp_path, "5,1\n6\n"), np.random.default_rng(0))


def test_resume_needs_the_history(tmp_path, capsys):
    out = tmp_path / "run"
    train(**NET, iterations=5, out=str(out))
    (out / "history.csv").unlink()
    one_line_error(capsys, ["train", "--resume", str(out), "--iterations", "8"], "no history.csv")
    zero = tmp_path / "zero"
    train(**NET, iterations=0, out=str(zero))
    (zero / "history.csv").unlink()
    assert main(["train", "--resume", str(zero), "--iterations", "2"]) == 0


@pytest.mark.parametrize(("field", "rows"), [("resnet", 1), ("stable", 4)])
def test_memory_estimate_takes_the_tape_the_module_keeps(monkeypatch, field, rows):
    """build_model asks the network module which stage values its tape keeps (_tape_inputs) for the run's field."""
    from rkgen.train.datasets import make_dataset

    seen = {}
    real = memory.estimate
    monkeypatch.setattr(memory, "estimate", lambda **kw: seen.update(kw) or real(**kw))
    net = fake("rk4")
    net._tape_inputs = lambda f: 1 if f == "resnet" else net.STAGES
    ds = make_dataset("spiral", np.random.default_rng(0), 40)
    trainer_mod.build_model(TrainConfig(tableau="rk4", layers=3, field=field).resolved(), ds, net)
    assert seen["stage_values"] == rows and seen["stages"] == 4
