"""Runge-Kutta blocks as PyTorch layers, for any tableau, with the generated module's exact discrete gradient.

>>> import torch
>>> from rkgen.torch import RKBlock
>>> block = RKBlock("rk4", width=4, layers=3)                          # doctest: +SKIP
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 4), block, torch.nn.Linear(4, 3))  # doctest: +SKIP

The block's forward calls the generated kernels (numba, CPU) through a :class:`torch.autograd.Function` whose
backward is the module's exact adjoint (the symplectic partner of the tableau, applied backwards): autograd does
not differentiate through the stages, and the gradient is the exact gradient of the discrete network, to rounding,
for explicit, diagonally implicit and fully implicit tableaux alike.

- Devices: CPU tensors only; a tensor elsewhere gets a :class:`RuntimeError` that says so.
- dtypes: float64 and float32, each computed in its own dtype (:func:`rkgen.layers.compute_dtype`): a float32
  block runs the float32 kernels (float32 stages, tape and gradients; the parameter gradients are summed in
  float64 across sample blocks and rounded once; implicit tableaux solve their stages in float64 and round back),
  so its output and gradient are within float32 rounding of the float64 block's. The input and the parameters
  must have the same dtype, as for torch.nn.Linear.
- ``torch.no_grad()``: inference without a tape (the stage values are not kept).
- Implicit tableaux: a stage solve that does not converge raises :class:`rkgen.layers.SolveFailure` in the
  forward pass; no output, and so never a wrong gradient, is returned.
- ``torch.compile``: the block is opaque to the compiler (:func:`torch.compiler.disable`): the graph breaks before
  and after it, the block runs eagerly with its exact gradient, and the layers around it are compiled.
- Any leading batch shape: inputs (..., width) are flattened to (m, width) samples for the kernels.

This module imports torch; ``import rkgen`` does not import it (install the extra: ``pip install "rkgen[torch]"``).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import layers as _layers
from .layers import SolveFailure

__all__ = ["RKBlock", "SolveFailure", "rk_block"]

_NUMPY = {torch.float32: np.float32, torch.float64: np.float64}


def _check_tensors(spec, y0, K, beta, h):
    for name, t in (("input", y0), ("K", K), ("beta", beta), ("h", h)):
        if t.device.type != "cpu":
            raise RuntimeError(
                f"rkgen's kernels run on the CPU only: the {name} of the {spec.name} block is on {t.device}; "
                "move the block and its input to the CPU (block.cpu(), x.cpu())"
            )
        if t.dtype not in _NUMPY:
            raise TypeError(f"rkgen blocks take float32 or float64 tensors; the {name} is {t.dtype}")
    if len({y0.dtype, K.dtype, beta.dtype, h.dtype}) != 1:
        raise TypeError(
            f"the input ({y0.dtype}) and the block's parameters ({K.dtype}) must have the same dtype, as for "
            "torch.nn.Linear: convert one of them (block.to(x.dtype) or x.to(...))"
        )
    shapes = spec.shapes()
    for name, t in (("K", K), ("beta", beta), ("h", h)):
        if tuple(t.shape) != shapes[name]:
            raise ValueError(f"{name} has shape {tuple(t.shape)}, expected {shapes[name]}")
    if y0.ndim < 1 or y0.shape[-1] != spec.width:
        raise ValueError(f"the input must have shape (..., {spec.width}), got {tuple(y0.shape)}")


def _numpy(t, dtype):
    """A numpy array in the compute dtype of a CPU tensor, sharing its memory when it is contiguous and the dtypes
    agree (the generated module copies what its tape keeps)."""
    return np.ascontiguousarray(t.detach().numpy(), dtype=dtype)


class _Block(torch.autograd.Function):
    """y_N of the block, with the generated module's backward as the gradient (never autograd through the stages)."""

    @staticmethod
    def forward(ctx, y0, K, beta, h, spec):
        dtype = _layers.compute_dtype(_NUMPY[y0.dtype])
        yN, tape = _layers.forward(spec, *(_numpy(t, dtype) for t in (y0, K, beta, h)))
        ctx.spec, ctx.tape = spec, tape
        return torch.from_numpy(yN)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, p):
        grads = _layers.backward(ctx.spec, ctx.tape, _numpy(p, _NUMPY[p.dtype]))
        return (*(torch.from_numpy(g) for g in grads), None)


