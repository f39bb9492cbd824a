"""The document model of the derivation (tableau -> adjoint equations (data) -> these blocks -> Markdown or LaTeX).

A derivation document is a list of blocks (headings, paragraphs of spans, display math, tables, item lists); the
spans of a paragraph are text, inline math, code and bold.  :mod:`.markdown` and :mod:`.latex` print them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Text", "Math", "Code", "Bold", "rich", "Heading", "Para", "Display", "Table", "Items"]


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
