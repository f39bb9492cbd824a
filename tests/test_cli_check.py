"""`rkgen check`, `rkgen list`, `--version`, `--help`: output, exit status, one-line errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import sympy
from cli_run import run

from rkgen import __version__, builtin_names
from rkgen.cli import main

REPO = Path(__file__).resolve().parents[1]

CHECK_KEYS = {
    "name", "stages", "structure", "consistent", "order", "order_tolerant", "max_residual", "stage_order",
    "symplectic", "zero_weights", "partner",
}  # fmt: skip


def check_json(capsys, *argv) -> dict:
    status, out, err = run(capsys, "check", *argv, "--json")
    assert status == 0, err
    assert err == ""
    data = json.loads(out)  # exactly one JSON document, nothing around it
    assert isinstance(data, dict)
    assert CHECK_KEYS <= set(data)
    return data


def assert_one_line_error(status, out, err, expected: str | None = None):
    assert status == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, repr(err)
    assert err.startswith("rkgen: error: ")
    assert "Traceback" not in err
    if expected is not None:
        assert err == f"rkgen: error: {expected}\n"


# -- check --json ------------------------------------------------------------------------------------


def test_check_rk4_json(capsys):
    d = check_json(capsys, "rk4")
    assert d["name"] == "rk4"
    assert d["stages"] == 4
    assert d["structure"] == "explicit"
    assert d["consistent"] is True
    assert (d["order"], d["order_tolerant"], d["max_residual"], d["stage_order"]) == (4, 4, 0.0, 1)
    assert d["symplectic"] is False
    assert d["zero_weights"] == []
    p = d["partner"]
    assert {"A", "b", "c", "c_matches"} <= set(p)
    # a~_ij = b_j - b_j a_ji / b_i, by hand
    assert p["A"] == [
        ["1/6", "-2/3", "1/3", "1/6"],
        ["1/6", "1/3", "-1/6", "1/6"],
        ["1/6", "1/3", "1/3", "-1/3"],
        ["1/6", "1/3", "1/3", "1/6"],
    ]
    assert p["b"] == ["1/6", "1/3", "1/3", "1/6"]
    assert p["c"] == ["0", "1/2", "1/2", "1"]
    assert p["c_matches"] is True
    assert "pair_symplectic" not in d and "violations" not in d


def test_check_heun3_json(capsys):
    d = check_json(capsys, "heun3")
    assert d["order"] == 3 and d["zero_weights"] == [1] and d["partner"] is None
    assert [c["residual"] for c in d["failing_conditions"]] == ["-1/36", "-1/72", "-1/36", "-1/24"]


def test_check_dopri5_json(capsys):
    d = check_json(capsys, "dopri5")
    assert (d["order"], d["stages"], d["zero_weights"], d["partner"]) == (5, 7, [1, 6], None)


def test_check_gauss2_json(capsys):
    d = check_json(capsys, "gauss2")
    assert d["structure"] == "fully implicit"
    assert d["symplectic"] is True
    assert (d["order"], d["stage_order"]) == (4, 2)
    assert d["partner"]["c_matches"] is True
    assert d["partner"]["A"] == d["A"]


def test_check_euler_json(capsys):
    d = check_json(capsys, "euler")
    assert d["partner"] == {
        "A": [["1"]], "b": ["1"], "c": ["1"], "c_matches": False, "structure": "diagonally implicit", "order": 1,
    }  # fmt: skip


def test_check_prints_surds_rational_part_first(capsys):
    d = check_json(capsys, "gauss3")
    assert d["A"][2] == ["5/36 + sqrt(15)/30", "2/9 + sqrt(15)/15", "5/36"]
    assert d["c"] == ["1/2 - sqrt(15)/10", "1/2", "1/2 + sqrt(15)/10"]
    assert d["partner"]["A"] == d["A"] and d["partner"]["c"] == d["c"]
    d = check_json(capsys, "gauss5")
    assert d["c"][0] == "1/2 - sqrt(245 + 14*sqrt(70))/42" and d["b"][1] == "161/900 + 13*sqrt(70)/1800"
    status, out, _ = run(capsys, "check", "gauss3")
    assert "  1/2 + sqrt(15)/10 | 5/36 + sqrt(15)/30  2/9 + sqrt(15)/15  5/36\n" in out
    assert "sqrt(15)/30 + 5/36" not in out and "sqrt(15)/10 + 1/2" not in out


def test_check_lobatto_iiib2_json_reports_inconsistent_nodes(capsys):
    d = check_json(capsys, "lobatto_iiib2")
    assert d["consistent"] is False
    assert d["c"] == ["0", "1"] and d["row_sums"] == ["1/2", "1/2"]


def test_check_with_partner_option(capsys):
    d = check_json(capsys, "lobatto_iiia3", "--partner", "lobatto_iiib3")
    assert d["pair_symplectic"] is True and d["violations"] == []
    d = check_json(capsys, "euler", "--partner", "backward_euler")
    assert d["pair_symplectic"] is True and d["violations"] == []
    d = check_json(capsys, "rk4", "--partner", "rk4")
    assert d["pair_symplectic"] is False
    assert len(d["violations"]) == 16
    assert d["violations"][0] == {"kind": "a", "i": 0, "j": 0, "value": "-1/36"}


def test_check_max_order_and_tol(capsys):
    d = check_json(capsys, "gauss5", "--max-order", "4")
    assert d["order"] == 4 and d["order_is_lower_bound"] is True and d["max_order"] == 4
    d = check_json(capsys, "rk4", "--tol", "0.01")
    assert d["tolerance"] == 0.01 and d["order"] == 4


def test_check_data_with_other_order_settings_leaves_the_tableau_alone():
    from rkgen import load
    from rkgen.order import analyse_order
    from rkgen.report import check_data

    t = load("gauss5")
    d = check_data(t, order_report=analyse_order(t, 4, 1e-12))
    assert d["order"] == 4 and d["max_order"] == 4
    assert t.order == 10 and check_data(t)["max_order"] == 12


def _write(path: Path, data) -> str:
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_json_file_with_partner_field_is_verified(tmp_path, capsys):
    good = {
        "name": "heun_pair",
        "A": [["0", "0"], ["1", "0"]],
        "b": ["1/2", "1/2"],
        "partner": {"A": [["1/2", "-1/2"], ["1/2", "1/2"]], "b": ["1/2", "1/2"]},
    }
    d = check_json(capsys, _write(tmp_path / "good.json", good))
    assert d["name"] == "heun_pair"
    assert d["pair_symplectic"] is True and d["violations"] == []
    status, out, _ = run(capsys, "check", str(tmp_path / "good.json"))
    assert status == 0 and "given partner    satisfies conditions (19): the pair is symplectic" in out

    bad = dict(good, partner={"A": [["1/2", "-1/2"], ["1/2", "1/3"]], "b": ["1/2", "1/2"]})
    d = check_json(capsys, _write(tmp_path / "bad.json", bad))
    assert d["pair_symplectic"] is False
    assert d["violations"] == [{"kind": "a", "i": 1, "j": 1, "value": "-1/12"}]
    status, out, _ = run(capsys, "check", str(tmp_path / "bad.json"))
    assert status == 0 and "given partner    violates 1 of conditions (19):" in out

    # --partner overrides the field
    d = check_json(capsys, str(tmp_path / "bad.json"), "--partner", str(tmp_path / "good.json"))
    assert d["pair_symplectic"] is False  # good.json's own A is heun2, not the partner


def test_json_output_is_strict_json_beyond_the_float_range(tmp_path, capsys):
    """A residual of 1e400 is exact in the report and null (not Infinity) as a float."""

    def reject(constant):
        raise AssertionError(f"not JSON: {constant}")

    path = _write(tmp_path / "big.json", {"A": [["1e400"]], "b": ["1"]})
    status, out, err = run(capsys, "check", path, "--json")
    assert status == 0 and err == ""
    data = json.loads(out, parse_constant=reject)
    assert data["order"] == 1
    failing = data["failing_conditions"][0]
    assert failing["residual"] == str(10**400 - sympy.Rational(1, 2)) and failing["residual_float"] is None
    status, out, _ = run(capsys, "check", path)
    assert status == 0 and "residual beyond the float range" in out


# -- text report ---------------------------------------------------------------------------------------


def test_text_reports(capsys):
    status, out, err = run(capsys, "check", "heun3")
    assert status == 0 and err == ""
    assert "order            3, exactly" in out
    assert "partner          none: b_2 = 0, so b_i ã_ij + b_j a_ji − b_i b_j = 0 cannot be solved for ã_ij." in out
    assert "still makes a network" in out
    status, out, _ = run(capsys, "check", "euler")
    assert "c̃ = (1) differs from c (D(1) fails)." in out
    status, out, _ = run(capsys, "check", "gauss3")
    assert "symplectic       yes" in out and "order            6, exactly" in out
    assert "simplifying      B(6)  C(3)  D(3)" in out


def test_text_report_indices_are_one_based_like_derive(tmp_path, capsys):
    status, out, _ = run(capsys, "check", "heun3")
    assert "zero weights     b_2\n" in out
    status, out, _ = run(capsys, "check", "dopri5")
    assert "zero weights     b_2, b_7\n" in out and "partner          none: b_2 = b_7 = 0, so" in out
    status, out, _ = run(capsys, "check", "rk4", "--partner", "rk4")
    assert "                   M_11 = -1/36\n" in out and "                   M_12 = 1/9 = M_21\n" in out
    assert "M[" not in out and "b[" not in out
    assert "                   (i, j) = (1, 2): b_1 ã_12 + b̃_2 a_21 − b_1 b̃_2 = 1/9\n" in out
    assert "                   (i, j) = (4, 4): b_4 ã_44 + b̃_4 a_44 − b_4 b̃_4 = -1/36\n" in out
    # the JSON keeps 0-based positions in its arrays (see --json's help)
    d = check_json(capsys, "rk4", "--partner", "rk4")
    assert d["violations"][1] == {"kind": "a", "i": 0, "j": 1, "value": "1/9"}
    assert check_json(capsys, "heun3")["zero_weights"] == [1]
    # a weight that differs, and two-digit indices
    pair = {
        "A": [["0", "0"], ["1", "0"]],
        "b": ["1/2", "1/2"],
        "partner": {"A": [["0", "0"], ["0", "0"]], "b": ["1", "0"]},
    }
    status, out, _ = run(capsys, "check", _write(tmp_path / "pair.json", pair))
    assert (
        "                   b_1 ≠ b̃_1: b_1 − b̃_1 = -1/2\n" in out
        and "                   b_2 ≠ b̃_2: b_2 − b̃_2 = 1/2\n" in out
    )
    s = 10  # b = e_10, a_10,1 = 1: M_1,10 = b_10 a_10,1 = 1 and M_10,10 = -1
    ten = {"A": [["1" if (i, j) == (9, 0) else "0" for j in range(s)] for i in range(s)], "b": ["0"] * 9 + ["1"]}
    status, out, _ = run(capsys, "check", _write(tmp_path / "ten.json", ten))
    assert "zero weights     b_1, b_2, b_3, b_4, b_5, b_6, b_7, b_8, b_9\n" in out
    assert "                   M_1,10 = 1 = M_10,1\n" in out and "                   M_10,10 = -1\n" in out
    status, out, _ = run(capsys, "check", "--help")
    assert "0-based positions" in " ".join(out.split())


@pytest.mark.parametrize(
    "name, partner, backward",
    [
        ("rk4", "Ã full (as a forward method: fully implicit), order 4",
         ["explicit: stages 4, 3, 2, 1 in turn, no linear solves",
          "(run backwards in time, the partner's stage i uses only stages k > i)"]),
        ("euler", "Ã lower triangular (as a forward method: diagonally implicit), order 1",
         ["explicit: the single stage, no linear solve"]),
        ("backward_euler", "Ã strictly lower triangular (as a forward method: explicit), order 1",
         ["the single stage, with one d×d linear solve per layer and sample (a_11 ≠ 0)"]),
        ("sdirk2", "Ã lower triangular (as a forward method: diagonally implicit), order 2",
         ["stages 2, 1 in turn, each with one d×d linear solve per layer and sample (a_ii ≠ 0)",
          "(run backwards in time, the partner's stage i uses only stages k ≥ i)"]),
        ("trapezoid", None,
         ["stages 2, 1 in turn; stage 2 (a_22 ≠ 0) with one d×d linear solve per layer and sample, stage 1 explicit",
          "(run backwards in time, the partner's stage i uses only stages k ≥ i)"]),
        ("gauss3", "Ã full (as a forward method: fully implicit), order 6",
         ["all 3 stages at once: one coupled linear system of size 3d per layer and sample"]),
        ("lobatto_iiic2", "Ã strictly lower triangular (as a forward method: explicit), order 2",
         ["both stages at once: one coupled linear system of size 2d per layer and sample"]),
        ("heun3", None, ["explicit: stages 3, 2, 1 in turn, no linear solves"]),
    ],
)  # fmt: skip
def test_partner_structure_and_what_the_backward_pass_solves(capsys, name, partner, backward):
    """The partner's Ã says how it would run forwards; the backward pass couples the stages as Aᵀ does."""
    status, out, _ = run(capsys, "check", name)
    assert status == 0
    if partner is not None:
        assert f"\n                 {partner}\n" in out
    assert "                 structure " not in out
    lines = ["backward pass    " + backward[0]] + ["                 " + line for line in backward[1:]]
    assert "\n" + "\n".join(lines) + "\n" in out


