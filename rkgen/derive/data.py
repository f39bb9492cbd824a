"""`rkgen derive --json`: the layer equations (data), the partner and M as JSON, each equation with its LaTeX."""

from __future__ import annotations

from .. import __version__
from ..adjoint import Term, layer_equations, parameter_layout
from ..tableau import Tableau
from .formulas import eta_symbolic, forward_symbolic, lx, update_symbolic

__all__ = ["equations_json", "layout_json"]


def _term(x: Term) -> dict:
    return {"name": x.name, "stage": x.index + 1, "value": str(x.value), "latex": lx(x.value)}


def layout_json(t: Tableau, params: str = "shared") -> dict:
    """The parameter layout ``params`` of ``t`` (:func:`rkgen.adjoint.parameter_layout`) as JSON-ready data: which
    parameters each stage reads, where the stage gradients g_i = h_j (∂f/∂u at Y_i, u_i)ᵀ η_i go, and, for the
    continuous layout, the interpolation weights (1 - c_i, c_i) on the layer-boundary grid and the partner's c̃.

    >>> from rkgen import load
    >>> d = layout_json(load("gauss2"), "continuous")
    >>> d["stages"][0]["weights"]
    ['sqrt(3)/6 + 1/2', '1/2 - sqrt(3)/6']
    >>> d["partner_c"] == [s["c"] for s in d["stages"]]
    True
    """
    lay = parameter_layout(t, params)
    eq = layer_equations(t)
    stages = []
    for i, e in enumerate(lay.stage_parameters()):
        entry = {"stage": i + 1, "reads": str(e), "c": str(lay.nodes[i])}
        if lay.name == "continuous":
            entry["weights"] = [str(w) for w in lay.weights[i]]
            entry["weights_latex"] = [lx(w) for w in lay.weights[i]]
        stages.append(entry)
    data = {
        "name": lay.name,
        "stages": stages,
        "stage_gradient": "g_i = h_j (df/du at Y_i, u_i)^T eta_i",
        "gradients": [str(e) for e in lay.gradients()],
        "partner_form": None
        if eq.p_form is None
        else [f"g_{x.index + 1} = h_j*{x.value}*(df/du at Y_{x.index + 1})^T P_{x.index + 1}" for x in eq.update],
        "zero_weights": [i + 1 for i in t.zero_weights],
    }
    if lay.name == "continuous":
        p = t.partner
        data["partner_c"] = None if p is None else [str(c) for c in p.c]
        data["step_gradient"] = (
            "dJ/dh_l = sum_i eta_i^(l) . F_i^(l) + sum_i c_i u'(t_l,i) . g_i^(l) + sum_(j>l) sum_i u'(t_j,i) . g_i^(j)"
        )
    return data


def equations_json(t: Tableau, params: str = "shared") -> dict:
    """The layer equations (forward, backward in computing order, partner form) with exact coefficients, the
    partner and M, and the parameter layout ``params`` (:func:`layout_json`), as JSON-ready data; stage numbers are
    1-based.  The LaTeX of each equation is included."""
    eq = layer_equations(t)
    p = t.partner
    r = t.order_report
    data = {
        "name": t.name,
        "rkgen_version": __version__,
        "stages": t.stages,
        "structure": t.structure,
        "structure_detail": t.structure_detail,
        "order": r.order,
        "tableau": t.exact_strings(),
        "forward": [
            {
                "stage": st.i + 1,
                "implicit": st.implicit,
                "terms": [_term(x) for x in st.terms],
                "text": str(st),
                "latex": forward_symbolic(st),
            }
            for st in eq.forward
        ],
        "update": {"terms": [_term(x) for x in eq.update], "latex": update_symbolic(eq)},
        "backward_order": [i + 1 for i in eq.backward_order],
        "backward": [
            {
                "stage": st.i + 1,
                "weight": _term(st.weight) if st.weight else None,
                "terms": [_term(x) for x in st.terms],
                "diagonal": _term(st.diagonal) if st.diagonal else None,
                "text": str(st),
                "latex": eta_symbolic(st),
            }
            for st in eq.backward
        ],
        "mu": "mu_k = h J_k^T eta_k",
        "gradient": {
            "y": "dJ/dy_j = p + sum_i mu_i",
            "h": "dJ/dh_j = sum_i eta_i . F_i",
            "resnet": "g_i = h sigma'(z_i) * eta_i; mu_i = K^T g_i; dJ/dK += g_i Y_i^T; dJ/dbeta += g_i",
            "stable": "g_i = h sigma'(z_i) * (K eta_i); mu_i = -K^T g_i; "
            "dJ/dK -= h sigma(z_i) eta_i^T + g_i Y_i^T; dJ/dbeta -= g_i",
        },
        "p_form": None
        if eq.p_form is None
        else [{"stage": i + 1, "terms": [_term(x) for x in row]} for i, row in enumerate(eq.p_form)],
        "zero_weights": [i + 1 for i in t.zero_weights],
        "symplectic": t.is_symplectic,
        "M": [[str(x) for x in row] for row in t.symplecticity_matrix],
        "partner": None if p is None else {**p.exact_strings(), "structure": p.structure},
        "params": layout_json(t, params),
    }
    return data
