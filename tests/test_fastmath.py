"""Accuracy, special values, monotonicity and vectorisation of rkgen/runtime/fastmath.py.

The runtime module is imported as it is (generated modules carry a copy of it). Errors are relative:
|y - ref| / max(|ref|, 2**-1022). Subnormal results are therefore measured in absolute terms, in
units of the smallest normal number. The reference is 80-bit long double, which is accurate to
~1e-19 here. Tests that need it are skipped where np.longdouble is no wider than float64. _tanh is
also compared directly with math.tanh, as the project requires.
"""

import math
import re

import numpy as np
import pytest

pytestmark = pytest.mark.numba

TINY = 2.0**-1022
LD = np.longdouble
HAVE_LD = np.finfo(LD).nmant >= 63
need_ld = pytest.mark.skipif(not HAVE_LD, reason="np.longdouble is not wider than float64")

MAX_REL = {"_tanh": 4.5e-16,  # measured 3.97e-16; FMA contraction varies by CPU
           "_sigmoid": 2.5e-16, "_softplus": 2.5e-16}
MAX_REL_VS_MATH_TANH = 7e-16  # ours (<= 4e-16) plus glibc's own (<= 3.1e-16)
LN2 = math.log(2.0)


@pytest.fixture(scope="module")
def fm():
    import rkgen.runtime.fastmath as module

    return module


def _loop(f):
    from numba import njit

    @njit(error_model="numpy")
    def apply(x, out):
        for i in range(x.size):
            out[i] = f(x[i])

    return apply


