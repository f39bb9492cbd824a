"""Vectorisable tanh, sigmoid and softplus: the fast math of every generated module (runtime, inlined at render)."""

import math

import numba
import numpy as np
from numba import njit, types
from numba.core.codegen import get_host_cpu_features
from numba.extending import intrinsic

# ------------------------------------------------------------------------------------------------
# Vectorisable tanh, sigmoid and softplus (select-only, IEEE; FMA contraction allowed, nothing else).
#
# Its own names start with `_fm_` / `_FM_`. The public names are _tanh, _sigmoid and _softplus, and the vector
# width of the kernels (AVX512, WIDE_VECTORS, _wide_vectors, and _function_attribute, with which _wide_vectors and
# rkgen.runtime.products._inlined mark a kernel: the last section below).
#
# Why: glibc's tanh/exp/log1p are opaque calls to LLVM, so a loop over them stays scalar
# (math.tanh ~26 ns). Everything here is straight-line arithmetic. A Python conditional
# expression whose two arms are plain values that have already been computed (`p if c else q`)
# compiles to a select, not a branch. Once these functions are inlined, a loop
# `for i in range(n): out[i] = _tanh(x[i])` over a contiguous float64 array becomes SIMD code:
# vmulpd/vaddpd/vdivpd, vminpd, vandpd/vorpd (copysign) and vpsllq/vpaddq (for 2**k).
#
# Inlining: the public functions are thin wrappers with inline='always'. Numba pastes their
# handful of statements into the caller. The helpers they call stay separate functions, small and
# single-block, and LLVM's own inliner takes each of them. This layout is deliberate. If the whole
# of _softplus were a single numba function, it would be too big for LLVM to inline, and the loop
# would stay scalar. With every helper at inline='always', the numba-IR inlining makes a call site
# slow to compile (about 0.35 s each). tests/test_fastmath.py checks that each loop vectorises.
# error_model='numpy' drops the zero-division check that numba would otherwise wrap around every
# `/`. Callers should use it too.
#
# Method
#   exp core, _fm_expm1_reduced(x) -> (k, r, h), |x| <~ 746:
#     k = rint(x / ln2). The rint is (v + 1.5*2**52) - 1.5*2**52: no call and no float->int
#         conversion, which AVX2 cannot vectorise.
#     r = (x - k*LN2_HI) - k*LN2_LO, a Cody-Waite split. LN2_HI has 32 significant bits, so k*LN2_HI
#         and the first subtraction are exact.
#     expm1(r) = r + h, h = r^2 (1/2 + r Q(r)), |r| <= ln2/2. Q has degree 9: a Chebyshev fit made
#         with mpmath, truncation error < 1e-18 relative. It is evaluated with Estrin's scheme,
#         which keeps the dependency chains short.
#     2**k is built from bits: the low mantissa bits of k + 1.5*2**52 hold k, and
#         ((bits + 1023) << 52) is the IEEE pattern of 2**k, for k in [-1022, 1023].
#   exp(y), y <= 0 (_fm_exp_nonpos), returns hi + lo: y is clamped to >= -746 (NaN passes through).
#     1 + r + h is renormalised into hi + lo by two Fast2Sums. The result is scaled by
#     2**(k + 54) * 2**-54, which is exact for normal results and rounds once for subnormal ones.
#     Max error of hi + lo: 0.75 ulp.
#   log1p(u), u in [0, 1] (_fm_log1p_unit), after fdlibm: 1 + u = 2^j (1 + f), where f = u
#     (u < 1/2) or f = (u - 1)/2 with j = 1 (u >= 1/2, where the subtraction is exact by Sterbenz).
#     Then s = f/(2 + f) and log1p = j ln2 + f - (f^2/2 - s (f^2/2 + R(s^2))), where R has degree 8
#     on s^2 <= 0.0401.
#   tanh(x) = copysign(t(a), x), a = |x|, one formula for every a: u = expm1(-2 min(a, 20)) =
#     2^k (r + h) + (2^k - 1), with k <= 0, and t = -u / (2 + u). For a tiny a, u = -2a exactly and
#     t = a; for a >= 19.1, u = -1 and t = 1 exactly. No overflow is possible (2^k <= 1).
#   sigmoid(x): u = exp(-|x|) = uh + ul, d = 1 + uh, y = (1 if x >= 0 else uh) / d. y is then
#     corrected for dl = (1 - d) + uh + ul (the rounding of d plus ul), using 1/d = y (x >= 0) or
#     1 - y (x < 0).
#   softplus(x) = max(x, 0) + log1p(uh) + ul/(1 + uh). This is stable for all x: the result is x
#     for x > ~37 and exp(x) right down into the subnormals.
#
# Special values: tanh(+-0) = +-0 (the sign is kept), tanh(+-inf) = +-1, sigmoid(-inf) = 0,
#   sigmoid(+inf) = 1, softplus(-inf) = 0, softplus(+inf) = inf. NaN gives NaN. For a subnormal
#   or tiny x, tanh(x) = x exactly.
#
# Measured maximum relative error, from tests/test_fastmath.py plus a sweep with two seeds. Each
#   seed drew 10^6 log-uniform |x| in [1e-310, 800] of both signs; 2*10^6 each uniform on
#   [-25, 25], [-2, 2] and +-[0.5, 1.2]; and 10^6 on [-745, -700]. Reference: 80-bit long double.
#   An error is |y - ref| / max(|ref|, 2**-1022), so subnormal results are measured in absolute
#   terms.
#     _tanh     3.97e-16 (about 2 ulp: the roundings of u, of 2 + u and of the quotient add up;
#               the worst case found is just above the reduction boundary ln2/4, x = 0.1733120)
#               Against math.tanh: 4.95e-16. glibc's tanh is itself off by up to 3.06e-16
#               (~2 ulp) for |x| < 1.
#     _sigmoid  2.32e-16
#     _softplus 2.27e-16
#   When x steps by one ulp through any formula breakpoint, tanh never decreases. sigmoid and
#   softplus can step back by one ulp, as a function that is faithful but not correctly rounded
#   may. On a grid where f rises by >= 4 ulps a step, all three rise strictly.
# Speed (benchmarks/bench_tanh.py; AVX2 EPYC, 2 shared vCPUs; thread CPU time per element):
#   _tanh     ~4.7 ns against ~22-25 ns for math.tanh                           (x4.7-5.1)
#   _softplus ~11.4 ns against ~28 ns for max(x, 0) + log1p(exp(-|x|))          (x2.5)
#   _sigmoid  ~7.6 ns against ~9.8 ns for 1/(1 + math.exp(-x))                  (x1.3)
#   Accuracy against speed, for tanh: an earlier version computed an odd polynomial of degree 25
#   for a < 0.625 besides the formula above (with a Fast2Sum correction) and selected one, for a
#   maximum error of 2.07e-16 (1.1 ulp). It cost ~8.1 ns against ~4.7 ns for the single formula,
#   side by side, and tanh is most of the time of a narrow network's forward pass. Both
#   arms of a select are always computed, so a two-formula function pays for both. This Zen 1
#   core splits each AVX2 instruction into two 128-bit halves: the cost is instruction count.
# ------------------------------------------------------------------------------------------------

