"""The kernels as XLA FFI targets: a differentiated call from JAX without Python in the step (runtime, inlined at
render into modules of explicit tableaux).

:mod:`rkgen.jax` reaches a module's forward and backward passes through host callbacks, or, where
:func:`xla_plan` gives a plan, through two XLA custom calls whose handlers are numba cfuncs (C functions) of this
module: XLA calls them with its own buffers, the tape is an XLA residual of the forward call, and no Python runs
between the step's dispatch and its end. They run the same kernels as :func:`forward` and :func:`backward` on one
thread, with the same layout, so the results are those of the callbacks to the bit (tests/test_jax_layer.py).

A handler is ``XLA_FFI_Error* handler(XLA_FFI_CallFrame* frame)`` (xla/ffi/api/c_api.h, FFI API 0.3). It reads
the frame by the C layout of that header on a 64-bit platform (_XLA_*: word and int32 indices), and it answers
XLA's metadata query (an extension of type 1 on the frame) with the API version it was written for; rkgen.jax
registers the handlers only with a jaxlib whose own header says FFI API 0.3 or a later 0.x (later minor versions
only append fields). Before it runs a kernel, a handler checks the frame's size and its buffers (count, rank,
dtype, and every shape against the plan, the parameter rows within K), and answers a mismatch with an XLA error
(XLA_FFI_Error_Create, INVALID_ARGUMENT), which JAX raises: a wrong call never reads or writes past a buffer.
An explicit tableau has no stage solve to fail. What it cannot report is an exception inside the kernels (numba
prints it and the handler returns success), of which the only kind is an allocation failing: the kernels
allocate work arrays of a few blocks.

Measured on an Intel Xeon (model 167, one thread): a jit training step of RK4 at d = 16, 8 layers, 256 samples
took 0.520 ms through these handlers against 0.606 ms through buffer callbacks, 0.848 ms for jax.jit of the same
network in jax.numpy (docs/layers.md).
"""

import contextlib

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
_XLA_FRAME_SIZE = 120  # the frame's fields read here end with rets, at byte 120 (its struct_size: 168 in API 0.3)
_XLA_RANK, _XLA_DTYPE = 4, 4  # buffer: rank (a word), dtype (an int32)
_XLA_F32, _XLA_F64, _XLA_S32 = 11, 12, 4  # XLA_FFI_DataType
_XLA_ERROR_CREATE = 6  # api: XLA_FFI_Error_Create (a word), after api_version and internal_api
_XLA_ERROR_ARGS_SIZE = 28  # sizeof(XLA_FFI_Error_Create_Args): struct_size, extension, message, errc (int32)
_XLA_INVALID_ARGUMENT = 3
_XLA_MESSAGE = np.frombuffer(
    b"rkgen: the XLA call's buffers do not match the plan it was traced with (count, rank, dtype or shape)\0",
    np.uint8,
)


@intrinsic
def _xla_pointer(typingctx, address, dtype):
    """A pointer to ``dtype`` at the integer ``address``."""
    target = dtype.instance_type if isinstance(dtype, types.NumberClass) else dtype.dtype

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], context.get_value_type(signature.return_type))

    return types.CPointer(target)(address, dtype), codegen


@intrinsic
def _xla_call(typingctx, function, argument):
    """function(argument) for a C function at the integer address ``function`` that takes and returns a pointer
    (passed and returned as integers, as the x86-64 and AArch64 calling conventions allow)."""

    def codegen(context, builder, signature, args):
        word = context.get_value_type(types.int64)
        function_type = type(builder.function.function_type)  # llvmlite's FunctionType, without importing llvmlite
        callee = builder.inttoptr(args[0], function_type(word, [word]).as_pointer())
        return builder.call(callee, [args[1]])

    return types.int64(types.int64, types.int64), codegen


@njit(inline="always")
def _xla_words(address, n):
    return carray(_xla_pointer(address, np.int64), n)


@njit
def _xla_error(frame):
    """An XLA error (INVALID_ARGUMENT, :data:`_XLA_MESSAGE`) made by the frame's API, for the handler to return."""
    api = _xla_words(frame, 3)[2]
    create = _xla_words(api, _XLA_ERROR_CREATE + 1)[_XLA_ERROR_CREATE]
    arguments = np.zeros(4, np.int64)
    arguments[0] = _XLA_ERROR_ARGS_SIZE
    arguments[2] = _XLA_MESSAGE.ctypes.data
    arguments[3] = _XLA_INVALID_ARGUMENT  # errc, an int32 in the low half of the last word (little-endian)
    return _xla_call(create, arguments.ctypes.data)


