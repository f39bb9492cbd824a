"""The runtime (rkgen/runtime/*.py) as ordinary modules: its pieces against numpy, Newton's convergence test,
the layout and the tape pool, and how the renderer inlines it into every generated module.

The numba pieces are compiled from the package's own files here (each a small kernel), not from a generated
module: a generated module carries a copy of the same source.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

import rkgen.runtime as runtime
from rkgen import builtin_names, load
from rkgen.codegen import printer, render
from rkgen.codegen.renderer import inline, modules_for

RUNTIME = pathlib.Path(runtime.__file__).parent
ALL = sorted(p.stem for p in RUNTIME.glob("*.py") if p.stem != "__init__")


def test_every_module_is_used_by_some_structure_and_has_a_one_line_summary():
    used = {m for s in ("explicit", "diagonally implicit", "fully implicit") for m in modules_for(s)}
    assert used | {"_tableau"} == set(ALL)
    for name in ALL:
        doc = ast.get_docstring(ast.parse((RUNTIME / f"{name}.py").read_text()))
        assert doc and len(doc.splitlines()[0]) <= 120, name


def test_runtime_passes_ruff():
    ruff = pytest.importorskip("ruff")  # noqa: F841 -- a test dependency; the command is what runs
    run = subprocess.run([sys.executable, "-m", "ruff", "check", str(RUNTIME)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr


def test_importing_the_package_imports_no_numba():
    code = "import sys, rkgen.runtime, rkgen.codegen.renderer; print('numba' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_printer_and_runtime_use_the_same_fastmath_flags():
    from rkgen.runtime.products import _FAST

    assert ast.literal_eval(printer.FASTMATH) == _FAST


@pytest.mark.parametrize("structure", ["explicit", "diagonally implicit", "fully implicit"])
def test_inlined_runtime_keeps_every_function_and_no_relative_import(structure):
    text = inline(structure).text
    tree = ast.parse(text)
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))]
    defined = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for name in modules_for(structure):
        source = ast.parse((RUNTIME / f"{name}.py").read_text())
        assert {n.name for n in source.body if isinstance(n, ast.FunctionDef)} <= defined


@pytest.mark.parametrize("name", ["rk4", "sdirk2", "gauss2"])
def test_source_map_points_at_the_equations(name):
    from rkgen.adjoint import layer_equations

    t = load(name)
    r = render(t)
    lines = r.text.splitlines()
    for label, (first, last) in r.spans.items():
        assert 1 <= first <= last <= len(lines), label
        if label.startswith("def:"):
            head = lines[first - 1 : last]
            assert head[0].startswith(("@", "def ")), label
            assert next(x for x in head if not x.startswith("@")).startswith(f"def {label[4:]}("), label
    eq = layer_equations(t)
    for st in eq.forward:
        label = f"forward:Y_{st.i + 1}"
        if label in r.spans:
            assert lines[r.spans[label][0] - 1].strip() == f"# {st}"
    for st in eq.backward:
        first, last = r.spans[f"backward:eta_{st.i + 1}"]
        assert f"eta[{st.i}]" in "\n".join(lines[first - 1 : last])
        again = r.spans.get(f"backward:Y_{st.i + 1}")  # an explicit tableau's Y_i, formed again from y_j
        assert (again is not None) == (t.structure == "explicit" and st.i > 0), st
        if again:
            code = "\n".join(lines[again[0] - 1 : again[1]])
            assert f"# {eq.forward[st.i]} again" in code and f"X[{st.i}, a, q] = " in code
    first, last = r.spans["update"]
    assert lines[first - 1].strip().startswith("# y = y + h*(")


def test_source_map_covers_every_tableau_function():
    for name in builtin_names():
        spans = render(load(name)).spans
        assert {"def:_layer_forward", "def:_layer_backward", "def:forward", "def:backward", "update"} <= set(spans)


# --------------------------------------------------------------------------------------------------
# compiled pieces against numpy
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(7)


@pytest.mark.numba
@pytest.mark.parametrize("n", [1, 2, 5, 12])
def test_solve_against_numpy(rng, n):
    from rkgen.runtime.implicit import _solve

    M = rng.normal(size=(n, n)) + n * np.eye(n)
    r = rng.normal(size=n)
    x = r.copy()
    assert _solve(M.copy(), x, n)
    np.testing.assert_allclose(x, np.linalg.solve(M, r), rtol=1e-12, atol=1e-14)
    assert not _solve(np.zeros((n, n)), r.copy(), n)
    bad = M.copy()
    bad[0, 0] = math.inf
    bad[1 % n, 0] = math.inf
    assert not _solve(bad, r.copy(), n)


def _per_sample_update(it, X, R, status, prev, n, nb, fixed, state_of):
    """The oracle: Newton's update and test written per sample, as the runtime once did (the state functions are
    the runtime's: this checks the passes around them)."""
    active = done = 0
    for q in range(nb):
        if status[q] != 0:
            continue
        size = step = 0.0
        for a in range(n):
            X[a, q] += R[a, q]
            size = max(size, abs(X[a, q]))
            step = max(step, abs(R[a, q]))
        state = state_of(it, step, prev[q], size, X[:, q], n)
        if state == 0:
            prev[q] = step
            active += 1
        else:
            status[q] = state
            done += state > 0
    return active, done