# The helpers may fuse a*b + c into one FMA (LLVM's 'contract', nothing else of fastmath): 18%
# faster tanh on an AVX2 EPYC, and the error bounds below hold with and without it. Every error-free
# transformation here is a sum of two numbers, which contraction leaves alone.
_FM_CONTRACT = {'contract'}
_FM_SHIFT = 6755399441055744.0  # 1.5 * 2**52: (v + SHIFT) - SHIFT == rint(v) for |v| < 2**51
_FM_INV_LN2 = 1.4426950408889634
_FM_LN2_HI = 0.6931471803691238  # 0x1.62e42fee00000p-1 (32 significant bits)
_FM_LN2_LO = 1.9082149292705877e-10  # ln2 - LN2_HI
_FM_TWO_M54 = 2.0**-54

# expm1(r) = r + r^2 (1/2 + r Q(r)), |r| <= 0.3467; Q(r) = sum _FM_E{i} r^(i-3)
_FM_E3 = 0.16666666666666669
_FM_E4 = 0.041666666666666664
_FM_E5 = 0.00833333333333006
_FM_E6 = 0.0013888888888886552
_FM_E7 = 0.00019841269863063584
_FM_E8 = 2.4801587317151617e-05
_FM_E9 = 2.7557268444512468e-06
_FM_E10 = 2.755728295849207e-07
_FM_E11 = 2.510039286029158e-08
_FM_E12 = 2.091124188959723e-09

