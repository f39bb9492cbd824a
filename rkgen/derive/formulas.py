"""LaTeX of the exact objects: numbers, tableaux, trees, and the layer equations (:mod:`rkgen.adjoint`) as formulas.

The derivation document reads the same equations as the code printer (tableau -> adjoint equations (data) -> printer
-> template -> module); this module writes them as LaTeX.
"""

from __future__ import annotations

import re
from collections import Counter

import sympy

from ..adjoint import LayerEquations, Term
from ..textfmt import float_tex, lx, sub  # noqa: F401 -- float_tex: re-exported for the sections
from ..trees import Tree, tree


def coefficient_latex(name: str) -> str:
    """The LaTeX of a coefficient name of :mod:`rkgen.adjoint`: ``a_2_1`` -> ``a_{21}``.

    >>> coefficient_latex("a_2_1"), coefficient_latex("b_3"), coefficient_latex("w_10_2")
    ('a_{21}', 'b_{3}', 'w_{10,2}')
    """
    letter, *idx = name.split("_")
    return letter + "_" + sub(*(int(k) for k in idx))


def _signed(value) -> tuple[str, str]:
    """(sign, LaTeX of the magnitude) of an exact coefficient; sums are put in parentheses."""
    value = sympy.sympify(value)
    if value.is_Add:
        if value.could_extract_minus_sign():
            return "-", r"\left(" + lx(-value) + r"\right)"
        return "+", r"\left(" + lx(value) + r"\right)"
    if value.could_extract_minus_sign():
        return "-", lx(-value)
    return "+", lx(value)


def combination(pairs, empty: str = "0") -> str:
    """LaTeX of Σ value·vector for (exact value, vector LaTeX) pairs, signs folded in.

    >>> combination([(sympy.Rational(1, 2), "F_{1}"), (-1, "F_{2}"), (1, "F_{3}")])
    '\\\\frac{1}{2} F_{1} - F_{2} + F_{3}'
    """
    out = []
    for value, vector in pairs:
        sign, mag = _signed(value)
        term = vector if mag == "1" else f"{mag} {vector}"
        if not out:
            out.append(("-" if sign == "-" else "") + term)
        else:
            out.append(f" {sign} {term}")
    return "".join(out) if out else empty


def symbolic(terms: tuple[Term, ...], vector: str) -> str:
    """LaTeX of Σ name·vector over the terms of a stage equation, e.g. ``a_{21} F_{1}``."""
    parts = [f"{coefficient_latex(t.name)} {vector}_{sub(t.index + 1)}" for t in terms]
    return " + ".join(parts) if parts else "0"


def numeric(terms: tuple[Term, ...], vector: str) -> str:
    return combination([(t.value, f"{vector}_{sub(t.index + 1)}") for t in terms])


def vector_latex(values) -> str:
    return r"\left(" + ", ".join(lx(v) for v in values) + r"\right)^{T}"


def matrix_latex(rows) -> str:
    body = " \\\\\n".join(" & ".join(lx(x) for x in row) for row in rows)
    return "\\begin{pmatrix}\n" + body + "\n\\end{pmatrix}"


def tableau_latex(A, b, c) -> str:
    s = len(b)
    lines = [f"\\begin{{array}}{{c|{'c' * s}}}"]
    rows = [lx(c[i]) + " & " + " & ".join(lx(x) for x in A[i]) for i in range(s)]
    rows.append(r"\hline" + " & " + " & ".join(lx(x) for x in b))
    lines.append(" \\\\\n".join(rows))
    lines.append(r"\end{array}")
    return "\n".join(lines)


def longest(values) -> int:
    return max((len(lx(v)) for v in values), default=0)


def _glyphs(values) -> int:
    """A rough width of the widest value as typeset: its LaTeX without commands, braces and spaces."""
    return max((len(re.sub(r"\\[a-zA-Z]+|[{}^_\s]", "", lx(v))) for v in values), default=0)


def drawable(values, s: int) -> bool:
    """Whether an s-column matrix of these values fits a page."""
    return (s + 1) * (_glyphs(values) + 2) <= 120


