r"""`rkgen derive`: the derivation of the exact gradient for one tableau, step by step, as a document.

Every formula of the document is computed from the objects the analysis and the code generator use: the
exact tableau (:class:`~rkgen.tableau.Tableau`), its order conditions (:mod:`rkgen.order`, trees from
:mod:`rkgen.trees`), the symplecticity matrix and the partner (:mod:`rkgen.partner`), the layer equations
(:func:`rkgen.adjoint.layer_equations`) and the generated module's text (:func:`rkgen.codegen.render_module`).
Nothing here is a second, hand-written copy of a tableau's formula.

The document is built once as a list of blocks (headings, paragraphs with inline math, display math,
tables, code) and printed twice: as Markdown with ``$...$`` / ``$$...$$`` math (GitHub-compatible) and as
standalone LaTeX that pdflatex compiles with a minimal TeX installation.  Output is deterministic: the
numerical check of section 7 uses a fixed seed and prints numbers in a fixed format.

>>> md = render("euler", "md")
>>> md.splitlines()[0]
'# Exact gradients for euler: a derivation'
>>> r"\tilde a_{11} &= b_{1} - \frac{b_{1} a_{11}}{b_{1}} = 1" in md    # the partner: backward Euler
True

Refresh the example documents with ``python -m rkgen.derive examples/derivations``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path

import numpy as np
import sympy

from . import __version__
from .adjoint import LayerEquations, Term, layer_equations
from .codegen import template_environment
from .errors import RkgenError
from .reference import Network
from .tableau import Tableau, load
from .trees import Tree, tree

__all__ = [
    "Derivation",
    "render",
    "equations_json",
    "run_derive",
    "write_examples",
    "compile_pdf",
    "EXAMPLES",
    "PDFLATEX_MISSING",
]

#: The built-ins whose documents are kept in examples/derivations/.
EXAMPLES = ("euler", "rk4", "midpoint", "gauss2")

#: The one-line error of ``--format pdf`` without a LaTeX installation.
PDFLATEX_MISSING = (
    "--format pdf needs pdflatex, which is not installed: install a TeX distribution "
    "(Debian/Ubuntu: apt install texlive-latex-base; elsewhere TeX Live, https://tug.org/texlive/), "
    "or write the LaTeX source with --format tex, which needs no LaTeX installation"
)

#: Trees up to this order are printed in full (tree, Φ(t), b·Φ(t), 1/γ(t)); higher orders get one summary line.
FULL_TREE_ORDER = 4
#: At most this many failing trees of order p+1 are listed by name when p+1 > FULL_TREE_ORDER.
MAX_FAILING_LISTED = 20
#: Exact values whose LaTeX is longer than this are shown as floats where a table needs a short cell.
SHORT_LATEX = 48


# ==================================================================================================
# The document model: spans (inline) and blocks, printed as Markdown or LaTeX
# ==================================================================================================


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Math:
    tex: str


@dataclass(frozen=True)
class Code:
    text: str


@dataclass(frozen=True)
class Bold:
    spans: list


_INLINE = re.compile(r"\$([^$]+)\$|`([^`]+)`|\*\*(.+?)\*\*")


def rich(*parts) -> list:
    """Spans from authored text (``$math$``, ```code```, ``**bold**`` recognised) and ready spans.

    >>> rich("the $b_i$ of `rk4`", Text("a_b"))
    [Text(text='the '), Math(tex='b_i'), Text(text=' of '), Code(text='rk4'), Text(text='a_b')]
    """
    out: list = []
    for part in parts:
        if not isinstance(part, str):
            out.extend(part if isinstance(part, list) else [part])
            continue
        pos = 0
        for m in _INLINE.finditer(part):
            if m.start() > pos:
                out.append(Text(part[pos : m.start()]))
            if m.group(1) is not None:
                out.append(Math(m.group(1)))
            elif m.group(2) is not None:
                out.append(Code(m.group(2)))
            else:
                out.append(Bold(rich(m.group(3))))
            pos = m.end()
        if pos < len(part):
            out.append(Text(part[pos:]))
    return out


@dataclass(frozen=True)
class Heading:
    level: int  # 2 section, 3 subsection
    spans: list


@dataclass(frozen=True)
class Para:
    spans: list


@dataclass(frozen=True)
class Display:
    """Display math: one equation, or several lines (aligned at ``&``) when ``aligned``."""

    lines: list
    aligned: bool = False


@dataclass(frozen=True)
class Table:
    header: list  # of span lists
    rows: list  # of lists of span lists
    align: str  # one letter (l, c, r) per column


@dataclass(frozen=True)
class Items:
    items: list  # of span lists


# -- Markdown ----------------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_$<>\[\]|#&])")


def md_text(text: str) -> str:
    """Plain text for Markdown: characters with a meaning there are escaped.

    >>> md_text("a_b $5 <x> [1]")
    'a\\\\_b \\\\$5 \\\\<x\\\\> \\\\[1\\\\]'
    """
    return _MD_SPECIAL.sub(r"\\\1", text)


def _md_spans(spans: list) -> str:
    out = []
    for sp in spans:
        if isinstance(sp, Text):
            out.append(md_text(sp.text))
        elif isinstance(sp, Math):
            out.append(f"${sp.tex.strip()}$")
        elif isinstance(sp, Code):
            fence = "``" if "`" in sp.text else "`"
            out.append(f"{fence}{sp.text}{fence}")
        else:
            out.append(f"**{_md_spans(sp.spans)}**")
    return "".join(out)


def _md_block(block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + _md_spans(block.spans)
    if isinstance(block, Para):
        return _md_spans(block.spans)
    if isinstance(block, Display):
        if block.aligned:
            body = " \\\\\n".join(block.lines)
            return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"
        return "$$\n" + "\n".join(block.lines) + "\n$$"
    if isinstance(block, Table):
        head = "| " + " | ".join(_md_spans(c) for c in block.header) + " |"
        rule = "|" + "|".join({"l": ":---", "c": ":---:", "r": "---:"}[a] for a in block.align) + "|"
        rows = ["| " + " | ".join(_md_spans(c) for c in row) + " |" for row in block.rows]
        return "\n".join([head, rule, *rows])
    if isinstance(block, Items):
        return "\n".join("- " + _md_spans(item) for item in block.items)
    raise TypeError(block)  # pragma: no cover


# -- LaTeX -------------------------------------------------------------------------------------------

_TEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "<": r"$<$",
    ">": r"$>$",
    "|": r"$\vert$",
}
_TEX_UNICODE = {
    "\u2013": "--",
    "\u2014": "---",
    "\u2018": "`",
    "\u2019": "'",
    "\u201c": "``",
    "\u201d": "''",
    "\u2026": r"\ldots{}",
    "\u00a0": "~",
}


def tex_text(text: str) -> str:
    """Plain text for LaTeX (ASCII out: accents are dropped, other symbols become '?').

    >>> tex_text("a_b & 50% {x} Runge\u2013Kutta, Sch\u00f6nlieb")
    'a\\\\_b \\\\& 50\\\\% \\\\{x\\\\} Runge--Kutta, Schonlieb'
    """
    out = []
    for ch in text:
        if ch in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[ch])
        elif ch in _TEX_UNICODE:
            out.append(_TEX_UNICODE[ch])
        elif ord(ch) < 128:
            out.append(ch if ch.isprintable() or ch == "\n" else " ")
        else:
            plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
            out.append(tex_text(plain) if plain else "?")
    return "".join(out)


def _tex_spans(spans: list) -> str:
    out = []
    for sp in spans:
        if isinstance(sp, Text):
            out.append(tex_text(sp.text))
        elif isinstance(sp, Math):
            out.append(f"${sp.tex.strip()}$")
        elif isinstance(sp, Code):
            out.append(r"\texttt{" + tex_text(sp.text) + "}")
        else:
            out.append(r"\textbf{" + _tex_spans(sp.spans) + "}")
    return "".join(out)


def _tex_block(block) -> str:
    if isinstance(block, Heading):
        cmd = {2: "section*", 3: "subsection*"}[block.level]
        return f"\\{cmd}{{{_tex_spans(block.spans)}}}"
    if isinstance(block, Para):
        return _tex_spans(block.spans)
    if isinstance(block, Display):
        if block.aligned:
            return "\\begin{align*}\n" + " \\\\\n".join(block.lines) + "\n\\end{align*}"
        return "\\[\n" + "\n".join(block.lines) + "\n\\]"
    if isinstance(block, Table):
        spec = "".join({"l": "l", "c": "c", "r": "r"}[a] for a in block.align)
        lines = ["\\begingroup\\small", f"\\begin{{longtable}}{{{spec}}}", "\\hline"]
        lines.append(" & ".join(_tex_spans(c) for c in block.header) + " \\\\")
        lines += ["\\hline", "\\endhead"]
        lines += [" & ".join(_tex_spans(c) for c in row) + " \\\\" for row in block.rows]
        lines += ["\\hline", "\\end{longtable}", "\\endgroup"]
        return "\n".join(lines)
    if isinstance(block, Items):
        return "\\begin{itemize}\n" + "\n".join("\\item{} " + _tex_spans(i) for i in block.items) + "\n\\end{itemize}"
    raise TypeError(block)  # pragma: no cover


# ==================================================================================================
# LaTeX of the exact objects
# ==================================================================================================


def lx(x) -> str:
    """LaTeX of an exact number (sympy's printer)."""
    return sympy.latex(sympy.sympify(x))


def sub(*indices: int) -> str:
    """A LaTeX subscript of 1-based indices: ``{21}``, or ``{10,1}`` once an index has two digits."""
    sep = "," if any(k >= 10 for k in indices) else ""
    return "{" + sep.join(str(k) for k in indices) + "}"


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


def _longest(values) -> int:
    return max((len(lx(v)) for v in values), default=0)


def _glyphs(values) -> int:
    """A rough width of the widest value as typeset: its LaTeX without commands, braces and spaces."""
    return max((len(re.sub(r"\\[a-zA-Z]+|[{}^_\s]", "", lx(v))) for v in values), default=0)


def drawable(values, s: int) -> bool:
    """Whether an s-column matrix of these values fits a page."""
    return (s + 1) * (_glyphs(values) + 2) <= 120


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


def _float_tex(x: float, digits: int = 6) -> str:
    """A float to ``digits`` digits in LaTeX: ``0.0469101``, ``5.16141 \\cdot 10^{-5}``."""
    text = f"{x:.{digits}g}"
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    return rf"{mantissa} \cdot 10^{{{int(exponent)}}}"


def _sci(x: float) -> str:
    return f"{x:.6e}"


def _magnitude(x: float) -> str:
    return f"{x:.0e}" if x else "0"


# ==================================================================================================
# Section 7: the numerical check, on the numpy reference network of the same layer equations
# ==================================================================================================

#: The random instance of section 7: m samples of width d through N layers; the seed and the steps.
CHECK_M, CHECK_D, CHECK_N = 2, 2, 2
CHECK_SEED = 20190601
CHECK_STEPS = (0.4, -0.3)
FD_STEP = 1e-6


@dataclass(frozen=True)
class CheckResult:
    rows: list  # (label LaTeX, adjoint, finite difference)
    max_diff: float
    max_fd: float
    stable_diff: float
    p_form_diff: float | None
    misprint_diff: float | None


def _instance():
    rng = np.random.default_rng(CHECK_SEED)
    y0 = rng.normal(size=(CHECK_M, CHECK_D))
    K = rng.normal(size=(CHECK_N, CHECK_D, CHECK_D))
    beta = rng.normal(size=(CHECK_N, CHECK_D))
    W = rng.normal(size=(CHECK_M, CHECK_D))
    return y0, K, beta, np.array(CHECK_STEPS), W


def _central(net: Network, params, W, kind):
    """Central differences of J = Σ W ⊙ y_N in every entry of (y0, K, beta, h)."""
    grads = []
    for index, x in enumerate(params):
        g = np.zeros_like(x)
        for pos in np.ndindex(x.shape):
            values = []
            for sign in (1.0, -1.0):
                shifted = [v.copy() for v in params]
                shifted[index][pos] += sign * FD_STEP
                yN, _ = net.forward(*shifted, kind)
                values.append(float(np.sum(W * yN)))
            g[pos] = (values[0] - values[1]) / (2 * FD_STEP)
        grads.append(g)
    return grads


def _max_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def numerical_check(
    t: Tableau, eq: LayerEquations | None = None, fields: tuple[str, ...] = ("resnet", "stable")
) -> CheckResult:
    """Adjoint gradient (ξ form, from the backward stages) against central differences, on the instance of
    :func:`_instance`: resnet field in full, the stable field as one number; the P form and the misprinted
    partner as one number each where every b_i ≠ 0."""
    eq = eq or layer_equations(t)
    net = Network(eq)
    y0, K, beta, h, W = _instance()
    params = [y0, K, beta, h]
    results = {}
    for kind in fields:
        yN, tape = net.forward(y0, K, beta, h, kind)
        if tape.failures:  # pragma: no cover
            raise RkgenError("the numerical check's Newton iteration did not converge")
        adj = net.backward(tape, W)
        fd = _central(net, params, W, kind)
        results[kind] = (adj, fd, tape)
    adj, fd, tape = results["resnet"]
    labels = []
    for q, a in np.ndindex(y0.shape):
        labels.append(rf"(y_0)_{sub(q + 1, a + 1)}")
    for j, a, k in np.ndindex(K.shape):
        labels.append(rf"(K_{j})_{sub(a + 1, k + 1)}")
    for j, a in np.ndindex(beta.shape):
        labels.append(rf"(\beta_{j})_{sub(a + 1)}")
    for j in range(h.shape[0]):
        labels.append(rf"h_{j}")
    flat_adj = np.concatenate([x.ravel() for x in adj])
    flat_fd = np.concatenate([x.ravel() for x in fd])
    rows = list(zip(labels, flat_adj.tolist(), flat_fd.tolist(), strict=True))
    p_form_diff = misprint_diff = None
    if eq.p_form is not None:
        right = net.backward(tape, W, form="p")
        p_form_diff = _max_diff(right, fd)
        wrong = net.backward(tape, W, form="p", weights=misprinted_weights(t))
        misprint_diff = _max_diff(wrong, fd)
    stable_adj, stable_fd, _ = results.get("stable", results["resnet"])
    return CheckResult(
        rows=rows,
        max_diff=float(np.max(np.abs(flat_adj - flat_fd))),
        max_fd=float(np.max(np.abs(flat_fd))),
        stable_diff=_max_diff(stable_adj, stable_fd),
        p_form_diff=p_form_diff,
        misprint_diff=misprint_diff,
    )


#: Explicit methods of [000, Table 1] on which the misprint of (19) is shown numerically.
MISPRINT_WITNESSES = ("heun2", "kutta3", "rk4")


@cache
def misprint_evidence(name: str) -> tuple[float, float]:
    """(largest difference from finite differences of the P-form gradient with the true partner, the same with
    the misprinted partner) on the random network of section 7, for a built-in tableau."""
    c = numerical_check(load(name), fields=("resnet",))
    return c.p_form_diff, c.misprint_diff


def transposed(t: Tableau) -> Tableau:
    """(Aᵀ, b): the misprinted conditions (19) of 000/001, b_i ã_ij + b_j a_ij − b_i b_j = 0, are the true
    conditions for this tableau, so its partner is the "partner" the misprint defines."""
    return Tableau(f"{t.name}_transposed", tuple(zip(*t.A, strict=True)), t.b, t.c, source=f"transpose of {t.name}")


def partner_entries(t: Tableau, misprint: bool = False) -> list[list]:
    """ã_ij as field elements of ``t.number_field`` (:func:`rkgen.partner.partner_entry`); with ``misprint``,
    those of the misprinted conditions, i.e. the partner of :func:`transposed`.  Requires every b_i ≠ 0."""
    from .partner import partner_entry

    source = transposed(t) if misprint else t
    s = t.stages
    return [[partner_entry(source, i, j) for j in range(s)] for i in range(s)]


def misprinted_weights(t: Tableau) -> list[list[tuple[int, float]]]:
    """The P-form weights w_ik = b_k − ã_ik with ã from the misprinted conditions (floats, zeros dropped)."""
    F = t.number_field
    b = t.exact[1]
    rows = []
    for row in partner_entries(t, misprint=True):
        ws = [(k, F.sub(b[k], x)) for k, x in enumerate(row)]
        rows.append([(k, F.to_float(w)) for k, w in ws if not w.is_zero()])
    return rows


# ==================================================================================================
# Section 8: where the generated module implements which equation
# ==================================================================================================


def _find_block(lines: list[str], block: str) -> tuple[int, int] | None:
    """1-based (first, last) line of ``block`` (a printed code fragment) inside ``lines``."""
    want = [line.rstrip() for line in block.splitlines()]
    n = len(want)
    for k in range(len(lines) - n + 1):
        if lines[k : k + n] == want:
            return k + 1, k + n
    return None


def _find_function(lines: list[str], name: str) -> tuple[int, int] | None:
    """1-based (first, last) line of the top-level function ``name`` (its decorator included)."""
    start = next((k for k, line in enumerate(lines) if line.startswith(f"def {name}(")), None)
    if start is None:
        return None
    first = start
    while first > 0 and lines[first - 1].startswith("@"):
        first -= 1
    last = start
    for k in range(start + 1, len(lines)):
        if lines[k] and not lines[k][0].isspace():
            break
        if lines[k].strip():
            last = k
    return first + 1, last + 1


def _find_comment(lines: list[str], prefix: str) -> int | None:
    return next((k + 1 for k, line in enumerate(lines) if line.strip().startswith(prefix)), None)


def _span(lines: tuple[int, int] | int | None) -> str:
    if lines is None:
        return "not found"
    if isinstance(lines, int):
        return f"line {lines}"
    a, b = lines
    return f"line {a}" if a == b else f"lines {a}-{b}"


def code_locations(t: Tableau, eq: LayerEquations, source: str) -> list[tuple[str, str, str]]:
    """(equation LaTeX, where, what) rows: the lines of the module text that implement each equation."""
    from .codegen import printer

    lines = [line.rstrip() for line in source.splitlines()]
    rows = []
    rows.append(
        (
            r"f(y) = \sigma(Ky + \beta),\ -K^{T}\sigma(Ky + \beta)",
            _span(_find_function(lines, "_field")),
            "`_field`: the vector field on a block of samples",
        )
    )
    if t.structure == "explicit":
        for st in eq.forward:
            rows.append(
                (
                    _forward_symbolic(st),
                    _span(_find_block(lines, printer.forward_stage_code(st))),
                    "`_forward_blocks`: stage, then $F = f(Y)$",
                )
            )
    else:
        if t.structure == "diagonally implicit":
            solver, what = "_stage_solve", "Newton for one stage of one sample"
            equation = r"Y_i = y_j + h_j \sum_{l < i} a_{il} F_l + h_j a_{ii} f(Y_i)"
        else:
            solver, what = "_stages_solve", "Newton for the coupled stages of one sample"
            equation = r"Y = \mathbf{1} \otimes y_j + h_j (A \otimes I) F(Y)"
        rows.append((equation, _span(_find_function(lines, solver)), f"`{solver}`: {what}"))
        rows.append(
            (
                r"J = \partial f / \partial y",
                _span(_find_function(lines, "_f_and_jacobian")),
                "`_f_and_jacobian`: $f$ and its Jacobian at one sample",
            )
        )
    rows.append(
        (
            _update_symbolic(eq),
            _span(_find_block(lines, printer.update_code(eq))),
            "`_forward_blocks`: the layer update",
        )
    )
    if t.structure == "explicit":
        for st in eq.backward:
            rows.append(
                (
                    _eta_symbolic(st),
                    _span(_find_block(lines, printer.backward_stage_code(st))),
                    r"`_backward_blocks`: $\eta_i$, then `_adjoint_stage`",
                )
            )
    elif t.structure == "diagonally implicit":
        rows.append(
            (
                r"(I - h_j a_{ii} J_i^{T})\eta_i = b_i p + \sum_{k > i} a_{ki}\mu_k",
                _span(_find_comment(lines, "# eta_i = b_i p + sum_(k>i) a_ki mu_k")),
                "`_backward_blocks`: one $d \\times d$ solve per stage and sample",
            )
        )
    else:
        rows.append(
            (
                r"(I - h_j (A^{T} \otimes I) \mathrm{diag}(J_k^{T}))\eta = b \otimes p",
                _span(_find_comment(lines, "# (I - h (A^T kron I) blockdiag(J_k^T)) eta = b kron p")),
                "`_backward_blocks`: one $sd \\times sd$ solve per sample",
            )
        )
    if t.structure != "explicit":
        rows.append((r"J_k^{T}", _span(_find_function(lines, "_jacobian_t")), "`_jacobian_t`"))
        rows.append((r"Mx = r", _span(_find_function(lines, "_solve")), "`_solve`: Gaussian elimination"))
    rows.append(
        (
            r"\mu_i = h_j J_i^{T}\eta_i,\ \partial\mathcal{J}/\partial K_j,\ \partial\mathcal{J}/\partial\beta_j",
            _span(_find_function(lines, "_adjoint_stage")),
            "`_adjoint_stage`: both fields",
        )
    )
    rows.append(
        (
            r"\partial\mathcal{J}/\partial h_j = \sum_i \eta_i \cdot F_i,\ \partial\mathcal{J}/\partial y_j = p + "
            r"\sum_i \mu_i",
            _span(_find_comment(lines, "# dJ/dh_j = sum_i eta_i . F_i")),
            "`_backward_blocks`",
        )
    )
    rows.append(("", _span(_find_function(lines, "forward")), "`forward`: the public entry point"))
    rows.append(("", _span(_find_function(lines, "backward")), "`backward`: the public entry point"))
    return rows


def _forward_symbolic(st) -> str:
    rhs = "y_j" + (rf" + h_j\left({symbolic(st.terms, 'F')}\right)" if st.terms else "")
    return f"Y_{sub(st.i + 1)} = {rhs}"


def _update_symbolic(eq: LayerEquations) -> str:
    return rf"y_{{j+1}} = y_j + h_j\left({symbolic(eq.update, 'F')}\right)"


def _eta_symbolic(st) -> str:
    parts = ([f"{coefficient_latex(st.weight.name)} p"] if st.weight else []) + (
        [symbolic(st.terms, r"\mu")] if st.terms else []
    )
    return rf"\eta_{sub(st.i + 1)} = " + (" + ".join(parts) if parts else "0")


def _eta_numeric(st) -> str:
    pairs = ([(st.weight.value, "p")] if st.weight else []) + [(x.value, rf"\mu_{sub(x.index + 1)}") for x in st.terms]
    return combination(pairs)


# ==================================================================================================
# The document
# ==================================================================================================

REFERENCES = [
    "[000] M. Benning, E. Celledoni, M. J. Ehrhardt, B. Owren, C.-B. Schoenlieb, Deep learning as optimal "
    "control problems: models and numerical methods, J. Comput. Dyn. 6(2) (2019) 171-198.",
    "[001] M. Benning, E. Celledoni, M. J. Ehrhardt, B. Owren, C.-B. Schoenlieb, Deep learning as optimal "
    "control problems, IFAC-PapersOnLine 54(9) (2021) 620-623.",
    "[HLW] E. Hairer, C. Lubich, G. Wanner, Geometric Numerical Integration, 2nd ed., Springer 2006, "
    "Sec. III.1 (trees, order conditions) and VI.4 (symplectic partitioned Runge-Kutta methods, Thm. VI.4.6).",
    "[Hager] W. W. Hager, Runge-Kutta methods in optimal control and the transformed adjoint system, "
    "Numer. Math. 87 (2000) 247-282.",
    "[SS] J. M. Sanz-Serna, Symplectic Runge-Kutta schemes for adjoint equations, automatic differentiation, "
    "optimal control, and more, SIAM Review 58(1) (2016) 3-33.",
]


class Derivation:
    """The derivation document of one tableau: :attr:`blocks`, printed by :meth:`markdown` / :meth:`latex`."""

    def __init__(self, tableau: Tableau | str):
        self.t = load(tableau) if not isinstance(tableau, Tableau) else tableau
        self.eq = layer_equations(self.t)
        self.F = self.t.number_field

    # -- shared facts ----------------------------------------------------------------------------------
    @cached_property
    def check(self) -> CheckResult:
        return numerical_check(self.t, self.eq)

    @cached_property
    def module_source(self) -> str:
        from .codegen import render_module

        return render_module(self.t)

    @cached_property
    def misprint_differences(self) -> list[tuple[int, int]]:
        """(i, j) where the partner of the misprinted conditions differs from the partner (0-based; empty when
        they agree or when some b_i = 0)."""
        t = self.t
        if t.zero_weights:
            return []
        wrong, right = partner_entries(t, misprint=True), partner_entries(t)
        s = t.stages
        return [(i, j) for i in range(s) for j in range(s) if not self.F.sub(wrong[i][j], right[i][j]).is_zero()]

    @cached_property
    def is_symmetric(self) -> bool:
        """A = Aᵀ exactly (then the misprint of (19) changes nothing)."""
        A, _, _ = self.t.exact
        s = self.t.stages
        return all(self.F.sub(A[i][j], A[j][i]).is_zero() for i in range(s) for j in range(s))

    def short(self, values, limit: int = SHORT_LATEX) -> bool:
        return _longest(values) <= limit

    def exact_or_float(self, value, limit: int = SHORT_LATEX) -> str:
        """The LaTeX of an exact value, or its float (with ≈) when the LaTeX is long."""
        text = lx(value)
        if len(text) <= limit:
            return text
        return r"\approx " + _float_tex(self.F.to_float(self.F.element(value)), 10)

    def element_latex(self, el) -> str:
        """LaTeX of a field element: exact when rational or in a quadratic field, else a float with ≈."""
        F = self.F
        if el.degree() < 1 or F.degree <= 2:
            return self.exact_or_float(F.to_sympy(el))
        return r"\approx " + _float_tex(F.to_float(el), 10)

    def vector_of_elements(self, elements) -> str:
        """A column vector of field elements: exact when short (and rational or quadratic), else rounded."""
        F = self.F
        if F.degree <= 2:
            values = [F.to_sympy(x) for x in elements]
            if self.short(values, 40):
                return vector_latex(values)
        parts = [lx(F.to_sympy(x)) if x.degree() < 1 else _float_tex(F.to_float(x)) for x in elements]
        prefix = r"\approx" if any(x.degree() >= 1 for x in elements) else ""
        return prefix + r"\left(" + ", ".join(parts) + r"\right)^{T}"

    @property
    def title(self) -> str:
        return f"Exact gradients for {self.t.name}: a derivation"

    # -- the sections ------------------------------------------------------------------------------------
    @cached_property
    def blocks(self) -> list:
        out = [self._preface()]
        for section in (
            self._problem,
            self._tableau,
            self._order,
            self._symplecticity,
            self._partner,
            self._adjoint,
            self._check,
            self._code,
            self._references,
        ):
            out.extend(section())
        return out

    def _preface(self):
        t = self.t
        cmd = f"rkgen derive {t.name}" if t.source.startswith("built-in") else "rkgen derive TABLEAU"
        return Para(
            rich(
                "Written by rkgen ",
                Text(__version__),
                " (",
                Code(cmd),
                "). Every formula that involves the tableau is computed by rkgen from the exact tableau: "
                "the same order analysis, partner tableau and layer equations from which the code generator "
                "writes the network module. The numbers of section 7 were computed when this document was written.",
            )
        )

    # 1 ---------------------------------------------------------------------------------------------------
    def _problem(self):
        t, eq = self.t, self.eq
        s = t.stages
        if self._numeric_ok(eq.update, 24):
            update = combination([(x.value, f"F_{sub(x.index + 1)}") for x in eq.update])
        else:
            update = symbolic(eq.update, "F")
        return [
            Heading(2, rich("1. The problem: a network as an optimal control problem")),
            Para(
                rich(
                    "A residual network of $N$ layers maps an input $y_0 = x$ to $y_N$; layer $j$ has parameters "
                    "$u_j = (K_j, \\beta_j)$ and a step $h_j$. Benning et al. [000, sections 2-3] read training as "
                    "an optimal control problem: minimise a cost of the final state subject to an ODE,"
                )
            ),
            Display([r"\min_{u}\ \mathcal{J}(y(T)) \quad \text{subject to} \quad \dot y = f(y, u), \quad y(0) = x,"]),
            Para(
                rich(
                    "with the field $f(y, u) = \\sigma(Ky + \\beta)$ (rkgen's `resnet` field) or "
                    "$f(y, u) = -K^{T}\\sigma(Ky + \\beta)$ (the `stable` field). With the Hamiltonian "
                    "$H(y, p, u) = p^{T} f(y, u)$, the first-order conditions of optimality (Pontryagin; "
                    "[000, section 2.4]) are the boundary value problem"
                )
            ),
            Display(
                [
                    r"&\dot y = \partial_p H = f(y, u), \qquad \dot p = -\partial_y H = -\partial_y f(y, u)^{T} p, "
                    r"\qquad 0 = \partial_u H = \partial_u f(y, u)^{T} p,",
                    r"&y(0) = x, \qquad p(T) = \nabla \mathcal{J}(y(T)).",
                ],
                aligned=True,
            ),
            Para(
                rich(
                    "**Discretise, then optimise.** The network is this ODE discretised by ",
                    Code(t.name),
                    f", one step per layer, with the parameters of layer $j$ shared by its $s = {s}$ stages:",
                )
            ),
            Display(
                [
                    r"Y_i = y_j + h_j \sum_{l=1}^{" + str(s) + r"} a_{il} F_l, \qquad F_i = f(Y_i, u_j), \qquad "
                    r"y_{j+1} = y_j + h_j\left(" + update + r"\right).",
                ]
            ),
            Para(
                rich(
                    "Training needs the gradient of $\\mathcal{J}(y_N)$ with respect to every $K_j$, $\\beta_j$, $h_j$ "
                    "(and $y_0$): the discrete adjoint of this map. **Optimise, then discretise.** Alternatively, "
                    "integrate the adjoint equation for $p$ backwards with a second Runge-Kutta method "
                    "$(\\tilde A, \\tilde b, \\tilde c)$, as a partitioned method [000, eqs. (16)-(18)]. When the two "
                    "tableaux satisfy the symplecticity conditions (19) (section 4), the quadratic invariant "
                    "$p^{T} v$ of the variational equation is preserved and the two routes give the same equations "
                    "[000, Prop. 3.1; Hager; SS]: the backward Runge-Kutta pass is then not an approximation of "
                    "the continuous gradient but the exact gradient of the network. The partner "
                    "$(\\tilde A, \\tilde b, \\tilde c)$ is derived in section 5 and the stage-wise gradient "
                    "[000, Prop. 3.2; 001, Prop. 1] in section 6."
                )
            ),
        ]

    # 2 ---------------------------------------------------------------------------------------------------
    def _tableau(self):
        t = self.t
        s = t.stages
        out = [Heading(2, rich("2. The tableau"))]
        facts = []
        if t.description:
            facts.append(rich("Description: ", Text(t.description)))
        if t.reference:
            facts.append(rich("Reference: ", Text(t.reference)))
        facts.append(rich("Source: ", Text(t.source or t.name)))
        out.append(Items(facts))
        entries = [*t.b, *t.c, *(x for row in t.A for x in row)]
        if drawable(entries, s):
            out.append(Para(rich("The Butcher tableau, exactly:")))
            out.append(Display([tableau_latex(t.A, t.b, t.c)]))
        else:
            out.append(
                Para(
                    rich(
                        "The Butcher tableau is too wide to draw; its pattern ($\\ast$ for a nonzero entry) and then "
                        "its "
                        "entries, exactly:"
                    )
                )
            )
            pattern = [[r"\ast" if nz else "0" for nz in row] for row in t.nonzero]
            body = " \\\\\n".join(" & ".join(row) for row in pattern)
            out.append(Display([r"A \sim \begin{pmatrix}" + "\n" + body + "\n" + r"\end{pmatrix}"]))
            lines = [rf"c_{sub(i + 1)} &= {lx(x)}" for i, x in enumerate(t.c)]
            lines += [rf"b_{sub(i + 1)} &= {lx(x)}" for i, x in enumerate(t.b)]
            lines += [
                rf"a_{sub(i + 1, j + 1)} &= {lx(x)}"
                for i, row in enumerate(t.A)
                for j, x in enumerate(row)
                if t.nonzero[i][j]
            ]
            out.append(Display(lines, aligned=True))
        F = self.F
        if F.is_rational:
            field = "All entries are rational; every equality below is decided exactly in $\\mathbb{Q}$."
            field = field.replace("\\mathbb{Q}", "\\mathrm{Q}")
        else:
            field = (
                f"The entries lie in the number field $\\mathrm{{Q}}(\\theta)$ of degree {F.degree}, "
                f"$\\theta = {lx(F.theta)}$; every equality below is decided by exact arithmetic in this field, "
                "never by rounding."
            )
        out.append(Para(rich(field)))
        if t.is_consistent:
            out.append(Para(rich("The nodes are the row sums, $c = A\\mathbf{1}$.")))
        else:
            sums = ", ".join(lx(x) for x in t.row_sums)
            out.append(
                Para(
                    rich(
                        f"The nodes $c$ differ from the row sums $A\\mathbf{{1}} = ({sums})$; the order conditions "
                        "below "
                        "use $A\\mathbf{1}$ where a tree has a leaf, and a network with one parameter set per layer "
                        "never uses $c$."
                    )
                )
            )
        out.append(Para(rich(f"**Structure: {t.structure_detail}.** ", *self._structure_meaning())))
        return out

    def _structure_meaning(self):
        t = self.t
        if t.structure == "explicit":
            return rich(
                "$a_{ij} = 0$ for $j \\ge i$: the forward pass computes $Y_1, F_1, Y_2, F_2, \\dots$ one after "
                "another with no solve, and the backward pass is a reverse sweep $i = s, \\dots, 1$ that needs "
                "only the stages already computed (section 6)."
            )
        if t.structure == "diagonally implicit":
            return rich(
                "$a_{ij} = 0$ for $j > i$ and some $a_{ii} \\ne 0$: the forward pass solves one nonlinear "
                "$d \\times d$ system per stage with $a_{ii} \\ne 0$ (Newton), stage after stage; the backward "
                "pass runs $i = s, \\dots, 1$ and solves one linear $d \\times d$ system per such stage "
                "(section 6)."
            )
        return rich(
            "some $a_{ij} \\ne 0$ with $j > i$: all stages are coupled. The forward pass solves one nonlinear "
            "system of size $sd$ per sample (Newton), and the backward pass one linear system of size $sd$ "
            "(section 6)."
        )

    # 3 ---------------------------------------------------------------------------------------------------
    def _order(self):
        from .order import ElementaryWeights

        t = self.t
        r = t.order_report
        p = r.order
        F = self.F
        top = min(p + 1, r.max_order)
        full = min(top, FULL_TREE_ORDER)
        out = [Heading(2, rich("3. Order"))]
        out.append(
            Para(
                rich(
                    "The method has order $p$ if and only if $b^{T}\\Phi(t) = 1/\\gamma(t)$ for every rooted tree $t$ "
                    "with $\\lvert t\\rvert \\le p$ nodes [HLW, III.1]. The stage vector $\\Phi(t)$ follows the tree: "
                    "$\\Phi(\\tau) = \\mathbf{1}$ for the single node, and $\\Phi([t_1 \\dots t_k]) = "
                    "(A\\Phi(t_1)) \\odot \\dots \\odot (A\\Phi(t_k))$ for the tree whose root carries the subtrees "
                    "$t_1, \\dots, t_k$ ($\\odot$ and powers componentwise). The density $\\gamma(t)$ is $\\lvert "
                    "t\\rvert$ "
                    "times the densities of the subtrees. The conditions are decided exactly, tree by tree."
                )
            )
        )
        bound = " (at least: every tree checked holds)" if r.order_is_lower_bound else ""
        out.append(
            Para(
                rich(
                    f"**Result: order $p = {p}$**{bound}, exactly. The trees up to order {top} follow"
                    + (f", in full up to order {full}." if full < top else ".")
                )
            )
        )
        W = ElementaryWeights(t)
        rounded = False
        rows = []
        conditions = [c for c in r.conditions if c.tree.order <= full]
        for cond in conditions:
            tr = cond.tree
            phi = self.vector_of_elements(W.phi(tr))
            rounded = rounded or phi.startswith(r"\approx")
            inv = sympy.Rational(1, tr.gamma)
            if cond.holds:
                weight, status = lx(inv), [Text("holds")]
            else:
                weight = self.exact_or_float(cond.residual + inv, 24)
                status = [Text("fails by "), Math(self._residual_math(cond))]
            rows.append(
                [
                    [Math(tr.latex)],
                    [Text(str(tr.order))],
                    [Text(str(tr.gamma))],
                    [Math(phi_formula(tr, t.is_consistent))],
                    [Math(phi)],
                    [Math(weight)],
                    status,
                ]
            )
        header = [
            rich(x)
            for x in (
                "tree $t$",
                "$\\lvert t\\rvert$",
                "$\\gamma(t)$",
                "$\\Phi(t)$",
                f"$\\Phi(t)$ for {self._safe_name}",
                "$b^{T}\\Phi(t)$",
                "condition",
            )
        ]
        out.append(Table(header, rows, "lrrllll"))
        if rounded:
            out.append(
                Para(
                    rich(
                        "Irrational entries of $\\Phi(t)$ (in the number field of degree "
                        f"{F.degree}) are shown rounded ($\\approx$); $b^{{T}}\\Phi(t)$ is compared with "
                        "$1/\\gamma(t)$ "
                        "exactly."
                    )
                )
            )
        if top > full:
            items = []
            for n in range(full + 1, top + 1):
                level = r.conditions_of_order(n)
                bad = [c for c in level if not c.holds]
                if not bad:
                    items.append(rich(f"Order {n}: {len(level)} trees, every condition holds exactly"))
                else:
                    largest = max(abs(c.residual_float) for c in bad)
                    items.append(
                        rich(
                            f"Order {n}: {len(level)} trees, {len(bad)} of them fail; the largest "
                            f"$\\lvert b^{{T}}\\Phi(t) - 1/\\gamma(t)\\rvert$ is {largest:.3e}"
                        )
                    )
            if len(items) == 1:
                out.append(Para(rich(*items[0], ".")))
            else:
                out.append(Para(rich(f"Orders {full + 1} to {top}, one line each:")))
                out.append(Items(items))
            failing = [c for c in r.conditions_of_order(top) if not c.holds]
            if failing and top == p + 1:
                shown = failing[:MAX_FAILING_LISTED]
                more = f" (the first {len(shown)} of {len(failing)})" if len(failing) > len(shown) else ""
                out.append(
                    Para(rich(f"The failing trees of order {top}{more}, with $b^{{T}}\\Phi(t) - 1/\\gamma(t)$:"))
                )
                out.append(Items([rich(f"${c.tree.latex}$: ${self._residual_math(c)}$") for c in shown]))
        if r.order_tolerant != r.order:
            out.append(
                Para(
                    rich(
                        f"To within {r.tolerance:.0e} the conditions hold up to order {r.order_tolerant} "
                        f"(largest residual {r.max_residual:.1e}): the coefficients approximate a method of that order."
                    )
                )
            )
        out.append(Heading(3, rich("Simplifying assumptions")))
        out.append(
            Display(
                [
                    r"B(k)&: \ \sum_i b_i c_i^{m-1} = \frac{1}{m}, \quad m \le k,",
                    r"C(k)&: \ \sum_j a_{ij} c_j^{m-1} = \frac{c_i^{m}}{m} \ \text{for all } i, \quad m \le k,",
                    r"D(k)&: \ \sum_i b_i c_i^{m-1} a_{ij} = \frac{b_j (1 - c_j^{m})}{m} \ \text{for all } j, \quad "
                    r"m \le k.",
                ],
                aligned=True,
            )
        )

        def holds(name, k):
            if k >= r.max_order:
                return f"${name}(k)$ for every $k \\le {k}$ checked"
            return f"${name}({k})$" if k else f"not even ${name}(1)$"

        out.append(
            Para(
                rich(
                    f"Here the largest that hold are {holds('B', r.B)}, {holds('C', r.C)} and {holds('D', r.D)}; "
                    f"the stage order is {r.stage_order}. "
                    + (
                        "$D(1)$ holds, which is what makes the partner's nodes equal $c$ (section 5)."
                        if r.D >= 1
                        else "$D(1)$ fails, so the partner's nodes differ from $c$ (section 5)."
                    )
                )
            )
        )
        return out

    @property
    def _safe_name(self) -> str:
        return self.t.name if re.fullmatch(r"[A-Za-z0-9_.+-]{1,40}", self.t.name) else "this tableau"

    def _residual_math(self, cond) -> str:
        text = lx(cond.residual)
        return text if len(text) <= SHORT_LATEX else rf"\approx {cond.residual_float:.6e}"

    # 4 ---------------------------------------------------------------------------------------------------
    def _symplecticity(self):
        t = self.t
        M = t.symplecticity_matrix
        s = t.stages
        out = [Heading(2, rich("4. Symplecticity"))]
        out.append(
            Para(
                rich(
                    "A pair $(A, b, c)$, $(\\tilde A, \\tilde b, \\tilde c)$ is a symplectic partitioned Runge-Kutta "
                    "method [HLW, Thm. VI.4.6] if and only if"
                )
            )
        )
        out.append(
            Display(
                [
                    r"b_i = \tilde b_i, \qquad b_i \tilde a_{ij} + \tilde b_j a_{ji} - b_i \tilde b_j = 0, "
                    r"\qquad i, j = 1, \dots, s. \qquad (19)"
                ]
            )
        )
        out.append(
            Para(
                rich(
                    "A single method is its own partner ($\\tilde A = A$) if and only if the matrix "
                    "$M = \\operatorname{diag}(b) A + A^{T} \\operatorname{diag}(b) - b b^{T}$, entry by entry "
                    "$M_{ij} = b_i a_{ij} + b_j a_{ji} - b_i b_j$, vanishes. For ",
                    Code(t.name),
                    ":",
                )
            )
        )
        flat = [x for row in M for x in row]
        if drawable(flat, s):
            out.append(Display([f"M = {matrix_latex(M)}"]))
        else:
            lines = [rf"M_{sub(i + 1, j + 1)} &= {lx(M[i][j])}" for i in range(s) for j in range(i, s) if M[i][j] != 0]
            out.append(
                Para(rich("$M$ is symmetric; its nonzero entries on and above the diagonal:"))
                if lines
                else Para(rich("$M = 0$."))
            )
            if lines:
                out.append(Display(lines, aligned=True))
        if t.is_symplectic:
            out.append(
                Para(
                    rich(
                        "$M = 0$: the method is symplectic, its own partner; the backward pass of "
                        "section 6 "
                        "is the same method applied to the adjoint equation."
                    )
                )
            )
        else:
            nz = sum(1 for x in flat if x != 0)
            out.append(
                Para(
                    rich(
                        f"$M \\ne 0$ ({nz} of {s * s} entries): the method is not symplectic by itself; "
                        "its partner $\\tilde A \\ne A$ is derived in section 5."
                    )
                )
            )
        out.extend(self._misprint())
        return out

    def _misprint(self):
        t = self.t
        out = [Heading(3, rich("The index in (19): a misprint in [000] and [001]"))]
        out.append(
            Para(
                rich(
                    "Conditions (19) of [000] (and the conditions of [001, section 3]) print $a_{i,j}$ where (19) "
                    "above "
                    "has $a_{ji}$: $b_i \\tilde a_{ij} + \\tilde b_j a_{ij} - b_i \\tilde b_j = 0$. That is a "
                    "misprint. "
                    "The gradient formula (24) of the same paper, $P_i = p - h \\sum_k (a_{ki} b_k / b_i)\\ell_k$, "
                    "has the transposed index, and so has the discrete adjoint derived in section 6. The misprinted "
                    "conditions are the true conditions of the transposed tableau $(A^{T}, b)$."
                )
            )
        )
        if t.zero_weights:
            out.append(
                Para(
                    rich(
                        "With a zero weight neither version can be solved for $\\tilde A$ (section 5), so the misprint "
                        "cannot be tested on this tableau."
                    )
                )
            )
            return out
        differ = self.misprint_differences
        if not differ:
            why = "$A = A^{T}$" if self.is_symmetric else "$b_j a_{ij} = b_j a_{ji}$ for all $i, j$"
            out.append(
                Para(
                    rich(
                        f"For this tableau {why}, so both versions give the same partner: the misprint is invisible "
                        "here. ",
                        *self._misprint_evidence(),
                    )
                )
            )
            return out
        wrong, right = partner_entries(t, misprint=True), partner_entries(t)
        i, j = differ[0]
        out.append(
            Para(
                rich(
                    f"Solved for $\\tilde a_{{ij}}$, the misprint gives $\\tilde a_{{ij}} = b_j - b_j a_{{ij}} / b_i$, "
                    f"which differs from the partner of section 5 in {len(differ)} of {t.stages**2} entries here, e.g. "
                    f"${self.element_latex(wrong[i][j])}$ instead of ${self.element_latex(right[i][j])}$ for "
                    f"$\\tilde a_{sub(i + 1, j + 1)}$. "
                    "Numerical evidence (section 7): on a random network the gradient from the misprinted partner "
                    f"is off by {_magnitude(self.check.misprint_diff)}, the one from the transposed index by "
                    f"{_magnitude(self.check.p_form_diff)} (finite-difference noise). ",
                    *self._misprint_evidence(),
                )
            )
        )
        return out

    def _misprint_evidence(self):
        rows = [(name, misprint_evidence(name)) for name in MISPRINT_WITNESSES]
        wrong = ", ".join(_magnitude(w) for _, (_, w) in rows)
        right = ", ".join(_magnitude(r) for _, (r, _) in rows)
        names = [Code(name) for name, _ in rows]
        return rich(
            "For the explicit methods of [000, Table 1], Heun's (",
            names[0],
            ", 'Improved Euler'), Kutta's third-order (",
            names[1],
            ") and the classical Runge-Kutta method (",
            names[2],
            "), the misprinted "
            f"partner gives gradients off by {wrong} respectively on the random network of section 7, "
            f"the true partner by {right}.",
        )

    # 5 ---------------------------------------------------------------------------------------------------
    def _partner(self):
        t = self.t
        s = t.stages
        out = [Heading(2, rich("5. The partner tableau"))]
        p = t.partner
        if p is None:
            return out + self._no_partner()
        out.append(
            Para(rich("Every $b_i \\ne 0$, so (19) is solved for the partner: $\\tilde b = b$ and, dividing by $b_i$,"))
        )
        out.append(
            Display(
                [
                    r"\tilde a_{ij} = b_j - \frac{b_j a_{ji}}{b_i} = a_{ij} - \frac{M_{ij}}{b_i},"
                    r"\qquad \text{i.e.} \qquad \tilde A = A - \operatorname{diag}(b)^{-1} M."
                ]
            )
        )
        if t.is_symplectic:
            out.append(Para(rich("Here $M = 0$, so $\\tilde A = A$: the method is its own partner. Entry by entry:")))
        else:
            out.append(Para(rich("Entry by entry:")))
        A, b = t.A, t.b
        lines = []
        for i in range(s):
            for j in range(s):
                bj_, aji_, bi_ = f"b_{sub(j + 1)}", f"a_{sub(j + 1, i + 1)}", f"b_{sub(i + 1)}"
                head = rf"\tilde a_{sub(i + 1, j + 1)} &= {bj_} - \frac{{{bj_} {aji_}}}{{{bi_}}}"
                parts = [b[j], A[j][i], b[i]]
                if t.nonzero[j][i] and self.short(parts, 14):
                    bj, aji, bi = (self._factor(x) for x in parts)
                    head += rf" = {lx(b[j])} - {bj} \cdot {aji} / {bi}"
                lines.append(head + f" = {lx(p.A[i][j])}")
        out.append(Display(lines, aligned=True))
        out.append(
            Para(rich("The partner tableau $(\\tilde A, \\tilde b, \\tilde c)$, $\\tilde c = \\tilde A\\mathbf{1}$:"))
        )
        entries = [*p.c, *(x for row in p.A for x in row)]
        if drawable(entries, s):
            out.append(Display([tableau_latex(p.A, p.b, p.c)]))
        else:
            out.append(Para(rich("(too wide to draw; the entries are listed above.)")))
        structure = p.structure_detail
        text = f"The partner is {structure}."
        weights = self.eq.p_form
        if weights is not None:
            reach = [k - i for i, row in enumerate(weights) for k in (x.index for x in row)]
            if t.structure == "explicit" and p.structure != "explicit":
                text += (
                    " Applied backwards in time to the adjoint equation it is nonetheless explicit: in section 6.4 "
                    "stage $i$ uses $b_k - \\tilde a_{ik} = a_{ki} b_k / b_i$, which vanishes for $k \\le i$, so "
                    "the stages are computed $i = s, \\dots, 1$ without a solve."
                )
            elif reach and min(reach) >= 0 and t.structure != "fully implicit":
                text += (
                    " In the backward pass only $b_k - \\tilde a_{ik} = a_{ki} b_k / b_i$ enters, which vanishes "
                    "for $k < i$: stage $i$ needs the stages after it, so the backward pass runs $i = s, \\dots, 1$."
                )
        out.append(Para(rich(text)))
        from .partner import c_matches
        from .report import WHY_C_DOES_NOT_MATTER

        if c_matches(t):
            out.append(
                Para(
                    rich(
                        "$\\tilde c = c$: the third condition of (19) holds too. (In general "
                        "$\\tilde c_i = 1 - \\sum_j b_j a_{ji} / b_i$, so $\\tilde c = c$ exactly when $D(1)$ holds.)"
                    )
                )
            )
        else:
            ct = ", ".join(lx(x) for x in p.c)
            cc = ", ".join(lx(x) for x in t.c)
            why = WHY_C_DOES_NOT_MATTER.replace("c\u0303", "$\\tilde c$").replace("u(t_j + c_i h)", "$u(t_j + c_i h)$")
            out.append(
                Para(
                    rich(
                        f"$\\tilde c = ({ct})$ differs from $c = ({cc})$: the condition $c_i = \\tilde c_i$ that "
                        "[000] lists "
                        "with (19) fails, because $\\tilde c_i = 1 - \\sum_j b_j a_{ji} / b_i$ equals $c_i$ exactly "
                        "when "
                        "$D(1)$ holds, and it does not here. ",
                        why,
                    )
                )
            )
        return out

    @staticmethod
    def _factor(x) -> str:
        x = sympy.sympify(x)
        return r"\left(" + lx(x) + r"\right)" if x.is_Add or x.could_extract_minus_sign() else lx(x)

    def _no_partner(self):
        t = self.t
        A, b = t.A, t.b
        s = t.stages
        zeros = ", ".join(f"b_{sub(i + 1)}" for i in t.zero_weights)
        out = [
            Para(
                rich(
                    f"Here ${zeros} = 0$. For such an $i$, condition (19) reads $b_i \\tilde a_{{ij}} + b_j a_{{ji}} - "
                    "b_i b_j = b_j a_{ji} = 0$ for every $j$: $\\tilde a_{ij}$ drops out and cannot be solved for."
                )
            )
        ]
        F = self.F
        broken = []
        for i in t.zero_weights:
            for j in range(s):
                v = F.mul(F.element(b[j]), F.element(A[j][i]))
                if not v.is_zero():
                    broken.append(
                        rf"(i, j) = ({i + 1}, {j + 1}):\quad b_{sub(j + 1)} a_{sub(j + 1, i + 1)} = "
                        rf"{self._factor(b[j])} \cdot {self._factor(A[j][i])} = {lx(F.to_sympy(v))} \ne 0"
                    )
        if broken:
            out.append(Para(rich("And it is violated whatever $\\tilde A$ is:")))
            out.append(
                Display(broken, aligned=False)
                if len(broken) == 1
                else Display([line.replace(r":\quad", r":&\quad", 1) for line in broken], aligned=True)
            )
            out.append(
                Para(
                    rich(
                        "**So no symplectic partner exists**; the P form of [000, (24)] divides by $b_i$ "
                        "and is undefined."
                    )
                )
            )
        else:
            out.append(
                Para(
                    rich(
                        "Every $b_j a_{ji}$ with $b_i = 0$ vanishes, so those conditions hold whatever the row "
                        "$\\tilde a_{i\\cdot}$ is: a partner exists but is not unique, and rkgen does not pick one. "
                        "The P form of [000, (24)] still divides by $b_i$."
                    )
                )
            )
        out.append(
            Para(
                rich(
                    "**The $\\xi$ form goes around it.** Section 6 writes the backward pass for the adjoints "
                    "$\\xi_i = h_j \\eta_i$ of the stage derivatives $F_i$ instead of $P_i = \\eta_i / b_i$: "
                    "$\\eta_i = b_i p + \\sum_k a_{ki} \\mu_k$ never divides by $b_i$ (nor by $h_j$), so a stage with "
                    "$b_i = 0$ simply starts from $\\eta_i = \\sum_k a_{ki}\\mu_k$. It is the exact gradient all the "
                    "same: "
                    "it is the discrete adjoint of the network itself, which needs no partner."
                )
            )
        )
        return out

    # 6 ---------------------------------------------------------------------------------------------------
    def _adjoint(self):
        out = [Heading(2, rich("6. The stage-wise adjoint equations"))]
        out.append(
            Para(
                rich(
                    "The equations of one layer $j$ for ",
                    Code(self.t.name),
                    ", as rkgen's layer equations hold them (exact coefficients, zero terms dropped); the code "
                    "generator prints the network module from the same equations (section 8).",
                )
            )
        )
        out += self._forward_equations()
        out += self._backward_equations()
        out += self._gradient_equations()
        out += self._p_form_equations()
        return out

    def _numeric_ok(self, terms, limit: int = 40) -> bool:
        return self.short([x.value for x in terms], limit)

    def _forward_equations(self):
        t, eq = self.t, self.eq
        out = [Heading(3, rich("6.1 Forward stages"))]
        lines = []
        for st in eq.forward:
            line = _forward_symbolic(st).replace(" = ", " &= ", 1)
            if st.terms and self._numeric_ok(st.terms):
                line += rf" = y_j + h_j\left({numeric(st.terms, 'F')}\right)"
            lines.append(line)
        update = _update_symbolic(eq).replace(" = ", " &= ", 1)
        if eq.update and self._numeric_ok(eq.update):
            update += rf" = y_j + h_j\left({numeric(eq.update, 'F')}\right)"
        lines.append(update)
        if t.structure == "explicit":
            out.append(Para(rich("In this order, each $F_i = f(Y_i, u_j)$ evaluated right after $Y_i$:")))
            out.append(Display(lines, aligned=True))
            return out
        implicit = [st.i + 1 for st in eq.forward if st.implicit]
        out.append(Display(lines, aligned=True))
        listed = ", ".join(str(i) for i in implicit)
        if t.structure == "diagonally implicit":
            out.append(
                Para(
                    rich(
                        f"with $F_i = f(Y_i, u_j)$. Stages {listed} contain $Y_i$ on both sides (through $F_i$): each "
                        "is a nonlinear $d \\times d$ system, solved stage after stage by Newton's method with the "
                        "matrix $I - h_j a_{ii} J_i$, $J_i = \\partial_y f(Y_i, u_j)$."
                    )
                )
            )
        else:
            out.append(
                Para(
                    rich(
                        "with $F_i = f(Y_i, u_j)$. All stages are coupled: $Y = \\mathbf{1} \\otimes y_j + h_j "
                        "(A \\otimes I) F(Y)$ is one nonlinear system of size $sd$ per sample, solved by Newton's "
                        "method with the matrix $I - h_j (A \\otimes I) \\operatorname{diag}(J_1, \\dots, J_s)$."
                    )
                )
            )
        out.append(
            Para(
                rich(
                    "The gradient below is the exact gradient of the network for converged stages; as in [001], it "
                    "comes from these equations, not from differentiating the iterations of the solver, so the "
                    "solver must converge (the generated module iterates to rounding and counts failures)."
                )
            )
        )
        return out

    def _backward_equations(self):
        t, eq = self.t, self.eq
        s = t.stages
        out = [Heading(3, rich("6.2 Backward stages (the $\\xi$ form)"))]
        out.append(
            Para(
                rich(
                    "Let $p = \\partial\\mathcal{J}/\\partial y_{j+1}$ (at the top, $p = \\nabla\\mathcal{J}(y_N)$) "
                    "and "
                    "$J_k = \\partial_y f(Y_k, u_j)$. Varying $y_j$, $u_j$ and $h_j$ in the forward stages gives"
                )
            )
        )
        out.append(
            Display(
                [
                    r"\delta y_{j+1} &= \delta y_j + h_j \sum_i b_i \delta F_i + \delta h_j \sum_i b_i F_i,",
                    r"\delta F_i &= J_i \delta Y_i + \partial_u f(Y_i, u_j) \delta u_j,",
                    r"\delta Y_i &= \delta y_j + h_j \sum_l a_{il} \delta F_l + \delta h_j \sum_l a_{il} F_l.",
                ],
                aligned=True,
            )
        )
        out.append(
            Para(
                rich(
                    "Take the inner product of the first line with $p$ and eliminate $\\delta F_i$ and $\\delta Y_i$ "
                    "with multipliers: $\\xi_i = h_j \\eta_i$ for $F_i$ and $\\mu_i$ for $Y_i$, where"
                )
            )
        )
        out.append(
            Display(
                [
                    r"\eta_i = b_i p + \sum_{k=1}^{s} a_{ki} \mu_k, \qquad \mu_k = h_j J_k^{T} \eta_k,",
                ]
            )
        )
        out.append(Para(rich("and then")))
        out.append(
            Display(
                [
                    r"p^{T} \delta y_{j+1} = \Big(p + \sum_i \mu_i\Big)^{T} \delta y_j + h_j \sum_i \eta_i^{T} "
                    r"\partial_u f(Y_i, u_j) \delta u_j + \Big(\sum_i \eta_i^{T} F_i\Big) \delta h_j.",
                ]
            )
        )
        out.append(
            Para(
                rich(
                    "The transposed index $a_{ki}$ appears by itself: it is the index of (19) (section 4). Nothing "
                    "divides "
                    "by $b_i$ or by $h_j$, so zero weights and zero steps are fine."
                )
            )
        )
        lead = rich("For ", Code(t.name), ", ")
        if t.structure == "explicit":
            lines = []
            for st in eq.backward:
                line = _eta_symbolic(st).replace(" = ", " &= ", 1)
                if (st.weight or st.terms) and self._numeric_ok(st.terms + ((st.weight,) if st.weight else ())):
                    line += " = " + _eta_numeric(st)
                lines.append(line)
            order = ", ".join(str(st.i + 1) for st in eq.backward)
            out.append(
                Para(
                    rich(
                        lead,
                        f"only $a_{{ki}}$ with $k > i$ occur, so the backward pass is a reverse sweep over the "
                        f"{'stages ' + order if eq.stages > 1 else 'single stage'}, each $\\eta_i$ followed at once "
                        "by $\\mu_i = h_j J_i^{T} \\eta_i$ (no solve):",
                    )
                )
            )
            out.append(Display(lines, aligned=True))
        elif t.structure == "diagonally implicit":
            lines = []
            for st in eq.backward:
                i = st.i + 1
                rhs_terms = ((st.weight,) if st.weight else ()) + st.explicit_terms
                rhs_sym = (
                    " + ".join(
                        ([f"{coefficient_latex(st.weight.name)} p"] if st.weight else [])
                        + ([symbolic(st.explicit_terms, r"\mu")] if st.explicit_terms else [])
                    )
                    or "0"
                )
                pairs = ([(st.weight.value, "p")] if st.weight else []) + [
                    (x.value, rf"\mu_{sub(x.index + 1)}") for x in st.explicit_terms
                ]
                d = st.diagonal
                if d is None:
                    line = rf"\eta_{sub(i)} &= {rhs_sym}"
                    if pairs and self._numeric_ok(rhs_terms):
                        line += " = " + combination(pairs)
                    lines.append(line)
                    continue
                lines.append(
                    rf"\left(I - h_j {coefficient_latex(d.name)} J_{sub(i)}^{{T}}\right)\eta_{sub(i)} &= {rhs_sym}"
                )
                if self._numeric_ok(rhs_terms + (d,)):
                    lhs = combination([(1, "I"), (-d.value, rf"h_j J_{sub(i)}^{{T}}")])
                    lines.append(rf"\left({lhs}\right)\eta_{sub(i)} &= {combination(pairs)}")
            order = ", ".join(str(st.i + 1) for st in eq.backward)
            solves = ", ".join(str(st.i + 1) for st in eq.backward if st.diagonal is not None)
            out.append(
                Para(
                    rich(
                        lead,
                        f"only $a_{{ki}}$ with $k \\ge i$ occur. The stages are computed in the order {order}; stage "
                        "$i$ "
                        f"contains $\\mu_i = h_j J_i^{{T}}\\eta_i$ itself when $a_{{ii}} \\ne 0$ (stages {solves}), "
                        "and "
                        "moving it to the left gives one linear $d \\times d$ system per stage, with the transposed "
                        "matrix of the forward Newton step:",
                    )
                )
            )
            out.append(Display(lines, aligned=True))
            out.append(Para(rich("Each $\\eta_i$ is followed at once by $\\mu_i = h_j J_i^{T}\\eta_i$.")))
        else:
            out.append(
                Para(
                    rich(
                        lead,
                        "every $\\eta_i$ involves every $\\mu_k = h_j J_k^{T}\\eta_k$: one linear system of size "
                        "$sd$ per "
                        "sample, the transpose of the forward Newton matrix, with the pattern of $A^{T}$:",
                    )
                )
            )
            out.append(Display([self._block_system(symbolic_names=True)]))
            if self.short([x.value for st in eq.backward for x in st.terms] + list(t.b), 20) and s <= 3:
                out.append(Para(rich("With the coefficients of this tableau:")))
                out.append(Display([self._block_system(symbolic_names=False)]))
            out.append(Para(rich("After the solve, $\\mu_k = h_j J_k^{T}\\eta_k$ for every $k$.")))
        return out

    def _block_system(self, symbolic_names: bool) -> str:
        eq = self.eq
        s = self.t.stages
        rows = []
        rhs = []
        by_stage = {st.i: st for st in eq.backward}
        for i in range(s):
            st = by_stage[i]
            coeff = {x.index: x for x in st.terms}
            cells = []
            for k in range(s):
                pairs = [(1, "I")] if k == i else []
                if k in coeff:
                    if symbolic_names:
                        pairs.append((-1, rf"h_j {coefficient_latex(coeff[k].name)} J_{sub(k + 1)}^{{T}}"))
                    else:
                        pairs.append((-coeff[k].value, rf"h_j J_{sub(k + 1)}^{{T}}"))
                cells.append(combination(pairs))
            rows.append(" & ".join(cells))
            if st.weight is None:
                rhs.append("0")
            else:
                rhs.append(
                    f"{coefficient_latex(st.weight.name)} p"
                    if symbolic_names
                    else combination([(st.weight.value, "p")])
                )
        matrix = "\\begin{pmatrix}\n" + " \\\\\n".join(rows) + "\n\\end{pmatrix}"
        etas = "\\begin{pmatrix}\n" + " \\\\\n".join(rf"\eta_{sub(i + 1)}" for i in range(s)) + "\n\\end{pmatrix}"
        right = "\\begin{pmatrix}\n" + " \\\\\n".join(rhs) + "\n\\end{pmatrix}"
        return f"{matrix}\n{etas} = {right}"

    def _gradient_equations(self):
        s = self.t.stages
        out = [Heading(3, rich("6.3 The gradient"))]
        out.append(
            Para(
                rich(
                    "Per sample, with $z_i = K_j Y_i + \\beta_j$, $\\sigma_i = \\sigma(z_i)$, $\\sigma'_i = "
                    "\\sigma'(z_i)$ "
                    "(componentwise) and $g_i$ the part of $\\xi_i = h_j\\eta_i$ that reaches $z_i$; the parameter "
                    "gradients are summed over the samples of the batch. The `resnet` field "
                    "$f = \\sigma(K_j y + \\beta_j)$ has $J_i = \\operatorname{diag}(\\sigma'_i) K_j$:"
                )
            )
        )
        out.append(
            Display(
                [
                    r"g_i = h_j \sigma'_i \odot \eta_i, \qquad \mu_i = K_j^{T} g_i, \qquad "
                    r"\frac{\partial\mathcal{J}}{\partial K_j} = \sum_i g_i Y_i^{T}, \qquad "
                    r"\frac{\partial\mathcal{J}}{\partial \beta_j} = \sum_i g_i;",
                ]
            )
        )
        out.append(
            Para(
                rich(
                    "The `stable` field $f = -K_j^{T}\\sigma(K_j y + \\beta_j)$ has "
                    "$J_i = -K_j^{T}\\operatorname{diag}(\\sigma'_i) K_j$:"
                )
            )
        )
        out.append(
            Display(
                [
                    r"g_i = h_j \sigma'_i \odot (K_j \eta_i), \qquad \mu_i = -K_j^{T} g_i, \qquad "
                    r"\frac{\partial\mathcal{J}}{\partial K_j} = -\sum_i \left(h_j \sigma_i \eta_i^{T} + g_i "
                    r"Y_i^{T}\right), "
                    r"\qquad \frac{\partial\mathcal{J}}{\partial \beta_j} = -\sum_i g_i.",
                ]
            )
        )
        dh = " + ".join(rf"\eta_{sub(i)}^{{T}} F_{sub(i)}" for i in range(1, s + 1))
        dy = " + ".join(rf"\mu_{sub(i)}" for i in range(1, s + 1))
        out.append(Para(rich("For both fields, and this tableau's $s = " + str(s) + "$ stages:")))
        out.append(
            Display(
                [
                    rf"\frac{{\partial\mathcal{{J}}}}{{\partial h_j}} &= {dh},",
                    rf"\frac{{\partial\mathcal{{J}}}}{{\partial y_j}} &= p + {dy},",
                ],
                aligned=True,
            )
        )
        out.append(
            Para(
                rich(
                    "The second line is the $p$ of layer $j - 1$; after layer 0 it is "
                    "$\\partial\\mathcal{J}/\\partial y_0$. "
                    "$\\partial\\mathcal{J}/\\partial h_j$ is never computed as $h_j^{-1}\\sum_i \\xi_i^{T} F_i$, "
                    "which would "
                    "fail at $h_j = 0$."
                )
            )
        )
        return out

    def _p_form_equations(self):
        t, eq = self.t, self.eq
        out = [Heading(3, rich("6.4 The same equations in the partner form of [000, (24)]"))]
        weights = eq.p_form
        if weights is None:
            zeros = ", ".join(f"b_{sub(i + 1)}" for i in t.zero_weights)
            out.append(
                Para(
                    rich(
                        f"The partner form divides by the weights, and ${zeros} = 0$ here: it does not exist for this "
                        "tableau (section 5). The $\\xi$ form of 6.2 is the whole backward pass, and it is exact."
                    )
                )
            )
            return out
        out.append(
            Para(
                rich(
                    "Every $b_i \\ne 0$, so $P_i = \\eta_i / b_i$ is defined. With $\\ell_k = -J_k^{T} P_k$ the "
                    "equations "
                    "of 6.2 become [000, (24)], [001, Prop. 1]:"
                )
            )
        )
        out.append(
            Display(
                [
                    r"P_i &= p - h_j \sum_k \frac{a_{ki} b_k}{b_i} \ell_k = p + h_j \sum_k w_{ik} J_k^{T} P_k, "
                    r"\qquad w_{ik} = \frac{a_{ki} b_k}{b_i} = b_k - \tilde a_{ik},",
                    r"\frac{\partial\mathcal{J}}{\partial u_j} &= h_j \sum_i b_i \partial_u f(Y_i, u_j)^{T} P_i, "
                    r"\qquad \frac{\partial\mathcal{J}}{\partial y_j} = p + h_j \sum_i b_i J_i^{T} P_i = p - h_j "
                    r"\sum_i b_i \ell_i.",
                ],
                aligned=True,
            )
        )
        out.append(
            Para(
                rich(
                    "This is the partner $(\\tilde A, b)$ applied to the adjoint equation $\\dot p = -\\partial_y "
                    "f^{T} p$ "
                    "from $p_{j+1} = p$ back to $p_j$: [000, (17)] reads $p_{j+1} = p_j + h_j \\sum_i b_i \\ell_i$ and "
                    "$P_i = p_j + h_j \\sum_l \\tilde a_{il} \\ell_l$; eliminating $p_j$ gives the first line. "
                    "For this tableau ($w_{ik} = 0$ terms dropped):"
                )
            )
        )
        F = self.F
        p = t.partner
        lines = []
        for i, row in enumerate(weights):
            for term in row:  # one source: w_ik = b_k - ã_ik with ã from the partner tableau
                k = term.index
                check = F.sub(F.sub(F.element(t.b[k]), F.element(p.A[i][k])), F.element(term.value))
                if not check.is_zero():  # pragma: no cover - the two modules disagree
                    raise RuntimeError(f"w_{i + 1}_{k + 1} != b_{k + 1} - partner a_{i + 1}_{k + 1}")
            sym = " + ".join(
                rf"{coefficient_latex(x.name)} J_{sub(x.index + 1)}^{{T}} P_{sub(x.index + 1)}" for x in row
            )
            line = rf"P_{sub(i + 1)} &= p" + (rf" + h_j\left({sym}\right)" if row else "")
            if row and self._numeric_ok(row):
                num = combination([(x.value, rf"J_{sub(x.index + 1)}^{{T}} P_{sub(x.index + 1)}") for x in row])
                line += rf" = p + h_j\left({num}\right)"
            lines.append(line)
        out.append(Display(lines, aligned=True))
        return out

    # 7 ---------------------------------------------------------------------------------------------------
    def _check(self):
        c = self.check
        out = [Heading(2, rich("7. The check: adjoint against finite differences"))]
        steps = ", ".join(f"{x:g}" for x in CHECK_STEPS)
        out.append(
            Para(
                rich(
                    f"A small random network: $m = {CHECK_M}$ samples of width $d = {CHECK_D}$ through $N = {CHECK_N}$ "
                    f"layers with steps $h = ({steps})$ (a negative step is allowed), $\\sigma = \\tanh$, the `resnet` "
                    "field, and the cost $\\mathcal{J} = \\sum W \\odot y_N$, so $p = W$ at the top. The entries of "
                    "$y_0$, "
                    f"$K$, $\\beta$ and $W$ are standard normal draws, in this order, from numpy's ",
                    Code(f"default_rng({CHECK_SEED})"),
                    ". The forward pass evaluates the stage equations of 6.1 (Newton to rounding where they are "
                    "implicit); the adjoint gradient comes from the backward stages of 6.2 in the order given there; "
                    f"the finite differences are central, with step {FD_STEP:.0e}, entry by entry. Computed when this "
                    "document was written:",
                )
            )
        )
        rows = [
            [[Math(label)], [Text(_sci(a))], [Text(_sci(f))], [Text(_magnitude(abs(a - f)))]] for label, a, f in c.rows
        ]
        header = [rich("entry"), rich("adjoint gradient"), rich("finite difference"), rich("difference")]
        out.append(Table(header, rows, "lrrr"))
        lines = [
            rich(
                f"largest difference {_magnitude(c.max_diff)}, against gradient entries up to {c.max_fd:.1e}: "
                "the adjoint is exact to the accuracy of the finite differences;"
            ),
            rich(f"the `stable` field on the same instance: largest difference {_magnitude(c.stable_diff)};"),
        ]
        if c.p_form_diff is not None:
            lines.append(
                rich(f"the partner form of 6.4 (transposed index): largest difference {_magnitude(c.p_form_diff)};")
            )
            if not self.misprint_differences:
                lines.append(rich("the misprinted conditions (section 4) give the same partner here."))
            else:
                lines.append(
                    rich(
                        "the partner form with the misprinted conditions of [000] (untransposed index, section 4): "
                        f"largest difference {_magnitude(c.misprint_diff)}, a wrong gradient."
                    )
                )
        out.append(Items(lines))
        out.append(
            Para(
                rich(
                    "rkgen's test suite runs the same comparison on the compiled network module, for every built-in "
                    "tableau, both fields and all activations."
                )
            )
        )
        return out

    # 8 ---------------------------------------------------------------------------------------------------
    def _code(self):
        from .codegen import module_filename

        t = self.t
        name = module_filename(t)
        out = [Heading(2, rich("8. The generated code"))]
        if t.source.startswith("built-in"):
            where = rich(
                "In the rkgen repository the module is ",
                Code(f"generated/{name}"),
                "; ",
                Code(f"rkgen generate {t.name}"),
                " writes the same file to ",
                Code(f"./{name}"),
                ", and ",
                Code(f'rkgen.codegen.load_network("{t.name}")'),
                " imports it (from a cache).",
            )
        else:
            where = rich(Code("rkgen generate TABLEAU"), " writes it to ", Code(f"./{name}"), ".")
        out.append(
            Para(
                rich(
                    "The network module imports only numpy, numba and the standard library; "
                    "its coefficients are float64 constants with the exact value beside each. ",
                    where,
                    f" Line numbers are those of the module rkgen {__version__} writes for this tableau "
                    f"({len(self.module_source.splitlines())} lines):",
                )
            )
        )
        rows = []
        for equation, lines, what in code_locations(t, self.eq, self.module_source):
            rows.append([[Math(equation)] if equation else [Text("")], [Text(lines)], rich(what)])
        out.append(Table([rich("equation"), rich("lines"), rich("function")], rows, "lll"))
        out.append(
            Para(
                rich(
                    "Its public functions follow the module contract (`docs/network-contract.md`): "
                    "`yN, tape = forward(y0, K, beta, h, field, activation)` and "
                    "`dy0, dK, dbeta, dh = backward(tape, p)`."
                )
            )
        )
        return out

    def _references(self):
        return [Heading(2, rich("References")), Items([rich(Text(r)) for r in REFERENCES])]

    # -- output ------------------------------------------------------------------------------------------
    def markdown(self) -> str:
        body = "\n\n".join(_md_block(b) for b in self.blocks)
        template = template_environment().get_template("derive.md.j2")
        return _finish(template.render(title=md_text(self.title), body=body))

    def latex(self) -> str:
        body = "\n\n".join(_tex_block(b) for b in self.blocks)
        template = template_environment().get_template("derive.tex.j2")
        return _finish(template.render(title=tex_text(self.title), body=body))


def _finish(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


def render(spec: Tableau | str, fmt: str = "md") -> str:
    """The derivation document of a tableau (a Tableau, a built-in name or a JSON path) as Markdown or LaTeX."""
    doc = Derivation(spec)
    if fmt == "md":
        return doc.markdown()
    if fmt == "tex":
        return doc.latex()
    raise ValueError(f"unknown format {fmt!r} (md or tex)")


# ==================================================================================================
# --json: the equations as data
# ==================================================================================================


def _term(x: Term) -> dict:
    return {"name": x.name, "stage": x.index + 1, "value": str(x.value), "latex": lx(x.value)}


def equations_json(t: Tableau) -> dict:
    """The layer equations (forward, backward in computing order, partner form) with exact coefficients, the
    partner and M, as JSON-ready data; stage numbers are 1-based.  The LaTeX of each equation is included."""
    eq = layer_equations(t)
    p = t.partner
    r = t.order_report
    data = {
        "name": t.name,
        "rkgen_version": __version__,
        "stages": t.stages,
        "structure": t.structure,
        "structure_detail": t.structure_detail,
        "order": r.order,
        "tableau": t.exact_strings(),
        "forward": [
            {
                "stage": st.i + 1,
                "implicit": st.implicit,
                "terms": [_term(x) for x in st.terms],
                "text": str(st),
                "latex": _forward_symbolic(st),
            }
            for st in eq.forward
        ],
        "update": {"terms": [_term(x) for x in eq.update], "latex": _update_symbolic(eq)},
        "backward_order": [i + 1 for i in eq.backward_order],
        "backward": [
            {
                "stage": st.i + 1,
                "weight": _term(st.weight) if st.weight else None,
                "terms": [_term(x) for x in st.terms],
                "diagonal": _term(st.diagonal) if st.diagonal else None,
                "text": str(st),
                "latex": _eta_symbolic(st),
            }
            for st in eq.backward
        ],
        "mu": "mu_k = h J_k^T eta_k",
        "gradient": {
            "y": "dJ/dy_j = p + sum_i mu_i",
            "h": "dJ/dh_j = sum_i eta_i . F_i",
            "resnet": "g_i = h sigma'(z_i) * eta_i; mu_i = K^T g_i; dJ/dK += g_i Y_i^T; dJ/dbeta += g_i",
            "stable": "g_i = h sigma'(z_i) * (K eta_i); mu_i = -K^T g_i; "
            "dJ/dK -= h sigma(z_i) eta_i^T + g_i Y_i^T; dJ/dbeta -= g_i",
        },
        "p_form": None
        if eq.p_form is None
        else [{"stage": i + 1, "terms": [_term(x) for x in row]} for i, row in enumerate(eq.p_form)],
        "zero_weights": [i + 1 for i in t.zero_weights],
        "symplectic": t.is_symplectic,
        "M": [[str(x) for x in row] for row in t.symplecticity_matrix],
        "partner": None
        if p is None
        else {**p.exact_strings(), "structure": p.structure},
    }
    return data


# ==================================================================================================
# The command, the PDF, the examples
# ==================================================================================================


def compile_pdf(tex: str, output: Path, pdflatex: str | None = None) -> None:
    """Compile LaTeX source to ``output`` with pdflatex (in a temporary folder; a second run when asked for)."""
    pdflatex = pdflatex or shutil.which("pdflatex")
    if pdflatex is None:
        raise RkgenError(PDFLATEX_MISSING)
    with tempfile.TemporaryDirectory(prefix="rkgen-derive-") as tmp:
        src = Path(tmp) / "derivation.tex"
        src.write_text(tex, encoding="ascii", errors="replace")
        cmd = [pdflatex, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", src.name]
        for _ in range(2):  # longtable settles its column widths on the second run
            try:
                proc = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, errors="replace", timeout=300)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise RkgenError(f"pdflatex failed to run: {exc}") from None
            if proc.returncode != 0 or "Rerun LaTeX" not in proc.stdout:
                break
        pdf = Path(tmp) / "derivation.pdf"
        if proc.returncode != 0 or not pdf.is_file():
            error = next((line for line in proc.stdout.splitlines() if line.startswith("!")), "see its log")
            raise RkgenError(f"pdflatex failed ({error.lstrip('! ').strip()}); --format tex writes the source")
        part = output.parent / f".{output.name}.{os.getpid()}.tmp"
        try:  # copied next to the target (the mode follows the umask), then renamed: never half-written
            output.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(pdf, part)
            os.replace(part, output)
        except OSError as exc:
            part.unlink(missing_ok=True)
            raise RkgenError(f"{output}: cannot write: {exc.strerror}") from None


_SUFFIX_FORMAT = {".md": "md", ".markdown": "md", ".tex": "tex", ".pdf": "pdf"}


def _target(output: str | None, tableau: Tableau, fmt: str) -> Path | None:
    if output is None:
        return Path(f"{tableau.identifier}_derivation.pdf") if fmt == "pdf" else None
    path = Path(output)
    if path.is_dir():
        path = path / f"{tableau.identifier}_derivation.{fmt}"
    return path


def _write(path: Path, text: str) -> None:
    from .codegen import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise RkgenError(f"{path}: cannot write: {exc.strerror}") from None


def run_derive(args) -> int:
    """`rkgen derive TABLEAU [--format md|tex|pdf] [-o FILE] [--json]`."""
    fmt = args.format
    if fmt is None:
        fmt = _SUFFIX_FORMAT.get(Path(args.output).suffix.lower(), "md") if args.output else "md"
    tableau = load(args.tableau)
    if args.json:
        text = json.dumps(equations_json(tableau), indent=2, ensure_ascii=False) + "\n"
        if args.output:
            _write(Path(args.output), text)
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    pdflatex = None
    if fmt == "pdf":
        pdflatex = shutil.which("pdflatex")
        if pdflatex is None:
            raise RkgenError(PDFLATEX_MISSING)
    doc = Derivation(tableau)
    target = _target(args.output, tableau, fmt)
    if fmt == "pdf":
        compile_pdf(doc.latex(), target, pdflatex)
        print(f"wrote {target}")
        return 0
    text = doc.markdown() if fmt == "md" else doc.latex()
    if target is None:
        sys.stdout.write(text)
    else:
        _write(target, text)
        print(f"wrote {target}")
    return 0


def example_path(folder: Path, name: str, fmt: str) -> Path:
    return Path(folder) / f"{name}.{fmt}"


def write_examples(folder: str | os.PathLike = "examples/derivations") -> list[tuple[Path, str]]:
    """Write the derivation documents of :data:`EXAMPLES` (Markdown and LaTeX) to ``folder``."""
    folder = Path(folder)
    done = []
    for name in EXAMPLES:
        doc = Derivation(name)
        for fmt, text in (("md", doc.markdown()), ("tex", doc.latex())):
            path = example_path(folder, name, fmt)
            old = path.read_text(encoding="utf-8") if path.is_file() else None
            if old != text:
                _write(path, text)
            done.append((path, "unchanged" if old == text else "written"))
    return done


def main(argv: list[str]) -> int:
    folder = argv[0] if argv else "examples/derivations"
    for path, status in write_examples(folder):
        print(f"{status:>9}  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
