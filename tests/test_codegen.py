"""Code generation: golden files, the template's keys, determinism, atomic writes, the `rkgen
generate` command, and what a generated file may contain (imports, header, float literals).

Nothing here compiles a numba kernel: modules are parsed with ast, or imported (numba compiles
lazily, on the first call).
"""

from __future__ import annotations

import ast
import functools
import hashlib
import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import jinja2
import mpmath
import pytest
import sympy

import rkgen
import rkgen.codegen as codegen
from conftest import GENERATED, ROOT, Background, golden_module
from rkgen import builtin_names, from_json, load
from rkgen.cli import main as rkgen_main
from rkgen.codegen import (
    TEMPLATE_KEYS,
    generate_file,
    module_filename,
    render_module,
    template_context,
    template_variables,
)
from rkgen.codegen import renderer as render_step
from rkgen.codegen.renderer import TEMPLATE
from rkgen.errors import RkgenError

NAMES = builtin_names()
REFRESH = "python -m rkgen.codegen generated"
COEFFICIENT = re.compile(r"^[abc](_\d+)+$")


@functools.cache
def tableau(name: str):
    """A built-in tableau, loaded once (its order analysis is cached on the object)."""
    return load(name)


@functools.cache
def rendered(name: str) -> str:
    return render_module(tableau(name))


def golden(name: str) -> str:
    return (GENERATED / f"{name}_net.py").read_text(encoding="utf-8")


def tableau_json(tmp_path, name, A=(("0", "0"), ("1/2", "0")), b=("0", "1")):
    path = tmp_path / "tableau.json"
    path.write_text(json.dumps({"name": name, "A": A, "b": b}), encoding="utf-8")
    return path


# --------------------------------------------------------------------------------------------------
# golden files, ruff, determinism
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_golden_file_is_current(name):
    path = GENERATED / f"{name}_net.py"
    assert path.is_file(), f"{path} is missing; create it with `{REFRESH}`"
    assert rendered(name) == golden(name), (
        f"{path} differs from what rkgen generates now; if the change is intended, refresh the "
        f"golden files with `{REFRESH}` and review the diff"
    )


def test_no_stale_golden_files():
    present = {p.name for p in GENERATED.glob("*.py")}
    expected = {module_filename(tableau(n)) for n in NAMES}
    assert present == expected, f"stale or missing files in generated/; run `{REFRESH}`"


def test_generated_files_pass_ruff():
    run = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-cache", str(GENERATED)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_render_twice_is_identical():
    for name in ("rk4", "heun3", "gauss3", "sdirk2", "radau_iia3", "trapezoid"):
        assert render_module(load(name)) == render_module(load(name)) == rendered(name)


HASH_SCRIPT = """
import hashlib, json
from rkgen import builtin_names, load
from rkgen.codegen import render_module
print(json.dumps({n: hashlib.sha256(render_module(load(n)).encode()).hexdigest()
                  for n in builtin_names()}))
"""
_renders: dict = {}


def _render_job(seed):
    if seed not in _renders:
        env = dict(os.environ, PYTHONHASHSEED=str(seed))
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
        _renders[seed] = Background([sys.executable, "-c", HASH_SCRIPT], env=env, cwd=str(ROOT))
    return _renders[seed]


def prestart(items):
    """Called by conftest after collection: render in two other processes in the background."""
    if any(item.originalname == "test_render_in_other_processes_is_identical" for item in items):
        _render_job(1)
        _render_job(2)


def test_render_in_other_processes_is_identical():
    """Two processes with different hash seeds (set and dict orders differ) render every built-in
    to the same bytes as this one."""
    results = []
    for seed in (1, 2):
        code, out, err = _render_job(seed).result(timeout=600)
        assert code == 0, err
        results.append(json.loads(out))
    here = {n: hashlib.sha256(rendered(n).encode()).hexdigest() for n in NAMES}
    assert results[0] == results[1] == here


# --------------------------------------------------------------------------------------------------
# the template's keys
# --------------------------------------------------------------------------------------------------


