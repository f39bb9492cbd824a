"""Comparison baselines for rkgen's generated networks: the same gradient in numpy, PyTorch and JAX.

One *gradient* is: the forward pass of a Runge-Kutta network (resnet field by default, tanh), the
binary classifier loss

    logits = y_N @ W + mu,      J = 1/2 * sum((sigmoid(logits) - labels)^2),

and the backward pass to every K_j, beta_j and to W, mu. Everything is float64. The steps h_j are
fixed data here (not differentiated).

Parameter layouts (``problem["params"]``, as in the generated modules' ``forward(..., params=...)``):
``"shared"`` K (N, d, d), beta (N, d), one set per layer; ``"stage"`` K (N, s, d, d), beta (N, s, d), one set per
stage; ``"continuous"`` nodal values K (N+1, d, d), beta (N+1, d) at the layer boundaries, linear in time between
them, so stage i of layer j uses (1 - c_i) K_j + c_i K_(j+1) (c = A's row sums, 0 <= c_i <= 1). The gradients
come back in the same layout. numpy does the non-shared layouts for explicit tableaux only; torch and JAX
interpolate the continuous layout themselves and let autodiff carry the gradient to the nodes.

Implementations (all take a problem dict from :func:`make_problem` and return a :class:`Gradient`):

- :func:`numpy_grad`: plain numpy, batched over samples, with a hand-written backward pass (the
  stage-wise adjoint in xi form); implicit tableaux by Newton's method per sample and the
  implicit-function-theorem adjoint (one (s d) x (s d) solve per sample and layer).
- :func:`torch_grad`: PyTorch eager with autograd (optional dependency). For an implicit tableau
  the stages are found by fixed-point iteration to rounding level and autograd differentiates
  *through the iterations*; the result converges to the exact gradient as fast as the iteration
  converges, which is to ~1e-14 here, but it is not the implicit-function-theorem gradient.
- :func:`jax_grad`: JAX, ``jit`` of ``value_and_grad`` (optional dependency); layers by
  ``lax.scan``; implicit stages by Newton's method inside a ``jax.custom_vjp`` whose backward
  rule is the implicit-function-theorem adjoint.

:data:`IMPLEMENTATIONS` maps a name to such a function; the rkgen implementation is to be added
there (see the marked place below). :func:`contract_grad` adapts any module with the
network contract of docs/network-contract.md.

Run ``python benchmarks/baselines.py`` for the smoke check (gradients agree, and numpy agrees with
a complex-step derivative of the independent reference in tests/reference.py) and the timings.
Threads: torch is timed with 1 thread and with its default; for single-threaded numpy and JAX set
``OPENBLAS_NUM_THREADS=1`` and ``XLA_FLAGS="--xla_cpu_multi_thread_eigen=false
intra_op_parallelism_threads=1"`` in the environment before starting Python.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np

# ----------------------------------------------------------------------------------------------
# tableaux and problems
# ----------------------------------------------------------------------------------------------

TABLEAUX = {
    "euler": (np.array([[0.0]]), np.array([1.0])),
    "rk4": (
        np.array([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]], dtype=float),
        np.array([1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    ),
    "midpoint": (np.array([[0.5]]), np.array([1.0])),
    "gauss2": (
        np.array([[0.25, 0.25 - np.sqrt(3) / 6], [0.25 + np.sqrt(3) / 6, 0.25]]),
        np.array([0.5, 0.5]),
    ),
}

# name -> (width d, layers N, samples m, step h, tableau)
CONFIGS = {
    "A-euler": (2, 15, 1000, 1 / 15, "euler"),
    "A-rk4": (2, 15, 1000, 1 / 15, "rk4"),
    "A-midpoint": (2, 15, 1000, 1 / 15, "midpoint"),
    "B": (16, 100, 5, 0.05, "rk4"),
    "C": (16, 100, 1500, 0.05, "rk4"),
    "D": (64, 100, 1500, 0.05, "rk4"),
    "E": (256, 20, 512, 0.05, "rk4"),
    "gauss2-wide": (64, 20, 512, 0.05, "gauss2"),
}
#: configs whose torch baseline unrolls the fixed-point iteration of the stages a stated number of times (no test,
#: no synchronisation), autograd through every iteration. 13 iterations bring gauss2-wide's stage residual to
#: ~1e-16 relative (printed by bench_network.py with the run), the tolerance rkgen's Newton reaches (a last update
#: below 1e-13 relative, or an estimated error below 1e-15).
UNROLLED = {"gauss2-wide": 13}
#: the largest relative stage residual |y + h (A kron I) F(Y) - Y| / (1 + max|Y|) of the last unrolled torch run
UNROLLED_RESIDUAL: dict[str, float] = {}

PARAMS = ("shared", "stage", "continuous")

NEWTON_TOL = 1e-14  # numpy and JAX Newton: max residual relative to 1 + max|Y|
FIXED_POINT_TOL = 1e-15  # torch fixed point: max change relative to 1 + max|Y|
MAX_ITER = 100


class Gradient(NamedTuple):
    loss: float
    dK: np.ndarray  # in the problem's layout: (N, d, d), (N, s, d, d) or (N+1, d, d)
    dbeta: np.ndarray  # (N, d), (N, s, d) or (N+1, d)
    dW: np.ndarray  # (d,)
    dmu: float


def spiral(m, rng, turns=1.5, noise=0.05):
    """Two interleaved spiral arms in the plane, m points scaled to about [-1, 1]^2; labels 0/1."""
    labels = np.arange(m) % 2
    t = np.sqrt(rng.uniform(0.02, 1.0, m))  # radius, denser near the middle
    angle = 2 * np.pi * turns * t + np.pi * labels
    pts = np.stack([t * np.cos(angle), t * np.sin(angle)], axis=1)
    pts += noise * rng.normal(size=pts.shape)
    return pts, labels.astype(float)


def make_problem(config, seed=0, field="resnet", params="shared"):
    """Inputs for one benchmark configuration (a key of CONFIGS; "B-rk4" etc. also accepted).

    Spiral points padded with zeros to width d; K_j ~ N(0, 1/d), beta_j ~ N(0, 1/d),
    W ~ N(0, 1/d), mu ~ N(0, 0.01); every step h_j equal. ``params`` is the parameter layout (see
    PARAMS): the shapes of K and beta; "shared" draws exactly the problem it always did.
    """
    if params not in PARAMS:
        raise ValueError(f"unknown parameter layout {params!r}; expected one of {PARAMS}")
    name = config.removesuffix("-rk4") if config[:1] in "BCDE" else config
    if name not in CONFIGS:
        raise ValueError(f"unknown config {config!r}; expected one of {list(CONFIGS)}")
    d, N, m, step, tableau = CONFIGS[name]
    rng = np.random.default_rng(seed)
    pts, labels = spiral(m, rng)
    y0 = np.zeros((m, d))
    y0[:, :2] = pts
    A, b = TABLEAUX[tableau]
    rows = {"shared": (N,), "stage": (N, b.shape[0]), "continuous": (N + 1,)}[params]
    return {
        "name": name,
        "tableau": tableau,
        "params": params,
        "A": A,
        "b": b,
        "y0": y0,
        "K": rng.normal(0.0, 1 / np.sqrt(d), rows + (d, d)),
        "beta": rng.normal(0.0, 1 / np.sqrt(d), rows + (d,)),
        "h": np.full(N, step),
        "W": rng.normal(0.0, 1 / np.sqrt(d), d),
        "mu": float(rng.normal(0.0, 0.1)),
        "labels": labels,
        "field": field,
        "activation": "tanh",
    }


def is_explicit(A):
    return bool(np.all(np.triu(A) == 0))


def _check(problem):
    if problem["activation"] != "tanh":
        raise ValueError("the baselines implement the tanh activation only")
    if problem["field"] not in ("resnet", "stable"):
        raise ValueError(f"unknown field {problem['field']!r}")


def stage_fractions(A):
    """c_i = sum_l a_il, checked to lie in [0, 1] (the continuous layout interpolates within the layer)."""
    c = np.asarray(A, dtype=float).sum(axis=1)
    if np.any(c < 0) or np.any(c > 1):
        raise ValueError(f"the continuous layout needs 0 <= c_i <= 1, got c = {c}")
    return c


def _param_rows(problem):
    """(K rows (R, d, d), beta rows (R, d), rows (N, s)): stage i of layer j uses row rows[j, i]."""
    params = problem.get("params", "shared")
    K, beta = problem["K"], problem["beta"]
    N, s, d = problem["h"].shape[0], problem["b"].shape[0], problem["y0"].shape[1]
    if params == "shared":
        return K, beta, np.repeat(np.arange(N)[:, None], s, axis=1)
    rows = np.arange(N * s).reshape(N, s)
    if params == "stage":
        return K.reshape(N * s, d, d), beta.reshape(N * s, d), rows
    if params != "continuous":
        raise ValueError(f"unknown parameter layout {params!r}")
    c = stage_fractions(problem["A"])
    Ks = (1.0 - c)[None, :, None, None] * K[:-1, None] + c[None, :, None, None] * K[1:, None]
    bs = (1.0 - c)[None, :, None] * beta[:-1, None] + c[None, :, None] * beta[1:, None]
    return Ks.reshape(N * s, d, d), bs.reshape(N * s, d), rows


def _layout_gradient(problem, dKr, dbr):
    """The row gradients of :func:`_param_rows` back in the problem's layout."""
    params = problem.get("params", "shared")
    if params == "shared":
        return dKr, dbr
    N, s, d = problem["h"].shape[0], problem["b"].shape[0], problem["y0"].shape[1]
    dKs, dbs = dKr.reshape(N, s, d, d), dbr.reshape(N, s, d)
    if params == "stage":
        return dKs, dbs
    c = stage_fractions(problem["A"])
    dK = np.zeros((N + 1, d, d))
    dbeta = np.zeros((N + 1, d))
    dK[:-1] += np.einsum("i,jiac->jac", 1.0 - c, dKs)
    dK[1:] += np.einsum("i,jiac->jac", c, dKs)
    dbeta[:-1] += (1.0 - c) @ dbs
    dbeta[1:] += c @ dbs
    return dK, dbeta