def test_backward_pass_in_json(capsys):
    assert check_json(capsys, "rk4")["backward_pass"] == {"stages": [3, 2, 1, 0], "solves": []}
    assert check_json(capsys, "sdirk2")["backward_pass"] == {"stages": [1, 0], "solves": [[1], [0]]}
    assert check_json(capsys, "trapezoid")["backward_pass"] == {"stages": [1, 0], "solves": [[1]]}
    assert check_json(capsys, "gauss3")["backward_pass"] == {"stages": [0, 1, 2], "solves": [[0, 1, 2]]}


def test_text_report_singular_and_plural(capsys):
    status, out, _ = run(capsys, "check", "euler")
    assert "                 the condition of order 2 that fails (b·Φ(t) − 1/γ(t)):\n" in out
    assert "symplectic       no: M = diag(b)A + Aᵀdiag(b) − bbᵀ has a nonzero entry\n" in out
    assert "explicit: the single stage, no linear solve\n" in out
    status, out, _ = run(capsys, "check", "rk4")
    assert "                 conditions of order 5 that fail (b·Φ(t) − 1/γ(t)):\n" in out
    assert "symplectic       no: M = diag(b)A + Aᵀdiag(b) − bbᵀ has nonzero entries\n" in out
    assert "no linear solves\n" in out


