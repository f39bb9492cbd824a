"""What every implicit tableau's stage solves share: f and its Jacobian on a block, the small solves, Newton's test.

The stage solves run on a whole block of samples at once, the sample index innermost as in the explicit stages
(:mod:`rkgen.runtime.products`): f, sigma' and the residual of every sample in one vectorised pass, then each
sample's small linear solve, then each sample's update and convergence test. Every sample keeps its own
iteration: it is frozen (no longer updated) once it has converged or failed, so its result is bit for bit the
one it gets when solved alone, in whatever block, batch or thread it lands. The Newton iterations themselves are
in :mod:`rkgen.runtime.dirk` (stage by stage) and :mod:`rkgen.runtime.firk` (the coupled s d system); the
residuals and Newton matrices they solve are printed from :mod:`rkgen.adjoint`.
"""

import math

from numba import njit

from .activations import _activate, _derivative
from .fastmath import _wide_vectors
from .products import _FAST, _affine, _kx, _wide

NEWTON_TOL = 1e-13  # relative size of the last Newton update at which a stage solve has converged
NEWTON_MAXITER = 50


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _f_and_jacobian(Kj, bj, Y, Z, S, D, F, field, act, d, nw):
    """F = f(Y), S = sigma(K Y + beta) and D = sigma'(K Y + beta) on a block (d, nw).

    The Jacobian of f at sample q is kept in factored form: J = diag(D_q) K (resnet) or -K^T diag(D_q) K
    (stable); the solves below build what they need of it. For the resnet field F is S itself (the caller
    passes the same array). D is taken from S as the backward pass takes it (:func:`_derivative`), so both
    passes use one sigma'."""
    _wide_vectors()
    _affine(Kj, bj, Y, Z, d, nw)
    _activate(Z, S, act, d, nw)
    _derivative(S, D, act, d, nw)
    if field != 0:
        _kx(Kj, S, F, d, nw, True)
        for a in range(d):
            for q in range(nw):
                F[a, q] = -F[a, q]


@njit(cache=True, error_model="numpy", inline="always")
def _jacobian(Kj, Dk, q, J, field, transpose, d):
    """J (or J^T) of sample q of a block: J = diag(D) K (resnet) or -K^T diag(D) K (stable, symmetric)."""
    if field == 0:
        for a in range(d):
            for k in range(d):
                if transpose:
                    J[k, a] = Dk[a, q] * Kj[a, k]
                else:
                    J[a, k] = Dk[a, q] * Kj[a, k]
    else:
        for k in range(d):
            for l in range(d):
                acc = 0.0
                for a in range(d):
                    acc -= Kj[a, k] * Dk[a, q] * Kj[a, l]
                J[k, l] = acc


@njit(cache=True, error_model="numpy")
def _jacobian_t(Kj, Dk, q, Jt, field, d):
    """Jt = J^T for sample q of a block, J = diag(D) K (resnet) or -K^T diag(D) K (stable)."""
    _jacobian(Kj, Dk, q, Jt, field, True, d)


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _jacobian_t_product(Kj, D, X, G, U, field, d, nw):
    """G = J_q^T X[:, q] for every column of a block, as products with K (BLAS for wide layers): K^T (D * X)
    (resnet) or -K^T (D * (K X)) (stable). U (d, nw) is scratch."""
    _wide_vectors()
    if field == 0:
        for a in range(d):
            for q in range(nw):
                U[a, q] = D[a, q] * X[a, q]
        _kx(Kj, U, G, d, nw, True)
    else:
        _kx(Kj, X, U, d, nw, False)
        for a in range(d):
            for q in range(nw):
                U[a, q] *= D[a, q]
        _kx(Kj, U, G, d, nw, True)
        for a in range(d):
            for q in range(nw):
                G[a, q] = -G[a, q]


@njit(cache=True, error_model="numpy")
def _jacobian_block(Kj, D, J, field, transpose, d, nw):
    """J[:, :, q] = J_q (or J_q^T) for every column q < nw of a block, J_q = diag(D_q) K (resnet) or
    -K^T diag(D_q) K (stable, symmetric); the sample index innermost, so every loop vectorises."""
    _wide_vectors()
    if field == 0:
        for a in range(d):
            for k in range(d):
                if transpose:
                    w = Kj[k, a]
                    for q in range(nw):
                        J[a, k, q] = D[k, q] * w
                else:
                    w = Kj[a, k]
                    for q in range(nw):
                        J[a, k, q] = D[a, q] * w
    else:
        for k in range(d):
            for l in range(d):
                for q in range(nw):
                    J[k, l, q] = 0.0
                for a in range(d):
                    w = Kj[a, k] * Kj[a, l]
                    for q in range(nw):
                        J[k, l, q] -= w * D[a, q]