def _classifier(yN, W, mu, labels):
    """Loss and its gradient: (J, dJ/dy_N (m, d), dJ/dW, dJ/dmu)."""
    g = 1.0 / (1.0 + np.exp(-(yN @ W + mu)))
    r = g - labels
    dlogits = r * g * (1.0 - g)
    return 0.5 * float(r @ r), np.outer(dlogits, W), yN.T @ dlogits, float(dlogits.sum())


# ----------------------------------------------------------------------------------------------
# numpy, hand-written backward
# ----------------------------------------------------------------------------------------------


def _np_matmul(X, M):
    """X @ M for X of shape (..., d) as one 2-D product (numpy loops over stacked small ones)."""
    return (X.reshape(-1, X.shape[-1]) @ M).reshape(X.shape[:-1] + M.shape[1:])


def _np_field(S, K, field):
    """F from S = tanh(Y K^T + beta): S (resnet) or -S K (stable)."""
    return S if field == "resnet" else -_np_matmul(S, K)


def _np_field_jacobian(S, K, field):
    """df/dy from S = tanh(z), shape S.shape + (d,): diag(tanh') K or -K^T diag(tanh') K."""
    D = 1.0 - S * S
    d = K.shape[0]
    if field == "resnet":
        return D[..., :, None] * K
    # (-K^T diag(D) K)[a, c] = -sum_e D[e] K[e, a] K[e, c]: one product with the (d, d*d) table
    KK = (K[:, :, None] * K[:, None, :]).reshape(d, d * d)
    return -_np_matmul(D, KK).reshape(S.shape + (d,))


