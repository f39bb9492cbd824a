"""A pure-numpy stand-in for a generated network module (docs/network-contract.md).

``make_fake_net(A, b, name)`` returns a module-like object with the contract's names, ``forward``
and ``backward``, for any tableau given by float arrays. The shared layout (one (K_j, beta_j) per
layer) is rkgen's reference network (:mod:`rkgen.reference`: the layer equations of the tableau,
forward with Newton where the stages are implicit, the stage-wise adjoint in the xi form). The
other parameter layouts of the contract are written here, apart from rkgen.runtime and
rkgen.reference, so that they can serve as a test oracle:

- ``params="stage"``: K (N, s, d, d), beta (N, s, d), one set per stage i of layer j. Forward: the
  stages one after another (explicit tableaux) or Newton's method on the coupled s·d system of each
  sample; backward: the adjoint stages eta from one linear system per sample and layer,
  (I - h (A^T ⊗ I) diag(J_k^T)) eta = b ⊗ p, then dK_ji = h (df/dK)^T eta_i, dh_j = sum_i eta_i·F_i.
- ``params="continuous"``: K (M+1, d, d), beta (M+1, d), nodal values at the increasing node times
  ``nodes`` (M+1,) (default: the layer boundaries 0, h_0, h_0 + h_1, ..., sum h, M = N); stage
  i of layer j uses the piecewise-linear interpolant at t_j + c_i h_j (t_j = h_0 + ... + h_(j-1);
  the segment [tau_n, tau_(n+1)) that holds the time, the end segments extended linearly beyond the
  end nodes). The gradient is the stage layout's, gathered onto the nodes; dh also carries the
  motion of the stage times (the node times held fixed).

It lets the trainer's tests run without compiling numba kernels.
"""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

import numpy as np
import sympy

from rkgen.reference import ACTIVATIONS, FIELDS, Network, Tape
from rkgen.tableau import Tableau

PARAMS = ("shared", "stage", "continuous")

#: the tape of the stage and continuous layouts: stage values (N, s, m, d), the per-stage parameters
#: used, and what the continuous layout needs to gather the gradient onto its nodes
LayoutTape = namedtuple(
    "LayoutTape",
    "states failures iterations stages y0 K beta h field activation params nodes Kn betan segment weight times",
)


def make_fake_net(A, b, name="fake"):
    """A module-like object satisfying the network contract for the tableau (A, b) (floats, taken exactly)."""
    A = np.array(A, dtype=float)
    b = np.array(b, dtype=float)
    exact = Tableau(name, [[sympy.Rational(x) for x in row] for row in A], [sympy.Rational(x) for x in b])
    net = Network(exact)
    layered = _Layouts(A, b, net)
    return SimpleNamespace(
        NAME=name,
        STAGES=net.stages,
        ORDER=None,
        STRUCTURE=net.structure,
        A=net.A,
        B=net.b,
        C=net.c,
        FIELDS=FIELDS,
        ACTIVATIONS=ACTIVATIONS,
        PARAMS=PARAMS,
        forward=layered.forward,
        backward=layered.backward,
        Tape=Tape,
    )


# -- the vector field with per-stage parameters ------------------------------------------------------


def _sigma(act, z):
    """(σ(z), σ'(z)), written out again (relu' is 0 at 0)."""
    if act == "tanh":
        t = np.tanh(z)
        return t, 1.0 - t * t
    if act == "relu":
        return np.maximum(z, 0.0), (z > 0.0) * 1.0
    sig = 0.5 * (1.0 + np.tanh(0.5 * z))  # the logistic function without overflow
    if act == "sigmoid":
        return sig, sig * (1.0 - sig)
    return np.logaddexp(0.0, z), sig  # softplus


def _field(Y, K, beta, field, act):
    """F = f(Y), σ(z), σ'(z) for rows Y (m, d) and one (K, β); z = K y + β."""
    z = Y @ K.T + beta
    sg, ds = _sigma(act, z)
    F = sg if field == "resnet" else -(sg @ K)
    return F, sg, ds


def _jacobians(K, ds, field):
    """∂f/∂y (m, d, d) from σ'(z) (m, d)."""
    DK = ds[:, :, None] * K[None]
    return DK if field == "resnet" else -np.einsum("ki,mkj->mij", K, DK)


