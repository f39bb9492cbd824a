"""The reference network in numpy: tableau -> adjoint equations (data) -> this plain evaluation, beside the module.

One Runge-Kutta network for any tableau (explicit, diagonally or fully implicit), written once, in plain numpy,
from the layer equations of :func:`rkgen.adjoint.layer_equations`: their exact coefficients are rounded to
float64 here and nowhere else, so the formulas evaluated are the ones the code generator prints and the
derivation document shows.  One layer j with parameters (K_j, β_j) and step h_j::

    Y_i = y + h Σ_l a_il F_l,   F_i = f(Y_i),   y⁺ = y + h Σ_i b_i F_i,

with f(y) = σ(K y + β) ("resnet") or f(y) = -Kᵀσ(K y + β) ("stable") and σ one of :data:`ACTIVATIONS`.
Samples are rows, as in the module contract (docs/network-contract.md): y has shape (m, d).

- :meth:`Network.forward` evaluates the stages: explicitly stage after stage, or by Newton's method on the
  coupled s·d stage system of every sample (to rounding) when some a_il with l ≥ i is nonzero.  It returns
  y_N and a :data:`Tape` with the stage values of every layer.
- :meth:`Network.backward` is the exact gradient of J with p = ∂J/∂y_N: in the ξ form of the backward stages
  (``eq.backward``; it never divides by b_i or h, so zero weights and zero steps are fine), or in the P form
  of the partner tableau (``eq.p_form``; every b_i ≠ 0).  It returns ∂J/∂y_0, ∂J/∂K, ∂J/∂β, ∂J/∂h.

It is slow and meant to be read: the derivation document's numerical check (:mod:`rkgen.derive.check`) and
the tests use it.  The independent oracles (complex steps, a hand-written reverse pass) are in tests/.

>>> net = Network("heun3")                                  # b_2 = 0: the ξ form needs no partner
>>> y0, K, beta, h = np.ones((1, 2)), np.zeros((1, 2, 2)), np.zeros((1, 2)), np.array([0.5])
>>> yN, tape = net.forward(y0, K, beta, h)
>>> yN.tolist(), tape.stages.shape
([[1.0, 1.0]], (1, 3, 1, 2))
>>> [g.shape for g in net.backward(tape, np.ones((1, 2)))]
[(1, 2), (1, 2, 2), (1, 2), (1,)]
"""

from __future__ import annotations

from collections import namedtuple
from dataclasses import dataclass

import numpy as np

from .adjoint import LayerEquations, layer_equations
from .tableau import Tableau, load

__all__ = [
    "ACTIVATIONS",
    "FIELDS",
    "Coefficients",
    "Network",
    "Tape",
    "activation",
    "backward_p_form",
    "backward_xi_form",
    "coefficients",
    "evaluate",
]

FIELDS = ("resnet", "stable")
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid")

#: Newton stops once a step is below NEWTON_TOL · (1 + max |Y|) (per sample).
NEWTON_TOL = 1e-15
NEWTON_MAX_ITER = 100

#: What :meth:`Network.forward` returns besides y_N: the contract's ``states``, ``failures`` (samples whose
#: Newton iteration did not converge), ``iterations`` (largest Newton count) and ``stages`` (N, s, m, d), and
#: copies of the inputs.
Tape = namedtuple(
    "Tape",
    ["states", "failures", "iterations", "stages", "y0", "K", "beta", "h", "field", "activation"],
)


# --------------------------------------------------------------------------------------------------
# activations and the vector field
# --------------------------------------------------------------------------------------------------


def activation(name: str, z):
    """(σ(z), σ'(z)) elementwise; relu' is 0 at 0.

    >>> [float(x) for x in activation("softplus", np.array(0.0))]
    [0.6931471805599453, 0.5]
    """
    z = np.asarray(z, dtype=float)
    if name == "tanh":
        s = np.tanh(z)
        return s, 1.0 - s * s
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0.0).astype(float)
    if name in ("softplus", "sigmoid"):
        e = np.exp(-np.abs(z))  # never overflows
        sig = np.where(z >= 0.0, 1.0, e) / (1.0 + e)
        if name == "sigmoid":
            return sig, e / (1.0 + e) ** 2
        return np.maximum(z, 0.0) + np.log1p(e), sig
    raise ValueError(f"unknown activation {name!r}; expected one of {ACTIVATIONS}")


def _check(field: str, act: str) -> None:
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; expected one of {FIELDS}")
    if act not in ACTIVATIONS:
        raise ValueError(f"unknown activation {act!r}; expected one of {ACTIVATIONS}")


def _matvec(M, x):
    """M @ x for every row x of ``x`` (..., d); M is (d, d) or stacked like x."""
    return (M @ x[..., None])[..., 0]


