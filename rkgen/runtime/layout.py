"""How a pass is cut into sample blocks and spread over threads, for every generated module (runtime).

Threads: numba picks its layer (OpenMP where the wheel has it). After a parallel region, OpenMP's threads spin
for a bounded time (GOMP_SPINCOUNT = 30000 iterations, about half a millisecond), then sleep: the gap between a
forward and a backward pass, or between two iterations of a training loop, is spent spinning, and an idle process
burns nothing. Waking a sleeping thread is what costs, and how much depends on the machine: about 15 us on a
2-core AMD EPYC VM, 300-500 us on a 2-core Intel Xeon VM, where RK4 (width 2, 15 layers, 1000 samples, forward)
took 0.49 ms on 2 threads that slept between calls against 0.36 ms on one, and 0.18-0.20 ms with the bounded
spin (libgomp's default, 300000 iterations, about 5 ms, measured the same; never spinning, OMP_WAIT_POLICY=PASSIVE
alone, cost up to 50 ms a region on a busy machine, where an endless spin competes with other work). numba's
workqueue layer was erratic (often no gain). Your own OMP_WAIT_POLICY, GOMP_SPINCOUNT and NUMBA_THREADING_LAYER
are respected (either of the first two set: nothing is changed); they must be set before OpenMP starts, that is
before the first parallel call.
"""

import contextlib
import functools
import importlib
import os

import numba
import numpy as np

from ._tableau import STAGES, STRUCTURE
from .blas import BLAS_LIBRARY
from .products import _wide

if "OMP_WAIT_POLICY" not in os.environ and "GOMP_SPINCOUNT" not in os.environ:
    os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # sleep when idle (other OpenMP runtimes read only this) ...
    os.environ["GOMP_SPINCOUNT"] = "30000"  # ... after a bounded spin (libgomp)

_is_wide = getattr(_wide, "py_func", _wide)  # products._wide, called from Python (numba's jit may be disabled)
BLAS_THREADED = 4 * 65536  # multiply-adds of a product from which a BLAS may use its threads (see _single_blas)
PARALLEL_WORK = 1_000_000  # below this many inner operations a call runs on one thread


def _block_size(d, m):
    """Samples per block for m samples: the sample index is innermost, so stage sums vectorise across samples.
    Narrow layers take long blocks, which amortise the calls per block (RK4, width 2: 256 samples a
    block run forward 1.4x and backward 1.8x faster than 64). Blocks of at least 128 multiply through BLAS where a
    batch of m samples in one block would (:func:`rkgen.runtime.products._wide`), and no fewer than d columns up to
    512, so that each product of K (d x d) with a block reuses K over as many columns as K has (RK4 gradients at
    d = 256, 20 layers, 512 samples, one thread, Intel Xeon: 256 columns 0.955x the time of 128 in float64, 0.975x
    in float32; at d = 64, float32, 256 columns cost 1.1x the time of 128); m = 0 gives the narrow length."""
    if _is_wide(d, m):  # BLAS products: long blocks keep them efficient
        return min(512, max(128, d))
    return 256 if d <= 2 else 128 if d <= 8 else 32


