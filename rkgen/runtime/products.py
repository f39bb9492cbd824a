"""Blocked products of a layer's stages: K Y + beta, the field, and one stage's adjoint (runtime, inlined at render).

A block holds the samples as columns (d, nw), nw a multiple of 8: loops over the sample index vectorise.

Wide blocks (:func:`_wide`: d >= WIDE, or d >= LONG_WIDTH in blocks of at least LONG_BLOCK samples) form the stage
products of a block as matrix products through BLAS (scipy's OpenBLAS, the large ones MKL where the process has it:
:func:`_matmul`, :mod:`rkgen.runtime.blas`): Z = K Y,
mu = K^T G, and dK += G Y^T, which BLAS adds into dK itself (:func:`_outer_blas`). Their
blocks are whole (nw = bs, :func:`rkgen.runtime.driver._columns`), so every product runs on the arrays themselves,
without copies; the padding columns hold zeros in y, p and every eta_i (implicit stages: Y_i too), so they add
nothing to the gradients. The bias and the activation are applied in one pass after the product, the adjoint's
sigma' * xi and the sums for dbeta and dh in one pass before it.
"""

import numba
import numpy as np
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .activations import _activate, _activate_shifted
from .blas import _LARGE_DGEMM, _LARGE_SGEMM, LARGE_PRODUCT
from .fastmath import AVX512, _function_attribute, _tanh, _wide_vectors

_FAST = {"reassoc", "contract"}  # sums may be reordered and fused: reductions vectorise
# Where BLAS takes the stage products over from the loops below (see _wide) depends on the vector unit, measured
# as one gradient of RK4 against the loops, one thread:
# - AMD EPYC, Zen 3 (AVX2): 1500 samples 0.55x the time at d = 17, 0.5x at 24 to 32, 0.37x at 64; at d = 16 0.6x
#   for 1500 samples, but 1.08x for 004's batches of 5. So BLAS from d = 17, and from d = 16 in long blocks.
# - Intel Xeon (Emerald Rapids, AVX-512): 100 layers, batches of 5: 0.76x at d = 16, 0.87x at 12, 1.0x at 8; 8
#   layers, 256 samples: 0.49x at d = 12, 0.65x at 8. The loops reach a fraction of the vector unit there (short
#   loops over 8 to 32 samples), OpenBLAS's small-matrix kernels most of it. So BLAS from d = 16, and from d = 8
#   in long blocks.
WIDE = 16 if AVX512 else 17  # from this width on, every block multiplies through BLAS
LONG_WIDTH = 8 if AVX512 else 16  # from this width on, blocks of at least LONG_BLOCK samples do too
LONG_BLOCK = 64
SMALL_PRODUCT = 16384  # entries of a d x d product small enough to allocate each call (128 KB: glibc's mmap threshold)
# float32 blocks: the dK products of the smallest wide blocks stay in the loops: a BLAS call with its d x d product
# array and the sum into dK cost more than the d d nb multiply-adds themselves. Measured (Intel Xeon, Emerald
# Rapids, one thread, RK4 gradients, 100 layers, with that product array in float64 then): d = 16, batches of 5 (8
# columns) 0.82-0.91x the time with the loops, 16 columns 0.90x, 8 x 8 x 64 0.96x; but 16 x 16 x 40 1.10x, 32 x 32
# x 8 1.14x, 64 x 64 x 8 1.32x. float64 blocks add the product into dK in one BLAS call, which beats the loops at
# every wide size: 280 against 395 ns at d = 16 in 8 columns (5 samples), 366 against 527 in 16, 256 against 439
# at 8 x 8 x 64 (one call each, same machine).
OUTER_LOOPS = 4096  # multiply-adds (d d bs) of a wide float32 block's dK product up to which the loops form it


