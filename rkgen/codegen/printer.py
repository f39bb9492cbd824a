"""Print the layer equations (:mod:`rkgen.adjoint`) as Python source for the numba kernels.

Coefficients become named module constants (``a_2_1 = 0.5  # 1/2``): the float64 nearest the exact value, written
with ``repr`` so it reads back bit for bit, the exact value in a comment beside it.  Stages are unrolled and terms
with a zero coefficient are not written.

>>> from rkgen import load
>>> from rkgen.adjoint import layer_equations
>>> eq = layer_equations(load("heun2"))
>>> print(forward_stage_code(eq.forward[1], indent=0))
# Y_2 = y + h*(a_2_1*F_1)
for a in range(d):
    for q in range(nw):
        Y[1, a, q] = y[a, q] + hj * (a_2_1 * Fj[0, a, q])
_field(Kj, bj, Y[1], Z, S[1], Fj[1], field, act, d, nw)
>>> [(c.name, c.literal, c.exact) for c in coefficient_constants(eq)]
[('a_2_1', '1.0', '1'), ('b_1', '0.5', '1/2'), ('b_2', '0.5', '1/2'), ('c_2', '1.0', '1')]
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

import sympy

from ..adjoint import BackwardStage, ForwardStage, LayerEquations, Term

__all__ = [
    "Constant",
    "coefficient_constants",
    "float_literal",
    "forward_stage_code",
    "update_code",
    "backward_stage_code",
]

LINE_LENGTH = 100
BODY_INDENT = 12  # the stage code sits inside `for blk` / `for j` loops of the kernels


@dataclass(frozen=True)
class Constant:
    name: str
    literal: str
    exact: str

    @property
    def source(self) -> str:
        """``name = literal  # exact``; a long exact value goes on comment lines above."""
        line = f"{self.name} = {self.literal}  # {self.exact}"
        if len(line) <= LINE_LENGTH:
            return line
        wrapped = textwrap.wrap(
            f"{self.name} = {self.exact}", LINE_LENGTH - 2, subsequent_indent="    ", break_long_words=True
        )
        return "\n".join(["# " + w for w in wrapped] + [f"{self.name} = {self.literal}"])


def float_literal(value: float) -> str:
    """Python source for a float that reads back to the same bits.

    >>> float_literal(1/3), float_literal(-0.0), float_literal(2.0)
    ('0.3333333333333333', '-0.0', '2.0')
    """
    text = repr(float(value))
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"coefficient is not finite: {text}")
    return text


def _exact_text(x: sympy.Expr) -> str:
    return str(x)


def coefficient_constants(eq: LayerEquations) -> list[Constant]:
    """The nonzero coefficients the kernels use, with their float and exact values, sorted by name."""
    t = eq.tableau
    F = t.number_field
    used: dict[str, sympy.Expr] = {}
    for st in eq.forward:
        for term in st.terms:
            used[term.name] = term.value
    for term in eq.update:
        used[term.name] = term.value
    for st in eq.backward:
        for term in st.terms:
            used[term.name] = term.value
    for i, ci in enumerate(t.c):
        if not F.element(ci).is_zero():
            used[f"c_{i + 1}"] = ci
    out = []
    for name in sorted(used, key=_name_key):
        value = used[name]
        out.append(Constant(name, float_literal(F.to_float(F.element(value))), _exact_text(value)))
    return out


def _name_key(name: str):
    letter, *idx = name.split("_")
    return ("abcw".index(letter), tuple(int(i) for i in idx))




def _products(terms: tuple[Term, ...], vector: str) -> list[str]:
    return [f"{t.name} * {vector}[{t.index}, a, q]" for t in terms]


def _statement(head: str, items: list[str], tail: str, indent: int) -> list[str]:
    """``head + " + ".join(items) + tail`` on one line, or one item a line when that is too long.

    ``head`` ends with "(" exactly when ``tail`` is ")"."""
    line = head + " + ".join(items) + tail
    if indent + len(line) <= LINE_LENGTH:
        return [line]
    opening = head if head.endswith("(") else head + "("
    rest = ["    " + ("+ " if k else "") + item for k, item in enumerate(items)]
    return [opening, *rest, ")"]