def _layout(m, d, N):
    """(block size, number of blocks, block ranges per thread or None to run serially).

    Small work runs on one thread (a parallel region costs more than it saves); large work is split
    into at least two blocks per thread. Layouts are remembered per shape, thread count and
    PARALLEL_WORK."""
    threads = numba.get_num_threads()
    key = (m, d, N, threads, PARALLEL_WORK)
    layout = _LAYOUTS.get(key)
    if layout is None:
        bs = min(_block_size(d, m), max(8, (m + 7) // 8 * 8))  # small batches: no wasted columns
        parallel = _parallel(m, d, N, threads)
        if parallel:
            per = -(-m // (2 * threads))
            bs = min(bs, max(8, (per + 7) // 8 * 8))
        if not _is_wide(d, bs):  # split too short for BLAS: narrow blocks keep their own length
            bs = min(bs, _block_size(d, 0))
        nblocks = (m + bs - 1) // bs
        layout = bs, nblocks, _chunks(nblocks, parallel, threads)
        if len(_LAYOUTS) >= 64:
            _LAYOUTS.clear()
        _LAYOUTS[key] = layout
    return layout


_LAYOUTS = {}


@functools.lru_cache(maxsize=256)
def _chunks(nblocks, parallel, threads):
    """Block ranges, one per thread, or None to run serially (small work is faster on one thread).
    The array is shared between calls: the kernels only read it."""
    if not parallel or nblocks < 2 * threads:
        return None
    return np.arange(threads + 1, dtype=np.int64) * nblocks // threads


def _parallel(m, d, N, threads):
    """Whether a pass is split across threads: there is more than one, and the work is large."""
    return threads > 1 and _work(m, d, N) >= PARALLEL_WORK


def _work(m, d, N):
    """Inner operations of a pass, roughly: m N s (d^2 + 8 d) for explicit stages. A stage solved by Newton on
    a block costs a few explicit stages (an f evaluation per iteration, then the field at the solution): measured
    on one thread (width 2, 15 layers, 1000 samples, forward and backward), implicit midpoint 1.19 ms against
    explicit Euler's 0.21 ms (5.6x per stage), gauss2 6.5 ms (15x per stage: its coupled 4 x 4 solves). So
    diagonally implicit stages weigh 6, fully implicit ones 15."""
    weight = 1 if STRUCTURE == "explicit" else 6 if STRUCTURE == "diagonally implicit" else 15
    return weight * m * N * STAGES * (d * d + 8 * d)


def _single_blas(d, bs):
    """A context in which scipy's OpenBLAS, which the products of wide blocks call (:func:`_blas_loaded`; the large
    ones where :mod:`rkgen.runtime.blas` bound no MKL), runs on one thread.

    The driver already runs one block per thread, and each block's products are small (d x d times d x bs): a
    threaded BLAS inside would oversubscribe the cores. Measured on 2 cores (AMD EPYC, d = 64, bs = 128): one
    block per thread with single-threaded BLAS 25 GFLOP/s in all, BLAS with its own 2 threads on each block
    1.2 GFLOP/s. Nothing is changed for narrow layers, nor when threadpoolctl is not installed.

    Each library's count is read and set directly (threadpoolctl's limit() context took about 75 us a call, 0.15
    ms of a 0.9 ms training step of 004's network), and set back on exit. Products smaller than BLAS_THREADED
    multiply-adds (d x d times d x bs) are left alone: OpenBLAS runs a GEMM below 4 * 65536 of them on one thread
    anyway (its GEMM_MULTITHREAD_THRESHOLD), and setting the counts still cost about 35 us a call."""
    if not _is_wide(d, bs):
        return contextlib.nullcontext()
    _blas_loaded()
    if d * d * bs < BLAS_THREADED or BLAS_LIBRARY.startswith("MKL"):
        # with MKL bound, every product of BLAS_THREADED multiply-adds or more (= LARGE_PRODUCT) calls it, and the
        # kernels hold it to one thread themselves (rkgen.runtime.blas)
        return contextlib.nullcontext()
    blas = _blas_controller()
    return _one_thread(blas.lib_controllers) if blas is not None else contextlib.nullcontext()


@contextlib.contextmanager
def _one_thread(libs):
    """The BLAS libraries ``libs`` (threadpoolctl's controllers) on one thread inside, their own counts after."""
    saved = [lib.get_num_threads() for lib in libs]
    for lib, n in zip(libs, saved, strict=True):
        if n != 1:
            lib.set_num_threads(1)
    try:
        yield
    finally:
        for lib, n in zip(libs, saved, strict=True):
            if n != 1:
                lib.set_num_threads(n)


@functools.lru_cache(maxsize=1)
def _blas_loaded():
    """Loads scipy's BLAS, once per process, before a wide block runs through forward or backward: the kernels call
    its dgemm and sgemm through numba's helper numba_xxgemm (:func:`rkgen.runtime.products._matmul`), which would
    import it on its first call too. Loading it here turns a missing scipy into a clear error before any kernel
    runs, where the kernels, which do not read BLAS's status, would leave the product undone."""
    try:
        importlib.import_module("scipy.linalg.cython_blas")
    except ImportError:
        raise ImportError("wide layers multiply through scipy's BLAS: install scipy") from None
    return True


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """threadpoolctl's handle on the BLAS libraries loaded (scipy's among them, :func:`_blas_loaded`), or None
    without threadpoolctl."""
    try:
        controller = importlib.import_module("threadpoolctl").ThreadpoolController
    except ImportError:
        return None
    return controller().select(user_api="blas")
