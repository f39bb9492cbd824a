"""An independent reference implementation of Runge-Kutta networks, for tests.

Plain numpy, written from the mathematics (docs/network-contract.md, ../shared/notes/math.md
section 1), not from any generated code. It is slow and meant to be read.

One layer j with parameters (K_j, beta_j) and step h_j maps y (m samples of width d, one sample
a row) to

    Y_i = y + h_j * sum_l a_il F_l,      F_i = f(Y_i),      i = 1..s
    y_next = y + h_j * sum_i b_i F_i

with the field f(y) = sigma(K y + beta) ("resnet") or f(y) = -K^T sigma(K y + beta) ("stable").
In row form, for a batch Y of shape (m, d): Z = Y @ K.T + beta and F = sigma(Z) or
F = -sigma(Z) @ K.

Parameter layouts: F_i = f(Y_i) uses the parameters of its stage. They are given either per layer,
K (N, d, d) and beta (N, d), shared by the s stages of a layer, or per stage, K (N, s, d, d) and
beta (N, s, d), stage i of layer j using K[j, i] and beta[j, i]; the functions below tell the two
apart by the number of axes of K. A third layout, nodal values at fixed node times interpolated
linearly in time at the stage times, is mapped onto the stage layout by
:func:`continuous_stage_parameters`; :func:`complex_step_gradient` differentiates through that map
(``params="continuous"``).

Three things are offered:

- :func:`rk_forward` evaluates the network. It accepts complex input, and everything on its path
  is analytic (relu is taken piecewise as ``where(Re z > 0, z, 0)``), so a complex step gives
  derivatives to rounding.
- :func:`complex_step_gradient` differentiates ``J = sum(W * y_N)`` by complex steps, one entry
  at a time (in any of the three layouts).
- :func:`hand_reverse_gradient` differentiates the same loss by a reverse pass written by hand:
  for an explicit tableau it runs the forward code backwards line by line (stage s down to
  stage 1); for an implicit tableau it applies the implicit function theorem to the converged
  stage system (one transposed linear solve per layer). It deliberately does not use the
  symplectic-partner tableau, which is what the generated code uses.

>>> import numpy as np
>>> A, b = np.array([[0.0]]), np.array([1.0])            # forward Euler
>>> y0, K, beta, h = np.ones((1, 1)), np.zeros((1, 1, 1)), np.zeros((1, 1)), np.array([0.5])
>>> rk_forward(A, b, y0, K, beta, h)                       # y + h * tanh(0)
array([[1.]])
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "FIELDS",
    "activation_derivative",
    "activation_function",
    "complex_step_gradient",
    "continuous_stage_parameters",
    "field_jacobian",
    "hand_reverse_gradient",
    "is_explicit",
    "rk_forward",
    "vector_field",
]

FIELDS = ("resnet", "stable")
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid")

NEWTON_TOL = 1e-15  # residual, relative to the size of the terms of the stage equation
NEWTON_MAX_ITER = 100
# extra Newton steps after convergence, complex input only: the convergence test sees the real
# part, and these steps settle the imaginary part of a complex step to rounding as well
NEWTON_POLISH = 2


# --------------------------------------------------------------------------------------------------
# activations: analytic on the complex path, numerically stable on the real one
# --------------------------------------------------------------------------------------------------


def _positive(z):
    """Boolean mask Re z > 0 (the branch selector; the branches themselves are analytic)."""
    return np.real(z) > 0


def _branch_abs(z):
    """z where Re z > 0, else -z: |z| for real z, and analytic on each branch for complex z."""
    return np.where(_positive(z), z, -z)


def _sigmoid(z):
    # e = exp(-|z|) never overflows: sigmoid(z) = 1 / (1 + e) for Re z > 0, else e / (1 + e).
    e = np.exp(-_branch_abs(z))
    return np.where(_positive(z), 1.0, e) / (1.0 + e)


def _softplus(z):
    # log(1 + e^z) = max(z, 0) + log1p(exp(-|z|)), with |z| and max taken branchwise.
    return np.where(_positive(z), z, 0.0) + np.log1p(np.exp(-_branch_abs(z)))


def activation_function(z, activation):
    """sigma(z), elementwise."""
    if activation == "tanh":
        return np.tanh(z)
    if activation == "relu":
        return np.where(_positive(z), z, 0.0)
    if activation == "softplus":
        return _softplus(z)
    if activation == "sigmoid":
        return _sigmoid(z)
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


def activation_derivative(z, activation):
    """sigma'(z), elementwise (relu' is 0 at 0, as in the contract)."""
    # tanh' and sigmoid' are even functions of z: with e = exp(-|z|) (|z| taken branchwise, so
    # analytic), tanh'(z) = 4 e^2 / (1 + e^2)^2 and sigmoid'(z) = e / (1 + e)^2, accurate in the
    # tails where 1 - tanh^2 and g (1 - g) cancel.
    if activation == "tanh":
        e2 = np.exp(-2.0 * _branch_abs(z))
        return 4.0 * e2 / (1.0 + e2) ** 2
    if activation == "relu":
        return np.where(_positive(z), 1.0, 0.0).astype(np.result_type(z, float))
    if activation == "softplus":
        return _sigmoid(z)
    if activation == "sigmoid":
        e = np.exp(-_branch_abs(z))
        return e / (1.0 + e) ** 2
    raise ValueError(f"unknown activation {activation!r}; expected one of {ACTIVATIONS}")


# --------------------------------------------------------------------------------------------------
# the vector field, its Jacobian and its pullback (row form: the last axis is the width d)
# --------------------------------------------------------------------------------------------------


def _check_field(field):
    if field not in FIELDS:
        raise ValueError(f"unknown field {field!r}; expected one of {FIELDS}")


def vector_field(Y, K, beta, field="resnet", activation="tanh"):
    """f at every row of Y (shape (..., d)).

    resnet: sigma(Y K^T + beta);   stable: -sigma(Y K^T + beta) K.
    """
    _check_field(field)
    S = activation_function(Y @ K.T + beta, activation)
    return S if field == "resnet" else -(S @ K)


def field_jacobian(Y, K, beta, field="resnet", activation="tanh"):
    """df/dy at every row of Y: shape (..., d, d), entry [a, c] = dF_a / dY_c.

    resnet: diag(sigma'(z)) K;   stable: -K^T diag(sigma'(z)) K.
    """
    _check_field(field)
    D = activation_derivative(Y @ K.T + beta, activation)
    DK = D[..., :, None] * K  # diag(D) K
    return DK if field == "resnet" else -(K.T @ DK)


def _field_pullback(Y, K, beta, Fbar, field, activation):
    """Reverse of ``F = vector_field(Y, K, beta)`` for a batch Y (m, d) and cotangent Fbar (m, d).

    Returns (Ybar, Kbar, betabar), written line by line from the forward code:
        Z = Y @ K.T + beta;   S = sigma(Z);   F = S  or  F = -(S @ K).
    """
    Z = Y @ K.T + beta
    S = activation_function(Z, activation)
    if field == "resnet":
        Sbar = Fbar
        Kbar = np.zeros_like(K, dtype=np.result_type(K, Fbar))
    else:
        Sbar = -(Fbar @ K.T)  # F[m, c] = -sum_a S[m, a] K[a, c]
        Kbar = -(S.T @ Fbar)
    Zbar = Sbar * activation_derivative(Z, activation)
    Kbar = Kbar + Zbar.T @ Y  # Z[m, a] = sum_c Y[m, c] K[a, c] + beta[a]
    betabar = Zbar.sum(axis=0)
    Ybar = Zbar @ K
    return Ybar, Kbar, betabar


# --------------------------------------------------------------------------------------------------
# forward pass
# --------------------------------------------------------------------------------------------------


def is_explicit(A):
    """True when A is strictly lower triangular (every stage depends only on earlier ones)."""
    A = np.asarray(A)
    return bool(np.all(np.triu(A) == 0))


def _as_inputs(A, b, y0, K, beta, h):
    """Checked arrays of one dtype, the parameters per stage: (A, b, y0, K (N, s, d, d),
    beta (N, s, d), h, shared), with ``shared`` True when K and beta were given per layer (each
    layer's set is then repeated for its s stages)."""
    A, b, y0, K, beta, h = (np.asarray(x) for x in (A, b, y0, K, beta, h))
    dtype = np.result_type(A, b, y0, K, beta, h, np.float64)
    A, b, y0, K, beta, h = (x.astype(dtype) for x in (A, b, y0, K, beta, h))
    s = b.shape[0]
    if A.shape != (s, s):
        raise ValueError(f"A has shape {A.shape}, expected {(s, s)} for b of length {s}")
    if y0.ndim != 2:
        raise ValueError(f"y0 must be (m, d), got shape {y0.shape}")
    m, d = y0.shape
    N = h.shape[0]
    shared = K.ndim == 3
    if shared:
        fits = K.shape == (N, d, d) and beta.shape == (N, d)
    else:
        fits = K.shape == (N, s, d, d) and beta.shape == (N, s, d)
    if h.shape != (N,) or not fits:
        raise ValueError(
            f"shapes do not fit: y0 {y0.shape}, K {K.shape}, beta {beta.shape}, h {h.shape} "
            f"(K (N, d, d) and beta (N, d) per layer, or K (N, s, d, d) and beta (N, s, d) per stage)"
        )
    if shared:
        K = np.repeat(K[:, None], s, axis=1)
        beta = np.repeat(beta[:, None], s, axis=1)
    return A, b, y0, K, beta, h, shared


def _explicit_stages(A, y, K, beta, hj, field, activation):
    """Stages of an explicit tableau, directly: Y_i = y + h sum_{l<i} a_il F_l, F_i = f(Y_i; K_i,
    beta_i) with the stage sets K (s, d, d), beta (s, d) of the layer."""
    s = A.shape[0]
    Y = np.empty((s,) + y.shape, dtype=y.dtype)
    F = np.empty_like(Y)
    for i in range(s):
        acc = np.zeros_like(y)
        for l in range(i):
            acc = acc + A[i, l] * F[l]
        Y[i] = y + hj * acc
        F[i] = vector_field(Y[i], K[i], beta[i], field, activation)
    return Y, F


def _stage_fields(Y, K, beta, field, activation):
    """F[:, i] = f(Y[:, i]; K_i, beta_i) for sample-major stages Y (m, s, d)."""
    return np.stack(
        [vector_field(Y[:, i], K[i], beta[i], field, activation) for i in range(Y.shape[1])], axis=1
    )


def _stage_jacobians(Y, K, beta, field, activation):
    """J[:, i] = f'(Y[:, i]; K_i, beta_i), shape (m, s, d, d), for sample-major stages Y (m, s, d)."""
    return np.stack(
        [field_jacobian(Y[:, i], K[i], beta[i], field, activation) for i in range(Y.shape[1])], axis=1
    )


def _implicit_stages(A, y, K, beta, hj, field, activation, tol, max_iter):
    """Stages of any tableau by Newton's method on the s*d stage system of every sample.

    Stage i uses its own set K_i, beta_i (K (s, d, d), beta (s, d)).
    Unknowns per sample: the stage values Y (s, d). Residual R = Y - y - h (A kron I) F(Y);
    Jacobian I - h (A kron I) blockdiag(J_1..J_s) with J_k = f'(Y_k; K_k, beta_k). A sample has converged
    when max|R| <= tol * max(max|Y|, max|y|, max|h A F|) (or when a step at rounding level left
    a residual below 100 tol); for complex input NEWTON_POLISH more steps are then taken.
    """
    s = A.shape[0]
    m, d = y.shape
    n = s * d
    eye = np.eye(n)
    # sample-major stage array (m, s, d), so each sample's system is one (s*d) block
    Y = np.repeat(y[:, None, :], s, axis=1)
    tiny = np.finfo(float).tiny
    stalled = np.zeros(m, dtype=bool)
    polish_steps = NEWTON_POLISH if np.iscomplexobj(Y) else 0
    polish = 0  # polishing steps taken since convergence
    iterations = 0  # Newton steps taken before convergence (the capped count)
    while True:
        F = _stage_fields(Y, K, beta, field, activation)
        hAF = hj * np.einsum("il,mld->mid", A, F)
        R = Y - y[:, None, :] - hAF
        scale = np.maximum.reduce(
            [np.abs(Y).max(axis=(1, 2)), np.abs(y).max(axis=1), np.abs(hAF).max(axis=(1, 2))]
        )
        scale = np.maximum(scale, tiny)
        res = np.abs(R).max(axis=(1, 2))
        converged = (res <= tol * scale) | (stalled & (res <= 100 * tol * scale))
        if np.all(converged):
            if polish == polish_steps:
                return np.moveaxis(Y, 1, 0).copy(), np.moveaxis(F, 1, 0).copy()
            polish += 1
        else:
            polish = 0
            if iterations == max_iter:
                raise RuntimeError(
                    f"Newton did not converge in {max_iter} iterations (h = {hj}, "
                    f"largest relative residual {np.max(res / scale):.3e})"
                )
            iterations += 1
        Jk = _stage_jacobians(Y, K, beta, field, activation)  # (m, s, d, d)
        # block (i, l) of a sample: delta_il I - h a_il J_l
        jac = eye - hj * np.einsum("il,mlac->mialc", A, Jk).reshape(m, n, n)
        delta = np.linalg.solve(jac, R.reshape(m, n, 1)).reshape(m, s, d)
        Y = Y - delta
        # a step at rounding level: the residual cannot go lower than rounding allows
        stalled = np.abs(delta).max(axis=(1, 2)) <= 4 * np.finfo(float).eps * scale


def _layers(A, b, y0, K, beta, h, field, activation, tol, max_iter, solver):
    """Run the network: (y_N, [(y_j, Y_stages (s, m, d), F_stages (s, m, d)) for every layer j]);
    K (N, s, d, d) and beta (N, s, d) per stage (see :func:`_as_inputs`)."""
    _check_field(field)
    if solver == "auto":
        solver = "direct" if is_explicit(A) else "newton"
    if solver == "direct" and not is_explicit(A):
        raise ValueError("solver='direct' needs a strictly lower triangular A")
    if solver not in ("direct", "newton"):
        raise ValueError(f"unknown solver {solver!r}")
    y = y0
    tape = []
    for j in range(h.shape[0]):
        if solver == "direct":
            Y, F = _explicit_stages(A, y, K[j], beta[j], h[j], field, activation)
        else:
            Y, F = _implicit_stages(A, y, K[j], beta[j], h[j], field, activation, tol, max_iter)
        tape.append((y, Y, F))
        y = y + h[j] * np.einsum("i,imd->md", b, F)
    return y, tape


def rk_forward(
    A,
    b,
    y0,
    K,
    beta,
    h,
    field="resnet",
    activation="tanh",
    *,
    tol=NEWTON_TOL,
    max_iter=NEWTON_MAX_ITER,
    solver="auto",
    return_stages=False,
):
    """y_N of the Runge-Kutta network (A, b) for the batch y0 (m, d); complex input allowed.

    K (N, d, d) and beta (N, d) per layer, or K (N, s, d, d) and beta (N, s, d) per stage.

    ``solver``: "auto" (direct for a strictly lower triangular A, else Newton), "direct" or
    "newton" (Newton works for explicit tableaux too, which the tests use as a check of the
    solver). Raises RuntimeError if a Newton solve does not converge within ``max_iter``
    iterations. With ``return_stages=True`` it also returns the list of (y_j, Y (s, m, d)) per
    layer.
    """
    A, b, y0, K, beta, h, _ = _as_inputs(A, b, y0, K, beta, h)
    yN, tape = _layers(A, b, y0, K, beta, h, field, activation, tol, max_iter, solver)
    if return_stages:
        return yN, [(y, Y) for y, Y, _ in tape]
    return yN


# --------------------------------------------------------------------------------------------------
# gradients of J = sum(W * y_N)
# --------------------------------------------------------------------------------------------------


def complex_step_gradient(
    A,
    b,
    y0,
    K,
    beta,
    h,
    W,
    field="resnet",
    activation="tanh",
    eps=1e-30,
    *,
    params="auto",
    c=None,
    nodes=None,
    y0_by_columns=False,
    **forward_options,
):
    """(dJ/dy0, dJ/dK, dJ/dbeta, dJ/dh) of J = sum(W * y_N) by complex steps, one entry at a time.

    dJ/dx = Im J(x + i eps) / eps, exact to rounding for any eps small enough (no subtraction).

    ``params``: "auto" (K and beta per layer or per stage, told apart by their shapes, as in
    :func:`rk_forward`) or "continuous": K (M+1, d, d) and beta (M+1, d) are nodal values at the
    M+1 node times ``nodes`` (default, for M = N: the layer boundaries (0, cumsum(h)) of the given
    h), mapped onto the stages by :func:`continuous_stage_parameters` with the stage nodes ``c``
    (default: the row sums of A) at every evaluation. The node times are constants: a step in h moves the stage
    times, not the nodes, and the gradient is the one-sided one of the segments chosen at h.

    ``y0_by_columns``: perturb column k of every sample at once (d evaluations instead of m d).
    The samples are independent rows of the network, so row r of y_N depends on row r of y0
    alone, and Im(W_r . y_N,r) / eps is dJ/dy0[r, k] for every r at once.
    """
    W = np.asarray(W, dtype=float)
    args = [np.array(x, dtype=complex) for x in (y0, K, beta, h)]
    if params == "continuous":
        N = args[3].shape[0]
        c = np.sum(np.asarray(A, dtype=float), axis=1) if c is None else np.asarray(c, dtype=float)
        if nodes is None:
            if args[1].shape[0] != N + 1:
                raise ValueError(f"{args[1].shape[0]} nodal values for {N} steps need their node times")
            nodes = np.concatenate(([0.0], np.cumsum(np.real(args[3]))))
        nodes = np.array(nodes, dtype=float)
        if args[1].shape[0] != nodes.shape[0] or args[2].shape[0] != nodes.shape[0]:
            raise ValueError(
                f"continuous layout: K {args[1].shape}, beta {args[2].shape} and nodes {nodes.shape} "
                f"need as many nodal values as nodes"
            )

        def run(y0_, K_, beta_, h_):
            Ks, betas = continuous_stage_parameters(c, nodes, h_, K_, beta_)
            return rk_forward(A, b, y0_, Ks, betas, h_, field, activation, **forward_options)

    elif params == "auto":

        def run(y0_, K_, beta_, h_):
            return rk_forward(A, b, y0_, K_, beta_, h_, field, activation, **forward_options)

    else:
        raise ValueError(f"unknown params {params!r}; expected 'auto' or 'continuous'")

    grads = [np.zeros(P.shape) for P in args]
    if y0_by_columns:
        P = args[0]
        for k in range(P.shape[1]):
            saved = P[:, k].copy()
            P[:, k] = saved + 1j * eps
            grads[0][:, k] = np.sum(W * run(*args), axis=1).imag / eps
            P[:, k] = saved
    for n, (P, G) in enumerate(zip(args, grads, strict=True)):
        if n == 0 and y0_by_columns:
            continue
        for idx in np.ndindex(*P.shape):
            saved = P[idx]
            P[idx] = saved + 1j * eps
            G[idx] = np.sum(W * run(*args)).imag / eps
            P[idx] = saved
    return tuple(grads)


# --------------------------------------------------------------------------------------------------
# nodal parameters, linear in time (the continuous layout)
# --------------------------------------------------------------------------------------------------


def continuous_stage_parameters(c, nodes, h, K, beta):
    """Stage sets (K (N, s, d, d), beta (N, s, d)) from nodal values K (M+1, d, d), beta (M+1, d).

    The nodal values P_0..P_M sit at the node times tau_0 < ... < tau_M (constants, M >= 1, any
    number: not tied to the N layers) and are joined linearly. Layer j starts at
    t_j = h_0 + ... + h_(j-1); its stage i sits at t = t_j + c_i h_j and uses
    P(t) = P_k + w (P_(k+1) - P_k), w = (t - tau_k) / (tau_(k+1) - tau_k), on the segment k whose
    interval [tau_k, tau_(k+1)) holds t (a time on a node takes the segment that starts there;
    times before tau_1 take segment 0 and times from tau_(M-1) on take segment M-1, so the end
    segments extend beyond the ends).

    Complex-safe: the segment is chosen from the real part of t, the weights are computed in
    complex arithmetic, so a complex step in h gives the derivative along the chosen segment (the
    one-sided derivative from the right where a stage time sits on a node).
    """
    c = np.asarray(c)
    nodes = np.asarray(nodes, dtype=float)
    h, K, beta = np.asarray(h), np.asarray(K), np.asarray(beta)
    N, s = h.shape[0], c.shape[0]
    M = nodes.shape[0] - 1
    if nodes.ndim != 1 or M < 1 or K.shape[0] != M + 1 or beta.shape[0] != M + 1:
        raise ValueError(f"need M + 1 >= 2 nodes and as many nodal values, got {nodes.shape}, {K.shape}, {beta.shape}")
    if not np.all(nodes[1:] > nodes[:-1]):
        raise ValueError(f"the node times must increase, got {nodes}")
    dtype = np.result_type(c, h, K, beta, np.float64)
    Ks = np.empty((N, s) + K.shape[1:], dtype=dtype)
    betas = np.empty((N, s) + beta.shape[1:], dtype=dtype)
    start = np.zeros((), dtype=dtype)  # t_j
    for j in range(N):
        for i in range(s):
            t = start + c[i] * h[j]
            k = 0
            while k + 1 < M and nodes[k + 1] <= np.real(t):
                k += 1
            w = (t - nodes[k]) / (nodes[k + 1] - nodes[k])
            Ks[j, i] = K[k] + w * (K[k + 1] - K[k])
            betas[j, i] = beta[k] + w * (beta[k + 1] - beta[k])
        start = start + h[j]
    return Ks, betas


def _reverse_explicit_layer(A, b, y, Y, F, K, beta, hj, p, field, activation):
    """Reverse of one explicit layer, line by line; p = dJ/dy_next.

    K (s, d, d) and beta (s, d) are the stage sets of the layer. Returns (ybar, Kbar (s, d, d),
    betabar (s, d), hbar).

    Forward, in order:  for i = 1..s: Y_i = y + h sum_{l<i} a_il F_l;  F_i = f(Y_i; K_i, beta_i)
                        y_next = y + h sum_i b_i F_i
    """
    s = A.shape[0]
    # y_next = y + h * sum_i b_i F_i
    ybar = p.copy()
    Fbar = [hj * b[i] * p for i in range(s)]
    hbar = sum(np.sum(p * (b[i] * F[i])) for i in range(s))
    Kbar = np.zeros_like(K, dtype=p.dtype)
    betabar = np.zeros_like(beta, dtype=p.dtype)
    for i in reversed(range(s)):
        # F_i = f(Y_i; K_i, beta_i): every later stage has already added its share to Fbar[i]
        Ybar_i, Kbar[i], betabar[i] = _field_pullback(Y[i], K[i], beta[i], Fbar[i], field, activation)
        # Y_i = y + h * sum_{l<i} a_il F_l
        ybar = ybar + Ybar_i
        for l in range(i):
            Fbar[l] = Fbar[l] + hj * A[i, l] * Ybar_i
            hbar = hbar + A[i, l] * np.sum(Ybar_i * F[l])
    return ybar, Kbar, betabar, hbar


def _reverse_implicit_layer(A, b, y, Y, F, K, beta, hj, p, field, activation):
    """Reverse of one layer by the implicit function theorem.  p = dJ/dy_next.

    K (s, d, d) and beta (s, d) are the stage sets of the layer (F_k = f(Y_k; K_k, beta_k)).
    The stages solve G(Y; y, K, beta, h) = Y - y - h (A kron I) F(Y) = 0, and
    y_next = y + h sum_i b_i F_i(Y). With Gy = dG/dY = I - h (A kron I) blockdiag(J_k) and
    g = (d y_next / dY)^T p = (h b_k J_k^T p)_k, solve Gy^T lam = g per sample. Then for every
    parameter theta:  dJ/dtheta = p . d y_next/dtheta - lam . dG/dtheta.
    """
    s = A.shape[0]
    m, d = y.shape
    n = s * d
    Ysm = np.moveaxis(Y, 0, 1)  # (m, s, d)
    Jk = _stage_jacobians(Ysm, K, beta, field, activation)  # (m, s, d, d)
    g = hj * b[None, :, None] * np.einsum("mkac,ma->mkc", Jk, p)  # (m, s, d)
    Gy = np.eye(n) - hj * np.einsum("il,mlac->mialc", A, Jk).reshape(m, n, n)
    lam = np.linalg.solve(np.swapaxes(Gy, 1, 2), g.reshape(m, n, 1)).reshape(m, s, d)
    lam = np.moveaxis(lam, 1, 0)  # (s, m, d)
    # dG/dy = -(1 kron I)
    ybar = p + lam.sum(axis=0)
    # dG/dh = -(A kron I) F,  d y_next/dh = sum_i b_i F_i
    hbar = np.sum(p * np.einsum("i,imd->md", b, F)) + np.sum(lam * np.einsum("kl,lmd->kmd", A, F))
    # dG/dtheta = -h (A kron I) dF/dtheta,  d y_next/dtheta = h sum_l b_l dF_l/dtheta:
    # both are pullbacks through F_l with the cotangent h (b_l p + sum_k a_kl lam_k)
    Kbar = np.zeros_like(K, dtype=p.dtype)
    betabar = np.zeros_like(beta, dtype=p.dtype)
    for l in range(s):
        Fbar_l = hj * (b[l] * p + np.einsum("k,kmd->md", A[:, l], lam))
        _, Kbar[l], betabar[l] = _field_pullback(Y[l], K[l], beta[l], Fbar_l, field, activation)
    return ybar, Kbar, betabar, hbar


def hand_reverse_gradient(
    A,
    b,
    y0,
    K,
    beta,
    h,
    W,
    field="resnet",
    activation="tanh",
    *,
    method="auto",
    tol=NEWTON_TOL,
    max_iter=NEWTON_MAX_ITER,
):
    """(dJ/dy0, dJ/dK, dJ/dbeta, dJ/dh) of J = sum(W * y_N) by a hand-written reverse pass.

    ``method``: "auto" (line by line for explicit tableaux, implicit function theorem
    otherwise), "stages" (line by line; explicit only) or "ift" (implicit function theorem; any
    tableau, the forward pass then uses Newton's method).

    dK and dbeta come in the layout of K and beta: per layer (the sum over the layer's stages of
    the stage gradients) or per stage.
    """
    explicit = is_explicit(A)
    if method == "auto":
        method = "stages" if explicit else "ift"
    if method == "stages" and not explicit:
        raise ValueError("method='stages' needs a strictly lower triangular A")
    if method not in ("stages", "ift"):
        raise ValueError(f"unknown method {method!r}")
    solver = "direct" if method == "stages" else "newton"
    A, b, y0, K, beta, h, shared = _as_inputs(A, b, y0, K, beta, h)
    _, tape = _layers(A, b, y0, K, beta, h, field, activation, tol, max_iter, solver)
    reverse_layer = _reverse_explicit_layer if method == "stages" else _reverse_implicit_layer
    p = np.asarray(W, dtype=y0.dtype) * np.ones_like(y0)
    dK = np.zeros_like(K)
    dbeta = np.zeros_like(beta)
    dh = np.zeros_like(h)
    for j in reversed(range(h.shape[0])):
        y, Y, F = tape[j]
        p, dK[j], dbeta[j], dh[j] = reverse_layer(
            A, b, y, Y, F, K[j], beta[j], h[j], p, field, activation
        )
    if shared:
        return p, dK.sum(axis=1), dbeta.sum(axis=1), dh
    return p, dK, dbeta, dh