def test_template_keys_are_exactly_the_variables_the_template_reads():
    assert TEMPLATE_KEYS == template_variables()
    for name in ("rk4", "gauss2", "sdirk2"):
        assert set(template_context(load(name))) == TEMPLATE_KEYS


@pytest.mark.parametrize("key", sorted(TEMPLATE_KEYS))
def test_render_with_a_missing_key_raises(monkeypatch, key):
    def without(tableau, **given):
        ctx = dict(real(tableau, **given))
        del ctx[key]
        return ctx

    real = render_step.template_context
    monkeypatch.setattr(render_step, "template_context", without)
    monkeypatch.setattr(render_step, "_RENDERED", {})
    with pytest.raises(RuntimeError, match=f"missing \\['{key}'\\]"):
        render_module(load("rk4"))


def test_render_with_an_extra_key_raises(monkeypatch):
    real = render_step.template_context
    monkeypatch.setattr(render_step, "template_context", lambda t, **given: {**real(t, **given), "surplus": 1})
    monkeypatch.setattr(render_step, "_RENDERED", {})
    with pytest.raises(RuntimeError, match="unused \\['surplus'\\]"):
        render_module(load("rk4"))


def test_template_is_strict_about_undefined_variables():
    env = codegen.template_environment()
    ctx = template_context(load("rk4"))
    del ctx["coefficients"]
    with pytest.raises(jinja2.UndefinedError, match="coefficients"):
        env.get_template(TEMPLATE).render(**ctx)


# --------------------------------------------------------------------------------------------------
# atomic write
# --------------------------------------------------------------------------------------------------


class _Interrupted(OSError):
    pass


_REAL_FDOPEN = os.fdopen


