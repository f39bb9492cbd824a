"""Tape memory, recycled between calls, for every generated module (runtime, inlined at render)."""

import math
import sys

import numpy as np

# Tape memory is recycled. A fresh array of a megabyte or more is handed out by the C library as
# untouched pages, and the kernel then pays a page fault per 4 KiB page on first write (about 1 ms
# for the 2 MB tape, every stage value kept, of RK4, 15 layers, width 2, 1000 samples: half the time of
# that forward pass).
# The module therefore keeps the base arrays of its recent tapes and reuses one as soon as nothing
# refers to it any more: no tape, and no view into one (a view's .base is the pooled array, so it
# counts). CPython's reference count tells this exactly; the count of a free array is calibrated
# below, on this interpreter, with the same function that tests it.
# Wide networks have the largest tapes and gain the most: D (RK4, d = 64, 100 layers, 1500 samples) wrote a
# 614 MB tape (every stage value kept; 384 MB since the tape keeps y_j), whose fresh pages cost about 100 ms
# of a 310 ms forward pass (Intel Xeon, 1 thread). The pool holds at most POOL_BYTES in all, so a process
# keeps at most that much for reuse after its last call. Evaluations without a tape take no pooled array.
POOL_BUFFERS = 4  # base arrays kept at most
POOL_BYTES = 2 * 2**30  # bytes kept at most, in all; a larger tape is allocated fresh and not kept
_POOL = []


def _refs(pool, i):
    return sys.getrefcount(pool[i])


_FREE_REFS = _refs([np.empty(1)], 0)


def _tape_arrays(y_shape, s_shape, dtype=np.float64):
    """Two arrays of these shapes and dtype (stage values Y, activations S) on one base array, a free pooled one
    when one of the right size and dtype exists."""
    ny = math.prod(y_shape)
    n = ny + math.prod(s_shape)
    for i in range(len(_POOL)):
        if _POOL[i].size == n and _POOL[i].dtype == dtype and _refs(_POOL, i) == _FREE_REFS:
            base = _POOL.pop(i)
            break
    else:
        base = np.empty(n, dtype)
    if base.nbytes <= POOL_BYTES:
        i = 0  # make room: drop the oldest free arrays, while the pool is full
        while i < len(_POOL) and (len(_POOL) >= POOL_BUFFERS or _held() + base.nbytes > POOL_BYTES):
            if _refs(_POOL, i) == _FREE_REFS:
                del _POOL[i]
            else:
                i += 1
        if len(_POOL) < POOL_BUFFERS and _held() + base.nbytes <= POOL_BYTES:
            _POOL.append(base)  # most recently used last
    return base[:ny].reshape(y_shape), base[ny:].reshape(s_shape)


def _held():
    """Bytes the pool holds."""
    return sum(a.nbytes for a in _POOL)
