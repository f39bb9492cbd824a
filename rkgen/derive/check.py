"""Section 7's check: the reference network (rkgen.reference) of the same equations against finite differences.

The adjoint gradient (ξ form, from the backward stages of :func:`rkgen.adjoint.layer_equations`) is compared with
central differences on a small seeded random network; where every b_i ≠ 0 the P form with the true and with the
misprinted partner too.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np

from ..adjoint import LayerEquations, layer_equations
from ..errors import RkgenError
from ..reference import Network
from ..tableau import Tableau, load
from .formulas import sub

#: The random instance of section 7: m samples of width d through N layers; the seed and the steps.
CHECK_M, CHECK_D, CHECK_N = 2, 2, 2
CHECK_SEED = 20190601
CHECK_STEPS = (0.4, -0.3)
FD_STEP = 1e-6


@dataclass(frozen=True)
class CheckResult:
    rows: list  # (label LaTeX, adjoint, finite difference)
    max_diff: float
    max_fd: float
    stable_diff: float
    p_form_diff: float | None
    misprint_diff: float | None


def _instance():
    rng = np.random.default_rng(CHECK_SEED)
    y0 = rng.normal(size=(CHECK_M, CHECK_D))
    K = rng.normal(size=(CHECK_N, CHECK_D, CHECK_D))
    beta = rng.normal(size=(CHECK_N, CHECK_D))
    W = rng.normal(size=(CHECK_M, CHECK_D))
    return y0, K, beta, np.array(CHECK_STEPS), W


def _central(net: Network, params, W, kind):
    """Central differences of J = Σ W ⊙ y_N in every entry of (y0, K, beta, h)."""
    grads = []
    for index, x in enumerate(params):
        g = np.zeros_like(x)
        for pos in np.ndindex(x.shape):
            values = []
            for sign in (1.0, -1.0):
                shifted = [v.copy() for v in params]
                shifted[index][pos] += sign * FD_STEP
                yN, _ = net.forward(*shifted, kind)
                values.append(float(np.sum(W * yN)))
            g[pos] = (values[0] - values[1]) / (2 * FD_STEP)
        grads.append(g)
    return grads


def _max_diff(a, b) -> float:
    return max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))


def numerical_check(
    t: Tableau, eq: LayerEquations | None = None, fields: tuple[str, ...] = ("resnet", "stable")
) -> CheckResult:
    """Adjoint gradient (ξ form, from the backward stages) against central differences, on the instance of
    :func:`_instance`: resnet field in full, the stable field as one number; the P form and the misprinted
    partner as one number each where every b_i ≠ 0."""
    eq = eq or layer_equations(t)
    net = Network(eq)
    y0, K, beta, h, W = _instance()
    params = [y0, K, beta, h]
    results = {}
    for kind in fields:
        yN, tape = net.forward(y0, K, beta, h, kind)
        if tape.failures:  # pragma: no cover
            raise RkgenError("the numerical check's Newton iteration did not converge")
        adj = net.backward(tape, W)
        fd = _central(net, params, W, kind)
        results[kind] = (adj, fd, tape)
    adj, fd, tape = results["resnet"]
    labels = []
    for q, a in np.ndindex(y0.shape):
        labels.append(rf"(y_0)_{sub(q + 1, a + 1)}")
    for j, a, k in np.ndindex(K.shape):
        labels.append(rf"(K_{j})_{sub(a + 1, k + 1)}")
    for j, a in np.ndindex(beta.shape):
        labels.append(rf"(\beta_{j})_{sub(a + 1)}")
    for j in range(h.shape[0]):
        labels.append(rf"h_{j}")
    flat_adj = np.concatenate([x.ravel() for x in adj])
    flat_fd = np.concatenate([x.ravel() for x in fd])
    rows = list(zip(labels, flat_adj.tolist(), flat_fd.tolist(), strict=True))
    p_form_diff = misprint_diff = None
    if eq.p_form is not None:
        right = net.backward(tape, W, form="p")
        p_form_diff = _max_diff(right, fd)
        wrong = net.backward(tape, W, form="p", weights=misprinted_weights(t))
        misprint_diff = _max_diff(wrong, fd)
    stable_adj, stable_fd, _ = results.get("stable", results["resnet"])
    return CheckResult(
        rows=rows,
        max_diff=float(np.max(np.abs(flat_adj - flat_fd))),
        max_fd=float(np.max(np.abs(flat_fd))),
        stable_diff=_max_diff(stable_adj, stable_fd),
        p_form_diff=p_form_diff,
        misprint_diff=misprint_diff,
    )


#: Explicit methods of [000, Table 1] on which the misprint of (19) is shown numerically.
MISPRINT_WITNESSES = ("heun2", "kutta3", "rk4")


@cache
def misprint_evidence(name: str) -> tuple[float, float]:
    """(largest difference from finite differences of the P-form gradient with the true partner, the same with
    the misprinted partner) on the random network of section 7, for a built-in tableau."""
    c = numerical_check(load(name), fields=("resnet",))
    return c.p_form_diff, c.misprint_diff


def transposed(t: Tableau) -> Tableau:
    """(Aᵀ, b): the misprinted conditions (19) of 000/001, b_i ã_ij + b_j a_ij − b_i b_j = 0, are the true
    conditions for this tableau, so its partner is the "partner" the misprint defines."""
    return Tableau(f"{t.name}_transposed", tuple(zip(*t.A, strict=True)), t.b, t.c, source=f"transpose of {t.name}")


def partner_entries(t: Tableau, misprint: bool = False) -> list[list]:
    """ã_ij as field elements of ``t.number_field`` (:func:`rkgen.partner.partner_entry`); with ``misprint``,
    those of the misprinted conditions, i.e. the partner of :func:`transposed`.  Requires every b_i ≠ 0."""
    from ..partner import partner_entry

    source = transposed(t) if misprint else t
    s = t.stages
    return [[partner_entry(source, i, j) for j in range(s)] for i in range(s)]


def misprinted_weights(t: Tableau) -> list[list[tuple[int, float]]]:
    """The P-form weights w_ik = b_k − ã_ik with ã from the misprinted conditions (floats, zeros dropped)."""
    F = t.number_field
    b = t.exact[1]
    rows = []
    for row in partner_entries(t, misprint=True):
        ws = [(k, F.sub(b[k], x)) for k, x in enumerate(row)]
        rows.append([(k, F.to_float(w)) for k, w in ws if not w.is_zero()])
    return rows
