"""Exact numbers from text, without evaluating the text as code: the first step of the chain.

A tableau entry is a string such as ``"1/2 - sqrt(3)/6"``.  It is parsed by Python's :mod:`ast` into a syntax tree,
the tree is checked against a whitelist (number literals, ``+ - * / **``, parentheses, unary signs, calls of
``sqrt``) and sympy objects are built from the checked tree.  Nothing is passed to ``eval``, ``exec``,
``sympify`` or ``parse_expr``.

>>> parse_entry("1/2 - sqrt(3)/6")
1/2 - sqrt(3)/6
>>> parse_entry("0.25")
1/4
>>> parse_entry(0.1)            # a JSON float is the decimal it prints as
1/10
>>> parse_entry("1e-3")
1/1000
>>> parse_entry("exp(1)")
Traceback (most recent call last):
...
rkgen.numbers.EntryError: unsupported expression 'exp(1)'
"""

from __future__ import annotations

import ast
import warnings
from fractions import Fraction

import sympy
from sympy.printing.str import StrPrinter

from .errors import RkgenError

__all__ = ["EntryError", "parse_entry", "format_exact", "MAX_ENTRY_CHARS", "MAX_DIGITS"]

#: Longest entry string accepted (a 5-stage Gauss entry is under 200 characters).
MAX_ENTRY_CHARS = 2000
#: Most digits in one number literal, and largest decimal exponent in scientific notation.
MAX_DIGITS = 400
#: Largest absolute integer exponent of ``**``.
MAX_POWER = 64
#: Deepest expression nesting.
MAX_DEPTH = 60
#: Most digits in the numerator or denominator of any rational an entry evaluates to (also in between).
MAX_RESULT_DIGITS = 1000
_MAX_RESULT_BITS = int(MAX_RESULT_DIGITS * 3.33)


class EntryError(RkgenError):
    """An entry that is not an exact real number of the accepted form."""


