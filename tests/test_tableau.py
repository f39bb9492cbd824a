"""The Tableau: built-ins, structure, validation of JSON input, serialisation."""

from __future__ import annotations

import json
import math

import pytest
import sympy

from rkgen import RkgenError, Tableau, builtin_names, from_json, load

R = sympy.Rational
S = sympy.sqrt

BUILTINS = {
    "backward_euler", "dopri5", "euler", "gauss2", "gauss3", "gauss4", "gauss5", "heun2", "heun3", "kutta3",
    "lobatto_iiia2", "lobatto_iiia3", "lobatto_iiib2", "lobatto_iiib3", "lobatto_iiic2", "lobatto_iiic3",
    "midpoint", "radau_iia2", "radau_iia3", "ralston2", "rk38", "rk4", "sdirk2", "ssprk3", "trapezoid",
}  # fmt: skip

EXPLICIT = "explicit"
SDIRK = "diagonally implicit (SDIRK: singly diagonal)"
ESDIRK = "diagonally implicit (ESDIRK: explicit first stage, singly diagonal)"
DIRK = "diagonally implicit (DIRK)"
FULL = "fully implicit"

# (stages, structure_detail)
SHAPES = {
    "euler": (1, EXPLICIT),
    "backward_euler": (1, SDIRK),
    "midpoint": (1, SDIRK),
    "heun2": (2, EXPLICIT),
    "ralston2": (2, EXPLICIT),
    "trapezoid": (2, ESDIRK),  # implicit trapezoidal rule: explicit first stage, one implicit stage
    "sdirk2": (2, SDIRK),
    "kutta3": (3, EXPLICIT),
    "heun3": (3, EXPLICIT),
    "ssprk3": (3, EXPLICIT),
    "rk4": (4, EXPLICIT),
    "rk38": (4, EXPLICIT),
    "dopri5": (7, EXPLICIT),
    "gauss2": (2, FULL),
    "gauss3": (3, FULL),
    "gauss4": (4, FULL),
    "gauss5": (5, FULL),
    "radau_iia2": (2, FULL),
    "radau_iia3": (3, FULL),
    "lobatto_iiia2": (2, ESDIRK),  # the same tableau as the trapezoidal rule
    "lobatto_iiia3": (3, FULL),
    "lobatto_iiib2": (2, DIRK),  # diagonal (1/2, 0): lower triangular, last stage explicit
    "lobatto_iiib3": (3, FULL),
    "lobatto_iiic2": (2, FULL),
    "lobatto_iiic3": (3, FULL),
}


def test_builtin_names():
    assert set(builtin_names()) == BUILTINS
    assert len(builtin_names()) == 25
    assert builtin_names() == sorted(builtin_names())
    assert set(SHAPES) == BUILTINS


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_builtin_shape_and_structure(name):
    t = load(name)
    stages, detail = SHAPES[name]
    assert t.name == name
    assert t.stages == stages
    assert len(t.A) == stages and all(len(row) == stages for row in t.A)
    assert len(t.c) == stages
    assert t.structure_detail == detail
    assert t.structure == detail.split(" (")[0]
    assert t.is_explicit == (detail == EXPLICIT)
    assert t.source == f"built-in {name}"
    assert t.description and t.reference


@pytest.mark.parametrize("name", sorted(BUILTINS - {"lobatto_iiib2"}))
def test_builtins_are_consistent(name):
    t = load(name)
    assert t.is_consistent is True
    assert all(sympy.simplify(sympy.Add(*row) - ci) == 0 for row, ci in zip(t.A, t.c, strict=True))


def test_lobatto_iiib2_nodes_differ_from_row_sums_and_are_kept():
    t = load("lobatto_iiib2")
    assert t.c == (0, 1)
    assert t.row_sums == (R(1, 2), R(1, 2))
    assert t.is_consistent is False  # reported, not refused


