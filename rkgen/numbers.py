"""Exact numbers from text, without evaluating the text as code.

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
from fractions import Fraction

import sympy

from .errors import RkgenError

__all__ = ["EntryError", "parse_entry", "MAX_ENTRY_CHARS", "MAX_DIGITS"]

#: Longest entry string accepted (a 5-stage Gauss entry is under 200 characters).
MAX_ENTRY_CHARS = 2000
#: Most digits in one number literal, and largest decimal exponent in scientific notation.
MAX_DIGITS = 400
#: Largest absolute integer exponent of ``**``.
MAX_POWER = 64
#: Deepest expression nesting.
MAX_DEPTH = 60


class EntryError(RkgenError):
    """An entry that is not an exact real number of the accepted form."""


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


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
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        raise EntryError(f"not a number or arithmetic expression: '{_short(text)}'") from None
    try:
        result = _Builder(text).build(tree.body, 0)
    except RecursionError:
        raise EntryError(f"expression nested too deeply in '{_short(text)}'") from None
    return result


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
            return self.binary(node, depth)
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
            return left**right
        raise self.fail(node)

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

    Rationals are compared directly; anything with surds is mapped into an exact number field
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
    from .exact import NumberField

    field = NumberField.for_numbers([x])
    return field.is_zero(field.element(x))


def sign(x: sympy.Expr) -> int:
    """The sign (-1, 0, 1) of a real algebraic number, with an exact zero test.

    >>> sign(sympy.sqrt(2) - sympy.Rational(141421356237, 10**11))
    1
    """
    if x.is_Rational:
        return 1 if x.is_positive else (-1 if x.is_negative else 0)
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
