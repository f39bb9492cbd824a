"""Diagonally implicit tableaux: Newton for one stage of one sample and the stage's adjoint solve (runtime).

The printed layer functions call these with the stage's diagonal coefficient a_ii; the explicit part of each
stage (y + h sum_(l<i) a_il F_l) and of each adjoint right-hand side is printed from :mod:`rkgen.adjoint`.
"""

import math

from numba import njit

from .implicit import NEWTON_MAXITER, _f_and_jacobian, _jacobian_t, _newton_state, _solve
from .products import _FAST


@njit(cache=True, error_model="numpy")
def _dirk_solve(Kj, bj, hj, aii, base, Yi, W, Jw, M, field, act, d):
    """Newton for one DIRK stage of one sample: Yi = base + h a_ii f(Yi).

    Returns the iterations used, or -1 when the solve failed."""
    F = W[0]
    z = W[1]
    sg = W[2]
    ds = W[3]
    r = W[4]
    for a in range(d):
        Yi[a] = base[a]
    prev = math.inf
    for it in range(1, NEWTON_MAXITER + 1):
        _f_and_jacobian(Kj, bj, Yi, F, Jw, z, sg, ds, field, act, d)
        for a in range(d):
            r[a] = base[a] + hj * aii * F[a] - Yi[a]
            for k in range(d):
                M[a, k] = -hj * aii * Jw[a, k]
            M[a, a] += 1.0
        if not _solve(M, r, d):
            return -1
        size = 0.0
        step = 0.0
        for a in range(d):
            Yi[a] += r[a]
            size = max(size, abs(Yi[a]))
            step = max(step, abs(r[a]))
        state = _newton_state(it, step, prev, size, Yi, d)
        if state != 0:
            return it if state > 0 else -1
        prev = step
    return -1


@njit(cache=True, error_model="numpy", inline="always", fastmath=_FAST)
def _dirk_adjoint(Kj, Di, etai, hai, Jt, M, r, field, d, nb):
    """eta_i <- (I - h a_ii J_i^T)^-1 eta_i, one d x d solve per sample of the block."""
    for q in range(nb):
        _jacobian_t(Kj, Di, q, Jt, field, d)
        for a in range(d):
            r[a] = etai[a, q]
            for k in range(d):
                M[a, k] = -hai * Jt[a, k]
            M[a, a] += 1.0
        _solve(M, r, d)
        for a in range(d):
            etai[a, q] = r[a]
