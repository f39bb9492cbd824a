"""A pure-numpy stand-in for a generated network module (docs/network-contract.md).

``make_fake_net(A, b, name)`` returns a module-like object with the contract's names, ``forward``
and ``backward``, for any explicit tableau. The backward pass is the stage-wise adjoint in the xi
form of notes/math.md section 4, with eta_i = xi_i / h formed without division:

    eta_i = b_i p + sum_k a_ki mu_k,   xi_i = h eta_i,   mu_i = J_i^T xi_i,
    dJ/dy_j = p + sum_i mu_i,          dJ/dh_j = sum_i eta_i . F_i.

It lets the trainer's tests run without compiling numba kernels. Samples are rows: y has shape (m,
d), the pre-activation of a stage is z = Y K^T + beta.
"""

from __future__ import annotations

from collections import namedtuple
from types import SimpleNamespace

import numpy as np

Tape = namedtuple(
    "Tape",
    [
        "states",
        "failures",
        "iterations",
        "stages",
        "fields",
        "pre",
        "y0",
        "K",
        "beta",
        "h",
        "field",
        "activation",
    ],
)


def _act(name, z):
    """sigma(z) and sigma'(z)."""
    if name == "tanh":
        s = np.tanh(z)
        return s, 1.0 - s * s
    if name == "relu":
        return np.maximum(z, 0.0), (z > 0.0).astype(float)
    if name == "softplus":
        sig = 0.5 * (1.0 + np.tanh(0.5 * z))
        return np.logaddexp(0.0, z), sig
    if name == "sigmoid":
        s = 0.5 * (1.0 + np.tanh(0.5 * z))
        return s, s * (1.0 - s)
    raise ValueError(f"unknown activation {name!r}")


def make_fake_net(A, b, name="fake"):
    """A module-like object satisfying the network contract for the explicit tableau (A, b)."""
    A = np.array(A, dtype=float)
    b = np.array(b, dtype=float)
    s = len(b)
    if A.shape != (s, s) or np.any(np.triu(A) != 0.0):
        raise ValueError("make_fake_net handles explicit tableaux only")

    def _field(Y, Kj, betaj, field, activation):
        z = Y @ Kj.T + betaj
        sig, dsig = _act(activation, z)
        F = sig if field == "resnet" else -(sig @ Kj)
        return F, sig, dsig

    def forward(y0, K, beta, h, field="resnet", activation="tanh", keep_states=False, keep_tape=True):
        y = np.array(y0, dtype=float, order="C")
        K = np.ascontiguousarray(K, dtype=float)
        beta = np.ascontiguousarray(beta, dtype=float)
        h = np.ascontiguousarray(h, dtype=float)
        if field not in ("resnet", "stable"):
            raise ValueError(f"unknown field {field!r}")
        N = K.shape[0]
        m, d = y.shape
        stages = np.empty((N, s, m, d))
        fields = np.empty((N, s, m, d))
        pre = np.empty((N, s, 2, m, d))  # sigma(z), sigma'(z)
        states = np.empty((N + 1, m, d)) if keep_states else None
        if keep_states:
            states[0] = y
        y0c = y.copy()
        for j in range(N):
            for i in range(s):
                Y = y.copy()
                for l_ in range(i):
                    if A[i, l_] != 0.0:
                        Y += h[j] * A[i, l_] * fields[j, l_]
                stages[j, i] = Y
                F, sig, dsig = _field(Y, K[j], beta[j], field, activation)
                fields[j, i] = F
                pre[j, i, 0] = sig
                pre[j, i, 1] = dsig
            y = y + h[j] * np.tensordot(b, fields[j], axes=1)
            if keep_states:
                states[j + 1] = y
        tape = Tape(states, 0, 0, stages, fields, pre, y0c, K, beta, h, field, activation)
        return y, tape

    def backward(tape, p):
        p = np.array(p, dtype=float)
        K, h = tape.K, tape.h
        N = K.shape[0]
        dK = np.zeros_like(K)
        dbeta = np.zeros_like(tape.beta)
        dh = np.zeros_like(h)
        stable = tape.field == "stable"
        for j in range(N - 1, -1, -1):
            Kj = K[j]
            mu = [None] * s
            dy = p.copy()
            for i in range(s - 1, -1, -1):
                eta = b[i] * p
                for k in range(i + 1, s):
                    if A[k, i] != 0.0:
                        eta = eta + A[k, i] * mu[k]
                xi = h[j] * eta
                sig, dsig = tape.pre[j, i, 0], tape.pre[j, i, 1]
                Y = tape.stages[j, i]
                if stable:
                    # f = -K^T sig(z): J^T xi = -K^T (dsig * (K xi))
                    kx = xi @ Kj.T
                    g = dsig * kx
                    mu_i = -(g @ Kj)
                    dK[j] -= sig.T @ xi + g.T @ Y
                    dbeta[j] -= g.sum(axis=0)
                else:
                    g = dsig * xi
                    mu_i = g @ Kj
                    dK[j] += g.T @ Y
                    dbeta[j] += g.sum(axis=0)
                mu[i] = mu_i
                dy += mu_i
                dh[j] += np.sum(eta * tape.fields[j, i])
            p = dy
        return p, dK, dbeta, dh

    c = A.sum(axis=1)
    return SimpleNamespace(
        NAME=name,
        STAGES=s,
        ORDER=None,
        STRUCTURE="explicit",
        A=A,
        B=b,
        C=c,
        FIELDS=("resnet", "stable"),
        ACTIVATIONS=("tanh", "relu", "softplus", "sigmoid"),
        forward=forward,
        backward=backward,
        Tape=Tape,
    )


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
}


def fake(name):
    """The fake network for a built-in name of TABLEAUX."""
    A, b = TABLEAUX[name]
    return make_fake_net(A, b, name)
