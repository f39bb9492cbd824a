r"""The LaTeX printer of the derivation: blocks -> standalone, ASCII-only LaTeX (the document beside the module).

Text is transliterated to LaTeX: Greek letters, mathematical signs (√, −, ×, ≤, ...), blackboard letters (ℚ) and
accented Latin letters become macros; quotes and dashes become TeX's.  A character with no LaTeX form is printed
as ``\missingchar{XXXX}`` (a boxed ``U+XXXX``), and :func:`missing_characters` finds those in a document, so that
`rkgen derive` can name them in a warning instead of printing "?" silently.

Wide material is made to fit the page: a table whose columns would be wider than the line gets paragraph columns
(its math made breakable), and a display line too wide for the page is broken at its top-level ``+``, ``-`` and
``=`` signs over aligned lines.
"""

from __future__ import annotations

import re
import unicodedata

from .document import Code, Display, Figure, Heading, Items, Math, Para, Picture, Table, Text

__all__ = ["tex_text", "latex_block", "latex_document", "missing_characters", "break_display", "tex_width"]


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
    "\u00df": r"\ss{}",
    "\u00e6": r"\ae{}",
    "\u00c6": r"\AE{}",
    "\u0153": r"\oe{}",
    "\u0152": r"\OE{}",
    "\u00f8": r"\o{}",
    "\u00d8": r"\O{}",
    "\u00e5": r"\aa{}",
    "\u00c5": r"\AA{}",
    "\u0142": r"\l{}",
    "\u0141": r"\L{}",
    "\u0131": r"\i{}",
    "\u00a1": "!`",
    "\u00bf": "?`",
    "\u00a7": r"\S{}",
    "\u00b6": r"\P{}",
    "\u00a9": r"\copyright{}",
    "\u2022": r"\textbullet{}",
    "\u00ab": r"\ensuremath{\ll}",
    "\u00bb": r"\ensuremath{\gg}",
    "\u2002": r"\enskip{}",
    "\u2003": r"\quad{}",
    "\u2009": r"\,",
    "\u202f": r"\,",
}
_GREEK_CAPITALS = r"\Gamma \Delta \Theta \Lambda \Xi \Pi \Sigma \Upsilon \Phi \Psi \Omega"
#: Characters typeset in math mode (``\ensuremath``): Greek, operators, relations, arrows, blackboard letters.
_TEX_MATH = {
    **dict(
        zip(
            "αβγδεζηθικλμνξπρσςτυφχψω",
            r"\alpha \beta \gamma \delta \varepsilon \zeta \eta \theta \iota \kappa \lambda \mu \nu \xi \pi \rho "
            r"\sigma \varsigma \tau \upsilon \varphi \chi \psi \omega".split(),
            strict=True,
        )
    ),
    **dict(zip("ΓΔΘΛΞΠΣΥΦΨΩ", _GREEK_CAPITALS.split(), strict=True)),
    **dict(zip("ΑΒΕΖΗΙΚΜΝΟΡΤΧο", r"A B E Z H I K M N O P T X o".split(), strict=True)),
    "ϑ": r"\vartheta",
    "ϕ": r"\phi",
    "ϵ": r"\epsilon",
    "ϖ": r"\varpi",
    "ϱ": r"\varrho",
    "√": r"\surd",
    "∛": r"\sqrt[3]{\,}",
    "−": "-",
    "×": r"\times",
    "÷": r"\div",
    "·": r"\cdot",
    "⋅": r"\cdot",
    "±": r"\pm",
    "∓": r"\mp",
    "≤": r"\le",
    "≥": r"\ge",
    "≠": r"\ne",
    "≈": r"\approx",
    "≡": r"\equiv",
    "∼": r"\sim",
    "≪": r"\ll",
    "≫": r"\gg",
    "∞": r"\infty",
    "∂": r"\partial",
    "∇": r"\nabla",
    "∑": r"\sum",
    "∏": r"\prod",
    "∫": r"\int",
    "∈": r"\in",
    "∉": r"\notin",
    "⊂": r"\subset",
    "⊆": r"\subseteq",
    "∪": r"\cup",
    "∩": r"\cap",
    "∅": r"\emptyset",
    "∀": r"\forall",
    "∃": r"\exists",
    "¬": r"\neg",
    "∧": r"\wedge",
    "∨": r"\vee",
    "→": r"\to",
    "←": r"\leftarrow",
    "↦": r"\mapsto",
    "⇒": r"\Rightarrow",
    "⇔": r"\Leftrightarrow",
    "↔": r"\leftrightarrow",
    "⊙": r"\odot",
    "⊗": r"\otimes",
    "⊕": r"\oplus",
    "°": r"^{\circ}",
    "′": r"'",
    "ℓ": r"\ell",
    "ℏ": r"\hbar",
    "ℚ": r"\mathbb{Q}",
    "ℝ": r"\mathbb{R}",
    "ℕ": r"\mathbb{N}",
    "ℤ": r"\mathbb{Z}",
    "ℂ": r"\mathbb{C}",
    "½": r"\tfrac{1}{2}",
    "⅓": r"\tfrac{1}{3}",
    "¼": r"\tfrac{1}{4}",
    "¾": r"\tfrac{3}{4}",
    "ᵀ": r"^{T}",
    "𝟙": r"\mathbf{1}",
    "⟨": r"\langle",
    "⟩": r"\rangle",
    "‖": r"\|",
    "∘": r"\circ",
    "†": r"\dagger",
    "★": r"\star",
}
_SUPER = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁺⁻⁼⁽⁾ⁿⁱ", "0123456789+-=()ni", strict=True))
_SUB = dict(zip("₀₁₂₃₄₅₆₇₈₉₊₋₌₍₎", "0123456789+-=()", strict=True))
#: Combining accents of decomposed (NFD) Latin letters, as text-mode accent macros of the OT1 encoding.
_ACCENTS = {
    "\u0300": "`",
    "\u0301": "'",
    "\u0302": "^",
    "\u0303": "~",
    "\u0304": "=",
    "\u0306": "u",
    "\u0307": ".",
    "\u0308": '"',
    "\u030a": "r",
    "\u030b": "H",
    "\u030c": "v",
    "\u0323": "d",
    "\u0327": "c",
    "\u0331": "b",
}
#: Text that stands for a character LaTeX cannot typeset here (defined in derive.tex.j2).
MISSING = re.compile(r"\\missingchar\{([0-9A-F]{4,6})\}")


