"""Fully implicit tableaux: Newton for the coupled stages of one sample and the coupled adjoint solve (runtime).

The residual, the Newton matrix and the adjoint system are printed from :mod:`rkgen.adjoint` for each tableau
(``_newton_residual``, ``_newton_jacobian``, ``_adjoint_system``); these drivers iterate and solve.
"""

import math

from numba import njit

from ._tableau import STAGES, _adjoint_system, _newton_jacobian, _newton_residual
from .implicit import NEWTON_MAXITER, _f_and_jacobian, _jacobian_t, _newton_state, _solve
from .products import _FAST


@njit(cache=True, error_model="numpy")
def _coupled_solve(K, beta, kj, hj, y, Ys, Fs, Js, W, M, r, field, act, d):
    """Newton for the coupled stages of one sample: Y = y + h (A kron I) F(Y), stage i with the parameters
    K[kj[i]], beta[kj[i]].

    Returns the iterations used, or -1 when the solve failed."""
    n = STAGES * d
    z = W[0]
    sg = W[1]
    ds = W[2]
    for i in range(STAGES):
        for a in range(d):
            Ys[i, a] = y[a]
    flat = Ys.reshape(n)
    prev = math.inf
    for it in range(1, NEWTON_MAXITER + 1):
        for i in range(STAGES):
            _f_and_jacobian(K[kj[i]], beta[kj[i]], Ys[i], Fs[i], Js[i], z, sg, ds, field, act, d)
        _newton_residual(y, Ys, Fs, hj, r, d)
        _newton_jacobian(Js, hj, M, d)
        if not _solve(M, r, n):
            return -1
        size = 0.0
        step = 0.0
        for a in range(n):
            flat[a] += r[a]
            size = max(size, abs(flat[a]))
            step = max(step, abs(r[a]))
        state = _newton_state(it, step, prev, size, flat, n)
        if state != 0:
            return it if state > 0 else -1
        prev = step
    return -1


@njit(cache=True, error_model="numpy", inline="always", fastmath=_FAST)
def _coupled_adjoint(K, kj, D, P, eta, Js, M, r, hj, field, d, nb):
    """(I - h (A^T kron I) blockdiag(J_k^T)) eta = b kron p: one (s d) system per sample of the block."""
    n = STAGES * d
    for q in range(nb):
        for k in range(STAGES):
            _jacobian_t(K[kj[k]], D[k], q, Js[k], field, d)
        _adjoint_system(P, Js, hj, M, r, q, d)
        _solve(M, r, n)
        for i in range(STAGES):
            for a in range(d):
                eta[i, a, q] = r[i * d + a]