@njit(cache=True, inline="always")
def _wide(d, bs):
    """Whether a block of bs columns (the work arrays' width, the same for every block of a pass) at width d
    multiplies through BLAS. The layout (:func:`rkgen.runtime.layout._layout`) chooses bs, and with it the path,
    once per call."""
    return d >= WIDE or (d >= LONG_WIDTH and bs >= LONG_BLOCK)


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _kx(M, X, out, d, nw, transpose):
    """out = M X (or M^T X) for a block X (d, nw), nw a multiple of 8.

    d < 8: one loop over the samples per (a, k), which vectorises. 8 <= d, narrow: eight samples at a
    time in eight scalar accumulators, which stay in registers (1.3x faster than the first at d = 64,
    before BLAS took the wide layers). Wide (:func:`_wide`): one BLAS product on the whole arrays (nw = bs)."""
    _wide_vectors()
    if _wide(d, X.shape[1]):
        _matmul(M, transpose, X, False, out, 1.0, 0.0, d, X.shape[1], d)
        return
    if d < 8:
        for a in range(d):
            for q in range(nw):
                out[a, q] = 0.0
            for k in range(d):
                w = M[k, a] if transpose else M[a, k]
                for q in range(nw):
                    out[a, q] += w * X[k, q]
        return
    for q in range(0, nw, 8):
        for a in range(d):
            z0 = z1 = z2 = z3 = z4 = z5 = z6 = z7 = 0.0
            for k in range(d):
                w = M[k, a] if transpose else M[a, k]
                z0 += w * X[k, q]
                z1 += w * X[k, q + 1]
                z2 += w * X[k, q + 2]
                z3 += w * X[k, q + 3]
                z4 += w * X[k, q + 4]
                z5 += w * X[k, q + 5]
                z6 += w * X[k, q + 6]
                z7 += w * X[k, q + 7]
            out[a, q] = z0
            out[a, q + 1] = z1
            out[a, q + 2] = z2
            out[a, q + 3] = z3
            out[a, q + 4] = z4
            out[a, q + 5] = z5
            out[a, q + 6] = z6
            out[a, q + 7] = z7


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _outer(G, Y, dK, scale, W, d, nb):
    """dK += scale * G Y^T over the nb samples of a block; four rows of dK at a time. Wide layers (float32: but the
    smallest products, up to OUTER_LOOPS multiply-adds): one BLAS product (:func:`_outer_blas`)."""
    _wide_vectors()
    if _wide(d, G.shape[1]) and (_adds_in_place(G, dK) or d * d * G.shape[1] > OUTER_LOOPS):
        _outer_blas(G, Y, dK, scale, W, d, nb)
        return
    a = 0
    while a + 4 <= d:
        for k in range(d):
            s0 = s1 = s2 = s3 = 0.0
            for q in range(nb):
                y = Y[k, q]
                s0 += G[a, q] * y
                s1 += G[a + 1, q] * y
                s2 += G[a + 2, q] * y
                s3 += G[a + 3, q] * y
            dK[a, k] += scale * s0
            dK[a + 1, k] += scale * s1
            dK[a + 2, k] += scale * s2
            dK[a + 3, k] += scale * s3
        a += 4
    while a < d:
        for k in range(d):
            s0 = 0.0
            for q in range(nb):
                s0 += G[a, q] * Y[k, q]
            dK[a, k] += scale * s0
        a += 1


# BLAS's C = alpha op(A) op(B) + beta C through numba's helper numba_xxgemm (the function numba's np.dot calls, which
# finds scipy's dgemm or sgemm), called directly (:func:`_matmul`). np.dot checks its arguments first, and a check
# that can raise keeps numba from pruning the reference counts of the array views that live across it (K[kj[i]],
# Y[i], S[i] and the others, each view an atomic increment and decrement of its parent's count): with np.dot, those
# atomics took about a fifth of the time of 004's batches of 5 at d = 16 (a perf profile, Intel Xeon); the driver
# now also borrows its arrays (:func:`rkgen.runtime.driver._borrowed`), whose views count nothing. Every array
# given to _matmul is the kernels' own, 2-D with unit column stride, of one dtype (checked when a caller is
# compiled), so the call checks nothing; BLAS's status is not read either (scipy's BLAS is loaded before any wide
# block runs, :func:`rkgen.runtime.layout._blas_loaded`).
# numba_xxgemm takes column-major arrays: a C-ordered array (r, c) is its transpose there, (c x r) with leading
# dimension c, so the row-major C = op(A) op(B) is the column-major C^T = op(B)^T op(A)^T, with the same flags.
_XXGEMM = types.ExternalFunction("numba_xxgemm", types.intc(
    types.char, types.char, types.char, types.intp, types.intp, types.intp,
    types.voidptr, types.voidptr, types.intp, types.voidptr, types.intp, types.voidptr, types.voidptr, types.intp,
))


