"""The LaTeX printer of the derivation: blocks -> standalone, ASCII-only LaTeX (the document beside the module)."""

from __future__ import annotations

import unicodedata

from .document import Code, Display, Heading, Items, Math, Para, Table, Text

__all__ = ["tex_text", "latex_block"]


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


def latex_spans(spans: list) -> str:
    out = []
    for sp in spans:
        if isinstance(sp, Text):
            out.append(tex_text(sp.text))
        elif isinstance(sp, Math):
            out.append(f"${sp.tex.strip()}$")
        elif isinstance(sp, Code):
            out.append(r"\texttt{" + tex_text(sp.text) + "}")
        else:
            out.append(r"\textbf{" + latex_spans(sp.spans) + "}")
    return "".join(out)


def latex_block(block) -> str:
    if isinstance(block, Heading):
        cmd = {2: "section*", 3: "subsection*"}[block.level]
        return f"\\{cmd}{{{latex_spans(block.spans)}}}"
    if isinstance(block, Para):
        return latex_spans(block.spans)
    if isinstance(block, Display):
        if block.aligned:
            return "\\begin{align*}\n" + " \\\\\n".join(block.lines) + "\n\\end{align*}"
        return "\\[\n" + "\n".join(block.lines) + "\n\\]"
    if isinstance(block, Table):
        spec = "".join({"l": "l", "c": "c", "r": "r"}[a] for a in block.align)
        lines = ["\\begingroup\\small", f"\\begin{{longtable}}{{{spec}}}", "\\hline"]
        lines.append(" & ".join(latex_spans(c) for c in block.header) + " \\\\")
        lines += ["\\hline", "\\endhead"]
        lines += [" & ".join(latex_spans(c) for c in row) + " \\\\" for row in block.rows]
        lines += ["\\hline", "\\end{longtable}", "\\endgroup"]
        return "\n".join(lines)
    if isinstance(block, Items):
        return "\\begin{itemize}\n" + "\n".join("\\item{} " + latex_spans(i) for i in block.items) + "\n\\end{itemize}"
    raise TypeError(block)  # pragma: no cover


# ==================================================================================================
# LaTeX of the exact objects
