"""The `rkgen check` report (the analyses, printed): one data dictionary, as text or as JSON.

>>> from rkgen import load
>>> d = check_data(load("euler"))
>>> d["order"], d["structure"], d["partner"]["A"], d["partner"]["c_matches"]
(1, 'explicit', [['1']], False)
"""

from __future__ import annotations

import math

from .adjoint import layer_equations
from .numbers import format_exact, printable
from .partner import c_matches
from .tableau import Tableau

__all__ = ["check_data", "format_report", "format_tableau", "WHY_C_DOES_NOT_MATTER"]

WHY_C_DOES_NOT_MATTER = (
    "rkgen's backward pass is the exact gradient of the forward map in every parameter layout: it reads the "
    "parameters where the forward pass did (t_j + c_i h_j), never at the partner's nodes; c̃ ≠ c matters only to "
    "'optimise then discretise' with parameters that vary in time (rkgen derive --params continuous)."
)


def check_data(tableau: Tableau, partner: Tableau | None = None, order_report=None) -> dict:
    """Everything `rkgen check` reports, as JSON-ready data (exact numbers as strings).

    ``order_report``: an :func:`rkgen.order.analyse_order` result with other settings than the tableau's
    own (``rkgen check --max-order/--tol``); by default the tableau's cached one."""
    r = tableau.order_report if order_report is None else order_report
    p = tableau.partner
    data = {
        "name": tableau.name,
        "source": tableau.source,
        "description": tableau.description,
        "stages": tableau.stages,
        **_exact_strings(tableau),
        "structure": tableau.structure,
        "structure_detail": tableau.structure_detail,
        "consistent": tableau.is_consistent,
        "row_sums": [format_exact(x) for x in tableau.row_sums],
        "order": r.order,
        "order_is_lower_bound": r.order_is_lower_bound,
        "max_order": r.max_order,
        "order_tolerant": r.order_tolerant,
        "tolerance": _finite(r.tolerance),
        "max_residual": _finite(r.max_residual),
        "failing_conditions": [
            {
                "tree": c.tree.notation,
                "order": c.tree.order,
                "gamma": c.tree.gamma,
                "residual": format_exact(c.residual),
                "residual_float": _finite(c.residual_float),
            }
            for c in r.failing
        ],
        "stage_order": r.stage_order,
        "B": r.B,
        "C": r.C,
        "D": r.D,
        "zero_weights": list(tableau.zero_weights),
        "symplectic": tableau.is_symplectic,
        "M": [[format_exact(x) for x in row] for row in tableau.symplecticity_matrix],
        "partner": None
        if p is None
        else {
            **_exact_strings(p),
            "c_matches": c_matches(tableau),
            "structure": p.structure,
            "order": p.order,
        },
    }
    data["stability"] = tableau.stability.to_dict()
    eq = layer_equations(tableau)  # what the generated backward pass computes, in its order
    data["backward_pass"] = {
        "stages": list(eq.backward_order),
        "solves": [list(system.stages) for system in eq.adjoint],
    }
    if partner is not None:
        pair = tableau.pair_report(partner)
        data["pair_symplectic"] = pair.symplectic
        data["violations"] = [dict(v.to_dict(), value=format_exact(v.value)) for v in pair.violations]
        data["pair_c_matches"] = pair.c_matches
    return data


def _exact_strings(tableau: Tableau) -> dict[str, list]:
    """A, b, c as exact strings in :func:`~rkgen.numbers.format_exact`'s one printed form (rational part first)."""
    return {
        "A": [[format_exact(x) for x in row] for row in tableau.A],
        "b": [format_exact(x) for x in tableau.b],
        "c": [format_exact(x) for x in tableau.c],
    }


def format_tableau(A, b, c, indent: str = "  ") -> str:
    """Draw a Butcher tableau with aligned columns.

    >>> print(format_tableau([["0", "0"], ["1", "0"]], ["1/2", "1/2"], ["0", "1"]))
      0 | 0    0
      1 | 1    0
      --+---------
        | 1/2  1/2
    """
    cols = len(b)
    width = [max(len(str(A[i][j])) for i in range(cols)) for j in range(cols)]
    width = [max(w, len(str(b[j]))) for j, w in enumerate(width)]
    cw = max(len(str(x)) for x in c)
    lines = []
    for i in range(cols):
        cells = "  ".join(str(A[i][j]).ljust(width[j]) for j in range(cols)).rstrip()
        lines.append(f"{indent}{str(c[i]).rjust(cw)} | {cells}")
    lines.append(f"{indent}{'-' * cw}-+-" + "-" * (sum(width) + 2 * (cols - 1)))
    lines.append(f"{indent}{' ' * cw} | " + "  ".join(str(x).ljust(w) for x, w in zip(b, width, strict=True)).rstrip())
    return "\n".join(lines)