def _failing_fdopen(monkeypatch, exc=None):
    """os.fdopen whose file writes half of the text, then raises."""
    real = _REAL_FDOPEN

    def fdopen(fd, *args, **kwargs):
        fh = real(fd, *args, **kwargs)
        write = fh.write

        def half(text):
            write(text[: len(text) // 2])
            fh.flush()
            raise exc or _Interrupted(28, "No space left on device")

        fh.write = half
        return fh

    monkeypatch.setattr(os, "fdopen", fdopen)


def test_atomic_write_failing_midway_leaves_no_file(monkeypatch, tmp_path):
    _failing_fdopen(monkeypatch)
    with pytest.raises(RkgenError, match="cannot write: No space left on device"):
        generate_file(load("rk4"), tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_failing_midway_keeps_the_old_file(monkeypatch, tmp_path):
    target = tmp_path / "rk4_net.py"
    target.write_text("# an older version\n")
    for exc in (None, KeyboardInterrupt()):
        _failing_fdopen(monkeypatch, exc)
        with pytest.raises(RkgenError if exc is None else KeyboardInterrupt):
            generate_file(load("rk4"), tmp_path, force=True)
        assert target.read_text() == "# an older version\n"
        assert [p.name for p in tmp_path.iterdir()] == ["rk4_net.py"]


def test_atomic_write_failing_rename_leaves_nothing_behind(monkeypatch, tmp_path):
    def replace(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(RkgenError, match="Permission denied"):
        generate_file(load("rk4"), tmp_path / "out.py")
    assert list(tmp_path.iterdir()) == []


def test_generated_file_mode_follows_the_umask(tmp_path):
    """An ordinary file (mkstemp alone would leave 0600), also when --force replaces one."""
    old = os.umask(0o022)
    try:
        result = generate_file(tableau("rk4"), tmp_path)
        assert stat.S_IMODE(result.path.stat().st_mode) == 0o644
        result.path.write_text("# edited\n")
        os.umask(0o027)
        result = generate_file(tableau("rk4"), tmp_path, force=True)
        assert result.status == "overwritten"
        assert stat.S_IMODE(result.path.stat().st_mode) == 0o640
    finally:
        os.umask(old)


# --------------------------------------------------------------------------------------------------
# the command line
# --------------------------------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = rkgen_main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("name", "summary"),
    [
        (
            "rk4",
            [
                "rk4: 4 stages, order 4, explicit",
                "partner A~ full, c~ = c; the backward pass needs no solves",
                "train this file: rkgen train --tableau",
            ],
        ),
        ("heun3", ["order 3, explicit", "no symplectic partner (b_2 = 0)"]),
        ("gauss2", ["order 4, fully implicit", "symplectic: its own partner"]),
        (
            "sdirk2",
            [
                "order 2, diagonally implicit (SDIRK",
                "partner A~ lower triangular, c~ != c; the backward pass needs one d x d solve per stage",
            ],
        ),
        ("euler", ["order 1, explicit", "c~ != c"]),
    ],
)
def test_generate_writes_the_module_and_reports(capsys, tmp_path, name, summary):
    code, out, err = run_cli(capsys, "generate", name, "-o", str(tmp_path))
    assert code == 0 and err == ""
    path = tmp_path / f"{name}_net.py"
    assert path.read_text(encoding="utf-8") == rendered(name)
    assert [p.name for p in tmp_path.iterdir()] == [path.name]
    assert out.splitlines()[0] == f"wrote {path}"
    for text in summary:
        assert text in out


def test_generate_unchanged_refused_and_forced(capsys, tmp_path):
    path = tmp_path / "rk4_net.py"
    assert run_cli(capsys, "generate", "rk4", "-o", str(tmp_path))[0] == 0
    stamp = path.stat().st_mtime_ns, path.stat().st_ino

    code, out, err = run_cli(capsys, "generate", "rk4", "-o", str(tmp_path))
    assert code == 0 and out.startswith(f"unchanged {path}") and err == ""
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == stamp  # not rewritten

    path.write_text("# edited by hand\n")
    code, out, err = run_cli(capsys, "generate", "rk4", "-o", str(tmp_path))
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("rkgen: error: ")
    assert "exists and differs" in err and "--force" in err
    assert path.read_text() == "# edited by hand\n"

    code, out, err = run_cli(capsys, "generate", "rk4", "-o", str(tmp_path), "--force")
    assert code == 0 and out.startswith(f"overwrote {path}")
    assert path.read_text(encoding="utf-8") == rendered("rk4")
    assert [p.name for p in tmp_path.iterdir()] == ["rk4_net.py"]


def test_generate_to_an_explicit_file_name(capsys, tmp_path):
    target = tmp_path / "sub" / "mine.py"
    code, out, _ = run_cli(capsys, "generate", "midpoint", "-o", str(target))
    assert code == 0 and target.read_text(encoding="utf-8") == rendered("midpoint")


def test_bare_tableau_argument_generates(tmp_path):
    """`rkgen rk4` is `rkgen generate rk4`, into the current folder (the real entry point)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    run = subprocess.run(
        [sys.executable, "-m", "rkgen", "rk4"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert (tmp_path / "rk4_net.py").read_text(encoding="utf-8") == rendered("rk4")
    assert "order 4" in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["rk5"], "not a built-in tableau"),
        (["{dir}/missing.json"], "no such file"),
        (["{dir}/bad.json"], "invalid JSON"),
        (["{dir}/nonsquare.json"], "A is not square"),
        (["{dir}/badentry.json"], "a_21 (row 2, column 1 of A)"),
        (["rk4", "-o", "{dir}/out.txt"], "must be a .py file or a folder"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, args, message):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "bad.json").write_text('{"A": [["0"]], "b": ["1"],}')
    (inputs / "nonsquare.json").write_text('{"A": [["0", "0"], ["1"]], "b": ["1/2", "1/2"]}')
    (inputs / "badentry.json").write_text('{"A": [["0", "0"], ["import os", "0"]], "b": ["1", "0"]}')
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    argv = [a.format(dir=inputs) for a in args]
    if "-o" not in argv:
        argv += ["-o", str(out_dir)]
    code, out, err = run_cli(capsys, "generate", *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("rkgen: error: ") and message in err
    assert list(out_dir.iterdir()) == []
    assert sorted(p.name for p in inputs.iterdir()) == [
        "bad.json",
        "badentry.json",
        "nonsquare.json",
    ]


@pytest.mark.parametrize(
    ("name", "filename"),
    [
        ("my method-2", "my_method_2_net.py"),
        ("2stage", "t_2stage_net.py"),
        ("RK4 (classic)", "rk4_classic_net.py"),
        ("--", "tableau_net.py"),
    ],
)
def test_name_sanitising(capsys, tmp_path, name, filename):
    path = tableau_json(tmp_path, name)
    out_dir = tmp_path / "out"
    code, out, err = run_cli(capsys, "generate", str(path), "-o", str(out_dir) + os.sep)
    assert code == 0, err
    assert [p.name for p in out_dir.iterdir()] == [filename]
    source = (out_dir / filename).read_text(encoding="utf-8")
    assert source.startswith(f'"""{filename[:-3]}: ')
    assert constants(source)["NAME"] == name
    assert filename[:-3].isidentifier()


ODD_NAMES = [
    'quote"name',
    "it's",
    "new\nline",
    "tab\there",
    "ünïcödé",
    "{{ x }}",
    "# not a comment",
]


@pytest.mark.parametrize("name", ODD_NAMES)
def test_odd_names_give_valid_modules(name):
    t = from_json(json.dumps({"name": name, "A": [["0"]], "b": ["1"]}))
    source = render_module(t)
    assert constants(source)["NAME"] == name
    assert module_filename(t)[:-3].isidentifier()


@pytest.mark.parametrize("name", ['three """ quotes', "back\\slash \\N"])
def test_names_with_quotes_and_backslashes_give_valid_modules(name):
    t = from_json(json.dumps({"name": name, "A": [["0"]], "b": ["1"]}))
    source = render_module(t)
    assert constants(source)["NAME"] == name  # the constant keeps the name exactly
    shown = name.replace("\\", "/").replace('"', "'")  # the docstring shows it made safe
    assert ast.get_docstring(ast.parse(source)).count(shown) >= 1


# --------------------------------------------------------------------------------------------------
# the content of a generated file
# --------------------------------------------------------------------------------------------------


def constants(source: str) -> dict:
    """Module-level ``NAME = <literal>`` assignments of a generated file."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                try:
                    out[target.id] = ast.literal_eval(node.value)
                except ValueError:
                    pass
    return out


def imported_modules(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "relative import"
            names.add(node.module)
    return names


@pytest.mark.parametrize("name", NAMES)
def test_imports_only_numpy_numba_and_the_standard_library(name):
    """... and llvmlite.binding, numba's own dependency, whose add_symbol binds the BLAS (rkgen.runtime.blas)."""
    source = golden(name)
    modules = imported_modules(source)
    assert {"numpy", "numba"} <= modules
    for module in modules:
        top = module.split(".")[0]
        assert top in {"numpy", "numba"} or module == "llvmlite.binding" or top in sys.stdlib_module_names, module
    assert not {m for m in modules if m.split(".")[0] in {"sympy", "rkgen", "jinja2", "flint"}}
    assert "__import__" not in source
    # the dynamic imports: scipy's BLAS, where the binding of the large products falls back to it (a scipy not
    # from the wheels) and before any wide block runs (the wide blocks' products call it; a clear error without
    # scipy), and threadpoolctl, to hold that BLAS to one thread in wide layers (optional)
    dynamic = re.findall(r"importlib\.\w+\([^)]*\)", source)
    wanted = ("scipy.linalg.cython_blas", "scipy.linalg.cython_blas", "threadpoolctl")
    assert dynamic == [f'importlib.import_module("{m}")' for m in wanted]


def test_imports_of_every_structure_are_the_same():
    assert imported_modules(golden("rk4")) == imported_modules(golden("gauss3"))
    # numba.core.codegen: the host CPU's features (the BLAS widths, the vector width); numba.extending: the
    # intrinsics that set the vector width, take an array's address and borrow views; numba.core: cgutils, which
    # those intrinsics build with; ctypes, importlib.util, re, typing and llvmlite.binding: the binding of the large
    # products' BLAS (rkgen.runtime.blas)
    assert imported_modules(golden("rk4")) == {
        "contextlib", "ctypes", "functools", "importlib", "importlib.util", "math", "os", "re", "sys", "collections",
        "llvmlite.binding", "numba", "numba.core", "numba.core.codegen", "numba.extending", "numpy", "typing",
    }


def test_module_asks_openmp_to_sleep_but_respects_the_user():
    """Importing a module asks OpenMP for a bounded spin, then sleep (OMP_WAIT_POLICY=PASSIVE, GOMP_SPINCOUNT=30000),
    only where the user set neither."""
    code = (
        f"import os, sys; sys.path.insert(0, {str(GENERATED)!r}); import rk4_net; "
        "print(os.environ.get('OMP_WAIT_POLICY'), os.environ.get('GOMP_SPINCOUNT'))"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["PASSIVE", "30000"]
    for key, value, want in (("OMP_WAIT_POLICY", "ACTIVE", ["ACTIVE", "None"]), ("GOMP_SPINCOUNT", "0", ["None", "0"])):
        out = subprocess.run([sys.executable, "-c", code], env={**env, key: value}, capture_output=True, text=True,
                             check=True)
        assert out.stdout.split() == want


@pytest.mark.parametrize("name", NAMES)
def test_header_has_version_and_sha256_and_no_timestamp(name):
    t = tableau(name)
    source = golden(name)
    canonical = t.canonical_json()
    data = json.loads(canonical)
    assert set(data) == {"name", "A", "b", "c"}
    assert canonical == json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    doc = ast.get_docstring(ast.parse(source))
    assert f"Generated by rkgen {rkgen.__version__};" in doc
    assert f"Canonical tableau JSON sha256: {digest}" in doc
    c = constants(source)
    assert c["TABLEAU_SHA256"] == digest and c["RKGEN_VERSION"] == rkgen.__version__
    # nothing that changes from run to run or machine to machine
    assert not re.search(r"\b(19|20)\d\d-[01]\d-[0-3]\d\b", source)
    assert not re.search(r"\b[0-2]\d:[0-5]\d(:[0-5]\d)?\b", source)
    for text in (str(ROOT), os.path.expanduser("~"), "/tmp/", "/home/"):
        assert text not in source


@pytest.mark.parametrize("name", NAMES)
def test_metadata_constants(name):
    t = tableau(name)
    c = constants(golden(name))
    assert c["NAME"] == name and c["STAGES"] == t.stages and c["ORDER"] == t.order
    assert c["STRUCTURE"] == t.structure
    assert c["FIELDS"] == ("resnet", "stable")
    assert c["ACTIVATIONS"] == ("tanh", "relu", "softplus", "sigmoid")


def exact_float(x) -> float:
    """The float64 nearest to the exact sympy number x, from a 50-digit value (mpmath)."""
    with mpmath.workdps(50):
        return float(mpmath.mpf(str(sympy.N(x, 60))))


def coefficient_table(name):
    """{coefficient name: exact value} over the whole tableau, zeros included."""
    t = tableau(name)
    s = t.stages
    table = {f"a_{i + 1}_{j + 1}": t.A[i][j] for i in range(s) for j in range(s)}
    table |= {f"b_{i + 1}": t.b[i] for i in range(s)}
    table |= {f"c_{i + 1}": t.c[i] for i in range(s)}
    return table


@pytest.mark.parametrize("name", NAMES)
def test_float_literals_are_the_nearest_floats_and_zeros_are_not_printed(name):
    source = golden(name)
    printed = {k: v for k, v in constants(source).items() if COEFFICIENT.match(k)}
    table = coefficient_table(name)
    nonzero = {k for k, x in table.items() if abs(sympy.N(x, 50)) > 1e-40}
    assert set(printed) == nonzero
    for key, literal in printed.items():
        assert type(literal) is float
        assert literal == exact_float(table[key]), key
        assert repr(literal) in source  # printed with repr: reads back bit for bit
    # the exact value is written beside (or above, when long) every literal
    for key in printed:
        m = re.search(rf"^{key} = \S+  # (.+)$", source, re.M) or re.search(
            rf"^# {key} = (.+(?:\n#     .+)*)\n{key} = ", source, re.M
        )
        assert m, key
        text = m.group(1).replace("\n#     ", " ")
        assert abs(sympy.N(sympy.sympify(text) - table[key], 50)) < 1e-45, key


def test_rk4_prints_only_its_nonzero_coefficients():
    printed = {k for k in constants(golden("rk4")) if COEFFICIENT.match(k)}
    assert printed == {"a_2_1", "a_3_2", "a_4_3", "b_1", "b_2", "b_3", "b_4", "c_2", "c_3", "c_4"}
    assert "a_3_1" not in golden("rk4")
    heun3 = {k for k in constants(golden("heun3")) if COEFFICIENT.match(k)}
    assert "b_2" not in heun3 and "c_1" not in heun3


def gauss_legendre(s, dps=50):
    """The Gauss-Legendre tableau with s stages from scratch in mpmath: nodes from Newton on the
    Legendre polynomial, A and b from the collocation conditions C(s) and B(s)."""
    with mpmath.workdps(dps + 10):
        roots = []
        for i in range(1, s + 1):
            x = mpmath.cos(mpmath.pi * (i - mpmath.mpf(1) / 4) / (s + mpmath.mpf(1) / 2))
            for _ in range(100):
                x = x - mpmath.legendre(s, x) / mpmath.diff(lambda z: mpmath.legendre(s, z), x)
            roots.append(x)
        c = sorted((1 + x) / 2 for x in roots)
        V = mpmath.matrix([[cj**k for cj in c] for k in range(s)])  # V[k, j] = c_j^k
        b = mpmath.lu_solve(V, mpmath.matrix([mpmath.mpf(1) / (k + 1) for k in range(s)]))
        A = [mpmath.lu_solve(V, mpmath.matrix([ci ** (k + 1) / (k + 1) for k in range(s)])) for ci in c]
        return (
            [[float(A[i][j]) for j in range(s)] for i in range(s)],
            [float(x) for x in b],
            [float(x) for x in c],
        )


@pytest.mark.parametrize("s", [2, 3, 4, 5])
def test_gauss_literals_against_mpmath(s):
    """The printed floats of gauss<s> against the Gauss-Legendre coefficients computed in mpmath
    at 50 digits, independently of rkgen's exact tableau."""
    A, b, c = gauss_legendre(s)
    printed = constants(golden(f"gauss{s}"))
    for i in range(s):
        assert printed[f"b_{i + 1}"] == b[i]
        assert printed[f"c_{i + 1}"] == c[i]
        for j in range(s):
            assert printed[f"a_{i + 1}_{j + 1}"] == A[i][j], (i, j)


@pytest.mark.parametrize("name", ["rk4", "heun3", "gauss3", "sdirk2", "lobatto_iiic3"])
def test_imported_module_arrays_are_the_nearest_floats(name):
    net = golden_module(name)  # imported, not compiled
    table = coefficient_table(name)
    s = net.STAGES
    for i in range(s):
        assert net.B[i] == exact_float(table[f"b_{i + 1}"])
        assert net.C[i] == exact_float(table[f"c_{i + 1}"])
        for j in range(s):
            assert net.A[i, j] == exact_float(table[f"a_{i + 1}_{j + 1}"])
    assert net.A.shape == (s, s) and net.B.shape == net.C.shape == (s,)


# --------------------------------------------------------------------------------------------------
# python -m rkgen.codegen and load_network
# --------------------------------------------------------------------------------------------------


def test_regenerate_folder(monkeypatch, tmp_path, capsys):
    from rkgen.codegen.__main__ import main as regenerate

    monkeypatch.setattr(codegen, "render_module", lambda t: rendered(t.name))  # already rendered
    (tmp_path / "old_net.py").write_text("# a tableau that is gone\n")
    (tmp_path / "keep.py").write_text("# not a network module\n")
    assert regenerate([str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == sorted([f"{n}_net.py" for n in NAMES] + ["keep.py"])
    for n in NAMES:
        assert (tmp_path / f"{n}_net.py").read_text(encoding="utf-8") == rendered(n)
    out = capsys.readouterr().out
    assert "removed" in out and "old_net.py" in out
    assert regenerate([str(tmp_path)]) == 0
    assert capsys.readouterr().out.count("unchanged") == len(NAMES)


def test_load_network_caches_by_content(monkeypatch, tmp_path):
    monkeypatch.setenv("RKGEN_CACHE", str(tmp_path))
    net = codegen.load_network("heun2")
    assert codegen.load_network("heun2") is net
    files = list(tmp_path.rglob("*_net.py"))
    assert len(files) == 1 and files[0].read_text(encoding="utf-8") == rendered("heun2")
    assert files[0].parent.name.startswith("heun2-")
    assert net.NAME == "heun2" and net.STAGES == 2
    with pytest.raises(RkgenError, match="no such file"):
        codegen.load_network(str(tmp_path / "absent_net.py"))


def test_installed_package_ships_its_templates(tmp_path):
    """Outside the source tree, `import rkgen` is the installed package: its templates must be inside it."""
    code = (
        "import rkgen, rkgen.codegen as c, pathlib; d = c.template_dir(); "
        "print(pathlib.Path(rkgen.__file__).parent); print(d); print((d / 'network.py.j2').is_file())"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, env=env)
    if run.returncode != 0 and "No module named 'rkgen'" in run.stderr:
        pytest.skip("rkgen is not installed in this interpreter (run from the source tree only)")
    package, templates, present = run.stdout.split("\n")[:3]
    assert present == "True"
    assert pathlib.Path(templates).parent in (pathlib.Path(package), pathlib.Path(package).parent)


def test_load_network_cache_follows_the_generator(tmp_path, monkeypatch):
    """The cache folder is named by the sha256 of the rendered text: any change of the generator's output, in
    the equations, the printer, the template or the runtime, gives a new folder, and nothing else does."""
    monkeypatch.setenv("RKGEN_CACHE", str(tmp_path))
    t = load("euler")
    now = codegen.cached_module_path(t)
    assert now.parent.parent == tmp_path and now.name == "euler_net.py"
    assert now.parent.name == "euler-" + hashlib.sha256(rendered("euler").encode()).hexdigest()[:16]
    assert codegen.cached_module_path(load("euler")) == now  # a new Tableau object, the same content
    real = render_step.printer.kernels

    def edited(eq):  # as if an equation in rkgen.adjoint printed differently
        k = real(eq)
        return type(k)(k.text.replace("Y[0, a, q] = y[a, q]", "Y[0, a, q] = 1.0 * y[a, q]"), k.spans)

    monkeypatch.setattr(render_step.printer, "kernels", edited)
    monkeypatch.setattr(render_step, "_RENDERED", {})
    older = codegen.cached_module_path(t)
    assert older != now and older.parent.parent == tmp_path


def test_warm_load_does_not_render_and_a_changed_generator_renders_again(tmp_path, monkeypatch):
    """The index (cache_dir()/index) maps a tableau and the generator's fingerprint to the module's folder: a warm
    start reads it instead of rendering; a changed generator, or a folder that has gone, renders again."""
    monkeypatch.setenv("RKGEN_CACHE", str(tmp_path))
    t = load("heun2")
    first = codegen._cached_module(t)
    assert first == codegen.cached_module_path(t) and first.read_text(encoding="utf-8") == rendered("heun2")
    calls = []

    def counting(tableau):
        calls.append(tableau.name)
        return render_step.render(tableau)

    monkeypatch.setattr(codegen, "render", counting)
    assert codegen._cached_module(load("heun2")) == first and calls == []
    monkeypatch.setattr(codegen, "generator_fingerprint", lambda: "another generator")
    assert codegen._cached_module(t) == first and calls == ["heun2"]  # same text, same folder
    for path in first.parent.iterdir():
        path.unlink()
    first.parent.rmdir()
    assert codegen._cached_module(t) == first and calls == ["heun2", "heun2"] and first.is_file()