@intrinsic
def _address(typingctx, a):
    """The address of the first element of the array a."""

    def codegen(context, builder, signature, args):
        data = context.make_array(signature.args[0])(context, builder, args[0]).data
        return builder.bitcast(data, context.get_value_type(types.voidptr))

    return types.voidptr(a), codegen


def _slot(kind):
    """An intrinsic: the address of an integer, as a ``kind`` (int8: a Fortran character; int32: an LP64 integer),
    in a slot on the caller's stack."""

    @intrinsic
    def slot(typingctx, x):
        def codegen(context, builder, signature, args):
            value = context.cast(builder, args[0], signature.args[0], kind)
            cell = cgutils.alloca_once_value(builder, value)
            return builder.bitcast(cell, context.get_value_type(types.voidptr))

        return types.voidptr(x), codegen

    return slot


_char = _slot(types.int8)
_int32 = _slot(types.int32)


@intrinsic
def _scalar_address(typingctx, x, a):
    """The address of the number x, converted to the dtype of the array a, in a slot on the caller's stack."""

    def codegen(context, builder, signature, args):
        value = context.cast(builder, args[0], signature.args[0], signature.args[1].dtype)
        slot = cgutils.alloca_once_value(builder, value)
        return builder.bitcast(slot, context.get_value_type(types.voidptr))

    return types.voidptr(x, a), codegen


def _matmul(A, ta, B, tb, C, alpha, beta, m, n, k):
    """C[:m, :n] = alpha op(A) op(B) + beta C[:m, :n], op(A) (m x k) and op(B) (k x n) being A and B or, where ta and
    tb hold, their transposes: one BLAS call (:data:`_XXGEMM`, or from LARGE_PRODUCT multiply-adds on the large-product
    symbol that :mod:`rkgen.runtime.blas` binds) on C-ordered 2-D arrays with unit column stride
    (views of the kernels' own arrays). beta = 0 ignores what C held, as BLAS does. Plain Python
    (NUMBA_DISABLE_JIT): numpy."""
    a = (A.T if ta else A)[:m, :k]
    b = (B.T if tb else B)[:k, :n]
    product = alpha * (a @ b)
    C[:m, :n] = product if beta == 0 else product + beta * C[:m, :n]


@numba.extending.overload(_matmul, inline="always")
def _matmul_typed(A, ta, B, tb, C, alpha, beta, m, n, k):
    """_matmul in compiled code: dgemm or sgemm by C's dtype, for 2-D arrays of one float dtype (checked when a
    caller is compiled: the call itself checks nothing)."""
    arrays = (A, B, C)
    if any(not isinstance(a, types.Array) or a.ndim != 2 or a.dtype != C.dtype for a in arrays) or C.dtype not in (
        types.float32, types.float64
    ):
        raise numba.core.errors.TypingError(f"_matmul takes 2-D float32 or float64 arrays of one dtype, got {arrays}")
    kind = ord("d") if C.dtype == types.float64 else ord("s")
    large = _LARGE_DGEMM if C.dtype == types.float64 else _LARGE_SGEMM

    def gemm(A, ta, B, tb, C, alpha, beta, m, n, k):
        size = C.itemsize
        flag_b, flag_a = ord("t") if tb else ord("n"), ord("t") if ta else ord("n")
        ldb, lda, ldc = B.strides[0] // size, A.strides[0] // size, C.strides[0] // size
        pb, pa, pc = _address(B), _address(A), _address(C)
        palpha, pbeta = _scalar_address(alpha, C), _scalar_address(beta, C)
        if m * n * k >= LARGE_PRODUCT:  # MKL where the process has it (rkgen.runtime.blas)
            large(_char(flag_b), _char(flag_a), _int32(n), _int32(m), _int32(k), palpha, pb, _int32(ldb), pa,
                  _int32(lda), pbeta, pc, _int32(ldc))
        else:
            _XXGEMM(kind, flag_b, flag_a, n, m, k, palpha, pb, ldb, pa, lda, pbeta, pc, ldc)

    return gemm