@njit(inline="always")
def _xla_checked(buffers, i, rank, dtype_code):
    """Whether buffer i has this rank and dtype."""
    w = _xla_words(buffers[i], _XLA_DIMS + 1)
    return w[_XLA_RANK] == rank and carray(_xla_pointer(buffers[i], np.int32), 6)[_XLA_DTYPE] == dtype_code


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
def _xla_idle(frame):
    """Whether the frame is XLA's metadata query (answered here) or of a stage other than execution (nothing to
    do: a handler registered alone is called to execute only)."""
    return _xla_metadata(frame) or carray(_xla_pointer(frame, np.int32), _XLA_STAGE + 1)[_XLA_STAGE] != 3


@njit(inline="always")
def _xla_buffers(frame):
    """(arguments, results): the addresses of the frame's buffers."""
    w = _xla_words(frame, _XLA_RETV + 1)
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
def _xla_valid(frame, args, rets, arg_ranks, ret_ranks, t, fixed):
    """Whether the frame is long enough and its buffers are as many as expected, of these ranks, and of the dtype
    code t but the two int32 arguments at ``fixed`` and ``fixed + 1`` (rows and plan)."""
    if _xla_words(frame, 1)[0] < _XLA_FRAME_SIZE:
        return False
    if args.shape[0] != len(arg_ranks) or rets.shape[0] != len(ret_ranks):
        return False
    for i in range(len(arg_ranks)):
        if not _xla_checked(args, i, arg_ranks[i], _XLA_S32 if i == fixed or i == fixed + 1 else t):
            return False
    for i in range(len(ret_ranks)):
        if not _xla_checked(rets, i, ret_ranks[i], t):
            return False
    return True


@njit(inline="always")
def _xla_tape_valid(tY, tS, rows, plan, m, d, R, N):
    """Whether the tape, the rows and the plan agree with each other and with m, d, R and N: the kernels index by
    them without bounds checks."""
    field, act, bs, nblocks = plan[0], plan[1], plan[2], plan[3]
    if not (0 <= field <= 1 and 0 <= act <= 3 and bs > 0 and bs % 8 == 0 and nblocks * bs >= m > (nblocks - 1) * bs):
        return False
    if tY.shape != (nblocks, N, tY.shape[2], d, bs) or (tY.shape[2] != 1 and tY.shape[2] != STAGES):
        return False
    if tS.shape != (nblocks, N, STAGES, d, bs) or rows.shape != (N, STAGES) or plan.shape[0] != 5:
        return False
    return rows.min() >= 0 and rows.max() < R


@njit(inline="always")
def _xla_forward(frame, dtype, t):
    """Arguments y0 (m, d), K (R, d, d), beta (R, d), h (N,), rows (N, s), plan (5,); results y_N and the tape
    (tY, tS): :func:`forward`'s work on one thread, on XLA's buffers."""
    if _xla_idle(frame):
        return 0
    args, rets = _xla_buffers(frame)
    if not _xla_valid(frame, args, rets, (2, 3, 2, 1, 2, 1), (2, 5, 5), t, 4):
        return _xla_error(frame)
    y0, K, beta, h = _xla_2(args, 0, dtype), _xla_3(args, 1, dtype), _xla_2(args, 2, dtype), _xla_1(args, 3, dtype)
    rows, plan = _xla_fixed(args, 4)
    yN, tY, tS = _xla_2(rets, 0, dtype), _xla_5(rets, 1, dtype), _xla_5(rets, 2, dtype)
    m, d, R, N = y0.shape[0], y0.shape[1], K.shape[0], h.shape[0]
    if yN.shape != (m, d) or K.shape != (R, d, d) or beta.shape != (R, d) or m == 0:
        return _xla_error(frame)
    if not _xla_tape_valid(tY, tS, rows, plan, m, d, R, N):
        return _xla_error(frame)
    states = np.empty((1, 1, 1), y0.dtype)
    _forward_blocks(0, plan[3], y0, yN, K, beta, rows, h, plan[0], plan[1], tY, tS, np.int64(-1), states, False,
                    plan[2])
    return 0


