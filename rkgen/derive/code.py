"""Section 8's table: which lines of the generated module implement which equation (by searching its text)."""

from __future__ import annotations

from ..adjoint import LayerEquations
from ..tableau import Tableau
from .formulas import eta_symbolic, forward_symbolic, update_symbolic


def _find_block(lines: list[str], block: str) -> tuple[int, int] | None:
    """1-based (first, last) line of ``block`` (a printed code fragment) inside ``lines``."""
    want = [line.rstrip() for line in block.splitlines()]
    n = len(want)
    for k in range(len(lines) - n + 1):
        if lines[k : k + n] == want:
            return k + 1, k + n
    return None


def _find_function(lines: list[str], name: str) -> tuple[int, int] | None:
    """1-based (first, last) line of the top-level function ``name`` (its decorator included)."""
    start = next((k for k, line in enumerate(lines) if line.startswith(f"def {name}(")), None)
    if start is None:
        return None
    first = start
    while first > 0 and lines[first - 1].startswith("@"):
        first -= 1
    last = start
    for k in range(start + 1, len(lines)):
        if lines[k] and not lines[k][0].isspace():
            break
        if lines[k].strip():
            last = k
    return first + 1, last + 1


def _find_comment(lines: list[str], prefix: str) -> int | None:
    return next((k + 1 for k, line in enumerate(lines) if line.strip().startswith(prefix)), None)


def _span(lines: tuple[int, int] | int | None) -> str:
    if lines is None:
        return "not found"
    if isinstance(lines, int):
        return f"line {lines}"
    a, b = lines
    return f"line {a}" if a == b else f"lines {a}-{b}"


def code_locations(t: Tableau, eq: LayerEquations, source: str) -> list[tuple[str, str, str]]:
    """(equation LaTeX, where, what) rows: the lines of the module text that implement each equation."""
    from ..codegen import printer

    lines = [line.rstrip() for line in source.splitlines()]
    rows = []
    rows.append(
        (
            r"f(y) = \sigma(Ky + \beta),\ -K^{T}\sigma(Ky + \beta)",
            _span(_find_function(lines, "_field")),
            "`_field`: the vector field on a block of samples",
        )
    )
    if t.structure == "explicit":
        for st in eq.forward:
            rows.append(
                (
                    forward_symbolic(st),
                    _span(_find_block(lines, printer.forward_stage_code(st))),
                    "`_forward_blocks`: stage, then $F = f(Y)$",
                )
            )
    else:
        if t.structure == "diagonally implicit":
            solver, what = "_stage_solve", "Newton for one stage of one sample"
            equation = r"Y_i = y_j + h_j \sum_{l < i} a_{il} F_l + h_j a_{ii} f(Y_i)"
        else:
            solver, what = "_stages_solve", "Newton for the coupled stages of one sample"
            equation = r"Y = \mathbf{1} \otimes y_j + h_j (A \otimes I) F(Y)"
        rows.append((equation, _span(_find_function(lines, solver)), f"`{solver}`: {what}"))
        rows.append(
            (
                r"J = \partial f / \partial y",
                _span(_find_function(lines, "_f_and_jacobian")),
                "`_f_and_jacobian`: $f$ and its Jacobian at one sample",
            )
        )
    rows.append(
        (
            update_symbolic(eq),
            _span(_find_block(lines, printer.update_code(eq))),
            "`_forward_blocks`: the layer update",
        )
    )
    if t.structure == "explicit":
        for st in eq.backward:
            rows.append(
                (
                    eta_symbolic(st),
                    _span(_find_block(lines, printer.backward_stage_code(st))),
                    r"`_backward_blocks`: $\eta_i$, then `_adjoint_stage`",
                )
            )
    elif t.structure == "diagonally implicit":
        rows.append(
            (
                r"(I - h_j a_{ii} J_i^{T})\eta_i = b_i p + \sum_{k > i} a_{ki}\mu_k",
                _span(_find_comment(lines, "# eta_i = b_i p + sum_(k>i) a_ki mu_k")),
                "`_backward_blocks`: one $d \\times d$ solve per stage and sample",
            )
        )
    else:
        rows.append(
            (
                r"(I - h_j (A^{T} \otimes I) \mathrm{diag}(J_k^{T}))\eta = b \otimes p",
                _span(_find_comment(lines, "# (I - h (A^T kron I) blockdiag(J_k^T)) eta = b kron p")),
                "`_backward_blocks`: one $sd \\times sd$ solve per sample",
            )
        )
    if t.structure != "explicit":
        rows.append((r"J_k^{T}", _span(_find_function(lines, "_jacobian_t")), "`_jacobian_t`"))
        rows.append((r"Mx = r", _span(_find_function(lines, "_solve")), "`_solve`: Gaussian elimination"))
    rows.append(
        (
            r"\mu_i = h_j J_i^{T}\eta_i,\ \partial\mathcal{J}/\partial K_j,\ \partial\mathcal{J}/\partial\beta_j",
            _span(_find_function(lines, "_adjoint_stage")),
            "`_adjoint_stage`: both fields",
        )
    )
    rows.append(
        (
            r"\partial\mathcal{J}/\partial h_j = \sum_i \eta_i \cdot F_i,\ \partial\mathcal{J}/\partial y_j = p + "
            r"\sum_i \mu_i",
            _span(_find_comment(lines, "# dJ/dh_j = sum_i eta_i . F_i")),
            "`_backward_blocks`",
        )
    )
    rows.append(("", _span(_find_function(lines, "forward")), "`forward`: the public entry point"))
    rows.append(("", _span(_find_function(lines, "backward")), "`backward`: the public entry point"))
    return rows
