"""The command line's own edges: a stdout that fails, JSON that is valid but wrong, options misspelt or shortened.

Each case was once a traceback or a silent acceptance."""

import subprocess
import sys

import pytest

from rkgen.cli import main


def one_line(capsys, argv, *needles):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.count("\n") == 1 and err.startswith("rkgen: error: ") and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err
    return err


@pytest.mark.parametrize("argv", [["check", "rk4"], ["list"], ["list", "--json"], ["check", "euler", "--json"]])
def test_a_full_stdout_is_one_line(argv):
    with open("/dev/full", "w") as full:
        proc = subprocess.run([sys.executable, "-m", "rkgen", *argv], stdout=full, stderr=subprocess.PIPE, text=True)
    assert proc.returncode == 2
    assert proc.stderr == "rkgen: error: stdout: cannot write: No space left on device\n"


def test_a_closed_stdout_is_refused_and_a_closed_pipe_is_quiet():
    proc = subprocess.run([sys.executable, "-m", "rkgen", "list"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    assert proc.returncode == 0
    closed = subprocess.run(
        [sys.executable, "-c", "import os, sys; os.close(1); sys.stdout = None; from rkgen.cli import main; "
         "sys.exit(main(['list']))"],
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    assert closed.returncode == 2 and closed.stderr == (
        "rkgen: error: stdout is closed; redirect it to a file or to /dev/null\n"
    )
    piped = subprocess.run(
        f"{sys.executable} -m rkgen check gauss5 | head -1", shell=True, capture_output=True, text=True
    )
    assert piped.returncode == 0 and piped.stdout.startswith("gauss5") and piped.stderr == ""


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ('{"A": [["0"]], "b": ["1"], "b": ["2"]}', "the key 'b' occurs twice in one object"),
        ('{"A": [[' + "1" * 5000 + ']], "b": ["1"]}', "an integer of 5000 digits (at most 4000)"),
    ],
)
def test_valid_but_wrong_json_is_one_line(tmp_path, capsys, text, needle):
    path = tmp_path / "t.json"
    path.write_text(text)
    one_line(capsys, ["check", str(path)], needle)


def test_control_characters_in_a_name_are_printed_escaped(tmp_path, capsys):
    path = tmp_path / "t.json"
    path.write_text('{"name": "a\\u001bb\\nc", "A": [["0"]], "b": ["1"]}')
    assert main(["check", str(path)]) == 0
    first = capsys.readouterr().out.splitlines()[0]
    assert "\x1b" not in first and first.startswith("a\\x1bb\\nc: 1-stage")


def test_a_byte_order_mark_is_accepted(tmp_path, capsys):
    path = tmp_path / "bom.json"
    path.write_bytes(b'\xef\xbb\xbf{"name": "bom", "A": [["0"]], "b": ["1"]}')
    assert main(["check", str(path)]) == 0
    assert capsys.readouterr().out.startswith("bom: 1-stage")


def test_tolerance_must_be_finite(capsys):
    one_line(capsys, ["check", "euler", "--tol", "inf"], "--tol must be a finite nonnegative number")


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["check", "rk4", "extra"], "check: unrecognized arguments: extra (see 'rkgen check --help')"),
        (["train", "--iter", "3"], "train: unrecognized arguments: --iter 3 (see 'rkgen train --help')"),
        (["check", "rk4", "--js"], "check: unrecognized arguments: --js"),
    ],
)
def test_unknown_and_shortened_options_are_refused_by_their_command(capsys, argv, needle):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and needle in err, err


def test_a_module_cache_that_is_a_file_is_one_line(tmp_path, capsys, monkeypatch):
    cache = tmp_path / "cachefile"
    cache.write_text("not a folder")
    monkeypatch.setenv("RKGEN_CACHE", str(cache))
    one_line(capsys, ["train", "--tableau", "euler", "--iterations", "1", "--no-plots"], "is not a folder")
    assert cache.read_text() == "not a folder"