def test_strict_fails_when_the_given_partner_violates_conditions_19(tmp_path, capsys):
    status, out, err = run(capsys, "check", "rk4", "--partner", "rk4", "--strict")
    assert status == 1
    assert "given partner    violates 16 of conditions (19):" in out  # the whole report all the same
    assert err == "rkgen: check failed: rk4: the given partner rk4 violates 16 of conditions (19)\n"
    status, out, err = run(capsys, "check", "rk4", "--partner", "rk4", "--strict", "--json")
    assert status == 1 and json.loads(out)["pair_symplectic"] is False and err.startswith("rkgen: check failed: ")
    # without --strict, as before
    status, out, err = run(capsys, "check", "rk4", "--partner", "rk4")
    assert status == 0 and err == "" and "violates 16 of conditions (19)" in out
    # nothing fails: a symplectic pair, a symplectic method as its own partner, no partner given
    for argv in (["euler", "--partner", "backward_euler"], ["gauss2", "--partner", "gauss2"], ["rk4"], ["heun3"]):
        status, _, err = run(capsys, "check", *argv, "--strict")
        assert (status, err) == (0, ""), argv
    # the partner field of a file
    pair = {"A": [["0", "0"], ["1", "0"]], "b": ["1/2", "1/2"], "partner": {"A": [["1/2", "-1/2"], ["1/2", "1/2"]]}}
    pair["partner"]["b"] = ["1/2", "1/2"]
    assert run(capsys, "check", _write(tmp_path / "good.json", pair), "--strict")[0] == 0
    pair["partner"]["A"][1][1] = "1/3"
    status, _, err = run(capsys, "check", _write(tmp_path / "bad.json", pair), "--strict")
    assert (
        status == 1
        and err == "rkgen: check failed: bad: the given partner bad_given_partner violates 1 of conditions (19)\n"
    )
    # bad input stays status 2
    assert_one_line_error(*run(capsys, "check", "rk5", "--strict"))
    assert_one_line_error(*run(capsys, "check", "rk4", "--partner", "heun2", "--strict"))


