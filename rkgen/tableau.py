"""The Butcher tableau, the chain's exact input: frozen, validated; read from JSON or by a built-in name.

::

    c_1 | a_11 ... a_1s
     :  |  :         :          Y_i = y + h sum_j a_ij F_j,   F_i = f(Y_i)
    c_s | a_s1 ... a_ss         y_next = y + h sum_i b_i F_i
    ----+---------------
        | b_1  ...  b_s

Entries are sympy numbers (rationals, surds) and stay so; floats appear only when code is printed.  The derived
properties (structure, order, symplecticity, partner) are computed once, on first use, exactly.

This module is the bottom of the analysis: :mod:`rkgen.order` and :mod:`rkgen.partner` take a Tableau and return
reports (a partner is a new Tableau, built through the constructor); nothing writes into a Tableau.  The
convenience properties :attr:`Tableau.order`, :attr:`~Tableau.is_symplectic`, :attr:`~Tableau.partner` call into
those modules by function-local imports, so this module never imports them when it loads.

>>> rk4 = load("rk4")
>>> rk4.stages, rk4.structure, rk4.order
(4, 'explicit', 4)
>>> rk4.b
(1/6, 1/3, 1/3, 1/6)
>>> load("gauss2").is_symplectic
True
>>> load("euler").partner.name
'euler_partner'
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
from typing import TYPE_CHECKING

import sympy

from .errors import RkgenError
from .numbers import EntryError, parse_entry, printable

if TYPE_CHECKING:
    from .exact import NumberField
    from .order import OrderReport
    from .partner import PairReport

__all__ = ["Tableau", "load", "builtin_names", "from_json", "MAX_STAGES", "MAX_FILE_BYTES"]

#: Largest number of stages accepted (published methods have at most a few dozen).
MAX_STAGES = 64
#: Largest tableau file read.
MAX_FILE_BYTES = 1_000_000

_FIELDS = ("name", "description", "reference", "A", "b", "c", "partner")


@dataclass(frozen=True, eq=False)
class Tableau:
    """A Runge–Kutta method (A, b, c) with exact sympy entries.

    Build one with :func:`load` (a built-in name or a JSON path) or :func:`from_json`; the constructor takes
    already-exact entries.  ``c`` defaults to the row sums of A.

    >>> t = Tableau("heun2", ((0, 0), (1, 0)), (sympy.Rational(1, 2), sympy.Rational(1, 2)))
    >>> t.c, t.structure, t.order
    ((0, 1), 'explicit', 2)
    """

    name: str
    A: tuple[tuple[sympy.Expr, ...], ...]
    b: tuple[sympy.Expr, ...]
    c: tuple[sympy.Expr, ...] | None = None
    description: str = ""
    reference: str = ""
    source: str = ""
    given_partner: Tableau | None = field(default=None, repr=False)
    #: The entries as elements of a number field, when whoever builds the tableau has them already:
    #: ``(F, (A, b, c))``, naming the same numbers as the sympy ``A``, ``b``, ``c`` (not checked).  They become
    #: :attr:`number_field` and :attr:`exact` instead of a second conversion (:func:`rkgen.partner.partner_tableau`
    #: passes them: a partner's printed entries may hold roots such as sqrt(6) that the field has as
    #: sqrt(2)*sqrt(3)).
    elements: tuple[NumberField, tuple[list, list, list]] | None = field(default=None, repr=False)
    #: A tableau with exactly the same A, b, c (not checked): :attr:`number_field`, :attr:`exact` and
    #: :attr:`order_report` are read from it, not computed again (a symplectic method is its own partner).
    same_as: Tableau | None = field(default=None, repr=False)

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

        >>> Tableau("my-method 2", ((0,),), (1,)).identifier
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

        >>> load("sdirk2").structure_detail
        'diagonally implicit (SDIRK: singly diagonal)'
        >>> load("trapezoid").structure_detail
        'diagonally implicit (ESDIRK: explicit first stage, singly diagonal)'
        >>> Tableau("edirk", ((0, 0, 0), (1, 1, 0), (1, 1, 2)), (1, 1, 1)).structure_detail
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

    # -- analysis (delegated) ---------------------------------------------------------------------------------
    # Conveniences over rkgen.order and rkgen.partner, which import this module; the imports stay inside the
    # functions (tests/test_tableau.py checks that this module imports them nowhere else).
    @cached_property
    def order_report(self) -> OrderReport:
        """Order conditions, exact and tolerant order, stage order, B/C/D (see :mod:`rkgen.order`)."""
        if self.same_as is not None:
            return self.same_as.order_report
        from .order import analyse_order

        return analyse_order(self)

    @property
    def order(self) -> int:
        """The classical order, exactly."""
        return self.order_report.order

    @cached_property
    def symplecticity_matrix(self):
        """M = diag(b) A + Aᵀ diag(b) − b bᵀ as sympy numbers."""
        from .partner import symplecticity_matrix

        return symplecticity_matrix(self)

    @property
    def is_symplectic(self) -> bool:
        """Whether M = 0 exactly (the method is its own symplectic partner)."""
        return all(x == 0 for row in self.symplecticity_matrix for x in row)

    @cached_property
    def partner(self) -> Tableau | None:
        """The symplectic partner (Ã, b, c̃) of conditions (19), or None when some b_i = 0."""
        from .partner import partner_tableau

        return partner_tableau(self)

    def pair_report(self, other: Tableau) -> PairReport:
        """Check conditions (19) for the pair (self, other)."""
        from .partner import check_pair

        return check_pair(self, other)

    # -- serialisation ----------------------------------------------------------------------------------------
    def exact_strings(self) -> dict[str, list]:
        """A, b, c with every entry as its exact string (the form JSON output and drawings use).

        >>> load("heun2").exact_strings()
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

    def __repr__(self) -> str:
        return f"Tableau({self.name!r}, stages={self.stages})"