def evaluate(Y, K, beta, field: str = "resnet", act: str = "tanh", jacobian: bool = False):
    """(F, σ, σ') at every row of Y (..., d), and J = ∂f/∂y (..., d, d) when ``jacobian``.

    resnet: F = σ(z), J = diag(σ') K;  stable: F = -Kᵀσ(z), J = -Kᵀ diag(σ') K;  z = K y + β.
    """
    sg, ds = activation(act, _matvec(K, Y) + beta)
    F = sg if field == "resnet" else _matvec(-K.T, sg)
    if not jacobian:
        return F, sg, ds
    DK = ds[..., :, None] * K
    return F, sg, ds, (DK if field == "resnet" else -K.T @ DK)


def _combination(terms, V):
    """Σ_k c_k V[k] over the (k, c_k) of ``terms``, summed in their order (zeros when there are none)."""
    acc = np.zeros(V.shape[1:])
    for k, x in terms:
        acc = acc + x * V[k]
    return acc


# --------------------------------------------------------------------------------------------------
# the coefficients: the layer equations with float64 coefficients
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Coefficients:
    """The layer equations of one tableau with float coefficients; stage indices 0-based.

    ``forward``: (i, ((l, a_il), ...)) per stage;  ``update``: ((i, b_i), ...) over b_i ≠ 0;
    ``backward``: (i, b_i, ((k, a_ki), ...)) in the order the backward pass computes the stages;
    ``p_form``: rows ((k, w_ik), ...) of P_i = p + h Σ_k w_ik J_kᵀ P_k, or None when some b_i = 0.
    """

    name: str
    structure: str
    b: np.ndarray
    forward: tuple
    update: tuple
    backward: tuple
    p_form: tuple | None

    @property
    def stages(self) -> int:
        return len(self.b)

    @property
    def implicit(self) -> bool:
        return any(l >= i for i, terms in self.forward for l, _ in terms)


def coefficients(eq: LayerEquations) -> Coefficients:
    """The float64 coefficients of ``eq``, each the correctly rounded exact value."""
    t = eq.tableau
    F = t.number_field

    def fl(value) -> float:
        return F.to_float(F.element(value))

    def terms(ts) -> tuple:
        return tuple((x.index, fl(x.value)) for x in ts)

    return Coefficients(
        name=t.name,
        structure=eq.structure,
        b=np.array([fl(x) for x in t.b]),
        forward=tuple((st.i, terms(st.terms)) for st in eq.forward),
        update=terms(eq.update),
        backward=tuple((st.i, fl(st.weight.value) if st.weight else 0.0, terms(st.terms)) for st in eq.backward),
        p_form=None if eq.p_form is None else tuple(terms(row) for row in eq.p_form),
    )


# --------------------------------------------------------------------------------------------------
# the network
# --------------------------------------------------------------------------------------------------