@pytest.mark.numba
@pytest.mark.parametrize("fixed", [False, True])
@pytest.mark.parametrize("n", [1, 2, 3])
def test_block_newton_update_equals_the_per_sample_one(n, fixed):
    """_newton_update (vectorised passes, R used as scratch) against the update written per sample: the same
    iterates, states, previous steps and counts, on samples that converge, go on, fail on an infinite update,
    carry a NaN, or were frozen before (whose garbage update must not move them); Newton's test and the fixed
    point's."""
    from rkgen.runtime.implicit import _fixed_point_state, _newton_state, _newton_update

    state_of = getattr(_fixed_point_state if fixed else _newton_state, "py_func",
                       _fixed_point_state if fixed else _newton_state)
    rng = np.random.default_rng(n)
    nb, nw = 29, 32
    for it in (1, 2, 3):
        X = rng.normal(size=(n, nw))
        R = rng.normal(size=(n, nw)) * 10.0 ** rng.integers(-18, 1, nw)  # from converged to far off
        R[:, 3] = np.inf
        R[0, 4] = np.nan
        X[n - 1, 5] = np.nan
        R[:, 6] = np.nan  # a frozen sample's garbage
        status = rng.choice([0, 0, 0, 1, -1], nb).astype(np.int64)
        status[3:6] = 0
        status[6] = 1
        prev = 10.0 ** rng.integers(-16, 0, nb).astype(float)
        X2, R2, status2, prev2 = X.copy(), R.copy(), status.copy(), prev.copy()
        got = _newton_update(it, X, R, status, prev, n, nb, fixed)
        want = _per_sample_update(it, X2, R2, status2, prev2, n, nb, fixed, state_of)
        assert got == want
        np.testing.assert_array_equal(X, X2)
        np.testing.assert_array_equal(status, status2)
        np.testing.assert_array_equal(prev, prev2)
        assert status[3] == -1 and status[6] == 1 and not np.isnan(X[0, 6])


@pytest.mark.numba
def test_newton_state_fails_on_nan_that_max_would_drop():
    from numba import njit

    from rkgen.runtime.implicit import NEWTON_TOL, _newton_state

    @njit
    def state(it, step, prev, size, x):
        return _newton_state(it, step, prev, size, x, x.size)

    ones = np.ones(3)
    assert state(1, 1e-3, math.inf, 1.0, ones) == 0
    assert state(1, 1e-20, math.inf, 1.0, ones) == 1
    small = 1e-2 * NEWTON_TOL  # contraction: the error left after it is far below the tolerance
    assert state(2, small, 100 * small, 1.0, ones) == 1
    # a quadratic fall (theta <= 0.01): the error left is about theta^2 step (7e-20 here), although the linear
    # estimate theta / (1 - theta) step (8e-15) is above the bound 1e-2 NEWTON_TOL (1 + size) = 2e-15
    assert state(3, 9.4e-10, 1.08e-4, 1.0, ones) == 1
    # theta = 0.02 is no quadratic fall: the linear estimate (2e-14) decides, and the iteration goes on
    assert state(3, 1e-12, 5e-11, 1.0, ones) == 0
    assert state(1, math.inf, math.inf, 1.0, ones) == -1  # an infinite update
    for k in range(3):  # a NaN iterate, where max() dropped it and the rest says "converged"
        x = ones.copy()
        x[k] = math.nan
        assert state(2, 1e-20, 1.0, 1.0, x) == -1
        x[k] = -math.inf
        assert state(2, 1e-20, 1.0, 1.0, x) == -1


@pytest.mark.numba
@pytest.mark.parametrize(("d", "nw"), [(1, 16), (2, 16), (3, 16), (8, 16), (8, 64), (13, 16), (16, 8), (16, 16),
                                      (16, 64), (17, 16), (40, 16), (136, 16)])
