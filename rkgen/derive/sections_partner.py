"""Sections 4-5 of the derivation: symplecticity, the misprint of (19), the partner tableau (from rkgen.partner)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .check import MISPRINT_WITNESSES, misprint_evidence, partner_entries
from .document import Code, Display, Heading, Para, rich
from .formulas import drawable, factor, lx, magnitude_tex, matrix_latex, sub, tableau_latex

if TYPE_CHECKING:
    from .context import Context


def section_symplecticity(doc: Context) -> list:
    t = doc.t
    M = t.symplecticity_matrix
    s = t.stages
    out = [Heading(2, rich("4. Symplecticity"))]
    out.append(
        Para(
            rich(
                "[BCE+19] pairs the method $(A, b, c)$ with a second Runge–Kutta method $(\\tilde A, \\tilde b, "
                "\\tilde c)$ for the adjoint equation and asks for the conditions"
            )
        )
    )
    out.append(
        Display(
            [
                r"b_i \tilde a_{ij} + \tilde b_j a_{ji} - b_i \tilde b_j = 0, \qquad b_i = \tilde b_i, \qquad "
                r"\tilde c_i = c_i, \qquad i, j = 1, \dots, s. \qquad (19)"
            ]
        )
    )
    out.append(
        Para(
            rich(
                "If the first two hold, the pair is a symplectic partitioned Runge–Kutta method [HLW06, Thm. VI.4.6]: "
                "the quadratic invariant "
                "$p^{T} v$ of section 1 is kept exactly by the discrete equations. The third condition concerns "
                "only the times at which a non-autonomous field is evaluated (section 5)."
            )
        )
    )
    out.append(
        Para(
            rich(
                "A single method is its own partner ($\\tilde A = A$) if and only if the matrix "
                "$M = \\operatorname{diag}(b) A + A^{T} \\operatorname{diag}(b) - b b^{T}$, entry by entry "
                "$M_{ij} = b_i a_{ij} + b_j a_{ji} - b_i b_j$, vanishes. For ",
                Code(t.name),
                ":",
            )
        )
    )
    flat = [x for row in M for x in row]
    if drawable(flat, s):
        out.append(Display([f"M = {matrix_latex(M)}"]))
    else:
        lines = [rf"M_{sub(i + 1, j + 1)} &= {lx(M[i][j])}" for i in range(s) for j in range(i, s) if M[i][j] != 0]
        out.append(
            Para(rich("$M$ is symmetric; its nonzero entries on and above the diagonal:"))
            if lines
            else Para(rich("$M = 0$."))
        )
        if lines:
            out.append(Display(lines, aligned=True))
    if t.is_symplectic:
        out.append(
            Para(
                rich(
                    "$M = 0$: the method is symplectic, its own partner; the backward pass of "
                    "section 6 "
                    "is the same method applied to the adjoint equation."
                )
            )
        )
    else:
        nz = sum(1 for x in flat if x != 0)
        out.append(
            Para(
                rich(
                    f"$M \\ne 0$ ({nz} of {s * s} entries): the method is not symplectic by itself; "
                    "its partner $\\tilde A \\ne A$ is derived in section 5."
                )
            )
        )
    out.extend(_misprint(doc))
    return out


def _misprint(doc: Context) -> list:
    t = doc.t
    out = [Heading(3, rich("The index in (19): a misprint in [BCE+19] and [BCE+21]"))]
    out.append(
        Para(
            rich(
                "Conditions (19) of [BCE+19] (and the conditions of [BCE+21, section 3]) print $a_{i,j}$ where (19) "
                "above has $a_{ji}$:"
            )
        )
    )
    out.append(Display([r"b_i \tilde a_{ij} + \tilde b_j a_{ij} - b_i \tilde b_j = 0."]))
    out.append(
        Para(
            rich(
                "That is a misprint. "
                "The gradient formula (24) of the same paper, $P_i = p - h \\sum_k (a_{ki} b_k / b_i)\\ell_k$, "
                "has the transposed index, and so has the discrete adjoint derived in section 6. The misprinted "
                "conditions are the true conditions of the transposed tableau $(A^{T}, b)$."
            )
        )
    )
    if t.zero_weights:
        out.append(
            Para(
                rich(
                    "With a zero weight neither version can be solved for $\\tilde A$ (section 5), so the misprint "
                    "cannot be tested on this tableau."
                )
            )
        )
        return out
    differ = doc.misprint_differences
    if not differ:
        why = "$A = A^{T}$" if doc.is_symmetric else "$b_j a_{ij} = b_j a_{ji}$ for all $i, j$"
        out.append(
            Para(
                rich(
                    f"For this tableau {why}, so both versions give the same partner: the misprint is invisible here. ",
                    *_misprint_evidence(doc),
                )
            )
        )
        return out
    wrong, right = partner_entries(t, misprint=True), partner_entries(t)
    i, j = differ[0]
    out.append(
        Para(
            rich(
                f"Solved for $\\tilde a_{{ij}}$, the misprint gives $\\tilde a_{{ij}} = b_j - b_j a_{{ij}} / b_i$, "
                f"which differs from the partner of section 5 in {len(differ)} of {t.stages**2} entries here, e.g. "
                f"${doc.element_latex(wrong[i][j])}$ instead of ${doc.element_latex(right[i][j])}$ for "
                f"$\\tilde a_{sub(i + 1, j + 1)}$. "
                "Numerical evidence (section 7): on a random network the gradient from the misprinted partner "
                f"is off by ${magnitude_tex(doc.check.misprint_diff)}$, the one from the transposed index by "
                f"${magnitude_tex(doc.check.p_form_diff)}$ (finite-difference noise). ",
                *_misprint_evidence(doc),
            )
        )
    )
    return out


def _misprint_evidence(doc: Context) -> list:
    rows = [(name, misprint_evidence(name)) for name in MISPRINT_WITNESSES]
    wrong = ", ".join(f"${magnitude_tex(w)}$" for _, (_, w) in rows)
    right = ", ".join(f"${magnitude_tex(r)}$" for _, (r, _) in rows)
    names = [Code(name) for name, _ in rows]
    return rich(
        "For the explicit methods of [BCE+19, Table 1], Heun's (",
        names[0],
        ", 'Improved Euler'), Kutta's third-order (",
        names[1],
        ") and the classical Runge–Kutta method (",
        names[2],
        "), the misprinted "
        f"partner gives gradients off by {wrong} respectively on the random network of section 7, "
        f"the true partner by {right}.",
    )


def section_partner(doc: Context) -> list:
    t = doc.t
    s = t.stages
    out = [Heading(2, rich("5. The partner tableau"))]
    p = t.partner
    if p is None:
        return out + _no_partner(doc)
    out.append(
        Para(rich("Every $b_i \\ne 0$, so (19) is solved for the partner: $\\tilde b = b$ and, dividing by $b_i$,"))
    )
    out.append(
        Display(
            [
                r"\tilde a_{ij} = b_j - \frac{b_j a_{ji}}{b_i} = a_{ij} - \frac{M_{ij}}{b_i},"
                r"\qquad \text{i.e.} \qquad \tilde A = A - \operatorname{diag}(b)^{-1} M."
            ]
        )
    )
    if t.is_symplectic:
        out.append(Para(rich("Here $M = 0$, so $\\tilde A = A$: the method is its own partner. Entry by entry:")))
    else:
        out.append(Para(rich("Entry by entry:")))
    A, b = t.A, t.b
    lines = []
    for i in range(s):
        for j in range(s):
            bj_, aji_, bi_ = f"b_{sub(j + 1)}", f"a_{sub(j + 1, i + 1)}", f"b_{sub(i + 1)}"
            head = rf"\tilde a_{sub(i + 1, j + 1)} &= {bj_} - \frac{{{bj_} {aji_}}}{{{bi_}}}"
            parts = [b[j], A[j][i], b[i]]
            if t.nonzero[j][i] and doc.short(parts, 14):
                bj, aji, bi = (factor(x) for x in parts)
                head += rf" = {lx(b[j])} - {bj} \cdot {aji} / {bi}"
            lines.append(head + f" = {lx(p.A[i][j])}")
    out.append(Display(lines, aligned=True))
    out.append(
        Para(rich("The partner tableau $(\\tilde A, \\tilde b, \\tilde c)$, $\\tilde c = \\tilde A\\mathbf{1}$:"))
    )
    entries = [*p.c, *(x for row in p.A for x in row)]
    if drawable(entries, s):
        out.append(Display([tableau_latex(p.A, p.b, p.c)]))
    else:
        out.append(Para(rich("(too wide to draw; the entries are listed above.)")))
    structure = p.structure_detail
    text = f"The partner is {structure}."
    weights = doc.eq.p_form
    if weights is not None:
        reach = [k - i for i, row in enumerate(weights) for k in (x.index for x in row)]
        if t.structure == "explicit" and p.structure != "explicit":
            text += (
                " Applied backwards in time to the adjoint equation it is nonetheless explicit: in section 6.4 "
                "stage $i$ uses $b_k - \\tilde a_{ik} = a_{ki} b_k / b_i$, which vanishes for $k \\le i$, so "
                "the stages are computed $i = s, \\dots, 1$ without a solve."
            )
        elif reach and min(reach) >= 0 and t.structure != "fully implicit":
            text += (
                " In the backward pass only $b_k - \\tilde a_{ik} = a_{ki} b_k / b_i$ enters, which vanishes "
                "for $k < i$: stage $i$ needs the stages after it, so the backward pass runs $i = s, \\dots, 1$."
            )
    out.append(Para(rich(text)))
    from ..partner import c_matches

    if c_matches(t):
        out.append(
            Para(
                rich(
                    "$\\tilde c = c$: the third condition of (19) holds too. (In general "
                    "$\\tilde c_i = 1 - \\sum_j b_j a_{ji} / b_i$, so $\\tilde c = c$ exactly when $D(1)$ holds.)"
                )
            )
        )
    else:
        ct = ", ".join(lx(x) for x in p.c)
        cc = ", ".join(lx(x) for x in t.c)
        why = (
            "$\\tilde c$ is used only where the parameters vary inside a layer ($u(t_j + c_i h)$); with one parameter "
            "set per layer, as in rkgen's networks, the partner's nodes never enter the backward pass, so the "
            "gradient is exact."
        )
        if doc.params == "stage":
            why = (
                "$\\tilde c$ is used only where the parameters vary with $t$ inside a layer ($u(t_j + c_i h)$); "
                "in the stage layout each stage has its own set, tied to the stage and not to a time, so the "
                "partner's nodes never enter the backward pass, and the gradient is exact."
            )
        elif doc.params == "continuous":
            why = (
                "$\\tilde c$ is used only where the parameters vary with $t$ inside a layer ($u(t_j + c_i h)$), "
                "and in the continuous layout they do: section 6.5 says where $\\tilde c \\ne c$ matters."
            )
        out.append(
            Para(
                rich(
                    f"$\\tilde c = ({ct})$ differs from $c = ({cc})$: the condition $c_i = \\tilde c_i$ that "
                    "[BCE+19] lists "
                    "with (19) fails, because $\\tilde c_i = 1 - \\sum_j b_j a_{ji} / b_i$ equals $c_i$ exactly "
                    "when "
                    "$D(1)$ holds, and it does not here. ",
                    why,
                )
            )
        )
    return out


def _no_partner(doc: Context) -> list:
    t = doc.t
    A, b = t.A, t.b
    s = t.stages
    zeros = ", ".join(f"b_{sub(i + 1)}" for i in t.zero_weights)
    out = [
        Para(
            rich(
                f"Here ${zeros} = 0$. For such an $i$, condition (19) reads $b_i \\tilde a_{{ij}} + b_j a_{{ji}} - "
                "b_i b_j = b_j a_{ji} = 0$ for every $j$: $\\tilde a_{ij}$ drops out and cannot be solved for."
            )
        )
    ]
    F = doc.F
    broken = []
    for i in t.zero_weights:
        for j in range(s):
            v = F.mul(F.element(b[j]), F.element(A[j][i]))
            if not v.is_zero():
                broken.append(
                    rf"(i, j) = ({i + 1}, {j + 1}):\quad b_{sub(j + 1)} a_{sub(j + 1, i + 1)} = "
                    rf"{factor(b[j])} \cdot {factor(A[j][i])} = {lx(F.to_sympy(v))} \ne 0"
                )
    if broken:
        out.append(Para(rich("And it is violated whatever $\\tilde A$ is:")))
        out.append(
            Display(broken, aligned=False)
            if len(broken) == 1
            else Display([line.replace(r":\quad", r":&\quad", 1) for line in broken], aligned=True)
        )
        out.append(
            Para(
                rich(
                    "**So no symplectic partner exists**; the P form of [BCE+19, (24)] divides by $b_i$ and is "
                    "undefined."
                )
            )
        )
    else:
        out.append(
            Para(
                rich(
                    "Every $b_j a_{ji}$ with $b_i = 0$ vanishes, so those conditions hold whatever the row "
                    "$\\tilde a_{i\\cdot}$ is: a partner exists but is not unique, and rkgen does not pick one. "
                    "The P form of [BCE+19, (24)] still divides by $b_i$."
                )
            )
        )
    out.append(
        Para(
            rich(
                "**The $\\xi$ form goes around it.** Section 6 writes the backward pass for the adjoints "
                "$\\xi_i = h_j \\eta_i$ of the stage derivatives $F_i$ instead of $P_i = \\eta_i / b_i$: "
                "$\\eta_i = b_i p + \\sum_k a_{ki} \\mu_k$ never divides by $b_i$ (nor by $h_j$), so a stage with "
                "$b_i = 0$ simply starts from $\\eta_i = \\sum_k a_{ki}\\mu_k$. It is the exact gradient all the "
                "same: "
                "it is the discrete adjoint of the network itself, which needs no partner."
            )
        )
    )
    return out