def _np_newton_stages(A, y, K, beta, h, field):
    """Stages (s, m, d) and their S = tanh(Z) by Newton's method per sample, batched."""
    s = A.shape[0]
    m, d = y.shape
    n = s * d
    Y = np.repeat(y[:, None, :], s, axis=1)  # (m, s, d)
    eye = np.eye(n)
    for _ in range(MAX_ITER + 1):
        S = np.tanh(_np_matmul(Y, K.T) + beta)
        F = _np_field(S, K, field)
        AF = F if s == 1 else np.einsum("il,mld->mid", A, F)
        R = Y - y[:, None, :] - (h * A[0, 0] if s == 1 else h) * AF
        if np.max(np.abs(R)) <= NEWTON_TOL * (1.0 + np.max(np.abs(Y))):
            return np.moveaxis(Y, 1, 0), np.moveaxis(S, 1, 0)
        Jf = _np_field_jacobian(S, K, field)  # (m, s, d, d)
        if s == 1:
            jac = eye - (h * A[0, 0]) * Jf.reshape(m, n, n)
        else:
            jac = eye - h * np.einsum("il,mlac->mialc", A, Jf).reshape(m, n, n)
        Y = Y - np.linalg.solve(jac, R.reshape(m, n, 1)).reshape(m, s, d)
    raise RuntimeError(f"Newton did not converge in {MAX_ITER} iterations")


def _np_pullback(xi, Y, S, K, field):
    """Adjoint of F = f(Y) with cotangent xi: (mu = J^T xi, dK part, dbeta part)."""
    if field == "resnet":
        zeta = xi * (1.0 - S * S)
        dK = zeta.T @ Y
    else:
        zeta = -(xi @ K.T) * (1.0 - S * S)
        dK = zeta.T @ Y - S.T @ xi
    return zeta @ K, dK, zeta.sum(axis=0)