class Network:
    """The network of one tableau (a Tableau, a built-in name or JSON path, or its LayerEquations)."""

    def __init__(self, spec: Tableau | str | LayerEquations):
        if isinstance(spec, LayerEquations):
            eq = spec
        else:
            eq = layer_equations(spec if isinstance(spec, Tableau) else load(spec))
        self.equations = eq
        self.coefficients = coefficients(eq)
        A, b, c = eq.tableau.floats()
        self.name, self.structure, self.stages = eq.tableau.name, eq.structure, eq.stages
        self.A, self.b, self.c = np.array(A, dtype=float), np.array(b, dtype=float), np.array(c, dtype=float)

    def __repr__(self) -> str:
        return f"Network({self.name!r}, {self.structure}, stages={self.stages})"

    # -- forward -----------------------------------------------------------------------------------
    def forward(
        self,
        y0,
        K,
        beta,
        h,
        field: str = "resnet",
        activation: str = "tanh",
        keep_states: bool = False,
        keep_tape: bool = True,
        tol: float = NEWTON_TOL,
        max_iter: int = NEWTON_MAX_ITER,
    ):
        """(y_N, :data:`Tape`) for the batch y0 (m, d), K (N, d, d), beta (N, d), h (N,)."""
        _check(field, activation)
        y = np.array(y0, dtype=float)
        K, beta, h = (np.array(x, dtype=float) for x in (K, beta, h))
        if y.ndim != 2 or h.ndim != 1 or K.shape != h.shape + (y.shape[1],) * 2 or beta.shape != K.shape[:2]:
            raise ValueError(f"shapes do not fit: y0 {y.shape}, K {K.shape}, beta {beta.shape}, h {h.shape}")
        c = self.coefficients
        N, (m, d) = h.shape[0], y.shape
        stages = np.empty((N, c.stages, m, d))
        states = np.empty((N + 1, m, d)) if keep_states else None
        failures = iterations = 0
        y0 = y.copy()
        for j in range(N):
            if keep_states:
                states[j] = y
            if c.implicit:
                Y, failed, count = self._newton(y, K[j], beta[j], h[j], field, activation, tol, max_iter)
                failures, iterations = failures + failed, max(iterations, count)
            else:
                Y = self._explicit(y, K[j], beta[j], h[j], field, activation)
            F = evaluate(Y, K[j], beta[j], field, activation)[0]
            y = y + h[j] * _combination(c.update, F)
            stages[j] = Y
        if keep_states:
            states[N] = y
        tape = Tape(states, failures, iterations, stages if keep_tape else None, y0, K, beta, h, field, activation)
        return y, tape

    def _explicit(self, y, K, beta, h, field, act):
        """The stages (s, m, d) of an explicit tableau, one after another."""
        s = self.coefficients.stages
        Y = np.empty((s,) + y.shape)
        Fv = np.zeros((s,) + y.shape)
        for i, terms in self.coefficients.forward:
            Y[i] = y + h * _combination(terms, Fv)
            Fv[i] = evaluate(Y[i], K, beta, field, act)[0]
        return Y

    def _newton(self, y, K, beta, h, field, act, tol, max_iter):
        """The stages (s, m, d) by Newton's method on Y = 1 ⊗ y + h (A ⊗ I) F(Y), every sample on its own
        until its step is at rounding level; (stages, samples not converged, largest iteration count)."""
        s = self.coefficients.stages
        m, d = y.shape
        n = s * d
        Y = np.repeat(y[:, None, :], s, axis=1)  # (m, s, d): one system per sample
        count = np.zeros(m, dtype=int)
        active = np.arange(m)
        for _ in range(max_iter):
            if active.size == 0:
                break
            Ya, ya = Y[active], y[active]
            Fv, _, _, J = evaluate(Ya, K, beta, field, act, jacobian=True)
            R = np.zeros((active.size, s, d))
            M = np.tile(np.eye(n), (active.size, 1, 1))
            for i, terms in self.coefficients.forward:
                r = ya - Ya[:, i]
                for l, a in terms:
                    r = r + h * a * Fv[:, l]
                    M[:, i * d : (i + 1) * d, l * d : (l + 1) * d] -= h * a * J[:, l]
                R[:, i] = r
            step = np.linalg.solve(M, R.reshape(active.size, n, 1)).reshape(active.size, s, d)
            Ya = Ya + step
            Y[active] = Ya
            count[active] += 1
            # a NaN step never passes, so a sample that went non-finite counts as a failure
            done = np.max(np.abs(step), axis=(1, 2)) <= tol * (1.0 + np.max(np.abs(Ya), axis=(1, 2)))
            active = active[~done]
        return np.moveaxis(Y, 1, 0).copy(), int(active.size), int(count.max(initial=0))

    # -- backward ----------------------------------------------------------------------------------
    def backward(self, tape, p, form: str = "xi", weights=None):
        """(∂J/∂y_0, ∂J/∂K, ∂J/∂β, ∂J/∂h) from the tape and p = ∂J/∂y_N (m, d).

        ``form="xi"``: the backward stages η_i = b_i p + Σ_k a_ki μ_k (any tableau).  ``form="p"``: the
        partner form with ``weights`` (rows of (k, w_ik)), by default those of ``eq.p_form``.
        """
        if tape.stages is None:
            raise ValueError("this tape was made with keep_tape=False: forward again to differentiate")
        args = (tape.stages, tape.K, tape.beta, tape.h, p, tape.field, tape.activation)
        if form == "xi":
            return backward_xi_form(self.coefficients, *args)
        if form == "p":
            weights = self.coefficients.p_form if weights is None else weights
            if weights is None:
                raise ValueError(f"{self.name} has a zero weight b_i: the P form does not exist (use the ξ form)")
            return backward_p_form(self.coefficients.b, weights, *args)
        raise ValueError(f"unknown form {form!r} (xi or p)")