class _Layouts:
    """forward and backward of the contract, in every parameter layout."""

    def __init__(self, A, b, reference):
        self.A, self.b, self.c = A, b, A.sum(axis=1)
        self.s = len(b)
        self.explicit = not np.any(np.triu(A) != 0.0)
        self.reference = reference

    # -- forward ------------------------------------------------------------------------------------
    def forward(
        self,
        y0,
        K,
        beta,
        h,
        field="resnet",
        activation="tanh",
        keep_states=False,
        keep_tape=True,
        params="shared",
        nodes=None,
    ):
        if params not in PARAMS:
            raise ValueError(f"params must be one of {PARAMS}, got {params!r}")
        if params == "shared":
            if nodes is not None:
                raise ValueError("nodes apply to params='continuous' only")
            return self.reference.forward(y0, K, beta, h, field, activation, keep_states, keep_tape)
        if field not in FIELDS or activation not in ACTIVATIONS:
            raise ValueError(f"unknown field {field!r} or activation {activation!r}")
        y = np.array(y0, dtype=float)
        K, beta, h = (np.array(x, dtype=float) for x in (K, beta, h))
        if y.ndim != 2 or h.ndim != 1:
            raise ValueError(f"y0 must be (m, d) and h (N,), got {y.shape} and {h.shape}")
        (m, d), N, s = y.shape, len(h), self.s
        Kn = betan = segment = weight = times = None
        if params == "stage":
            if nodes is not None:
                raise ValueError("nodes apply to params='continuous' only")
            if K.shape != (N, s, d, d) or beta.shape != (N, s, d):
                raise ValueError(f"stage layout: K {K.shape}, beta {beta.shape}, expected {(N, s, d, d)}, {(N, s, d)}")
            Ks, betas = K, beta
        else:
            if nodes is None:
                nodes = np.concatenate([[0.0], np.cumsum(h)])
            nodes = np.array(nodes, dtype=float)
            M = len(nodes)  # any number of nodes: they need not be the layer boundaries
            if nodes.ndim != 1 or M < 2 or not np.all(np.diff(nodes) > 0.0):
                raise ValueError(f"nodes must be at least 2 increasing times, got shape {nodes.shape}")
            if K.shape != (M, d, d) or beta.shape != (M, d):
                raise ValueError(f"continuous layout: K {K.shape}, beta {beta.shape}, expected {(M, d, d)}, {(M, d)}")
            Kn, betan = K, beta
            times, segment, weight = self.stage_times(h, nodes)
            w = weight[..., None]
            betas = (1.0 - w) * betan[segment] + w * betan[segment + 1]
            Ks = (1.0 - w[..., None]) * Kn[segment] + w[..., None] * Kn[segment + 1]
        stages = np.empty((N, s, m, d))
        states = np.empty((N + 1, m, d)) if keep_states else None
        failures = iterations = 0
        for j in range(N):
            if keep_states:
                states[j] = y
            Y, failed, count = self._stages(y, Ks[j], betas[j], h[j], field, activation)
            failures, iterations = failures + failed, max(iterations, count)
            F = np.array([_field(Y[i], Ks[j, i], betas[j, i], field, activation)[0] for i in range(s)])
            y = y + h[j] * np.einsum("i,imd->md", self.b, F)
            stages[j] = Y
        if keep_states:
            states[N] = y
        tape = LayoutTape(
            states,
            failures,
            iterations,
            stages if keep_tape else None,
            np.array(y0, dtype=float),
            Ks,
            betas,
            h,
            field,
            activation,
            params,
            nodes,
            Kn,
            betan,
            segment,
            weight,
            times,
        )
        return y, tape

    def stage_times(self, h, nodes):
        """The stage times (N, s), their segments n (the interval [τ_n, τ_(n+1)) holding them, the end
        ones extended) and the weights w of node n + 1."""
        t = np.concatenate([[0.0], np.cumsum(h)[:-1]])
        times = t[:, None] + self.c[None, :] * h[:, None]
        segment = np.clip(np.searchsorted(nodes, times, side="right") - 1, 0, len(nodes) - 2)
        weight = (times - nodes[segment]) / (nodes[segment + 1] - nodes[segment])
        return times, segment, weight

    def _stages(self, y, K, beta, h, field, act):
        """Stage values (s, m, d) of one layer with per-stage parameters K (s, d, d), beta (s, d)."""
        s, (m, d) = self.s, y.shape
        if self.explicit:
            Y = np.empty((s, m, d))
            F = np.empty((s, m, d))
            for i in range(s):
                Y[i] = y + h * np.einsum("l,lmd->md", self.A[i, :i], F[:i])
                F[i] = _field(Y[i], K[i], beta[i], field, act)[0]
            return Y, 0, 0
        Y = np.repeat(y[None], s, axis=0)
        for count in range(1, 101):
            F = np.empty((s, m, d))
            Jac = np.empty((s, m, d, d))
            for i in range(s):
                F[i], _, ds = _field(Y[i], K[i], beta[i], field, act)
                Jac[i] = _jacobians(K[i], ds, field)
            R = y[None] + h * np.einsum("il,lmd->imd", self.A, F) - Y  # residual of Y = y + h A F
            M = np.zeros((m, s, d, s, d))  # ∂(Y - y - h A F)/∂Y
            for i in range(s):
                M[:, i, :, i, :] = np.eye(d)
                for l in range(s):
                    if self.A[i, l] != 0.0:
                        M[:, i, :, l, :] -= h * self.A[i, l] * Jac[l]
            step = np.linalg.solve(M.reshape(m, s * d, s * d), R.transpose(1, 0, 2).reshape(m, s * d, 1))
            step = step.reshape(m, s, d).transpose(1, 0, 2)
            Y = Y + step
            if np.max(np.abs(step), initial=0.0) <= 1e-15 * (1.0 + np.max(np.abs(Y), initial=0.0)):
                return Y, 0, count
        return Y, m, count

    # -- backward -----------------------------------------------------------------------------------
    def backward(self, tape, p):
        if not isinstance(tape, LayoutTape):
            return self.reference.backward(tape, p)
        if tape.stages is None:
            raise ValueError("this tape was made with keep_tape=False: run forward again to differentiate")
        Ks, betas, h, field, act = tape.K, tape.beta, tape.h, tape.field, tape.activation
        N, s, m, d = tape.stages.shape
        P = np.array(p, dtype=float)
        dK, dbeta, dh = np.zeros_like(Ks), np.zeros_like(betas), np.zeros(N)
        for j in range(N - 1, -1, -1):
            Y, hj = tape.stages[j], h[j]
            F, sg, ds = np.empty((s, m, d)), np.empty((s, m, d)), np.empty((s, m, d))
            Jt = np.empty((s, m, d, d))
            for i in range(s):
                F[i], sg[i], ds[i] = _field(Y[i], Ks[j, i], betas[j, i], field, act)
                Jt[i] = np.swapaxes(_jacobians(Ks[j, i], ds[i], field), 1, 2)
            # eta_i = b_i p + sum_k a_ki h J_k^T eta_k: one (s d) system per sample
            M = np.tile(np.eye(s * d), (m, 1, 1))
            for i in range(s):
                for k in range(s):
                    if self.A[k, i] != 0.0:
                        M[:, i * d : (i + 1) * d, k * d : (k + 1) * d] -= hj * self.A[k, i] * Jt[k]
            rhs = (self.b[:, None, None] * P[None]).transpose(1, 0, 2).reshape(m, s * d, 1)
            eta = np.linalg.solve(M, rhs).reshape(m, s, d).transpose(1, 0, 2)
            mu = hj * np.einsum("imab,imb->ima", Jt, eta)
            for i in range(s):
                if field == "resnet":  # f = σ(K y + β)
                    g = hj * ds[i] * eta[i]
                    dK[j, i] = g.T @ Y[i]
                    dbeta[j, i] = g.sum(axis=0)
                else:  # f = -Kᵀσ(K y + β)
                    g = hj * ds[i] * (eta[i] @ Ks[j, i].T)
                    dK[j, i] = -(hj * sg[i].T @ eta[i]) - g.T @ Y[i]
                    dbeta[j, i] = -g.sum(axis=0)
            dh[j] = np.sum(eta * F)
            P = P + mu.sum(axis=0)
        if tape.params == "stage":
            return P, dK, dbeta, dh
        # the continuous layout: gather onto the nodes, and move the stage times with h
        n, w = tape.segment, tape.weight
        dKn, dbn = np.zeros_like(tape.Kn), np.zeros_like(tape.betan)
        np.add.at(dKn, n, (1.0 - w)[..., None, None] * dK)
        np.add.at(dKn, n + 1, w[..., None, None] * dK)
        np.add.at(dbn, n, (1.0 - w)[..., None] * dbeta)
        np.add.at(dbn, n + 1, w[..., None] * dbeta)
        gap = tape.nodes[n + 1] - tape.nodes[n]
        slopeK = (tape.Kn[n + 1] - tape.Kn[n]) / gap[..., None, None]
        slopeb = (tape.betan[n + 1] - tape.betan[n]) / gap[..., None]
        dtime = np.einsum("jiab,jiab->ji", dK, slopeK) + np.einsum("jia,jia->ji", dbeta, slopeb)  # dJ/d(stage time)
        # stage time of (j, i) = h_0 + ... + h_(j-1) + c_i h_j
        later = np.concatenate([np.cumsum(dtime.sum(axis=1)[::-1])[::-1][1:], [0.0]])
        dh = dh + dtime @ self.c + later
        return P, dKn, dbn, dh


TABLEAUX = {
    "euler": ([[0.0]], [1.0]),
    "midpoint": ([[0.0, 0.0], [0.5, 0.0]], [0.0, 1.0]),
    "heun2": ([[0, 0], [1.0, 0]], [0.5, 0.5]),
    "heun3": ([[0, 0, 0], [1 / 3, 0, 0], [0, 2 / 3, 0]], [0.25, 0.0, 0.75]),
    "kutta3": ([[0, 0, 0], [0.5, 0, 0], [-1.0, 2.0, 0]], [1 / 6, 2 / 3, 1 / 6]),
    "rk4": (
        [[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1.0, 0]],
        [1 / 6, 1 / 3, 1 / 3, 1 / 6],
    ),
    "implicit_midpoint": ([[0.5]], [1.0]),
}


def fake(name):
    """The fake network for a built-in name of TABLEAUX."""
    A, b = TABLEAUX[name]
    return make_fake_net(A, b, name)
