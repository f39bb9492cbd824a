"""Sections 1-3 of the derivation: the problem, the tableau, its order (read from the same tableau as the module)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import sympy

from .. import __version__
from .context import SHORT_LATEX
from .document import Code, Display, Heading, Items, Math, Para, Table, Text, rich
from .drawing import tree_picture
from .formulas import (
    combination,
    drawable,
    lx,
    magnitude_tex,
    phi_formula,
    sci_tex,
    sub,
    symbolic,
    tableau_latex,
    tree_tex,
)

if TYPE_CHECKING:
    from .context import Context

#: Trees up to this order are printed in full (tree, Φ(t), b·Φ(t), 1/γ(t)); higher orders get one summary line.
FULL_TREE_ORDER = 4
#: At most this many failing trees of order p+1 are listed by name when p+1 > FULL_TREE_ORDER.
MAX_FAILING_LISTED = 20


def preface(doc: Context) -> Para:
    t = doc.t
    cmd = f"rkgen derive {t.name}" if t.source.startswith("built-in") else "rkgen derive TABLEAU"
    if not doc.shared:
        cmd += f" --params {doc.params}"
    return Para(
        rich(
            "Written by rkgen ",
            Text(__version__),
            " (",
            Code(cmd),
            "). Every formula that involves the tableau is computed by rkgen from the exact tableau: "
            "the same order analysis, partner tableau and layer equations from which the code generator "
            "writes the network module. The numbers of section 7 were computed when this document was written.",
        )
    )


def section_problem(doc: Context) -> list:
    t, eq = doc.t, doc.eq
    s = t.stages
    if doc.numeric_ok(eq.update, 24):
        update = combination([(x.value, f"F_{sub(x.index + 1)}") for x in eq.update])
    else:
        update = symbolic(eq.update, "F")
    return [
        Heading(2, rich("1. The problem: a network as an optimal control problem")),
        Para(
            rich(
                "A residual network of $N$ layers maps an input $y_0 = x$ to $y_N$; ",
                _layer_parameters(doc),
                ". Benning et al. [BCE+19, sections 2-3] read training as "
                "an optimal control problem: minimise a cost of the final state subject to an ODE,",
            )
        ),
        Display([r"\min_{u}\ \mathcal{J}(y(T)) \quad \text{subject to} \quad \dot y = f(y, u), \quad y(0) = x,"]),
        Para(
            rich(
                "with the field $f(y, u) = \\sigma(Ky + \\beta)$ (rkgen's `resnet` field) or "
                "$f(y, u) = -K^{T}\\sigma(Ky + \\beta)$ (the `stable` field). With the Hamiltonian "
                "$H(y, p, u) = p^{T} f(y, u)$, the first-order conditions of optimality (Pontryagin; "
                "[BCE+19, section 2.4]) are the boundary value problem"
            )
        ),
        Display(
            [
                r"&\dot y = \partial_p H = f(y, u), \qquad \dot p = -\partial_y H = -\partial_y f(y, u)^{T} p, "
                r"\qquad 0 = \partial_u H = \partial_u f(y, u)^{T} p,",
                r"&y(0) = x, \qquad p(T) = \nabla \mathcal{J}(y(T)).",
            ],
            aligned=True,
        ),
        Para(
            rich(
                "**Discretise, then optimise.** The network is this ODE discretised by ",
                Code(t.name),
                _stage_parameters(doc, s),
            )
        ),
        Display(
            [
                r"Y_i = y_j + h_j \sum_{l=1}^{" + str(s) + r"} a_{il} F_l, \qquad F_i = f(Y_i, " + doc.u + r"), \qquad "
                r"y_{j+1} = y_j + h_j\left(" + update + r"\right).",
            ]
        ),
        Para(
            rich(
                "Training needs the gradient of $\\mathcal{J}(y_N)$ with respect to ",
                "every $K_j$, $\\beta_j$, $h_j$ " if doc.shared else "every parameter and every $h_j$ ",
                "(and $y_0$): the discrete adjoint of this map. **Optimise, then discretise.** Alternatively, "
                "integrate the adjoint equation for $p$ backwards with a second Runge–Kutta method "
                "$(\\tilde A, \\tilde b, \\tilde c)$, as a partitioned method [BCE+19, eqs. (16)-(18)]. When the two "
                "tableaux satisfy the symplecticity conditions (19) (section 4), the quadratic invariant "
                "$p^{T} v$ is preserved, where $v$ solves the variational equation "
                "$\\dot v = \\partial_y f(y, u) v$ (a perturbation of the state carried along the flow) and $p$ "
                "the adjoint equation above, and the two routes give the same equations "
                "[BCE+19, Prop. 3.1; Hag00; SS16]",
                "" if doc.params != "continuous" else " (in the continuous layout only where $\\tilde c = c$, 6.5)",
                ": the backward Runge–Kutta pass is then not an approximation of "
                "the continuous gradient but the exact gradient of the network. The partner "
                "$(\\tilde A, \\tilde b, \\tilde c)$ is derived in section 5 and the stage-wise gradient ",
                "[BCE+19, Prop. 3.2; BCE+21, Prop. 1] in section 6."
                if doc.shared
                else f"[BCE+19, Prop. 3.1; BCE+21, Prop. 1] in section 6, the gradient of the {doc.params} layout's "
                "parameters in 6.5.",
            )
        ),
    ]


def section_tableau(doc: Context) -> list:
    t = doc.t
    s = t.stages
    out = [Heading(2, rich("2. The tableau"))]
    facts = []
    if t.description:
        facts.append(rich("Description: ", Text(t.description)))
    if t.reference:
        facts.append(rich("Reference: ", Text(t.reference)))
    facts.append(rich("Source: ", Text(t.source or t.name)))
    out.append(Items(facts))
    entries = [*t.b, *t.c, *(x for row in t.A for x in row)]
    if drawable(entries, s):
        out.append(Para(rich("The Butcher tableau, exactly:")))
        out.append(Display([tableau_latex(t.A, t.b, t.c)]))
    else:
        out.append(
            Para(
                rich(
                    "The Butcher tableau is too wide to draw; its pattern ($\\ast$ for a nonzero entry) and then "
                    "its "
                    "entries, exactly:"
                )
            )
        )
        pattern = [[r"\ast" if nz else "0" for nz in row] for row in t.nonzero]
        body = " \\\\\n".join(" & ".join(row) for row in pattern)
        out.append(Display([r"A \sim \begin{pmatrix}" + "\n" + body + "\n" + r"\end{pmatrix}"]))
        lines = [rf"c_{sub(i + 1)} &= {lx(x)}" for i, x in enumerate(t.c)]
        lines += [rf"b_{sub(i + 1)} &= {lx(x)}" for i, x in enumerate(t.b)]
        lines += [
            rf"a_{sub(i + 1, j + 1)} &= {lx(x)}"
            for i, row in enumerate(t.A)
            for j, x in enumerate(row)
            if t.nonzero[i][j]
        ]
        out.append(Display(lines, aligned=True))
    F = doc.F
    if F.is_rational:
        field = "All entries are rational; every equality below is decided exactly in $\\mathbb{Q}$."
    else:
        field = (
            f"The entries lie in the number field $\\mathbb{{Q}}(\\theta)$ of degree {F.degree}, "
            f"$\\theta = {lx(F.theta)}$; every equality below is decided by exact arithmetic in this field, "
            "never by rounding."
        )
    out.append(Para(rich(field)))
    if t.is_consistent:
        out.append(Para(rich("The nodes are the row sums, $c = A\\mathbf{1}$.")))
    else:
        sums = ", ".join(lx(x) for x in t.row_sums)
        out.append(
            Para(
                rich(
                    f"The nodes $c$ differ from the row sums $A\\mathbf{{1}} = ({sums})$; the order conditions "
                    "below "
                    "use $A\\mathbf{1}$ where a tree has a leaf, and a network with one parameter set per layer "
                    + (
                        "never uses $c$."
                        if doc.params != "continuous"
                        else "never uses $c$; the continuous layout does: it reads the parameters at the stage "
                        "times $t_j + c_i h_j$ (6.5)."
                    )
                )
            )
        )
    out.append(Para(rich(f"**Structure: {t.structure_detail}.** ", *_structure_meaning(doc))))
    return out


def _structure_meaning(doc: Context) -> list:
    t = doc.t
    if t.structure == "explicit":
        return rich(
            "$a_{ij} = 0$ for $j \\ge i$: the forward pass computes $Y_1, F_1, Y_2, F_2, \\dots$ one after "
            "another with no solve, and the backward pass is a reverse sweep $i = s, \\dots, 1$ that needs "
            "only the stages already computed (section 6)."
        )
    if t.structure == "diagonally implicit":
        return rich(
            "$a_{ij} = 0$ for $j > i$ and some $a_{ii} \\ne 0$: the forward pass solves one nonlinear "
            "$d \\times d$ system per stage with $a_{ii} \\ne 0$ (Newton), stage after stage; the backward "
            "pass runs $i = s, \\dots, 1$ and solves one linear $d \\times d$ system per such stage "
            "(section 6)."
        )
    return rich(
        "some $a_{ij} \\ne 0$ with $j > i$: all stages are coupled. The forward pass solves one nonlinear "
        "system of size $sd$ per sample (Newton), and the backward pass one linear system of size $sd$ "
        "(section 6)."
    )


def section_order(doc: Context) -> list:
    from ..order import ElementaryWeights

    t = doc.t
    r = t.order_report
    p = r.order
    F = doc.F
    top = min(p + 1, r.max_order)
    full = min(top, FULL_TREE_ORDER)
    out = [Heading(2, rich("3. Order"))]
    out.append(
        Para(
            rich(
                "The method has order $p$ if and only if $b^{T}\\Phi(t) = 1/\\gamma(t)$ for every rooted tree $t$ "
                "with $\\lvert t\\rvert \\le p$ nodes [HLW06, III.1]. The stage vector $\\Phi(t)$ follows the tree: "
                "$\\Phi(\\tau) = \\mathbf{1}$ for the single node, and $\\Phi([t_1 \\dots t_k]) = "
                "(A\\Phi(t_1)) \\odot \\dots \\odot (A\\Phi(t_k))$ for the tree whose root carries the subtrees "
                "$t_1, \\dots, t_k$ ($\\odot$ and powers componentwise). The density $\\gamma(t)$ is $\\lvert "
                "t\\rvert$ "
                "times the densities of the subtrees. The conditions are decided exactly, tree by tree."
            )
        )
    )
    bound = " (at least: every tree checked holds)" if r.order_is_lower_bound else ""
    out.append(
        Para(
            rich(
                f"**Result: order $p = {p}$**{bound}, exactly. The trees up to order {top} follow"
                + (f", in full up to order {full}." if full < top else ".")
            )
        )
    )
    W = ElementaryWeights(t)
    rounded = False
    rows = []
    conditions = [c for c in r.conditions if c.tree.order <= full]
    for cond in conditions:
        tr = cond.tree
        phi = doc.vector_of_elements(W.phi(tr))
        rounded = rounded or phi.startswith(r"\approx")
        inv = sympy.Rational(1, tr.gamma)
        if cond.holds:
            weight, status = lx(inv), [Text("holds")]
        else:
            weight = doc.exact_or_float(cond.residual + inv, 24)
            status = [Text("fails by "), Math(_residual_math(doc, cond))]
        rows.append(
            [
                [tree_picture(tr)],
                [Math(tree_tex(tr))],
                [Text(str(tr.order))],
                [Math(phi_formula(tr, t.is_consistent))],
                [Math(phi)],
                [Math(weight)],
                [Math(lx(inv))],
                status,
            ]
        )
    header = [
        rich(x)
        for x in (
            "drawn",
            "tree $t$",
            "$\\lvert t\\rvert$",
            "$\\Phi(t)$",
            f"$\\Phi(t)$ for {doc.safe_name}",
            "$b^{T}\\Phi(t)$",
            "$1/\\gamma(t)$",
            "condition",
        )
    ]
    out.append(
        Para(
            rich(
                "Each tree is drawn with its root at the bottom; a node's children are the subtrees in its bracket. "
                "The column $b^{T}\\Phi(t)$ is the elementary weight of the tree for this tableau, beside "
                "$1/\\gamma(t)$, the value it must have."
            )
        )
    )
    out.append(Table(header, rows, "clrllrrl"))
    if rounded:
        out.append(
            Para(
                rich(
                    "Irrational entries of $\\Phi(t)$ (in the number field of degree "
                    f"{F.degree}) are shown rounded ($\\approx$); $b^{{T}}\\Phi(t)$ is compared with "
                    "$1/\\gamma(t)$ "
                    "exactly."
                )
            )
        )
    if top > full:
        items = []
        for n in range(full + 1, top + 1):
            level = r.conditions_of_order(n)
            bad = [c for c in level if not c.holds]
            if not bad:
                items.append(rich(f"Order {n}: {len(level)} trees, every condition holds exactly"))
            else:
                largest = max(abs(c.residual_float) for c in bad)
                items.append(
                    rich(
                        f"Order {n}: {len(level)} trees, {len(bad)} of them fail; the largest "
                        f"$\\lvert b^{{T}}\\Phi(t) - 1/\\gamma(t)\\rvert$ is ${sci_tex(largest, 3, trim=True)}$"
                    )
                )
        if len(items) == 1:
            out.append(Para(rich(*items[0], ".")))
        else:
            out.append(Para(rich(f"Orders {full + 1} to {top}, one line each:")))
            out.append(Items(items))
        failing = [c for c in r.conditions_of_order(top) if not c.holds]
        if failing and top == p + 1:
            shown = failing[:MAX_FAILING_LISTED]
            more = f" (the first {len(shown)} of {len(failing)})" if len(failing) > len(shown) else ""
            out.append(Para(rich(f"The failing trees of order {top}{more}, with $b^{{T}}\\Phi(t) - 1/\\gamma(t)$:")))
            out.append(Items([rich(f"${tree_tex(c.tree)}$: ${_residual_math(doc, c)}$") for c in shown]))
    if r.order_tolerant != r.order:
        out.append(
            Para(
                rich(
                    f"To within ${magnitude_tex(r.tolerance)}$ the conditions hold up to order {r.order_tolerant} "
                    f"(largest residual ${sci_tex(r.max_residual, 1)}$): the coefficients approximate a method of "
                    "that order."
                )
            )
        )
    out.append(Heading(3, rich("Simplifying assumptions")))
    out.append(
        Display(
            [
                r"B(k)&: \ \sum_i b_i c_i^{m-1} = \frac{1}{m}, \quad m \le k,",
                r"C(k)&: \ \sum_j a_{ij} c_j^{m-1} = \frac{c_i^{m}}{m} \ \text{for all } i, \quad m \le k,",
                r"D(k)&: \ \sum_i b_i c_i^{m-1} a_{ij} = \frac{b_j (1 - c_j^{m})}{m} \ \text{for all } j, \quad "
                r"m \le k.",
            ],
            aligned=True,
        )
    )

    def holds(name, k):
        if k >= r.max_order:
            return f"${name}(k)$ for every $k \\le {k}$ checked"
        return f"${name}({k})$" if k else f"not even ${name}(1)$"

    out.append(
        Para(
            rich(
                f"Here the largest that hold are {holds('B', r.B)}, {holds('C', r.C)} and {holds('D', r.D)}; "
                f"the stage order is {r.stage_order}. "
                + (
                    "$D(1)$ holds, which is what makes the partner's nodes equal $c$ (section 5)."
                    if r.D >= 1
                    else "$D(1)$ fails, so the partner's nodes differ from $c$ (section 5)."
                )
            )
        )
    )
    return out


def _residual_math(doc: Context, cond) -> str:
    """b^T Φ(t) − 1/γ(t) of a failing condition: exact when short, else its float (≈, in LaTeX's notation)."""
    text = lx(cond.residual)
    return text if len(text) <= SHORT_LATEX else r"\approx " + sci_tex(cond.residual_float)


def _layer_parameters(doc: Context) -> str:
    """What a layer's parameters are, in the layout of the document."""
    if doc.params == "shared":
        return "layer $j$ has parameters $u_j = (K_j, \\beta_j)$ and a step $h_j$"
    if doc.params == "stage":
        return "layer $j$ has a step $h_j$ and one parameter set $u_{j,i} = (K_{j,i}, \\beta_{j,i})$ per stage $i$"
    return (
        "layer $j$ has a step $h_j$, and the parameters are a function of time $u(t) = (K(t), \\beta(t))$, "
        "linear between nodal values $u_k$ at fixed times $\\tau_k$, $k = 0, \\dots, N$"
    )


def _stage_parameters(doc: Context, s: int) -> str:
    """Which parameters the stages of layer j read (the end of section 1's 'discretise, then optimise')."""
    if doc.params == "shared":
        return f", one step per layer, with the parameters of layer $j$ shared by its $s = {s}$ stages:"
    if doc.params == "stage":
        return (
            f", one step per layer; stage $i$ of its $s = {s}$ stages reads its own set $u_i = u_{{j,i}}$ "
            "[BCE+19, (16)-(18)] (section 6.5):"
        )
    return (
        f", one step per layer; stage $i$ of its $s = {s}$ stages reads $u_i = u(t_j + c_i h_j)$ at its stage "
        "time, $t_j = h_0 + \\dots + h_{j-1}$ (section 6.5):"
    )