def _adds_in_place(G, dK):
    """Whether :func:`_outer_blas` adds its product into dK with one BLAS call (float64 blocks), known when a caller
    is compiled."""
    return G.dtype == np.float64 and dK.dtype == np.float64


def _in_place_types(G, dK):
    """_adds_in_place on numba's types of G and dK, when a caller is compiled (the compiled _adds_in_place and
    _outer_blas both ask it)."""
    return G.dtype == types.float64 and dK.dtype == types.float64


@numba.extending.overload(_adds_in_place, inline="always")
def _adds_in_place_typed(G, dK):
    """_adds_in_place in compiled code: a constant."""
    answer = _in_place_types(G, dK)
    return lambda G, dK: answer


def _outer_blas(G, Y, dK, scale, W, d, nb):
    """dK += scale * G[:, :nb] Y[:, :nb]^T through BLAS, for wide blocks (G, Y (d, bs), dK (d, d), C-ordered).

    float64: one GEMM that adds into dK (beta = 1; in column-major terms dK^T += scale Y G^T, k = nb).
    float32 (dK is a float64 sum, which SGEMM cannot add into): the product into the scratch block W (d, bs),
    overwritten, then added: the whole d x d product where it fits W or is small (a fresh array from malloc's
    heap), else min(d, bs) rows of dK at a time. A large d x d array made afresh every call would come from mmap
    and pay its page faults each time: at d = 256 that cost more than the product (0.46 against 0.26 ms on an
    AVX-512 Xeon). Plain Python (NUMBA_DISABLE_JIT): numpy."""
    dK += scale * (G[:, :nb].astype(np.float64) @ Y[:, :nb].T.astype(np.float64))


@numba.extending.overload(_outer_blas, inline="always")
def _outer_blas_typed(G, Y, dK, scale, W, d, nb):
    """_outer_blas in compiled code, chosen by the blocks' dtype when a caller is compiled."""
    if _in_place_types(G, dK):

        def gemm(G, Y, dK, scale, W, d, nb):
            _matmul(G, False, Y, True, dK, scale, 1.0, d, d, nb)

        return gemm

    def scratch(G, Y, dK, scale, W, d, nb):
        bs = G.shape[1]
        rows = d if d <= bs or d * d <= SMALL_PRODUCT else bs
        flat = W.reshape(W.size)
        for a0 in range(0, d, rows):
            r = min(rows, d - a0)
            Wr = flat[: r * d].reshape((r, d)) if r <= bs else np.empty((r, d), W.dtype)
            _matmul(G[a0:a0 + r], False, Y, True, Wr, 1.0, 0.0, r, d, nb)
            for a in range(r):
                for k in range(d):
                    dK[a0 + a, k] += scale * Wr[a, k]

    return scratch


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _affine(Kj, bj, Y, Z, d, nw):
    """Z = K Y + beta on a block (d, nw)."""
    _wide_vectors()
    if d == 2:  # one pass instead of six (the width of 000's examples)
        k00, k01, k10, k11, b0, b1 = Kj[0, 0], Kj[0, 1], Kj[1, 0], Kj[1, 1], bj[0], bj[1]
        for q in range(nw):
            y0, y1 = Y[0, q], Y[1, q]
            Z[0, q] = b0 + k00 * y0 + k01 * y1
            Z[1, q] = b1 + k10 * y0 + k11 * y1
        return
    if d < 8:
        for a in range(d):
            for q in range(nw):
                Z[a, q] = bj[a]
            for k in range(d):
                w = Kj[a, k]
                for q in range(nw):
                    Z[a, q] += w * Y[k, q]
        return
    _kx(Kj, Y, Z, d, nw, False)
    for a in range(d):
        for q in range(nw):
            Z[a, q] += bj[a]


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _field(Kj, bj, Y, Z, S, F, field, act, d, nw):
    """F = f(Y) on a block (d, nw); keeps S = sigma(K Y + beta). For the resnet field F is S itself:
    the caller passes the same array for both, and nothing is copied."""
    _wide_vectors()
    if d == 2 and act == 0:
        k00, k01, k10, k11, b0, b1 = Kj[0, 0], Kj[0, 1], Kj[1, 0], Kj[1, 1], bj[0], bj[1]
        for q in range(nw):
            y0, y1 = Y[0, q], Y[1, q]
            S[0, q] = _tanh(b0 + k00 * y0 + k01 * y1)
            S[1, q] = _tanh(b1 + k10 * y0 + k11 * y1)
    elif _wide(d, Y.shape[1]):
        _matmul(Kj, False, Y, False, Z, 1.0, 0.0, d, Y.shape[1], d)
        _activate_shifted(Z, bj, S, act, d, nw)
    else:
        _affine(Kj, bj, Y, Z, d, nw)
        _activate(Z, S, act, d, nw)
    if field != 0:
        _kx(Kj, S, F, d, nw, True)
        for a in range(d):
            for q in range(nw):
                F[a, q] = -F[a, q]