def _accented(ch: str) -> str | None:
    """An accented Latin letter as accent macros (``é`` -> ``\\'{e}``), or None."""
    parts = unicodedata.normalize("NFD", ch)
    base, marks = parts[0], parts[1:]
    if not (base.isascii() and base.isalpha()) or not marks or any(m not in _ACCENTS for m in marks):
        return None
    out = {"i": r"\i{}", "j": r"\j{}"}.get(base, base) if marks[0] not in "\u0323\u0327\u0331" else base
    for m in marks:
        out = f"\\{_ACCENTS[m]}{{{out}}}"
    return out


def _char(ch: str) -> str:
    """One non-ASCII character as LaTeX, or ``\\missingchar{XXXX}`` when it has none here."""
    if ch in _TEX_UNICODE:
        return _TEX_UNICODE[ch]
    if ch in _TEX_MATH:
        return r"\ensuremath{" + _TEX_MATH[ch] + "}"
    if ch in _SUPER:
        return r"\textsuperscript{" + _SUPER[ch] + "}"
    if ch in _SUB:
        return r"\ensuremath{_{" + _SUB[ch] + "}}"
    accented = _accented(ch)
    if accented is not None:
        return accented
    compat = unicodedata.normalize("NFKC", ch)  # ligatures, full-width forms, ...
    if compat != ch and compat.isascii():
        return tex_text(compat)
    if unicodedata.category(ch).startswith("Z"):  # other spaces
        return " "
    if unicodedata.category(ch) in ("Mn", "Cf"):  # a stray combining mark, a zero-width character
        return ""
    return r"\missingchar{" + f"{ord(ch):04X}" + "}"