def _eta_xi_form(c: Coefficients, Jt, p, h):
    """η (m, s, d) from the backward stages, in the order the backward pass computes them (ξ form)."""
    m, s, d = Jt.shape[0], c.stages, p.shape[1]
    if c.structure == "fully implicit":  # (I - h (Aᵀ ⊗ I) diag(J_kᵀ)) η = b ⊗ p, one system per sample
        M = np.tile(np.eye(s * d), (m, 1, 1))
        R = np.zeros((m, s * d))
        for i, w, terms in c.backward:
            R[:, i * d : (i + 1) * d] = w * p
            for k, a in terms:
                M[:, i * d : (i + 1) * d, k * d : (k + 1) * d] -= h * a * Jt[:, k]
        return np.linalg.solve(M, R[..., None])[..., 0].reshape(m, s, d)
    eta = np.zeros((m, s, d))
    mu = np.zeros((m, s, d))
    for i, w, terms in c.backward:
        rhs = w * p
        diagonal = 0.0
        for k, a in terms:
            if k == i:
                diagonal = a
            else:
                rhs = rhs + a * mu[:, k]
        if diagonal == 0.0:
            eta[:, i] = rhs
        else:  # (I - h a_ii J_iᵀ) η_i = rhs
            eta[:, i] = np.linalg.solve(np.eye(d) - h * diagonal * Jt[:, i], rhs[..., None])[..., 0]
        mu[:, i] = _matvec(h * Jt[:, i], eta[:, i])
    return eta


def _eta_p_form(b, weights, Jt, p, h):
    """η_i = b_i P_i from P_i = p + h Σ_k w_ik J_kᵀ P_k (one linear system of size s·d per sample)."""
    m, s, d = Jt.shape[0], len(b), p.shape[1]
    M = np.tile(np.eye(s * d), (m, 1, 1))
    for i, row in enumerate(weights):
        for k, w in row:
            M[:, i * d : (i + 1) * d, k * d : (k + 1) * d] -= h * w * Jt[:, k]
    P = np.linalg.solve(M, np.tile(p, s)[..., None])[..., 0].reshape(m, s, d)
    return np.asarray(b, dtype=float)[None, :, None] * P


def _in_turn(terms):
    """The sum of ``terms`` (n, ...) taken one after another, in their order (no pairwise summation), so that a
    gradient does not depend on how numpy groups a sum."""
    return np.add.accumulate(terms, axis=0)[-1]


def _backward(stages, K, beta, h, p, field, act, eta_of):
    """The gradient of J from η per layer: μ_i = h J_iᵀ η_i, ∂J/∂y_j = p + Σ_i μ_i, ∂J/∂h_j = Σ_i η_i·F_i and
    the pullback of ξ_i = h η_i to K_j and β_j, summed over samples and stages (sample by sample)."""
    _check(field, act)
    stages = np.asarray(stages, dtype=float)
    K, beta, h = (np.asarray(x, dtype=float) for x in (K, beta, h))
    N, s, m, d = stages.shape
    P = np.array(p, dtype=float) * np.ones((m, d))
    dK, dbeta, dh = np.zeros_like(K), np.zeros_like(beta), np.zeros(N)
    for j in range(N - 1, -1, -1):
        hj, Kj, Y = h[j], K[j], stages[j]
        F, sg, ds, J = evaluate(Y, Kj, beta[j], field, act, jacobian=True)
        eta = np.moveaxis(eta_of(np.swapaxes(np.moveaxis(J, 0, 1), -1, -2), P, hj), 1, 0)  # (s, m, d)
        if field == "resnet":  # J = diag(σ') K
            g = hj * ds * eta
            mu = _matvec(Kj.T, g)
            gK = g[..., :, None] * Y[..., None, :]
            gb = g
        else:  # f = -Kᵀσ(Ky + β)
            g = hj * ds * _matvec(Kj, eta)
            mu = _matvec(-Kj.T, g)
            gK = -(hj * (sg[..., :, None] * eta[..., None, :]) + g[..., :, None] * Y[..., None, :])
            gb = -g
        gh = (eta[..., None, :] @ F[..., :, None])[..., 0, 0]
        dK[j] = _in_turn(np.swapaxes(gK, 0, 1).reshape(m * s, d, d))
        dbeta[j] = _in_turn(np.swapaxes(gb, 0, 1).reshape(m * s, d))
        dh[j] = _in_turn(gh.T.reshape(m * s))
        total = P.copy()
        for i in range(s):
            total = total + mu[i]
        P = total
    return P, dK, dbeta, dh


def backward_xi_form(c: Coefficients, stages, K, beta, h, p, field="resnet", activation="tanh"):
    """The gradient from the stage values (N, s, m, d) by the backward stages of ``c`` (the ξ form)."""
    return _backward(stages, K, beta, h, p, field, activation, lambda Jt, P, hj: _eta_xi_form(c, Jt, P, hj))


def backward_p_form(b, weights, stages, K, beta, h, p, field="resnet", activation="tanh"):
    """The gradient from the stage values (N, s, m, d) by the P form with weights b and w_ik (rows of (k, w_ik);
    w_ik = b_k - ã_ik for a partner Ã)."""
    return _backward(stages, K, beta, h, p, field, activation, lambda Jt, P, hj: _eta_p_form(b, weights, Jt, P, hj))
