"""The safe exact parser (rkgen.numbers.parse_entry, from_json) and the exact zero test.

Every accepted entry must come out as the exact number it denotes; every refused one as a RkgenError
with a one-line message naming file, field and entry; nothing is ever evaluated as code; hostile
sizes are refused (or handled) within seconds.
"""

from __future__ import annotations

import json
import re
import string
import time
from fractions import Fraction

import pytest
import sympy
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from rkgen import RkgenError, from_json, load
from rkgen.numbers import MAX_DIGITS, EntryError, format_exact, is_zero, parse_entry, sign

S = sympy.sqrt
R = sympy.Rational

# -- accepted entries --------------------------------------------------------------------------------


RATIONAL_ENTRIES = [
    ("0", 0),
    ("1", 1),
    ("-3", -3),
    ("+7", 7),
    ("  42  ", 42),
    ("1/3", R(1, 3)),
    ("-2/4", R(-1, 2)),
    ("0.25", R(1, 4)),
    ("0.1", R(1, 10)),
    (".5", R(1, 2)),
    ("5.", 5),
    ("1e-3", R(1, 1000)),
    ("2.5E+2", 250),
    ("1.5e-1", R(3, 20)),
    ("6.02214076e23", 602214076 * 10**15),
    ("1e400", 10**400),
    ("1e-400", R(1, 10**400)),
    ("0.1666666666666666666666667", R(1666666666666666666666667, 10**25)),
    ("1_000", 1000),
    ("2*(3+4)", 14),
    ("(2/3)**2", R(4, 9)),
    ("2**-2", R(1, 4)),
    ("-2**2", -4),
    ("(-2)**3", -8),
    ("1/3.0", R(1, 3)),
    ("((((1))))", 1),
    ("+-+1", -1),
    ("sqrt(4)", 2),
    ("sqrt(1/4)", R(1, 2)),
    ("sqrt(0)", 0),
    ("4**(1/2)", 2),
    ("1 - 1", 0),
    ("3*(1/3)", 1),
]


@pytest.mark.parametrize("text, value", RATIONAL_ENTRIES)
def test_rational_entries_are_exact(text, value):
    got = parse_entry(text)
    assert got.is_Rational
    assert got == sympy.Rational(value)


SURD_ENTRIES = [
    ("1/2 - sqrt(3)/6", R(1, 2) - S(3) / 6),
    ("sqrt(8)", 2 * S(2)),
    ("2**0.5", S(2)),
    ("sqrt(0.5)", S(2) / 2),
    ("sqrt(2)*sqrt(3)", S(6)),
    ("(sqrt(2)+1)**(1/2)", S(1 + S(2))),
    ("1/(1+sqrt(3))", (S(3) - 1) / 2),
    ("(1+sqrt(2))**-2", 3 - 2 * S(2)),
    ("1/2 - sqrt(245 + 14*sqrt(70))/42", R(1, 2) - S(245 + 14 * S(70)) / 42),
    ("sqrt(sqrt(2))", 2 ** R(1, 4)),
    ("1/sqrt(sqrt(2))", 2 ** R(-1, 4)),
]


@pytest.mark.parametrize("text, value", SURD_ENTRIES)
def test_surd_entries_are_exact(text, value):
    got = parse_entry(text)
    assert not got.is_Rational
    assert is_zero(got - value)
    # and numerically the same number (guards against an is_zero that says True too easily)
    assert abs(float(got.evalf(30)) - float(sympy.N(value, 30))) < 1e-15


FORMATTED = [
    # the rational part first, then the surd terms, whichever order the entry or sympy had
    (R(5, 36) - S(15) / 30, "5/36 - sqrt(15)/30"),
    (S(15) / 30 + R(5, 36), "5/36 + sqrt(15)/30"),
    (-S(3) / 6 - R(1, 2), "-1/2 - sqrt(3)/6"),
    (S(3) / 2 - R(1, 2), "-1/2 + sqrt(3)/2"),
    (-S(3) / 6, "-sqrt(3)/6"),
    (R(-2, 3), "-2/3"),
    (sympy.Integer(0), "0"),
    # also inside a radicand, and fewer operations first among the surd terms
    (R(1, 2) + S(245 + 14 * S(70)) / 42, "1/2 + sqrt(245 + 14*sqrt(70))/42"),
    (S(2) * S(3 + S(2)) + S(2) + 1, "1 + sqrt(2) + sqrt(2)*sqrt(3 + sqrt(2))"),
    (S(5) + S(3) + S(2), "sqrt(2) + sqrt(3) + sqrt(5)"),
    # iterated roots as the parser reads them (sympy prints 2**(1/4), which is not an entry)
    (2 ** R(1, 4), "sqrt(sqrt(2))"),
    (2 ** R(3, 4), "sqrt(sqrt(2))**3"),
    (R(1, 2) + 2 ** R(1, 8), "1/2 + sqrt(sqrt(sqrt(2)))"),
    ((1 + S(2)) ** R(-1, 4), "1/sqrt(sqrt(1 + sqrt(2)))"),
]