_DOUBLE_OPEN = re.compile(r'(^|(?<=[\s(\[{/-]))"')
_SINGLE_OPEN = re.compile(r"(^|(?<=[\s(\[{/-]))'")
_RANGE = re.compile(r"(?<=[\d)])-(?=[\d(])")
#: An abbreviation before a number (Prop. 3.1, Thm. VI.4.6): a tie, so that the line does not break there; "et al."
#: takes an interword space, not the wider space after a sentence.
_TIE = re.compile(r"\b(Prop|Thm|Sec|Fig|Eq|eqs|Vol|No)\. (?=[\dIVX(])")
_ET_AL = re.compile(r"\bet al\. ")


def tex_text(text: str, typewriter: bool = False) -> str:
    """Plain text for LaTeX, ASCII out.

    Special characters are escaped, non-ASCII characters transliterated (see the module), ASCII quotes become
    TeX's opening and closing quotes, a hyphen between digits (a range, 2-3) an en dash, and the space after an
    abbreviation before a number a tie; ``typewriter`` text (code) keeps its quotes and hyphens.

    >>> tex_text("a_b & 50% {x} Runge\u2013Kutta, Sch\u00f6nlieb")
    'a\\\\_b \\\\& 50\\\\% \\\\{x\\\\} Runge--Kutta, Sch\\\\"{o}nlieb'
    >>> print(tex_text("\u03b3 = 1 \u2212 \u221a2/2"))
    \\ensuremath{\\gamma} = 1 \\ensuremath{-} \\ensuremath{\\surd}2/2
    >>> tex_text("'Improved Euler', \\"x\\" and pages 171-198")
    "`Improved Euler', ``x'' and pages 171--198"
    >>> print(tex_text("Benning et al. [BCE+19, Prop. 3.1]"))
    Benning et al.\\ [BCE+19, Prop.~3.1]
    >>> tex_text("\u4e2d")
    '\\\\missingchar{4E2D}'
    """
    if not typewriter:
        text = _DOUBLE_OPEN.sub("\u201c", text).replace('"', "\u201d")
        text = _SINGLE_OPEN.sub("\u2018", text)
        text = _RANGE.sub("\u2013", text)
    out = []

    for ch in text:
        if ch in _TEX_ESCAPES:
            out.append(_TEX_ESCAPES[ch])

        elif ord(ch) < 128:
            out.append(ch if ch.isprintable() or ch == "\n" else " ")
        else:
            out.append(_char(ch))
    tex = "".join(out)
    if not typewriter:  # the abbreviations read the same escaped: they hold no special character
        tex = _ET_AL.sub(r"et al.\\ ", _TIE.sub(r"\1.~", tex))
    return tex


def missing_characters(tex: str) -> list[str]:
    """The characters a LaTeX document could not typeset (each once, in order), from its ``\\missingchar``s.

    >>> missing_characters(tex_text("\u4e2d and \u263a and \u4e2d"))
    ['\u4e2d', '\u263a']
    """
    return list(dict.fromkeys(chr(int(code, 16)) for code in MISSING.findall(tex)))


def latex_spans(spans: list, breakable: bool = False) -> str:
    """Spans as LaTeX; ``breakable`` math (in a paragraph column of a table) may break after its commas."""
    out = []
    for sp in spans:
        if isinstance(sp, Text):
            out.append(tex_text(sp.text))
        elif isinstance(sp, Math):
            out.append(f"${_breakable_math(sp.tex.strip()) if breakable else sp.tex.strip()}$")
        elif isinstance(sp, Code):
            out.append(r"\texttt{" + tex_text(sp.text, typewriter=True) + "}")
        elif isinstance(sp, Picture):
            out.append(sp.tikz.strip())
        else:
            out.append(r"\textbf{" + latex_spans(sp.spans, breakable) + "}")
    return "".join(out)