# log1p: R(z) = 2 atanh(s)/s - 2 = z (L1 + L2 z + ... + L8 z^7), z = s^2 <= 0.0401
_FM_L1 = 0.6666666666666666
_FM_L2 = 0.4000000000000794
_FM_L3 = 0.28571428567275936
_FM_L4 = 0.2222222304835159
_FM_L5 = 0.18181737626302938
_FM_L6 = 0.15388867805613718
_FM_L7 = 0.13209708242059462
_FM_L8 = 0.13609030262858499

@njit(cache=True, error_model='numpy', fastmath=_FM_CONTRACT)
def _fm_pow2(kf):
    """2.0**kf for an integral float kf in [-1022, 1023], built from the exponent bits."""
    return np.int64((np.float64(kf + _FM_SHIFT).view(np.int64) + 1023) << 52).view(np.float64)


@njit(cache=True, error_model='numpy', fastmath=_FM_CONTRACT)
def _fm_expm1_reduced(x):
    """(k, r, h): x = k ln2 + r, |r| <= ln2/2, expm1(r) = r + h; x finite, |x| <~ 746."""
    kf = (x * _FM_INV_LN2 + _FM_SHIFT) - _FM_SHIFT
    r = (x - kf * _FM_LN2_HI) - kf * _FM_LN2_LO
    r2 = r * r
    r4 = r2 * r2
    q = ((_FM_E3 + r * _FM_E4) + r2 * (_FM_E5 + r * _FM_E6)) + r4 * (
        ((_FM_E7 + r * _FM_E8) + r2 * (_FM_E9 + r * _FM_E10)) + r4 * (_FM_E11 + r * _FM_E12))
    return kf, r, r2 * (0.5 + r * q)


@njit(cache=True, error_model='numpy', fastmath=_FM_CONTRACT)
def _fm_exp_nonpos(y):
    """exp(y) = hi + lo (|lo| <~ ulp(hi)) for y <= 0 or NaN, right down into the subnormals."""
    yc = -746.0 if y < -746.0 else y
    kf, r, h = _fm_expm1_reduced(yc)
    # 2^k = 2^(k + 54) * 2^-54 with k + 54 in [-1022, 54]: one rounding even for subnormal results
    s = _fm_pow2(kf + 54.0)
    # exp(r) = 1 + r + h = hi + lo with one rounding: Fast2Sum twice (|1| >= |r|, |t| >= |c|)
    t = 1.0 + r
    c = ((1.0 - t) + r) + h
    hi = t + c
    lo = (t - hi) + c
    return (hi * s) * _FM_TWO_M54, (lo * s) * _FM_TWO_M54


@njit(cache=True, error_model='numpy', fastmath=_FM_CONTRACT)
def _fm_log1p_unit(u):
    """log1p(u) for u in [0, 1] (or NaN)."""
    big = u >= 0.5
    kf = 1.0 if big else 0.0
    f = (0.5 * u - 0.5) if big else u  # exact; 1 + u = 2^k (1 + f)
    s = f / (2.0 + f)
    z = s * s
    z2 = z * z
    z4 = z2 * z2
    R = z * (((_FM_L1 + z * _FM_L2) + z2 * (_FM_L3 + z * _FM_L4)) + z4 * (
        (_FM_L5 + z * _FM_L6) + z2 * (_FM_L7 + z * _FM_L8)))
    hfsq = 0.5 * f * f
    return kf * _FM_LN2_HI + (f - (hfsq - (s * (hfsq + R) + kf * _FM_LN2_LO)))