@pytest.mark.parametrize("value, text", FORMATTED)
def test_format_exact_prints_one_order(value, text):
    assert format_exact(value) == text
    assert is_zero(parse_entry(text) - value)


def test_format_exact_of_the_built_in_tableaux_parses_back_exactly():
    """The rational part comes first in every entry, and every printed entry is an entry of the same value."""
    for name in ("gauss3", "gauss4", "gauss5", "radau_iia3", "lobatto_iiic3"):
        t = load(name)
        for x in [*t.b, *t.c, *(y for row in t.A for y in row)]:
            text = format_exact(x)
            back = parse_entry(text)
            assert back == x or is_zero(back - x), (name, text)
            if x.is_Add and any(term.is_Rational for term in x.args):
                rational = next(term for term in x.args if term.is_Rational)
                assert text.startswith(str(rational)), text
    assert format_exact(load("gauss3").A[2][0]) == "5/36 + sqrt(15)/30"
    assert format_exact(load("gauss5").c[0]) == "1/2 - sqrt(245 + 14*sqrt(70))/42"


def test_json_values():
    assert parse_entry(3) == 3
    assert parse_entry(-(10**50)) == -(10**50)
    # a JSON float is the decimal it prints as, not its binary value
    assert parse_entry(0.1) == R(1, 10)
    assert parse_entry(2.5) == R(5, 2)
    assert parse_entry(1e-7) == R(1, 10**7)
    assert parse_entry(0.30000000000000004) == R(30000000000000004, 10**17)
    assert parse_entry(1e300) == 10**300
    assert parse_entry(-0.0) == 0


def test_json_ints_and_floats_through_from_json():
    t = from_json('{"A": [[0.1, 0], [12345678901234567890123, 0]], "b": [0.25, 0.75]}')
    assert t.A[0][0] == R(1, 10)
    assert t.A[1][0] == 12345678901234567890123
    assert t.b == (R(1, 4), R(3, 4))
    assert all(x.is_Rational for row in t.A for x in row)


def test_decimals_and_fractions_agree():
    for digits in ("0.125", "3.14159", "2.718281828459045235360287", "1e-30", "7.5e+3"):
        assert parse_entry(digits) == sympy.Rational(Fraction(digits).numerator, Fraction(digits).denominator)


# -- refused entries -------------------------------------------------------------------------------


REFUSED = [
    ("exp(1)", "unsupported expression 'exp(1)'"),
    ("abc", "unsupported expression 'abc'"),
    ("x + 1", "unsupported expression 'x'"),
    ("sqrt(-1)", "complex value: square root of a negative number in 'sqrt(-1)'"),
    ("(-8)**(1/2)", "complex value: square root of a negative number in '(-8)**(1/2)'"),
    ("sqrt(sqrt(2) - 2)", "complex value: square root of a negative number in 'sqrt(sqrt(2) - 2)'"),
    ("1j", "complex value '1j'"),
    ("2 + 3j", "complex value '3j'"),
    ("1/0", "division by zero in '1/0'"),
    ("1/(1-1)", "division by zero in '1/(1-1)'"),
    ("0**-1", "division by zero in '0**-1'"),
    ("1/(sqrt(2)-sqrt(2))", "division by zero in '1/(sqrt(2)-sqrt(2))'"),
    (
        "1/(sqrt(5+2*sqrt(6)) - sqrt(2) - sqrt(3))",
        "division by zero in '1/(sqrt(5+2*sqrt(6)) - sqrt(2) - sqrt(3))'",
    ),
    ("'1'", "not a number: ''1''"),
    ("True", "not a number: 'True'"),
    ("None", "not a number: 'None'"),
    ("", "empty entry"),
    ("   ", "empty entry"),
    ("1 +", "not a number or arithmetic expression: '1 +'"),
    ("1;2", "not a number or arithmetic expression: '1;2'"),
    ("1//2", "unsupported expression '1//2'"),
    ("1 % 2", "unsupported expression '1 % 2'"),
    ("2**sqrt(2)", "only integer powers (or **(1/2)) are supported: '2**sqrt(2)'"),
    ("2**65", "power larger than 64 in '2**65'"),
    ("sqrt(2, 3)", "sqrt takes one argument: 'sqrt(2, 3)'"),
    ("[1]", "unsupported expression '[1]'"),
    ("1 if 1 else 0", "unsupported expression '1 if 1 else 0'"),
    ("1e401", "exponent too large in '1e401'"),
]