# -- reading --------------------------------------------------------------------------------------------------
def builtin_names() -> list[str]:
    """Names of the built-in tableaux, sorted."""
    folder = resources.files("rkgen") / "tableaux"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".json"))


def load(spec: str | os.PathLike) -> Tableau:
    """A tableau from a built-in name (``"rk4"``) or a JSON file path.

    A path that exists wins over a built-in name; errors are :class:`RkgenError` with one-line messages.

    >>> load("gauss3").order
    6
    >>> load("rk5")
    Traceback (most recent call last):
    ...
    rkgen.errors.RkgenError: rk5: no such file, and not a built-in tableau (see 'rkgen list'; did you mean rk4?)
    """
    if isinstance(spec, Tableau):
        return spec
    path = Path(os.fspath(spec))
    text = printable(os.fspath(spec))
    if path.is_file():
        return read_json_file(path)
    if path.exists():
        raise RkgenError(f"{text}: not a file")
    names = builtin_names()
    if os.fspath(spec) in names:
        data = (resources.files("rkgen") / "tableaux" / f"{text}.json").read_text(encoding="utf-8")
        return from_json(data, source=f"built-in {text}", default_name=text)
    if text.endswith(".json") or os.sep in text or "/" in text:
        raise RkgenError(f"{text}: no such file")
    import difflib

    close = difflib.get_close_matches(text, names, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise RkgenError(f"{text}: no such file, and not a built-in tableau (see 'rkgen list'{hint})")


def read_json_file(path: Path) -> Tableau:
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
    return from_json(text, source=name, default_name=path.stem)


def from_json(text: str, source: str = "<string>", default_name: str = "tableau") -> Tableau:
    """Build a tableau from JSON text (see README for the format).

    >>> t = from_json('{"A": [["0", "0"], ["2/3", "0"]], "b": ["1/4", "3/4"]}', default_name="ralston")
    >>> t.name, t.c, t.order
    ('ralston', (0, 2/3), 2)
    >>> from_json('{"A": [["0"]], "b": ["1", "0"]}')
    Traceback (most recent call last):
    ...
    rkgen.errors.RkgenError: <string>: A has 1 rows but b has 2 entries
    """
    if len(text) > MAX_FILE_BYTES:
        raise RkgenError(f"{source}: input too large for a tableau (limit {MAX_FILE_BYTES} bytes)")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise RkgenError(f"{source}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise RkgenError(f"{source}: invalid JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. integers with too many digits
        raise RkgenError(f"{source}: invalid JSON: {exc}") from None
    return _from_data(data, source, default_name)


def _from_data(data, source: str, default_name: str, where: str = "") -> Tableau:
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
            raise RkgenError(f"{source}: {where}A[{i}]: expected a list (a row of A)")
    if len(A_raw) != len(b_raw):
        raise RkgenError(f"{source}: {where}A has {len(A_raw)} rows but b has {len(b_raw)} entries")
    s = len(b_raw)
    for i, row in enumerate(A_raw):
        if len(row) != s:
            raise RkgenError(f"{source}: {where}A is not square: row A[{i}] has {len(row)} entries, expected {s}")

    def entry(value, label):
        try:
            return parse_entry(value)
        except EntryError as exc:
            raise RkgenError(f"{source}: {where}{label}: {exc}") from None

    A = tuple(tuple(entry(x, f"A[{i}][{j}]") for j, x in enumerate(row)) for i, row in enumerate(A_raw))
    b = tuple(entry(x, f"b[{i}]") for i, x in enumerate(b_raw))
    c = None
    if "c" in data and data["c"] is not None:
        if not isinstance(data["c"], list):
            raise RkgenError(f"{source}: {where}c: expected a list")
        if len(data["c"]) != s:
            raise RkgenError(f"{source}: {where}c has {len(data['c'])} entries but the tableau has {s} stages")
        c = tuple(entry(x, f"c[{i}]") for i, x in enumerate(data["c"]))
    partner = None
    if data.get("partner") is not None:
        if where:
            raise RkgenError(f"{source}: {where}a partner cannot have a partner")
        partner = _from_data(data["partner"], source, f"{name}_given_partner", where="partner: ")
    return Tableau(
        name=name,
        A=A,
        b=b,
        c=c,
        description=data.get("description", ""),
        reference=data.get("reference", ""),
        source=source,
        given_partner=partner,
    )
