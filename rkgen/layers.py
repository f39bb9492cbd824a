"""What the PyTorch and JAX layers share: the generated module of a tableau, parameter shapes, the dtype policy.

Framework-free (numpy only): :mod:`rkgen.torch` and :mod:`rkgen.jax` wrap these calls in their own autodiff.
A block is one call of a generated module's contract (:mod:`rkgen.runtime.api`)::

    yN, tape = forward(y0, K, beta, h, field, activation, keep_tape=..., params=..., nodes=...)
    dy0, dK, dbeta, dh = backward(tape, p)

and its gradient is that module's exact discrete adjoint, never a differentiation of the forward computation (in
the tied layout, which runs the shared one with every layer equal, that adjoint summed over the layers: in float64,
so a float32 tied block's parameter gradients carry one rounding more per layer than the other layouts').
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import RkgenError, SolveFailure

#: the parameter layouts of a block: the module's own (:mod:`rkgen.runtime.params`), and "tied", one K and beta for
#: every layer and stage (an autonomous field, a neural ODE y' = f(y)), which runs as the shared layout with every
#: K_j and beta_j equal and whose gradient is the sum of theirs (:func:`forward`, :func:`backward`)
PARAMS = ("shared", "stage", "continuous", "tied")
FIELDS = ("resnet", "stable")
ACTIVATIONS = ("tanh", "relu", "softplus", "sigmoid")


def network(tableau):
    """The generated module of ``tableau``: a built-in name, a JSON path, a :class:`rkgen.Tableau`, a ``*_net.py``
    path (all through :func:`rkgen.codegen.load_network`, which renders once and caches under $RKGEN_CACHE), or a
    module already loaded (anything with ``forward`` and ``backward``)."""
    if hasattr(tableau, "forward") and hasattr(tableau, "backward"):
        return tableau
    from .codegen import load_network

    return load_network(tableau)


def compute_dtype(dtype) -> np.dtype:
    """The dtype the kernels compute in for arrays of ``dtype`` (the one place that decides it): float64 and
    float32 each compute in their own dtype.

    A float32 block is a float32 call of the generated module (:mod:`rkgen.runtime.api`, "the dtype contract"):
    float32 stage values, tape and returned gradients; the parameter gradients are summed in float64 across
    sample blocks and rounded once; implicit tableaux solve their stages in float64 and round the results back.
    So a float32 block's output and gradient are within float32 rounding of the float64 block's, not equal to
    them rounded."""
    dtype = np.dtype(dtype)
    if dtype == np.float64 or dtype == np.float32:
        return dtype
    raise TypeError(f"rkgen blocks take float32 or float64 arrays, got {dtype}")


@dataclass(frozen=True)
class Spec:
    """One block's fixed description: its module, field, activation, parameter layout and (continuous layout)
    node times. Everything here is static; K, beta and h are the arrays a framework differentiates."""

    net: object
    width: int
    layers: int
    field: str = "resnet"
    activation: str = "tanh"
    params: str = "shared"
    nodes: tuple | None = None

    def __post_init__(self):
        if self.field not in FIELDS:
            raise RkgenError(f"unknown field {self.field!r}; choose one of {', '.join(FIELDS)}")
        if self.activation not in ACTIVATIONS:
            raise RkgenError(f"unknown activation {self.activation!r}; choose one of {', '.join(ACTIVATIONS)}")
        if self.params not in PARAMS:
            raise RkgenError(f"unknown params {self.params!r}; choose one of {', '.join(PARAMS)}")
        if self.module_params != "shared" and self.module_params not in getattr(self.net, "PARAMS", ("shared",)):
            raise RkgenError(f"the module of {self.name!r} knows only the shared layout: regenerate it")
        if self.width < 1 or self.layers < 1:
            raise RkgenError(f"width and layers must be at least 1, got {self.width} and {self.layers}")
        if (self.nodes is not None) != (self.params == "continuous"):
            raise RkgenError("the continuous parameter layout, and it alone, needs node times")
        if self.nodes is not None and len(self.nodes) != self.layers + 1:
            raise RkgenError(f"{self.layers} layers need {self.layers + 1} node times, got {len(self.nodes)}")

    @property
    def name(self) -> str:
        return str(getattr(self.net, "NAME", "?"))

    @property
    def module_params(self) -> str:
        """The layout the generated module runs: the block's own, or "shared" for the tied layout."""
        return "shared" if self.params == "tied" else self.params

    @property
    def stages(self) -> int:
        return int(self.net.STAGES)

    def shapes(self) -> dict:
        """The shapes of K, beta and h in this layout (:mod:`rkgen.runtime.params`; "tied": one K and beta)."""
        N, d, s = self.layers, self.width, self.stages
        rows = {"shared": (N,), "stage": (N, s), "continuous": (N + 1,), "tied": ()}[self.params]
        return {"K": rows + (d, d), "beta": rows + (d,), "h": (N,)}

    def node_times(self) -> np.ndarray | None:
        """The continuous layout's node times (float64), None in the other layouts."""
        return None if self.nodes is None else np.asarray(self.nodes, dtype=np.float64)

    def options(self) -> dict:
        """The keyword arguments of the module's forward for this block."""
        options = {"field": self.field, "activation": self.activation}
        if self.module_params != "shared":  # modules older than the layouts still serve the shared one
            options["params"] = self.module_params
        if self.params == "continuous":
            options["nodes"] = self.node_times()
        return options


