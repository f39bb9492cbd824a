"""The public contract of every generated module: forward and backward (runtime, inlined at render).

    yN, tape = forward(y0, K, beta, h, field="resnet", activation="tanh", keep_states=False, keep_tape=True,
                       params="shared", nodes=None)
    dy0, dK, dbeta, dh = backward(tape, p)

``params`` is the parameter layout (:mod:`rkgen.runtime.params`): "shared" K (N, d, d), beta (N, d); "stage"
K (N, s, d, d), beta (N, s, d); "continuous" nodal K (N+1, d, d), beta (N+1, d) at the node times ``nodes``.
backward returns dK and dbeta in the layout given to forward.

Precision (the dtype contract): the network computes in the dtype of y0.

- A float32 y0 (a numpy array of dtype float32) runs it in float32: K, beta, h and p are cast to float32 (float64
  parameters are rounded once, on entry; the continuous layout interpolates in float64 and rounds the stage sets
  once), the tape holds float32, and yN, the states, dy0, dK, dbeta and dh come back float32. Stage values, stage
  products (wide layers: SGEMM) and tanh (max relative error 1.7e-7) are float32; sigmoid and softplus are
  evaluated in float64 and rounded once. The parameter gradients are summed in float64 across sample blocks,
  stages and threads (within a block: float32 SGEMM for wide layers, float64 accumulators for narrow ones) and
  rounded once at the end, so their error does not grow with the number of blocks.
- Any other y0 (float64, float16, integers, booleans, lists) runs in float64, as before: float16 is too short for
  the stage sums, and a caller who wants float32 says so with a float32 y0.
- Implicit tableaux (diagonally and fully implicit) run a float32 call in float64 for now, their Newton solves
  being float64 only: the inputs are widened exactly, the results rounded back to float32.
"""

from collections import namedtuple

import numba
import numpy as np

from ._tableau import STAGES, STRUCTURE
from .driver import _backward_blocks, _backward_parallel, _forward_blocks, _forward_parallel
from .layout import _chunks, _layout, _parallel, _single_blas
from .params import PARAMS, _caller_gradients, _kernel_parameters
from .tape import _tape_arrays

FIELDS = ("resnet", "stable")
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid")

Tape = namedtuple(
    "Tape",
    "states failures iterations stages y0 K beta h field activation block m rows params continuous nodal",
)


def _as_array(x, shape, name, dtype=np.float64):
    a = np.ascontiguousarray(x, dtype=dtype)
    if a.shape != shape:
        raise ValueError(f"{name} has shape {a.shape}, expected {shape}")
    return a


def _precision(y0):
    """The dtype a network computes in: float32 for a float32 y0, float64 for anything else (the module docstring)."""
    return np.dtype(np.float32) if getattr(y0, "dtype", None) == np.float32 else np.dtype(np.float64)