@njit(inline="always")
def _xla_backward(frame, dtype, t):
    """Arguments tY, tS, K, beta, h, p (m, d), rows, plan; results dy0, dK, dbeta, dh: :func:`backward`'s work on
    one thread (float64 sums over the blocks, rounded once), and for a tied block (plan[4]) the sums over the layers
    of those rounded gradients, as :func:`rkgen.layers.backward` forms them."""
    if _xla_idle(frame):
        return 0
    args, rets = _xla_buffers(frame)
    if not _xla_valid(frame, args, rets, (5, 5, 3, 2, 1, 2, 2, 1), (2, 3, 2, 1), t, 6):
        return _xla_error(frame)
    tY, tS, K, beta = _xla_5(args, 0, dtype), _xla_5(args, 1, dtype), _xla_3(args, 2, dtype), _xla_2(args, 3, dtype)
    h, p = _xla_1(args, 4, dtype), _xla_2(args, 5, dtype)
    rows, plan = _xla_fixed(args, 6)
    dy0, dK, dbeta, dh = _xla_2(rets, 0, dtype), _xla_3(rets, 1, dtype), _xla_2(rets, 2, dtype), _xla_1(rets, 3, dtype)
    m, d, R, N = p.shape[0], p.shape[1], K.shape[0], h.shape[0]
    tied = plan[4] if plan.shape[0] == 5 else -1
    rows_out = 1 if tied == 1 else R
    if dy0.shape != (m, d) or K.shape != (R, d, d) or beta.shape != (R, d) or dh.shape != (N,) or m == 0:
        return _xla_error(frame)
    if tied < 0 or tied > 1 or dK.shape != (rows_out, d, d) or dbeta.shape != (rows_out, d):
        return _xla_error(frame)
    if not _xla_tape_valid(tY, tS, rows, plan, m, d, R, N):
        return _xla_error(frame)
    sK, sb, sh = np.zeros((R, d, d)), np.zeros((R, d)), np.zeros(N)
    _backward_blocks(0, plan[3], p, dy0, K, beta, rows, h, plan[0], plan[1], tY, tS, sK, sb, sh, plan[2])
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
    return _xla_forward(frame, np.float64, _XLA_F64)


def _xla_forward_f32(frame):
    return _xla_forward(frame, np.float32, _XLA_F32)


def _xla_backward_f64(frame):
    return _xla_backward(frame, np.float64, _XLA_F64)


def _xla_backward_f32(frame):
    return _xla_backward(frame, np.float32, _XLA_F32)


_XLA_CFUNCS = {}  # dtype name -> (forward, backward) cfuncs: the compiled handlers live as long as the module


def _xla_handlers(dtype):
    """(forward, backward) handler addresses for ``dtype`` (a numpy dtype name), compiled on first use (cached on
    disk as the kernels are)."""
    if dtype not in _XLA_CFUNCS:
        signature = types.intp(types.intp)
        pair = {"float64": (_xla_forward_f64, _xla_backward_f64), "float32": (_xla_forward_f32, _xla_backward_f32)}
        _XLA_CFUNCS[dtype] = tuple(cfunc(signature, cache=True)(fn) for fn in pair[dtype])
    return tuple(handler.address for handler in _XLA_CFUNCS[dtype])


def xla_plan(m, d, N, field, activation, params, dtype, tied=False):
    """How XLA calls this module for a differentiated block of m samples (m > 0), or None where it cannot: a
    dict of the handler addresses ("forward", "backward", as integers for ctypes), the fixed arguments ("rows",
    "plan": int32 arrays, which JAX keeps as they are with x64 off too) and the tape's shapes ("tape"). ``tied``:
    the shared layout with every layer's K and beta one (rkgen.jax's tied block), whose backward handler returns
    the sums of the layers' gradients.

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
    if numba.config.DISABLE_JIT or np.dtype(np.intp).itemsize != 8:
        return None
    bs, nblocks, bounds = _layout(m, d, N)
    if bounds is not None or not isinstance(_single_blas(d, bs), contextlib.nullcontext):
        return None
    forward_address, backward_address = _xla_handlers(dtype)
    return {
        "forward": forward_address,
        "backward": backward_address,
        "rows": _stage_rows(N, params).astype(np.int32),
        "plan": np.array([FIELDS.index(field), ACTIVATIONS.index(activation), bs, nblocks, int(tied)], np.int32),
        "tape": ((nblocks, N, _tape_inputs(field), d, bs), (nblocks, N, STAGES, d, bs)),
    }