def _breakable_math(tex: str) -> str:
    r"""Inline math that TeX may break inside a narrow column: ``\left( \right)`` (one unbreakable box) become
    ``\bigl( \bigr)``, and a break is allowed after each comma outside braces."""
    tex = tex.replace(r"\left(", r"\bigl(").replace(r"\right)", r"\bigr)")
    out, depth = [], 0
    for k, ch in enumerate(tex):
        depth += {"{": 1, "}": -1}.get(ch, 0) if tex[k - 1 : k] != "\\" else 0
        out.append(ch)
        if ch == "," and depth == 0 and tex[k - 1 : k] != "\\":
            out.append(r"\allowbreak")
    return "".join(out)


# --------------------------------------------------------------------------------------------------
# widths: a rough measure of typeset material, in the width of a digit of the normal font
# --------------------------------------------------------------------------------------------------

#: The text width of the page (A4, 2 cm margins: 170 mm), in digit widths of 10 pt Computer Modern (5 pt).
LINE_WIDTH = 96
#: How much wider typeset math may be than :func:`tex_width` says (it is a rough count): tables and displays are
#: planned with this margin.
MATH_SAFETY = 1.15
_COMMAND = re.compile(r"\\([A-Za-z]+|.)")
_ZERO = {
    "left",
    "right",
    "mathbf",
    "mathrm",
    "mathcal",
    "mathbb",
    "operatorname",
    "tilde",
    "hat",
    "bar",
    "big",
    "bigl",
    "bigr",
    "Big",
    "Bigl",
    "Bigr",
    "displaystyle",
    "textstyle",
    "allowbreak",
    "text",
    "lvert",
    "rvert",
    "ensuremath",
    "textbf",
    "texttt",
    "boldsymbol",
    "limits",
    "nolimits",
    "begin",
    "end",
    "hline",
    "vec",
}
_WIDE = {
    "qquad": 4,
    "quad": 2,
    "sum": 2,
    "prod": 2,
    "int": 2,
    "odot": 2,
    "otimes": 2,
    "cdot": 1.5,
    "times": 2,
    "le": 2.5,
    "ge": 2.5,
    "ne": 2.5,
    "approx": 2.5,
    "to": 2.5,
    ",": 0.4,
    " ": 0.7,
    ";": 0.6,
    "!": -0.3,
}


def _group(tex: str, k: int) -> tuple[str, int]:
    """The brace group (or single token) starting at ``k``: (its content, the index after it)."""
    while k < len(tex) and tex[k] == " ":
        k += 1
    if k >= len(tex):
        return "", k
    if tex[k] != "{":
        m = _COMMAND.match(tex, k)
        return (m.group(0), m.end()) if m else (tex[k], k + 1)
    depth = 0
    for j in range(k, len(tex)):
        depth += {"{": 1, "}": -1}.get(tex[j], 0) if tex[j - 1 : j] != "\\" else 0
        if depth == 0:
            return tex[k + 1 : j], j + 1
    return tex[k + 1 :], len(tex)