@torch.compiler.disable
def rk_block(spec: _layers.Spec, y0, K, beta, h):
    """The block's output for inputs y0 (..., width): the functional form of :class:`RKBlock` (``spec`` a
    :class:`rkgen.layers.Spec`, K, beta, h tensors in its layout). Differentiable in all four tensors."""
    _check_tensors(spec, y0, K, beta, h)
    lead = y0.shape[:-1]
    flat = y0 if y0.ndim == 2 else y0.reshape(-1, spec.width)
    if flat.shape[0] == 0:  # no samples: nothing to run (the gradient of the parameters is zero)
        return y0 + 0.0 * (K.sum() + beta.sum() + h.sum())
    if torch.is_grad_enabled() and any(t.requires_grad for t in (y0, K, beta, h)):
        yN = _Block.apply(flat, K, beta, h, spec)
    else:  # inference: no tape
        dtype = _layers.compute_dtype(_NUMPY[y0.dtype])
        arrays = (_numpy(t, dtype) for t in (flat, K, beta, h))
        yN = torch.from_numpy(_layers.forward(spec, *arrays, keep_tape=False)[0])
    return yN if y0.ndim == 2 else yN.reshape(*lead, spec.width)


class RKBlock(torch.nn.Module):
    """N layers of a Runge-Kutta network, y_(j+1) = y_j + h_j sum_i b_i f(Y_i), from any tableau.

    Args:
        tableau: a built-in name ("rk4", "gauss2", ...), a JSON tableau file, a :class:`rkgen.Tableau`, a generated
            ``*_net.py`` file, or a loaded generated module. The module is generated once and cached ($RKGEN_CACHE,
            else ~/.cache/rkgen); its numba kernels compile on first use (20-35 s, then cached on disk).
        width: d, the features per sample (inputs have shape (..., d)).
        layers: N, the number of steps.
        field: "resnet", f(y) = sigma(K y + beta), or "stable", f(y) = -K^T sigma(K y + beta).
        activation: "tanh", "relu", "softplus" or "sigmoid".
        step: the initial step h_j (all equal); default ``final_time / layers``.
        final_time: T, used when ``step`` is not given (and for the node times of the continuous layout).
        learn_steps: the steps h are a trained parameter (an ODE-Net); else a buffer, saved in the state_dict.
        params: the parameter layout: "shared" (K (N, d, d), beta (N, d), one set per layer), "stage" (one set
            per stage: K (N, s, d, d), beta (N, s, d)), "continuous" (nodal values K (N+1, d, d), beta (N+1, d)
            at the fixed times j T/N, linear in between, read at the stage times) or "tied" (one K (d, d) and
            beta (d,) for every layer and stage: an autonomous field, a neural ODE y' = f(y); its gradient is the
            sum of the shared layout's over the layers).
        dtype: of the parameters (default torch's default dtype); float32 blocks compute in float32.

    K and beta start uniform on [-1/sqrt(d), 1/sqrt(d)] (torch.nn.Linear's default, and rkgen's trainer's), drawn
    from torch's generator (torch.manual_seed makes them reproducible).
    """

    def __init__(
        self,
        tableau,
        width: int,
        layers: int,
        *,
        field: str = "resnet",
        activation: str = "tanh",
        step: float | None = None,
        final_time: float = 1.0,
        learn_steps: bool = False,
        params: str = "shared",
        dtype: torch.dtype | None = None,
    ):
        super().__init__()
        net = _layers.network(tableau)
        final_time = float(final_time) if step is None else float(step) * int(layers)
        nodes = _layers.continuous_nodes(layers, final_time) if params == "continuous" else None
        self.spec = _layers.Spec(net, int(width), int(layers), field, activation, params, nodes)
        shapes = self.spec.shapes()
        dtype = dtype or torch.get_default_dtype()
        self.K = torch.nn.Parameter(torch.empty(shapes["K"], dtype=dtype))
        self.beta = torch.nn.Parameter(torch.empty(shapes["beta"], dtype=dtype))
        h = torch.full(shapes["h"], final_time / int(layers), dtype=dtype)
        if learn_steps:
            self.h = torch.nn.Parameter(h)
        else:
            self.register_buffer("h", h)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        a = 1.0 / math.sqrt(self.spec.width)
        with torch.no_grad():
            self.K.uniform_(-a, a)
            self.beta.uniform_(-a, a)

    @property
    def network(self):
        """The generated module the block runs."""
        return self.spec.net

    def forward(self, y: torch.Tensor) -> torch.Tensor:
        return rk_block(self.spec, y, self.K, self.beta, self.h)

    def extra_repr(self) -> str:
        s = self.spec
        learned = isinstance(self.h, torch.nn.Parameter)
        return (
            f"{s.name!r}, width={s.width}, layers={s.layers}, field={s.field!r}, activation={s.activation!r}, "
            f"params={s.params!r}, learn_steps={learned}"
        )