def _check(y0, K, beta, h, field, activation, params):
    dtype = _precision(y0)
    y0 = np.ascontiguousarray(y0, dtype=dtype)
    if y0.ndim != 2:
        raise ValueError(f"y0 must have shape (m, d), got {y0.shape}")
    if params not in PARAMS:
        raise ValueError(f"params must be one of {PARAMS}, got {params!r}")
    K = np.ascontiguousarray(K, dtype=dtype)
    beta = np.ascontiguousarray(beta, dtype=dtype)
    h = np.ascontiguousarray(h, dtype=dtype)
    if h.ndim != 1:
        raise ValueError(f"h must have shape (N,), got {h.shape}")
    if field not in FIELDS:
        raise ValueError(f"field must be one of {FIELDS}, got {field!r}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    return y0, K, beta, h


def _tape_inputs(field):
    """The stage values a tape keeps per layer: all s, or for an explicit tableau with the resnet field only the
    layer's input y_j = Y_1, from which the backward pass forms Y_2.. again with the forward pass's expression and
    the activations on the tape (F_l = S_l; :mod:`rkgen.codegen.printer`), the same values to the bit. RK4: a
    tape of 5 rows a layer instead of 8. Measured against the whole tape (Intel Xeon, model 167, side by side in
    one process): the trainer's setting 1 (width 2, 15 layers, 1000 samples, two threads) 234 against 276 us an
    iteration, its own work 44.5 against 55.8 us; RK4 at d = 16, 8 layers, 256 samples, one thread: forward and
    backward 548 against 591 us, a rkgen.jax training step 703 against 755 us (less tape, less of the caches
    taken from the framework's own work)."""
    return 1 if STRUCTURE == "explicit" and field == "resnet" else STAGES


def forward(
    y0, K, beta, h, field="resnet", activation="tanh", keep_states=False, keep_tape=True, params="shared", nodes=None
):
    """Run the network: returns (y_N, tape). See the module docstring for shapes.

    keep_tape=False evaluates without keeping the stage values (no backward pass is possible then)."""
    y0, K, beta, h = _check(y0, K, beta, h, field, activation, params)
    if y0.dtype == np.float32 and STRUCTURE != "explicit":  # the stage solves are float64 only, for now
        return _widened_forward(y0, K, beta, h, field, activation, keep_states, keep_tape, params, nodes)
    if keep_tape:  # the tape must not change if the caller changes the parameters in place
        K, beta, h = K.copy(), beta.copy(), h.copy()
    m, d = y0.shape
    N, Kr, br, rows, continuous = _kernel_parameters(K, beta, h, d, params, nodes)
    if h.shape != (N,):
        raise ValueError(f"h has shape {h.shape}, expected ({N},)")
    bs, nblocks, bounds = _layout(m, d, N)
    inputs = _tape_inputs(field)
    if keep_tape:  # every block's layers, from the pool
        tY, tS = _tape_arrays((nblocks, N, inputs, d, bs), (nblocks, N, STAGES, d, bs), y0.dtype)
    else:  # evaluation: one layer's stage values for each thread's chunk, small, outside the pool
        slots = 1 if bounds is None else bounds.shape[0] - 1
        tY, tS = np.empty((slots, 1, inputs, d, bs), y0.dtype), np.empty((slots, 1, STAGES, d, bs), y0.dtype)
    states = np.empty((N + 1, m, d), y0.dtype) if keep_states else np.empty((1, 1, 1), y0.dtype)
    yN = np.empty((m, d), y0.dtype)
    f, a = FIELDS.index(field), ACTIVATIONS.index(activation)
    with _single_blas(d, bs):
        if bounds is None:
            failures, most = _forward_blocks(
                0, nblocks, y0, yN, Kr, br, rows, h, f, a, tY, tS, -1 if keep_tape else 0, states, keep_states, bs
            )
        else:
            failures, most = _forward_parallel(
                bounds, y0, yN, Kr, br, rows, h, f, a, tY, tS, keep_tape, states, keep_states, bs
            )
    record = Tape(
        states if keep_states else None, int(failures), int(most), (tY, tS) if keep_tape else None,
        y0, Kr, br, h, field, activation, bs, m, rows, params, continuous, (K, beta),
    )
    return yN, record


def _widened_forward(y0, K, beta, h, field, activation, keep_states, keep_tape, params, nodes):
    """forward in float64 on float32 inputs (exactly widened), yN and the states rounded back to float32; the tape
    remembers it (its y0 stays float32), so that backward rounds the gradients back too."""
    wide = np.float64
    yN, record = forward(y0.astype(wide), K.astype(wide), beta.astype(wide), h.astype(wide), field, activation,
                         keep_states, keep_tape, params, nodes)
    states = None if record.states is None else record.states.astype(np.float32)
    return yN.astype(np.float32), record._replace(states=states, y0=y0)


def backward(tape, p):
    """Exact gradient of the forward map: (dJ/dy0, dJ/dK, dJ/dbeta, dJ/dh) for p = dJ/dy_N."""
    if tape.stages is None:
        raise ValueError("this tape was made with keep_tape=False: run forward again to differentiate")
    m, d = tape.y0.shape
    N = tape.h.shape[0]
    R = tape.K.shape[0]  # parameter rows: N (shared) or N s
    dtype = tape.y0.dtype
    p = _as_array(p, (m, d), "p", dtype)
    if tape.h.dtype != dtype:  # a float32 call run in float64 (_widened_forward)
        return tuple(g.astype(dtype) for g in backward(tape._replace(y0=tape.y0.astype(tape.h.dtype)), p))
    f, a = FIELDS.index(tape.field), ACTIVATIONS.index(tape.activation)
    tY, tS = tape.stages
    nblocks = tY.shape[0]
    dy0 = np.empty((m, d), dtype)
    threads = numba.get_num_threads()  # the tape's own blocks, split for the threads there are now
    bounds = _chunks(nblocks, _parallel(m, d, N, threads), threads)
    if bounds is None:
        dK = np.zeros((R, d, d))
        dbeta = np.zeros((R, d))
        dh = np.zeros(N)
        with _single_blas(d, tape.block):
            _backward_blocks(
                0, nblocks, p, dy0, tape.K, tape.beta, tape.rows, tape.h, f, a, tY, tS, dK, dbeta, dh, tape.block
            )
        return (dy0, *_caller_gradients(dK, dbeta, dh, tape))
    n = bounds.shape[0] - 1
    dK = np.zeros((n, R, d, d))
    dbeta = np.zeros((n, R, d))
    dh = np.zeros((n, N))
    with _single_blas(d, tape.block):
        _backward_parallel(
            bounds, p, dy0, tape.K, tape.beta, tape.rows, tape.h, f, a, tY, tS, dK, dbeta, dh, tape.block
        )
    return (dy0, *_caller_gradients(dK.sum(axis=0), dbeta.sum(axis=0), dh.sum(axis=0), tape))