def test_structure_detail_families():
    assert Tableau("dirk", ((1, 0), (1, 2)), (1, 1)).structure_detail == DIRK
    assert Tableau("edirk", ((0, 0, 0), (1, 1, 0), (1, 1, 2)), (1, 1, 1)).structure_detail == (
        "diagonally implicit (EDIRK: explicit first stage)"
    )
    assert Tableau("esdirk", ((0, 0, 0), (1, 2, 0), (1, 1, 2)), (1, 1, 1)).structure_detail == ESDIRK
    assert Tableau("sdirk", ((2, 0), (1, 2)), (1, 1)).structure_detail == SDIRK
    # a zero that only the exact zero test sees keeps the method explicit
    zero = sympy.sqrt(5 + 2 * sympy.sqrt(6)) - sympy.sqrt(2) - sympy.sqrt(3)
    t = Tableau("hidden_zero", ((zero, 0), (1, 0)), (R(1, 2), R(1, 2)))
    assert t.structure == "explicit"
    assert t.nonzero == ((False, False), (True, False))


def test_zero_weights():
    assert load("heun3").zero_weights == (1,)
    assert load("dopri5").zero_weights == (1, 6)
    assert load("rk4").zero_weights == ()


def test_constructor_defaults_and_validation():
    t = Tableau("heun2", ((0, 0), (1, 0)), (R(1, 2), R(1, 2)))
    assert t.c == (0, 1)
    assert all(isinstance(x, sympy.Basic) for x in (*t.b, *t.c, *t.A[1]))
    assert t.order == 2
    with pytest.raises(RkgenError):
        Tableau("bad", ((0, 0),), (1, 1))
    with pytest.raises(RkgenError):
        Tableau("bad", (), ())
    with pytest.raises(RkgenError):
        Tableau("bad", ((0, 0), (1,)), (1, 1))


def test_identifier():
    assert Tableau("my-method 2", ((0,),), (1,)).identifier == "my_method_2"
    assert Tableau("3/8 rule", ((0,),), (1,)).identifier == "t_3_8_rule"
    assert Tableau("---", ((0,),), (1,)).identifier == "tableau"
    assert all(load(n).identifier == n for n in BUILTINS)


def test_tableau_is_frozen():
    t = load("rk4")
    with pytest.raises(AttributeError):
        t.name = "x"


# -- JSON input --------------------------------------------------------------------------------------


def _err(text: str, source: str = "t.json") -> str:
    with pytest.raises(RkgenError) as exc:
        from_json(text, source=source)
    message = str(exc.value)
    assert len(message.splitlines()) == 1
    assert message.startswith(f"{source}: ")
    return message


def test_from_json_minimal():
    t = from_json('{"A": [["0", "0"], ["2/3", "0"]], "b": ["1/4", "3/4"]}', default_name="ralston")
    assert t.name == "ralston"
    assert t.A == ((0, 0), (R(2, 3), 0))
    assert t.b == (R(1, 4), R(3, 4))
    assert t.c == (0, R(2, 3))
    assert t.given_partner is None