def numpy_grad(problem):
    """The gradient in plain numpy with a hand-written backward pass (batched over samples).

    Every layout for explicit tableaux; implicit tableaux with the shared layout only."""
    _check(problem)
    A, b, y0, h = (problem[k] for k in ("A", "b", "y0", "h"))
    K, beta, rows = _param_rows(problem)
    field = problem["field"]
    explicit = is_explicit(A)
    if not explicit and problem.get("params", "shared") != "shared":
        raise ValueError("numpy_grad: implicit tableaux with the shared layout only")
    if not explicit and y0.shape[1] > 16:
        raise ValueError("numpy_grad: implicit tableaux up to width 16 (its per-sample Newton solves are too slow)")
    s = b.shape[0]
    N = h.shape[0]
    m, d = y0.shape
    Ys = np.empty((N, s, m, d))
    Ss = np.empty((N, s, m, d))
    y = y0
    for j in range(N):
        Kj, bj, hj = K[j], beta[j], h[j]
        if explicit:
            F = [None] * s
            for i in range(s):
                Kji = K[rows[j, i]]
                Yi = y
                for l in range(i):
                    if A[i, l] != 0:
                        Yi = Yi + (hj * A[i, l]) * F[l]
                Ys[j, i] = Yi
                Ss[j, i] = np.tanh(Yi @ Kji.T + beta[rows[j, i]])
                F[i] = _np_field(Ss[j, i], Kji, field)
        else:
            Ys[j], Ss[j] = _np_newton_stages(A, y, Kj, bj, hj, field)
            F = [_np_field(Ss[j, i], Kj, field) for i in range(s)]
        y = y + hj * sum(b[i] * F[i] for i in range(s) if b[i] != 0)

    loss, p, dW, dmu = _classifier(y, problem["W"], problem["mu"], problem["labels"])

    dK = np.zeros_like(K)
    dbeta = np.zeros_like(beta)
    n = s * d
    for j in reversed(range(N)):
        Kj, hj = K[j], h[j]
        mu = [None] * s
        if explicit:
            # xi_i = h (b_i p + sum_{k>i} a_ki mu_k), mu_i = J_i^T xi_i
            for i in reversed(range(s)):
                xi = (hj * b[i]) * p
                for k in range(i + 1, s):
                    if A[k, i] != 0:
                        xi = xi + (hj * A[k, i]) * mu[k]
                r = rows[j, i]
                mu[i], dKi, dbi = _np_pullback(xi, Ys[j, i], Ss[j, i], K[r], field)
                dK[r] += dKi
                dbeta[r] += dbi
        else:
            # (I - h (A^T kron I) blockdiag(J_k^T)) xi = h (b kron p), one solve per sample
            JT = np.swapaxes(_np_field_jacobian(Ss[j], Kj, field), -1, -2)  # J_k^T, (s, m, d, d)
            M = np.eye(n) - hj * np.einsum("ki,kmac->miakc", A, JT).reshape(m, n, n)
            rhs = (hj * b[None, :, None] * p[:, None, :]).reshape(m, n, 1)
            xi_all = np.linalg.solve(M, rhs).reshape(m, s, d)
            for i in range(s):
                mu[i], dKi, dbi = _np_pullback(xi_all[:, i], Ys[j, i], Ss[j, i], Kj, field)
                dK[j] += dKi
                dbeta[j] += dbi
        p = p + sum(mu)
    return Gradient(loss, *_layout_gradient(problem, dK, dbeta), dW, dmu)


# ----------------------------------------------------------------------------------------------
# PyTorch eager, autograd
# ----------------------------------------------------------------------------------------------


