"""What every implicit tableau's stage solves share: f and its Jacobian at one sample, LU, Newton's test (runtime).

The Newton iterations themselves are in :mod:`rkgen.runtime.dirk` (stage by stage) and :mod:`rkgen.runtime.firk`
(the coupled s d system); the residuals and Newton matrices they solve are printed from :mod:`rkgen.adjoint`.
"""

import math

from numba import njit

from ._tableau import STAGES
from .activations import _sigma
from .products import _FAST, _field

NEWTON_TOL = 1e-13  # relative size of the last Newton update at which a stage solve has converged
NEWTON_MAXITER = 50


@njit(cache=True, error_model="numpy")
def _f_and_jacobian(Kj, bj, y, F, J, z, sg, ds, field, act, d):
    """f(y) and its Jacobian J = df/dy for one sample y (d,)."""
    for a in range(d):
        acc = bj[a]
        for k in range(d):
            acc += Kj[a, k] * y[k]
        z[a] = acc
    for a in range(d):
        sg[a], ds[a] = _sigma(z[a], act)
    if field == 0:
        for a in range(d):
            F[a] = sg[a]
            for k in range(d):
                J[a, k] = ds[a] * Kj[a, k]
    else:
        for k in range(d):
            acc = 0.0
            for a in range(d):
                acc -= Kj[a, k] * sg[a]
            F[k] = acc
        for k in range(d):
            for l in range(d):
                acc = 0.0
                for a in range(d):
                    acc -= Kj[a, k] * ds[a] * Kj[a, l]
                J[k, l] = acc


@njit(cache=True, error_model="numpy")
def _jacobian_t(Kj, Dk, q, Jt, field, d):
    """Jt = J^T for sample q of a block, J = diag(D) K (resnet) or -K^T diag(D) K (stable)."""
    if field == 0:
        for a in range(d):
            for k in range(d):
                Jt[k, a] = Dk[a, q] * Kj[a, k]
    else:
        for k in range(d):
            for l in range(d):
                acc = 0.0
                for a in range(d):
                    acc -= Kj[a, k] * Dk[a, q] * Kj[a, l]
                Jt[l, k] = acc


@njit(cache=True, error_model="numpy")
def _solve(M, r, n):
    """Solve M x = r in place (x returned in r) by Gaussian elimination with partial pivoting.

    Returns False when M is singular to working precision."""
    for col in range(n):
        piv = col
        big = abs(M[col, col])
        for row in range(col + 1, n):
            if abs(M[row, col]) > big:
                big = abs(M[row, col])
                piv = row
        if big == 0.0 or not big < math.inf:
            return False
        if piv != col:
            for k in range(n):
                M[col, k], M[piv, k] = M[piv, k], M[col, k]
            r[col], r[piv] = r[piv], r[col]
        inv = 1.0 / M[col, col]
        for row in range(col + 1, n):
            f = M[row, col] * inv
            if f != 0.0:
                for k in range(col + 1, n):
                    M[row, k] -= f * M[col, k]
                r[row] -= f * r[col]
    for col in range(n - 1, -1, -1):
        acc = r[col]
        for k in range(col + 1, n):
            acc -= M[col, k] * r[k]
        r[col] = acc / M[col, col]
    return True


@njit(cache=True, error_model="numpy", inline="always")
def _newton_state(it, step, prev, size, x, n):
    """Newton's one convergence test, after the update of iteration ``it``: 1 converged, 0 not yet, -1 failed.

    ``step`` and ``size`` are the largest |update| and |iterate| (taken with max(), which drops a NaN), ``prev``
    the previous step, ``x`` the n iterates. Converged when the update, or the error left after it (estimated
    from the contraction rate theta of successive updates), is below the tolerance, and every iterate is finite.
    An infinite update fails at once. A NaN never leaves the iteration again (it reaches f, and so the next
    update), so it is enough to look for one when the iteration would stop. (A helper that also did the update
    and the solve ran the implicit midpoint forward pass 4% slower than this split.)"""
    if not step < math.inf:
        return -1
    theta = step / prev
    if step <= NEWTON_TOL * (1.0 + size) or (
        it > 1 and theta < 0.5 and theta / (1.0 - theta) * step <= NEWTON_TOL * 1e-2 * (1.0 + size)
    ):
        for a in range(n):
            if not abs(x[a]) < math.inf:
                return -1
        return 1
    return 0


@njit(cache=True, error_model="numpy", inline="always")
def _store_stages(Ys, Y, q, d):
    """Column q of the block's stage values from the solved stages of one sample."""
    for i in range(STAGES):
        for a in range(d):
            Y[i, a, q] = Ys[i, a]


@njit(cache=True, error_model="numpy", inline="always", fastmath=_FAST)
def _stage_fields(K, beta, kj, Y, Z, S, Fj, field, act, d, nb, nw):
    """S_i = sigma(K_i Y_i + beta_i) and F_i for every solved stage on a block (padding columns set to zero), with
    stage i's parameters K[kj[i]], beta[kj[i]]."""
    for i in range(STAGES):
        for a in range(d):
            for q in range(nb, nw):
                Y[i, a, q] = 0.0
        _field(K[kj[i]], beta[kj[i]], Y[i], Z, S[i], Fj[i], field, act, d, nw)