def continuous_nodes(layers: int, final_time: float) -> tuple:
    """The continuous layout's node times, fixed at the initial grid tau_j = j T/N (as rkgen's trainer fixes them):
    learned steps then move the stage times, not the nodes."""
    if not final_time > 0.0:
        raise RkgenError("the continuous parameter layout needs a positive final time")
    return tuple(np.linspace(0.0, float(final_time), int(layers) + 1).tolist())


def _arrays(y0, K, beta, h):
    """The four arrays in y0's compute dtype, C-contiguous; no copy of an array that already is."""
    dtype = compute_dtype(getattr(y0, "dtype", np.float64))
    return tuple(np.ascontiguousarray(a, dtype=dtype) for a in (y0, K, beta, h))


def _checked(spec: Spec, tape):
    if tape.failures:
        raise SolveFailure(
            f"{spec.name}: {tape.failures} implicit stage solve(s) did not converge (largest iteration count "
            f"{tape.iterations}); no output or gradient is given. Smaller steps h or smaller weights K help."
        )
    return tape


def forward(spec: Spec, y0, K, beta, h, keep_tape=True):
    """(y_N, tape), y0 of shape (m, d), in y0's dtype (float32 or float64, :func:`compute_dtype`); raises
    :class:`SolveFailure` when a stage solve fails. Without the tape (``keep_tape=False``: inference) the stage
    values are not kept and no backward pass is possible."""
    y0, K, beta, h = _arrays(y0, K, beta, h)
    if y0.ndim != 2 or y0.shape[1] != spec.width:
        raise ValueError(f"the input must have shape (..., {spec.width}), got {y0.shape}")
    if spec.params == "tied":  # every layer's K_j and beta_j the one K and beta (the module copies them)
        K = np.broadcast_to(K, (spec.layers,) + K.shape)
        beta = np.broadcast_to(beta, (spec.layers,) + beta.shape)
    options = spec.options()
    if not keep_tape:
        options["keep_tape"] = False
    yN, tape = spec.net.forward(y0, K, beta, h, **options)
    # a module older than float32 support computed in float64: its result is rounded (no copy otherwise)
    return yN.astype(y0.dtype, copy=False), _checked(spec, tape)


def backward(spec: Spec, tape, p):
    """(dJ/dy0, dJ/dK, dJ/dbeta, dJ/dh) for p = dJ/dy_N, in the dtype of the forward pass's y0 and in the block's
    layout."""
    dtype = compute_dtype(tape.y0.dtype)
    grads = spec.net.backward(tape, np.ascontiguousarray(p, dtype=dtype))
    if spec.params == "tied":  # one K and beta in every layer: the sums of the layers' gradients
        grads = (grads[0], grads[1].sum(axis=0, dtype=np.float64), grads[2].sum(axis=0, dtype=np.float64), grads[3])
    return tuple(np.asarray(g).astype(dtype, copy=False) for g in grads)
