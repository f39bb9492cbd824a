"""The passes over sample blocks and layers, serial and parallel, for every generated module (runtime).

Each layer calls the tableau's printed ``_layer_forward`` / ``_layer_backward`` (see :mod:`rkgen.runtime._tableau`).
The parameters arrive as rows K[r], beta[r]; ``rows[j, i]`` is the row stage i of layer j uses (see
:mod:`rkgen.runtime.params`), so one compiled kernel serves every parameter layout.
"""

import numba
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from ._tableau import STAGES, STRUCTURE, _layer_backward, _layer_forward
from .activations import _derivative
from .blas import _BLAS_LOCAL_THREADS
from .fastmath import _wide_vectors
from .products import _FAST, _wide

# Borrowed views. Every view of an array that numba makes (K[kj[i]], Y[i], tY[blk, j], ...) holds a reference to its
# parent's memory, taken and dropped with an atomic increment and decrement of the parent's count. numba prunes
# such pairs where it can prove them balanced, but not across the calls of these kernels, and in the layer loops
# they cost a fifth of the time of 004's batches of 5 at d = 16 (a perf profile, Intel Xeon), more when two
# threads count the same array. The kernels therefore work on borrowed arrays: the same data, shape and strides,
# no reference (a null one, which the counting functions skip), so views of them cost no atomics either. Borrowing
# is sound while someone else holds the array: the kernels' arguments are held by their caller, and the work
# arrays a kernel allocates are held by it until its _alive call after the last loop. Nothing borrowed is
# returned or kept. A kernel given a new way out (a return before the end) must pass its _alive call first.


def _borrowed(a):
    """The array a (or each array of the tuple a) as a view that holds no reference to its memory (compiled code;
    :func:`_borrowed_typed`). Plain Python (NUMBA_DISABLE_JIT): a itself."""
    return a


def _alive(a):
    """Holds the array (or tuple) a up to this point of a kernel, so that borrowed views of it stay valid (compiled
    code: no instruction; numba drops a variable after its last use)."""


def _unreferenced(context, builder, ty, value):
    """The value of an array (or of a tuple's arrays) of numba type ty, with a null reference to its memory."""
    if isinstance(ty, types.Array):
        view = context.make_array(ty)(context, builder, value=value)
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        return view._getvalue()
    if isinstance(ty, types.BaseTuple):
        for i, item in enumerate(ty):
            inner = _unreferenced(context, builder, item, builder.extract_value(value, i))
            value = builder.insert_value(value, inner, i)
    return value


@intrinsic
def _null_reference(typingctx, a):
    def codegen(context, builder, signature, args):
        return _unreferenced(context, builder, signature.args[0], args[0])

    return a(a), codegen


@intrinsic
def _use(typingctx, a):
    def codegen(context, builder, signature, args):
        return context.get_dummy_value()

    return types.none(a), codegen


@numba.extending.overload(_borrowed, inline="always")
def _borrowed_typed(a):
    """_borrowed in compiled code."""
    return lambda a: _null_reference(a)


@numba.extending.overload(_alive, inline="always")
def _alive_typed(a):
    """_alive in compiled code."""
    return lambda a: _use(a)


@njit(cache=True, inline="always")
def _columns(nb, bs, d):
    """The columns a block of nb samples is computed on: whole groups of 8 (narrow blocks), or all bs columns (wide
    blocks, whose BLAS products run on the whole arrays). Padding columns start as zeros."""
    return bs if _wide(d, bs) else (nb + 7) // 8 * 8


@njit(cache=True, error_model="numpy", inline="always")
def _workspace(y, d, bs):
    """Work arrays of the stage solves of a block, with the dtype of the block y:
    (base, R, D, J, M, status, prev, piv, big, bad, r1, p1).

    base (d, bs) the explicit part of a DIRK stage; R (s, d, bs) residuals and Newton updates; D (s, d, bs)
    sigma' at the iterates; J (s, d, d, w) and M (n, n, w) the Jacobians and linear systems of w samples (n = d
    for DIRK stages, s d for a fully implicit tableau's coupled stages), w = bs for narrow blocks, which solve a
    whole block at once, and 1 for wide ones, which solve one sample at a time; status and prev each sample's
    Newton state; piv, big, bad the elimination's per-sample pivots; r1 (n, 1), p1 (d, 1) one sample's
    right-hand side and p. Explicit tableaux solve nothing and get empty ones."""
    n = 0 if STRUCTURE == "explicit" else d if STRUCTURE == "diagonally implicit" else STAGES * d
    e = min(n, 1) * d  # d where something is solved, else 0
    w = min(n, 1) * bs
    wj = min(n, 1) if _wide(d, bs) else w
    return (
        np.empty((e, w), y.dtype),
        np.empty((STAGES, e, w), y.dtype),
        np.empty((STAGES, e, w), y.dtype),
        np.empty((STAGES, e, e, wj), y.dtype),
        np.empty((n, n, wj), y.dtype),
        np.empty(w, np.int64),
        np.empty(w, y.dtype),
        np.empty(wj, np.int64),
        np.empty(wj, y.dtype),
        np.empty(wj, np.int64),
        np.empty((n, 1), y.dtype),
        np.empty((e, 1), y.dtype),
    )


