"""The document model of the derivation (tableau -> adjoint equations (data) -> these blocks -> Markdown or LaTeX).

A derivation document is a list of blocks (headings, paragraphs of spans, display math, tables, item lists,
captioned figures); the spans of a paragraph are text, inline math, code, bold and small inline pictures.
:mod:`.markdown` and :mod:`.latex` print them: a drawing carries both its SVG (for Markdown, written beside the
document) and its TikZ (inlined in LaTeX), made from one layout (:mod:`.drawing`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "Text",
    "Math",
    "Code",
    "Bold",
    "Picture",
    "rich",
    "Heading",
    "Para",
    "Display",
    "Table",
    "Items",
    "Figure",
    "drawings",
]


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


@dataclass(frozen=True)
class Picture:
    """A span: a small inline drawing, e.g. a tree inside a table cell.

    ``name`` is a file-safe stem, unique in the document (Markdown written to a file puts the SVG in
    ``<stem>_figures/<name>.svg``); ``svg`` is a complete ``<svg ...>...</svg>`` element and ``tikz`` a complete
    ``\\begin{tikzpicture}...\\end{tikzpicture}``, both deterministic text (rounded coordinates)."""

    name: str
    svg: str
    tikz: str


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


@dataclass(frozen=True)
class Figure:
    """A block: a captioned drawing, e.g. a stability region (``name``, ``svg``, ``tikz`` as for :class:`Picture`;
    ``caption`` is a list of spans)."""

    name: str
    svg: str
    tikz: str
    caption: list


_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")


def _spans_of(block) -> list:
    if isinstance(block, (Heading, Para)):
        return [block.spans]
    if isinstance(block, Table):
        return [block.header, *(cell for row in block.rows for cell in row)] if block.rows else [block.header]
    if isinstance(block, Items):
        return list(block.items)
    if isinstance(block, Figure):
        return [block.caption]
    return []


def _pictures_in(spans: list):
    for sp in spans:
        if isinstance(sp, Picture):
            yield sp
        elif isinstance(sp, Bold):
            yield from _pictures_in(sp.spans)


def drawings(blocks: list) -> list:
    """Every :class:`Figure` and :class:`Picture` of a document, in order, each name once.

    A name must be file-safe (letters, digits, ``_.-``, not starting with a dot) and may be used again only for
    the very same drawing; anything else is a ValueError, since the Markdown writer turns names into file names.

    >>> p = Picture("tree-1", "<svg/>", "tikz")
    >>> [d.name for d in drawings([Para([Text("a"), p]), Table([[Text("t")]], [[[p]]], "l")])]
    ['tree-1']
    """
    seen: dict[str, object] = {}
    out = []
    for block in blocks:
        found = [block] if isinstance(block, Figure) else []
        for spans in _spans_of(block):
            found.extend(_pictures_in(spans))
        for d in found:
            if not _NAME.fullmatch(d.name):
                raise ValueError(f"drawing name {d.name!r} is not a file-safe stem")
            old = seen.get(d.name)
            if old is None:
                seen[d.name] = d
                out.append(d)
            elif (old.svg, old.tikz) != (d.svg, d.tikz):
                raise ValueError(f"two different drawings are named {d.name!r}")
    return out