def torch_grad(problem):
    """The gradient by PyTorch eager autograd (float64).

    Implicit tableaux: the stages come from fixed-point iteration Y <- y + h (A kron I) F(Y),
    stopped when the largest change is below FIXED_POINT_TOL (relative), or run exactly
    UNROLLED[config] times for the configs named there (the residual goes to UNROLLED_RESIDUAL), and autograd
    differentiates through every iteration. That derivative converges to the exact one at the
    rate of the iteration, so it agrees with the implicit-function-theorem gradient to about
    1e-14 here; it is an accepted approximation, not the exact adjoint.
    """
    import torch

    _check(problem)
    A, b = problem["A"], problem["b"]
    field = problem["field"]
    explicit = is_explicit(A)
    s = b.shape[0]

    def t(x):
        return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))

    y0 = t(problem["y0"])
    K = t(problem["K"]).clone().requires_grad_(True)
    beta = t(problem["beta"]).clone().requires_grad_(True)
    params = problem.get("params", "shared")
    if params == "continuous":  # stage sets interpolated from the nodes; autograd takes dK back to them
        c = t(stage_fractions(A))
        Ks = (1.0 - c)[None, :, None, None] * K[:-1, None] + c[None, :, None, None] * K[1:, None]
        bs = (1.0 - c)[None, :, None] * beta[:-1, None] + c[None, :, None] * beta[1:, None]
    else:
        Ks, bs = K, beta  # stage: (N, s, d, d), (N, s, d)
    W = t(problem["W"]).clone().requires_grad_(True)
    mu = torch.tensor(float(problem["mu"]), dtype=torch.float64, requires_grad=True)
    labels = t(problem["labels"])
    hs = [float(x) for x in problem["h"]]

    def f(Y, Kj, bj):
        S = torch.tanh(Y @ Kj.T + bj)
        return S if field == "resnet" else -(S @ Kj)

    y = y0
    for j, hj in enumerate(hs):
        if params == "shared":
            P = [(K[j], beta[j])] * s
        else:
            P = [(Ks[j, i], bs[j, i]) for i in range(s)]
        if explicit:
            F = []
            for i in range(s):
                Yi = y
                for l in range(i):
                    if A[i, l] != 0:
                        Yi = Yi + (hj * A[i, l]) * F[l]
                F.append(f(Yi, *P[i]))
        elif problem.get("name") in UNROLLED:  # a stated number of fixed-point iterations, no test
            Y = [y] * s
            F = [f(y, *P[i]) for i in range(s)]
            for _ in range(UNROLLED[problem["name"]]):
                Y = [y + sum((hj * A[i, l]) * F[l] for l in range(s) if A[i, l] != 0) for i in range(s)]
                F = [f(Yi, *Pi) for Yi, Pi in zip(Y, P, strict=True)]
            with torch.no_grad():
                R = [y + sum((hj * A[i, l]) * F[l] for l in range(s) if A[i, l] != 0) - Y[i] for i in range(s)]
                size = 1.0 + max(float(a.abs().max()) for a in Y)
                worst = max(float(r.abs().max()) for r in R) / size
                name = problem["name"]
                UNROLLED_RESIDUAL[name] = max(UNROLLED_RESIDUAL.get(name, 0.0), worst) if j else worst
        else:
            Y = [y] * s
            F = [f(y, *P[i]) for i in range(s)]
            for _ in range(MAX_ITER + 1):
                Ynew = []
                for i in range(s):
                    Yi = y
                    for l in range(s):
                        if A[i, l] != 0:
                            Yi = Yi + (hj * A[i, l]) * F[l]
                    Ynew.append(Yi)
                with torch.no_grad():
                    change = max(float((a - c).abs().max()) for a, c in zip(Ynew, Y, strict=True))
                    size = 1.0 + max(float(a.abs().max()) for a in Ynew)
                Y = Ynew
                F = [f(Yi, *Pi) for Yi, Pi in zip(Y, P, strict=True)]
                if change <= FIXED_POINT_TOL * size:
                    break
            else:
                raise RuntimeError(f"fixed-point iteration did not converge in {MAX_ITER} steps")
        y = y + hj * sum(b[i] * F[i] for i in range(s) if b[i] != 0)

    g = torch.sigmoid(y @ W + mu)
    loss = 0.5 * torch.sum((g - labels) ** 2)
    loss.backward()
    dK, dbeta, dW = (x.grad.numpy() for x in (K, beta, W))
    return Gradient(float(loss.detach()), dK, dbeta, dW, float(mu.grad))


# ----------------------------------------------------------------------------------------------
# JAX, jit + grad
# ----------------------------------------------------------------------------------------------

_JAX_CACHE: dict = {}


