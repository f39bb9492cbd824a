"""Rooted trees drawn: one layout, two writers (TikZ for LaTeX, SVG for Markdown), deterministic text.

The layout puts the root at the bottom and the leaves on top, as Butcher and Hairer-Nørsett-Wanner draw them: each
leaf takes one horizontal slot, left to right in the order of the bracket notation (smaller subtrees first), a
parent sits midway between its first and last child, and a node's height is its depth.  Both writers read the same
:class:`TreeLayout`, so the TikZ and the SVG picture the same tree; coordinates are rounded to two decimals, so the
text of a drawing does not depend on the platform.

>>> from rkgen.trees import trees_of_order
>>> lay = tree_layout(trees_of_order(4)[1])     # [τ[τ]]: the root, a leaf, and a stalk of two
>>> lay.nodes
((0.5, 0.0), (0.0, 1.0), (1.0, 1.0), (1.0, 2.0))
>>> lay.edges
((0, 1), (0, 2), (2, 3))
>>> print(tikz(lay).splitlines()[2])
\\draw (0.5,0) -- (0,1) (0.5,0) -- (1,1) (1,1) -- (1,2);
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from ..trees import Tree, tree, trees_of_order

__all__ = ["TreeLayout", "tree_layout", "tikz", "svg", "tree_picture", "tree_name", "num"]

#: TikZ units of one slot (x) and one level (y), and the radius of a node.
TIKZ_X, TIKZ_Y, TIKZ_R = "3mm", "3.5mm", "1.2pt"
#: Blank space around a TikZ tree, in its units (so that tall trees in neighbouring table rows do not touch).
TIKZ_PAD = 0.4
#: SVG pixels of one slot (x), one level (y), the margin, and the radius of a node.
SVG_X, SVG_Y, SVG_MARGIN, SVG_R = 16, 18, 6, 3


@dataclass(frozen=True)
class TreeLayout:
    """Node positions (x to the right, y up; the root is node 0 at height 0) and edges (parent, child)."""

    nodes: tuple[tuple[float, float], ...]
    edges: tuple[tuple[int, int], ...]
    label: str  # the bracket notation, for the SVG's title

    @property
    def width(self) -> float:
        return max(x for x, _ in self.nodes) - min(x for x, _ in self.nodes)

    @property
    def height(self) -> float:
        return max(y for _, y in self.nodes)


def _children(t: Tree) -> list[Tree]:
    """The subtrees of the root in the order of the bracket notation (by order, then index), repeated by
    multiplicity."""
    out = []
    for index, m in sorted(Counter(t.children).items(), key=lambda kv: (tree(kv[0]).order, kv[0])):
        out += [tree(index)] * m
    return out


def tree_layout(t: Tree) -> TreeLayout:
    """The layout of a rooted tree: leaves in slots 0, 1, 2, ..., parents midway over their children."""
    nodes: list[list[float]] = []
    edges: list[tuple[int, int]] = []
    next_slot = [0]

    def place(sub: Tree, depth: int) -> int:
        me = len(nodes)
        nodes.append([0.0, float(depth)])
        kids = []
        for child in _children(sub):
            edges.append((me, len(nodes)))  # the child is the next node placed
            kids.append(place(child, depth + 1))
        if kids:
            nodes[me][0] = (nodes[kids[0]][0] + nodes[kids[-1]][0]) / 2
        else:
            nodes[me][0] = float(next_slot[0])
            next_slot[0] += 1
        return me

    place(t, 0)
    return TreeLayout(tuple((round(x, 2), round(y, 2)) for x, y in nodes), tuple(edges), t.notation)


def num(x: float) -> str:
    """A coordinate as short, deterministic text: two decimals at most, no trailing zeros, never ``-0``.

    >>> num(0.5), num(2.0), num(-0.0), num(1 / 3)
    ('0.5', '2', '0', '0.33')
    """
    text = f"{round(x, 2):.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def tikz(lay: TreeLayout) -> str:
    """The layout as a TikZ picture, vertically centred on the text line (for a table cell)."""
    pts = [f"({num(x)},{num(y)})" for x, y in lay.nodes]
    lines = [rf"\begin{{tikzpicture}}[x={TIKZ_X},y={TIKZ_Y},baseline={{([yshift=-0.5ex]current bounding box.center)}}]"]
    xs = [x for x, _ in lay.nodes]
    lo, hi = (
        f"({num(min(xs) - TIKZ_PAD)},{num(-TIKZ_PAD)})",
        f"({num(max(xs) + TIKZ_PAD)},{num(lay.height + TIKZ_PAD)})",
    )
    lines.append(rf"\useasboundingbox {lo} rectangle {hi};")
    if lay.edges:
        lines.append(r"\draw " + " ".join(f"{pts[a]} -- {pts[b]}" for a, b in lay.edges) + ";")
    lines.append(r"\fill " + " ".join(f"{p} circle ({TIKZ_R})" for p in pts) + ";")
    lines.append(r"\end{tikzpicture}")
    return "\n".join(lines)


def _xml(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def svg(lay: TreeLayout) -> str:
    """The layout as a standalone SVG element (y grows downwards in SVG: the root is drawn at the bottom)."""
    x0 = min(x for x, _ in lay.nodes)
    width = lay.width * SVG_X + 2 * SVG_MARGIN
    height = lay.height * SVG_Y + 2 * SVG_MARGIN

    def at(node: int) -> tuple[str, str]:
        x, y = lay.nodes[node]
        return num(SVG_MARGIN + (x - x0) * SVG_X), num(SVG_MARGIN + (lay.height - y) * SVG_Y)

    label = _xml(lay.label)
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{num(width)}" height="{num(height)}" '
        f'viewBox="0 0 {num(width)} {num(height)}" role="img" aria-label="tree {label}">',
        f"<title>tree {label}</title>",
        '<rect width="100%" height="100%" fill="white"/>',  # visible on a dark page too
    ]
    if lay.edges:
        out.append('<g stroke="black" stroke-width="1.5" stroke-linecap="round">')
        for a, b in lay.edges:
            (xa, ya), (xb, yb) = at(a), at(b)
            out.append(f'<line x1="{xa}" y1="{ya}" x2="{xb}" y2="{yb}"/>')
        out.append("</g>")
    out.append('<g fill="black">')
    for k in range(len(lay.nodes)):
        x, y = at(k)
        out.append(f'<circle cx="{x}" cy="{y}" r="{num(SVG_R)}"/>')
    out.append("</g>")
    out.append("</svg>")
    return "\n".join(out) + "\n"


def tree_name(t: Tree) -> str:
    """A file-safe name of a tree: ``tree-<order>-<k>``, the k-th tree of its order (1-based, rkgen's order).

    >>> [tree_name(t) for t in trees_of_order(3)]
    ['tree-3-1', 'tree-3-2']
    """
    k = [u.index for u in trees_of_order(t.order)].index(t.index) + 1
    return f"tree-{t.order}-{k}"


def tree_picture(t: Tree):
    """The tree as an inline :class:`~rkgen.derive.document.Picture` (its SVG and its TikZ from one layout)."""
    from .document import Picture

    lay = tree_layout(t)
    return Picture(tree_name(t), svg(lay), tikz(lay))