@pytest.mark.parametrize("field", [0, 1])
def test_field_and_adjoint_stage_against_numpy(rng, d, nw, field):
    """Every path of the products: d = 2 fused, d < 8 by rows, eight-column blocks, and wide blocks through BLAS
    (d >= WIDE, or d >= LONG_WIDTH in blocks of LONG_BLOCK = 64 columns or more: 17 and 16 on AVX2, 16 and 8 on
    AVX-512; on all nw columns of the block, whose padding columns hold zeros in Y and eta). Both machines run
    both paths: d = 13 in 16 columns is narrow and d = 17 wide on either. Wide dK: one GEMM adding into dK, on the
    block's nb samples (float32's paths: test_outer_products_in_both_precisions)."""
    from rkgen.runtime.activations import _activate, _activate_shifted, _derivative
    from rkgen.runtime.products import AVX512, _adjoint_stage, _field, _wide

    wide, long_width = (16, 8) if AVX512 else (17, 16)
    assert _wide(d, nw) == (d >= wide or (d >= long_width and nw >= 64))
    nb = nw - 3
    K, b = rng.normal(size=(d, d)), rng.normal(size=d)
    Y = np.zeros((d, nw))
    Y[:, :nb] = rng.normal(size=(d, nb))
    Z, S, F = np.empty((d, nw)), np.empty((d, nw)), np.empty((d, nw))
    _field(K, b, Y, Z, S, S if field == 0 else F, field, 0, d, nw)
    s = np.tanh(K @ Y[:, :nb] + b[:, None])
    np.testing.assert_allclose(S[:, :nb], s, rtol=1e-14, atol=1e-15)
    f = s if field == 0 else -K.T @ s
    np.testing.assert_allclose((S if field == 0 else F)[:, :nb], f, rtol=1e-13, atol=1e-14)
    # one stage's adjoint: mu = h J^T eta, dK, dbeta and eta . F, against the formulas of the contract. slope 0
    # (explicit tanh stages) takes sigma' = 1 - S^2 from S: D holds NaN, which must not reach a result; slope 1
    # with D = 1 - S^2 (what _derivative gives for tanh) is the path of every other activation and of implicit
    # stages, the same numbers read from D
    D = np.full((d, nw), np.nan)
    eta = np.zeros((d, nw))
    eta[:, :nb] = rng.normal(size=(d, nb))
    mu, G, U = np.zeros((d, nw)), np.empty((d, nw)), np.empty((d, nw))
    dK, db, h = np.zeros((d, d)), np.zeros(d), 0.3
    dh = _adjoint_stage(K, Y, S, D, eta, mu, G, U, dK, db, h, field, 0, d, nb, nw)
    _derivative(S, D, 0, d, nw)
    read = np.zeros((d, nw)), np.zeros((d, d)), np.zeros(d)
    dh_read = _adjoint_stage(K, Y, S, D, eta, read[0], G, U, read[1], read[2], h, field, 1, d, nb, nw)
    for ours, theirs in zip((mu, dK, db, dh), (*read, dh_read), strict=True):
        np.testing.assert_allclose(theirs, ours, rtol=1e-13, atol=1e-14)
    ds, e = 1 - s**2, eta[:, :nb]
    if field == 0:
        g = h * ds * e
        mu_ref, dK_ref, db_ref = K.T @ g, g @ Y[:, :nb].T, g.sum(1)
    else:
        g = h * ds * (K @ e)
        mu_ref = -K.T @ g
        dK_ref, db_ref = -(g @ Y[:, :nb].T) - h * (s @ e.T), -g.sum(1)
    np.testing.assert_allclose(mu[:, :nb], mu_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(dK, dK_ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(db, db_ref, rtol=1e-12, atol=1e-13)
    assert dh == pytest.approx(float(np.sum(e * f)), rel=1e-12, abs=1e-13)
    for act, ref, dref in [(1, lambda z: np.maximum(z, 0), lambda z: (z > 0) * 1.0),
                           (2, lambda z: np.logaddexp(0, z), lambda z: 1 / (1 + np.exp(-z))),
                           (3, lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2)]:
        _activate(Y, S, act, d, nw)
        _derivative(S, D, act, d, nw)
        np.testing.assert_allclose(S, ref(Y), rtol=1e-14, atol=1e-300)
        np.testing.assert_allclose(D, dref(Y), rtol=1e-13, atol=1e-15)
        shifted = np.empty((d, nw))
        _activate_shifted(Y, b, shifted, act, d, nw)
        np.testing.assert_allclose(shifted, ref(Y + b[:, None]), rtol=1e-14, atol=1e-300)


@pytest.mark.numba
def test_inlined_stage_keeps_its_vector_width(rng):
    """_adjoint_stage and its width-2 case carry LLVM's "alwaysinline" (products._inlined), a caller compiled with
    them holds no call to them, and the width-2 loop asks for 512-bit vectors itself where WIDE_VECTORS holds: LLVM
    vectorises an inlined kernel before it inlines it, so the caller's width does not reach the loop. Compiled here
    afresh (numba does not show the code of kernels loaded from its cache), with the kernels' own options."""
    import re

    from numba import njit

    from rkgen.runtime.fastmath import WIDE_VECTORS, _wide_vectors
    from rkgen.runtime.products import _adjoint_stage, _adjoint_stage_2

    stage2 = njit(error_model="numpy", fastmath=_adjoint_stage_2.targetoptions["fastmath"])(_adjoint_stage_2.py_func)
    stage = njit(error_model="numpy", fastmath=_adjoint_stage.targetoptions["fastmath"])(_adjoint_stage.py_func)

    @njit(error_model="numpy")
    def caller(K, Y, S, D, eta, mu, G, U, dK, db, nb, nw):
        _wide_vectors()
        return stage(K, Y, S, D, eta, mu, G, U, dK, db, 0.3, 0, 0, 2, nb, nw)

    d, nw = 2, 16
    K, Y = rng.normal(size=(d, d)), rng.normal(size=(d, nw))
    S, D, eta = np.tanh(Y), np.full((d, nw), np.nan), rng.normal(size=(d, nw))
    args = (K, Y, S, D, eta, np.zeros((d, nw)), np.empty((d, nw)), np.empty((d, nw)), np.zeros((d, d)), np.zeros(d))
    dh = caller(*args, nw - 3, nw)
    assert dh == _adjoint_stage(*args[:10], 0.3, 0, 0, 2, nw - 3, nw)  # the same sums as the cached kernel
    stage2(K, Y, S, D, eta, np.zeros((d, nw)), np.zeros((d, d)), np.zeros(d), 0.3, 0, nw - 3, nw)
    ir2 = stage2.inspect_llvm(stage2.signatures[0])
    assert "alwaysinline" in ir2 and "alwaysinline" in stage.inspect_llvm(stage.signatures[0])
    assert ('"prefer-vector-width"="512"' in ir2) == WIDE_VECTORS
    assert ("zmm" in stage2.inspect_asm(stage2.signatures[0])) == WIDE_VECTORS
    ir = caller.inspect_llvm(caller.signatures[0])
    body = ir[ir.index("define") : ir.index("define", ir.index("define") + 1)]
    call = re.search(r"call [^\n]*@_ZN[^\n(]*_adjoint_stage", body)
    assert call is None, f"not inlined: {call and call.group(0)[:120]}"


@pytest.mark.numba
@pytest.mark.parametrize(("d", "nw"), [(8, 16), (16, 8), (17, 16), (40, 16), (136, 16), (64, 128)])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_outer_products_in_both_precisions(rng, d, nw, dtype):
    """dK += scale G Y^T on a block's nb samples, into a float64 dK, against numpy in float64 on the same numbers.
    Wide float64 blocks add one GEMM into dK (BLAS's beta = 1, k = nb); float32 ones form the product in float32
    through the scratch W, whole (d = 17, 40 in 16 columns; 64 in 128) or in chunks of nw rows, the last one shorter
    (d = 136 > sqrt(SMALL_PRODUCT) in 16 columns), but the smallest (d d nw <= OUTER_LOOPS: d = 16 in 8 columns on
    AVX-512) in the loops; d = 8 in 16 columns is narrow (the loops). The float32 product
    sums nw terms in float32: its error is within nw u32 of the sum of |terms| (u32 = 2^-24). The plain-Python
    _outer_blas (what NUMBA_DISABLE_JIT runs) meets the same bound."""
    from rkgen.runtime.products import _adds_in_place, _outer, _outer_blas

    nb = nw - 3
    G, Y = np.zeros((d, nw), dtype), np.zeros((d, nw), dtype)
    G[:, :nb] = rng.normal(size=(d, nb))
    Y[:, :nb] = rng.normal(size=(d, nb))
    start = rng.normal(size=(d, d))
    dK, W = start.copy(), np.empty((d, nw), dtype)
    _outer(G, Y, dK, -0.7, W, d, nb)
    g, y = G[:, :nb].astype(np.float64), Y[:, :nb].astype(np.float64)
    expected = start - 0.7 * (g @ y.T)
    bound = (np.finfo(dtype).eps * nw + 1e-15) * (0.7 * (np.abs(g) @ np.abs(y).T) + np.abs(start))
    assert np.all(np.abs(dK - expected) <= bound)
    assert W.dtype == dtype and dK.dtype == np.float64
    plain = start.copy()
    _outer_blas(G, Y, plain, -0.7, W, d, nb)  # the Python function itself, not the compiled overload
    assert np.all(np.abs(plain - expected) <= bound)
    assert _adds_in_place(G, plain) == (dtype == np.float64)



@pytest.mark.numba
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [(5, 7, 3), (70, 65, 60)], ids=["small", "large"])
def test_matmul_every_transposition_against_numpy(rng, dtype, size):
    """_matmul, the kernels' one BLAS call (numba_xxgemm, without np.dot's checks; from LARGE_PRODUCT multiply-adds
    on, the large-product symbol of rkgen.runtime.blas): C[:m, :n] = alpha op(A) op(B) + beta C for every pair of
    transpositions, on views with leading dimensions larger than their rows (parts of bigger arrays, as the float32
    scratch takes rows of a block); beta = 0 ignores NaN in C, as BLAS does; the entries of C outside [:m, :n] stay
    as they were. Compiled and plain Python (what NUMBA_DISABLE_JIT runs)."""
    import numba

    from rkgen.runtime.blas import LARGE_PRODUCT
    from rkgen.runtime.products import _matmul

    compiled = numba.njit(lambda A, ta, B, tb, C, alpha, beta, m, n, k: _matmul(A, ta, B, tb, C, alpha, beta, m, n, k))
    m, n, k = size
    assert (m * n * k >= LARGE_PRODUCT) == (size[0] == 70)  # each path once
    tol = (1e-13 if dtype == np.float64 else 1e-5) * np.sqrt(k)
    for ta in (False, True):
        for tb in (False, True):
            A = rng.normal(size=(k + 2, m + 3) if ta else (m + 2, k + 3)).astype(dtype)
            B = rng.normal(size=(n + 1, k + 4) if tb else (k + 1, n + 4)).astype(dtype)
            a = (A.T if ta else A)[:m, :k].astype(np.float64)
            b = (B.T if tb else B)[:k, :n].astype(np.float64)
            for beta in (0.0, 0.5):
                for run in (compiled, _matmul):
                    C = rng.normal(size=(m + 1, n + 2)).astype(dtype)
                    if beta == 0.0:
                        C[:m, :n] = np.nan
                    start = C.copy()
                    run(A, ta, B, tb, C, -1.5, beta, m, n, k)
                    expected = -1.5 * (a @ b) + (beta * start[:m, :n].astype(np.float64) if beta else 0.0)
                    np.testing.assert_allclose(C[:m, :n], expected, rtol=tol, atol=tol)
                    outside = np.ones(C.shape, bool)
                    outside[:m, :n] = False
                    assert np.array_equal(C[outside], start[outside])


BORROWING = """
import numba
import numpy as np
from numba import types
from numba.core.runtime import rtsys
from numba.extending import intrinsic

from rkgen.runtime.driver import _alive, _borrowed


@intrinsic
def reference(typingctx, a):
    # the address of the array's reference to its memory (its meminfo): 0 for a borrowed array
    def codegen(context, builder, signature, args):
        meminfo = context.make_array(signature.args[0])(context, builder, args[0]).meminfo
        return builder.ptrtoint(meminfo, context.get_value_type(types.intp))

    return types.intp(a), codegen


@numba.njit
def references(X, W):
    B, pair = _borrowed(X), _borrowed((X, W))
    return reference(X), reference(B), reference(B[1]), reference(B[1:3]), reference(pair[0]), reference(pair[1][2])


@numba.njit
def views(X, rounds):
    work_ = np.zeros((3, 4))
    X, work, pair = _borrowed(X), _borrowed(work_), _borrowed((X, work_))
    total = 0.0
    for _ in range(rounds):
        for i in range(X.shape[0]):
            row, part = X[i], work[i % 3]
            for c in range(4):
                part[c] += row[:4][c]
            junk = np.full((3, 4), -1e300)  # would take work_'s memory, were work_ freed before _alive
            total += row.sum() + pair[0][i, 0] + pair[1][i % 3, 1] + 0.0 * junk[i % 3, 0]
    _alive(work_)
    return total, work.sum()


if __name__ == "__main__":
    owned = numba.njit(lambda: np.arange(40.0).reshape(8, 5))()  # memory numba allocated: its count is visible
    before = owned.base.refcount
    views(owned, 1)  # compiled
    stats = rtsys.get_allocation_stats()
    views(owned, 50)
    after = rtsys.get_allocation_stats()
    print(before, owned.base.refcount, after.alloc - stats.alloc, after.free - stats.free)
"""


@pytest.mark.numba
def test_borrowed_views_take_no_references_and_free_nothing(tmp_path):
    """The driver's borrowed arrays (_borrowed) are the same data, shape and strides, with no reference: a borrowed
    array, its views and each array of a borrowed tuple hold a null reference (the array given holds one), so
    views of them count nothing; what the kernel allocates is held to its _alive call (arrays allocated in the
    loop would take its memory were it freed early, and the sums would differ from plain Python's) and freed
    after it, neither leaked nor freed twice (numba's allocation statistics, which NUMBA_NRT_STATS turns on when
    a process starts, balance). Plain Python: _borrowed is the identity, and the same loops give the same
    numbers."""
    from rkgen.runtime.driver import _alive, _borrowed

    script = tmp_path / "borrowing.py"
    script.write_text(BORROWING)
    env = {**os.environ, "NUMBA_NRT_STATS": "1", "NUMBA_CACHE_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, env=env, check=True)
    before, after, allocated, freed = map(int, run.stdout.split())
    assert before == after and allocated == freed >= 1
    spec = importlib.util.spec_from_file_location("borrowing", script)  # the kernel, in this process
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    views, X = module.views, np.arange(40.0).reshape(8, 5)
    given, *borrowed = module.references(X, np.zeros((3, 4)))
    assert given != 0 and borrowed == [0] * 5
    assert views(X, 50) == pytest.approx(views.py_func(X, 50), rel=1e-13)  # plain Python: the same loops
    assert _borrowed(X) is X and _alive(X) is None


# --------------------------------------------------------------------------------------------------
# layout and tape pool (plain Python)
# --------------------------------------------------------------------------------------------------


def test_layout_covers_every_sample_once():
    import numba

    from rkgen.runtime import layout

    for m, d, N in [(1, 2, 1), (7, 2, 3), (1000, 2, 15), (5000, 16, 100), (3, 64, 2)]:
        bs, nblocks, bounds = layout._layout(m, d, N)
        assert bs % 8 == 0 and nblocks * bs >= m > (nblocks - 1) * bs
        if bounds is not None:
            assert bounds[0] == 0 and bounds[-1] == nblocks and np.all(np.diff(bounds) > 0)
            assert len(bounds) - 1 == numba.get_num_threads()


def test_wide_calls_hold_blas_to_one_thread_and_give_it_back(monkeypatch):
    """Where OpenBLAS takes the large products: inside a wide call every BLAS library threadpoolctl sees runs one
    thread; after it, its own count again (also after an error); narrow calls leave BLAS alone. Where MKL takes them
    (rkgen.runtime.blas; the kernels hold it to one thread themselves), the call leaves the counts alone. Which one
    this process bound depends on whether torch was imported first, so both are set here."""
    pytest.importorskip("threadpoolctl")
    pytest.importorskip("scipy")
    from rkgen.runtime import layout

    libs = layout._blas_controller().lib_controllers
    before = [lib.get_num_threads() for lib in libs]
    libs[0].set_num_threads(2)
    try:
        monkeypatch.setattr(layout, "BLAS_LIBRARY", "MKL 2024.2 (PyTorch's libtorch_cpu)")
        with layout._single_blas(64, 128):
            assert libs[0].get_num_threads() == 2
        monkeypatch.setattr(layout, "BLAS_LIBRARY", "OpenBLAS 0.3.30 (scipy's)")
        with layout._single_blas(64, 128):
            assert all(lib.get_num_threads() == 1 for lib in libs)
        assert libs[0].get_num_threads() == 2
        with pytest.raises(RuntimeError), layout._single_blas(64, 128):
            raise RuntimeError("a failure inside")
        assert libs[0].get_num_threads() == 2
        with layout._single_blas(2, 256):  # narrow
            assert libs[0].get_num_threads() == 2
        with layout._single_blas(16, 128):  # wide, but a product OpenBLAS keeps on one thread
            assert 16 * 16 * 128 < layout.BLAS_THREADED and libs[0].get_num_threads() == 2
    finally:
        for lib, n in zip(libs, before, strict=True):
            lib.set_num_threads(n)


def test_tape_pool_reuses_only_free_arrays():
    from rkgen.runtime import tape

    tape._POOL.clear()
    y1, s1 = tape._tape_arrays((2, 1, 3), (2, 4, 3))
    first = id(y1.base)  # an id, not a reference: a reference would keep the array in use
    again_y, again_s = tape._tape_arrays((2, 1, 3), (2, 4, 3))
    assert id(again_y.base) != first  # the first is still referenced: a fresh array
    assert again_s.base is again_y.base and again_y.shape == (2, 1, 3) and again_s.shape == (2, 4, 3)
    again_y[...], again_s[...] = 1.0, 2.0  # the two do not overlap
    assert np.all(again_y == 1.0) and again_y.base.size == 6 + 24
    del y1, s1, again_y, again_s
    y2, _ = tape._tape_arrays((2, 1, 3), (2, 4, 3))
    assert id(y2.base) == first  # free again: the same memory, the oldest first
    assert len(tape._POOL) <= tape.POOL_BUFFERS


# --------------------------------------------------------------------------------------------------
# Newton counts a non-finite solve as a failure (a compiled module of each implicit structure)
# --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("net", ["gauss2", "midpoint", "sdirk2", "radau_iia2"], indirect=True)
@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_newton_failure_on_a_huge_step_is_counted(net, activation):
    """At |h| ~ 1e37 the iterates overflow to NaN. The old test step = max(step, |r_k|) kept 0.0 for a NaN
    r_k, so the solve passed as converged with NaN stages (with relu, y_N even came back finite)."""
    y0 = np.array([[1.6, -1.1]])
    K = np.array([[[-1.5, -0.2], [1.9, 0.3]]])
    beta = np.array([[0.1, 1.0]])
    yN, tape = net.forward(y0, K, beta, np.array([1e37]), field="stable", activation=activation)
    if not np.all(np.isfinite(tape.stages[0])):
        assert tape.failures > 0
    if net.NAME == "gauss2" and activation == "relu":  # the reported case: y_N finite (= y0), the solve failed
        # (the sample is frozen at its last iterate once its update is no longer finite, so the stages may be)
        assert tape.failures == 1
    _, ok = net.forward(y0, K, beta, np.array([0.1]), field="stable", activation=activation)
    assert ok.failures == 0


# -- parameter layouts (rkgen/runtime/params.py), against loops written out -------------------------------------


@pytest.fixture
def params_module(monkeypatch):
    """rkgen.runtime.params with a three-stage tableau's nodes c = (0, 1/2, 1) in place of the stand-in's."""
    from rkgen.runtime import params

    monkeypatch.setattr(params, "C", np.array([0.0, 0.5, 1.0]))
    monkeypatch.setattr(params, "STAGES", 3)
    return params


def test_stage_rows(params_module):
    shared = params_module._stage_rows(4, "shared")
    assert shared.tolist() == [[j] * 3 for j in range(4)]
    assert params_module._stage_rows(2, "stage").tolist() == [[0, 1, 2], [3, 4, 5]]
    assert shared.flags.c_contiguous and shared.dtype == np.int64


def test_interpolation_segments_at_nodes_and_beyond(params_module):
    nodes = np.array([0.0, 1.0, 3.0])
    seg, w, width = params_module._interpolation(nodes, np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0]))
    assert seg.tolist() == [0, 0, 0, 1, 1, 1, 1]  # a time on a node reads the segment that starts there
    assert w.tolist() == [-1.0, 0.0, 0.5, 0.0, 0.5, 1.0, 1.5]  # the end segments extended
    assert width.tolist() == [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 2.0]