def _jax_setup():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _jax_newton_stages(A, f):
    """Implicit stages Y (m, s, d) as a jax.custom_vjp: Newton forward, IFT adjoint backward."""
    jax = _jax_setup()
    import jax.numpy as jnp

    s = A.shape[0]
    Aj = jnp.asarray(A)

    def phi(Y, y, K, beta, h):  # the right-hand side of Y = phi(Y)
        return y[:, None, :] + h * jnp.einsum("il,mld->mid", Aj, f(Y, K, beta))

    def eye_minus_jacobian(Y, y, K, beta, h):  # I - dphi/dY, per sample (m, s d, s d)
        m, _, d = Y.shape

        def one(Ys, ys):
            return phi(Ys[None], ys[None], K, beta, h)[0]

        J = jax.vmap(jax.jacfwd(one))(Y, y).reshape(m, s * d, s * d)
        return jnp.eye(s * d) - J

    @jax.custom_vjp
    def stages(y, K, beta, h):
        m, d = y.shape

        def residual(Y):
            return Y - phi(Y, y, K, beta, h)

        def cond(state):
            Y, R, it = state
            return (jnp.max(jnp.abs(R)) > NEWTON_TOL * (1.0 + jnp.max(jnp.abs(Y)))) & (
                it < MAX_ITER
            )

        def body(state):
            Y, R, it = state
            M = eye_minus_jacobian(Y, y, K, beta, h)
            Y = Y - jnp.linalg.solve(M, R.reshape(m, s * d, 1)).reshape(m, s, d)
            return Y, residual(Y), it + 1

        Y0 = jnp.broadcast_to(y[:, None, :], (m, s, d))
        Y, _, _ = jax.lax.while_loop(cond, body, (Y0, residual(Y0), 0))
        return Y

    def stages_fwd(y, K, beta, h):
        Y = stages(y, K, beta, h)
        return Y, (Y, y, K, beta, h)

    def stages_bwd(res, Ybar):
        # Y = phi(Y, theta)  =>  theta_bar = (dphi/dtheta)^T (I - dphi/dY)^{-T} Ybar
        Y, y, K, beta, h = res
        m, _, d = Y.shape
        M = eye_minus_jacobian(Y, y, K, beta, h)
        lam = jnp.linalg.solve(jnp.swapaxes(M, 1, 2), Ybar.reshape(m, s * d, 1))
        _, vjp = jax.vjp(lambda *theta: phi(Y, *theta), y, K, beta, h)
        return vjp(lam.reshape(m, s, d))

    stages.defvjp(stages_fwd, stages_bwd)
    return stages


def _jax_value_and_grad(A, b, field, params="shared"):
    key = (A.tobytes(), A.shape, b.tobytes(), field, params)
    if key in _JAX_CACHE:
        return _JAX_CACHE[key]
    jax = _jax_setup()
    import jax.numpy as jnp

    s = b.shape[0]
    shared = params == "shared"

    def f(Y, K, beta):
        """The field on Y (..., d) with one K (d, d), or on all stages Y (m, s, d) with K (s, d, d)."""
        if K.ndim == 2:
            S = jnp.tanh(Y @ K.T + beta)
            return S if field == "resnet" else -(S @ K)
        S = jnp.tanh(jnp.einsum("mic,iac->mia", Y, K) + beta)
        return S if field == "resnet" else -jnp.einsum("mia,iac->mic", S, K)

    if is_explicit(A):

        def layer(y, K, beta, h):
            F = []
            for i in range(s):
                Yi = y
                for l in range(i):
                    if A[i, l] != 0:
                        Yi = Yi + (h * float(A[i, l])) * F[l]
                F.append(f(Yi, K, beta) if shared else f(Yi, K[i], beta[i]))
            return y + h * sum(float(b[i]) * F[i] for i in range(s) if b[i] != 0)

    else:
        stages = _jax_newton_stages(A, f)
        bj = jnp.asarray(b)

        def layer(y, K, beta, h):
            F = f(stages(y, K, beta, h), K, beta)
            return y + h * jnp.einsum("i,mid->md", bj, F)

    def loss(K, beta, W, mu, y0, h, labels):
        def body(y, xs):
            return layer(y, *xs), None

        if params == "continuous":  # interpolate the stage sets; autodiff takes dK back to the nodes
            c = jnp.asarray(stage_fractions(A))
            K = (1.0 - c)[None, :, None, None] * K[:-1, None] + c[None, :, None, None] * K[1:, None]
            beta = (1.0 - c)[None, :, None] * beta[:-1, None] + c[None, :, None] * beta[1:, None]
        yN, _ = jax.lax.scan(body, y0, (K, beta, h))
        g = jax.nn.sigmoid(yN @ W + mu)
        return 0.5 * jnp.sum((g - labels) ** 2)

    fn = jax.jit(jax.value_and_grad(loss, argnums=(0, 1, 2, 3)))
    _JAX_CACHE[key] = fn
    return fn


