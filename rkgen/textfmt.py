"""Small formatters of numbers and text shared by the derivation (:mod:`rkgen.derive`) and a Tableau's display in
Jupyter (:mod:`rkgen.display`). This module imports no other part of rkgen, so the analyses' side of the package
(the Tableau and its display) and the document's side can both use it without an import circle.
"""

from __future__ import annotations

import re

import sympy

__all__ = ["lx", "sub", "float_tex", "md_text"]


def lx(x) -> str:
    """LaTeX of an exact number (sympy's printer)."""
    return sympy.latex(sympy.sympify(x))


def sub(*indices: int) -> str:
    """A LaTeX subscript of 1-based indices: ``{21}``, or ``{10,1}`` once an index has two digits."""
    sep = "," if any(k >= 10 for k in indices) else ""
    return "{" + sep.join(str(k) for k in indices) + "}"


def float_tex(x: float, digits: int = 6) -> str:
    """A float to ``digits`` digits in LaTeX: ``0.0469101``, ``5.16141 \\times 10^{-5}``."""
    text = f"{x:.{digits}g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return rf"{mantissa} \times 10^{{{int(exponent)}}}"


_MD_SPECIAL = re.compile(r"([\\`*_$<>\[\]|#&])")


def md_text(text: str) -> str:
    """Plain text for Markdown: characters with a meaning there are escaped.

    >>> md_text("a_b $5 <x> [1]")
    'a\\\\_b \\\\$5 \\\\<x\\\\> \\\\[1\\\\]'
    """
    return _MD_SPECIAL.sub(r"\\\1", text)