@njit(cache=True, error_model='numpy', fastmath=_FM_CONTRACT)
def _fm_tanh_nonneg(a):
    """tanh(a) for a >= 0 (or +inf, NaN): -u / (2 + u) with u = expm1(-2a)."""
    ac = 20.0 if a > 20.0 else a  # tanh(a) == 1.0 exactly for a > 19.1; NaN passes
    kf, r, h = _fm_expm1_reduced(-(ac + ac))
    sc = _fm_pow2(kf)
    u = sc * (r + h) + (sc - 1.0)  # sc - 1 is exact for -53 <= k <= 0; below, tanh rounds to 1
    return -u / (2.0 + u)


# ------------------------------------------------------------------------------------------------
# float32 tanh (a float32 network's activation): the same formula in float32 arithmetic, so that a
# loop over float32 arrays runs 8 lanes wide on AVX2 instead of 4 lanes of float64 with conversions.
#   expm1(r), |r| <= ln2/2: r + r^2 (1/2 + r Q(r)), Q the Taylor polynomial to r^4/5040 (truncation
#     < 1.5e-8 relative, a quarter of float32's unit roundoff); k = rint(x/ln2) by 1.5*2**23;
#     LN2_HI has 15 significant bits, so k*LN2_HI is exact for |k| < 512 (here k >= -29).
#   tanh(a) = -u/(2 + u), u = expm1(-2 min(a, 10)): tanh(10) rounds to 1 in float32.
#   2**k from the bits of k + 1.5*2**23, as in float64 with a 23-bit mantissa and bias 127.
# Every constant is a float32 scalar: a float64 literal would widen the whole expression.
# Measured against float64 tanh, 10^6 log-uniform |x| in [1e-30, 20] and
# uniform [-10, 10]: max relative error 1.7e-7 (about 1.5 ulp; the float64 path, rounded, 0.5 ulp).
# ------------------------------------------------------------------------------------------------
_FM32_SHIFT = np.float32(12582912.0)  # 1.5 * 2**23
_FM32_INV_LN2 = np.float32(1.4426950408889634)
_FM32_LN2_HI = np.float32(0.693145751953125)  # 15 significant bits
_FM32_LN2_LO = np.float32(1.4286068202862268e-06)  # ln2 - LN2_HI
_FM32_HALF = np.float32(0.5)
_FM32_ONE = np.float32(1.0)
_FM32_TWO = np.float32(2.0)
_FM32_TEN = np.float32(10.0)
_FM32_E3 = np.float32(1 / 6)
_FM32_E4 = np.float32(1 / 24)
_FM32_E5 = np.float32(1 / 120)
_FM32_E6 = np.float32(1 / 720)
_FM32_E7 = np.float32(1 / 5040)


@njit(cache=True, error_model='numpy', fastmath=_FM_CONTRACT)
def _fm32_tanh_nonneg(a):
    """tanh(a) in float32 for a float32 a >= 0 (or +inf, NaN)."""
    ac = _FM32_TEN if a > _FM32_TEN else a
    x = -(ac + ac)
    kf = (x * _FM32_INV_LN2 + _FM32_SHIFT) - _FM32_SHIFT
    r = (x - kf * _FM32_LN2_HI) - kf * _FM32_LN2_LO
    r2 = r * r
    q = (_FM32_E3 + r * _FM32_E4) + r2 * ((_FM32_E5 + r * _FM32_E6) + r2 * _FM32_E7)
    h = r2 * (_FM32_HALF + r * q)
    sc = np.int32((np.float32(kf + _FM32_SHIFT).view(np.int32) + 127) << 23).view(np.float32)
    u = sc * (r + h) + (sc - _FM32_ONE)
    return -u / (_FM32_TWO + u)


# The public functions are thin wrappers that numba inlines into the caller. The wrappers call the
# helpers above, and LLVM inlines each of those (they are small, single-block functions). A loop
# over an array then vectorises. If LLVM had to inline one big function instead, it might not.
# Both arms of every select are computed unconditionally.

def _tanh(x):
    """tanh(x); max relative error 4.0e-16 (about 2 ulp). Compiled code takes the float32 formula for a float32 x
    (1.7e-7, about 1.5 float32 ulp) and the float64 one for anything else (:func:`_tanh_typed`)."""
    return math.copysign(_fm_tanh_nonneg(abs(x)), x)