def tex_width(tex: str) -> float:
    r"""A rough width of inline or display math, in digit widths: fractions count their wider part, scripts
    count 0.7, relations and binary operators their spacing.

    >>> tex_width(r"\frac{1}{2} + x"), tex_width(r"a_{12}")
    (4.6, 2.4)
    """
    width, k = 0.0, 0
    while k < len(tex):
        ch = tex[k]
        if ch == "\\":
            m = _COMMAND.match(tex, k)
            name = m.group(1)
            k = m.end()
            if name in ("frac", "tfrac", "dfrac", "binom"):
                a, k = _group(tex, k)
                b, k = _group(tex, k)
                width += max(tex_width(a), tex_width(b)) + 0.4
            elif name == "sqrt":
                a, k = _group(tex, k)
                width += tex_width(a) + 1.6
            elif name in ("text", "mathrm", "operatorname", "texttt"):
                a, k = _group(tex, k)
                width += len(a) * 0.95
            elif name in ("begin", "end"):
                _, k = _group(tex, k)
            elif name in _WIDE:
                width += _WIDE[name]
            elif name not in _ZERO:
                width += 1.1
        elif ch in "^_":
            a, k = _group(tex, k + 1)
            width += 0.7 * tex_width(a)
        elif ch in "{}&":
            k += 1
        elif ch in "+-=<>":
            width += 2.6 if ch in "=<>" else 2.2
            k += 1
        elif ch == " ":
            k += 1
        else:
            width += 1.0
            k += 1
    return round(width, 2)


def _top_level_signs(tex: str) -> list[int]:
    """Indices of ``+``, ``-``, ``=`` and ``\\qquad`` outside braces and outside ``\\left ... \\right`` (where a
    line may break), not at the start and not right after another sign or ``&``."""
    out, depth, left = [], 0, 0
    k = 0
    while k < len(tex):
        if tex.startswith(r"\left", k) and not tex.startswith(r"\leftarrow", k):
            left += 1
            k += 5
            continue
        if tex.startswith(r"\right", k) and not tex.startswith(r"\rightarrow", k):
            left -= 1
            k += 6
            continue
        ch = tex[k]
        if tex.startswith(r"\qquad", k):
            if depth == 0 and left == 0 and tex[:k].strip() and not tex[:k].rstrip().endswith("&"):
                out.append(k)  # between two equations of one line: the best place for a break
            k += 6
            continue
        if ch == "\\":
            k += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch in "+-=" and depth == 0 and left == 0:
            before = tex[:k].rstrip()
            if before and before[-1] not in "+-=&({[,":
                out.append(k)
        k += 1
    return out


def break_display(line: str, width: float = LINE_WIDTH / MATH_SAFETY) -> list[str]:
    r"""An align* line (``lhs &= rhs``) broken at top-level signs into lines that fit ``width``; continuation lines
    start ``&\quad``.  A line that fits, or that has nowhere to break, is returned as it is.

    >>> break_display(r"x &= a + b + c", width=8)
    ['x &= a + b', '&\\quad + c']
    """
    if tex_width(line) <= width:
        return [line]
    amp = line.find("&")
    head_end = amp + 1 if amp >= 0 else 0
    signs = [k for k in _top_level_signs(line) if k > head_end]
    if not signs:
        return [line]
    lines, start = [], 0
    indent = tex_width(line[:head_end]) + 2
    budget = width
    last = None
    for k in signs + [len(line)]:
        if tex_width(line[start:k]) > budget and last is not None and last > start:
            lines.append(line[start:last].rstrip())
            start = last
            budget = width - indent
        last = k
    lines.append(line[start:].rstrip())
    rest = [part.lstrip().removeprefix(r"\qquad").lstrip() for part in lines[1:]]
    return [lines[0]] + [r"&\quad " + part for part in rest]


def _display(block: Display) -> str:
    lines = list(block.lines)
    aligned = block.aligned
    if not aligned and len(lines) == 1 and tex_width(lines[0]) > LINE_WIDTH / MATH_SAFETY and "\\begin" not in lines[0]:
        # one long equation: aligned at its first "=" (or at its start), then broken like an align* line
        line = lines[0]
        eq = next((k for k in _top_level_signs(line) if line[k] == "="), None)
        lines = [line[:eq] + "&" + line[eq:]] if eq is not None else ["&" + line]
        aligned = True
    if not aligned:
        return "\\[\n" + "\n".join(lines) + "\n\\]"
    out = []
    for line in lines:
        out.extend(break_display(line) if "\\begin" not in line else [line])
    return "\\begin{align*}\n" + " \\\\\n".join(out) + "\n\\end{align*}"


