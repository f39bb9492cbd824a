"""The Markdown printer of the derivation: blocks -> text with $...$ math (the document beside the module).

Drawings (:class:`~.document.Picture`, :class:`~.document.Figure`) are SVG files: a document written to a file links
them from the folder ``<stem>_figures`` beside it (``figures`` names that folder, relative to the document), and
:func:`figure_files` gives the files to write there.  A document without such a folder (on stdout) says instead,
briefly, that ``-o`` writes the drawings.
"""

from __future__ import annotations

from urllib.parse import quote

from ..textfmt import md_text
from .document import Code, Display, Figure, Heading, Items, Math, Para, Picture, Table, Text, drawings

__all__ = ["md_text", "markdown_block", "markdown_document", "figure_files", "figures_folder", "SVG_MARK"]

#: The first line of every SVG file the Markdown writer puts in a ``_figures`` folder: how it recognises its own
#: files (only those are replaced or removed as stale).
SVG_MARK = "<!-- drawn by rkgen derive -->"

#: What stands for a drawing in Markdown without a figures folder (stdout): a figure, and a picture in a table cell.
FIGURE_NOTE = "(drawn in an SVG file beside the document when it is written with `-o FILE.md`)"
PICTURE_NOTE = "(`-o` draws it)"




def figures_folder(stem: str) -> str:
    """The name of the folder of a Markdown document's SVG files, beside the document ``<stem>.md``.

    >>> figures_folder("euler")
    'euler_figures'
    """
    return f"{stem}_figures"


def _link(figures: str, name: str) -> str:
    return quote(f"{figures}/{name}.svg", safe="/")


def markdown_spans(spans: list, figures: str | None = None) -> str:
    out = []
    for sp in spans:
        if isinstance(sp, Picture):
            out.append(PICTURE_NOTE if figures is None else f"![{md_text(sp.name)}]({_link(figures, sp.name)})")
            continue
        if isinstance(sp, Text):
            out.append(md_text(sp.text))
        elif isinstance(sp, Math):
            out.append(f"${sp.tex.strip()}$")
        elif isinstance(sp, Code):
            fence = "``" if "`" in sp.text else "`"
            out.append(f"{fence}{sp.text}{fence}")
        else:
            out.append(f"**{markdown_spans(sp.spans, figures)}**")
    return "".join(out)


def markdown_block(block, figures: str | None = None) -> str:
    """One block as Markdown; ``figures`` is the folder (relative to the document) its drawings are linked from,
    or None for a document without files beside it (stdout)."""
    if isinstance(block, Heading):
        return "#" * block.level + " " + markdown_spans(block.spans, figures)
    if isinstance(block, Para):
        return markdown_spans(block.spans, figures)
    if isinstance(block, Figure):
        caption = markdown_spans(block.caption, figures)
        if figures is None:
            return f"{caption} {FIGURE_NOTE}"
        return f"![{md_text(block.name)}]({_link(figures, block.name)})\n\n{caption}"
    if isinstance(block, Display):
        if block.aligned:
            body = " \\\\\n".join(block.lines)
            return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"
        return "$$\n" + "\n".join(block.lines) + "\n$$"
    if isinstance(block, Table):
        head = "| " + " | ".join(markdown_spans(c, figures) for c in block.header) + " |"
        rule = "|" + "|".join({"l": ":---", "c": ":---:", "r": "---:"}[a] for a in block.align) + "|"
        rows = ["| " + " | ".join(markdown_spans(c, figures) for c in row) + " |" for row in block.rows]
        return "\n".join([head, rule, *rows])
    if isinstance(block, Items):
        return "\n".join("- " + markdown_spans(item, figures) for item in block.items)
    raise TypeError(block)  # pragma: no cover


def markdown_document(title: str, blocks: list, figures: str | None = None) -> str:
    """The whole Markdown document (template ``derive.md.j2``), its drawings linked from ``figures`` (or noted)."""
    from ..codegen import template_environment

    body = "\n\n".join(markdown_block(b, figures) for b in blocks)
    text = template_environment().get_template("derive.md.j2").render(title=md_text(title), body=body)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


def figure_files(blocks: list) -> dict[str, str]:
    """The SVG files of a document's drawings: file name -> content (:data:`SVG_MARK`, then the SVG)."""
    return {f"{d.name}.svg": SVG_MARK + "\n" + d.svg.rstrip("\n") + "\n" for d in drawings(blocks)}