@numba.extending.overload(_tanh, inline='always')  # numba.extending comes with numba
def _tanh_typed(x):
    """_tanh in compiled code: chosen by the type of x when a caller is compiled."""
    if getattr(x, 'bitwidth', 64) == 32:
        return lambda x: math.copysign(_fm32_tanh_nonneg(abs(x)), x)
    return lambda x: math.copysign(_fm_tanh_nonneg(abs(x)), x)


@njit(cache=True, error_model='numpy', inline='always')
def _sigmoid(x):
    """1 / (1 + exp(-x)); max relative error 2.3e-16."""
    uh, ul = _fm_exp_nonpos(-abs(x))
    pos = x >= 0.0
    d = 1.0 + uh
    dl = ((1.0 - d) + uh) + ul  # 1 + u = d + dl
    y = (1.0 if pos else uh) / d
    inv_d = y if pos else 1.0 - y  # 1/d to ~1 ulp
    return y + ((0.0 if pos else ul) - y * dl) * inv_d


@njit(cache=True, error_model='numpy', inline='always')
def _softplus(x):
    """log1p(exp(x)) = max(x, 0) + log1p(exp(-|x|)); max relative error 2.3e-16."""
    uh, ul = _fm_exp_nonpos(-abs(x))
    lp = _fm_log1p_unit(uh)
    m = x if x > 0.0 else 0.0
    # log1p(uh + ul) = log1p(uh) + ul/(1 + uh); this tiny correction needs only a few correct bits
    return m + (lp + ul * (1.0 - uh * (1.0 - 0.5 * uh)))


# ------------------------------------------------------------------------------------------------
# The vector width of the kernels.
#
# On CPUs with AVX-512, LLVM vectorises 256 bits wide unless a function asks for more ("prefer-vector-width"), since
# 512-bit instructions lowered the clock of the first AVX-512 Xeons (Skylake-SP, Cascade Lake). Cores from Ice Lake
# on (and AMD's Zen 4) run them without that penalty; they are told apart here by AVX512-VBMI2, which those have
# and the first ones lack. Every runtime kernel with a hot loop calls _wide_vectors() first: where WIDE_VECTORS
# holds, its loops (tanh, the stage sums, the products' loops) run 512 bits wide. Measured on an Intel Xeon
# (Emerald Rapids, 2 vCPU), tanh(Z + b) on a block: 1.49 against 1.83 ns an element (16 x 128), 1.42 against
# 1.79 (64 x 128), interleaved; the gradients of whole networks in benchmarks/ and README.
# The features are numba's (NUMBA_CPU_FEATURES counts): those the kernels are compiled for.
# ------------------------------------------------------------------------------------------------
_FM_FEATURES = get_host_cpu_features().split(",")
AVX512 = "+avx512f" in _FM_FEATURES
WIDE_VECTORS = AVX512 and "+avx512vbmi2" in _FM_FEATURES


def _wide_vectors():
    """Called first in a kernel: lets LLVM vectorise it 512 bits wide where WIDE_VECTORS holds; nothing elsewhere,
    and nothing in plain Python (NUMBA_DISABLE_JIT)."""


def _function_attribute(attribute, wanted=True):
    """An intrinsic that gives the LLVM function being built the attribute (where ``wanted``): numba's lowering of
    the kernel that calls it, through an overload inlined at numba's level, so that the call lands in the kernel
    itself (_wide_vectors here, rkgen.runtime.products._inlined). llvmlite's attribute set takes only LLVM's named
    attributes; string attributes are added to it as the set it is."""

    @intrinsic
    def add(typingctx):
        def codegen(context, builder, signature, args):
            if wanted:
                set.add(builder.function.attributes, attribute)
            return context.get_dummy_value()

        return types.none(), codegen

    return add


_fm_prefer_512 = _function_attribute('"prefer-vector-width"="512"', WIDE_VECTORS)


@numba.extending.overload(_wide_vectors, inline="always")
def _wide_vectors_typed():
    """_wide_vectors in compiled code."""
    return lambda: _fm_prefer_512()