@pytest.fixture(scope="module")
def vec(fm):
    loops = {name: _loop(getattr(fm, name)) for name in ("_tanh", "_sigmoid", "_softplus")}

    def run(name, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty_like(x)
        loops[name](x, out)
        return out

    run.loops = loops
    return run


def _ref(name, x):
    xl = x.astype(LD)
    if name == "_tanh":
        return np.tanh(xl)
    if name == "_sigmoid":
        return LD(1) / (LD(1) + np.exp(-xl))
    return np.log1p(np.exp(xl))  # long double does not overflow for |x| <= 800


def _relerr(y, ref):
    ref = np.asarray(ref, dtype=LD)
    return np.abs((y.astype(LD) - ref) / np.maximum(np.abs(ref), LD(TINY))).astype(np.float64)


def _samples():
    rng = np.random.default_rng(20240611)
    n = 10**6
    log_uniform = np.exp(rng.uniform(np.log(1e-310), np.log(800.0), n)) * rng.choice([-1.0, 1.0], n)
    return {
        "log-uniform |x| in [1e-310, 800]": log_uniform,
        "uniform [-25, 25]": rng.uniform(-25.0, 25.0, n),
        "uniform [-2, 2]": rng.uniform(-2.0, 2.0, n),
        "uniform [-746, -700] (subnormal outputs)": rng.uniform(-746.0, -700.0, 10**5),
    }


SAMPLES = _samples()


@need_ld
@pytest.mark.parametrize("name", ["_tanh", "_sigmoid", "_softplus"])
@pytest.mark.parametrize("sample", list(SAMPLES))
def test_max_relative_error(vec, name, sample):
    x = SAMPLES[sample]
    err = _relerr(vec(name, x), _ref(name, x))
    i = int(np.argmax(err))
    assert err[i] <= MAX_REL[name], f"{name}: rel err {err[i]:.3e} at x={x[i]!r}"


@pytest.mark.parametrize("sample", list(SAMPLES))
def test_tanh_against_math_tanh(vec, sample):
    x = SAMPLES[sample]
    y = vec("_tanh", x)
    mt = np.array([math.tanh(v) for v in x.tolist()])
    err = np.abs(y - mt) / np.maximum(np.abs(mt), TINY)
    i = int(np.argmax(err))
    assert err[i] <= MAX_REL_VS_MATH_TANH, f"rel err {err[i]:.3e} vs math.tanh at x={x[i]!r}"


@need_ld
@pytest.mark.parametrize("name", ["_tanh", "_sigmoid", "_softplus"])
def test_near_breakpoints(vec, name):
    # Points near the switches between formulas: the tanh clamp at 20, the former polynomial/exp
    # switch of tanh at 0.625, every reduction boundary (k + 1/2) ln2 of the exp core, the log1p switch
    # at exp(-|x|) = 1/2, and the extra 2**-1000 scaling step below -693.
    bp = [0.0, 0.625, 20.0, LN2, 693.0, 693.5, 708.4, 709.8, 745.1]
    bp += [(k + 0.5) * LN2 for k in range(1076)] + [(k + 0.5) * LN2 / 2 for k in range(60)]
    bp = np.array(bp)
    offs = np.array([-4, -3, -2, -1, 0, 1, 2, 3, 4])
    x = (bp[:, None] + offs[None, :] * np.spacing(bp)[:, None]).ravel()
    x = np.concatenate([x, -x])
    err = _relerr(vec(name, x), _ref(name, x))
    i = int(np.argmax(err))
    assert err[i] <= MAX_REL[name], f"{name}: rel err {err[i]:.3e} at x={x[i]!r}"


def test_special_values(fm):
    inf, nan = math.inf, math.nan
    tanh, sig, sp = fm._tanh, fm._sigmoid, fm._softplus
    for f, x0 in ((tanh, 0.0), (sig, 0.5), (sp, LN2)):
        assert f(0.0) == x0 and f(-0.0) == x0
    assert math.copysign(1.0, tanh(0.0)) == 1.0
    assert math.copysign(1.0, tanh(-0.0)) == -1.0
    assert tanh(inf) == 1.0 and tanh(-inf) == -1.0
    assert sig(inf) == 1.0 and sig(-inf) == 0.0
    assert sp(inf) == inf and sp(-inf) == 0.0
    for f in (tanh, sig, sp):
        assert math.isnan(f(nan))
    # tiny and subnormal arguments: tanh(x) == x exactly
    for x in (5e-324, 1e-310, 2.2250738585072014e-308, 1e-300, 1e-200, 1e-20, 1e-9):
        assert tanh(x) == x and tanh(-x) == -x
    # saturation and the ends of the range
    for x in (19.5, 20.0, 21.0, 700.0, 1e308, 1.7976931348623157e308):
        assert tanh(x) == 1.0 and tanh(-x) == -1.0
        assert 1.0 - 1e-8 < sig(x) <= 1.0 and 0.0 <= sig(-x) < 1e-8 and 0.0 <= sp(-x) < 1e-8
        assert sig(x) == 1.0 or x < 37.0
    assert sp(1e308) == 1e308 and sp(50.0) == 50.0
    assert sig(-1e308) == 0.0 and sig(-746.0) == 0.0 and sp(-746.0) == 0.0
    assert sig(-745.0) == 5e-324 and sp(-745.0) == 5e-324  # exp(-745) rounds to 4.94e-324
    assert sig(-710.0) == math.exp(-710.0) and sp(-710.0) == math.exp(-710.0)
    # ranges
    x = np.linspace(-40.0, 40.0, 80001)
    assert all(-1.0 <= tanh(v) <= 1.0 and 0.0 <= sig(v) <= 1.0 and sp(v) >= 0.0 for v in x[::97])


def test_special_values_vectorised(vec):
    # the same special values, through the vectorised loop rather than the scalar call
    x = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324, -5e-324, 1e308, -1e308])
    t = vec("_tanh", x)
    np.testing.assert_array_equal(t[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(t[1]) and not np.signbit(t[0])
    assert np.isnan(t[4]) and t[5] == 5e-324 and t[6] == -5e-324 and t[7] == 1.0 and t[8] == -1.0
    s = vec("_sigmoid", x)
    np.testing.assert_array_equal(s[[0, 1, 2, 3, 7, 8]], [0.5, 0.5, 1.0, 0.0, 1.0, 0.0])
    assert np.isnan(s[4])
    p = vec("_softplus", x)
    np.testing.assert_array_equal(p[[2, 3, 7, 8]], [np.inf, 0.0, 1e308, 0.0])
    assert p[0] == p[1] == LN2 and np.isnan(p[4])


def _breakpoints(name):
    if name == "_tanh":
        return [0.0, 0.625, 20.0] + [(k + 0.5) * LN2 / 2 for k in range(56)]
    neg = [-(k + 0.5) * LN2 for k in range(1074)] + [-LN2, -693.5, -708.4]
    return [0.0, LN2] + [(k + 0.5) * LN2 for k in range(40)] + neg


def _derivative(name, x):
    if name == "_tanh":
        return 1.0 / math.cosh(x) ** 2 if abs(x) < 350.0 else 0.0
    s = 1.0 / (1.0 + math.exp(-x)) if x > -700.0 else math.exp(x)
    return s * (1.0 - s) if name == "_sigmoid" else s


@pytest.mark.parametrize("name", ["_tanh", "_sigmoid", "_softplus"])
def test_monotone_near_breakpoints(vec, fm, name):
    """No jumps where the formulas switch.

    First, steps of one ulp of x through every breakpoint. tanh is exactly non-decreasing. sigmoid
    and softplus can wobble back by one ulp, as any function that is faithful but not correctly
    rounded may. Then a grid on which f rises by >= 4 ulps a step, where all three must be
    strictly monotone.
    """
    f = getattr(fm, name)
    worst_back = 0.0
    n_grids = 0
    for b in _breakpoints(name):
        x = np.unique(b + np.arange(-400, 401) * np.spacing(b if b != 0.0 else 1e-300))
        y = vec(name, x)
        back = -np.diff(y) / np.spacing(np.abs(y[:-1]))
        worst_back = max(worst_back, float(back.max()))
        deriv = _derivative(name, b)
        if deriv == 0.0:
            continue
        step = max(4.0 * np.spacing(abs(f(b))) / deriv, 2.0 * np.spacing(abs(b)))
        if 600.0 * step > 0.02:
            continue  # f is flat to double precision here, or f' changes across the grid
        xg = b + np.arange(-300, 301) * step
        yg = vec(name, xg)
        assert np.all(np.diff(yg) > 0), f"{name} not increasing on a 4-ulp grid near {b!r}"
        n_grids += 1
    assert n_grids >= 20
    allowed = 0.0 if name == "_tanh" else 1.0
    assert worst_back <= allowed, f"{name} steps back {worst_back} ulp near a breakpoint"


def test_odd_and_complementary(vec):
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-30, 30, 10**5), np.exp(rng.uniform(-700, 6, 10**5))])
    np.testing.assert_array_equal(vec("_tanh", -x), -vec("_tanh", x))
    # sigmoid(x) + sigmoid(-x) == 1 and softplus(x) - softplus(-x) == x, to rounding
    s = vec("_sigmoid", x) + vec("_sigmoid", -x)
    assert np.max(np.abs(s - 1.0)) <= 2.3e-16
    d = vec("_softplus", x) - vec("_softplus", -x)
    assert np.max(np.abs(d - x) / np.maximum(np.abs(x), 1.0)) <= 5e-16


