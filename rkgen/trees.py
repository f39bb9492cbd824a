"""Butcher's rooted trees for the order analysis: generation, |t|, density γ(t), symmetry σ(t), notation.

A tree is stored by its index in one global list, grown order by order; a tree is the sorted tuple of the indices
of its children (the subtrees hanging from the root).  Every tree is generated once, children before parents, so
elementary weights can be memoised per distinct subtree.

>>> [len(trees_of_order(n)) for n in range(1, 9)]
[1, 1, 2, 4, 9, 20, 48, 115]
>>> t = trees_of_order(4)[0]
>>> t.notation, t.gamma, t.sigma
('[τ³]', 4, 6)
>>> [u.notation for u in trees_of_order(4)]
['[τ³]', '[τ[τ]]', '[[τ²]]', '[[[τ]]]']
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from math import factorial

__all__ = ["Tree", "trees_of_order", "trees_up_to", "tree"]

_SUPERSCRIPTS = str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹")


@dataclass(frozen=True)
class Tree:
    """One rooted tree.  ``children`` are indices into the global list (see :func:`tree`)."""

    index: int
    children: tuple[int, ...]
    order: int
    gamma: int
    sigma: int
    notation: str
    latex: str

    def __repr__(self) -> str:
        return f"Tree({self.notation})"


_TREES: list[Tree] = []
_BY_ORDER: list[list[int]] = [[]]  # _BY_ORDER[n] = indices of trees of order n


def tree(index: int) -> Tree:
    """The tree with this index."""
    return _TREES[index]


def _make(children: tuple[int, ...]) -> Tree:
    kids = [_TREES[i] for i in children]
    order = 1 + sum(k.order for k in kids)
    gamma = order
    sigma = 1
    for k in kids:
        gamma *= k.gamma
        sigma *= k.sigma
    for multiplicity in Counter(children).values():
        sigma *= factorial(multiplicity)
    if not kids:
        notation, latex = "τ", r"\tau"
    else:
        parts, tex = [], []
        for i, m in sorted(Counter(children).items(), key=lambda item: (_TREES[item[0]].order, item[0])):
            k = _TREES[i]
            parts.append(k.notation + (str(m).translate(_SUPERSCRIPTS) if m > 1 else ""))
            tex.append((k.latex if len(k.children) == 0 else "{" + k.latex + "}") + (f"^{m}" if m > 1 else ""))
        notation = "[" + "".join(parts) + "]"
        latex = "[" + " ".join(tex) + "]"
    return Tree(len(_TREES), children, order, gamma, sigma, notation, latex)


def _multisets(total: int, max_index: int) -> list[tuple[int, ...]]:
    """Non-increasing tuples of tree indices (each <= max_index) whose orders sum to ``total``."""
    if total == 0:
        return [()]
    out = []
    for i in range(max_index, -1, -1):
        o = _TREES[i].order
        if o <= total:
            for rest in _multisets(total - o, i):
                out.append((i,) + rest)
    return out


def _grow(n: int) -> None:
    while len(_BY_ORDER) <= n:
        order = len(_BY_ORDER)
        if order == 1:
            _TREES.append(_make(()))
            _BY_ORDER.append([0])
            continue
        last = len(_TREES) - 1
        children_sets = _multisets(order - 1, last)
        # a stable, readable order: fewer children (bushier trees first) by the generation order above
        indices = []
        for children in sorted(children_sets, key=lambda ch: (-len(ch), ch)):
            t = _make(tuple(sorted(children)))
            _TREES.append(t)
            indices.append(t.index)
        _BY_ORDER.append(indices)


def trees_of_order(n: int) -> list[Tree]:
    """All rooted trees with ``n`` nodes."""
    if n < 1:
        return []
    _grow(n)
    return [_TREES[i] for i in _BY_ORDER[n]]


def trees_up_to(n: int) -> list[Tree]:
    """All rooted trees with at most ``n`` nodes, by order."""
    return [t for k in range(1, n + 1) for t in trees_of_order(k)]