@njit(cache=True, error_model="numpy")
def _block_solve(M, R, piv, big, bad, n, nw):
    """Solve M[:, :, q] x = R[:, q] in place for every column q < nw of a block (x returned in R), by Gaussian
    elimination with partial pivoting, the sample index innermost: each sample's own pivot rows, the rows
    exchanged by selects, so every loop vectorises and each column's result is that of :func:`_solve` on it
    alone. A column whose matrix is singular to working precision (a zero or non-finite pivot, as
    :func:`_solve` decides) is set to inf, so that Newton's test fails that sample."""
    _wide_vectors()
    inf = math.inf
    for q in range(nw):
        bad[q] = 0
    for col in range(n):
        for q in range(nw):
            piv[q] = col
            big[q] = abs(M[col, col, q])
        for row in range(col + 1, n):
            for q in range(nw):
                v = abs(M[row, col, q])
                better = v > big[q]
                big[q] = v if better else big[q]
                piv[q] = row if better else piv[q]
        for q in range(nw):
            ok = big[q] != 0.0 and big[q] < inf
            bad[q] = bad[q] if ok else 1
        for row in range(col + 1, n):
            for k in range(col, n):
                for q in range(nw):
                    swap = piv[q] == row
                    u, v = M[col, k, q], M[row, k, q]
                    M[col, k, q] = v if swap else u
                    M[row, k, q] = u if swap else v
            for q in range(nw):
                swap = piv[q] == row
                u, v = R[col, q], R[row, q]
                R[col, q] = v if swap else u
                R[row, q] = u if swap else v
        for q in range(nw):
            big[q] = 1.0 / M[col, col, q]
        for row in range(col + 1, n):
            for q in range(nw):
                M[row, col, q] *= big[q]
            for k in range(col + 1, n):
                for q in range(nw):
                    M[row, k, q] -= M[row, col, q] * M[col, k, q]
            for q in range(nw):
                R[row, q] -= M[row, col, q] * R[col, q]
    for col in range(n - 1, -1, -1):
        for k in range(col + 1, n):
            for q in range(nw):
                R[col, q] -= M[col, k, q] * R[k, q]
        for q in range(nw):
            R[col, q] = R[col, q] / M[col, col, q]
    for q in range(nw):
        if bad[q]:
            for a in range(n):
                R[a, q] = inf


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


