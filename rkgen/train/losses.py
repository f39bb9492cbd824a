"""Hypothesis functions and costs on the classifier's output (logits Z = y_N W^T + mu).

- ``squared`` (000): one output, hypothesis sigmoid, cost 1/(2m) sum_i (sigmoid(z_i) - c_i)^2 with
  c_i in {0, 1}. 000 (6) sums over the samples; rkgen divides by m so that a learning rate does not
  depend on the size of the data set (backtracking is indifferent to the scale).
- ``cross-entropy`` (004): K outputs, softmax, cost -1/m sum_i log softmax(z_i)[c_i].

Each function returns (cost, dcost/dZ, number of correct predictions); ``classify`` computes the logits
from the features first and returns them too (the trainer's path). Each is one compiled pass
over the samples: they run once per forward pass of the trainer, and in numpy they took longer
(about 90 us for 1000 samples) than the rest of the trainer's own work per iteration.
"""

from __future__ import annotations

import numpy as np

LOSSES = ("squared", "cross-entropy")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _labels(c, x: np.ndarray, what: str) -> np.ndarray:
    """c as contiguous int64 labels, one per row of the 2-D array x (at least one row); ``what`` says what x must
    be in the error."""
    c = np.asarray(c)
    if x.ndim != 2 or x.shape[0] == 0 or c.shape != (x.shape[0],):
        raise ValueError(f"{what} with m >= 1 and labels shape (m,); got {x.shape}, {c.shape}")
    if c.dtype.kind not in "iub":
        raise ValueError(f"labels must be integers, got dtype {c.dtype}")
    return np.ascontiguousarray(c, dtype=np.int64)


def _checked(z: np.ndarray, c: np.ndarray):
    """z as contiguous float32 (if it is float32: a float32 model's logits) or float64 (m, K) and c as int64 labels.
    The passes check the labels' range as they go (:func:`_counted`), sum the cost in float64 either way; dcost/dz
    has z's dtype."""
    z = np.ascontiguousarray(z, dtype=np.float32 if getattr(z, "dtype", None) == np.float32 else np.float64)
    return z, _labels(c, z, "logits must have shape (m, K)")


def _counted(correct, c: np.ndarray, n_classes: int) -> int:
    """A compiled pass's count of correct predictions; the pass returns -1 at a label outside 0..n_classes-1 (a check
    in the pass itself: two reductions over the labels each call cost the trainer more)."""
    if correct < 0:
        raise ValueError(f"labels must lie in 0..{n_classes - 1}, got {c.min()}..{c.max()}")
    return int(correct)


def _pass(kernel, z, c, n_classes):
    """(cost, dcost/dz, number correct) from a compiled pass on the logits z."""
    dz = np.empty(z.shape, z.dtype)
    cost, correct = kernel(z, c, dz)
    return cost, dz, _counted(correct, c, n_classes)


def squared(z: np.ndarray, c: np.ndarray):
    """Sigmoid hypothesis with squared error; z has shape (m, 1), labels c in {0, 1}."""
    from rkgen.train._kernels import squared_pass  # numba is imported on first use, not by `rkgen check`

    z, c = _checked(z, c)
    if z.shape[1] != 1:
        raise ValueError(f"the squared loss takes one logit per sample, got shape {z.shape}")
    return _pass(squared_pass, z, c, 2)


def cross_entropy(z: np.ndarray, c: np.ndarray):
    """Softmax with cross-entropy; z has shape (m, K)."""
    from rkgen.train._kernels import cross_entropy_pass

    z, c = _checked(z, c)
    return _pass(cross_entropy_pass, z, c, z.shape[1])


def classify(loss: str, y: np.ndarray, W: np.ndarray, mu: np.ndarray, c: np.ndarray):
    """The logits z = y W^T + mu of the features y (m, d) and the loss on them, in one compiled pass:
    (z, cost, dcost/dz, number correct). y, W and mu share one float dtype, which z and dcost/dz take."""
    from rkgen.train import _kernels  # numba is imported on first use

    y = np.ascontiguousarray(y)
    m, n_out = y.shape[0], W.shape[0]
    if loss == "squared" and n_out != 1:
        raise ValueError(f"the squared loss takes one logit per sample, got {n_out}")
    c = _labels(c, y, "features must have shape (m, d)")
    z = np.empty((m, n_out), y.dtype)
    dz = np.empty((m, n_out), y.dtype)
    head = _kernels.squared_head if loss == "squared" else _kernels.cross_entropy_head
    cost, correct = head(y, np.ascontiguousarray(W, y.dtype), np.ascontiguousarray(mu, y.dtype), c, z, dz)
    return z, cost, dz, _counted(correct, c, max(n_out, 2))


def probabilities(loss: str, z: np.ndarray) -> np.ndarray:
    """Class probabilities (m, K) from logits: K = 2 columns for the sigmoid hypothesis."""
    if loss == "squared":
        p1 = _sigmoid(z[:, 0])
        return np.column_stack([1.0 - p1, p1])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def get(loss: str):
    return {"squared": squared, "cross-entropy": cross_entropy}[loss]