def test_from_json_all_fields():
    data = {
        "name": "mine",
        "description": "d",
        "reference": "r",
        "A": [["1/4", "1/4 - sqrt(3)/6"], ["1/4 + sqrt(3)/6", "1/4"]],
        "b": ["1/2", "1/2"],
        "c": ["1/2 - sqrt(3)/6", "1/2 + sqrt(3)/6"],
        "partner": {"A": [["1/4", "1/4 - sqrt(3)/6"], ["1/4 + sqrt(3)/6", "1/4"]], "b": ["1/2", "1/2"]},
    }
    t = from_json(json.dumps(data), source="mine.json")
    assert (t.name, t.description, t.reference, t.source) == ("mine", "d", "r", "mine.json")
    assert t.c[0] == R(1, 2) - S(3) / 6
    assert t.given_partner is not None
    assert t.given_partner.name == "mine_given_partner"
    assert t.pair_report(t.given_partner).symplectic


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"A": [["0"], ["0"], ["0"]], "b": ["1", "0"]}', "A has 3 rows but b has 2 entries"),
        ('{"A": [["0", "0", "0"], ["1", "0", "0"], ["0", "1", "0"]], "b": ["1", "0"]}',
         "A has 3 rows but b has 2 entries"),
        ('{"A": [["0", "0"], ["1"]], "b": ["1", "0"]}', "A is not square: row 2 of A has 1 entry, expected 2"),
        ('{"A": [["0", "0", "1"], ["1", "0"]], "b": ["1", "0"]}',
         "A is not square: row 1 of A has 3 entries, expected 2"),
        ('{"A": [], "b": []}', "empty tableau: A and b need at least one stage"),
        ('{"A": [[]], "b": []}', "empty tableau: A and b need at least one stage"),
        ('{"A": [["0"]]}', "missing field 'b'"),
        ('{"b": ["1"]}', "missing field 'A'"),
        ('{"A": [["0"]], "b": ["1"], "d": 1}',
         "unknown field 'd' (expected name, description, reference, A, b, c, partner)"),
        ('{"A": "0", "b": ["1"]}', "A: expected a list of rows"),
        ('{"A": [["0"]], "b": "1"}', "b: expected a list"),
        ('{"A": ["0"], "b": ["1"]}', "row 1 of A: expected a list (a row of A)"),
        ('{"A": [["0"]], "b": ["1"], "c": ["0", "1"]}', "c has 2 entries but the tableau has 1 stage"),
        ('{"A": [["0"]], "b": ["1"], "c": "0"}', "c: expected a list"),
        ('{"A": [["0"]], "b": ["1"], "name": 3}', "name: expected a string"),
        ('{"A": [["0"]], "b": ["1"], "name": " "}', "name: empty"),
        ('["A", "b"]', "the top level must be a JSON object with fields A and b"),
        ('{"A": [["0"]], "b": ["1"], "partner": {"A": [["0"]], "b": ["1"], "partner": {"A": [["0"]], "b": ["1"]}}}',
         "partner: a partner cannot have a partner"),
        ('{"A": [["0"]], "b": ["1"], "partner": {"A": [["0"]], "b": ["x"]}}',
         "partner: b_1 (entry 1 of b): unsupported expression 'x'"),
        ('{"A": [["0"]], "b": ["1"], "partner": [1]}', "partner must be a JSON object with fields A and b"),
    ],
)  # fmt: skip
def test_from_json_errors(text, expected):
    assert _err(text) == f"t.json: {expected}"


@pytest.mark.parametrize(
    "text, line, column",
    [
        ('{"A": [["0"]], "b": [1', 1, 23),
        ('{\n  "A": [["0"]],\n  "b": [1,]\n}', 3, 11),
        ('{\n  "A": [["0"]]\n  "b": [1]\n}', 3, 3),
        ("", 1, 1),
        ("{'A': 1}", 1, 2),
    ],
)
def test_json_syntax_errors_name_line_and_column(text, line, column):
    message = _err(text)
    assert f"invalid JSON at line {line}, column {column}: " in message


def test_load_missing_file_and_unknown_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(RkgenError) as exc:
        load("missing.json")
    assert str(exc.value) == "missing.json: no such file"
    with pytest.raises(RkgenError) as exc:
        load("sub/dir/missing")
    assert str(exc.value) == "sub/dir/missing: no such file"
    with pytest.raises(RkgenError) as exc:
        load("rk5")
    assert str(exc.value) == "rk5: no such file, and not a built-in tableau (see 'rkgen list'; did you mean rk4?)"
    with pytest.raises(RkgenError) as exc:
        load("zzzzzz")
    assert str(exc.value) == "zzzzzz: no such file, and not a built-in tableau (see 'rkgen list')"
    (tmp_path / "adir").mkdir()
    with pytest.raises(RkgenError) as exc:
        load("adir")
    assert str(exc.value) == "adir: not a file"
    (tmp_path / "latin1.json").write_bytes(b'{"name": "\xe9", "A": [["0"]], "b": ["1"]}')
    with pytest.raises(RkgenError) as exc:
        load("latin1.json")
    assert str(exc.value) == "latin1.json: not UTF-8 text"
    with pytest.raises(RkgenError) as exc:
        load("new\nline")
    assert len(str(exc.value).splitlines()) == 1


def test_existing_path_wins_over_builtin_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rk4").write_text('{"A": [["0"]], "b": ["1"]}')
    t = load("rk4")
    assert t.stages == 1 and t.name == "rk4" and t.source == "rk4"


