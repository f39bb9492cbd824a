"""The exact Butcher tableau, first link of the chain (tableau -> adjoint equations -> printer -> template -> module).

::

    c_1 | a_11 ... a_1s
     :  |  :         :          Y_i = y + h sum_j a_ij F_j,   F_i = f(Y_i)
    c_s | a_s1 ... a_ss         y_next = y + h sum_i b_i F_i
    ----+---------------
        | b_1  ...  b_s

Entries are sympy numbers (rationals, surds) and stay so; floats appear only when code is printed.

This module is the data, and the bottom of the analyses: :class:`ButcherTableau` is frozen and validated, reads
built-ins and JSON, and computes what needs no analysis (number field, structure, identifiers, canonical JSON).
It imports neither :mod:`rkgen.order` nor :mod:`rkgen.partner`; those take a ButcherTableau, and
:class:`rkgen.tableau.Tableau`, the class users get from :func:`rkgen.load`, is the subclass that adds them as
members (order, symplecticity, partner).  Subclasses add members, never fields: the readers here
(:meth:`ButcherTableau.load`, :meth:`~ButcherTableau.from_json`) and :func:`rkgen.partner.partner_tableau`
build ``type(...)(...)`` with these fields, so a Tableau's partner and given partner are Tableaux.

>>> gauss2 = ButcherTableau.load("gauss2")
>>> gauss2, gauss2.stages, gauss2.structure, gauss2.b
(ButcherTableau('gauss2', stages=2), 2, 'fully implicit', (1/2, 1/2))
>>> gauss2.number_field.roots, gauss2.number_field.degree
((sqrt(3),), 2)
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Self, TypeVar

import sympy

from .errors import RkgenError, count
from .numbers import EntryError, parse_entry, printable

if TYPE_CHECKING:
    from .exact import NumberField

__all__ = ["ButcherTableau", "builtin_names", "MAX_STAGES", "MAX_FILE_BYTES"]

#: Largest number of stages accepted (published methods have at most a few dozen).
MAX_STAGES = 64
#: Largest tableau file read.
MAX_FILE_BYTES = 1_000_000
#: a JSON integer longer than this is refused while parsing (Python's own limit is 4300 digits)
MAX_JSON_INT_DIGITS = 4000

T = TypeVar("T", bound="ButcherTableau")

_FIELDS = ("name", "description", "reference", "A", "b", "c", "partner")


@dataclass(frozen=True, eq=False)
class ButcherTableau:
    """A Runge–Kutta method (A, b, c) with exact sympy entries.

    Build one with :meth:`load` (a built-in name or a JSON path) or :meth:`from_json`; the constructor takes
    already-exact entries.  ``c`` defaults to the row sums of A.

    >>> t = ButcherTableau("heun2", ((0, 0), (1, 0)), (sympy.Rational(1, 2), sympy.Rational(1, 2)))
    >>> t.c, t.structure, t.is_consistent
    ((0, 1), 'explicit', True)
    """

    name: str
    A: tuple[tuple[sympy.Expr, ...], ...]
    b: tuple[sympy.Expr, ...]
    c: tuple[sympy.Expr, ...] | None = None
    description: str = ""
    reference: str = ""
    source: str = ""
    given_partner: ButcherTableau | None = field(default=None, repr=False)
    #: The entries as elements of a number field, when whoever builds the tableau has them already:
    #: ``(F, (A, b, c))``, naming the same numbers as the sympy ``A``, ``b``, ``c`` (not checked).  They become
    #: :attr:`number_field` and :attr:`exact` instead of a second conversion (:func:`rkgen.partner.partner_tableau`
    #: passes them: a partner's printed entries may hold roots such as sqrt(6) that the field has as
    #: sqrt(2)*sqrt(3)).
    elements: tuple[NumberField, tuple[list, list, list]] | None = field(default=None, repr=False)
    #: A tableau with exactly the same A, b, c (not checked): :attr:`number_field` and :attr:`exact` are read from
    #: it, not computed again, and so is a Tableau's order report (a symplectic method is its own partner).
    same_as: ButcherTableau | None = field(default=None, repr=False)

    def __post_init__(self):
        A = tuple(tuple(sympy.sympify(x) for x in row) for row in self.A)
        b = tuple(sympy.sympify(x) for x in self.b)
        s = len(b)
        if s == 0 or len(A) != s or any(len(row) != s for row in A):
            raise RkgenError(f"{self.name}: A must be {s}x{s} to match b")
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "b", b)
        sums = tuple(sympy.Add(*row) for row in A)
        object.__setattr__(self, "c", sums if self.c is None else tuple(sympy.sympify(x) for x in self.c))

    # -- basic shape ------------------------------------------------------------------------------------------
    @property
    def stages(self) -> int:
        """The number of stages s."""
        return len(self.b)

    @property
    def identifier(self) -> str:
        """The name as a Python identifier (for module names).

        >>> ButcherTableau("my-method 2", ((0,),), (1,)).identifier
        'my_method_2'
        """
        ident = re.sub(r"\W+", "_", self.name, flags=re.ASCII).strip("_").lower() or "tableau"
        return "t_" + ident if ident[0].isdigit() else ident

    @cached_property
    def number_field(self) -> NumberField:
        """The exact number field holding every entry (Q for rational tableaux)."""
        if self.same_as is not None:
            return self.same_as.number_field
        if self.elements is not None:
            return self.elements[0]
        from .exact import NumberField

        try:
            return NumberField.for_numbers([*self.b, *self.c, *(x for row in self.A for x in row)])
        except RkgenError as exc:
            raise RkgenError(f"{self.source or self.name}: {exc}") from None

    @cached_property
    def exact(self):
        """A, b, c as elements of :attr:`number_field` (for exact arithmetic)."""
        if self.same_as is not None:
            return self.same_as.exact
        if self.elements is not None:
            return self.elements[1]
        F = self.number_field
        A = [[F.element(x) for x in row] for row in self.A]
        return A, [F.element(x) for x in self.b], [F.element(x) for x in self.c]

    @cached_property
    def row_sums(self) -> tuple[sympy.Expr, ...]:
        return tuple(sympy.Add(*row) for row in self.A)

    @cached_property
    def is_consistent(self) -> bool:
        """Whether c = A·1 exactly."""
        A, _, c = self.exact
        F = self.number_field
        return all(F.is_zero(F.sub(sum(row, F.zero), ci)) for row, ci in zip(A, c, strict=True))

    # -- structure --------------------------------------------------------------------------------------------
    @cached_property
    def nonzero(self) -> tuple[tuple[bool, ...], ...]:
        """nonzero[i][j]: whether a_ij != 0 (decided exactly)."""
        A, _, _ = self.exact
        return tuple(tuple(not x.is_zero() for x in row) for row in A)

    @cached_property
    def structure(self) -> str:
        """'explicit', 'diagonally implicit' or 'fully implicit'."""
        s, nz = self.stages, self.nonzero
        if any(nz[i][j] for i in range(s) for j in range(i + 1, s)):
            return "fully implicit"
        if any(nz[i][i] for i in range(s)):
            return "diagonally implicit"
        return "explicit"

    @cached_property
    def structure_detail(self) -> str:
        """The structure with the DIRK family named: SDIRK, EDIRK, ESDIRK or DIRK.

        >>> ButcherTableau.load("sdirk2").structure_detail
        'diagonally implicit (SDIRK: singly diagonal)'
        >>> ButcherTableau.load("trapezoid").structure_detail
        'diagonally implicit (ESDIRK: explicit first stage, singly diagonal)'
        >>> ButcherTableau("edirk", ((0, 0, 0), (1, 1, 0), (1, 1, 2)), (1, 1, 1)).structure_detail
        'diagonally implicit (EDIRK: explicit first stage)'
        """
        if self.structure != "diagonally implicit":
            return self.structure
        A, _, _ = self.exact
        diag = [A[i][i] for i in range(self.stages)]
        first_explicit = diag[0].is_zero()
        rest = diag[1:] if first_explicit else diag
        singly = all(not d.is_zero() for d in rest) and all(d == rest[0] for d in rest)
        if first_explicit and singly and len(rest) > 0:
            return "diagonally implicit (ESDIRK: explicit first stage, singly diagonal)"
        if first_explicit:
            return "diagonally implicit (EDIRK: explicit first stage)"
        if singly:
            return "diagonally implicit (SDIRK: singly diagonal)"
        return "diagonally implicit (DIRK)"

    @property
    def is_explicit(self) -> bool:
        return self.structure == "explicit"

    @cached_property
    def zero_weights(self) -> tuple[int, ...]:
        """0-based indices i with b_i = 0."""
        return tuple(i for i, x in enumerate(self.exact[1]) if x.is_zero())

    # -- serialisation ----------------------------------------------------------------------------------------
    def exact_strings(self) -> dict[str, list]:
        """A, b, c with every entry as its exact string (the form JSON output and drawings use).

        >>> ButcherTableau.load("heun2").exact_strings()
        {'A': [['0', '0'], ['1', '0']], 'b': ['1/2', '1/2'], 'c': ['0', '1']}
        """
        return {
            "A": [[str(x) for x in row] for row in self.A],
            "b": [str(x) for x in self.b],
            "c": [str(x) for x in self.c],
        }

    def to_dict(self) -> dict:
        """The tableau as JSON-ready data, entries as exact strings."""
        return {"name": self.name, **self.exact_strings()}

    def canonical_json(self) -> str:
        """Canonical JSON of (name, A, b, c): sorted keys, no spaces; the input of :attr:`sha256`."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical_json().encode()).hexdigest()

    def floats(self):
        """A, b, c as nested tuples of Python floats (correctly rounded for rationals)."""
        F = self.number_field
        A, b, c = self.exact
        return (
            tuple(tuple(F.to_float(x) for x in row) for row in A),
            tuple(F.to_float(x) for x in b),
            tuple(F.to_float(x) for x in c),
        )

    # -- reading ----------------------------------------------------------------------------------------------
    # Class methods: they build ``cls(...)``, so Tableau.load(...) gives a Tableau (given partner included).
    @classmethod
    def load(cls, spec: str | os.PathLike) -> Self:
        """A tableau from a built-in name (``"rk4"``) or a JSON file path.

        A path that exists wins over a built-in name; errors are :class:`RkgenError` with one-line messages.

        >>> ButcherTableau.load("gauss3").stages
        3
        >>> ButcherTableau.load("rk5")
        Traceback (most recent call last):
        ...
        rkgen.errors.RkgenError: rk5: no such file, and not a built-in tableau (see 'rkgen list'; did you mean rk4?)
        """
        if isinstance(spec, ButcherTableau):
            return spec if isinstance(spec, cls) else cls.of(spec)
        path = Path(os.fspath(spec))
        text = printable(os.fspath(spec))
        if path.is_file():
            return cls.read_json_file(path)
        if path.exists():
            raise RkgenError(f"{text}: not a file")
        names = builtin_names()
        if os.fspath(spec) in names:
            data = (resources.files("rkgen") / "tableaux" / f"{text}.json").read_text(encoding="utf-8")
            return cls.from_json(data, source=f"built-in {text}", default_name=text)
        if text.endswith(".json") or os.sep in text or "/" in text:
            raise RkgenError(f"{text}: no such file")
        import difflib

        close = difflib.get_close_matches(text, names, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise RkgenError(f"{text}: no such file, and not a built-in tableau (see 'rkgen list'{hint})")

    @classmethod
    def read_json_file(cls, path: Path) -> Self:
        """A tableau from a JSON file (size-limited, UTF-8)."""
        name = printable(str(path))
        try:
            size = path.stat().st_size
            if size > MAX_FILE_BYTES:
                raise RkgenError(f"{name}: file of {size} bytes is too large for a tableau (limit {MAX_FILE_BYTES})")
            raw = path.read_bytes()
        except OSError as exc:
            raise RkgenError(f"{name}: cannot read: {exc.strerror}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise RkgenError(f"{name}: not UTF-8 text") from None
        return cls.from_json(text, source=name, default_name=path.stem)

    @classmethod
    def from_json(cls, text: str, source: str = "<string>", default_name: str = "tableau") -> Self:
        """Build a tableau from JSON text (see README for the format).

        >>> t = ButcherTableau.from_json('{"A": [["0", "0"], ["2/3", "0"]], "b": ["1/4", "3/4"]}', default_name="r")
        >>> t.name, t.c
        ('r', (0, 2/3))
        >>> ButcherTableau.from_json('{"A": [["0"]], "b": ["1", "0"]}')
        Traceback (most recent call last):
        ...
        rkgen.errors.RkgenError: <string>: A has 1 row but b has 2 entries
        """
        if len(text) > MAX_FILE_BYTES:
            raise RkgenError(f"{source}: input too large for a tableau (limit {MAX_FILE_BYTES} bytes)")
        try:
            data = json.loads(text.removeprefix("\ufeff"), object_pairs_hook=_no_duplicates, parse_int=_json_int)
        except json.JSONDecodeError as exc:
            raise RkgenError(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        except RecursionError:
            raise RkgenError(f"{source}: invalid JSON: nested too deeply") from None
        except ValueError as exc:  # e.g. integers with too many digits
            raise RkgenError(f"{source}: invalid JSON: {exc}") from None
        return _from_data(cls, data, source, default_name)

    @classmethod
    def of(cls, other: ButcherTableau) -> Self:
        """``other`` as an instance of ``cls`` (e.g. a ButcherTableau as a Tableau): the same fields, and its exact
        entries shared through :attr:`same_as` rather than converted again.

        >>> t = ButcherTableau.load("heun2")
        >>> u = ButcherTableau.of(t)
        >>> u is not t and u.same_as is t and u.A == t.A
        True
        """
        return cls(
            name=other.name,
            A=other.A,
            b=other.b,
            c=other.c,
            description=other.description,
            reference=other.reference,
            source=other.source,
            given_partner=None if other.given_partner is None else cls.of(other.given_partner),
            same_as=other,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, stages={self.stages})"


# -- reading ------------------------------------------------------------------------------------------------------
def builtin_names() -> list[str]:
    """Names of the built-in tableaux, sorted."""
    folder = resources.files("rkgen") / "tableaux"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def _from_data(cls: type[T], data, source: str, default_name: str, where: str = "") -> T:
    if not isinstance(data, dict):
        raise RkgenError(f"{source}: {where[:-2] or 'the top level'} must be a JSON object with fields A and b")
    unknown = [k for k in data if k not in _FIELDS]
    if unknown:
        raise RkgenError(
            f"{source}: {where}unknown field '{printable(unknown[0])[:60]}' (expected {', '.join(_FIELDS)})"
        )
    for key in ("A", "b"):
        if key not in data:
            raise RkgenError(f"{source}: {where}missing field '{key}'")
    name = data.get("name", default_name)
    for key in ("name", "description", "reference"):
        if key in data and not isinstance(data[key], str):
            raise RkgenError(f"{source}: {where}{key}: expected a string")
    if not name.strip():
        raise RkgenError(f"{source}: {where}name: empty")
    A_raw, b_raw = data["A"], data["b"]
    if not isinstance(A_raw, list):
        raise RkgenError(f"{source}: {where}A: expected a list of rows")
    if not isinstance(b_raw, list):
        raise RkgenError(f"{source}: {where}b: expected a list")
    if len(A_raw) == 0 or len(b_raw) == 0:
        raise RkgenError(f"{source}: {where}empty tableau: A and b need at least one stage")
    if len(A_raw) > MAX_STAGES or len(b_raw) > MAX_STAGES:
        raise RkgenError(f"{source}: {where}more than {MAX_STAGES} stages is not supported")
    for i, row in enumerate(A_raw):
        if not isinstance(row, list):
            raise RkgenError(f"{source}: {where}row {i + 1} of A: expected a list (a row of A)")
    if len(A_raw) != len(b_raw):
        raise RkgenError(
            f"{source}: {where}A has {count(len(A_raw), 'row')} but b has {count(len(b_raw), 'entry', 'entries')}"
        )
    s = len(b_raw)
    for i, row in enumerate(A_raw):
        if len(row) != s:
            raise RkgenError(
                f"{source}: {where}A is not square: row {i + 1} of A has {count(len(row), 'entry', 'entries')}, "
                f"expected {s}"
            )

    def entry(value, label):
        try:
            return parse_entry(value)
        except EntryError as exc:
            raise RkgenError(f"{source}: {where}{label}: {exc}") from None

    A = tuple(tuple(entry(x, entry_name("A", i, j)) for j, x in enumerate(row)) for i, row in enumerate(A_raw))
    b = tuple(entry(x, entry_name("b", i)) for i, x in enumerate(b_raw))
    c = None
    if "c" in data and data["c"] is not None:
        if not isinstance(data["c"], list):
            raise RkgenError(f"{source}: {where}c: expected a list")
        if len(data["c"]) != s:
            raise RkgenError(
                f"{source}: {where}c has {count(len(data['c']), 'entry', 'entries')} but the tableau has "
                f"{count(s, 'stage')}"
            )
        c = tuple(entry(x, entry_name("c", i)) for i, x in enumerate(data["c"]))
    partner = None
    if data.get("partner") is not None:
        if where:
            raise RkgenError(f"{source}: {where}a partner cannot have a partner")
        partner = _from_data(cls, data["partner"], source, f"{name}_given_partner", where="partner: ")
    return cls(
        name=name,
        A=A,
        b=b,
        c=c,
        description=data.get("description", ""),
        reference=data.get("reference", ""),
        source=source,
        given_partner=partner,
    )


def entry_name(field: str, i: int, j: int | None = None) -> str:
    """How messages name an entry of a tableau: 1-based, as the papers and ``rkgen derive`` write it, with where
    it stands in the JSON file.

    >>> entry_name("A", 2, 0), entry_name("b", 1), entry_name("A", 9, 10)
    ('a_31 (row 3, column 1 of A)', 'b_2 (entry 2 of b)', 'a_10,11 (row 10, column 11 of A)')
    """
    if j is None:
        return f"{field.lower()}_{i + 1} (entry {i + 1} of {field})"
    sub = f"{i + 1}{j + 1}" if i < 9 and j < 9 else f"{i + 1},{j + 1}"
    return f"a_{sub} (row {i + 1}, column {j + 1} of {field})"



def _no_duplicates(pairs: list) -> dict:
    """A JSON object whose keys are all different (JSON allows duplicates, and the last would silently win)."""
    out = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"the key {printable(key)!r} occurs twice in one object")
        out[key] = value
    return out


def _json_int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_JSON_INT_DIGITS:
        raise ValueError(
            f"an integer of {len(text.lstrip('-'))} digits (at most {MAX_JSON_INT_DIGITS})"
        )
    return int(text)