def tree_tex(t: Tree) -> str:
    """The bracket notation of a tree as LaTeX, with multi-digit exponents braced (``\\tau^{10}``, not τ¹0).

    >>> from rkgen.trees import trees_of_order
    >>> tree_tex(trees_of_order(11)[0])
    '[\\\\tau^{10}]'
    """
    return re.sub(r"\^(\d{2,})", r"^{\1}", t.latex)


def phi_formula(t: Tree, consistent: bool) -> str:
    """Φ(t) in matrix notation from the tree: Φ(τ) = 1, Φ([t_1 … t_k]) = (AΦ(t_1)) ⊙ … ⊙ (AΦ(t_k)).

    A·1 is written c when the tableau is consistent (c = A·1); powers and ⊙ are componentwise.

    >>> from rkgen.trees import trees_of_order
    >>> [phi_formula(t, True) for t in trees_of_order(4)]
    ['c^{3}', 'c \\\\odot Ac', 'Ac^{2}', 'AAc']
    """
    if not t.children:
        return r"\mathbf{1}"
    factors = []
    for index, m in sorted(Counter(t.children).items(), key=lambda kv: (tree(kv[0]).order, kv[0])):
        child = tree(index)
        if not child.children:
            base = "c" if consistent else r"A\mathbf{1}"
        else:
            inner = phi_formula(child, consistent)
            base = "A" + (f"({inner})" if r"\odot" in inner else inner)
        if m > 1:
            base = f"{base}^{{{m}}}" if base == "c" else f"({base})^{{{m}}}"
        factors.append(base)
    return r" \odot ".join(factors)


def sci(x: float) -> str:
    return f"{x:.6e}"


def sci_tex(x: float, digits: int = 6, trim: bool = False) -> str:
    """A float in scientific notation as LaTeX, ``digits`` after the point (trailing zeros dropped with ``trim``).

    >>> sci_tex(0.07834391), sci_tex(0.0125, 3, trim=True), sci_tex(-2.5, 2)
    ('7.834391 \\\\times 10^{-2}', '1.25 \\\\times 10^{-2}', '-2.50')
    """
    mantissa, exponent = f"{x:.{digits}e}".split("e")
    if trim and "." in mantissa:
        mantissa = mantissa.rstrip("0").rstrip(".")
    e = int(exponent)
    return mantissa if e == 0 else rf"{mantissa} \times 10^{{{e}}}"


def magnitude(x: float) -> str:
    return f"{x:.0e}" if x else "0"


def magnitude_tex(x: float) -> str:
    """The order of magnitude of a (nonnegative) float as LaTeX: ``10^{-10}``, ``3 \\times 10^{-11}``, ``0``.

    >>> magnitude_tex(1.2e-10), magnitude_tex(2.6e-11), magnitude_tex(0.0)
    ('10^{-10}', '3 \\\\times 10^{-11}', '0')
    """
    if not x:
        return "0"
    mantissa, exponent = f"{x:.0e}".split("e")
    e = int(exponent)
    if e == 0:
        return mantissa
    return f"10^{{{e}}}" if mantissa == "1" else rf"{mantissa} \times 10^{{{e}}}"


def factor(x) -> str:
    """LaTeX of an exact number as a factor: sums and negative numbers in parentheses."""
    x = sympy.sympify(x)
    return r"\left(" + lx(x) + r"\right)" if x.is_Add or x.could_extract_minus_sign() else lx(x)


def forward_symbolic(st) -> str:
    rhs = "y_j" + (rf" + h_j\left({symbolic(st.terms, 'F')}\right)" if st.terms else "")
    return f"Y_{sub(st.i + 1)} = {rhs}"


def update_symbolic(eq: LayerEquations) -> str:
    return rf"y_{{j+1}} = y_j + h_j\left({symbolic(eq.update, 'F')}\right)"


def eta_symbolic(st) -> str:
    parts = ([f"{coefficient_latex(st.weight.name)} p"] if st.weight else []) + (
        [symbolic(st.terms, r"\mu")] if st.terms else []
    )
    return rf"\eta_{sub(st.i + 1)} = " + (" + ".join(parts) if parts else "0")


def eta_numeric(st) -> str:
    pairs = ([(st.weight.value, "p")] if st.weight else []) + [(x.value, rf"\mu_{sub(x.index + 1)}") for x in st.terms]
    return combination(pairs)