@njit(cache=True, error_model="numpy")
def _shifted_solve(Kj, c, D, R, ws, status, field, transpose, d, nw):
    """R[:, q] <- (I - c J_q)^-1 R[:, q] (or with J_q^T) at every sample q < nw with status[q] == 0.

    d = 1 and d = 2 are solved for all nw columns in one vectorised pass (d = 2: Gaussian elimination with
    partial pivoting written out, the row exchange by selects), narrow blocks by :func:`_block_solve`, wide ones
    one sample at a time. A singular matrix (a zero or non-finite pivot, as :func:`_solve` decides) leaves an
    infinite column, so that Newton's test fails that sample. ``ws`` is the driver's work tuple."""
    _wide_vectors()
    inf = math.inf
    if d == 1:
        k = Kj[0, 0]
        for q in range(nw):
            j = D[0, q] * k if field == 0 else -(k * D[0, q] * k)
            m = 1.0 - c * j
            ok = m != 0.0 and abs(m) < inf
            x = R[0, q] / m
            R[0, q] = x if ok else inf
        return
    if d == 2:
        k00, k01, k10, k11 = Kj[0, 0], Kj[0, 1], Kj[1, 0], Kj[1, 1]
        for q in range(nw):
            d0, d1 = D[0, q], D[1, q]
            if field == 0:
                if transpose:  # J^T[a, k] = D[k] K[k, a]
                    j00, j01, j10, j11 = d0 * k00, d1 * k10, d0 * k01, d1 * k11
                else:
                    j00, j01, j10, j11 = d0 * k00, d0 * k01, d1 * k10, d1 * k11
            else:
                j00 = -(k00 * d0 * k00 + k10 * d1 * k10)
                j01 = -(k00 * d0 * k01 + k10 * d1 * k11)
                j10 = j01
                j11 = -(k01 * d0 * k01 + k11 * d1 * k11)
            m00, m01, m10, m11 = 1.0 - c * j00, -c * j01, -c * j10, 1.0 - c * j11
            r0, r1 = R[0, q], R[1, q]
            swap = abs(m10) > abs(m00)
            p00 = m10 if swap else m00
            p01 = m11 if swap else m01
            pr = r1 if swap else r0
            o00 = m00 if swap else m10
            o01 = m01 if swap else m11
            orr = r0 if swap else r1
            f = o00 * (1.0 / p00)
            u11 = o01 - f * p01
            x1 = (orr - f * pr) / u11
            x0 = (pr - p01 * x1) / p00
            ok = p00 != 0.0 and abs(p00) < inf and u11 != 0.0 and abs(u11) < inf
            R[0, q] = x0 if ok else inf
            R[1, q] = x1 if ok else inf
        return
    Mb, piv, big, bad, r1 = ws[4], ws[7], ws[8], ws[9], ws[10]
    if not _wide(d, R.shape[1]):  # the whole block at once
        _jacobian_block(Kj, D, Mb, field, transpose, d, nw)
        for a in range(d):
            for k in range(d):
                for q in range(nw):
                    Mb[a, k, q] = -c * Mb[a, k, q]
            for q in range(nw):
                Mb[a, a, q] += 1.0
        _block_solve(Mb, R, piv, big, bad, d, nw)
        return
    for q in range(nw):  # wide blocks: one sample at a time, in a one-column block
        if status[q] != 0:
            continue
        _jacobian(Kj, D, q, Mb[:, :, 0], field, transpose, d)
        for a in range(d):
            r1[a, 0] = R[a, q]
            for k in range(d):
                Mb[a, k, 0] = -c * Mb[a, k, 0]
            Mb[a, a, 0] += 1.0
        _block_solve(Mb, r1, piv, big, bad, d, 1)
        for a in range(d):
            R[a, q] = r1[a, 0]


@njit(cache=True, error_model="numpy", inline="always")
def _stop_state(x, n):
    """The state of an iteration whose test says stop: 1 (converged) when all n iterates x are finite, else -1."""
    for a in range(n):
        if not abs(x[a]) < math.inf:
            return -1
    return 1


@njit(cache=True, error_model="numpy", inline="always")
def _newton_state(it, step, prev, size, x, n):
    """Newton's one convergence test, after the update of iteration ``it``: 1 converged, 0 not yet, -1 failed.

    ``step`` and ``size`` are the largest |update| and |iterate| (taken with max(), which drops a NaN), ``prev``
    the previous step, ``x`` the n iterates. Converged when the update is below the tolerance, or the error left
    after it is below a hundredth of it (NEWTON_TOL 1e-2 (1 + size)), estimated from the ratio theta of successive
    updates: theta / (1 - theta) step where the iteration contracts (theta < 0.5), and, once the updates fall
    quadratically (theta <= 0.01: Newton's Jacobian is exact at every iterate), theta^2 step, the next update of
    a quadratic rate (step^3 / prev^2). The quadratic estimate saves the last iteration where its update would be
    at rounding: implicit midpoint, width 2, 5 layers, h = 0.1, 1000 samples, stops after 3 iterations instead of
    4 (the fourth update, in a numpy model of its first layer, was at most 1.2e-16 relative). Every iterate must
    be finite. An infinite update fails at once. A NaN never leaves the iteration again (it reaches f, and so the
    next update), so it is enough to look for one when the iteration would stop (:func:`_stop_state`)."""
    if not step < math.inf:
        return -1
    theta = step / prev
    tol = NEWTON_TOL * 1e-2 * (1.0 + size)
    left = theta / (1.0 - theta) * step if theta > 0.01 else theta * theta * step
    if step <= NEWTON_TOL * (1.0 + size) or (it > 1 and theta < 0.5 and left <= tol):
        return _stop_state(x, n)
    return 0