def test_continuous_gradients_against_loops(params_module, rng):
    h = np.array([0.3, 0.5, 0.4])
    nodes = np.array([0.0, 0.35, 0.7, 1.3])  # off the stage times
    P = rng.standard_normal((4, 2, 2))
    G = rng.standard_normal((3, 3, 2, 2))
    cont = params_module._Continuous(nodes, h)
    U = cont.stage_values(P)
    c = [0.0, 0.5, 1.0]
    for j in range(3):
        for i in range(3):
            t = h[:j].sum() + c[i] * h[j]
            k = min(max(np.searchsorted(nodes, t, side="right") - 1, 0), 2)
            w = (t - nodes[k]) / (nodes[k + 1] - nodes[k])
            assert np.allclose(U[j, i], (1 - w) * P[k] + w * P[k + 1], rtol=0, atol=1e-15)
    dP, dt = cont.nodal_gradient(G, P)
    # J = sum(G * U): its gradient in P is dP; in h, by the chain rule through the stage times
    for e in (1e-6,):
        for n in range(4):
            for idx in np.ndindex(2, 2):
                Pp, Pm = P.copy(), P.copy()
                Pp[(n, *idx)] += e
                Pm[(n, *idx)] -= e
                fd = (np.sum(G * cont.stage_values(Pp)) - np.sum(G * cont.stage_values(Pm))) / (2 * e)
                assert abs(fd - dP[(n, *idx)]) < 1e-8
        dh = cont.step_gradient(dt)
        for k in range(3):
            hp, hm = h.copy(), h.copy()
            hp[k] += e
            hm[k] -= e
            Jp = np.sum(G * params_module._Continuous(nodes, hp).stage_values(P))
            Jm = np.sum(G * params_module._Continuous(nodes, hm).stage_values(P))
            assert abs((Jp - Jm) / (2 * e) - dh[k]) < 1e-7