def test_subprocess_strict_exit_status():
    proc = _subprocess("check", "rk4", "--partner", "rk4", "--strict", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["pair_symplectic"] is False
    assert proc.stderr == "rkgen: check failed: rk4: the given partner rk4 violates 16 of conditions (19)\n"
    assert _subprocess("check", "rk4", "--partner", "rk4").returncode == 0


# -- errors ----------------------------------------------------------------------------------------------


def test_bad_entry_error(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / "bad.json", {"A": [["0", "0", "0"], ["1", "0", "0"], ["0", "exp(1)", "0"]], "b": ["1", "0", "0"]})
    assert_one_line_error(*run(capsys, "check", "bad.json"), "bad.json: a_32 (row 3, column 2 of A): "
                          "unsupported expression 'exp(1)'")
    assert_one_line_error(*run(capsys, "check", "bad.json", "--json"))


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"A": [["0"], ["0"], ["0"]], "b": ["1", "0"]}', "in.json: A has 3 rows but b has 2 entries"),
        ('{"A": [["0", "0"], ["1"]], "b": ["1", "0"]}', "in.json: A is not square: row 2 of A has 1 entry, expected 2"),
        ('{"A": [], "b": []}', "in.json: empty tableau: A and b need at least one stage"),
        ('{"A": [["0"]],\n "b": [1', "in.json: invalid JSON at line 2, column 9: Expecting ',' delimiter"),
        ('{"A": [["1/0"]], "b": ["1"]}', "in.json: a_11 (row 1, column 1 of A): division by zero in '1/0'"),
        ('{"A": [["sqrt(-1)"]], "b": ["1"]}',
         "in.json: a_11 (row 1, column 1 of A): complex value: square root of a negative number in 'sqrt(-1)'"),
        ('{"A": [["1j"]], "b": ["1"]}', "in.json: a_11 (row 1, column 1 of A): complex value '1j'"),
        ('{"A": [[true]], "b": ["1"]}', "in.json: a_11 (row 1, column 1 of A): expected a number, got true"),
        ('{"A": [[null]], "b": ["1"]}', "in.json: a_11 (row 1, column 1 of A): expected a number or a string "
                                          "holding one, got null"),
        ('{"A": [["abc"]], "b": ["1"]}', "in.json: a_11 (row 1, column 1 of A): unsupported expression 'abc'"),
        ('{"A": [["0"]], "b": ["1"], "partner": {"A": [["0", "0"], ["1", "0"]], "b": ["1/2", "1/2"]}}',
         "in.json: the partner has 2 stages, the tableau 1"),
        ('{"A": [["sqrt(sqrt(sqrt(sqrt(2))))"]], "b": ["1"]}',
         "in.json: square roots nested 4 deep; exact arithmetic supports at most 3"),
    ],
)  # fmt: skip
def test_bad_input_is_one_line(tmp_path, capsys, monkeypatch, content, expected):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in.json").write_text(content)
    assert_one_line_error(*run(capsys, "check", "in.json"), expected)


