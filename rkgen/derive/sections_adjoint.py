"""Section 6 of the derivation: the stage-wise adjoint equations, printed from the layer equations (data)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .document import Code, Display, Heading, Items, Para, rich
from .formulas import (
    coefficient_latex,
    combination,
    eta_numeric,
    eta_symbolic,
    forward_symbolic,
    numeric,
    sub,
    symbolic,
    update_symbolic,
)
from .sections_layout import section_layout

if TYPE_CHECKING:
    from .context import Context


def section_adjoint(doc: Context) -> list:
    out = [Heading(2, rich("6. The stage-wise adjoint equations"))]
    out.append(
        Para(
            rich(
                "The equations of one layer $j$ for ",
                Code(doc.t.name),
                ", as rkgen's layer equations hold them (exact coefficients, zero terms dropped); the code "
                "generator prints the network module from the same equations (section 8).",
            )
        )
    )
    out += _forward_equations(doc)
    out += _backward_equations(doc)
    out += _gradient_equations(doc)
    out += _p_form_equations(doc)
    if not doc.shared:
        out += section_layout(doc)
    return out


def _forward_equations(doc: Context) -> list:
    t, eq = doc.t, doc.eq
    out = [Heading(3, rich("6.1 Forward stages"))]
    lines = []
    for st in eq.forward:
        line = forward_symbolic(st).replace(" = ", " &= ", 1)
        if st.terms and doc.numeric_ok(st.terms):
            line += rf" = y_j + h_j\left({numeric(st.terms, 'F')}\right)"
        lines.append(line)
    update = update_symbolic(eq).replace(" = ", " &= ", 1)
    if eq.update and doc.numeric_ok(eq.update):
        update += rf" = y_j + h_j\left({numeric(eq.update, 'F')}\right)"
    lines.append(update)
    if t.structure == "explicit":
        out.append(Para(rich(f"In this order, each $F_i = f(Y_i, {doc.u})$ evaluated right after $Y_i$:")))
        out.append(Display(lines, aligned=True))
        return out
    implicit = [st.i + 1 for st in eq.forward if st.implicit]
    out.append(Display(lines, aligned=True))
    if t.structure == "diagonally implicit":
        out.append(
            Para(
                rich(
                    f"with $F_i = f(Y_i, {doc.u})$. {_stages(implicit)} $Y_i$ on both sides (through $F_i$): "
                    f"{'each is' if len(implicit) > 1 else 'it is'} a nonlinear $d \\times d$ system, solved "
                    f"{'stage after stage ' if len(implicit) > 1 else ''}by Newton's method with the "
                    f"matrix $I - h_j a_{{ii}} J_i$, $J_i = \\partial_y f(Y_i, {doc.u})$."
                )
            )
        )
    else:
        out.append(
            Para(
                rich(
                    f"with $F_i = f(Y_i, {doc.u})$. All stages are coupled: $Y = \\mathbf{{1}} \\otimes y_j + h_j "
                    "(A \\otimes I) F(Y)$ is one nonlinear system of size $sd$ per sample, solved by Newton's "
                    "method with the matrix $I - h_j (A \\otimes I) \\operatorname{diag}(J_1, \\dots, J_s)$."
                )
            )
        )
    out.append(
        Para(
            rich(
                "The gradient below is the exact gradient of the network for converged stages; as in [BCE+21], it "
                "comes from these equations, not from differentiating the iterations of the solver, so the "
                "solver must converge (the generated module iterates to rounding and counts failures)."
            )
        )
    )
    return out


def _backward_equations(doc: Context) -> list:
    t, eq = doc.t, doc.eq
    s = t.stages
    out = [Heading(3, rich("6.2 Backward stages (the $\\xi$ form)"))]
    out.append(
        Para(
            rich(
                "Let $p = \\partial\\mathcal{J}/\\partial y_{j+1}$ (at the top, $p = \\nabla\\mathcal{J}(y_N)$) "
                "and "
                f"$J_k = \\partial_y f(Y_k, {doc.u.replace('i', 'k')})$. Varying $y_j$, "
                + ("$u_j$" if doc.shared else "the stage parameters $u_i$")
                + " and $h_j$ in the forward stages gives"
            )
        )
    )
    out.append(
        Display(
            [
                r"\delta y_{j+1} &= \delta y_j + h_j \sum_i b_i \delta F_i + \delta h_j \sum_i b_i F_i,",
                rf"\delta F_i &= J_i \delta Y_i + \partial_u f(Y_i, {doc.u}) \delta {doc.u},",
                r"\delta Y_i &= \delta y_j + h_j \sum_l a_{il} \delta F_l + \delta h_j \sum_l a_{il} F_l.",
            ],
            aligned=True,
        )
    )
    out.append(
        Para(
            rich(
                "Take the inner product of the first line with $p$. To eliminate $\\delta F_i$ and $\\delta Y_i$, "
                "add for every stage $i$ the two vanishing terms $\\xi_i^{T}\\left(J_i \\delta Y_i + "
                f"\\partial_u f(Y_i, {doc.u}) \\delta {doc.u} - \\delta F_i\\right)$ and "
                "$\\mu_i^{T}\\left(\\delta y_j + h_j \\sum_l a_{il} \\delta F_l + \\delta h_j \\sum_l a_{il} F_l "
                "- \\delta Y_i\\right)$, with "
                "multipliers $\\xi_i$ and $\\mu_i$ still free. Then choose the multipliers so that the coefficient "
                "of each $\\delta F_i$ and of each $\\delta Y_i$ vanishes ($\\delta F_i$ appears in the first line "
                "with $h_j b_i p$, in its own term with $-\\xi_i$, and in the $\\mu_k$ terms with $h_j a_{ki} "
                "\\mu_k$):"
            )
        )
    )
    out.append(
        Display(
            [
                r"\delta F_i:&\quad h_j b_i p - \xi_i + h_j \sum_{k=1}^{s} a_{ki} \mu_k = 0 \quad\Longrightarrow\quad "
                r"\xi_i = h_j \eta_i, \qquad \eta_i = b_i p + \sum_{k=1}^{s} a_{ki} \mu_k,",
                r"\delta Y_i:&\quad J_i^{T} \xi_i - \mu_i = 0 \quad\Longrightarrow\quad \mu_i = h_j J_i^{T} \eta_i.",
            ],
            aligned=True,
        )
    )
    out.append(
        Para(
            rich(
                "What remains is the variation of the layer's output in terms of its inputs (the $\\delta h_j$ "
                "coefficient is $\\sum_i b_i p^{T} F_i + \\sum_k \\mu_k^{T} \\sum_l a_{kl} F_l = \\sum_l "
                "\\eta_l^{T} F_l$):"
            )
        )
    )
    out.append(
        Display(
            [
                r"p^{T} \delta y_{j+1} = \Big(p + \sum_i \mu_i\Big)^{T} \delta y_j + h_j \sum_i \eta_i^{T} "
                rf"\partial_u f(Y_i, {doc.u}) \delta {doc.u} + \Big(\sum_i \eta_i^{{T}} F_i\Big) \delta h_j.",
            ]
        )
    )
    out.append(
        Para(
            rich(
                "The transposed index $a_{ki}$ appears by itself: it is the index of (19) (section 4). Nothing "
                "divides by $b_i$ or by $h_j$, so zero weights and zero steps are fine. Substituting "
                "$\\mu_k = h_j J_k^{T} \\eta_k$ into $\\eta_i$ leaves the stage adjoint system, $s$ linear "
                "equations for $\\eta_1, \\dots, \\eta_s$ whose block $(i, k)$ is $\\delta_{ik} I - h_j a_{ki} "
                "J_k^{T}$, the pattern of $A^{T}$:"
            )
        )
    )
    out.append(Display([r"\eta_i - h_j \sum_{k=1}^{s} a_{ki} J_k^{T} \eta_k = b_i p, \qquad i = 1, \dots, s."]))
    out += _elimination(doc)
    lead = rich("For ", Code(t.name), ", ")
    if t.structure == "explicit":
        lines = []
        for st in eq.backward:
            line = eta_symbolic(st).replace(" = ", " &= ", 1)
            if (st.weight or st.terms) and doc.numeric_ok(st.terms + ((st.weight,) if st.weight else ())):
                line += " = " + eta_numeric(st)
            lines.append(line)
        order = ", ".join(str(st.i + 1) for st in eq.backward)
        out.append(
            Para(
                rich(
                    lead,
                    f"only $a_{{ki}}$ with $k > i$ occur, so the backward pass is a reverse sweep over the "
                    f"{'stages ' + order if eq.stages > 1 else 'single stage'}, each $\\eta_i$ followed at once "
                    "by $\\mu_i = h_j J_i^{T} \\eta_i$ (no solve):",
                )
            )
        )
        out.append(Display(lines, aligned=True))
    elif t.structure == "diagonally implicit":
        lines = []
        for st in eq.backward:
            i = st.i + 1
            rhs_terms = ((st.weight,) if st.weight else ()) + st.explicit_terms
            rhs_sym = (
                " + ".join(
                    ([f"{coefficient_latex(st.weight.name)} p"] if st.weight else [])
                    + ([symbolic(st.explicit_terms, r"\mu")] if st.explicit_terms else [])
                )
                or "0"
            )
            pairs = ([(st.weight.value, "p")] if st.weight else []) + [
                (x.value, rf"\mu_{sub(x.index + 1)}") for x in st.explicit_terms
            ]
            d = st.diagonal
            if d is None:
                line = rf"\eta_{sub(i)} &= {rhs_sym}"
                if pairs and doc.numeric_ok(rhs_terms):
                    line += " = " + combination(pairs)
                lines.append(line)
                continue
            lines.append(
                rf"\left(I - h_j {coefficient_latex(d.name)} J_{sub(i)}^{{T}}\right)\eta_{sub(i)} &= {rhs_sym}"
            )
            if doc.numeric_ok(rhs_terms + (d,)):
                lhs = combination([(1, "I"), (-d.value, rf"h_j J_{sub(i)}^{{T}}")])
                lines.append(rf"\left({lhs}\right)\eta_{sub(i)} &= {combination(pairs)}")
        order = ", ".join(str(st.i + 1) for st in eq.backward)
        solves = ", ".join(str(st.i + 1) for st in eq.backward if st.diagonal is not None)
        out.append(
            Para(
                rich(
                    lead,
                    f"only $a_{{ki}}$ with $k \\ge i$ occur. "
                    f"{f'The stages are computed in the order {order}; stage ' if ',' in order else 'Stage '}"
                    "$i$ "
                    f"contains $\\mu_i = h_j J_i^{{T}}\\eta_i$ itself when $a_{{ii}} \\ne 0$ "
                    f"({'stages' if ',' in solves else 'stage'} {solves}), "
                    "and "
                    "moving it to the left gives one linear $d \\times d$ system per stage, with the transposed "
                    "matrix of the forward Newton step:",
                )
            )
        )
        out.append(Display(lines, aligned=True))
        out.append(Para(rich("Each $\\eta_i$ is followed at once by $\\mu_i = h_j J_i^{T}\\eta_i$.")))
    else:
        out.append(
            Para(
                rich(
                    lead,
                    "every $\\eta_i$ involves every $\\mu_k = h_j J_k^{T}\\eta_k$: one linear system of size "
                    "$sd$ per "
                    "sample, the transpose of the forward Newton matrix, with the pattern of $A^{T}$:",
                )
            )
        )
        out.append(Display([_block_system(doc, symbolic_names=True)]))
        if doc.short([x.value for st in eq.backward for x in st.terms] + list(t.b), 20) and s <= 3:
            out.append(Para(rich("With the coefficients of this tableau:")))
            out.append(Display([_block_system(doc, symbolic_names=False)]))
        out.append(Para(rich("After the solve, $\\mu_k = h_j J_k^{T}\\eta_k$ for every $k$.")))
    return out


def _elimination(doc: Context) -> list:
    """Which η_k each η_i needs: the nonzero a_ki of this tableau, row by row (the computing order that follows is
    stated with the equations below)."""
    t = doc.t
    s = t.stages
    needs = [[k for k in range(s) if t.nonzero[k][i]] for i in range(s)]
    if s > 8:
        total = sum(len(n) for n in needs)
        return [Para(rich(f"For this tableau {total} of the $s^2 = {s * s}$ coefficients $a_{{ki}}$ are nonzero."))]
    items = []
    for i in range(s):
        own = f"$\\eta_{sub(i + 1)}$"
        if not needs[i]:
            items.append(
                rich(
                    own, f": no $\\mu_k$ ($a_{{k{i + 1}}} = 0$ for every $k$), $\\eta_{sub(i + 1)} = b_{sub(i + 1)} p$"
                )
            )
            continue
        others = ", ".join(f"\\eta_{sub(k + 1)}" for k in needs[i])
        coefs = ", ".join(f"a_{sub(k + 1, i + 1)}" for k in needs[i])
        items.append(rich(own, f": needs ${others}$ (through ${coefs} \\ne 0$)"))
    return [
        Para(rich("Row by row, for this tableau, the $\\eta_k$ (through $\\mu_k$) that each $\\eta_i$ needs:")),
        Items(items),
    ]


def _block_system(doc: Context, symbolic_names: bool) -> str:
    """The coupled adjoint system of a fully implicit tableau, block by block from ``eq.adjoint`` (the same
    :class:`rkgen.adjoint.StageSystem` the printer writes as ``_adjoint_system``)."""
    (system,) = doc.eq.adjoint
    rows = []
    for i in system.stages:
        cells = []
        for k in system.stages:
            term = system.block(i, k).term
            pairs = [(1, "I")] if k == i else []
            if term is not None:
                if symbolic_names:
                    pairs.append((-1, rf"h_j {coefficient_latex(term.name)} J_{sub(k + 1)}^{{T}}"))
                else:
                    pairs.append((-term.value, rf"h_j J_{sub(k + 1)}^{{T}}"))
            cells.append(combination(pairs))
        rows.append(" & ".join(cells))
    rhs = []
    for st in system.rhs:
        if st.weight is None:
            rhs.append("0")
        else:
            rhs.append(
                f"{coefficient_latex(st.weight.name)} p" if symbolic_names else combination([(st.weight.value, "p")])
            )
    matrix = "\\begin{pmatrix}\n" + " \\\\\n".join(rows) + "\n\\end{pmatrix}"
    etas = "\\begin{pmatrix}\n" + " \\\\\n".join(rf"\eta_{sub(i + 1)}" for i in system.stages) + "\n\\end{pmatrix}"
    right = "\\begin{pmatrix}\n" + " \\\\\n".join(rhs) + "\n\\end{pmatrix}"
    return f"{matrix}\n{etas} = {right}"


def _gradient_equations(doc: Context) -> list:
    s = doc.t.stages
    out = [Heading(3, rich("6.3 The gradient"))]
    out += _shared_parameter_gradients() if doc.shared else _stage_parameter_gradients()
    return out + _step_and_state_gradients(doc, s)


def _shared_parameter_gradients() -> list:
    """The gradients of (K_j, beta_j) for both fields: one parameter set per layer."""
    out = []
    out.append(
        Para(
            rich(
                "Per sample, with $z_i = K_j Y_i + \\beta_j$, $\\sigma_i = \\sigma(z_i)$, $\\sigma'_i = "
                "\\sigma'(z_i)$ "
                "(componentwise) and $g_i$ the part of $\\xi_i = h_j\\eta_i$ that reaches $z_i$; the parameter "
                "gradients are summed over the samples of the batch. The `resnet` field "
                "$f = \\sigma(K_j y + \\beta_j)$ has $J_i = \\operatorname{diag}(\\sigma'_i) K_j$:"
            )
        )
    )
    out.append(
        Display(
            [
                r"g_i = h_j \sigma'_i \odot \eta_i, \qquad \mu_i = K_j^{T} g_i, \qquad "
                r"\frac{\partial\mathcal{J}}{\partial K_j} = \sum_i g_i Y_i^{T}, \qquad "
                r"\frac{\partial\mathcal{J}}{\partial \beta_j} = \sum_i g_i;",
            ]
        )
    )
    out.append(
        Para(
            rich(
                "The `stable` field $f = -K_j^{T}\\sigma(K_j y + \\beta_j)$ has "
                "$J_i = -K_j^{T}\\operatorname{diag}(\\sigma'_i) K_j$:"
            )
        )
    )
    out.append(
        Display(
            [
                r"g_i = h_j \sigma'_i \odot (K_j \eta_i), \qquad \mu_i = -K_j^{T} g_i, \qquad "
                r"\frac{\partial\mathcal{J}}{\partial K_j} = -\sum_i \left(h_j \sigma_i \eta_i^{T} + g_i "
                r"Y_i^{T}\right), "
                r"\qquad \frac{\partial\mathcal{J}}{\partial \beta_j} = -\sum_i g_i.",
            ]
        )
    )
    return out


def _step_and_state_gradients(doc: Context, s: int) -> list:
    out = []
    dh = " + ".join(rf"\eta_{sub(i)}^{{T}} F_{sub(i)}" for i in range(1, s + 1))
    dy = " + ".join(rf"\mu_{sub(i)}" for i in range(1, s + 1))
    out.append(Para(rich("For both fields, and this tableau's $s = " + str(s) + "$ stages:")))
    out.append(
        Display(
            [
                rf"\frac{{\partial\mathcal{{J}}}}{{\partial h_j}} &= {dh},",
                rf"\frac{{\partial\mathcal{{J}}}}{{\partial y_j}} &= p + {dy},",
            ],
            aligned=True,
        )
    )
    out.append(
        Para(
            rich(
                "The second line is the $p$ of layer $j - 1$; after layer 0 it is "
                "$\\partial\\mathcal{J}/\\partial y_0$. "
                "$\\partial\\mathcal{J}/\\partial h_j$ is never computed as $h_j^{-1}\\sum_i \\xi_i^{T} F_i$, "
                "which would "
                "fail at $h_j = 0$.",
                ""
                if doc.params != "continuous"
                else " In the continuous layout $\\partial\\mathcal{J}/\\partial h_j$ gains the motion of the "
                "stage times (section 6.5).",
            )
        )
    )
    return out


def _stage_parameter_gradients() -> list:
    """The gradient G_i of the parameters (K_i, beta_i) = u_i that stage i reads, for both fields (layouts other
    than shared; section 6.5 sends the G_i on to the layout's parameters)."""
    out = []
    out.append(
        Para(
            rich(
                "Per sample, with $(K_i, \\beta_i) = u_i$ the parameters stage $i$ reads (section 6.5), "
                "$z_i = K_i Y_i + \\beta_i$, $\\sigma_i = \\sigma(z_i)$, $\\sigma'_i = \\sigma'(z_i)$ "
                "(componentwise) and $g_i$ the part of $\\xi_i = h_j\\eta_i$ that reaches $z_i$; "
                "$G_i = h_j \\partial_u f(Y_i, u_i)^{T} \\eta_i$ is the gradient of $u_i$, summed over the "
                "samples of the batch. The `resnet` field "
                "$f = \\sigma(K_i y + \\beta_i)$ has $J_i = \\operatorname{diag}(\\sigma'_i) K_i$:"
            )
        )
    )
    out.append(
        Display(
            [
                r"g_i = h_j \sigma'_i \odot \eta_i, \qquad \mu_i = K_i^{T} g_i, \qquad "
                r"G_i = \left(\frac{\partial\mathcal{J}}{\partial K_i}, \frac{\partial\mathcal{J}}{\partial "
                r"\beta_i}\right) = \left(g_i Y_i^{T}, \ g_i\right);",
            ]
        )
    )
    out.append(
        Para(
            rich(
                "The `stable` field $f = -K_i^{T}\\sigma(K_i y + \\beta_i)$ has "
                "$J_i = -K_i^{T}\\operatorname{diag}(\\sigma'_i) K_i$:"
            )
        )
    )
    out.append(
        Display(
            [
                r"g_i = h_j \sigma'_i \odot (K_i \eta_i), \qquad \mu_i = -K_i^{T} g_i, \qquad "
                r"G_i = \left(-h_j \sigma_i \eta_i^{T} - g_i Y_i^{T}, \ -g_i\right).",
            ]
        )
    )
    return out


def _p_form_equations(doc: Context) -> list:
    t, eq = doc.t, doc.eq
    out = [Heading(3, rich("6.4 The same equations in the partner form of [BCE+19, (24)]"))]
    weights = eq.p_form
    if weights is None:
        zeros = ", ".join(f"b_{sub(i + 1)}" for i in t.zero_weights)
        out.append(
            Para(
                rich(
                    f"The partner form divides by the weights, and ${zeros} = 0$ here: it does not exist for this "
                    "tableau (section 5). The $\\xi$ form of 6.2 is the whole backward pass, and it is exact."
                )
            )
        )
        return out
    out.append(
        Para(
            rich(
                "Every $b_i \\ne 0$, so $P_i = \\eta_i / b_i$ is defined. With $\\ell_k = -J_k^{T} P_k$ the "
                "equations "
                "of 6.2 become [BCE+19, (24)], [BCE+21, Prop. 1]:"
            )
        )
    )
    out.append(
        Display(
            [
                r"P_i &= p - h_j \sum_k \frac{a_{ki} b_k}{b_i} \ell_k = p + h_j \sum_k w_{ik} J_k^{T} P_k, "
                r"\qquad w_{ik} = \frac{a_{ki} b_k}{b_i} = b_k - \tilde a_{ik},",
                (
                    r"\frac{\partial\mathcal{J}}{\partial u_j} &= h_j \sum_i b_i \partial_u f(Y_i, u_j)^{T} P_i, "
                    if doc.shared
                    else r"G_i &= h_j b_i \partial_u f(Y_i, u_i)^{T} P_i, "
                )
                + r"\qquad \frac{\partial\mathcal{J}}{\partial y_j} = p + h_j \sum_i b_i J_i^{T} P_i = p - h_j "
                r"\sum_i b_i \ell_i.",
            ],
            aligned=True,
        )
    )
    out.append(
        Para(
            rich(
                "This is the partner $(\\tilde A, b)$ applied to the adjoint equation $\\dot p = -\\partial_y "
                "f^{T} p$ "
                "from $p_{j+1} = p$ back to $p_j$: [BCE+19, (17)] reads $p_{j+1} = p_j + h_j \\sum_i b_i \\ell_i$ and "
                "$P_i = p_j + h_j \\sum_l \\tilde a_{il} \\ell_l$; eliminating $p_j$ gives the first line. "
                "For this tableau ($w_{ik} = 0$ terms dropped):"
            )
        )
    )
    F = doc.F
    p = t.partner
    lines = []
    for i, row in enumerate(weights):
        for term in row:  # one source: w_ik = b_k - ã_ik with ã from the partner tableau
            k = term.index
            check = F.sub(F.sub(F.element(t.b[k]), F.element(p.A[i][k])), F.element(term.value))
            if not check.is_zero():  # pragma: no cover - the two modules disagree
                raise RuntimeError(f"w_{i + 1}_{k + 1} != b_{k + 1} - partner a_{i + 1}_{k + 1}")
        sym = " + ".join(rf"{coefficient_latex(x.name)} J_{sub(x.index + 1)}^{{T}} P_{sub(x.index + 1)}" for x in row)
        line = rf"P_{sub(i + 1)} &= p" + (rf" + h_j\left({sym}\right)" if row else "")
        if row and doc.numeric_ok(row):
            num = combination([(x.value, rf"J_{sub(x.index + 1)}^{{T}} P_{sub(x.index + 1)}") for x in row])
            line += rf" = p + h_j\left({num}\right)"
        lines.append(line)
    out.append(Display(lines, aligned=True))
    return out


def _stages(numbers) -> str:
    """'Stage 1 contains' or 'Stages 1, 2 contain'."""
    if len(numbers) == 1:
        return f"Stage {numbers[0]} contains"
    return f"Stages {', '.join(str(i) for i in numbers)} contain"