def _cell_width(spans: list) -> float:
    width = 0.0
    for sp in spans:
        if isinstance(sp, Text):
            width += 0.9 * len(sp.text)
        elif isinstance(sp, Code):
            width += 1.05 * len(sp.text)
        elif isinstance(sp, Math):
            width += MATH_SAFETY * tex_width(sp.tex)
        elif isinstance(sp, Picture):
            width += 5
        else:
            width += _cell_width(sp.spans)
    return width


def _columns(block: Table) -> tuple[str, list[bool]]:
    """The longtable column spec: the natural columns when the table fits the line (in ``\\small``), else the
    widest columns as ragged-right paragraph columns that share what the others leave; which columns wrap."""
    n = len(block.align)
    cells = [block.header, *block.rows]
    natural = [max(_cell_width(row[k]) for row in cells) * 0.9 for k in range(n)]  # \small is 9/10 of the size
    pad = 2.4  # \tabcolsep on both sides, in digit widths
    room = LINE_WIDTH - pad * n - 2  # a reserve of 10 pt for the roughness of the estimate
    spec = [{"l": "l", "c": "c", "r": "r"}.get(a, "l") for a in block.align]
    wrap = [False] * n
    if sum(natural) <= room:
        return "".join(spec), wrap
    has_picture = [any(isinstance(sp, Picture) for row in block.rows for sp in row[k]) for k in range(n)]
    level = room / n  # the water level: columns narrower than it keep their width, the others share the rest
    for _ in range(n):
        fixed = [w for w in natural if w <= level]
        wide = n - len(fixed)
        if not wide:
            break
        new = (room - sum(fixed)) / wide
        if abs(new - level) < 1e-9:
            break
        level = new
    for k in range(n):
        if natural[k] > level and not has_picture[k]:
            fraction = max(level, 4) / LINE_WIDTH
            spec[k] = rf">{{\raggedright\arraybackslash}}p{{{fraction:.3f}\linewidth}}"
            wrap[k] = True
    return "".join(spec), wrap


def latex_block(block) -> str:
    if isinstance(block, Heading):
        cmd = {2: "section*", 3: "subsection*"}[block.level]
        return f"\\{cmd}{{{latex_spans(block.spans)}}}"
    if isinstance(block, Para):
        return latex_spans(block.spans)
    if isinstance(block, Display):
        return _display(block)
    if isinstance(block, Figure):
        return "\n".join(
            [
                r"\begin{figure}[htbp]",
                r"\centering",
                block.tikz.strip(),
                r"\caption{" + latex_spans(block.caption) + "}",
                r"\end{figure}",
            ]
        )
    if isinstance(block, Table):
        spec, wrap = _columns(block)
        lines = [r"\begingroup\small\renewcommand{\arraystretch}{1.35}", f"\\begin{{longtable}}{{{spec}}}", r"\hline"]
        lines.append(" & ".join(latex_spans(c) for c in block.header) + " \\\\")
        lines += ["\\hline", "\\endhead"]
        lines += [" & ".join(latex_spans(c, wrap[k]) for k, c in enumerate(row)) + " \\\\" for row in block.rows]
        lines += ["\\hline", "\\end{longtable}", "\\endgroup"]
        return "\n".join(lines)
    if isinstance(block, Items):
        return "\\begin{itemize}\n" + "\n".join("\\item{} " + latex_spans(i) for i in block.items) + "\n\\end{itemize}"
    raise TypeError(block)  # pragma: no cover


def latex_document(title: str, blocks: list) -> str:
    """The whole standalone LaTeX document (template ``derive.tex.j2``)."""
    from ..codegen import template_environment

    body = "\n\n".join(latex_block(b) for b in blocks)
    text = template_environment().get_template("derive.tex.j2").render(title=tex_text(title), body=body)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines()) + "\n"


# ==================================================================================================
# LaTeX of the exact objects
