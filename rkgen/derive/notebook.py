"""The derivation as a Jupyter notebook, and a Tableau's own display in Jupyter.

``rkgen derive TABLEAU --format ipynb`` writes the document of :class:`~rkgen.derive.derivation.Derivation` as a
notebook (nbformat 4.5 JSON): the blocks become Markdown cells (printed by :mod:`.markdown`, one cell per heading),
and after the sections whose numbers can be recomputed come code cells that recompute them with rkgen's own API
(the tableau's order report, its symplecticity matrix and partner, the reference network of section 7 against
finite differences) and ``assert`` that they agree with what the document prints.  Running the notebook top to
bottom is so a check of the document, and a starting point for a reader's own experiments.

The notebook is written without running it, deterministically: no outputs, no execution counts, cell ids from the
cell's position, keys sorted as nbformat writes them; the same document gives the same bytes.  Pictures of the
document (:class:`~rkgen.derive.document.Picture` spans and ``Figure`` blocks, when they have an SVG) are embedded
in the Markdown as ``data:`` images, so the notebook is one self-contained file.

A :class:`~rkgen.tableau.Tableau`'s own display in Jupyter is :mod:`rkgen.display`.
"""

from __future__ import annotations

import base64
import html
import json
from dataclasses import replace
from typing import TYPE_CHECKING

from . import document
from .document import Bold, Heading, Items, Para, Table, Text
from .markdown import markdown_block, md_text

if TYPE_CHECKING:
    from .derivation import Derivation

__all__ = ["notebook", "notebook_json"]

#: Exact entries whose LaTeX is longer than this are shown as ≈ floats (the document's convention for short cells).
SHORT_ENTRY = 48
#: At most this many failing order conditions are compared one by one in the order cell.
MAX_FAILING_COMPARED = 8

_KERNEL = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}


# -- Markdown cells ---------------------------------------------------------------------------------------------
def _kind(name: str):
    """A class of :mod:`.document` by name, or None while this rkgen has none (pictures are newer than the rest)."""
    return getattr(document, name, None)


def _svg_uri(svg) -> str:
    data = svg.encode("utf-8") if isinstance(svg, str) else bytes(svg)
    return "data:image/svg+xml;base64," + base64.b64encode(data).decode("ascii")


def _img(picture) -> str:
    alt = html.escape(str(getattr(picture, "name", "") or "picture"), quote=True)
    return f'<img src="{_svg_uri(picture.svg)}" alt="{alt}">'


def _swap_spans(spans: list, images: dict) -> list:
    """``spans`` with each Picture that has an SVG replaced by a token the Markdown printer leaves alone."""
    picture = _kind("Picture")
    out = []
    for sp in spans:
        if picture is not None and isinstance(sp, picture) and getattr(sp, "svg", None):
            token = f"RKGENPICTURE{len(images)}X"
            images[token] = _img(sp)
            out.append(Text(token))
        elif isinstance(sp, Bold):
            out.append(Bold(_swap_spans(sp.spans, images)))
        else:
            out.append(sp)
    return out


def _swap(block, images: dict):
    if isinstance(block, Heading | Para):
        return replace(block, spans=_swap_spans(block.spans, images))
    if isinstance(block, Table):
        return replace(
            block,
            header=[_swap_spans(c, images) for c in block.header],
            rows=[[_swap_spans(c, images) for c in row] for row in block.rows],
        )
    if isinstance(block, Items):
        return replace(block, items=[_swap_spans(item, images) for item in block.items])
    return block


def cell_markdown(block) -> str:
    """One block as notebook Markdown: :func:`.markdown.markdown_block`, with pictures as embedded SVG images."""
    figure = _kind("Figure")
    if figure is not None and isinstance(block, figure) and getattr(block, "svg", None):
        caption = getattr(block, "caption", None)
        spans = document.rich(caption) if isinstance(caption, str) else list(caption or [])
        return _img(block) + ("\n\n" + cell_markdown(Para(spans)) if spans else "")
    images: dict = {}
    text = markdown_block(_swap(block, images))
    for token, img in images.items():
        text = text.replace(token, img)
    return text


