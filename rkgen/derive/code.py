"""Section 8's table: which lines of the generated module implement which equation, read from the source map.

The renderer (:func:`rkgen.codegen.render`) returns, with the module's text, the lines each equation and each
function occupies (:class:`rkgen.codegen.Rendered`); nothing here searches the text.
"""

from __future__ import annotations

from ..adjoint import LayerEquations
from ..tableau import Tableau
from .formulas import eta_symbolic, forward_symbolic, update_symbolic


def _span(spans: dict[str, tuple[int, int]], label: str) -> str:
    if label not in spans:
        raise KeyError(f"the generated module has no {label!r} in its source map")
    a, b = spans[label]
    return f"line {a}" if a == b else f"lines {a}-{b}"


def code_locations(t: Tableau, eq: LayerEquations, spans: dict[str, tuple[int, int]]) -> list[tuple[str, str, str]]:
    """(equation LaTeX, where, what) rows: the lines of the module that implement each equation."""
    rows = [
        (
            r"f(y) = \sigma(Ky + \beta),\ -K^{T}\sigma(Ky + \beta)",
            _span(spans, "def:_field"),
            "`_field`: the vector field on a block of samples",
        )
    ]
    if t.structure == "explicit":
        for st in eq.forward:
            what = "`_layer_forward`: stage, then $F = f(Y)$"
            rows.append((forward_symbolic(st), _span(spans, f"forward:Y_{st.i + 1}"), what))
    elif t.structure == "diagonally implicit":
        for st in eq.forward:
            what = "`_layer_forward`: " + (
                "the explicit part, then Newton on $Y_i$ (`_dirk_solve`)" if st.diagonal else "an explicit stage"
            )
            rows.append((forward_symbolic(st), _span(spans, f"forward:Y_{st.i + 1}"), what))
        rows.append(
            (
                r"Y_i = y_j + h_j \sum_{l < i} a_{il} F_l + h_j a_{ii} f(Y_i)",
                _span(spans, "def:_dirk_solve"),
                "`_dirk_solve`: Newton for one stage, every sample of a block at once",
            )
        )
    else:
        rows.append(
            (
                r"R = \mathbf{1} \otimes y_j + h_j (A \otimes I) F(Y) - Y",
                _span(spans, "newton:residual"),
                "`_newton_residual`: the stage residuals of a block",
            )
        )
        rows.append(
            (
                r"I - h_j (A \otimes I) \mathrm{diag}(J_l)",
                _span(spans, "newton:jacobian"),
                "`_newton_jacobian`: the Newton matrices of a block",
            )
        )
        rows.append(
            (
                r"Y = \mathbf{1} \otimes y_j + h_j (A \otimes I) F(Y)",
                _span(spans, "def:_coupled_solve"),
                "`_coupled_solve`: Newton for the coupled stages, every sample of a block at once",
            )
        )
    if t.structure != "explicit":
        rows.append(
            (
                r"J = \partial f / \partial y",
                _span(spans, "def:_f_and_jacobian"),
                "`_f_and_jacobian`: $f$ and $\\sigma'$ on a block (the Jacobian in factored form)",
            )
        )
    rows.append((update_symbolic(eq), _span(spans, "update"), "`_layer_forward`: the layer update"))
    if t.structure == "explicit":
        for st in eq.backward:
            if f"backward:Y_{st.i + 1}" in spans:
                again = "`_layer_backward`: the stage again, where the tape keeps $y_j$ only (resnet field)"
                rows.append((forward_symbolic(eq.forward[st.i]), _span(spans, f"backward:Y_{st.i + 1}"), again))
            what = r"`_layer_backward`: $\eta_i$, then `_adjoint_stage`"
            rows.append((eta_symbolic(st), _span(spans, f"backward:eta_{st.i + 1}"), what))
    elif t.structure == "diagonally implicit":
        for st in eq.backward:
            what = r"`_layer_backward`: $\eta_i$" + (
                r" with a $d \times d$ solve per sample (`_dirk_adjoint`)" if st.diagonal else ""
            )
            rows.append((eta_symbolic(st), _span(spans, f"backward:eta_{st.i + 1}"), what))
    else:
        rows.append(
            (
                r"(I - h_j (A^{T} \otimes I) \mathrm{diag}(J_k^{T}))\eta = b \otimes p",
                _span(spans, "adjoint:system"),
                "`_adjoint_system`: the systems of a block",
            )
        )
        rows.append(
            (
                "",
                _span(spans, "def:_coupled_adjoint"),
                "`_coupled_adjoint`: the $sd \\times sd$ systems of a block",
            )
        )
    if t.structure != "explicit":
        rows.append((r"J_k^{T}", _span(spans, "def:_jacobian_t"), "`_jacobian_t`"))
        solve = "`_block_solve`: Gaussian elimination, per-sample pivots"
        rows.append((r"Mx = r", _span(spans, "def:_block_solve"), solve))
    rows.append(
        (
            r"\mu_i = h_j J_i^{T}\eta_i,\ \partial\mathcal{J}/\partial K_j,\ \partial\mathcal{J}/\partial\beta_j",
            _span(spans, "def:_adjoint_stage_any"),
            "`_adjoint_stage_any`: both fields (called through `_adjoint_stage`)",
        )
    )
    rows.append(
        ("", _span(spans, "def:_adjoint_stage_2"), "`_adjoint_stage_2`: the same for the resnet field at width 2")
    )
    rows.append(
        (
            r"\partial\mathcal{J}/\partial h_j = \sum_i \eta_i \cdot F_i,\ \partial\mathcal{J}/\partial y_j = p + "
            r"\sum_i \mu_i",
            _span(spans, "def:_backward_layers"),
            "`_backward_layers`: the layers of a block in reverse",
        )
    )
    rows.append(("", _span(spans, "def:forward"), "`forward`: the public entry point"))
    rows.append(("", _span(spans, "def:backward"), "`backward`: the public entry point"))
    return rows
