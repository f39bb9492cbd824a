"""Runge-Kutta blocks as JAX functions, for any tableau, with the generated module's exact discrete gradient.

>>> import jax
>>> from rkgen.jax import RKBlock
>>> block = RKBlock("rk4", width=4, layers=3)                    # doctest: +SKIP
>>> params = block.init(jax.random.key(0))                      # doctest: +SKIP
>>> y = block(params, x)                                        # doctest: +SKIP

:func:`rk_block` is a :func:`jax.custom_vjp` function whose forward and backward passes are the generated module's
numba kernels (CPU), reached through :func:`jax.pure_callback`: it works under ``jit``, ``grad`` (reverse mode;
there is no forward-mode rule) and ``vmap``, and its gradient is the exact adjoint of the discrete network.

- dtypes: float64 when x64 is on (``jax.config.update("jax_enable_x64", True)``); float32 otherwise, computed in
  float64 by the kernels and rounded back (:func:`rkgen.layers.compute_dtype`).
- The tape: the forward callback of a differentiated call keeps its tape (the stage values) on the Python side
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
import threading
from collections import OrderedDict

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


def _split(spec, y0, K, beta, h):
    """(batch shape of the parameters, y0's batch shape) of a callback's arguments: ``expand_dims`` puts the
    vmapped axes in front of every argument (size 1 where an argument is not batched)."""
    extra = K.ndim - len(spec.shapes()["K"])
    return K.shape[:extra], y0.shape[:extra], extra


def _run(spec, y0, K, beta, h, keep_tape):
    """y_N (y0's shape and dtype) and the tape, from numpy arguments of one unbatched call."""
    dtype = _layers.compute_dtype(y0.dtype)
    flat = np.asarray(y0, dtype=dtype).reshape(-1, spec.width)
    if flat.shape[0] == 0:
        return np.zeros(y0.shape, y0.dtype), None
    yN, tape = _layers.forward(spec, flat, K, beta, h, keep_tape=keep_tape)
    return yN.reshape(y0.shape).astype(y0.dtype, copy=False), tape


def _forward_callback(spec, y0, K, beta, h):
    """The primal pass, no tape; batched axes (``expand_dims``) fold into the samples when the parameters are not
    batched, else run one call per batch element."""
    y0, K, beta, h = (np.asarray(a) for a in (y0, K, beta, h))
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
        pick = [tuple(i if n > 1 else 0 for i, n in zip(idx, a.shape[:extra], strict=True)) for a in (y0, K, beta, h)]
        out[idx] = _run(spec, y0[pick[0]], K[pick[1]], beta[pick[2]], h[pick[3]], False)[0]
    return out


def _keep(tape) -> np.int32:
    token = next(_COUNTER) % (2**31 - 1) + 1
    with _LOCK:
        _TAPES[token] = tape
        _STATS["kept"] += 1
        while len(_TAPES) > TAPES:
            _TAPES.popitem(last=False)
    return np.int32(token)


def _taped_callback(spec, y0, K, beta, h):
    y0 = np.asarray(y0)
    yN, tape = _run(spec, y0, *(np.asarray(a) for a in (K, beta, h)), True)
    return yN, (_keep(tape) if tape is not None else np.int32(0))


def _backward_callback(spec, token, y0, K, beta, h, p):
    y0, K, beta, h, p = (np.asarray(a) for a in (y0, K, beta, h, p))
    dtypes = [a.dtype for a in (y0, K, beta, h)]
    if y0.size == 0:
        return tuple(np.zeros(a.shape, a.dtype) for a in (y0, K, beta, h))
    with _LOCK:
        tape = _TAPES.pop(int(token), None)
        _STATS["used" if tape is not None else "recomputed"] += 1
    if tape is None:  # dropped, or already used: the same exact gradient from a new forward pass
        tape = _run(spec, y0, K, beta, h, True)[1]
    cdtype = _layers.compute_dtype(p.dtype)
    grads = _layers.backward(spec, tape, np.asarray(p, dtype=cdtype).reshape(-1, spec.width))
    grads = (grads[0].reshape(y0.shape), *grads[1:])
    return tuple(np.asarray(g).astype(t, copy=False) for g, t in zip(grads, dtypes, strict=True))


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
    return jax.pure_callback(
        functools.partial(_forward_callback, spec), _shape(y0), y0, K, beta, h, vmap_method="expand_dims"
    )


def _block_fwd(spec, y0, K, beta, h):
    token = jax.ShapeDtypeStruct((), jnp.int32)
    yN, token = jax.pure_callback(
        functools.partial(_taped_callback, spec), (_shape(y0), token), y0, K, beta, h, vmap_method="sequential"
    )
    return yN, (token, y0, K, beta, h)


def _block_bwd(spec, res, p):
    token, y0, K, beta, h = res
    return jax.pure_callback(
        functools.partial(_backward_callback, spec),
        tuple(_shape(a) for a in (y0, K, beta, h)),
        token, y0, K, beta, h, p,
        vmap_method="sequential",
    )


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
