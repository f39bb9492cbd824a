"""The kernels as XLA FFI targets: a differentiated call from JAX without Python in the step (runtime, inlined at
render into modules of explicit tableaux).

:mod:`rkgen.jax` reaches a module's forward and backward passes through host callbacks, or, where
:func:`xla_plan` gives a plan, through two XLA custom calls whose handlers are numba cfuncs (C functions) of this
module: XLA calls them with its own buffers, the tape is an XLA residual of the forward call, and no Python runs
between the step's dispatch and its end. They run the same kernels as :func:`forward` and :func:`backward` on one
thread, with the same layout, so the results are those of the callbacks to the bit (tests/test_jax_layer.py).

A handler is ``XLA_FFI_Error* handler(XLA_FFI_CallFrame* frame)`` (xla/ffi/api/c_api.h, FFI API 0.3). It reads
the frame by the C layout of that header on a 64-bit platform (_XLA_*: word and int32 indices), and it answers
XLA's metadata query (an extension of type 1 on the frame) with the API version it was written for. It never
fails: an explicit tableau has no stage solve to fail, and every shape is fixed when the call is traced (the
plan). Measured on an Intel Xeon (model 167, one thread): a jit training step of RK4 at d = 16, 8 layers, 256
samples took 524-534 us through these handlers against 623-650 us through buffer callbacks, jax.jit of the same
network in jax.numpy 861-873 us (docs/layers.md).
"""

import contextlib
import ctypes
import functools

import numba
import numpy as np
from numba import carray, cfunc, njit, types
from numba.extending import intrinsic

from ._tableau import STAGES, STRUCTURE
from .api import ACTIVATIONS, FIELDS, _tape_inputs
from .driver import _backward_blocks, _forward_blocks
from .layout import _layout, _single_blas
from .params import _stage_rows

XLA_FFI_API = (0, 3)  # the FFI API version of the call frame's layout below
_XLA_EXTENSION = 1  # frame: extension_start (a word)
_XLA_STAGE = 8  # frame: stage (an int32); 3 is "execute"
_XLA_ARGS, _XLA_ARGV = 7, 9  # frame: args.size, args.args (words)
_XLA_RETS, _XLA_RETV = 12, 14  # frame: rets.size, rets.rets (words)
_XLA_DATA, _XLA_DIMS = 3, 5  # buffer: data, dims (words)
_XLA_METADATA = 3  # metadata extension: the metadata (a word); its type (an int32) at 2
_XLA_TRAITS = 8  # metadata: traits (an int32), after api_version {struct_size, extension, major, minor}
_XLA_VERSION_SIZE = 24  # sizeof(XLA_FFI_Api_Version)


@intrinsic
def _xla_pointer(typingctx, address, dtype):
    """A pointer to ``dtype`` at the integer ``address``."""
    target = dtype.instance_type if isinstance(dtype, types.NumberClass) else dtype.dtype

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(target)(address, dtype), codegen


@njit(inline="always")
def _xla_words(address, n):
    return carray(_xla_pointer(address, np.int64), n)


@njit(inline="always")
def _xla_metadata(frame):
    """Answers XLA's metadata query (the API version, no traits) and returns True, when the frame is one."""
    extension = _xla_words(frame, 2)[_XLA_EXTENSION]
    if extension == 0 or carray(_xla_pointer(extension, np.int32), 4)[2] != 1:
        return False
    metadata = _xla_words(extension, 4)[_XLA_METADATA]
    version = _xla_words(metadata, 3)
    version[1] = _XLA_VERSION_SIZE
    version[2] = 0
    numbers = carray(_xla_pointer(metadata, np.int32), _XLA_TRAITS + 1)
    numbers[6] = XLA_FFI_API[0]
    numbers[7] = XLA_FFI_API[1]
    numbers[_XLA_TRAITS] = 0
    return True