@pytest.mark.parametrize("text, message", REFUSED)
def test_refused_entries(text, message):
    with pytest.raises(EntryError) as exc:
        parse_entry(text)
    assert str(exc.value) == message


@pytest.mark.parametrize(
    "value, message",
    [
        (True, "expected a number, got true"),
        (False, "expected a number, got false"),
        (None, "expected a number or a string holding one, got null"),
        ([1], "expected a number or a string holding one, got a list"),
        ({"a": 1}, "expected a number or a string holding one, got an object"),
        (float("nan"), "not a finite number: nan"),
        (float("inf"), "not a finite number: inf"),
    ],
)
def test_refused_json_values(value, message):
    with pytest.raises(EntryError) as exc:
        parse_entry(value)
    assert str(exc.value) == message


def _write(tmp_path, name, data) -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return name


def test_error_names_file_field_and_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    A = [["0", "0", "0"], ["1/2", "0", "0"], ["0", "exp(1)", "0"]]
    name = _write(tmp_path, "bad.json", {"A": A, "b": ["1/6", "2/3", "1/6"]})
    with pytest.raises(RkgenError) as exc:
        load(name)
    assert str(exc.value) == "bad.json: a_32 (row 3, column 2 of A): unsupported expression 'exp(1)'"


@pytest.mark.parametrize(
    "field, value, expected",
    [
        ("b", ["1", "sqrt(-1)"], "b.json: b_2 (entry 2 of b): complex value: square root of a negative number "
                                 "in 'sqrt(-1)'"),
        ("b", ["1", "1j"], "b.json: b_2 (entry 2 of b): complex value '1j'"),
        ("b", ["1", True], "b.json: b_2 (entry 2 of b): expected a number, got true"),
        ("b", [None, "1"], "b.json: b_1 (entry 1 of b): expected a number or a string holding one, got null"),
        ("b", ["abc", "1"], "b.json: b_1 (entry 1 of b): unsupported expression 'abc'"),
        ("b", ["1/(2-2)", "1"], "b.json: b_1 (entry 1 of b): division by zero in '1/(2-2)'"),
        ("c", ["0", "x"], "b.json: c_2 (entry 2 of c): unsupported expression 'x'"),
    ],
)
def test_field_errors(tmp_path, monkeypatch, field, value, expected):
    monkeypatch.chdir(tmp_path)
    data = {"A": [["0", "0"], ["1", "0"]], "b": ["1/2", "1/2"], field: value}
    with pytest.raises(RkgenError) as exc:
        load(_write(tmp_path, "b.json", data))
    assert str(exc.value) == expected


def test_messages_are_one_line():
    for text in ["1\n+2", "1\r\n+", "a\u2028b", "1\x00", "\x0c1+"]:
        with pytest.raises(EntryError) as exc:
            parse_entry(text)
        assert len(str(exc.value).splitlines()) == 1, str(exc.value)
    with pytest.raises(RkgenError) as exc:
        from_json('{"A": [["1"]], "b": ["1"], "bad\\nkey": 1}')
    assert len(str(exc.value).splitlines()) == 1


# -- nothing is evaluated as code ------------------------------------------------------------------


@pytest.mark.parametrize(
    "template",
    [
        "__import__('os').system('touch {path}')",
        "open('{path}', 'w')",
        "exec(\"open('{path}', 'w')\")",
        "eval(\"open('{path}', 'w')\")",
        "(lambda: __import__('os').system('touch {path}'))()",
        "sqrt(__import__('os').system('touch {path}'))",
        "[c for c in ().__class__.__base__.__subclasses__()][0]('{path}')",
        "sqrt.__globals__['__builtins__']['open']('{path}', 'w')",
        "1 + __import__('pathlib').Path('{path}').touch()",
    ],
)
def test_code_is_never_run(tmp_path, template):
    target = tmp_path / "X"
    entry = template.format(path=target)
    with pytest.raises(EntryError):
        parse_entry(entry)
    with pytest.raises(RkgenError):
        from_json(json.dumps({"A": [[entry]], "b": ["1"]}), source="evil.json")
    assert not target.exists()


