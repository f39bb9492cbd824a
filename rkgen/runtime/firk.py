"""Fully implicit tableaux: Newton for the coupled stages on a block of samples and the coupled adjoint (runtime).

The residual, the Newton matrix and the adjoint system are printed from :mod:`rkgen.adjoint` for each tableau
(``_newton_residual``, ``_newton_jacobian``, ``_adjoint_system``); these drivers iterate and solve.
"""

from numba import njit

from ._tableau import STAGES, _adjoint_fixed_point, _adjoint_system, _newton_jacobian, _newton_residual
from .fastmath import _wide_vectors
from .implicit import (
    NEWTON_MAXITER,
    _block_solve,
    _f_and_jacobian,
    _jacobian,
    _jacobian_block,
    _jacobian_t_product,
    _newton_failures,
    _newton_resume,
    _newton_start,
    _newton_update,
)
from .products import _FAST, _field, _wide


@njit(cache=True, error_model="numpy")
def _coupled_solve(K, beta, kj, hj, y, Y, Z, S, Fj, ws, field, act, d, nb, nw):
    """Newton for the coupled stages on a block: Y = y + h (A kron I) F(Y), stage i with the parameters
    K[kj[i]], beta[kj[i]], from Y_i = y.

    Wide blocks (:func:`rkgen.runtime.products._wide`) first iterate the fixed point Y <- y + h (A kron I) F(Y),
    whose work is BLAS products on the whole block, with the same per-sample freezing and a test to the same
    tolerance (:func:`_fixed_point_state`); a sample whose iteration does not contract continues by Newton, solved one
    sample at a time. The iteration count then adds both.

    Every iteration evaluates f and sigma' of every stage on the whole block (vectorised) and the printed
    residual, then solves the (s d) system of each sample still iterating; a sample stops once it converges
    or fails (:func:`_newton_update`), so its stages are the ones it gets alone. S and Fj are scratch here
    (:func:`_stage_fields` evaluates the field at the solved stages). Returns (failed solves, the iteration
    at which the last sample converged)."""
    _wide_vectors()
    n = STAGES * d
    R, D, J, M, status, prev = ws[1], ws[2], ws[3], ws[4], ws[5], ws[6]
    for i in range(STAGES):
        for a in range(d):
            for q in range(nb):
                Y[i, a, q] = y[a, q]
            for q in range(nb, nw):
                Y[i, a, q] = 0.0
    X = Y.reshape((n, Y.shape[2]))
    dX = R.reshape((n, R.shape[2]))
    _newton_start(status, prev, nb, nw)
    active = nb
    it = 0
    most = 0
    wide = _wide(d, Y.shape[2])
    if wide:  # the fixed point first: its work is BLAS products on the block
        while active > 0 and it < NEWTON_MAXITER:
            it += 1
            for i in range(STAGES):
                _field(K[kj[i]], beta[kj[i]], Y[i], Z, S[i], Fj[i], field, act, d, nw)
            _newton_residual(y, Y, Fj, hj, R, d, nw)
            active, done = _newton_update(it, X, dX, status, prev, n, nb, True)
            if done > 0:
                most = it
        active = _newton_resume(status, prev, nb)
    start = it
    while active > 0 and it < start + NEWTON_MAXITER:
        it += 1
        for i in range(STAGES):
            _f_and_jacobian(K[kj[i]], beta[kj[i]], Y[i], Z, S[i], D[i], Fj[i], field, act, d, nw)
        _newton_residual(y, Y, Fj, hj, R, d, nw)
        if not wide:  # the whole block at once
            for i in range(STAGES):
                _jacobian_block(K[kj[i]], D[i], J[i], field, False, d, nw)
            _newton_jacobian(J, hj, M, d, nw)
            _block_solve(M, dX, ws[7], ws[8], ws[9], n, nw)
        else:
            _coupled_sample_solves(K, kj, hj, D, dX, ws, status, field, d, nb)
        active, done = _newton_update(it - start, X, dX, status, prev, n, nb)
        if done > 0:
            most = it
    return _newton_failures(status, nb), most