@njit(inline="always")
def _xla_buffers(frame):
    """(arguments, results): the addresses of the frame's buffers, or two empty lists outside execution."""
    w = _xla_words(frame, _XLA_RETV + 1)
    if carray(_xla_pointer(frame, np.int32), _XLA_STAGE + 1)[_XLA_STAGE] != 3:
        return _xla_words(w[_XLA_ARGV], 0), _xla_words(w[_XLA_RETV], 0)
    return _xla_words(w[_XLA_ARGV], w[_XLA_ARGS]), _xla_words(w[_XLA_RETV], w[_XLA_RETS])


@njit(inline="always")
def _xla_data(buffers, i, dtype):
    """(data pointer, dims) of buffer i."""
    w = _xla_words(buffers[i], _XLA_DIMS + 1)
    return _xla_pointer(w[_XLA_DATA], dtype), _xla_words(w[_XLA_DIMS], 5)


@njit(inline="always")
def _xla_1(buffers, i, dtype):
    data, n = _xla_data(buffers, i, dtype)
    return carray(data, n[0])


@njit(inline="always")
def _xla_2(buffers, i, dtype):
    data, n = _xla_data(buffers, i, dtype)
    return carray(data, (n[0], n[1]))


@njit(inline="always")
def _xla_3(buffers, i, dtype):
    data, n = _xla_data(buffers, i, dtype)
    return carray(data, (n[0], n[1], n[2]))


@njit(inline="always")
def _xla_5(buffers, i, dtype):
    data, n = _xla_data(buffers, i, dtype)
    return carray(data, (n[0], n[1], n[2], n[3], n[4]))


@njit(inline="always")
def _xla_fixed(args, i):
    """rows and plan (arguments i and i + 1), which come as int32 (JAX without x64 has no int64), as int64 arrays
    (the kernels' signature)."""
    return _xla_2(args, i, np.int32).astype(np.int64), _xla_1(args, i + 1, np.int32).astype(np.int64)


@njit(inline="always")
def _xla_forward(frame, dtype):
    """Arguments y0 (m, d), K (R, d, d), beta (R, d), h (N,), rows (N, s), plan (5,); results y_N and the tape
    (tY, tS): :func:`forward`'s work on one thread, on XLA's buffers."""
    if _xla_metadata(frame):
        return 0
    args, rets = _xla_buffers(frame)
    if args.shape[0] == 0:
        return 0
    y0, K, beta, h = _xla_2(args, 0, dtype), _xla_3(args, 1, dtype), _xla_2(args, 2, dtype), _xla_1(args, 3, dtype)
    rows, plan = _xla_fixed(args, 4)
    yN, tY, tS = _xla_2(rets, 0, dtype), _xla_5(rets, 1, dtype), _xla_5(rets, 2, dtype)
    field, act, bs, nblocks = plan[0], plan[1], plan[2], plan[3]
    states = np.empty((1, 1, 1), y0.dtype)
    _forward_blocks(0, nblocks, y0, yN, K, beta, rows, h, field, act, tY, tS, np.int64(-1), states, False, bs)
    return 0


@njit(inline="always")
def _xla_backward(frame, dtype):
    """Arguments tY, tS, K, beta, h, p (m, d), rows, plan; results dy0, dK, dbeta, dh: :func:`backward`'s work on
    one thread (float64 sums over the blocks, rounded once), and for a tied block (plan[4]) the sums over the layers
    of those rounded gradients, as :func:`rkgen.layers.backward` forms them."""
    if _xla_metadata(frame):
        return 0
    args, rets = _xla_buffers(frame)
    if args.shape[0] == 0:
        return 0
    tY, tS, K, beta = _xla_5(args, 0, dtype), _xla_5(args, 1, dtype), _xla_3(args, 2, dtype), _xla_2(args, 3, dtype)
    h, p = _xla_1(args, 4, dtype), _xla_2(args, 5, dtype)
    rows, plan = _xla_fixed(args, 6)
    dy0, dK, dbeta, dh = _xla_2(rets, 0, dtype), _xla_3(rets, 1, dtype), _xla_2(rets, 2, dtype), _xla_1(rets, 3, dtype)
    field, act, bs, nblocks, tied = plan[0], plan[1], plan[2], plan[3], plan[4]
    R, d, N = K.shape[0], K.shape[1], h.shape[0]
    sK, sb, sh = np.zeros((R, d, d)), np.zeros((R, d)), np.zeros(N)
    _backward_blocks(0, nblocks, p, dy0, K, beta, rows, h, field, act, tY, tS, sK, sb, sh, bs)
    if tied:  # the layers' gradients, each rounded to the dtype, summed in float64
        tK, tb = np.zeros((d, d)), np.zeros(d)
        for j in range(R):
            tK += sK[j].astype(dtype)
            tb += sb[j].astype(dtype)
        dK[0] = tK.astype(dtype)
        dbeta[0] = tb.astype(dtype)
    else:
        dK[:] = sK.astype(dtype)
        dbeta[:] = sb.astype(dtype)
    dh[:] = sh.astype(dtype)
    return 0


