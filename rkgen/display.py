"""A Tableau's own display in Jupyter (``_repr_markdown_``, ``_repr_latex_``): the exact Butcher tableau and its
key properties, all decided exactly, without compiling anything.

This module sits beside the analyses, not beside the document: it reads a tableau's members (its order report,
partner, stability report) and imports only :mod:`rkgen.textfmt`, so a Tableau can show itself without an import
circle through :mod:`rkgen.derive`.
"""

from __future__ import annotations

import math
import re

import sympy

from .textfmt import float_tex, lx, md_text, sub

__all__ = ["tableau_facts", "tableau_markdown", "tableau_latex", "SHORT_ENTRY"]

#: Exact entries whose LaTeX is longer than this are shown as ≈ floats (the document's convention for short cells).
SHORT_ENTRY = 48


def _entry_tex(t, value) -> str:
    """The LaTeX of an exact entry, or ``\\approx`` its float when the LaTeX is long (as the document does)."""
    text = lx(value)
    if len(text) <= SHORT_ENTRY:
        return text
    F = t.number_field
    return r"\approx " + float_tex(F.to_float(F.element(value)), 10)


def _array(t) -> str:
    """The Butcher tableau c | A over b as a LaTeX array."""
    s = t.stages
    rows = [_entry_tex(t, t.c[i]) + " & " + " & ".join(_entry_tex(t, x) for x in t.A[i]) for i in range(s)]
    rows.append(r"\hline" + " & " + " & ".join(_entry_tex(t, x) for x in t.b))
    return f"\\begin{{array}}{{c|{'c' * s}}}\n" + " \\\\\n".join(rows) + "\n\\end{array}"


def interval_math(interval) -> str:
    """[left, 0]: exact when the end point is a short exact number, else ≈ to 10 digits.

    >>> from rkgen import load
    >>> print(*(interval_math(load(name).stability.interval) for name in ("euler", "rk4", "gauss2")), sep="; ")
    [-2, 0]; \\approx [-2.785293563, 0]; (-\\infty, 0]
    """
    left = float(interval.left)
    if math.isinf(left):
        return r"(-\infty, 0]"
    exact = interval.exact
    if exact is not None and not exact.has(sympy.CRootOf) and len(lx(exact)) <= SHORT_ENTRY:
        return rf"[{lx(exact)}, 0]"
    return rf"\approx [{float_tex(left, 10)}, 0]"


def tableau_facts(t) -> list[tuple[str, str]]:
    """The key properties of a tableau as (label, value), the value Markdown with ``$math$``: stages, structure,
    order, stage order, symplecticity, the partner, and linear stability. All decided exactly.

    >>> from rkgen import load
    >>> tableau_facts(load("heun3"))[2:6]
    [('order', '3'), ('stage order', '1'), ('symplectic', 'no'), ('symplectic partner', 'none: $b_{2} = 0$')]
    """
    r = t.order_report
    order = f"at least {r.order}" if r.order_is_lower_bound else str(r.order)
    facts = [
        ("stages", str(t.stages)),
        ("structure", md_text(t.structure_detail)),
        ("order", order),
        ("stage order", str(r.stage_order)),
        ("symplectic", "yes ($M = 0$)" if t.is_symplectic else "no"),
    ]
    if t.is_symplectic:
        partner = "the method itself"
    elif t.zero_weights:
        zeros = ", ".join(f"b_{sub(i + 1)}" for i in t.zero_weights)
        partner = f"none: ${zeros} = 0$"
    else:
        same = t.pair_report(t.partner).c_matches
        partner = "exists, $\\tilde c = c$" if same else "exists, $\\tilde c \\ne c$"
    facts.append(("symplectic partner", partner))
    st = t.stability
    facts.append(("A-stable", "yes" if st.a_stable else "no"))
    facts.append(("L-stable", "yes" if st.l_stable else "no"))
    facts.append(("stability interval", f"${interval_math(st.interval)}$"))
    return facts


def tableau_markdown(t) -> str:
    """A tableau in Markdown with math: its name and description, the exact tableau, a table of its properties.

    >>> from rkgen import load
    >>> print(tableau_markdown(load("euler")))  # doctest: +ELLIPSIS
    **euler**: Explicit (forward) Euler method, 1 stage, order 1...
    <BLANKLINE>
    $$
    \\begin{array}{c|c}
    0 & 0 \\\\
    \\hline & 1
    \\end{array}
    $$
    <BLANKLINE>
    | property | value |
    |:---|:---|
    | stages | 1 |
    | structure | explicit |
    ...
    """
    head = f"**{md_text(t.name)}**" + (f": {md_text(t.description)}" if t.description else "")
    rows = "\n".join(f"| {label} | {value} |" for label, value in tableau_facts(t))
    return f"{head}\n\n$$\n{_array(t)}\n$$\n\n| property | value |\n|:---|:---|\n{rows}\n"


_SAFE_TEXT = re.compile(r"[A-Za-z0-9 ,.:;()/+=-]*")


def _name_tex(name: str) -> str:
    """A tableau's name in math mode, typewriter (MathJax and LaTeX alike read it); odd names are not echoed."""
    if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", name):
        return r"\text{this tableau}"
    return r"\mathtt{" + re.sub(r"([_])|([+-])", lambda m: r"\_" if m.group(1) else "{" + m.group(2) + "}", name) + "}"


def _tex_value(value: str) -> str:
    """A fact's value inside a LaTeX array cell: text as \\text{} (rkgen's own words, plain ASCII), math as it is."""
    out = []
    for k, part in enumerate(value.split("$")):
        if not part:
            continue
        if k % 2:
            out.append(part)
        else:
            text = part.replace("\\", "")
            out.append(r"\text{" + (text if _SAFE_TEXT.fullmatch(text) else "?") + "}")
    return " ".join(out)


def tableau_latex(t) -> str:
    """A tableau as one display of LaTeX math, for ``_repr_latex_`` (MathJax in a notebook, LaTeX in nbconvert's
    PDF): the name, the exact tableau and an array of its properties.

    >>> from rkgen import load
    >>> print(tableau_latex(load("midpoint")))  # doctest: +ELLIPSIS
    $$
    \\mathtt{midpoint}\\qquad
    \\begin{array}{c|c}
    \\frac{1}{2} & \\frac{1}{2} \\\\
    \\hline & 1
    \\end{array}
    \\qquad
    \\begin{array}{ll}
    \\text{stages} & \\text{1} \\\\
    \\text{structure} & \\text{diagonally implicit (SDIRK: singly diagonal)} \\\\
    ...
    \\end{array}
    $$
    """
    rows = " \\\\\n".join(rf"\text{{{label}}} & {_tex_value(value)}" for label, value in tableau_facts(t))
    facts = f"\\begin{{array}}{{ll}}\n{rows}\n\\end{{array}}"
    return f"$$\n{_name_tex(t.name)}\\qquad\n{_array(t)}\n\\qquad\n{facts}\n$$"