@njit(cache=True, error_model="numpy", inline="always")
def _fixed_point_state(it, step, prev, size, x, n):
    """The test of a fixed-point iteration (wide layers), after the update of iteration ``it``: 1 converged, 0 not
    yet, -1 handed over to Newton.

    Converged when the error left, estimated from the contraction rate theta of successive updates, is below the
    bound Newton's test also accepts (NEWTON_TOL 1e-2 (1 + size)), or the update is that small itself, and every
    iterate is finite. A sample whose iteration does not contract (theta >= 0.5 from the third iteration on), or
    whose update or iterate is not finite, goes to Newton, which decides whether its solve fails."""
    if not step < math.inf:
        return -1
    theta = step / prev
    tol = NEWTON_TOL * 1e-2 * (1.0 + size)
    if step <= tol or (it > 1 and theta < 0.5 and theta / (1.0 - theta) * step <= tol):
        return _stop_state(x, n)
    if it > 2 and not theta < 0.5:
        return -1
    return 0


@njit(cache=True, error_model="numpy")
def _newton_update(it, X, R, status, prev, n, nb, fixed=False):
    """X[:, q] += R[:, q] and Newton's test for every sample q < nb still iterating (status 0); a sample that
    converges (1) or fails (-1) is frozen from then on. X and R are (n, nw): n unknowns per sample. ``fixed``:
    the test of a fixed-point iteration instead (:func:`_fixed_point_state`; -1 then hands the sample to Newton).

    R is the caller's scratch, recomputed before its next use (every caller: the DIRK and coupled Newton solves,
    the fixed points of wide layers): the update and each sample's largest |update| and |iterate| run in passes
    over the whole block that vectorise, the update to the samples still iterating by a select, the two maxima
    written over R's first two rows (n >= 2) and taken with max() in the order of the unknowns, so that a NaN is
    dropped as a per-sample loop drops it. Only the test runs per sample. Implicit midpoint, width 2, 5 layers,
    1000 samples (Intel Xeon, one thread): a per-sample loop was 39% of the forward pass, these passes take it to
    0.84-0.87x the time.

    Returns (samples still iterating, samples that converged at this iteration)."""
    _wide_vectors()
    for a in range(n):
        for q in range(nb):
            x = X[a, q] + R[a, q]
            X[a, q] = x if status[q] == 0 else X[a, q]
    if n >= 2:
        for q in range(nb):
            R[0, q] = max(0.0, abs(R[0, q]))
        for a in range(1, n):
            for q in range(nb):
                R[0, q] = max(R[0, q], abs(R[a, q]))
        for q in range(nb):
            R[1, q] = max(0.0, abs(X[0, q]))
        for a in range(1, n):
            for q in range(nb):
                R[1, q] = max(R[1, q], abs(X[a, q]))
    active = 0
    done = 0
    for q in range(nb):
        if status[q] != 0:
            continue
        if n >= 2:
            step, size = R[0, q], R[1, q]
        else:
            step, size = max(0.0, abs(R[0, q])), max(0.0, abs(X[0, q]))
        if fixed:
            state = _fixed_point_state(it, step, prev[q], size, X[:, q], n)
        else:
            state = _newton_state(it, step, prev[q], size, X[:, q], n)
        if state == 0:
            prev[q] = step
            active += 1
        else:
            status[q] = state
            done += state > 0
    return active, done


@njit(cache=True, error_model="numpy", inline="always")
def _newton_start(status, prev, nb, nw):
    """Every real sample iterating (status 0, no previous step); padding columns never iterate."""
    for q in range(nb):
        status[q] = 0
        prev[q] = math.inf
    for q in range(nb, nw):
        status[q] = 1


@njit(cache=True, error_model="numpy", inline="always")
def _newton_resume(status, prev, nb):
    """After a fixed-point phase: every sample that has not converged (status 0 or -1) iterates again, now by
    Newton from where it is. Returns how many do."""
    active = 0
    for q in range(nb):
        if status[q] != 1:
            status[q] = 0
            prev[q] = math.inf
            active += 1
    return active


@njit(cache=True, error_model="numpy", inline="always")
def _newton_failures(status, nb):
    """Samples whose solve failed or did not converge within NEWTON_MAXITER iterations."""
    failed = 0
    for q in range(nb):
        failed += status[q] != 1
    return failed