def _loop(head: str, items: list[str], tail: str = "", indent: int = 0) -> list[str]:
    body = _statement(head, items, tail, indent + 8)
    return ["for a in range(d):", "    for q in range(nw):", *["        " + b for b in body]]


def _comment(text: str, indent: int) -> list[str]:
    """A comment wrapped to the line length, continuation lines indented."""
    return textwrap.wrap(
        text, LINE_LENGTH - indent, initial_indent="# ", subsequent_indent="#     ", break_on_hyphens=False
    )


def _indent(lines: list[str], indent: int) -> str:
    return textwrap.indent("\n".join(lines), " " * indent)


def forward_stage_code(stage: ForwardStage, indent: int = BODY_INDENT) -> str:
    """Explicit stage i: Y_i = y + h Σ_l a_il F_l, then F_i = f(Y_i)."""
    if stage.implicit:
        raise ValueError("forward_stage_code prints explicit stages only")
    i = stage.i
    if stage.terms:
        loop = _loop(f"Y[{i}, a, q] = y[a, q] + hj * (", _products(stage.terms, "Fj"), ")", indent)
    else:
        loop = _loop(f"Y[{i}, a, q] = ", ["y[a, q]"], "", indent)
    lines = [*_comment(str(stage), indent), *loop]
    lines.append(f"_field(Kj, bj, Y[{i}], Z, S[{i}], Fj[{i}], field, act, d, nw)")
    return _indent(lines, indent)


def update_code(eq: LayerEquations, indent: int = BODY_INDENT) -> str:
    """y_(j+1) = y_j + h Σ_i b_i F_i."""
    terms = " + ".join(f"{t.name}*F_{t.index + 1}" for t in eq.update)
    lines = _comment(f"y = y + h*({terms})", indent)
    if eq.update:
        lines += _loop("y[a, q] += hj * (", _products(eq.update, "Fj"), ")", indent)
    return _indent(lines, indent)


def backward_stage_code(stage: BackwardStage, indent: int = BODY_INDENT) -> str:
    """Explicit backward stage: η_i = b_i p + Σ_(k>i) a_ki μ_k, then μ_i = h J_iᵀ η_i and the parameter
    gradients of the stage."""
    i = stage.i
    parts = ([f"{stage.weight.name} * P[a, q]"] if stage.weight else []) + _products(stage.terms, "mu")
    lines = [*_comment(str(stage), indent), *_loop(f"eta[{i}, a, q] = ", parts or ["0.0"], "", indent)]
    lines.append(f"dhj += _adjoint_stage(Kj, Y[{i}], S[{i}], D[{i}], eta[{i}], mu[{i}], G, U, dK[j], dbeta[j],")
    lines.append("                      hj, field, d, nb, nw)")
    return _indent(lines, indent)


def array_source(name: str, eq: LayerEquations) -> str:
    """``A``, ``B`` or ``C`` as an ``np.array`` built from the named constants (0.0 for zeros).

    >>> from rkgen import load
    >>> from rkgen.adjoint import layer_equations
    >>> print(array_source("A", layer_equations(load("heun2"))))
    A = np.array((
        (0.0, 0.0),
        (a_2_1, 0.0),
    ))
    >>> print(array_source("B", layer_equations(load("heun3"))))
    B = np.array((b_1, 0.0, b_3))
    """
    t = eq.tableau
    names = {c.name for c in coefficient_constants(eq)}
    s = t.stages

    def entry(label: str) -> str:
        return label if label in names else "0.0"

    if name == "A":
        rows = []
        for i in range(s):
            cells = ", ".join(entry(f"a_{i + 1}_{j + 1}") for j in range(s))
            rows.append(f"    ({cells}{',' if s == 1 else ''}),")
        return "A = np.array((\n" + "\n".join(rows) + "\n))"
    letter = name.lower()
    items = ", ".join(entry(f"{letter}_{i + 1}") for i in range(s))
    return f"{name} = np.array(({items}{',' if s == 1 else ''}))"