# -- exact zero test and sign ----------------------------------------------------------------------


def test_is_zero_nested_surds():
    assert is_zero(S(5 + 2 * S(6)) - S(2) - S(3)) is True
    assert is_zero(S(2) * S(3) - S(6)) is True
    assert is_zero(S(3 + 2 * S(2)) - 1 - S(2)) is True
    assert is_zero(S(2) ** R(1, 2) - 2 ** R(1, 4)) is True
    # near misses: within 1e-17, 1e-40 and 1e-300 of zero, but not zero
    assert is_zero(S(2) - R(14142135623730951, 10**16)) is False
    assert is_zero(S(5 + 2 * S(6)) - S(2) - S(3) + R(1, 10**40)) is False
    assert is_zero(S(5 + 2 * S(6)) - S(2) - S(3) - R(1, 10**300)) is False
    assert is_zero(R(1, 10**300)) is False
    assert is_zero(sympy.Integer(0)) is True


def test_is_zero_on_parsed_entries():
    z = parse_entry("sqrt(5+2*sqrt(6)) - sqrt(2) - sqrt(3)")
    assert z != 0  # sympy does not see it ...
    assert is_zero(z)  # ... the number field does
    assert not is_zero(parse_entry("sqrt(5+2*sqrt(6)) - sqrt(2) - 1.7320508075688772935274463415"))


def test_gauss5_consistency_is_decided_exactly():
    g = load("gauss5")
    assert g.is_consistent is True
    for row, ci in zip(g.A, g.c, strict=True):
        assert is_zero(sympy.Add(*row) - ci)
    # moving one node by 1e-40 is noticed
    row0 = sympy.Add(*g.A[0])
    assert not is_zero(row0 - g.c[0] - R(1, 10**40))


def test_sign():
    assert sign(S(2) - R(141421356237, 10**11)) == 1
    assert sign(R(141421356237, 10**11) - S(2)) == -1
    assert sign(S(5 + 2 * S(6)) - S(2) - S(3)) == 0
    assert sign(S(5 + 2 * S(6)) - S(2) - S(3) - R(1, 10**200)) == -1
    assert sign(sympy.Integer(0)) == 0


# -- hostile sizes ---------------------------------------------------------------------------------

LIMIT = 10.0  # seconds; generous, the point is "not minutes, not a hang"


def _refused_quickly(action):
    """Run ``action``; it may succeed or raise RkgenError (never anything else), within LIMIT seconds."""
    start = time.perf_counter()
    try:
        result = action()
    except RkgenError as exc:
        result = exc
        assert len(str(exc).splitlines()) == 1
    elapsed = time.perf_counter() - start
    assert elapsed < LIMIT, f"took {elapsed:.1f} s"
    return result


def _json_with_entry(entry_json: str) -> str:
    return '{"A": [[' + entry_json + ']], "b": [1]}'


def test_million_digit_integer_in_json():
    digits = "9" * 10**6
    got = _refused_quickly(lambda: from_json(_json_with_entry(digits)))
    assert isinstance(got, RkgenError)
    # just under the file size limit: refused by the JSON reader (Python's int digit limit)
    got = _refused_quickly(lambda: from_json(_json_with_entry("9" * 900_000)))
    assert isinstance(got, RkgenError) and "invalid JSON" in str(got)
    got = _refused_quickly(lambda: from_json(_json_with_entry("9" * 4000)))
    assert isinstance(got, RkgenError) and f"more than {MAX_DIGITS} digits" in str(got)


def test_million_digit_integer_as_string(tmp_path):
    digits = "9" * 10**6
    got = _refused_quickly(lambda: from_json(_json_with_entry(f'"{digits}"')))
    assert isinstance(got, RkgenError)
    got = _refused_quickly(lambda: parse_entry(digits))
    assert isinstance(got, EntryError) and "longer than" in str(got)
    got = _refused_quickly(lambda: parse_entry("9" * 1500))
    assert isinstance(got, EntryError) and f"more than {MAX_DIGITS} digits" in str(got)
    path = tmp_path / "big.json"
    path.write_text(_json_with_entry(f'"{digits}"'))
    got = _refused_quickly(lambda: load(path))
    assert isinstance(got, RkgenError) and "too large" in str(got)


