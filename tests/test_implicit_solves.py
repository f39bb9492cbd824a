"""The implicit stage solves on blocks of samples (rkgen/runtime/implicit.py, dirk.py, firk.py).

Newton runs on a whole block at once, but every sample keeps its own iteration and is frozen once it has
converged or failed: its stages must be bit for bit those it gets when solved alone, whatever block, batch,
block size or thread count it lands in. The small solves (d = 1 and d = 2 written out, the block elimination
for the rest) are checked against numpy and against the one-sample elimination.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

IMPLICIT_NETS = ["midpoint", "sdirk2", "gauss2", "radau_iia2"]


def _problem(d, m=300, N=3, seed=11):
    """Samples of very different sizes, so that they need different numbers of Newton iterations (a sample of
    size 100 saturates tanh: f is nearly constant and Newton stops after two iterations)."""
    rng = np.random.default_rng(seed)
    y0 = rng.normal(size=(m, d)) * np.resize([0.01, 1.0, 100.0, 4.0], (m, 1))
    y0[5] = 0.0
    K = rng.normal(size=(N, d, d)) / np.sqrt(d)
    beta = 0.5 * rng.normal(size=(N, d))
    h = np.array([0.6, -0.3, 0.45])[:N]
    return y0, K, beta, h


def _run(net, y0, K, beta, h, field):
    yN, tape = net.forward(y0, K, beta, h, field=field, keep_states=True)
    assert tape.failures == 0
    return yN, tape


@pytest.mark.numba
@pytest.mark.parametrize("net", IMPLICIT_NETS, indirect=True)
@pytest.mark.parametrize(("d", "field"), [(1, "resnet"), (2, "resnet"), (2, "stable"), (3, "stable"), (5, "resnet")])
def test_a_sample_gets_the_stages_it_gets_alone(net, d, field, monkeypatch):
    y0, K, beta, h = _problem(d)
    m = len(y0)
    yN, tape = _run(net, y0, K, beta, h, field)
    iterations = set()
    for q in (0, 1, 2, 5, 7, 150, 299):  # alone: a block of one sample
        y1, t1 = _run(net, y0[q : q + 1], K, beta, h, field)
        assert np.array_equal(t1.states[:, 0], tape.states[:, q]), q
        iterations.add(t1.iterations)
    assert len(iterations) > 1, "the samples should need different numbers of iterations"
    perm = np.random.default_rng(3).permutation(m)  # every sample in another column of another block
    yP, _ = _run(net, y0[perm], K, beta, h, field)
    assert np.array_equal(yP, yN[perm])
    monkeypatch.setattr(net, "_block_size", lambda d, m: 8)  # blocks of 8 samples
    net._LAYOUTS.clear()
    try:
        y8, t8 = _run(net, y0, K, beta, h, field)
        assert t8.block == 8
    finally:
        net._LAYOUTS.clear()
    assert np.array_equal(y8, yN)
    assert np.array_equal(t8.states, tape.states)


@pytest.mark.numba
@pytest.mark.parametrize("net", ["midpoint", "gauss2"], indirect=True)
def test_stages_do_not_depend_on_the_thread_count(net, monkeypatch):
    import numba

    if numba.get_num_threads() < 2:
        pytest.skip("numba runs one thread: no parallel path")
    y0, K, beta, h = _problem(2, m=600)
    monkeypatch.setattr(net, "PARALLEL_WORK", 0)
    net._LAYOUTS.clear()
    yP, tP = _run(net, y0, K, beta, h, "resnet")
    assert tP.block < 256  # the parallel layout cut the blocks shorter
    monkeypatch.setattr(net, "PARALLEL_WORK", 10**12)
    net._LAYOUTS.clear()
    previous = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        yS, tS = _run(net, y0, K, beta, h, "resnet")
    finally:
        numba.set_num_threads(previous)
        net._LAYOUTS.clear()
    assert tS.block == 256
    assert np.array_equal(yP, yS) and np.array_equal(tP.states, tS.states)


@pytest.mark.numba
@pytest.mark.parametrize("net", IMPLICIT_NETS, indirect=True)
def test_a_failing_sample_leaves_the_others_alone(net):
    """A NaN sample fails (counted once per solve) and the other samples' stages are bit for bit unchanged."""
    y0, K, beta, h = _problem(2, m=40)
    yN, tape = _run(net, y0, K, beta, h, "resnet")
    bad = y0.copy()
    bad[[3, 17], 1] = np.nan
    yB, tB = net.forward(bad, K, beta, h, keep_states=True)
    per_solve = sum(1 for i in range(net.STAGES) if net.A[i, i] != 0) if net.STRUCTURE != "fully implicit" else 1
    assert tB.failures == 2 * len(h) * per_solve
    good = np.setdiff1d(np.arange(len(y0)), [3, 17])
    assert np.array_equal(tB.states[:, good], tape.states[:, good])