def format_report(data: dict) -> str:
    """The readable report of `rkgen check` from :func:`check_data`."""
    out = []
    title = f"{printable(data['name'])}: {data['stages']}-stage Runge-Kutta method"  # a name is any text
    out.append(title)
    out.append("=" * len(title))
    if data["description"]:
        out.append(data["description"])
    if data["source"]:
        out.append(f"source: {data['source']}")
    out.append("")
    out.append(format_tableau(data["A"], data["b"], data["c"]))
    out.append("")
    out.append(f"structure        {data['structure_detail']}")
    if data["consistent"]:
        out.append("consistency      c = A·1 (row sums)")
    else:
        out.append(f"consistency      c differs from the row sums A·1 = ({', '.join(data['row_sums'])})")
    order = str(data["order"])
    if data["order_is_lower_bound"]:
        order += f" (at least; checked to order {data['max_order']})"
    out.append(f"order            {order}, exactly")
    if data["order_tolerant"] != data["order"]:
        out.append(
            f"                 exact order {data['order']}; order {data['order_tolerant']} to within "
            f"{_e(data['max_residual'], 1)} (tolerance {_e(data['tolerance'], 0)})"
        )
    if data["failing_conditions"]:
        n = data["failing_conditions"][0]["order"]
        which = "conditions" if len(data["failing_conditions"]) > 1 else "the condition"
        fail = "fail" if len(data["failing_conditions"]) > 1 else "fails"
        out.append(f"                 {which} of order {n} that {fail} (b·Φ(t) − 1/γ(t)):")
        for c in data["failing_conditions"][:12]:
            exact = c["residual"]
            shown = exact if len(exact) <= 40 else _e(c["residual_float"], 3)
            out.append(f"                   {c['tree']:<14} γ = {c['gamma']:<5} residual {shown}")
        if len(data["failing_conditions"]) > 12:
            out.append(f"                   ... and {len(data['failing_conditions']) - 12} more")
    out.append(f"stage order      {data['stage_order']}")
    out.append(f"simplifying      B({data['B']})  C({data['C']})  D({data['D']})")
    zw = data["zero_weights"]
    out.append(f"zero weights     {', '.join(f'b{_sub(i)}' for i in zw) if zw else 'none'}")
    out.append("")
    if data["symplectic"]:
        out.append("symplectic       yes: M = diag(b)A + Aᵀdiag(b) − bbᵀ = 0; the method is its own partner")
    else:
        nonzero = sum(x != "0" for row in data["M"] for x in row)
        entries = "nonzero entries" if nonzero > 1 else "a nonzero entry"
        out.append(f"symplectic       no: M = diag(b)A + Aᵀdiag(b) − bbᵀ has {entries}")
        for i, row in enumerate(data["M"]):
            for j, x in enumerate(row):
                if x != "0" and j >= i:
                    out.append(f"                   M{_sub(i, j)} = {x}" + (f" = M{_sub(j, i)}" if j > i else ""))
    p = data["partner"]
    out.append("")
    if p is None:
        zero = " = ".join(f"b{_sub(i)}" for i in zw)
        out.append(
            f"partner          none: {zero} = 0, so b_i ã_ij + b_j a_ji − b_i b_j = 0 cannot be solved for ã_ij."
        )
        out.append(
            "                 The tableau still makes a network: rkgen's backward pass (the ξ form) never "
            "divides by b_i."
        )
    else:
        out.append("partner          (Ã, b, c̃) with ã_ij = b_j − b_j a_ji / b_i, conditions (19):")
        out.append(format_tableau(p["A"], p["b"], p["c"], indent="                   "))
        shape = _SHAPE[p["structure"]]
        out.append(f"                 Ã {shape} (as a forward method: {p['structure']}), order {p['order']}")
        # c̃ = c is D(1) only when the weights sum to 1 (c̃_i = Σ_j b_j − (bᵀA)_i / b_i)
        if p["c_matches"]:
            out.append("                 c̃ = c" + (" (D(1) holds)" if data["D"] >= 1 else ""))
        else:
            d1 = " (D(1) fails)." if data["D"] < 1 else "."
            out.append(f"                 c̃ = ({', '.join(p['c'])}) differs from c{d1}")
            out.append("                 " + WHY_C_DOES_NOT_MATTER)
    out.append("")
    out.extend(_stability_lines(data["stability"]))
    first, *more = _backward_pass(data, p is not None)
    out.append("")
    out.append(f"backward pass    {first}")
    out.extend(f"                 {line}" for line in more)
    if "pair_symplectic" in data:
        out.append("")
        if data["pair_symplectic"]:
            out.append("given partner    satisfies conditions (19): the pair is symplectic")
        else:
            out.append(f"given partner    violates {len(data['violations'])} of conditions (19):")
            for v in data["violations"]:
                i, j = v["i"], v["j"]
                if v["kind"] == "b":
                    out.append(f"                   b{_sub(i)} ≠ b̃{_sub(i)}: b{_sub(i)} − b̃{_sub(i)} = {v['value']}")
                else:
                    out.append(
                        f"                   (i, j) = ({i + 1}, {j + 1}): "
                        f"b{_sub(i)} ã{_sub(i, j)} + b̃{_sub(j)} a{_sub(j, i)} − b{_sub(i)} b̃{_sub(j)} = {v['value']}"
                    )
        if not data["pair_c_matches"]:
            out.append("                 the given partner's c̃ differs from c; " + WHY_C_DOES_NOT_MATTER)
    return "\n".join(out)