@njit(cache=True, error_model="numpy")
def _coupled_sample_solves(K, kj, hj, D, dX, ws, status, field, d, nb):
    """Wide blocks: the Newton system of each sample still iterating, one at a time in a one-column block."""
    _wide_vectors()
    n = STAGES * d
    J, M, r1 = ws[3], ws[4], ws[10]
    for q in range(nb):
        if status[q] != 0:
            continue
        for i in range(STAGES):
            _jacobian(K[kj[i]], D[i], q, J[i, :, :, 0], field, False, d)
        _newton_jacobian(J, hj, M, d, 1)
        for a in range(n):
            r1[a, 0] = dX[a, q]
        _block_solve(M, r1, ws[7], ws[8], ws[9], n, 1)
        for a in range(n):
            dX[a, q] = r1[a, 0]


@njit(cache=True, error_model="numpy", inline="always", fastmath=_FAST)
def _stage_fields(K, beta, kj, Y, Z, S, Fj, field, act, d, nw):
    """S_i = sigma(K_i Y_i + beta_i) and F_i at every solved stage of a block, with stage i's parameters
    K[kj[i]], beta[kj[i]] (the padding columns of Y are zero)."""
    for i in range(STAGES):
        _field(K[kj[i]], beta[kj[i]], Y[i], Z, S[i], Fj[i], field, act, d, nw)


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _coupled_adjoint(K, kj, D, P, eta, ws, hj, field, d, nb):
    """(I - h (A^T kron I) blockdiag(J_k^T)) eta = b kron p: one (s d) system per sample of the block, all of a
    narrow block's at once (:func:`_block_solve`). Wide blocks iterate the fixed point eta <- b kron p +
    h (A^T kron I) blockdiag(J_k^T) eta (BLAS products on the block, each sample frozen once converged to the
    stage solves' tolerance) and solve the samples whose iteration does not contract one at a time. The padding
    columns of eta are not touched: they stay zero."""
    _wide_vectors()
    n = STAGES * d
    J, M = ws[3], ws[4]
    E = eta.reshape((n, eta.shape[2]))
    if not _wide(d, eta.shape[2]):
        for k in range(STAGES):
            _jacobian_block(K[kj[k]], D[k], J[k], field, True, d, nb)
        _adjoint_system(P, J, hj, M, E, d, nb)
        _block_solve(M, E, ws[7], ws[8], ws[9], n, nb)
        return
    U, G, T, status, prev = ws[0], ws[1], ws[2], ws[5], ws[6]
    nw = eta.shape[2]
    T2 = T.reshape((n, nw))
    for k in range(STAGES):
        for a in range(d):
            for q in range(nw):
                G[k, a, q] = 0.0
    _adjoint_fixed_point(P, G, hj, eta, d, nw)  # eta = b kron p
    _newton_start(status, prev, nb, nw)
    active = nb
    it = 0
    while active > 0 and it < NEWTON_MAXITER:
        it += 1
        for k in range(STAGES):
            _jacobian_t_product(K[kj[k]], D[k], eta[k], G[k], U, field, d, nw)
        _adjoint_fixed_point(P, G, hj, T, d, nw)
        for a in range(n):
            for q in range(nw):
                T2[a, q] -= E[a, q]
        active, done = _newton_update(it, E, T2, status, prev, n, nb, True)
    r1, p1 = ws[10], ws[11]
    for q in range(nb):
        if status[q] == 1:
            continue
        for k in range(STAGES):
            _jacobian(K[kj[k]], D[k], q, J[k, :, :, 0], field, True, d)
        for a in range(d):
            p1[a, 0] = P[a, q]
        _adjoint_system(p1, J, hj, M, r1, d, 1)
        _block_solve(M, r1, ws[7], ws[8], ws[9], n, 1)
        for a in range(n):
            E[a, q] = r1[a, 0]