def test_other_bad_inputs(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*run(capsys, "check", "missing.json"), "missing.json: no such file")
    assert_one_line_error(
        *run(capsys, "check", "rk5"),
        "rk5: no such file, and not a built-in tableau (see 'rkgen list'; did you mean rk4?)",
    )
    (tmp_path / "d.json").mkdir()
    assert_one_line_error(*run(capsys, "check", "d.json"), "d.json: not a file")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00")
    assert_one_line_error(*run(capsys, "check", "bin.json"), "bin.json: not UTF-8 text")
    assert_one_line_error(*run(capsys, "check", "rk4", "--partner", "nope.json"), "nope.json: no such file")
    assert_one_line_error(
        *run(capsys, "check", "rk4", "--partner", "heun2"), "built-in heun2: the partner has 2 stages, the tableau 4"
    )
    assert_one_line_error(*run(capsys, "check", "rk4", "--max-order", "0"), "--max-order must be between 1 and 16")
    assert_one_line_error(*run(capsys, "check", "rk4", "--tol", "nan"), "--tol must be a finite nonnegative number")
    with open(tmp_path / "huge.json", "wb") as f:
        f.truncate(100 * 2**20)  # a 100 MB file (sparse)
    assert_one_line_error(*run(capsys, "check", "huge.json"))