def jax_grad(problem):
    """The gradient by JAX (jit of value_and_grad, float64)."""
    _check(problem)
    if not is_explicit(problem["A"]) and problem["y0"].shape[1] > 16:
        raise ValueError("jax_grad: implicit tableaux up to width 16 (its per-sample Newton solves are too slow)")
    _jax_setup()
    import jax.numpy as jnp

    fn = _jax_value_and_grad(problem["A"], problem["b"], problem["field"], problem.get("params", "shared"))
    args = [jnp.asarray(problem[k]) for k in ("K", "beta", "W", "mu", "y0", "h", "labels")]
    loss, (dK, dbeta, dW, dmu) = fn(*args)
    return Gradient(float(loss), np.asarray(dK), np.asarray(dbeta), np.asarray(dW), float(dmu))


# ----------------------------------------------------------------------------------------------
# generated networks (docs/network-contract.md)
# ----------------------------------------------------------------------------------------------


def contract_grad(net) -> Callable:
    """A gradient function for any module with the network contract (``forward``, ``backward``).

    The module must have been generated for the problem's tableau; the classifier and its
    gradient are computed in numpy around it. A non-shared layout is passed as ``params=`` (with
    the default nodes, the layer boundaries); the shared one is not passed at all, so modules from
    before the layouts work too.
    """

    def grad(problem):
        params = problem.get("params", "shared")
        yN, tape = net.forward(
            problem["y0"],
            problem["K"],
            problem["beta"],
            problem["h"],
            field=problem["field"],
            activation=problem["activation"],
            **({} if params == "shared" else {"params": params}),
        )
        if getattr(tape, "failures", 0):
            raise RuntimeError(f"{tape.failures} stage solves did not converge")
        loss, p, dW, dmu = _classifier(yN, problem["W"], problem["mu"], problem["labels"])
        _, dK, dbeta, _ = net.backward(tape, p)
        return Gradient(loss, dK, dbeta, dW, dmu)

    return grad


# ==============================================================================================
# IMPLEMENTATIONS: name -> grad(problem) -> Gradient.
# >>> rkgen goes here <<<  e.g. IMPLEMENTATIONS["rkgen"] = contract_grad(rk4_net), with the
# generated module of the problem's tableau (a dict keyed by tableau name works too: wrap it in
# a function that picks net by problem["tableau"]).
# ==============================================================================================
IMPLEMENTATIONS: dict[str, Callable] = {
    "numpy": numpy_grad,
    "torch": torch_grad,
    "jax": jax_grad,
}


# ----------------------------------------------------------------------------------------------
# timing and checks
# ----------------------------------------------------------------------------------------------


MIN_SAMPLE = 0.02  # seconds: a timed sample is a loop of calls at least this long


def calls_per_sample(fn, min_time=MIN_SAMPLE):
    """How many back-to-back calls of fn() make a sample of at least ``min_time`` seconds (1, 2, 5, 10, 20, ...:
    timeit's autorange); calls this long or longer are timed one at a time."""
    n = 1
    while True:
        for step in (1, 2, 5):
            t0 = time.perf_counter()
            for _ in range(n * step):
                fn()
            if time.perf_counter() - t0 >= min_time:
                return n * step
        n *= 10


def sample_times(fn, repeats=5, min_time=MIN_SAMPLE, calls=None):
    """Seconds per call of fn() in each of ``repeats`` samples, a sample being a loop of back-to-back calls lasting
    at least ``min_time`` (:func:`calls_per_sample`; ``calls``, when given, is that count, found once by the caller
    for samples taken one at a time), divided by its count: steady state, as a training loop calls a
    gradient. Timing single calls of a sub-millisecond function would measure its first calls after another
    implementation has run (cold caches, sleeping threads) and the clock's granularity; on a 2-core VM that
    inflated one 0.23 ms gradient to a median of 0.57 ms."""
    n = calls or calls_per_sample(fn, min_time)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        times.append((time.perf_counter() - t0) / n)
    return times


def time_it(fn, repeats=5, warmup=1, min_time=MIN_SAMPLE):
    """Median wall time of one call of fn() in seconds, over ``repeats`` samples (:func:`sample_times`) after
    ``warmup`` untimed calls."""
    for _ in range(warmup):
        fn()
    return statistics.median(sample_times(fn, repeats, min_time))


def relative_difference(g1: Gradient, g2: Gradient) -> float:
    """max |g1 - g2| / max |g2| over dK, dbeta, dW, dmu together."""
    a = np.concatenate([np.ravel(g1.dK), np.ravel(g1.dbeta), np.ravel(g1.dW), [g1.dmu]])
    c = np.concatenate([np.ravel(g2.dK), np.ravel(g2.dbeta), np.ravel(g2.dW), [g2.dmu]])
    return float(np.max(np.abs(a - c)) / np.max(np.abs(c)))