# -- code cells ---------------------------------------------------------------------------------------------------
def _literal(value) -> str:
    """A Python literal of JSON data (strings and lists): JSON's escapes are Python's."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from a JSON escape
        text = json.dumps(value)
    return text


def _strings(rows) -> list:
    return [[str(x) for x in row] for row in rows]


def _short(values) -> bool:
    return all(len(str(x)) <= SHORT_ENTRY for x in values)


def code_setup(doc: Derivation) -> str:
    t = doc.t
    builtin = t.source.startswith("built-in")
    lines = [*([] if builtin else ["import json", ""]), "import numpy as np", "", "import rkgen", ""]
    if builtin:
        lines.append(f"tableau = rkgen.load({json.dumps(t.name)})")
    else:
        data = t.to_dict()
        lines.append("# the tableau of this document, exactly as rkgen read it when the document was written")
        lines.append("data = {")
        lines.extend(f"    {_literal(key)}: {_literal(data[key])}," for key in ("name", "A", "b", "c"))
        lines.append("}")
        lines.append("tableau = rkgen.from_json(json.dumps(data))")
    lines.append("# the same name, A, b and c as this document's")
    lines.append(f'assert tableau.sha256 == "{t.sha256}"')
    lines.append("tableau")
    return "\n".join(lines)


def code_order(doc: Derivation) -> str:
    r = doc.t.order_report
    lines = [
        "report = tableau.order_report",
        'print(f"order {report.order}, stage order {report.stage_order}; '
        'B({report.B}), C({report.C}), D({report.D}) hold")',
        f"assert (report.order, report.stage_order, report.B, report.C, report.D) == "
        f"({r.order}, {r.stage_order}, {r.B}, {r.C}, {r.D})",
    ]
    failing = r.failing
    if failing and len(failing) <= MAX_FAILING_COMPARED and _short(c.residual for c in failing):
        pairs = ", ".join(f"({c.tree.notation!r}, {str(c.residual)!r})" for c in failing)
        lines += [
            f"# the conditions of order {r.order + 1} that fail, with b^T Phi(t) - 1/gamma(t), exactly",
            "failing = [(c.tree.notation, str(c.residual)) for c in report.failing]",
            f"assert failing == [{pairs}]",
            "failing",
        ]
    elif failing:
        lines.append(f"assert len(report.failing) == {len(failing)}  # conditions of order {r.order + 1} that fail")
    return "\n".join(lines)


def code_symplecticity(doc: Derivation) -> str:
    t = doc.t
    M = t.symplecticity_matrix
    lines = [
        "# M = diag(b) A + A^T diag(b) - b b^T, exactly (sympy numbers)",
        "M = [[str(x) for x in row] for row in tableau.symplecticity_matrix]",
        f"assert tableau.is_symplectic is {t.is_symplectic}",
    ]
    values = [x for row in M for x in row]
    if _short(values):
        lines.append(f"assert M == {_strings(M)!r}")
    else:
        floats = [[float(x) for x in row] for row in M]
        lines.append(
            f"assert np.allclose([[float(x) for x in row] for row in tableau.symplecticity_matrix], {floats!r}, "
            "rtol=1e-12, atol=1e-15)"
        )
    lines.append("M")
    return "\n".join(lines)


def code_partner(doc: Derivation) -> str:
    t = doc.t
    if t.zero_weights:
        return "\n".join(
            [
                "# some b_i = 0: conditions (19) have no solution, there is no partner",
                "assert tableau.partner is None",
                f"assert tableau.zero_weights == {t.zero_weights!r}  # 0-based positions in b",
            ]
        )
    partner = t.partner
    pair = t.pair_report(partner)
    lines = [
        "partner = tableau.partner",
        "pair = tableau.pair_report(partner)  # conditions (19), decided exactly",
        f"assert pair.symplectic and pair.c_matches is {pair.c_matches}",
    ]
    values = [x for row in partner.A for x in row]
    if _short(values):
        lines.append(f"assert [[str(x) for x in row] for row in partner.A] == {_strings(partner.A)!r}")
    else:
        floats = [list(row) for row in partner.floats()[0]]
        lines.append(f"assert np.allclose(partner.floats()[0], {floats!r}, rtol=1e-12, atol=1e-15)")
    lines.append("partner")
    return "\n".join(lines)


def code_check(doc: Derivation) -> str:
    from .check import CHECK_D, CHECK_M, CHECK_N, CHECK_SEED, CHECK_STEPS, FD_STEP

    m, d, n = CHECK_M, CHECK_D, CHECK_N
    return "\n".join(
        [
            "from rkgen.reference import Network",
            "",
            "# the random network of section 7",
            f"rng = np.random.default_rng({CHECK_SEED})",
            f"y0 = rng.normal(size=({m}, {d}))",
            f"K = rng.normal(size=({n}, {d}, {d}))",
            f"beta = rng.normal(size=({n}, {d}))",
            f"W = rng.normal(size=({m}, {d}))",
            f"h = np.array({list(CHECK_STEPS)!r})",
            "params = [y0, K, beta, h]",
            "net = Network(tableau)",
            "",
            "",
            'def cost(params, field="resnet"):',
            '    """J = sum of W * y_N."""',
            "    yN, _ = net.forward(*params, field)",
            "    return float(np.sum(W * yN))",
            "",
            "",
            'def adjoint(field="resnet", **form):',
            '    """The gradient from the backward stages, flattened in the order (y0, K, beta, h)."""',
            "    _, tape = net.forward(*params, field)",
            "    return np.concatenate([g.ravel() for g in net.backward(tape, W, **form)])",
            "",
            "",
            f'def central_differences(field="resnet", step={FD_STEP!r}):',
            '    """The same gradient by central differences, entry by entry."""',
            "    out = []",
            "    for k, x in enumerate(params):",
            "        for pos in np.ndindex(x.shape):",
            "            plus, minus = [v.copy() for v in params], [v.copy() for v in params]",
            "            plus[k][pos] += step",
            "            minus[k][pos] -= step",
            "            out.append((cost(plus, field) - cost(minus, field)) / (2 * step))",
            "    return np.array(out)",
            "",
            "",
            "gradient, fd = adjoint(), central_differences()",
            'print(f"largest difference, adjoint against finite differences: {np.max(np.abs(gradient - fd)):.0e}")',
            "assert np.max(np.abs(gradient - fd)) < 1e-6",
        ]
    )


def _array_literal(name: str, numbers: list[str], per_line: int = 6) -> list[str]:
    rows = [", ".join(numbers[k : k + per_line]) + "," for k in range(0, len(numbers), per_line)]
    return [f"{name} = np.array(", "    [", *(f"        {row}" for row in rows), "    ]", ")"]


def code_check_document(doc: Derivation) -> str:
    c = doc.check
    from .formulas import sci

    lines = [
        "# the table of section 7, as the document prints it",
        *_array_literal("document_gradient", [sci(a) for _, a, _ in c.rows]),
        *_array_literal("document_fd", [sci(f) for _, _, f in c.rows]),
        "np.testing.assert_allclose(gradient, document_gradient, rtol=1e-6, atol=1e-12)",
        "np.testing.assert_allclose(fd, document_fd, rtol=1e-6, atol=1e-8)",
        "",
        "# the stable field on the same instance",
        'stable = np.max(np.abs(adjoint("stable") - central_differences("stable")))',
        'print(f"stable field: largest difference {stable:.0e}")',
        "assert stable < 1e-6",
    ]
    if c.p_form_diff is not None:
        lines += [
            "",
            "# the partner form of 6.4, with the true partner and with the misprinted conditions (19)",
            "from rkgen.derive.check import misprinted_weights",
            "",
            'true_partner = np.max(np.abs(adjoint(form="p") - fd))',
            'misprint = np.max(np.abs(adjoint(form="p", weights=misprinted_weights(tableau)) - fd))',
            'print(f"partner form: {true_partner:.0e}; misprinted partner: {misprint:.0e}")',
            "assert true_partner < 1e-6",
        ]
        if doc.misprint_differences:
            lines.append("assert misprint > 1e-4  # a wrong gradient")
        else:
            lines.append("assert misprint < 1e-6  # the misprint gives the same partner here")
    return "\n".join(lines)


def code_stability(doc: Derivation) -> str | None:
    st = doc.t.stability
    lines = [
        "stability = tableau.stability  # exact: R(z) = P(z)/Q(z), A- and L-stability, the real interval",
        f"assert str(stability.R) == {str(st.R)!r}",
        f"assert (stability.a_stable, stability.l_stable) == ({bool(st.a_stable)}, {bool(st.l_stable)})",
        f"assert stability.interval.text == {st.interval.text!r}",
        'print(f"A-stable: {stability.a_stable}; L-stable: {stability.l_stable}; interval {stability.interval.text}")',
    ]
    identity = getattr(st, "partner_identity", None)
    if identity is not None:
        lines += [
            "# the partner's stability function: R~(z) R(-z) = 1, the backward pass amplifies as the forward pass",
            f"assert stability.partner_identity is {bool(identity)}",
        ]
    lines.append("stability.R")
    return "\n".join(lines)


def code_stability_plot(doc: Derivation) -> str | None:
    return "\n".join(
        [
            "from rkgen.plot import stability_plot",
            "",
            "# the stability region {z : |R(z)| <= 1}; stability_plot(tableau).save('region.pdf') writes it",
            "stability_plot(tableau)",
        ]
    )


def code_roads(doc: Derivation) -> str:
    from .sections_roads import DOC_LAYERS, NUMBER

    return "\n".join(
        [
            "from rkgen.compare import compare",
            "",
            f"# section {NUMBER}: the two roads to the gradient, measured again; rkgen.compare.compare(tableau) with",
            "# layers=(4, 8, ..., 128) goes further, and `rkgen compare-adjoints` plots it",
            f"roads = compare(tableau, layers={DOC_LAYERS!r})",
            'for key in ("b", "c", "a"):',
            "    fit, theory = roads.fits[key], roads.theory[key]",
            '    errors = [f"{e:.2e}" if e is not None else "-" for e in roads.errors[key]]',
            "    print(key, errors, fit.order, theory.reason)",
            "    assert roads.agrees(key) is not False or roads.approaching(key)",
        ]
    )


#: The code cells after each section (by the name of its function in :data:`.derivation.SECTIONS`).
CODE_AFTER = {
    "section_order": (code_order,),
    "section_symplecticity": (code_symplecticity,),
    "section_partner": (code_partner,),
    "section_check": (code_check, code_check_document),
    "section_roads": (code_roads,),
}


def _code_after(section) -> tuple:
    name = getattr(section, "__name__", "")
    if name in CODE_AFTER:
        return CODE_AFTER[name]
    if "stability" in name:
        return (code_stability, code_stability_plot)
    return ()


# -- the notebook -------------------------------------------------------------------------------------------------
def _lines(text: str) -> list[str]:
    return text.splitlines(keepends=True)


def _markdown_cells(blocks: list) -> list[str]:
    """Markdown cells: a new cell at each heading, blocks joined as in the document."""
    cells: list[list[str]] = []
    for block in blocks:
        if isinstance(block, Heading) or not cells:
            cells.append([])
        cells[-1].append(cell_markdown(block))
    return ["\n\n".join(parts) for parts in cells]


def notebook(doc: Derivation) -> dict:
    """The derivation ``doc`` as a notebook (nbformat 4.5 data: Markdown and code cells, not run)."""
    from .. import __version__
    from .derivation import SECTIONS
    from .sections_tableau import preface

    cells: list[tuple[str, str]] = []
    head = f"# {md_text(doc.title)}\n\n{cell_markdown(preface(doc))}"
    cells.append(("markdown", head))
    cells.append(
        (
            "markdown",
            "The code cells of this notebook recompute the document's results with rkgen's API and `assert` that "
            "they agree with it; run them in order (Run All).",
        )
    )
    cells.append(("code", code_setup(doc)))
    for section in SECTIONS:
        cells.extend(("markdown", text) for text in _markdown_cells(section(doc)))
        for make in _code_after(section):
            code = make(doc)
            if code:
                cells.append(("code", code))
    out = []
    for k, (kind, text) in enumerate(cells):
        cell = {"cell_type": kind, "id": f"{kind}-{k:03d}", "metadata": {}, "source": _lines(text)}
        if kind == "code":
            cell.update(execution_count=None, outputs=[])
        out.append(cell)
    return {
        "cells": out,
        "metadata": {
            "kernelspec": dict(_KERNEL),
            "language_info": {"name": "python"},
            "rkgen": {"version": __version__, "tableau": doc.t.name, "params": doc.params},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def notebook_json(doc: Derivation) -> str:
    """:func:`notebook` as the text nbformat writes: one-space indent, sorted keys, UTF-8, a final newline.

    >>> from rkgen.derive import Derivation
    >>> text = notebook_json(Derivation("euler"))
    >>> nb = json.loads(text)
    >>> nb["nbformat"], nb["cells"][0]["source"][0]
    (4, '# Exact gradients for euler: a derivation\\n')
    """
    return json.dumps(notebook(doc), indent=1, sort_keys=True, ensure_ascii=False) + "\n"
