r"""Section 6.5 of the derivation (``--params stage`` or ``continuous``): which parameters each stage reads and where
its gradient goes, printed from :func:`rkgen.adjoint.parameter_layout` and the layer equations.

Every layout runs the same stages and the same backward pass (6.1-6.4); the stage-wise gradient
G_i = h_j ∂_u f(Y_i, u_i)ᵀ η_i (ξ form, any tableau) is the same, and the layout decides only what u_i is and
how the G_i add up.  The continuous layout adds the chain rule to the nodes, the motion of the stage times in
∂J/∂h and the one place where the partner's nodes c̃ matter.

>>> from rkgen.derive.derivation import Derivation
>>> md = Derivation("gauss2", params="continuous").markdown()
>>> "### 6.5 The parameter layout: continuous" in md
True
>>> r"\left(\frac{\sqrt{3}}{6} + \frac{1}{2}\right) u_j" in md      # stage 1 reads u at t_j + (1/2 - √3/6) h_j
True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from .document import Code, Display, Heading, Para, rich
from .formulas import combination, lx, sub

if TYPE_CHECKING:
    from .context import Context

__all__ = ["section_layout", "symbol_latex"]


def symbol_latex(name: str) -> str:
    """LaTeX of a parameter symbol of :class:`rkgen.adjoint.ParameterLayout`: ``u_j,2`` -> ``u_{j,2}``.

    >>> symbol_latex("u_j+1"), symbol_latex("u_j,2"), symbol_latex("u_3"), symbol_latex("dJ/du_j,2")
    ('u_{j+1}', 'u_{j,2}', 'u_{3}', '\\\\frac{\\\\partial\\\\mathcal{J}}{\\\\partial u_{j,2}}')
    """
    if name.startswith("dJ/d"):
        return r"\frac{\partial\mathcal{J}}{\partial " + symbol_latex(name[4:].split(" ")[0]) + "}"
    letter, _, index = name.partition("_")
    return f"{letter}_{{{index}}}"


def _nonzero(pairs):
    return [(v, x) for v, x in pairs if sympy.sympify(v) != 0]


def _time(c) -> str:
    """t_j + c h_j, zero terms dropped."""
    return combination(_nonzero([(1, "t_j"), (c, "h_j")]))


def section_layout(doc: Context) -> list:
    lay = doc.layout
    out = [Heading(3, rich(f"6.5 The parameter layout: {lay.name}"))]
    out += _reads(doc)
    out += _stage_gradients(doc)
    if lay.name == "continuous":
        out += _to_the_nodes(doc)
        out += _step_gradient(doc)
        out += _where_c_tilde_matters(doc)
    return out


# -- which parameters each stage reads -------------------------------------------------------------------
def _reads(doc: Context) -> list:
    t, lay = doc.t, doc.layout
    if lay.name == "stage":
        lines = [f"{symbol_latex(str(e.lhs))} = {symbol_latex(str(e.rhs))}" for e in lay.stage_parameters()]
        return [
            Para(
                rich(
                    Code(f"--params {lay.name}"),
                    ": stage $i$ of layer $j$ reads its own parameter set $u_i = u_{j,i} = (K_{j,i}, "
                    "\\beta_{j,i})$, as in [BCE+19, (16)-(18)] and [BCE+19, Prop. 3.1]; for the $s = "
                    f"{lay.stages}$ stages of ",
                    Code(t.name),
                    ":",
                )
            ),
            Display([r", \qquad ".join(lines) + "."]),
        ]
    out = [
        Para(
            rich(
                Code(f"--params {lay.name}"),
                ": the parameters are nodal values $u_k = (K_k, \\beta_k)$ at fixed node times "
                "$\\tau_0 < \\dots < \\tau_N$, linear in $t$ between them; stage $i$ of layer $j$ reads "
                "$u_i = u(t_j + c_i h_j)$, with $t_j = h_0 + \\dots + h_{j-1}$. On the segment "
                "$[\\tau_k, \\tau_{k+1})$ that holds the stage time, $u_i = (1 - \\theta_i) u_k + \\theta_i u_{k+1}$ "
                "with $\\theta_i = (t_j + c_i h_j - \\tau_k) / (\\tau_{k+1} - \\tau_k)$. On the grid of the layer "
                "boundaries, $\\tau_k = t_k$ (rkgen's default nodes), the segment is that of the layer, $k = j$, "
                "and $\\theta_i = c_i$: the weights are $(1 - c_i, c_i)$, the tableau's nodes. For ",
                Code(t.name),
                ":",
            )
        )
    ]
    left, right = sympy.Symbol("u_j"), sympy.Symbol("u_j+1")
    lines = []
    for i, (e, (wl, wr), c) in enumerate(zip(lay.stage_parameters(), lay.weights, lay.nodes, strict=True)):
        if sympy.simplify(e.rhs.coeff(left) - wl) != 0 or sympy.simplify(e.rhs.coeff(right) - wr) != 0:
            raise RuntimeError(f"stage {i + 1}: the layout's weights and equations disagree")  # pragma: no cover
        if doc.short([wl, wr, c], 40):
            time = _time(c)
            read = combination(_nonzero([(wl, "u_j"), (wr, "u_{j+1}")]))
            lines.append(rf"u_{sub(i + 1)} &= u\left({time}\right) = {read}")
        else:  # long surds: the weights by name, the node rounded
            read = rf"(1 - c_{sub(i + 1)}) u_j + c_{sub(i + 1)} u_{{j+1}}"
            lines.append(
                rf"u_{sub(i + 1)} &= u\left(t_j + c_{sub(i + 1)} h_j\right) = {read}, \quad "
                rf"c_{sub(i + 1)} {doc.exact_or_float(c, 0)}"
            )
    out.append(Display(lines, aligned=True))
    outside = [i + 1 for i, c in enumerate(lay.nodes) if not 0 <= c <= 1]
    if outside:
        out.append(
            Para(
                rich(
                    f"Here $c_i \\notin [0, 1]$ for stage{'s' if len(outside) > 1 else ''} "
                    f"{', '.join(map(str, outside))}: the stage time lies outside the layer, and the parameters "
                    "are read on the neighbouring segment with its own $\\theta_i$ (on the first and the last "
                    "layer the end segments are extended, and $(1 - c_i, c_i)$ holds there)."
                )
            )
        )
    out.append(
        Para(
            rich(
                "With other node times (`nodes=`), $\\theta_i$ and the two nodes of the segment take the places of "
                "$c_i$ and $u_j, u_{j+1}$ in what follows."
            )
        )
    )
    return out


# -- the stage-wise gradient -----------------------------------------------------------------------------
def _stage_gradients(doc: Context) -> list:
    t, eq, lay = doc.t, doc.eq, doc.layout
    out = [
        Para(
            rich(
                "Every layout runs the same stages and the same backward pass (6.1-6.4); only what $u_i$ is, and "
                "how the gradients of the $u_i$ add up, depend on the layout. The gradient of the parameters "
                "stage $i$ reads is, in the $\\xi$ form of 6.2 (any tableau, nothing divided by $b_i$):"
            )
        ),
        Display([r"G_i = h_j \partial_u f(Y_i, u_i)^{T} \eta_i, \qquad i = 1, \dots, s."]),
    ]
    if lay.name == "stage":
        lines = []
        for e in lay.gradients():
            g = [(e.rhs.coeff(sympy.Symbol(f"g_{k + 1}")), f"G_{sub(k + 1)}") for k in range(lay.stages)]
            lines.append(f"{symbol_latex(str(e.lhs))} = {combination(_nonzero(g))}")
        out.append(
            Para(
                rich(
                    "Each stage's set gets its own gradient, with no sum over the stages (one set per layer would "
                    "get $\\sum_i G_i$, [BCE+19, Prop. 3.2]):"
                )
            )
        )
        out.append(Display([r", \qquad ".join(lines) + "."]))
    if eq.p_form is not None:
        lines = []
        for x in eq.update:
            i = x.index + 1
            vector = rf"h_j \partial_u f(Y_{sub(i)}, u_{sub(i)})^{{T}} P_{sub(i)}"
            value = combination([(x.value, vector)]) if doc.numeric_ok((x,)) else f"b_{sub(i)} {vector}"
            lines.append(rf"G_{sub(i)} &= {value}")
        out.append(
            Para(
                rich(
                    "Every $b_i \\ne 0$, so with $P_i = \\eta_i / b_i$ (the partner form, 6.4) this is "
                    "$G_i = h_j b_i \\partial_u f(Y_i, u_i)^{T} P_i$: the stationarity condition [BCE+19, (18)], "
                    "$\\Delta t\\ b_i \\partial_u f(y_i, u_i)^{T} p_i$ in the notation of [BCE+19], as a gradient. "
                    "For ",
                    Code(t.name),
                    ":",
                )
            )
        )
        out.append(Display(lines, aligned=True))
        return out
    for st in eq.backward:
        if st.weight is not None:
            continue
        i = st.i + 1
        if st.terms:
            eta = combination([(x.value, rf"\mu_{sub(x.index + 1)}") for x in st.terms])
            readers = ", ".join(str(x.index + 1) for x in st.terms)
            what = (
                f"$\\eta_{sub(i)} = {eta}$ (6.2), which is not zero in general: stage {i}'s parameters reach "
                f"$y_{{j+1}}$ through $F_{sub(i)}$, which stage{'s' if ',' in readers else ''} {readers} "
                f"read{'' if ',' in readers else 's'}, and $G_{sub(i)}$ is their exact gradient."
            )
        else:
            what = (
                f"$\\eta_{sub(i)} = 0$ (6.2): no stage reads $F_{sub(i)}$ and the update does not use it, so "
                f"$G_{sub(i)} = 0$ exactly: stage {i}'s parameters do not change the network."
            )
        out.append(
            Para(
                rich(
                    f"Here $b_{sub(i)} = 0$: the partner form does not exist (6.4), and [BCE+19, (18)] for stage {i} "
                    f"reads $0 \\cdot \\partial_u f(y_{i}, u_{i})^{{T}} p_{i} = 0$, which says nothing about "
                    f"$u_{i}$. The $\\xi$ form handles the zero weight: "
                    f"$G_{sub(i)} = h_j \\partial_u f(Y_{sub(i)}, u_{sub(i)})^{{T}} \\eta_{sub(i)}$ with ",
                    what,
                )
            )
        )
    return out


# -- continuous: to the nodes, the steps, c and c~ -------------------------------------------------------
def _explicit(doc: Context) -> bool:
    """Whether the weights are short enough to be written into the sums (else the sums keep c_i by name)."""
    return doc.short([w for pair in doc.layout.weights for w in pair], 40)


def _to_the_nodes(doc: Context) -> list:
    lay = doc.layout
    left, right = lay.gradients()
    g = [sympy.Symbol(f"g_{k + 1}") for k in range(lay.stages)]
    L = R = ""
    if _explicit(doc):
        L = " = " + combination(_nonzero([(left.rhs.coeff(x), f"G_{sub(k + 1)}") for k, x in enumerate(g)]))
        R = " = " + combination(_nonzero([(right.rhs.coeff(x), f"G_{sub(k + 1)}") for k, x in enumerate(g)]))
    return [
        Para(
            rich(
                "The chain rule through the interpolation sends $G_i$ to the two nodes of its segment with the "
                "weights it was read with. On the grid of the layer boundaries layer $j$ gives its left node "
                "$u_j$ the part $L_j$ and its right node $u_{j+1}$ the part $R_j$, and node $k$ collects from the "
                "layers on both sides:"
            )
        ),
        Display(
            [
                rf"L_j &= \sum_i (1 - c_i) G_i{L},",
                rf"R_j &= \sum_i c_i G_i{R},",
                r"\frac{\partial\mathcal{J}}{\partial u_k} &= L_k + R_{k-1}, \qquad k = 0, \dots, N "
                r"\quad (L_N = R_{-1} = 0).",
            ],
            aligned=True,
        ),
    ]


def _step_gradient(doc: Context) -> list:
    lay = doc.layout
    own = _nonzero([(c, rf"u'(t_{{l,{i + 1}}}) \cdot G_{sub(i + 1)}^{{(l)}}") for i, c in enumerate(lay.nodes)])
    out = [
        Para(
            rich(
                "The node times stay fixed when a step changes, but the stage times $t_{j,i} = t_j + c_i h_j$ "
                "move: $\\partial t_{j,i} / \\partial h_l = 1$ for $l < j$, $c_i$ for $l = j$ and 0 for $l > j$. "
                "With $u'(t) = (u_{k+1} - u_k) / (\\tau_{k+1} - \\tau_k)$ the slope of the segment that holds $t$, "
                "$\\cdot$ the sum over all entries of $K$ and $\\beta$, and a superscript $(j)$ for layer $j$, "
                "the step gradient of 6.3 gains"
            )
        ),
        Display(
            [
                r"\frac{\partial\mathcal{J}}{\partial h_l} = \sum_i \eta_i^{(l)T} F_i^{(l)} + \sum_i c_i\ "
                r"u'(t_{l,i}) \cdot G_i^{(l)} + \sum_{j > l} \sum_i u'(t_{j,i}) \cdot G_i^{(j)}."
            ]
        ),
    ]
    if own and _explicit(doc):
        out.append(Para(rich("The middle sum, for these nodes $c$:")))
        out.append(Display([r"\sum_i c_i\ u'(t_{l,i}) \cdot G_i^{(l)} = " + combination(own) + "."]))
    elif not own:
        out.append(
            Para(rich("Here every $c_i = 0$: a layer's own step does not move its stage times; the middle sum is 0."))
        )
    at_node = [i + 1 for i, c in enumerate(lay.nodes) if c == 1]
    if at_node:
        stages = ", ".join(map(str, at_node))
        out.append(
            Para(
                rich(
                    f"A stage with $c_i = 1$ (stage {stages}) is read at the next node, $t_{{j+1}}$: its value is "
                    "$u_{j+1}$ on either segment, but $u$ has a kink there, and rkgen takes the slope of the "
                    "segment that starts at the node (of the last segment at the last node): the one-sided "
                    "derivative for a growing step."
                )
            )
        )
    return out


def _where_c_tilde_matters(doc: Context) -> list:
    t = doc.t
    p = t.partner
    cc = ", ".join(lx(x) for x in t.c)
    out = [
        Para(
            rich(
                "**Where $\\tilde c \\ne c$ matters, and where it does not.** The exact discrete gradient, what "
                "rkgen computes (6.2-6.5), reads the parameters where the forward pass used them: $J_i$ and $G_i$ "
                "at $(Y_i, u_i)$, $u_i = u(t_j + c_i h_j)$, whatever the partner's $\\tilde c$; the partner "
                "enters only through $\\eta_i = b_i P_i$ (6.4), which moves no time. Optimise, then discretise "
                "integrates $\\dot p = -\\partial_y f(y, u(t))^{T} p$ and evaluates $\\partial_u f(y, u(t))^{T} p$ "
                "with the partner, whose stage $i$ sits at $t_j + \\tilde c_i h_j$: it evaluates the adjoint's "
                "parameter dependence at $u(t_j + \\tilde c_i h_j)$. With one set per layer or per stage $u$ does "
                "not depend on $t$ inside a layer, and $\\tilde c$ never enters (section 5). In the continuous "
                "layout it does: where $\\tilde c_i \\ne c_i$ and $u' \\ne 0$, $u(t_j + \\tilde c_i h_j) \\ne u_i$, "
                "and the two roads give different gradients unless the partner's stages are evaluated at the "
                "forward stage times $t_j + c_i h_j$, that is, unless the gradient is taken as the discrete one. "
                "This is where the condition $c_i = \\tilde c_i$ that [BCE+19] lists with (19) matters."
            )
        )
    ]
    if p is None:
        zeros = ", ".join(f"b_{sub(i + 1)}" for i in t.zero_weights)
        text = (
            f"For `{t.name}`, $c = ({cc})$, and ${zeros} = 0$: rkgen has no partner for it and so no "
            "$\\tilde c$ (section 5). Only the discrete road exists, and the $\\xi$ form above is the exact gradient."
        )
    else:
        ct = ", ".join(lx(x) for x in p.c)
        differ = [i for i in range(t.stages) if sympy.simplify(p.c[i] - t.c[i]) != 0]
        if not differ:
            text = (
                f"For `{t.name}`, $\\tilde c = c = ({cc})$: the partner's stages sit at the forward stage times, "
                "and the two roads read the parameters at the same times."
            )
        else:
            where = ", ".join(
                rf"$c_{sub(i + 1)} = {lx(t.c[i])}$, $\tilde c_{sub(i + 1)} = {lx(p.c[i])}$" for i in differ
            )
            example = differ[0]
            text = (
                f"For `{t.name}`, $c = ({cc})$ and $\\tilde c = ({ct})$; they differ at {where}. The two roads "
                f"differ here: optimise-then-discretise would read stage {example + 1}'s parameters at "
                f"$u({_time(p.c[example])})$ where the forward pass read $u_{sub(example + 1)} = "
                f"u({_time(t.c[example])})$. rkgen's gradient is the discrete one."
            )
    out.append(Para(rich(text)))
    return out