def complex_step_check(tableau, field, seed=0, m=4, d=3, N=2, step=0.3):
    """numpy_grad against complex steps through tests/reference.py (an independent forward)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
    import reference

    rng = np.random.default_rng(seed)
    A, b = TABLEAUX[tableau]
    prob = {
        "A": A,
        "b": b,
        "y0": rng.normal(size=(m, d)),
        "K": rng.normal(size=(N, d, d)) / np.sqrt(d),
        "beta": rng.normal(size=(N, d)),
        "h": np.array([step, -0.5 * step][:N]),
        "W": rng.normal(size=d),
        "mu": 0.3,
        "labels": (np.arange(m) % 2).astype(float),
        "field": field,
        "activation": "tanh",
    }

    def J(K, beta, W, mu):
        yN = reference.rk_forward(A, b, prob["y0"], K, beta, prob["h"], field, "tanh")
        g = 1.0 / (1.0 + np.exp(-(yN @ W + mu)))
        return 0.5 * np.sum((g - prob["labels"]) ** 2)

    params = [np.array(prob[k], dtype=complex) for k in ("K", "beta", "W", "mu")]
    grads = [np.zeros(P.shape) for P in params]
    for P, G in zip(params, grads, strict=True):
        for idx in np.ndindex(*P.shape):
            saved = P[idx]
            P[idx] = saved + 1e-30j
            G[idx] = J(*params).imag / 1e-30
            P[idx] = saved
    cs = Gradient(float(J(*params).real), grads[0], grads[1], grads[2], float(grads[3]))
    return relative_difference(numpy_grad(prob), cs)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", default=list(CONFIGS), help="configs to time")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    available = dict(IMPLEMENTATIONS)
    for name in ("torch", "jax"):
        try:
            __import__(name)
        except ImportError:
            print(f"{name} not installed: skipped")
            available.pop(name)
    torch = sys.modules.get("torch")
    default_threads = torch.get_num_threads() if torch else None

    print("== agreement ==")
    for tableau in TABLEAUX:
        for field in ("resnet", "stable"):
            err = complex_step_check(tableau, field)
            print(f"numpy vs complex step (tests/reference.py), {tableau:8s} {field:6s}: {err:.1e}")
    worst = 0.0
    for config in ("A-euler", "A-rk4", "A-midpoint"):
        for field in ("resnet", "stable"):
            problem = make_problem(config, args.seed, field=field)
            grads = {name: fn(problem) for name, fn in available.items()}
            base = grads["numpy"]
            for name, g in grads.items():
                if name != "numpy":
                    err = relative_difference(g, base)
                    worst = max(worst, err)
                    dloss = abs(g.loss - base.loss) / abs(base.loss)
                    print(
                        f"{config:11s} {field:6s} {name:6s} vs numpy: "
                        f"gradient {err:.1e}, loss {dloss:.1e}"
                    )
    for config in ("A-euler", "A-rk4"):  # the other layouts (numpy: explicit tableaux only)
        for params in PARAMS[1:]:
            for field in ("resnet", "stable"):
                problem = make_problem(config, args.seed, field=field, params=params)
                grads = {name: fn(problem) for name, fn in available.items()}
                for name, g in grads.items():
                    if name != "numpy":
                        err = relative_difference(g, grads["numpy"])
                        worst = max(worst, err)
                        print(f"{config:11s} {field:6s} {params:10s} {name:6s} vs numpy: gradient {err:.1e}")
    print(f"worst relative gradient difference: {worst:.1e}", "(ok)" if worst < 1e-10 else "(FAIL)")

    print("== median time per gradient (forward + loss + backward) ==")
    for config in args.configs:
        problem = make_problem(config, args.seed)
        row = {}
        for name, fn in available.items():
            call = functools.partial(fn, problem)
            if name == "torch":
                for threads in sorted({1, default_threads}):
                    torch.set_num_threads(threads)
                    row[f"torch({threads}t)"] = time_it(call, args.repeats)
                torch.set_num_threads(default_threads)
            else:
                row[name] = time_it(call, args.repeats)
        print(f"{config:11s} " + "  ".join(f"{k} {v * 1e3:8.2f} ms" for k, v in row.items()))
    return 0 if worst < 1e-10 else 1


if __name__ == "__main__":
    sys.exit(main())
