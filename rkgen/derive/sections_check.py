"""Sections 7-8 of the derivation: the numerical check and where the generated module implements each equation."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .. import __version__
from .check import CHECK_D, CHECK_M, CHECK_N, CHECK_SEED, CHECK_STEPS, FD_STEP
from .code import code_locations
from .document import Code, Heading, Items, Math, Para, Table, Text, rich
from .formulas import magnitude_tex, sci_tex

if TYPE_CHECKING:
    from .context import Context


REFERENCES = [
    "[BCE+19] M. Benning, E. Celledoni, M. J. Ehrhardt, B. Owren, C.-B. Schönlieb, Deep learning as optimal "
    "control problems: models and numerical methods, J. Comput. Dyn. 6(2) (2019) 171-198.",
    "[BCE+21] M. Benning, E. Celledoni, M. J. Ehrhardt, B. Owren, C.-B. Schönlieb, Deep learning as optimal "
    "control problems, IFAC-PapersOnLine 54(9) (2021) 620-623.",
    "[HLW06] E. Hairer, C. Lubich, G. Wanner, Geometric Numerical Integration, 2nd ed., Springer 2006, "
    "Sec. III.1 (trees, order conditions) and VI.4 (symplectic partitioned Runge–Kutta methods, Thm. VI.4.6).",
    "[Hag00] W. W. Hager, Runge–Kutta methods in optimal control and the transformed adjoint system, "
    "Numer. Math. 87 (2000) 247-282.",
    "[SS16] J. M. Sanz-Serna, Symplectic Runge–Kutta schemes for adjoint equations, automatic differentiation, "
    "optimal control, and more, SIAM Review 58(1) (2016) 3-33.",
    "[HW96] E. Hairer, G. Wanner, Solving Ordinary Differential Equations II: Stiff and Differential-Algebraic "
    "Problems, 2nd ed., Springer 1996, Sec. IV.3 (stability functions, A- and L-stability) and IV.12 (algebraic "
    "stability).",
    "[CRBD18] R. T. Q. Chen, Y. Rubanova, J. Bettencourt, D. Duvenaud, Neural ordinary differential equations, "
    "NeurIPS 2018 (the adjoint method of neural ODEs).",
]


def section_check(doc: Context) -> list:
    c = doc.check
    out = [Heading(2, rich("7. The check: adjoint against finite differences"))]
    steps = ", ".join(f"{x:g}" for x in CHECK_STEPS)
    out.append(
        Para(
            rich(
                f"A small random network: $m = {CHECK_M}$ samples of width $d = {CHECK_D}$ through $N = {CHECK_N}$ "
                f"layers with steps $h = ({steps})$ (a negative step is allowed), $\\sigma = \\tanh$, the `resnet` "
                "field, and the cost $\\mathcal{J} = \\sum W \\odot y_N$, so $p = W$ at the top. The entries of "
                "$y_0$, "
                f"$K$, $\\beta$ and $W$ are standard normal draws, in this order, from numpy's ",
                Code(f"default_rng({CHECK_SEED})"),
                ". The forward pass evaluates the stage equations of 6.1 (Newton to rounding where they are "
                "implicit); the adjoint gradient comes from the backward stages of 6.2 in the order given there; "
                f"the finite differences are central, with step ${magnitude_tex(FD_STEP)}$, entry by entry. "
                "Computed when this document was written:",
            )
        )
    )
    rows = [
        [[Math(label)], [Math(sci_tex(a))], [Math(sci_tex(f))], [Math(magnitude_tex(abs(a - f)))]]
        for label, a, f in c.rows
    ]
    header = [rich("entry"), rich("adjoint gradient"), rich("finite difference"), rich("difference")]
    out.append(Table(header, rows, "lrrr"))
    lines = [
        rich(
            f"largest difference ${magnitude_tex(c.max_diff)}$, against gradient entries up to "
            f"${sci_tex(c.max_fd, 1)}$: "
            "the adjoint is exact to the accuracy of the finite differences;"
        ),
        rich(f"the `stable` field on the same instance: largest difference ${magnitude_tex(c.stable_diff)}$;"),
    ]
    if c.p_form_diff is not None:
        lines.append(
            rich(f"the partner form of 6.4 (transposed index): largest difference ${magnitude_tex(c.p_form_diff)}$;")
        )
        if not doc.misprint_differences:
            lines.append(rich("the misprinted conditions (section 4) give the same partner here."))
        else:
            lines.append(
                rich(
                    "the partner form with the misprinted conditions of [BCE+19] (untransposed index, section 4): "
                    f"largest difference ${magnitude_tex(c.misprint_diff)}$, a wrong gradient."
                )
            )
    out.append(Items(lines))
    out.append(
        Para(
            rich(
                "rkgen's test suite runs the same comparison on the compiled network module, for every built-in "
                "tableau, both fields and all activations."
            )
        )
    )
    if not doc.shared:
        out.append(
            Para(
                rich(
                    f"This check is of the shared layout, not of the {doc.params} layout of 6.5: `rkgen.reference`, "
                    "the one numpy network, has one parameter set per layer, so the stage gradients $G_i$ are "
                    "checked here only through their sum $\\sum_i G_i$ (the entries of $K$ and $\\beta$ above), "
                    f"and the {doc.params} layout's own gradient, "
                    + (
                        "$G_i$ for each stage's set,"
                        if doc.params == "stage"
                        else "the nodes' $L_k + R_{k-1}$ and the stage times' share of $\\partial\\mathcal{J}/"
                        "\\partial h$,"
                    )
                    + " is not; rkgen's test suite compares each layout's gradient with finite differences."
                )
            )
        )
    return out


def section_code(doc: Context) -> list:
    from ..codegen import module_filename

    t = doc.t
    name = module_filename(t)
    out = [Heading(2, rich("8. The generated code"))]
    if t.source.startswith("built-in"):
        where = rich(
            "In the rkgen repository the module is ",
            Code(f"generated/{name}"),
            "; ",
            Code(f"rkgen generate {t.name}"),
            " writes the same file to ",
            Code(f"./{name}"),
            ", and ",
            Code(f'rkgen.codegen.load_network("{t.name}")'),
            " imports it (from a cache).",
        )
    else:
        where = rich(Code("rkgen generate TABLEAU"), " writes it to ", Code(f"./{name}"), ".")
    out.append(
        Para(
            rich(
                "The network module imports numpy, numba and the standard library (wide layers multiply through "
                "scipy's OpenBLAS, their large products through MKL where the process has it); "
                "its coefficients are float64 constants with the exact value beside each. ",
                where,
                f" Line numbers are those of the module rkgen {__version__} writes for this tableau "
                f"({len(doc.module_source.splitlines())} lines):",
            )
        )
    )
    rows = []
    for equation, lines, what in code_locations(t, doc.eq, doc.module.spans):
        rows.append([[Math(equation)] if equation else [Text("")], [Text(lines)], rich(what)])
    out.append(Table([rich("equation"), rich("lines"), rich("function")], rows, "lll"))
    out.append(
        Para(
            rich(
                "Its public functions follow the module contract (`docs/network-contract.md`): "
                "`yN, tape = forward(y0, K, beta, h, field, activation)` and "
                "`dy0, dK, dbeta, dh = backward(tape, p)`."
            )
        )
    )
    if doc.params == "stage":
        out.append(
            Para(
                rich(
                    f'The stage layout: `forward(y0, K, beta, h, field, activation, params="stage")` with K of shape '
                    f"(N, {t.stages}, d, d) and beta (N, {t.stages}, d), one set per stage; `backward` returns dK "
                    "and dbeta in the same shapes, the $G_i$ of 6.5."
                )
            )
        )
    elif doc.params == "continuous":
        out.append(
            Para(
                rich(
                    'The continuous layout: `forward(y0, K, beta, h, field, activation, params="continuous", '
                    "nodes=None)` with K of shape (N+1, d, d) and beta (N+1, d), the nodal values at the times "
                    "`nodes` (by default the layer boundaries); `backward` returns dK and dbeta at the nodes and dh "
                    "with the motion of the stage times (6.5)."
                )
            )
        )
    return out


def section_references(doc: Context) -> list:
    return [Heading(2, rich("References")), Items([rich(Text(r)) for r in REFERENCES])]
