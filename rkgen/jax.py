"""Runge-Kutta blocks as JAX functions, for any tableau, with the generated module's exact discrete gradient.

>>> import jax
>>> from rkgen.jax import RKBlock
>>> block = RKBlock("rk4", width=4, layers=3)                    # doctest: +SKIP
>>> params = block.init(jax.random.key(0))                      # doctest: +SKIP
>>> y = block(params, x)                                        # doctest: +SKIP

:func:`rk_block` is a :func:`jax.custom_vjp` function whose forward and backward passes are the generated module's
numba kernels (CPU): it works under ``jit``, ``grad`` (reverse mode; there is no forward-mode rule) and ``vmap``,
and its gradient is the exact adjoint of the discrete network.

- XLA FFI: a differentiated call of an explicit tableau (shared, stage or tied layout) that the module runs on one
  thread is two XLA custom calls of the module's own handlers (numba cfuncs, :mod:`rkgen.runtime.xla`), the tape
  an XLA residual: no Python runs in the step. The results are those of the callbacks below, bit for bit.
  :data:`USE_FFI` turns it off. Measured (Intel Xeon, one thread, RK4 at d = 16, 8 layers, 256 samples): a jit
  training step 0.52 ms against 0.61 ms through buffer callbacks, 0.85 ms for the same network in jax.numpy.
  Everything else goes through callbacks: the primal call without a gradient; implicit tableaux, whose failed
  solves must raise; the continuous layout; calls the module splits across threads (on XLA's thread a parallel
  region ran at half speed and slowed the process's later ones); a jaxlib whose FFI API is not 0.3 or a later
  0.x; a backend other than the CPU; no samples.
- Callbacks: ``jax.experimental.buffer_callback`` where JAX has it (the callback reads XLA's input buffers and
  writes its results into XLA's output buffers, with no copies or array conversions by JAX), else
  :func:`jax.pure_callback` (:data:`USE_BUFFER_CALLBACK`). A differentiated call makes two callbacks, the forward
  pass with its tape and the backward pass; each block's callbacks are made once and reused, so JAX compiles them
  once, in eager calls too. Measured on a loaded 2-core machine (docs/layers.md): a jit step with one empty
  pure_callback took 0.46-0.76 ms, most of it JAX moving the arguments into device arrays, with one empty
  buffer_callback 0.04-0.11 ms. XLA:CPU calls back on the calling thread, so numba's thread count
  (``numba.set_num_threads``) applies to the kernels.
- dtypes: float64 when x64 is on (``jax.config.update("jax_enable_x64", True)``); float32 otherwise, computed in
  float32 by the kernels (:func:`rkgen.layers.compute_dtype`: float32 stages, tape and gradients, the parameter
  gradients summed in float64 across sample blocks; implicit tableaux solve their stages in float64 and round
  back), so within float32 rounding of the float64 block.
- The tape (callbacks; through the handlers it is an XLA residual): the forward callback of a differentiated call
  keeps its tape (the stage values) on the Python side
  under a token that is a residual of the VJP; the backward callback takes it from there, once. When it is not
  there (the same VJP pulled back twice, or more than :data:`TAPES` tapes waiting), the backward callback runs
  the forward pass again from the saved inputs: the same exact gradient, at the cost of one more forward pass.
- ``vmap``: the primal callback is batched with ``vmap_method="expand_dims"``: when only the input is batched,
  the batch folds into the samples (one kernel call on B m samples, since the samples of a block are
  independent); batched parameters run one call per batch element. The forward-with-tape and backward callbacks
  use ``vmap_method="sequential"``: a batched cotangent asks for one parameter gradient per batch element
  (``vmap(grad(...))``: per-example gradients), which a folded call, summing over all samples, cannot give.
- Implicit tableaux: a stage solve that does not converge raises :class:`rkgen.layers.SolveFailure` inside the
  callback; JAX re-raises it (as its runtime error, with the message) and returns no output and no gradient.
- Inputs may have any leading shape (..., width); all leading axes are samples.

This module imports jax; ``import rkgen`` does not import it (install the extra: ``pip install "rkgen[jax]"``).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
import threading
from collections import OrderedDict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from . import layers as _layers
from .layers import SolveFailure

__all__ = ["RKBlock", "SolveFailure", "rk_block", "TAPES"]

#: tapes kept at most, waiting for their backward pass (the oldest are dropped first)
TAPES = 64
_TAPES: OrderedDict = OrderedDict()
_LOCK = threading.Lock()
_COUNTER = itertools.count(1)
_STATS = {"kept": 0, "used": 0, "recomputed": 0}

try:  # newer jax: the callback reads XLA's buffers and writes its results into them, without copies by jax
    from jax.experimental.buffer_callback import buffer_callback as _buffer_callback
except ImportError:  # older jax: jax.pure_callback
    _buffer_callback = None
#: whether the callbacks go through jax.experimental.buffer_callback (else jax.pure_callback); read when a call
#: is traced
USE_BUFFER_CALLBACK = _buffer_callback is not None


def _split(spec, y0, K, beta, h):
    """(batch shape of the parameters, y0's batch shape) of a callback's arguments: ``expand_dims`` puts the
    vmapped axes in front of every argument (size 1 where an argument is not batched)."""
    extra = K.ndim - len(spec.shapes()["K"])
    return K.shape[:extra], y0.shape[:extra], extra


def _run(spec, y0, K, beta, h, keep_tape):
    """y_N (y0's shape, in the compute dtype) and the tape, from numpy arguments of one unbatched call."""
    flat = y0.reshape(-1, spec.width)
    if flat.shape[0] == 0:
        return np.zeros(y0.shape, y0.dtype), None
    yN, tape = _layers.forward(spec, flat, K, beta, h, keep_tape=keep_tape)
    return yN.reshape(y0.shape), tape


def _keep(tape) -> np.int32:
    token = next(_COUNTER) % (2**31 - 1) + 1
    with _LOCK:
        _TAPES[token] = tape
        _STATS["kept"] += 1
        while len(_TAPES) > TAPES:
            _TAPES.popitem(last=False)
    return np.int32(token)


def _last_tape():
    """The tape kept last (for tests), or None."""
    with _LOCK:
        return next(reversed(_TAPES.values()), None)


class _Host:
    """The host side of one block (one spec): the three callbacks, made once per spec (:func:`_host`), so that
    JAX sees the same callables on every call and reuses what it compiled for them (eager calls included).

    Each takes numpy arrays (views of JAX's buffers, not copies) and returns numpy arrays."""

    def __init__(self, spec):
        self.spec = spec

    def forward(self, y0, K, beta, h):
        """The primal pass, no tape; batched axes (``expand_dims``) fold into the samples when the parameters are
        not batched, else run one call per batch element."""
        spec = self.spec
        pshape, yshape, extra = _split(spec, y0, K, beta, h)
        if not extra:
            return _run(spec, y0, K, beta, h, False)[0]
        shape = np.broadcast_shapes(pshape, h.shape[:extra], beta.shape[:extra], yshape)
        if math.prod(pshape) == 1 and math.prod(h.shape[:extra]) == 1 and math.prod(beta.shape[:extra]) == 1:
            y = np.broadcast_to(y0, shape + y0.shape[extra:])  # the batch folds into the samples
            return _run(spec, y, K.reshape(K.shape[extra:]), beta.reshape(beta.shape[extra:]),
                        h.reshape(h.shape[extra:]), False)[0]
        out = np.empty(shape + y0.shape[extra:], y0.dtype)
        for idx in np.ndindex(*shape):
            pick = [tuple(i if n > 1 else 0 for i, n in zip(idx, a.shape[:extra], strict=True))
                    for a in (y0, K, beta, h)]
            out[idx] = _run(spec, y0[pick[0]], K[pick[1]], beta[pick[2]], h[pick[3]], False)[0]
        return out

    def taped(self, y0, K, beta, h):
        """y_N and the token of its tape (0: no samples, no tape). The module copies K, beta and h into the tape;
        y0 is copied here, since the tape outlives the buffer it came in."""
        yN, tape = _run(self.spec, np.array(y0), K, beta, h, True)
        return yN, (_keep(tape) if tape is not None else np.int32(0))

    def backward(self, token, y0, K, beta, h, p):
        """The gradients (y0, K, beta, h) for the cotangent p, from the tape of ``token``; without it (used, or
        dropped) from a new forward pass on the saved inputs: the same exact gradient."""
        if y0.size == 0:
            return tuple(np.zeros(a.shape, a.dtype) for a in (y0, K, beta, h))
        with _LOCK:
            tape = _TAPES.pop(int(token), None)
            _STATS["used" if tape is not None else "recomputed"] += 1
        if tape is None:
            tape = _run(self.spec, y0, K, beta, h, True)[1]
        grads = _layers.backward(self.spec, tape, p.reshape(-1, self.spec.width))
        return (grads[0].reshape(y0.shape), *grads[1:])


@functools.lru_cache(maxsize=256)
def _host(spec) -> _Host:
    return _Host(spec)


def _in_place(fn):
    """``fn`` (numpy arrays in, a tuple of arrays or one array out) as a buffer_callback body."""

    @functools.wraps(fn)
    def body(ctx, out, *args):
        results = fn(*(np.asarray(a) for a in args))
        outs = out if isinstance(out, tuple | list) else (out,)
        results = results if isinstance(results, tuple) else (results,)
        for o, r in zip(outs, results, strict=True):
            np.asarray(o)[...] = r

    return body


@functools.lru_cache(maxsize=768)
def _callback(fn, shapes, vmap_method, buffer):
    """A function of JAX arrays that runs ``fn`` on the host (one per callback and setting, so that JAX caches)."""
    if buffer:
        return _buffer_callback(_in_place(fn), shapes, vmap_method=vmap_method)

    def plain(*args):
        return fn(*(np.asarray(a) for a in args))

    return functools.partial(jax.pure_callback, plain, shapes, vmap_method=vmap_method)


def _host_call(fn, shapes, *args, vmap_method):
    return _callback(fn, shapes, vmap_method, USE_BUFFER_CALLBACK)(*args)


def _shape(a):
    return jax.ShapeDtypeStruct(a.shape, a.dtype)


def _checked(spec, y0, K, beta, h):
    arrays = tuple(jnp.asarray(a) for a in (y0, K, beta, h))
    if len({a.dtype for a in arrays}) != 1 or arrays[0].dtype not in (jnp.float32, jnp.float64):
        raise TypeError(f"rkgen blocks take float32 or float64 arrays of one dtype, got {[a.dtype for a in arrays]}")
    shapes = spec.shapes()
    for name, a in zip(("K", "beta", "h"), arrays[1:], strict=True):
        if a.shape != shapes[name]:
            raise ValueError(f"{name} has shape {a.shape}, expected {shapes[name]}")
    if arrays[0].ndim < 1 or arrays[0].shape[-1] != spec.width:
        raise ValueError(f"the input must have shape (..., {spec.width}), got {arrays[0].shape}")
    return arrays


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def _block(spec, y0, K, beta, h):
    return _host_call(_host(spec).forward, _shape(y0), y0, K, beta, h, vmap_method="expand_dims")


def _block_fwd(spec, y0, K, beta, h):
    plan = _xla_plan(spec, y0.shape, y0.dtype)
    if plan is not None:
        return _xla_fwd(spec, plan, y0, K, beta, h)
    token = jax.ShapeDtypeStruct((), jnp.int32)
    yN, token = _host_call(_host(spec).taped, (_shape(y0), token), y0, K, beta, h, vmap_method="sequential")
    return yN, (token, y0, K, beta, h)


def _block_bwd(spec, res, p):
    if isinstance(res[0], tuple):  # the forward call went through XLA's FFI: the tape is a residual
        return _xla_bwd(spec, res, p)
    token, y0, K, beta, h = res
    shapes = tuple(_shape(a) for a in (y0, K, beta, h))
    return _host_call(_host(spec).backward, shapes, token, y0, K, beta, h, p, vmap_method="sequential")


# -- XLA FFI targets ----------------------------------------------------------------------------------------------

#: whether differentiated calls of explicit tableaux go through the module's XLA FFI handlers (:func:`_xla_plan`)
#: where JAX and the module have them; read when a call is traced
USE_FFI = hasattr(jax, "ffi") and hasattr(jax.ffi, "ffi_call")
_TARGETS: dict = {}  # target names -> the ctypes functions registered under them (kept alive here)


def _targets(net, dtype, plan=None):
    """The XLA target names of the module's forward and backward handlers for ``dtype``; registered with XLA
    from ``plan``'s handler addresses the first time."""
    key = f"rkgen_{getattr(net, 'MODULE_KEY', id(net))}_{np.dtype(dtype).name}"
    names = (f"{key}_forward", f"{key}_backward")
    if names[0] not in _TARGETS:
        import ctypes

        handler = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p)
        for name, part in zip(names, ("forward", "backward"), strict=True):
            _TARGETS[name] = handler(plan[part])
            jax.ffi.register_ffi_target(name, jax.ffi.pycapsule(_TARGETS[name]), platform="cpu")
    return names


@functools.lru_cache(maxsize=1)
def _jaxlib_ffi_api():
    """(major, minor): the FFI API of the installed jaxlib, read from its own C header (jax.ffi.include_dir()), or
    None where there is none."""
    try:
        text = (Path(jax.ffi.include_dir()) / "xla" / "ffi" / "api" / "c_api.h").read_text()
    except (AttributeError, OSError):
        return None
    found = [re.search(rf"#define XLA_FFI_API_{part} (\d+)", text) for part in ("MAJOR", "MINOR")]
    return None if None in found else (int(found[0].group(1)), int(found[1].group(1)))


def _ffi_compatible(net) -> bool:
    """Whether XLA accepts the module's handlers: they read the call frame by the layout of FFI API
    ``net.XLA_FFI_API`` (0.3), which a jaxlib of the same major version and at least that minor one passes (later
    minor versions only append fields; an older XLA checks the version only when a handler first runs, and then
    fails the call)."""
    have, wrote = _jaxlib_ffi_api(), getattr(net, "XLA_FFI_API", None)
    return have is not None and wrote is not None and have[0] == wrote[0] and have[1] >= wrote[1]


def _xla_plan(spec, shape, dtype):
    """The module's plan for a differentiated call (:func:`rkgen.runtime.xla.xla_plan`) with its target names, or
    None: then the call goes through host callbacks (implicit tableaux, the continuous layout, calls the module
    splits across threads, modules without handlers, a jaxlib of another FFI API, a backend other than the CPU,
    no samples, :data:`USE_FFI` off)."""
    m = math.prod(shape[:-1])
    plan_of = getattr(spec.net, "xla_plan", None)
    if not USE_FFI or plan_of is None or m == 0 or jax.default_backend() != "cpu" or not _ffi_compatible(spec.net):
        return None
    plan = plan_of(
        m, spec.width, spec.layers, spec.field, spec.activation, spec.module_params, dtype, spec.params == "tied"
    )
    return None if plan is None else dict(plan, names=_targets(spec.net, dtype, plan))


def _kernel_layout(spec, K, beta):
    """K and beta as the kernels' rows (R, d, d) and (R, d): the stage layout's (N, s, ...) flattened, a tied
    block's one K and beta in every layer."""
    d = spec.width
    R = spec.layers * (spec.stages if spec.params == "stage" else 1)
    if spec.params == "tied":
        return jnp.broadcast_to(K, (R, d, d)), jnp.broadcast_to(beta, (R, d))
    return K.reshape(R, d, d), beta.reshape(R, d)


def _xla_fwd(spec, plan, y0, K, beta, h):
    """The taped forward pass as an XLA custom call; the residuals hold the tape and the plan's fixed arguments
    (rows and plan: the backward call reads the tape with the layout that wrote it)."""
    d, dtype = spec.width, y0.dtype
    flat = y0.reshape(-1, d)
    Kr, br = _kernel_layout(spec, K, beta)
    fixed = tuple(jnp.asarray(plan[k]) for k in ("rows", "plan"))
    outs = (jax.ShapeDtypeStruct(flat.shape, dtype), *(jax.ShapeDtypeStruct(s, dtype) for s in plan["tape"]))
    yN, tY, tS = jax.ffi.ffi_call(plan["names"][0], outs, vmap_method="sequential")(flat, Kr, br, h, *fixed)
    return yN.reshape(y0.shape), ((tY, tS, *fixed), y0, K, beta, h)


def _xla_bwd(spec, res, p):
    (tY, tS, *fixed), y0, K, beta, h = res
    d, dtype = spec.width, y0.dtype
    names = _targets(spec.net, dtype)  # registered by the forward call
    Kr, br = _kernel_layout(spec, K, beta)
    rows = 1 if spec.params == "tied" else Kr.shape[0]
    shapes = ((math.prod(y0.shape[:-1]), d), (rows, d, d), (rows, d), h.shape)
    outs = tuple(jax.ShapeDtypeStruct(s, dtype) for s in shapes)
    dy0, dK, dbeta, dh = jax.ffi.ffi_call(names[1], outs, vmap_method="sequential")(
        tY, tS, Kr, br, h, p.reshape(-1, d), *fixed
    )
    return dy0.reshape(y0.shape), dK.reshape(K.shape), dbeta.reshape(beta.shape), dh


_block.defvjp(_block_fwd, _block_bwd)


def rk_block(spec: _layers.Spec, y0, K, beta, h):
    """y_N of the block ``spec`` (a :class:`rkgen.layers.Spec`, static) for inputs y0 (..., width) and the
    parameters K, beta, h in its layout; differentiable (reverse mode) in all four with the exact adjoint."""
    return _block(spec, *_checked(spec, y0, K, beta, h))


class RKBlock:
    """N layers of a Runge-Kutta network from any tableau, as a pure function of its parameters.

    ``block = RKBlock(tableau, width, layers, field=..., activation=..., step=... or final_time=..., params=...)``
    (the arguments of :class:`rkgen.torch.RKBlock`); ``params = block.init(key)`` gives {"K", "beta", "h"};
    ``block(params, y)`` is the block's output. Which of the parameters are trained is the caller's choice (keep h
    out of the optimiser, or ``jax.lax.stop_gradient`` it, for fixed steps). A block is hashable, so it can be a
    static argument of ``jax.jit``.
    """

    def __init__(
        self, tableau, width, layers, *, field="resnet", activation="tanh", step=None, final_time=1.0, params="shared"
    ):
        net = _layers.network(tableau)
        self.final_time = float(final_time) if step is None else float(step) * int(layers)
        nodes = _layers.continuous_nodes(layers, self.final_time) if params == "continuous" else None
        self.spec = _layers.Spec(net, int(width), int(layers), field, activation, params, nodes)

    def init(self, key, dtype=None) -> dict:
        """K and beta uniform on [-1/sqrt(d), 1/sqrt(d)], the steps all T/N; ``dtype`` defaults to float64 when
        x64 is on, else float32."""
        dtype = dtype or jnp.asarray(0.0).dtype
        shapes = self.spec.shapes()
        a = 1.0 / math.sqrt(self.spec.width)
        kK, kb = jax.random.split(key)
        return {
            "K": jax.random.uniform(kK, shapes["K"], dtype, -a, a),
            "beta": jax.random.uniform(kb, shapes["beta"], dtype, -a, a),
            "h": jnp.full(shapes["h"], self.final_time / self.spec.layers, dtype),
        }

    def __call__(self, params, y):
        return rk_block(self.spec, y, params["K"], params["beta"], params["h"])

    def __hash__(self):
        return hash(self.spec)

    def __eq__(self, other):
        return isinstance(other, RKBlock) and other.spec == self.spec

    def __repr__(self):
        s = self.spec
        return f"RKBlock({s.name!r}, width={s.width}, layers={s.layers}, field={s.field!r}, params={s.params!r})"