def test_layout_shapes_are_checked(params_module):
    K = np.zeros((2, 3, 3))
    with pytest.raises(ValueError, match=r"K must have shape \(N, 3, 3, 3\) for params='stage'"):
        params_module._kernel_parameters(K, np.zeros((2, 3)), np.ones(2), 3, "stage", None)
    with pytest.raises(ValueError, match=r"beta must have shape \(3, 3\)"):
        params_module._kernel_parameters(np.zeros((3, 3, 3)), np.zeros((2, 3)), np.ones(2), 3, "continuous", None)
    with pytest.raises(ValueError, match="increasing"):
        params_module._kernel_parameters(np.zeros((3, 3, 3)), np.zeros((3, 3)), np.ones(2), 3, "continuous", [0, 1, 1])


BLAS_CHOICE = """
import json, os, sys
if os.environ["RKGEN_BLAS"] == "mkl":
    import torch  # before the module, as a torch user's process has it
import ctypes
import numba
import numpy as np
from rkgen.layers import network

net = network("rk4")
rng = np.random.default_rng(5)
d, N, m = 64, 3, 300
y0, K, beta = rng.normal(size=(m, d)), rng.normal(size=(N, d, d)) / 8, rng.normal(size=(N, d))
h, p = np.full(N, 0.2), rng.normal(size=(m, d))
report = {"library": net.BLAS_LIBRARY}
openblas = net._scipy_openblas()
for threads in (1, 2):
    numba.set_num_threads(threads)
    bs = net._layout(m, d, N)[0]
    assert d * d * bs >= net.LARGE_PRODUCT, bs  # the large-product symbols are called
    mkl = ctypes.CDLL(net._torch_library(False)) if "torch" in sys.modules else None
    if mkl is not None:  # a count of this thread's own, which the passes must give back
        mkl.MKL_Set_Num_Threads_Local(3)
    before = openblas.scipy_openblas_get_num_threads()
    yN, tape = net.forward(y0, K, beta, h)
    grads = net.backward(tape, p)
    report[f"openblas {threads}"] = [before, openblas.scipy_openblas_get_num_threads()]
    if mkl is not None:
        report[f"mkl {threads}"] = mkl.MKL_Set_Num_Threads_Local(0)
    np.savez(sys.argv[1] + f"-{threads}.npz", yN, *grads)
print(json.dumps(report))
"""


