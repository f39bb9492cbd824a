"""Section 10 of the derivation: the two roads to the gradient, theory and a measurement (from rkgen.compare).

The measurement is :func:`rkgen.compare.compare` on a few layer counts, cheap enough for every tableau (a 5-stage
Gauss document spends about a second here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compare import DEFAULT_SEED, FD_STEP, KEYS, REFERENCE_STAGES, compare, is_symmetric
from .document import Code, Display, Heading, Items, Para, Table, Text, rich
from .formulas import magnitude

if TYPE_CHECKING:
    from ..compare import Comparison, Prediction
    from .context import Context

#: The number of the section.
NUMBER = 10

#: the layer counts of the document's measurement (T = 1): h from 1/4 to 1/32
DOC_LAYERS = (4, 8, 16, 32)


_HEADERS = {
    "b": "$\\lVert g_b - g_a \\rVert$",
    "c": "$\\lVert g_c - g_a \\rVert$",
    "a": "$\\lVert g_a - g \\rVert$",
}
_NAMES = {"b": "(b) against (a)", "c": "(c) against (a)", "a": "(a) against the continuous gradient"}


def _expected(th: Prediction) -> str:
    if th.coincides:
        return "coincide"
    if not th.defined:
        return "undefined"
    return ("at least " if th.at_least else "") + str(th.order)


def _measured(r: Comparison, key: str) -> str:
    th, fit = r.theory[key], r.fits[key]
    if not th.defined:
        return "-"
    if th.coincides:
        top = max((e for e in r.errors[key] if e is not None), default=0.0)
        if top == 0:
            return "identical (0)"
        return f"at rounding (up to {top:.1e})" if r.agrees(key) else f"{top:.1e}, above rounding"
    if fit.order is None:
        return f"below rounding ({fit.points} of {len(r.layers)} points above {r.floors[key]:.0e})"
    return f"{fit.order:.2f}"


def _why(doc: Context, key: str, th: Prediction) -> list:
    """The reason for one prediction, for this tableau, as spans."""
    name = Code(doc.t.name)
    p = doc.t.order
    if key == "a":
        return rich(f"the order of the method, $p = {p}$ [Hag00; SS16]")
    if th.kind == "retrace":
        return rich(
            name,
            " is symmetric, so the step $-h$ from $y_{j+1}$ has the forward stages as its stages (in reverse "
            "order), and symplectic, so it is its own partner: (b) is (a), computed in another order [SS16]",
        )
    if th.kind == "same partner":
        return rich("the misprinted conditions define the true partner for ", name, " ($A$ is symmetric)")
    if not th.defined:
        return rich("a weight $b_i$ is zero: conditions (19) define no partner, misprinted or not")
    if th.kind == "generic":
        return rich(
            f"both roads converge at order $p = {p}$, with different error constants in general (a zero weight: "
            "no partner pair whose weights could be compared)"
        )
    if key == "b" and is_symmetric(doc.t):
        what = rich(
            "(b) is the pair $(A^{\\ast}, A^{\\ast})$, (a) the pair $(A, \\tilde A)$ (",
            name,
            " is symmetric, so $A^{\\ast}$ is $A$ with its stages permuted, but not symplectic, so "
            "$\\tilde A \\ne A$),",
        )
    elif key == "b":
        what = rich("(b) is the pair $(A^{\\ast}, A^{\\ast})$, (a) the pair $(A, \\tilde A)$,")
    else:
        what = rich("(c) is the pair $(A, \\tilde A')$ with the misprinted partner, (a) the pair $(A, \\tilde A)$,")
    if th.at_least:
        return what + rich(f" their weights agree up to order {th.order}, so at least $h^{{{th.order}}}$")
    return what + rich(
        f" their weights agree up to order {th.order} and differ at order {th.order + 1}, so $h^{{{th.order}}}$"
    )


def section_roads(doc: Context) -> list:
    t = doc.t
    p = t.order
    r = compare(t, layers=DOC_LAYERS, fd_layers="first", equations=doc.eq)
    out = [Heading(2, rich(f"{NUMBER}. The two roads to the gradient"))]
    out.append(
        Para(
            rich(
                "Take the network with one parameter set $\\theta = (K, \\beta)$ for all its layers, $N$ steps of "
                "$h = T/N$: then it is one ODE $y' = f(y, \\theta)$ discretised, and its gradient has a limit as "
                "$h \\to 0$, the gradient of the continuous cost. Two roads lead to a gradient."
            )
        )
    )
    out.append(
        Para(
            rich(
                "**Discretise, then optimise** (sections 4-6): differentiate the network itself. The backward "
                + (
                    "stages (6.2) give exactly $\\mathrm{d}\\mathcal{J}_h/\\mathrm{d}\\theta$, the gradient of the "
                    "cost the network computes (with a zero weight $b_i$ there is no partner tableau, but the "
                    "$\\xi$ form needs none) [SS16]. "
                    if t.zero_weights
                    else "stages are the partitioned method $(A, \\tilde A)$ with the partner of section 5 applied to "
                    "the adjoint equation, and their result is exactly $\\mathrm{d}\\mathcal{J}_h/\\mathrm{d}"
                    "\\theta$, the gradient of the cost the network computes [SS16]. "
                )
                + "Since $\\mathcal{J}_h(\\theta) = "
                f"\\mathcal{{J}}(\\theta) + C(\\theta) h^{{{p}}} + O(h^{{{p + 1}}})$ with $C$ smooth in "
                f"$\\theta$, the exact discrete gradient converges to the continuous one at the order of the "
                f"method, $p = {p}$ [Hag00; SS16]."
            )
        )
    )
    out.append(
        Para(
            rich(
                "**Optimise, then discretise**: write down the continuous adjoint $\\lambda' = -\\partial_y "
                "f^{T}\\lambda$, $\\lambda(T) = \\nabla\\mathcal{J}(y(T))$, $\\mathrm{d}\\mathcal{J}/\\mathrm{d}"
                "\\theta = \\int_0^T \\lambda^{T} \\partial_\\theta f \\mathrm{d}t$, and integrate it backwards "
                "with the same tableau. The state is needed along the way; the neural-ODE adjoint [CRBD18] "
                "recomputes it backwards from $y_N$, integrating the augmented system",
            )
        )
    )
    out.append(
        Display(
            [
                r"y' = f(y, \theta), \qquad \lambda' = -\partial_y f(y, \theta)^{T} \lambda, \qquad "
                r"g' = -\partial_\theta f(y, \theta)^{T} \lambda, \qquad (y, \lambda, g)(T) = (y_N, p_N, 0)",
            ]
        )
    )
    out.append(
        Para(
            rich(
                "from $t = T$ to $0$ with step $-h$; then $\\lambda(0)$ and $g(0)$ approximate the gradient with "
                "respect to $y_0$ and $\\theta$. This road converges at order $p$ too, but to the continuous "
                "gradient: it is not the gradient of the network's cost. Read forwards, the step $-h$ of "
                "$(A, b)$ is the adjoint method $(A^{\\ast}, b)$ with $A^{\\ast} = \\mathbf{1} b^{T} - A$ "
                "($\\Phi^{\\ast}_h = \\Phi_{-h}^{-1}$ [HLW06, Sec. II.3]), applied to $y$ and $\\lambda$ alike: (b) is "
                "the partitioned pair $(A^{\\ast}, A^{\\ast})$ on a trajectory through $y_N$, (a) the pair "
                "$(A, \\tilde A)$ on the network's. The misprinted conditions (19) of section 4 give a third pair, "
                "$(A, \\tilde A')$ with the partner they define (when every $b_i \\ne 0$)."
            )
        )
    )
    out.append(
        Para(
            rich(
                "Which power of $h$ separates two such pairs is decided exactly, from their elementary weights. On "
                "$y' = f$, $\\lambda' = -\\partial_y f^{T}\\lambda$ a pair $(A, \\hat A)$ has a B-series over the "
                "$y$-trees, with weights $b^{T}\\Phi(t)$, and over the trees whose $\\lambda$-vertices form a path "
                "from the root ($\\lambda$ enters linearly, and not into $y$), each $\\lambda$-vertex carrying a "
                "forest of $y$-trees, with weights $b^{T}(u_1 \\odot \\hat A(u_2 \\odot \\hat A(\\cdots u_k)))$, "
                "$u$ the componentwise product of $A\\Phi(t)$ over the forest. Weights that first differ at a tree "
                "of order $n$ give gradients that differ by $O(h^{n})$ in a step and by $O(h^{n-1})$ after "
                "$N = T/h$ steps, for a generic $f$. Generically $n = p + 1$; the roads (a) and (b) coincide when "
                "the method is symmetric ($A^{\\ast}$ is $A$ with its stages permuted: the step $-h$ retraces the "
                "forward stages) and symplectic ($\\tilde A = A$), as Gauss methods are [SS16]."
            )
        )
    )
    scale = f"{r.scale:.3g}"
    out.append(
        Para(
            rich(
                f"**Measured.** $m = {r.samples}$ samples of width $d = {r.width}$, $T = {r.final_time:g}$, "
                "$f(y) = \\tanh(Ky + \\beta)$ and $\\mathcal{J} = \\sum W \\odot y_N$; $y_0$, $K\\sqrt{d}$, "
                "$\\beta$, $W$ are standard normal draws from numpy's ",
                Code(f"default_rng({DEFAULT_SEED})"),
                ". Four gradients with respect to $(y_0, K, \\beta)$ (the per-layer gradients summed): (a) "
                "the backward stages of 6.2, (b) the augmented system above with ",
                Code(t.name),
                " (stages of an implicit tableau solved to rounding), (c) the partner form of 6.4 with the "
                "misprinted partner, (d) central differences, written $g_a, \\dots, g_d$; and the continuous "
                "gradient $g$, from the "
                f"{REFERENCE_STAGES}-stage Gauss method (order {2 * REFERENCE_STAGES}) by the road of (b) on a "
                f"fine grid (its own error about {magnitude(r.reference_error)}). The errors are maxima over the "
                f"entries, relative to the largest entry of the continuous gradient ({scale}); the orders are "
                "least-squares slopes of $-\\log(\\text{error})$ against $\\log N$ over the errors above rounding "
                f"({r.floors['b']:.0e}). Computed when this document was written (`rkgen compare-adjoints "
                f"{doc.safe_name}` runs the same experiment with more layers and plots it):",
            )
        )
    )
    rows = []
    for row, N in enumerate(r.layers):
        cells = [[Text(str(N))], [Text(f"1/{N}" if r.final_time == 1 else f"{r.final_time / N:.4g}")]]
        for k in KEYS:
            e = r.errors[k][row]
            cells.append([Text("-" if e is None else f"{e:.2e}")])
        rows.append(cells)
    rows.append([rich("order, measured"), [Text("")]] + [[Text(_measured(r, k))] for k in KEYS])
    rows.append([rich("order, theory"), [Text("")]] + [[Text(_expected(r.theory[k]))] for k in KEYS])
    header = [rich("$N$"), rich("$h$")] + [rich(_HEADERS[k]) for k in KEYS]
    out.append(Table(header, rows, "rrlll"))
    items = []
    for k in KEYS:
        th, ok = r.theory[k], r.agrees(k)
        verdict = {True: "the measurement agrees", False: "the measurement does not agree", None: ""}[ok]
        if th.defined and not th.coincides and r.fits[k].order is None:
            verdict = "too few errors above rounding to fit"
        elif r.approaching(k):
            local = ", ".join(f"{x:.2f}" for x in r.local_orders(k))
            verdict = (
                f"the measurement is still on its way there at these $N$: the orders between neighbouring $N$ "
                f"are {local}"
            )
        items.append(rich(f"{_NAMES[k]}: ") + _why(doc, k, th) + rich(f"; {verdict}." if verdict else "."))
    if r.fd_error is not None:
        items.append(
            rich(
                f"(d) against (a) at $N = {r.fd_layers}$ (central differences, step {FD_STEP:.0e}): largest "
                f"difference {magnitude(r.fd_error)}, the accuracy of the differences: (a) is the exact gradient of "
                "the network."
            )
        )
    out.append(Items(items))
    conclusion = []
    if r.theory["b"].coincides:
        conclusion.append(
            rich(
                "For ",
                Code(t.name),
                " the two roads meet: integrating the continuous adjoint backwards with this tableau gives the "
                "exact gradient of the network, as long as the stages are solved to rounding.",
            )
        )
    else:
        conclusion.append(
            rich(
                "For ",
                Code(t.name),
                " the two roads differ: the gradient of optimise-then-discretise is within "
                f"$O(h^{{{r.theory['b'].order}}})$ of the network's gradient, not equal to it; an optimiser fed "
                "with it descends a slightly different cost. The partner's backward stages (section 6) are exact "
                "at every $h$.",
            )
        )
    if not doc.shared:
        conclusion.append(
            rich(f" The experiment uses one parameter set for all layers, not the {doc.params} layout of 6.5.")
        )
    out.append(Para([s for part in conclusion for s in part]))
    return out