@njit(cache=True, inline="always")
def _stage_work(tY, d, bs):
    """The work array X (s, d, bs) of the stage values Y_2.. where the tape tY keeps y_j only (one row a layer:
    :func:`rkgen.runtime.api._tape_inputs`); elsewhere X is never read, and empty. Every entry is written before it
    is read."""
    return np.empty((STAGES if tY.shape[2] < STAGES else 0, d, bs), tY.dtype)


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _forward_blocks(lo, hi, y0, yN, K, beta, rows, h, field, act, tY, tS, slot, states, keep, bs):
    """Forward pass over the sample blocks lo..hi-1; stage values Y and S = sigma(K Y + beta) go to
    tY[blk, j], tS[blk, j] (or, slot >= 0: evaluation without a tape, every layer's to tY[slot, 0], tS[slot, 0]);
    where tY holds one row a layer (:func:`rkgen.runtime.api._tape_inputs`) only Y_1 = y_j goes there, and the
    later Y_i to the work array X.

    Returns (failed stage solves, most Newton iterations)."""
    _wide_vectors()
    m, d = y0.shape
    N = h.shape[0]
    y_, Z_ = np.empty((d, bs), y0.dtype), np.empty((d, bs), y0.dtype)  # work arrays in the network's dtype
    F_ = np.zeros((STAGES, d, bs), y0.dtype)  # the stable field only (the resnet field uses S)
    X_ = _stage_work(tY, d, bs)
    ws_ = _workspace(y_, d, bs)
    y, Z, F, X, ws = _borrowed((y_, Z_, F_, X_, ws_))
    y0, yN, K, beta, rows, h, tY, tS, states = _borrowed((y0, yN, K, beta, rows, h, tY, tS, states))
    wide = _wide(d, bs)
    threads = _BLAS_LOCAL_THREADS(1) if wide else 0  # this thread's products on one thread, until the end
    failures = 0
    most = 0
    for blk in range(lo, hi):
        col0 = blk * bs
        nb = min(bs, m - col0)
        nw = _columns(nb, bs, d)
        for a in range(d):
            for q in range(nb):
                y[a, q] = y0[col0 + q, a]
            for q in range(nb, nw):
                y[a, q] = 0.0
        if keep:
            for q in range(nb):
                for a in range(d):
                    states[0, col0 + q, a] = y[a, q]
        for j in range(N):
            at, layer = (blk, j) if slot < 0 else (slot, 0)
            failed, iterations = _layer_forward(K, beta, rows[j], h[j], y, tY[at, layer], X, tS[at, layer], F, Z, ws,
                                                field, act, d, nb, nw)
            failures += failed
            most = max(most, iterations)
            if keep:
                for q in range(nb):
                    for a in range(d):
                        states[j + 1, col0 + q, a] = y[a, q]
        for q in range(nb):
            for a in range(d):
                yN[col0 + q, a] = y[a, q]
    if wide:
        _BLAS_LOCAL_THREADS(threads)
    _alive((y_, Z_, F_, X_, ws_))
    return failures, most


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _backward_layers(K, rows, h, P, tY, X, tS, D, eta, mu, G, U, dK, dbeta, dh, ws, field, act, slope, d, nb, nw):
    """The layers of one block in reverse: P = dJ/dy_N in, dJ/dy_0 out; the gradients added into dK, dbeta, dh.

    A function of its own, into which LLVM inlines the stages' adjoint (:func:`rkgen.runtime.products._inlined`).
    RK4, 15 layers, 1024 samples, one thread, Intel Xeon model 167, the kernels timed in turn in one process: a
    backward pass took 82-84 us against 96-106 with this loop in _backward_blocks and every stage a call, and its
    cold compile 12.4 s against 8.3. A second copy of the loop, with the branches of 000's networks folded (resnet,
    tanh, width 2), took 75-79 us but 18-22 s to compile; numba's own inlining of the stage (inline="always")
    instead of LLVM's, 85-94 us. Wide layers (d = 64, 512 samples) are unchanged. A layers' loop of its own for the
    forward pass gained nothing (150-155 us either way, bound by tanh)."""
    _wide_vectors()
    N = h.shape[0]
    for j in range(N - 1, -1, -1):
        S = tS[j]
        if slope != 0:
            for i in range(STAGES):
                _derivative(S[i], D[i], act, d, nw)
        # dJ/dh_j = sum_i eta_i . F_i ;  dJ/dy_j = p + sum_i mu_i
        dh[j] += _layer_backward(K, rows[j], h[j], P, tY[j], X, S, D, eta, mu, G, U, dK, dbeta, ws, field, slope,
                                 d, nb, nw)
        for a in range(d):  # one pass over P (the stages' loop is unrolled)
            for q in range(nw):
                acc = P[a, q]
                for i in range(STAGES):
                    acc += mu[i, a, q]
                P[a, q] = acc


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _backward_blocks(lo, hi, p, dy0, K, beta, rows, h, field, act, tY, tS, dK, dbeta, dh, bs):
    """Backward pass over the sample blocks lo..hi-1; adds into dK, dbeta (by parameter row), dh, writes dy0."""
    _wide_vectors()
    m, d = p.shape
    t = p.dtype  # work arrays in the network's dtype; dK, dbeta and dh are float64 sums (api.backward)
    P_, G_, U_ = np.empty((d, bs), t), np.empty((d, bs), t), np.empty((d, bs), t)
    D_, eta_, mu_ = np.zeros((STAGES, d, bs), t), np.zeros((STAGES, d, bs), t), np.zeros((STAGES, d, bs), t)
    X_ = _stage_work(tY, d, bs)
    ws_ = _workspace(P_, d, bs)
    P, G, U, D, eta, mu, X, ws = _borrowed((P_, G_, U_, D_, eta_, mu_, X_, ws_))
    p, dy0, K, beta, rows, h, tY, tS, dK, dbeta, dh = _borrowed((p, dy0, K, beta, rows, h, tY, tS, dK, dbeta, dh))
    wide = _wide(d, bs)
    threads = _BLAS_LOCAL_THREADS(1) if wide else 0  # this thread's products on one thread, until the end
    # sigma' of the stages: explicit tanh stages take 1 - S^2 from S in the adjoint's own pass (slope 0); other
    # activations, and implicit stages (whose solves read it too), from D, written here (slope 1)
    slope = 0 if act == 0 and STRUCTURE == "explicit" else 1
    for blk in range(lo, hi):
        col0 = blk * bs
        nb = min(bs, m - col0)
        nw = _columns(nb, bs, d)
        for a in range(d):
            for q in range(nb):
                P[a, q] = p[col0 + q, a]
            for q in range(nb, nw):
                P[a, q] = 0.0
        for i in range(STAGES):  # zero in the padding columns, which the solves of implicit stages do not write
            for a in range(d):
                for q in range(nb, nw):
                    eta[i, a, q] = 0.0
        _backward_layers(K, rows, h, P, tY[blk], X, tS[blk], D, eta, mu, G, U, dK, dbeta, dh, ws, field, act, slope,
                         d, nb, nw)
        for q in range(nb):
            for a in range(d):
                dy0[col0 + q, a] = P[a, q]
    if wide:
        _BLAS_LOCAL_THREADS(threads)
    _alive((P_, G_, U_, D_, eta_, mu_, X_, ws_))


@njit(cache=True, parallel=True)
def _forward_parallel(bounds, y0, yN, K, beta, rows, h, field, act, tY, tS, keep_tape, states, keep, bs):
    n = bounds.shape[0] - 1
    fails = np.zeros(n, np.int64)
    most = np.zeros(n, np.int64)
    for c in prange(n):
        fails[c], most[c] = _forward_blocks(
            bounds[c], bounds[c + 1], y0, yN, K, beta, rows, h, field, act, tY, tS,
            np.int64(-1) if keep_tape else np.int64(c), states, keep, bs,
        )
    return fails.sum(), most.max()


@njit(cache=True, parallel=True)
def _backward_parallel(bounds, p, dy0, K, beta, rows, h, field, act, tY, tS, dK, dbeta, dh, bs):
    n = bounds.shape[0] - 1
    for c in prange(n):
        _backward_blocks(
            bounds[c], bounds[c + 1], p, dy0, K, beta, rows, h, field, act, tY, tS,
            dK[c], dbeta[c], dh[c], bs,
        )