def _short(text: str, limit: int = 60) -> str:
    text = printable(text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def printable(text: str) -> str:
    r"""``text`` with line breaks and other unprintable characters escaped, for one-line messages.

    >>> print(printable("1\n+2"))
    1\n+2
    """
    if text.isprintable():
        return text
    return "".join(ch if ch.isprintable() else ch.encode("unicode_escape").decode("ascii") for ch in text)


def parse_entry(value) -> sympy.Expr:
    """Return the exact sympy number written in ``value``.

    ``value`` is a JSON value: a string holding an expression, an integer, or a float (taken as the decimal it
    prints as, so ``0.1`` is 1/10).  Raises :class:`EntryError` with a one-line reason otherwise.

    >>> parse_entry("1/2 + sqrt(245 + 14*sqrt(70))/42")
    sqrt(14*sqrt(70) + 245)/42 + 1/2
    >>> parse_entry("(2/3)**2")
    4/9
    >>> parse_entry("1/(1-1)")
    Traceback (most recent call last):
    ...
    rkgen.numbers.EntryError: division by zero in '1/(1-1)'
    """
    if isinstance(value, bool):
        raise EntryError(f"expected a number, got {str(value).lower()}")
    if isinstance(value, int):
        if value.bit_length() > MAX_DIGITS * 3.33:
            raise EntryError(f"integer with more than {MAX_DIGITS} digits")
        return sympy.Integer(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise EntryError(f"not a finite number: {value!r}")
        return sympy.Rational(Fraction(repr(value)).numerator, Fraction(repr(value)).denominator)
    if not isinstance(value, str):
        kind = {list: "a list", dict: "an object", type(None): "null"}.get(type(value), type(value).__name__)
        raise EntryError(f"expected a number or a string holding one, got {kind}")
    text = value.strip()
    if not text:
        raise EntryError("empty entry")
    if len(text) > MAX_ENTRY_CHARS:
        raise EntryError(f"entry longer than {MAX_ENTRY_CHARS} characters")
    if text.count("(") > MAX_DEPTH * 4:
        raise EntryError(f"expression nested too deeply in '{_short(text)}'")
    try:
        # an entry such as '"\\-"' would make the compiler print a warning beside rkgen's one line
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise EntryError(f"not a number or arithmetic expression: '{_short(text)}'") from None
    try:
        result = _Builder(text).build(tree.body, 0)
    except RecursionError:
        raise EntryError(f"expression nested too deeply in '{_short(text)}'") from None
    for r in result.atoms(sympy.Rational):  # sympy distributes rationals over sums: check every one
        if max(int(r.p).bit_length(), int(r.q).bit_length()) > _MAX_RESULT_BITS:
            raise EntryError(f"number with more than {MAX_RESULT_DIGITS} digits: '{_short(text)}'")
    return result


def format_exact(x) -> str:
    """The one printed form of an exact number for people: the rational part first, then the surd terms in a
    fixed order (fewest operations first, then sympy's canonical order), also inside nested radicands; powers
    of iterated square roots as ``sqrt(sqrt(...))``, half-integer powers as ``sqrt(...)**p``.  The text parses back
    (:func:`parse_entry`) to ``x`` wherever its integers stay within the parser's MAX_DIGITS digits.

    >>> format_exact(sympy.sqrt(15) / 30 + sympy.Rational(5, 36))
    '5/36 + sqrt(15)/30'
    >>> format_exact(sympy.Rational(5, 36) - sympy.sqrt(15) / 30)
    '5/36 - sqrt(15)/30'
    >>> format_exact(parse_entry("1/2 + sqrt(245 + 14*sqrt(70))/42"))
    '1/2 + sqrt(245 + 14*sqrt(70))/42'
    >>> format_exact(parse_entry("sqrt(sqrt(2))**3")), format_exact(parse_entry("1/sqrt(sqrt(1 + sqrt(2)))"))
    ('sqrt(sqrt(2))**3', '1/sqrt(sqrt(1 + sqrt(2)))')
    >>> format_exact(parse_entry("sqrt((1 + sqrt(2))**3)")), format_exact(parse_entry("1/sqrt((1 + sqrt(2))**3)"))
    ('sqrt(1 + sqrt(2))**3', '1/sqrt(1 + sqrt(2))**3')
    """
    return _PRINTER.doprint(sympy.sympify(x))


def _term_key(term: sympy.Expr):
    """Rational part first; then terms by their surd part: fewest operations first, then sympy's order."""
    if term.is_Rational:
        return (0, 0, ())
    _, surd = term.as_coeff_Mul()
    return (1, sympy.count_ops(surd), sympy.default_sort_key(surd))


class _ExactPrinter(StrPrinter):
    """sympy's str printer with :func:`format_exact`'s order of terms and its iterated square roots."""

    def _as_ordered_terms(self, expr, order=None):
        if expr.is_Add:
            return sorted(expr.args, key=_term_key)
        return super()._as_ordered_terms(expr, order=order)

    def _print_Pow(self, expr, rational=False):
        e = expr.exp
        q = int(e.q) if e.is_Rational else 0
        # a root whose index is a power of two: iterated square roots, raised to the numerator (sqrt(x) itself and
        # 1/sqrt(x) are sympy's own; (1 + sqrt(2))**(3/2), which the parser refuses, is sqrt(1 + sqrt(2))**3)
        if q >= 2 and q & (q - 1) == 0 and (q > 2 or abs(int(e.p)) > 1):
            if e < 0:
                return "1/" + self._print(sympy.Pow(expr.base, -e, evaluate=False))
            root = self._print(expr.base)
            for _ in range(int(e.q).bit_length() - 1):
                root = f"sqrt({root})"
            return root if e.p == 1 else f"{root}**{e.p}"
        return super()._print_Pow(expr, rational=rational)


_PRINTER = _ExactPrinter()


class _Builder:
    """Builds a sympy number from a whitelisted syntax tree."""

    def __init__(self, text: str):
        self.text = text

    def fail(self, node: ast.AST, what: str = "unsupported expression") -> EntryError:
        segment = ast.get_source_segment(self.text, node) or self.text
        return EntryError(f"{what} '{_short(segment)}'")

    def build(self, node: ast.AST, depth: int) -> sympy.Expr:
        if depth > MAX_DEPTH:
            raise EntryError(f"expression nested too deeply in '{_short(self.text)}'")
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            operand = self.build(node.operand, depth + 1)
            return -operand if isinstance(node.op, ast.USub) else operand
        if isinstance(node, ast.BinOp):
            return self.checked(node, self.binary(node, depth))
        if isinstance(node, ast.Call):
            return self.call(node, depth)
        raise self.fail(node)

    def literal(self, node: ast.Constant) -> sympy.Expr:
        value = node.value
        if isinstance(value, bool) or not isinstance(value, (int, float, complex)):
            raise self.fail(node, "not a number:")
        if isinstance(value, complex):
            raise self.fail(node, "complex value")
        source = ast.get_source_segment(self.text, node) or repr(value)
        digits = sum(ch.isdigit() for ch in source)
        if digits > MAX_DIGITS:
            raise self.fail(node, f"number with more than {MAX_DIGITS} digits:")
        if isinstance(value, int):
            return sympy.Integer(value)
        mantissa, _, exponent = source.lower().replace("_", "").partition("e")
        if exponent and abs(int(exponent)) > MAX_DIGITS:
            raise self.fail(node, "exponent too large in")
        exact = Fraction(mantissa) * Fraction(10) ** int(exponent or 0)
        return sympy.Rational(exact.numerator, exact.denominator)

    def binary(self, node: ast.BinOp, depth: int) -> sympy.Expr:
        left = self.build(node.left, depth + 1)
        right = self.build(node.right, depth + 1)
        op = node.op
        if isinstance(op, ast.Add):
            return left + right
        if isinstance(op, ast.Sub):
            return left - right
        if isinstance(op, ast.Mult):
            return left * right
        if isinstance(op, ast.Div):
            if is_zero(right):
                raise self.fail(node, "division by zero in")
            return left / right
        if isinstance(op, ast.Pow):
            if not right.is_Integer:
                if right == sympy.Rational(1, 2):
                    return self.sqrt(node, left)
                raise self.fail(node, "only integer powers (or **(1/2)) are supported:")
            if abs(int(right)) > MAX_POWER:
                raise self.fail(node, f"power larger than {MAX_POWER} in")
            if right < 0 and is_zero(left):
                raise self.fail(node, "division by zero in")
            if left.is_Rational and abs(int(right)) * max(int(left.p).bit_length(), int(left.q).bit_length()) > (
                _MAX_RESULT_BITS
            ):
                raise self.fail(node, f"number with more than {MAX_RESULT_DIGITS} digits:")
            return left**right
        raise self.fail(node)

    def checked(self, node: ast.AST, value: sympy.Expr) -> sympy.Expr:
        """Refuse results that would make later arithmetic huge: rationals beyond :data:`MAX_RESULT_DIGITS`
        digits, and powers beyond :data:`MAX_POWER` (sympy merges (x**64)**64 into x**4096)."""
        parts = [value, *(value.args if value.is_Add or value.is_Mul else ())]
        parts += [f for part in parts[1:] if part.is_Mul for f in part.args]
        for part in parts:
            if part.is_Rational and max(int(part.p).bit_length(), int(part.q).bit_length()) > _MAX_RESULT_BITS:
                raise self.fail(node, f"number with more than {MAX_RESULT_DIGITS} digits:")
            if part.is_Pow and part.exp.is_Rational and abs(int(part.exp.p)) > MAX_POWER:
                raise self.fail(node, f"power larger than {MAX_POWER} in")
        return value

    def call(self, node: ast.Call, depth: int) -> sympy.Expr:
        if not (isinstance(node.func, ast.Name) and node.func.id == "sqrt"):
            raise self.fail(node)
        if len(node.args) != 1 or node.keywords:
            raise self.fail(node, "sqrt takes one argument:")
        return self.sqrt(node, self.build(node.args[0], depth + 1))

    def sqrt(self, node: ast.AST, radicand: sympy.Expr) -> sympy.Expr:
        if sign(radicand) < 0:
            raise self.fail(node, "complex value: square root of a negative number in")
        return sympy.sqrt(radicand)


def is_zero(x: sympy.Expr) -> bool:
    """Decide exactly whether a real algebraic number built from rationals and square roots is zero.

    Rationals are compared directly.  Anything with surds is first enclosed in an interval (rigorous interval
    arithmetic): an interval without 0 proves x ≠ 0.  Otherwise x is mapped into an exact number field
    (see :mod:`rkgen.exact`), where zero is decided by polynomial arithmetic, not by a tolerance.

    >>> is_zero(sympy.sqrt(2)*sympy.sqrt(3) - sympy.sqrt(6))
    True
    >>> is_zero(sympy.sqrt(5 + 2*sympy.sqrt(6)) - sympy.sqrt(2) - sympy.sqrt(3))
    True
    >>> is_zero(sympy.sqrt(2) - sympy.Rational(14142135623730951, 10**16))
    False
    """
    if x.is_Rational:
        return x == 0
    box = _enclose(x)
    if box is not None and (box.a > 0 or box.b < 0):
        return False
    from .exact import NumberField

    try:
        field = NumberField.for_numbers([x])
    except EntryError:
        raise
    except RkgenError as exc:
        raise EntryError(str(exc)) from None
    return field.is_zero(field.element(x))


def sign(x: sympy.Expr) -> int:
    """The sign (-1, 0, 1) of a real algebraic number, with an exact zero test.

    >>> sign(sympy.sqrt(2) - sympy.Rational(141421356237, 10**11))
    1
    >>> sign(sympy.sqrt(5 + 2*sympy.sqrt(6)) - sympy.sqrt(2) - sympy.sqrt(3))
    0
    """
    if x.is_Rational:
        return 1 if x.is_positive else (-1 if x.is_negative else 0)
    box = _enclose(x)
    if box is not None and (box.a > 0 or box.b < 0):
        return 1 if box.a > 0 else -1
    if is_zero(x):
        return 0
    prec = 30
    while True:
        value = x.evalf(prec)
        if value.is_real is False or not value.is_Number:
            # imaginary parts come only from roots of negatives, caught as they are built
            value = sympy.re(value)
        if abs(value) > sympy.Float(10) ** (-prec + 5):
            return 1 if value > 0 else -1
        prec *= 2
        if prec > 5000:  # a nonzero number this close to zero is not a tableau entry
            raise EntryError(f"cannot decide the sign of {_short(str(x))}")


def _enclose(x: sympy.Expr, bits: int = 120):
    """A rigorous interval (mpmath.iv) holding x, or None when x is not of the supported form or the
    enclosure runs into a root of an interval that reaches 0 or below."""
    global _IV
    if _IV is None:
        from mpmath.ctx_iv import MPIntervalContext

        _IV = MPIntervalContext()
    _IV.prec = bits
    try:
        return _interval(x, _IV)
    except (ValueError, ZeroDivisionError, TypeError, ArithmeticError):
        return None


_IV = None  # a private mpmath interval context (its precision is set per call)


def _interval(x, iv):
    if x.is_Rational:
        return iv.mpf(int(x.p)) / int(x.q)
    if x.is_Add:
        total = iv.mpf(0)
        for term in x.args:
            total = total + _interval(term, iv)
        return total
    if x.is_Mul:
        product = iv.mpf(1)
        for factor in x.args:
            product = product * _interval(factor, iv)
        return product
    if x.is_Pow and x.exp.is_Rational:
        q = int(x.exp.q)
        if q & (q - 1):
            raise ValueError("not a power of an iterated square root")
        value = _interval(x.base, iv)
        for _ in range(q.bit_length() - 1):
            if not value.a > 0:
                raise ValueError("root of an interval reaching 0")
            value = iv.sqrt(value)
        p = int(x.exp.p)
        if p < 0:
            if not (value.a > 0 or value.b < 0):
                raise ZeroDivisionError
            value, p = 1 / value, -p
        return value**p
    raise ValueError("unsupported")