def test_load_json_path_and_default_name(tmp_path):
    path = tmp_path / "my_method.json"
    path.write_text(json.dumps(load("heun2").to_dict() | {"name": "renamed"}))
    assert load(path).name == "renamed"
    path.write_text('{"A": [["0"]], "b": ["1"]}')
    t = load(path)
    assert t.name == "my_method" and t.source == str(path)
    assert load(t) is t


# -- serialisation -----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["rk4", "gauss3", "sdirk2", "lobatto_iiib2", "dopri5"])
def test_to_dict_round_trip(name):
    t = load(name)
    again = from_json(json.dumps(t.to_dict()))
    assert again.A == t.A and again.b == t.b and again.c == t.c
    assert again.sha256 == t.sha256
    assert again.canonical_json() == t.canonical_json()
    assert json.loads(t.canonical_json()) == t.to_dict()


def test_sha256_changes_with_entries():
    a = from_json('{"name": "x", "A": [["0"]], "b": ["1"]}')
    b = from_json('{"name": "x", "A": [["0"]], "b": ["1.0"]}')
    c = from_json('{"name": "x", "A": [["1/2"]], "b": ["1"]}')
    assert a.sha256 == b.sha256  # "1.0" is exactly 1
    assert a.sha256 != c.sha256
    assert len(a.sha256) == 64


def test_floats():
    A, b, c = load("rk4").floats()
    assert A == ((0.0, 0.0, 0.0, 0.0), (0.5, 0.0, 0.0, 0.0), (0.0, 0.5, 0.0, 0.0), (0.0, 0.0, 1.0, 0.0))
    assert b == (1 / 6, 1 / 3, 1 / 3, 1 / 6)  # correctly rounded
    A, b, c = load("gauss2").floats()
    r3 = math.sqrt(3)
    assert c[0] == pytest.approx(0.5 - r3 / 6, abs=1e-16)
    assert A[0][1] == pytest.approx(0.25 - r3 / 6, abs=1e-16)
    A, b, c = load("gauss5").floats()
    # Gauss-Legendre nodes on [0, 1]: roots of the shifted Legendre polynomial, symmetric about 1/2
    assert sum(b) == pytest.approx(1.0, abs=1e-15)
    assert c[0] == pytest.approx(0.04691007703066800, abs=1e-15)
    assert c[0] + c[4] == pytest.approx(1.0, abs=1e-15)
    assert all(isinstance(x, float) for row in A for x in row)


# -- the imports run one way: butcher <- order, partner <- tableau ------------------------------------------------
#: The data class's module (the bottom) and the analyses over it.
BOTTOM, ANALYSES = "butcher", ("order", "partner")


def _package_sources() -> dict[str, str]:
    """{dotted module name: source} for every module of the rkgen package, subpackages included."""
    from pathlib import Path

    import rkgen

    root = Path(rkgen.__file__).parent
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = ["rkgen", *path.relative_to(root).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path.read_text(encoding="utf-8")
    return found


SOURCES = _package_sources()


def _source(module: str) -> str:
    return SOURCES[f"rkgen.{module}"]


def _imports(name: str) -> list[tuple[str, str]]:
    """(imported rkgen module, where) for every import statement of the module ``name`` (dotted), at any depth.

    ``where`` is "module" (runs when the module loads), "typing" (inside ``if TYPE_CHECKING:``) or the name of
    the innermost function holding it.  Relative imports are resolved; ``from . import x`` names the module x
    when x is one, else the package."""
    import ast

    package = name if _is_package(name) else name.rpartition(".")[0]
    found = []

    def resolve(node: ast.ImportFrom) -> list[str]:
        if node.level == 0:
            base = node.module or ""
        else:
            base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{base}.{node.module}" if node.module else base
        if not base.startswith("rkgen"):
            return []
        subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in SOURCES]
        return subs or [base]

    def visit(node, where):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
            elif isinstance(child, ast.If) and where == "module" and ast.unparse(child.test) == "TYPE_CHECKING":
                visit(child, "typing")
            elif isinstance(child, ast.Import):
                found.extend((a.name, where) for a in child.names if a.name.startswith("rkgen"))
            elif isinstance(child, ast.ImportFrom):
                found.extend((m, where) for m in resolve(child))
            else:
                visit(child, where)

    visit(ast.parse(SOURCES[name]), "module")
    return found


