"""A small statement IR between the layer equations and Python source: what the printer builds, then prints.

The printer (:mod:`rkgen.codegen.printer`) turns :mod:`rkgen.adjoint`'s data into these nodes and these nodes into
text; no other module writes kernel code.  Nodes are frozen and hold source fragments (names, indices, literals)
as strings.  A :class:`Labelled` node marks the statements that implement one equation, so that the printed text
comes with a source map.

>>> f = Function("_twice", ("x", "n"), (Loop("a", "n", (Assign("x[a]", Sum(("x[a]", "x[a]"))),)),), "x *= 2.")
>>> print("\\n".join(render(f)[0]))
@njit(cache=True, error_model="numpy")
def _twice(x, n):
    \"\"\"x *= 2.\"\"\"
    for a in range(n):
        x[a] = x[a] + x[a]
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

__all__ = [
    "Sum",
    "Assign",
    "Call",
    "Comment",
    "Loop",
    "If",
    "Return",
    "Labelled",
    "Function",
    "render",
    "LINE_LENGTH",
]

LINE_LENGTH = 100


@dataclass(frozen=True)
class Sum:
    """``head + item_1 + item_2 + ... + tail``; printed one item a line (in parentheses) when too long."""

    items: tuple[str, ...]
    head: str = ""
    tail: str = ""

    def lines(self, prefix: str, indent: int) -> list[str]:
        line = prefix + self.head + " + ".join(self.items) + self.tail
        if indent + len(line) <= LINE_LENGTH:
            return [line]
        opening = prefix + self.head if self.head.endswith("(") else prefix + self.head + "("
        rest = ["    " + ("+ " if k else "") + item for k, item in enumerate(self.items)]
        return [opening, *rest, ")"]


@dataclass(frozen=True)
class Assign:
    """``target op value`` (op "=", "+=", ...); value a source fragment or a :class:`Sum`."""

    target: str
    value: str | Sum
    op: str = "="


@dataclass(frozen=True)
class Call:
    """``[target op] function(arguments)``; the arguments wrap onto further lines when the call is too long."""

    function: str
    arguments: tuple[str, ...]
    target: str = ""
    op: str = "="


@dataclass(frozen=True)
class Comment:
    text: str


@dataclass(frozen=True)
class Loop:
    """``for var in range([start, ]stop):`` with a body."""

    var: str
    stop: str
    body: tuple
    start: str = ""


@dataclass(frozen=True)
class If:
    condition: str
    body: tuple


@dataclass(frozen=True)
class Return:
    value: str


@dataclass(frozen=True)
class Labelled:
    """Statements that implement one equation; ``label`` keys the source map."""

    label: str
    body: tuple


@dataclass(frozen=True)
class Function:
    """A whole njit function: decorator options, signature, docstring and body."""

    name: str
    params: tuple[str, ...]
    body: tuple
    doc: str
    options: str = 'cache=True, error_model="numpy"'


def _call_lines(node: Call, indent: int) -> list[str]:
    head = (f"{node.target} {node.op} " if node.target else "") + node.function + "("
    line = head + ", ".join(node.arguments) + ")"
    if indent + len(line) <= LINE_LENGTH:
        return [line]
    rows, row = [], ""
    for arg in node.arguments:
        piece = (", " if row else "") + arg
        if indent + 4 + len(row) + len(piece) + 1 > LINE_LENGTH and row:
            rows.append(row + ",")
            row = arg
        else:
            row += piece
    rows.append(row + ",")
    return [head, *["    " + r for r in rows], ")"]


def _comment_lines(text: str, indent: int) -> list[str]:
    return textwrap.wrap(
        text, LINE_LENGTH - indent, initial_indent="# ", subsequent_indent="#     ", break_on_hyphens=False
    )


def _statements(nodes, indent: int, out: list[str], spans: dict[str, tuple[int, int]]) -> None:
    pad = " " * indent
    for node in nodes:
        if isinstance(node, Labelled):
            first = len(out)
            _statements(node.body, indent, out, spans)
            spans[node.label] = (first, len(out) - 1)
        elif isinstance(node, Comment):
            out += [pad + line for line in _comment_lines(node.text, indent)]
        elif isinstance(node, Assign):
            value = node.value if isinstance(node.value, Sum) else Sum((node.value,))
            out += [pad + line for line in value.lines(f"{node.target} {node.op} ", indent)]
        elif isinstance(node, Call):
            out += [pad + line for line in _call_lines(node, indent)]
        elif isinstance(node, Loop):
            bounds = f"{node.start}, {node.stop}" if node.start else node.stop
            out.append(f"{pad}for {node.var} in range({bounds}):")
            _statements(node.body, indent + 4, out, spans)
        elif isinstance(node, If):
            out.append(f"{pad}if {node.condition}:")
            _statements(node.body, indent + 4, out, spans)
        elif isinstance(node, Return):
            out.append(f"{pad}return {node.value}")
        else:
            raise TypeError(f"not a statement: {node!r}")


def render(function: Function) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """The lines of ``function`` (decorator first) and 0-based line spans of its labelled statements."""
    out = [f"@njit({function.options})", f"def {function.name}({', '.join(function.params)}):"]
    doc = []
    for k, paragraph in enumerate(function.doc.strip().split("\n\n")):
        doc += [""] * (k > 0) + textwrap.wrap(paragraph, LINE_LENGTH - 7)
    if len(doc) == 1:
        out.append(f'    """{doc[0]}"""')
    else:
        out += [f'    """{doc[0]}', *[("    " + line).rstrip() for line in doc[1:]], '    """']
    spans: dict[str, tuple[int, int]] = {}
    _statements(function.body, 4, out, spans)
    return out, spans