def test_500_stages(tmp_path):
    s = 500
    data = {"A": [[0] * s for _ in range(s)], "b": [1] + [0] * (s - 1)}
    text = json.dumps(data, separators=(",", ":"))
    got = _refused_quickly(lambda: from_json(text))
    assert isinstance(got, RkgenError) and "stages" in str(got)
    path = tmp_path / "s500.json"
    path.write_text(text)
    got = _refused_quickly(lambda: load(path))
    assert isinstance(got, RkgenError)


@pytest.mark.parametrize(
    "entry",
    [
        "(" * 10**4 + "1" + ")" * 10**4,
        "-" * 10**4 + "1",
        "sqrt(" * 10**4 + "2" + ")" * 10**4,
        "(" * 999 + "1" + ")" * 999,  # under the length limit
        "-" * 1999 + "1",
        "sqrt(" * 300 + "2" + ")" * 300,
        "1+" * 999 + "1",
        "1*" * 999 + "1",
        "2**" * 600 + "2",
    ],
)
def test_deep_nesting(entry):
    got = _refused_quickly(lambda: parse_entry(entry))
    assert isinstance(got, EntryError)
    got = _refused_quickly(lambda: from_json(json.dumps({"A": [[entry]], "b": ["1"]})))
    assert isinstance(got, RkgenError)


def test_deep_json_nesting():
    got = _refused_quickly(lambda: from_json('{"A": ' + "[" * 10**4 + "]" * 10**4 + ', "b": [1]}'))
    assert isinstance(got, RkgenError)
    got = _refused_quickly(lambda: from_json("[" * 10**6))
    assert isinstance(got, RkgenError)


@pytest.mark.parametrize(
    "entry",
    [
        "sqrt(" * 50 + "2" + ")" * 50,
        "sqrt(1+" * 8 + "2" + ")" * 8,
        "1/(" + "sqrt(1+" * 6 + "2" + ")" * 6 + " - 1)",
        "+".join(f"sqrt({p})" for p in (2, 3, 5, 7, 11, 13, 17, 19)),
    ],
)
def test_many_or_deep_square_roots_are_refused_by_the_analysis(entry):
    """Parsed quickly; the exact analysis refuses the number field (it would take minutes)."""
    t = _refused_quickly(lambda: from_json(json.dumps({"A": [[entry]], "b": ["1"]}), source="roots.json"))
    got = _refused_quickly(lambda: t.order)
    assert isinstance(got, RkgenError)
    assert str(got).startswith("roots.json: ") and "square roots" in str(got)


@pytest.mark.parametrize(
    "entry",
    [
        "(10**64)**64",
        "(((10**64)**64)**64)**64",
        "((1+sqrt(2))**64)**64",
        "(((1+sqrt(2))**64)**64)**64",
        "(1+sqrt(2))**40*(1+sqrt(2))**40",
        "(2*(1+sqrt(2))**64)**64",
        "1e400*1e400*1e400",
        "(1e400+sqrt(2))*1e400*1e400",
    ],
)
def test_huge_powers_are_refused(entry):
    got = _refused_quickly(lambda: parse_entry(entry))
    assert isinstance(got, EntryError)
    assert "digits" in str(got) or "power larger" in str(got)


def test_huge_values_do_not_break_the_analysis():
    """1e300 is a legal entry; its order conditions overflow floats, not the program."""
    t = from_json('{"A": [["1e300", "0"], ["1", "1e-300"]], "b": ["1e300", "1"]}')
    r = _refused_quickly(lambda: t.order_report)
    assert r.order == 0
    assert r.failing[0].residual_float == pytest.approx(1e300)
    t = from_json('{"A": [["1e400"]], "b": ["1"]}')
    r = _refused_quickly(lambda: t.order_report)
    assert r.order == 1 and r.failing[0].residual_float == float("inf")


def test_100_megabyte_file(tmp_path):
    path = tmp_path / "huge.json"
    chunk = " " * 2**20
    with path.open("w") as f:
        f.write('{"A": [["1"]], "b": ["1"]')
        for _ in range(100):
            f.write(chunk)
        f.write("}")
    assert path.stat().st_size > 100 * 2**20
    got = _refused_quickly(lambda: load(path))
    assert isinstance(got, RkgenError) and "too large" in str(got)
    got = _refused_quickly(lambda: from_json(path.read_text()))
    assert isinstance(got, RkgenError) and "too large" in str(got)


# -- property-based: only RkgenError, always one line ----------------------------------------------

