"""A coefficient beyond the float64 range: `check` analyses it exactly, the network paths refuse it in one line.

A network computes with the float64 nearest each coefficient, so `generate`, `derive` and the trainer's loader
(:func:`rkgen.codegen.load_network`) refuse an entry that overflows (±inf) or that is nonzero but rounds to 0.0;
a subnormal that stays nonzero is fine.
"""

from __future__ import annotations

import json

import pytest
from cli_run import run

from rkgen.codegen import load_network
from rkgen.errors import RkgenError
from rkgen.train.models import resolve_network

BEYOND = "lies beyond the float64 range (|x| ≤ 1.8e308); rkgen check analyses it exactly, but a network cannot "
BEYOND += "compute with it"
ROUNDS = (
    "rounds to 0.0 in float64 (the smallest nonzero |x| is 4.9e-324); rkgen check analyses it exactly, but a "
    "network would compute another method with it"
)


def tableau(value: str, field: str) -> tuple[dict, str]:
    """A two-stage explicit tableau with ``value`` in ``field``, and the entry's 1-based name."""
    data = {"name": "big", "A": [["0", "0"], ["1", "0"]], "b": ["1/2", "1/2"], "c": ["0", "1"]}
    if field == "A":
        data["A"][1][0] = value
        data["c"][1] = value
        return data, "a_21 (row 2, column 1 of A)"
    if field == "b":
        data["b"][0] = value
        return data, "b_1 (entry 1 of b)"
    data["c"][1] = value
    return data, "c_2 (entry 2 of c)"


CASES = [(v, f) for v in ("1e400", "-1e400", "1e-400") for f in "Abc"]


@pytest.fixture(params=CASES, ids=[f"{f}={v}" for v, f in CASES])
def bad(request, tmp_path, monkeypatch):
    """(path, expected error line) of a tableau file with one entry out of the float64 range."""
    monkeypatch.chdir(tmp_path)
    value, field = request.param
    data, label = tableau(value, field)
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data))
    why = ROUNDS if value == "1e-400" else BEYOND
    return "big.json", f"big.json: {label} = {value} {why}"


def test_check_accepts_it(bad, capsys):
    path, _ = bad
    code, out, err = run(capsys, "check", path)
    assert code == 0 and err == "" and "order" in out


def test_generate_refuses_it(bad, capsys, tmp_path):
    path, line = bad
    code, out, err = run(capsys, "generate", path, "-o", str(tmp_path))
    assert (code, out, err) == (2, "", f"rkgen: error: {line}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json"]


@pytest.mark.parametrize("extra", [[], ["--json"], ["--format", "tex", "-o", "doc.tex"]], ids=["md", "json", "tex"])
def test_derive_refuses_it(bad, capsys, tmp_path, extra):
    path, line = bad
    code, out, err = run(capsys, "derive", path, *extra)
    assert (code, out, err) == (2, "", f"rkgen: error: {line}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.json"]


def test_the_train_loader_refuses_it(bad, monkeypatch, tmp_path):
    path, line = bad
    monkeypatch.setenv("RKGEN_CACHE", str(tmp_path / "cache"))
    for loader in (load_network, resolve_network):
        with pytest.raises(RkgenError) as info:
            loader(path)
        assert str(info.value) == line
    assert not list((tmp_path / "cache").glob("big-*"))  # no module written to the cache


def test_train_refuses_it_in_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RKGEN_CACHE", str(tmp_path / "cache"))
    data, _ = tableau("1e400", "A")
    (tmp_path / "big.json").write_text(json.dumps(data))
    argv = ["train", "--tableau", "big.json", "--dataset", "spiral", "--iterations", "1", "--no-plots"]
    code, out, err = run(capsys, *argv, "--out", "run")
    assert code == 2
    # the trainer names a tableau file by its absolute path (what config.json records)
    assert err.startswith("rkgen: error: ") and err.count("\n") == 1
    assert err.endswith(f"big.json: a_21 (row 2, column 1 of A) = 1e400 {BEYOND}\n")
    assert not (tmp_path / "run").exists()


def test_the_float64_extremes_are_fine(capsys, tmp_path):
    """The largest float64 and a subnormal that stays nonzero are computed with, not refused."""
    data, _ = tableau("1.7e308", "b")
    data["A"][1][0] = "1e-320"
    data["c"][1] = "1e-320"
    (tmp_path / "edge.json").write_text(json.dumps(data))
    code, out, err = run(capsys, "generate", str(tmp_path / "edge.json"), "-o", str(tmp_path / "edge_net.py"))
    assert code == 0 and err == ""
    text = (tmp_path / "edge_net.py").read_text()
    assert "\na_2_1 = 1e-320\n" in text and "\nb_1 = 1.7e+308\n" in text


def test_the_message_shortens_long_exact_values(capsys, tmp_path):
    data, _ = tableau("sqrt(2)*1e400", "c")
    (tmp_path / "root.json").write_text(json.dumps(data))
    code, _, err = run(capsys, "generate", str(tmp_path / "root.json"), "-o", str(tmp_path))
    assert code == 2 and f"root.json: c_2 (entry 2 of c) = ≈1.414e400 {BEYOND}\n" in err and err.count("\n") == 1