def _inlined():
    """Called first in a small kernel: LLVM inlines the kernel into every caller (the attribute "alwaysinline"),
    after numba has compiled it once. numba's own inlining (inline="always") types and lowers the function again at
    every call site, which costs compile time (seconds for the four stages of RK4). The kernel is optimised and
    vectorised on its own before LLVM inlines it, so its caller's vector width does not reach it: a kernel with a
    loop calls _wide_vectors itself (_adjoint_stage_2 without it: 91-94 against 87-88 us an RK4 backward pass at
    width 2, one thread, timed in turn). Nothing in plain Python (NUMBA_DISABLE_JIT)."""


_always_inline = _function_attribute("alwaysinline")


@numba.extending.overload(_inlined, inline="always")
def _inlined_typed():
    """_inlined in compiled code."""
    return lambda: _always_inline()


def _unit(a):
    """1 in the dtype of the array a (compiled code: a constant of that type; :func:`_unit_typed`)."""
    return a.dtype.type(1)


@numba.extending.overload(_unit, inline="always")
def _unit_typed(a):
    """_unit in compiled code."""
    one = numba.np.numpy_support.as_dtype(a.dtype).type(1)
    return lambda a: one


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _adjoint_stage(Kj, Y, S, D, eta, mu, G, U, dKj, dbj, hj, field, slope, d, nb, nw):
    """mu = J^T xi with xi = h eta, and the stage's share of dJ/dK_j, dJ/dbeta_j (a block of nb
    samples, computed on nw >= nb columns). G and U (d, nw) are scratch.

    sigma'(K Y + beta): with slope 0 (an explicit tableau's tanh stages) it is 1 - S^2, from S itself, so the
    backward pass writes no array of sigma' (one pass over the stage values less: RK4 gradients at d = 16, 8
    layers, 256 samples, one thread, 0.92x the time); with slope 1 it is read from D
    (:func:`rkgen.runtime.activations._derivative`: other activations, and implicit stages, whose solves read the
    same D). The choice is a select in the loops (slope is the same for every element): a helper function holding
    two versions of the loop, inlined, made the backward pass 2x slower. The 1 of 1 - S^2 has S's dtype
    (:func:`_unit`): a float64 literal would widen a float32 block's loop.

    Returns the stage's share eta . F of dJ/dh_j (F = S, or -K^T S for the stable field)."""
    _inlined()
    if field == 0 and d == 2:
        return _adjoint_stage_2(Kj, Y, S, D, eta, mu, dKj, dbj, hj, slope, nb, nw)
    return _adjoint_stage_any(Kj, Y, S, D, eta, mu, G, U, dKj, dbj, hj, field, slope, d, nb, nw)


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _adjoint_stage_2(Kj, Y, S, D, eta, mu, dKj, dbj, hj, slope, nb, nw):
    """_adjoint_stage for the resnet field at width 2 (000's examples): the sums in one pass over the block, inlined
    into the layers' loop (:func:`_inlined`, :func:`rkgen.runtime.driver._backward_layers`, which gives the
    figures). As a branch of one called function for every case, each stage of each block was a call with sixteen
    arguments around a loop of a few hundred columns."""
    _inlined()
    _wide_vectors()
    one = _unit(S)
    dh = 0.0
    k00, k01, k10, k11 = Kj[0, 0], Kj[0, 1], Kj[1, 0], Kj[1, 1]
    s00 = s01 = s10 = s11 = g0 = g1 = 0.0
    for q in range(nb):
        x0 = hj * (one - S[0, q] * S[0, q] if slope == 0 else D[0, q]) * eta[0, q]
        x1 = hj * (one - S[1, q] * S[1, q] if slope == 0 else D[1, q]) * eta[1, q]
        mu[0, q] = k00 * x0 + k10 * x1
        mu[1, q] = k01 * x0 + k11 * x1
        y0, y1 = Y[0, q], Y[1, q]
        s00 += x0 * y0
        s01 += x0 * y1
        s10 += x1 * y0
        s11 += x1 * y1
        g0 += x0
        g1 += x1
        dh += eta[0, q] * S[0, q] + eta[1, q] * S[1, q]
    for q in range(nb, nw):  # padding columns: zero, as the other widths leave them
        mu[0, q] = 0.0
        mu[1, q] = 0.0
    dKj[0, 0] += s00
    dKj[0, 1] += s01
    dKj[1, 0] += s10
    dKj[1, 1] += s11
    dbj[0] += g0
    dbj[1] += g1
    return dh