def test_wide_products_under_either_blas(tmp_path):
    """RKGEN_BLAS picks the library of the large products (rkgen.runtime.blas): MKL (PyTorch's) or scipy's OpenBLAS,
    each bound in a process of its own. A wide RK4 gradient (every product large, serial and on two threads)
    computed with each agrees with the other to rounding (here often bit for bit: both sum along k in order); the
    module names the library it bound; MKL's own count of the calling thread (set to 3 before the passes) is 3
    after them (the kernels set it to one only while they run), and OpenBLAS's process-wide count is what it was
    in both processes."""
    pytest.importorskip("torch", reason="MKL comes with PyTorch here (the README's test command installs it)")
    script = tmp_path / "choice.py"
    script.write_text(BLAS_CHOICE)
    runs = {}
    for name in ("mkl", "openblas"):
        out = tmp_path / name
        run = subprocess.run([sys.executable, str(script), str(out)], capture_output=True, text=True,
                             env={**os.environ, "RKGEN_BLAS": name}, check=True)
        runs[name] = json.loads(run.stdout)
        runs[name]["arrays"] = {t: [a for _, a in sorted(np.load(f"{out}-{t}.npz").items())] for t in (1, 2)}
    assert runs["mkl"]["library"].startswith("MKL ") and not runs["openblas"]["library"].startswith("MKL")
    assert runs["mkl"]["mkl 1"] == runs["mkl"]["mkl 2"] == 3
    for name in runs:
        for t in (1, 2):
            before, after = runs[name][f"openblas {t}"]
            assert before == after >= 1
    for t in (1, 2):
        for a, b in zip(runs["mkl"]["arrays"][t], runs["openblas"]["arrays"][t], strict=True):
            assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()  # the same numbers, to the libraries' roundings


BLAS_ERRORS = """
import importlib.util, os, sys
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == "torch" else real(name, *a)  # no torch installed
sys.prefix = "/nonexistent"  # and no mkl package
try:
    import rkgen.runtime.blas
except ImportError as e:
    print(e)
"""


@pytest.mark.parametrize(
    "value, message",
    [
        ("bogus", "RKGEN_BLAS must be auto, mkl or openblas, got 'bogus'"),
        ("mkl", "RKGEN_BLAS=mkl, but no MKL was found: install torch or the mkl package, or unset it"),
    ],
)
def test_blas_choice_errors_say_what_is_wrong(value, message):
    """A bad RKGEN_BLAS, or RKGEN_BLAS=mkl where there is no MKL, is an ImportError that says so, when the module
    (here the runtime's own blas module) is imported."""
    run = subprocess.run([sys.executable, "-c", BLAS_ERRORS], capture_output=True, text=True, check=True,
                         env={**os.environ, "RKGEN_BLAS": value})
    assert run.stdout.strip() == message
