"""Diagonally implicit tableaux: Newton for one stage on a block of samples and the stage's adjoint solve (runtime).

The printed layer functions call these with c = h a_ii, the stage's diagonal coefficient times the step; the
explicit part of each stage (y + h sum_(l<i) a_il F_l) and of each adjoint right-hand side is printed from
:mod:`rkgen.adjoint`.
"""

from numba import njit

from .fastmath import _wide_vectors
from .implicit import (
    NEWTON_MAXITER,
    _f_and_jacobian,
    _newton_failures,
    _newton_start,
    _newton_update,
    _shifted_solve,
)


@njit(cache=True, error_model="numpy")
def _dirk_solve(Kj, bj, c, base, Yi, Z, Si, Fi, ws, field, act, d, nb, nw):
    """Newton for one DIRK stage on a block: Yi = base + c f(Yi), c = h a_ii, from Yi = base.

    Every iteration evaluates f and sigma' on the whole block (vectorised), then solves (I - c J) dY = R for
    each sample still iterating; a sample stops once it converges or fails (:func:`_newton_update`), so its
    stage is the one it gets alone. Si and Fi are scratch here (the caller evaluates the field at the solved
    stage). Padding columns stay zero. Returns (failed solves, the iteration at which the last sample
    converged)."""
    _wide_vectors()
    R = ws[1][0]
    D = ws[2][0]
    status, prev = ws[5], ws[6]
    for a in range(d):
        for q in range(nb):
            Yi[a, q] = base[a, q]
        for q in range(nb, nw):
            Yi[a, q] = 0.0
    _newton_start(status, prev, nb, nw)
    most = 0
    active = nb
    it = 0
    while active > 0 and it < NEWTON_MAXITER:
        it += 1
        _f_and_jacobian(Kj, bj, Yi, Z, Si, D, Fi, field, act, d, nw)
        for a in range(d):
            for q in range(nw):
                R[a, q] = base[a, q] + c * Fi[a, q] - Yi[a, q]
        _shifted_solve(Kj, c, D, R, ws, status, field, False, d, nw)
        active, done = _newton_update(it, Yi, R, status, prev, d, nb)  # R is scratch from here on
        if done > 0:
            most = it
    return _newton_failures(status, nb), most


@njit(cache=True, error_model="numpy")
def _dirk_adjoint(Kj, Di, etai, c, ws, field, d, nb):
    """eta_i <- (I - c J_i^T)^-1 eta_i, c = h a_ii: one d x d solve per sample of the block (d <= 2 vectorised
    over the block, see :func:`_shifted_solve`). The padding columns are not touched: they stay zero."""
    _wide_vectors()
    status = ws[5]
    for q in range(nb):
        status[q] = 0
    _shifted_solve(Kj, c, Di, etai, ws, status, field, True, d, nb)