@njit(cache=True, error_model="numpy", fastmath=_FAST)
def _adjoint_stage_any(Kj, Y, S, D, eta, mu, G, U, dKj, dbj, hj, field, slope, d, nb, nw):
    """_adjoint_stage for every other case (a called function)."""
    _wide_vectors()
    one = _unit(S)
    dh = 0.0
    if field == 0:
        # J = diag(D) K:  J^T xi = K^T (D * xi);  dK += (D * xi) Y^T;  dbeta += D * xi; one pass forms D * xi and
        # the sums for dbeta and dh
        for a in range(d):
            acc = 0.0
            for q in range(nb):
                g = hj * (one - S[a, q] * S[a, q] if slope == 0 else D[a, q]) * eta[a, q]
                G[a, q] = g
                acc += g
                dh += eta[a, q] * S[a, q]
            for q in range(nb, nw):
                G[a, q] = hj * (one - S[a, q] * S[a, q] if slope == 0 else D[a, q]) * eta[a, q]
            dbj[a] += acc
        _kx(Kj, G, mu, d, nw, True)
        _outer(G, Y, dKj, 1.0, U, d, nb)
    else:
        # f = -K^T S:  J^T xi = -K^T (D * (K xi));
        # dK -= S xi^T + (D * K xi) Y^T;  dbeta -= D * K xi;  eta . F = -(K eta) . S
        _kx(Kj, eta, U, d, nw, False)
        for a in range(d):
            acc = 0.0
            for q in range(nb):
                g = hj * (one - S[a, q] * S[a, q] if slope == 0 else D[a, q]) * U[a, q]
                G[a, q] = g
                acc += g
                dh -= U[a, q] * S[a, q]
            for q in range(nb, nw):
                G[a, q] = hj * (one - S[a, q] * S[a, q] if slope == 0 else D[a, q]) * U[a, q]
            dbj[a] -= acc
        _kx(Kj, G, mu, d, nw, True)
        for a in range(d):
            for q in range(nw):
                mu[a, q] = -mu[a, q]
        _outer(G, Y, dKj, -1.0, U, d, nb)  # U is free from here on: the products' scratch
        _outer(S, eta, dKj, -hj, U, d, nb)
    return dh
