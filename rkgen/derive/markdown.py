"""The Markdown printer of the derivation: blocks -> text with $...$ math (the document beside the module)."""

from __future__ import annotations

import re

from .document import Code, Display, Heading, Items, Math, Para, Table, Text

__all__ = ["md_text", "markdown_block"]


_MD_SPECIAL = re.compile(r"([\\`*_$<>\[\]|#&])")


def md_text(text: str) -> str:
    """Plain text for Markdown: characters with a meaning there are escaped.

    >>> md_text("a_b $5 <x> [1]")
    'a\\\\_b \\\\$5 \\\\<x\\\\> \\\\[1\\\\]'
    """
    return _MD_SPECIAL.sub(r"\\\1", text)


def markdown_spans(spans: list) -> str:
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
            out.append(f"**{markdown_spans(sp.spans)}**")
    return "".join(out)


def markdown_block(block) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + markdown_spans(block.spans)
    if isinstance(block, Para):
        return markdown_spans(block.spans)
    if isinstance(block, Display):
        if block.aligned:
            body = " \\\\\n".join(block.lines)
            return f"$$\n\\begin{{aligned}}\n{body}\n\\end{{aligned}}\n$$"
        return "$$\n" + "\n".join(block.lines) + "\n$$"
    if isinstance(block, Table):
        head = "| " + " | ".join(markdown_spans(c) for c in block.header) + " |"
        rule = "|" + "|".join({"l": ":---", "c": ":---:", "r": "---:"}[a] for a in block.align) + "|"
        rows = ["| " + " | ".join(markdown_spans(c) for c in row) + " |" for row in block.rows]
        return "\n".join([head, rule, *rows])
    if isinstance(block, Items):
        return "\n".join("- " + markdown_spans(item) for item in block.items)
    raise TypeError(block)  # pragma: no cover