def _is_package(name: str) -> bool:
    return any(other.startswith(name + ".") for other in SOURCES)


def _reachable(start: str) -> set[str]:
    """Every rkgen module that ``start`` imports, directly or through others, at module or function level or for
    type checking (an explicit import of a package, e.g. ``from rkgen import load``, follows its __init__)."""
    seen, todo = set(), [start]
    while todo:
        for m, _ in _imports(todo.pop()):
            if m not in seen and m in SOURCES:
                seen.add(m)
                todo.append(m)
    return seen


def test_import_parser_sees_every_kind_of_import():
    got = _imports("rkgen.butcher")
    assert ("rkgen.errors", "module") in got and ("rkgen.exact", "typing") in got
    assert ("rkgen.exact", "number_field") in got
    assert ("rkgen.order", "module") in _imports("rkgen.tableau")
    assert ("rkgen.partner", "_run_check") not in _imports("rkgen.cli")
    assert ("rkgen.order", "_run_check") in _imports("rkgen.cli")
    assert ("rkgen.partner", "_partner_status") in _imports("rkgen.codegen.renderer")  # "from ..partner import"


def test_the_imports_run_one_way():
    """butcher.py (the data) imports neither the analyses nor tableau.py; order.py and partner.py import the data,
    never tableau.py nor each other; tableau.py imports both at module level -- at any level (module, function,
    type checking) and transitively, so there is no circle among the four."""
    bottom, analyses, top = f"rkgen.{BOTTOM}", [f"rkgen.{m}" for m in ANALYSES], "rkgen.tableau"
    assert _reachable(bottom).isdisjoint({top, *analyses})
    for m in analyses:
        assert (bottom, "module") in _imports(m), m  # they take (and partner.py builds) the data class
        assert _reachable(m).isdisjoint({top, *analyses}), m
    assert {(m, "module") for m in analyses} <= set(_imports(top))
    assert top not in _reachable(top)  # and no circle through any other module
    for m in (bottom, top, *analyses):  # nothing here reaches into an object's attributes (cached properties)
        assert "__dict__" not in SOURCES[m], m


def test_only_tableau_imports_both_analyses():
    both = [m for m in SOURCES if {f"rkgen.{a}" for a in ANALYSES} <= {i for i, _ in _imports(m)}]
    assert both == ["rkgen.tableau"]


def test_the_data_class_has_no_analysis():
    """A ButcherTableau is the data: everything that needs no order or partner module, and nothing that does;
    Tableau adds members, not fields."""
    import dataclasses

    from rkgen.butcher import ButcherTableau

    t = ButcherTableau.load("gauss3")
    assert type(t) is ButcherTableau and repr(t) == "ButcherTableau('gauss3', stages=3)"
    assert t.structure_detail == FULL and t.floats()[1][1] == 4 / 9 and t.exact_strings()["b"][1] == "4/9"
    assert t.sha256 == load("gauss3").sha256
    for name in ("order", "order_report", "symplecticity_matrix", "is_symplectic", "partner", "pair_report"):
        assert not hasattr(t, name) and hasattr(Tableau, name), name
    assert issubclass(Tableau, ButcherTableau)
    assert dataclasses.fields(Tableau) == dataclasses.fields(ButcherTableau)


def test_the_readers_build_tableaux():
    """load and from_json give a Tableau, its given partner too; a ButcherTableau passed to load becomes one."""
    from rkgen.butcher import ButcherTableau

    data = {"A": [["0"]], "b": ["1"], "partner": {"A": [["1"]], "b": ["1"]}}
    t = from_json(json.dumps(data))
    assert type(t) is Tableau and type(t.given_partner) is Tableau
    assert t.pair_report(t.given_partner).symplectic and t.given_partner.order == 1
    d = ButcherTableau.from_json(json.dumps(data))
    assert type(d) is ButcherTableau and type(d.given_partner) is ButcherTableau
    u = load(d)
    assert type(u) is Tableau and u.A == d.A and u.exact is d.exact and u.order == 1
    assert type(u.given_partner) is Tableau
    assert load(u) is u