def _xla_forward_f64(frame):
    return _xla_forward(frame, np.float64)


def _xla_forward_f32(frame):
    return _xla_forward(frame, np.float32)


def _xla_backward_f64(frame):
    return _xla_backward(frame, np.float64)


def _xla_backward_f32(frame):
    return _xla_backward(frame, np.float32)


@functools.lru_cache(maxsize=2)
def _xla_handlers(dtype):
    """(forward, backward) handler addresses for ``dtype`` (a numpy dtype name), compiled on first use (cached on
    disk as the kernels are)."""
    signature = types.intp(types.intp)
    pair = {"float64": (_xla_forward_f64, _xla_backward_f64), "float32": (_xla_forward_f32, _xla_backward_f32)}
    return tuple(cfunc(signature, cache=True)(fn).address for fn in pair[dtype])


def xla_plan(m, d, N, field, activation, params, dtype):
    """How XLA calls this module for a differentiated block of m samples (m > 0), or None where it cannot: a
    dict of the handler addresses ("forward", "backward", as integers for ctypes), the fixed arguments ("rows",
    "plan": int32 arrays, which JAX keeps as they are with x64 off too), the tape's shapes ("tape") and the kernels'
    parameter rows ("R").

    None for a parameter layout other than "shared" or "stage" (rkgen.jax forms "tied" from "shared"), for a
    dtype other than float32 and float64, under NUMBA_DISABLE_JIT, for products that need scipy's OpenBLAS held
    to one thread around the call (:func:`_single_blas`), which a handler cannot do, and for a call that
    :func:`forward` would split across threads. XLA runs the handlers on a thread of its own, and a parallel region
    started there ran at half speed and slowed every later one in the process, the main thread's too (Intel Xeon,
    two cores, RK4 at d = 16, 8 layers, 256 samples: the kernels alone 0.35 ms before a handler had run one, 0.59 ms
    after; a jit step through callbacks 0.44 ms, through the handlers in parallel 0.60 ms); such calls stay with the
    callbacks, which run the kernels as :func:`forward` does. Trace-time work: the layout is that of numba's thread
    count now, as :func:`forward`'s is of the count at its call."""
    dtype = np.dtype(dtype).name
    if STRUCTURE != "explicit" or params not in ("shared", "stage") or dtype not in ("float32", "float64"):
        return None
    if numba.config.DISABLE_JIT or ctypes.sizeof(ctypes.c_void_p) != 8:
        return None
    bs, nblocks, bounds = _layout(m, d, N)
    if bounds is not None or not isinstance(_single_blas(d, bs), contextlib.nullcontext):
        return None
    forward_address, backward_address = _xla_handlers(dtype)
    tied = 0  # rkgen.jax sets it for a tied block
    return {
        "forward": forward_address,
        "backward": backward_address,
        "rows": _stage_rows(N, params).astype(np.int32),
        "plan": np.array([FIELDS.index(field), ACTIVATIONS.index(activation), bs, nblocks, tied], np.int32),
        "tape": ((nblocks, N, _tape_inputs(field), d, bs), (nblocks, N, STAGES, d, bs)),
        "R": N if params == "shared" else N * STAGES,
    }