# --------------------------------------------------------------------------------------------------
# the small solves
# --------------------------------------------------------------------------------------------------


def _work(n, d, w):
    """The driver's work tuple, for the pieces that read it (shapes as rkgen.runtime.driver._workspace)."""
    return (
        np.empty((d, w)),
        np.empty((1, d, w)),
        np.empty((1, d, w)),
        np.empty((1, d, d, w)),
        np.empty((n, n, w)),
        np.zeros(w, np.int64),
        np.empty(w),
        np.empty(w, np.int64),
        np.empty(w),
        np.empty(w, np.int64),
        np.empty((n, 1)),
        np.empty((d, 1)),
    )


@pytest.mark.numba
@pytest.mark.parametrize("n", [1, 2, 3, 4, 7])
def test_block_solve_is_the_one_sample_elimination(n):
    """Column by column the same numbers as _solve (pivots chosen per sample), singular or non-finite
    matrices giving an infinite column."""
    from rkgen.runtime.implicit import _block_solve, _solve

    rng = np.random.default_rng(n)
    w = 21
    M = rng.normal(size=(n, n, w))
    M[:, :, 1] = 0.0  # singular
    M[0, 0, 2] = math.nan
    M[:, 0, 3] = 0.0  # a zero column: singular at the first pivot
    M[0, 0, 4] = 0.0  # a zero first pivot: the rows must be exchanged
    R = rng.normal(size=(n, w))
    got = R.copy()
    Mb = M.copy()
    _block_solve(Mb, got, np.empty(w, np.int64), np.empty(w), np.empty(w, np.int64), n, w)
    for q in range(w):
        r = R[:, q].copy()
        if _solve(M[:, :, q].copy(), r, n):
            assert np.array_equal(got[:, q], r), q
            np.testing.assert_allclose(M[:, :, q] @ got[:, q], R[:, q], rtol=1e-9, atol=1e-9)
        else:
            assert np.all(got[:, q] == math.inf), q
    assert not np.isfinite(got[:, 1]).any() and not np.isfinite(got[:, 3]).any()
    assert np.isfinite(got[:, 4]).all() == (n > 1)


@pytest.mark.numba
@pytest.mark.parametrize("d", [1, 2, 3, 6])
@pytest.mark.parametrize("field", [0, 1])
@pytest.mark.parametrize("transpose", [False, True])
def test_shifted_solve_against_numpy(d, field, transpose):
    """(I - c J_q) x = r (or with J_q^T) per sample: d = 1 and d = 2 written out, wider by block elimination."""
    from rkgen.runtime.implicit import _shifted_solve

    rng = np.random.default_rng(10 * d + field)
    nw = 16
    K = rng.normal(size=(d, d))
    D = rng.uniform(0.0, 1.0, size=(d, nw))
    R = rng.normal(size=(d, nw))
    c = 0.7
    got = R.copy()
    ws = _work(d, d, nw)
    _shifted_solve(K, c, D, got, ws, ws[5], field, transpose, d, nw)
    for q in range(nw):
        J = np.diag(D[:, q]) @ K if field == 0 else -K.T @ np.diag(D[:, q]) @ K
        if transpose:
            J = J.T
        want = np.linalg.solve(np.eye(d) - c * J, R[:, q])
        np.testing.assert_allclose(got[:, q], want, rtol=1e-11, atol=1e-13)
    # a singular matrix: I - c J = 0 for d = 1 (c J = 1), or a NaN: the column is infinite
    D2 = D.copy()
    D2[0, 3] = math.nan
    got = R.copy()
    _shifted_solve(K, c, D2, got, ws, ws[5], field, transpose, d, nw)
    assert np.all(got[:, 3] == math.inf)
    assert np.isfinite(np.delete(got, 3, axis=1)).all()