EXPR_ALPHABET = string.digits + "+-*/().e_ sqrtj" + "abcxyz,[]'\"\\\n<=%@~&|^!:;{}#"


def _only_entry_error(value):
    try:
        parse_entry(value)
    except EntryError as exc:
        message = str(exc)
        assert message and len(message.splitlines()) == 1, repr(message)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet=EXPR_ALPHABET, max_size=40))
def test_random_strings_over_expression_characters(text):
    _only_entry_error(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_random_unicode_strings(text):
    _only_entry_error(text)


def _expressions():
    atoms = st.one_of(
        st.integers(-20, 20).map(str),
        st.fractions(max_denominator=12).map(lambda q: f"{q.numerator}/{q.denominator}"),
        st.sampled_from(["0.5", "1e-3", "2.5e1", "0", "1j", "x", "1e401", "sqrt", "()"]),
    )

    def extend(inner):
        return st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "**", "//", "%"]), inner).map(
                lambda t: f"({t[0]}{t[1]}{t[2]})"
            ),
            inner.map(lambda e: f"sqrt({e})"),
            inner.map(lambda e: f"-{e}"),
            st.tuples(inner, st.sampled_from(["2", "-1", "(1/2)", "0.5", "3"])).map(lambda t: f"{t[0]}**{t[1]}"),
        )

    return st.recursive(atoms, extend, max_leaves=8)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions())
def test_random_arithmetic_expressions(text):
    """Grammar-shaped input reaches the arithmetic (roots, powers, zero divisors): only EntryError."""
    try:
        value = parse_entry(text)
    except EntryError as exc:
        assert len(str(exc).splitlines()) == 1
        return
    # an accepted value is real and finite
    assert value.is_real is not False
    assert value.is_finite is not False


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_expressions())
@example("sqrt((1+sqrt(2))**3)")  # a half-integer power: printed sqrt(1 + sqrt(2))**3, not (1 + sqrt(2))**(3/2)
@example("1/sqrt((1+sqrt(2))**3)")
@example("sqrt(((2.5e1**2.5e1)**2.5e1))")  # 5**625: 437 digits, beyond what the parser reads
def test_format_exact_parses_back(text):
    """Whatever the parser accepts, format_exact prints as an entry of the same value, wherever the printed integers
    stay within the parser's MAX_DIGITS digits (a value built by powers can exceed them: the limit guards the input,
    and such a value has no printed form the parser would take)."""
    try:
        value = parse_entry(text)
    except EntryError:
        return
    printed = format_exact(value)
    if re.search(rf"\d{{{MAX_DIGITS + 1}}}", printed):
        with pytest.raises(EntryError, match="digits"):
            parse_entry(printed)
        return
    back = parse_entry(printed)
    try:
        assert back == value or is_zero(back - value), (text, printed)
    except EntryError:  # beyond the exact arithmetic's roots: compare to 30 digits
        assert abs(sympy.N(back - value, 30)) < sympy.Float(10) ** -25


json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**30), 10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(alphabet=EXPR_ALPHABET, max_size=12),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(["A", "b", "c", "name", "partner", "description", "x"]), inner, max_size=4),
    ),
    max_leaves=20,
)


def _only_rkgen_error(text):
    try:
        from_json(text, source="random.json")
    except RkgenError as exc:
        message = str(exc)
        assert message.startswith("random.json: ") and len(message.splitlines()) == 1, repr(message)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_random_json(value):
    _only_rkgen_error(json.dumps(value))


tableau_like = st.integers(1, 3).flatmap(
    lambda s: st.fixed_dictionaries(
        {
            "A": st.lists(st.lists(json_scalars, min_size=s, max_size=s + 1), min_size=s, max_size=s + 1),
            "b": st.lists(json_scalars, min_size=s - 1, max_size=s + 1),
        },
        optional={"c": st.one_of(st.none(), st.lists(json_scalars, max_size=s + 1)), "name": json_scalars},
    )
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tableau_like)
def test_random_tableau_shaped_json(value):
    _only_rkgen_error(json.dumps(value))


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_random_text_as_json(text):
    _only_rkgen_error(text)


def test_a_refused_entry_prints_no_compiler_warning():
    """'"\\-"' is an invalid escape to Python's compiler (a DeprecationWarning in 3.11, a SyntaxWarning from 3.12):
    the user sees rkgen's one line only."""
    import warnings

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(EntryError, match="not a number"):
            parse_entry('"\\-"')
    assert seen == []