# -- list, version, help -----------------------------------------------------------------------------


def test_list(capsys):
    status, out, err = run(capsys, "list")
    assert status == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == 26  # header + 25 built-ins
    listed = [line.split()[0] for line in lines[1:]]
    assert listed == builtin_names() and len(listed) == 25
    row = {line.split()[0]: line.split() for line in lines[1:]}
    assert row["gauss5"][1:4] == ["5", "10", "yes"]
    assert row["rk4"][1:4] == ["4", "4", "no"]


def test_list_json(capsys):
    status, out, _ = run(capsys, "list", "--json")
    rows = json.loads(out)
    assert status == 0 and [r["name"] for r in rows] == builtin_names()
    assert {r["name"]: r["order"] for r in rows}["dopri5"] == 5


def test_version(capsys):
    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"rkgen {__version__}"


def test_check_help(capsys):
    status, out, _ = run(capsys, "check", "--help")
    assert status == 0
    assert out.startswith("usage: rkgen check") and "--partner" in out and "--json" in out
    assert "--strict" in out and "exit with status 1 when a check fails" in " ".join(out.split())


# -- the real command, in a subprocess -------------------------------------------------------------


def _subprocess(*args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "rkgen", *args], capture_output=True, text=True, env=env, timeout=120)


def test_subprocess_check_rk4_json():
    proc = _subprocess("check", "rk4", "--json")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    data = json.loads(proc.stdout)
    assert data["name"] == "rk4" and data["order"] == 4 and data["partner"]["c_matches"] is True
    assert CHECK_KEYS <= set(data)


def test_subprocess_bad_input(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"A": [["__import__(\'os\').system(\'touch X\')"]], "b": ["1"]}')
    proc = _subprocess("check", str(bad))
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and proc.stderr.startswith(
        f"rkgen: error: {bad}: a_11 (row 1, column 1 of A): "
    )
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "X").exists() and not Path("X").exists()


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["check", "--max-order", "x", "rk4"], "rkgen: error: check: argument --max-order: invalid int value: 'x'"),
        (["check"], "rkgen: error: check: the following arguments are required: tableau"),
        (["--bogus"], "rkgen: error: unrecognized arguments: --bogus"),
    ],
)
def test_usage_errors_are_one_line(argv, expected, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(expected)


def test_check_reports_linear_stability(capsys):
    assert main(["check", "gauss2", "--json"]) == 0
    st = json.loads(capsys.readouterr().out)["stability"]
    assert st["A_stable"] and not st["L_stable"] and st["algebraically_stable"] and st["interval"]["unbounded"]
    assert st["degrees"] == [2, 2] and st["partner_identity"] is True
    assert main(["check", "rk4"]) == 0
    text = capsys.readouterr().out
    assert "A-stable: no (|R(iy)| > 1 for some real y" in text
    assert "real interval [-2.785293563405281623529759, 0]" in text
    assert "R̃(z)·R(−z) = 1 holds" in text
    assert main(["check", "radau_iia2"]) == 0
    text = capsys.readouterr().out
    assert "L-stable: yes (R(∞) = 0)" in text and "algebraically stable: yes" in text