@pytest.mark.parametrize("name", ["_tanh", "_sigmoid", "_softplus"])
def test_loop_vectorises(vec, name):
    """The activation must inline into a plain loop, and the loop must become SIMD code."""
    loop = vec.loops[name]
    vec(name, np.linspace(-3, 3, 16))
    ir = loop.inspect_llvm(loop.signatures[0])
    body = ir[ir.index("define") : ir.index("define", ir.index("define") + 1)]
    assert re.search(r"fdiv (?:[a-z]+ )*<\d+ x double>", body), f"{name}: loop did not vectorise"
    call = re.search(r"call [^\n]*@_ZN[^\n(]*(_fm_|_tanh|_sigmoid|_softplus)", body)
    assert call is None, f"{name}: not inlined ({call and call.group(0)[:120]})"


def test_wide_vectors(fm):
    """_wide_vectors() asks for 512-bit vectors exactly where WIDE_VECTORS holds (AVX-512 with VBMI2, the cores
    that run them at full speed), and the loop it is in computes the same values as one without it."""
    from numba import njit
    from numba.core.codegen import get_host_cpu_features

    features = get_host_cpu_features().split(",")
    assert fm.AVX512 == ("+avx512f" in features)
    assert fm.WIDE_VECTORS == (fm.AVX512 and "+avx512vbmi2" in features)
    tanh, wide = fm._tanh, fm._wide_vectors

    @njit(error_model="numpy")
    def plain(x, out):
        for i in range(x.size):
            out[i] = tanh(x[i])

    @njit(error_model="numpy")
    def widened(x, out):
        wide()
        for i in range(x.size):
            out[i] = tanh(x[i])

    x = np.linspace(-4.0, 4.0, 1001)
    a, b = np.empty_like(x), np.empty_like(x)
    plain(x, a)
    widened(x, b)
    np.testing.assert_array_equal(a, b)  # tanh is elementwise: the vector width changes no rounding
    ir = widened.inspect_llvm(widened.signatures[0])
    assert ('"prefer-vector-width"="512"' in ir) == fm.WIDE_VECTORS
    asm = widened.inspect_asm(widened.signatures[0])
    assert ("zmm" in asm) == fm.WIDE_VECTORS
    assert "zmm" not in plain.inspect_asm(plain.signatures[0])