def _stability_lines(st: dict) -> list[str]:
    """Linear stability (rkgen.stability), every verdict decided exactly."""
    num, den = st["degrees"]
    pad = " " * 17
    R = st["R"]
    out = [f"stability        R(z) = {R}" if len(R) <= 90 else "stability        R(z) = P(z)/Q(z)"]
    # a polynomial R, as every explicit method has (an implicit tableau can have one too, e.g. R = 1)
    out.append(f"{pad}deg P = {num}, deg Q = {den}" + ("" if den else " (a polynomial)"))
    yes = {True: "yes", False: "no"}
    out.append(f"{pad}A-stable: {yes[st['A_stable']]} ({st['A_stability_reason']})")
    at_inf = st["R_at_infinity"]
    why = "R(∞) = 0" if at_inf == "0" else ("R is unbounded" if at_inf is None else f"R(∞) = {at_inf}")
    out.append(f"{pad}L-stable: {yes[st['L_stable']]} ({why})")
    iv = st["interval"]
    if iv["unbounded"]:
        out.append(f"{pad}real interval (-∞, 0]: |R(x)| ≤ 1 for every x ≤ 0")
    else:
        end = f"[{iv['digits']}, 0]"
        if iv["exact"] and "CRootOf" not in iv["exact"]:
            out.append(f"{pad}real interval {end}, end point {iv['exact']}")
        else:
            out.append(f"{pad}real interval {end}, end point a root of {iv['polynomial']}")
    out.append(f"{pad}algebraically stable: {yes[st['algebraically_stable']]} ({st['algebraic_stability_reason']})")
    if st["partner_R"] is not None:
        check = "holds" if st["partner_identity"] else "FAILS"
        out.append(f"{pad}partner: R̃(z) = {st['partner_R']}" if len(st["partner_R"]) <= 90 else f"{pad}partner: R̃(z)")
        out.append(f"{pad}  R̃(z)·R(−z) = 1 {check}: the backward pass amplifies as the forward pass does")
    return out


#: The shape of a partner's Ã for each structure, which is how it would run as a forward method.
_SHAPE = {"explicit": "strictly lower triangular", "diagonally implicit": "lower triangular", "fully implicit": "full"}


def _backward_pass(data: dict, has_partner: bool) -> list[str]:
    """How the generated backward pass computes the adjoint stages: it couples them as Aᵀ does (the ξ form of
    :mod:`rkgen.adjoint`), whatever the partner's Ã would do as a forward method."""
    order, solves = data["backward_pass"]["stages"], data["backward_pass"]["solves"]
    s = len(order)
    if data["structure"] == "fully implicit":
        stages = "both stages" if s == 2 else f"all {s} stages"
        return [f"{stages} at once: one coupled linear system of size {s}d per layer and sample"]
    if s == 1:
        if not solves:
            return ["explicit: the single stage, no linear solve"]
        return ["the single stage, with one d×d linear solve per layer and sample (a_11 ≠ 0)"]
    stages = "stages " + ", ".join(str(i + 1) for i in order) + " in turn"
    solved = [i for system in solves for i in system]
    if not solved:
        text, later = f"explicit: {stages}, no linear solves", "k > i"
    elif len(solved) == s:
        text, later = f"{stages}, each with one d×d linear solve per layer and sample (a_ii ≠ 0)", "k ≥ i"
    else:
        rest = [i for i in order if i not in solved]
        each = "" if len(solved) == 1 else " each"
        text = (
            f"{stages}; {_stage_list(solved, lambda i: f' (a{_sub(i, i)} ≠ 0)')} with one d×d linear solve{each} "
            f"per layer and sample, {_stage_list(rest)} explicit"
        )
        later = "k ≥ i"
    if not has_partner:
        return [text]
    return [text, f"(run backwards in time, the partner's stage i uses only stages {later})"]


def _stage_list(stages: list[int], note=lambda i: "") -> str:
    """``stage 2`` or ``stages 3, 1``, 1-based, each with an optional note."""
    return ("stage " if len(stages) == 1 else "stages ") + ", ".join(f"{i + 1}{note(i)}" for i in stages)


def _sub(*indices: int) -> str:
    """The subscript of 0-based ``indices`` as the report prints it, 1-based like ``rkgen derive``: ``_21``, or
    ``_10,1`` once an index has two digits.

    >>> _sub(1), _sub(1, 0), _sub(9, 0)
    ('_2', '_21', '_10,1')
    """
    sep = "," if any(k >= 9 for k in indices) else ""
    return "_" + sep.join(str(k + 1) for k in indices)


def _finite(x: float) -> float | None:
    """x, or None when it is not finite (beyond the float range): JSON has no inf or nan."""
    return x if math.isfinite(x) else None


def _e(x: float | None, digits: int) -> str:
    return "beyond the float range" if x is None else f"{x:.{digits}e}"
