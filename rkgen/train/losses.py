"""Hypothesis functions and costs on the classifier's output (logits Z = y_N W^T + mu).

- ``squared`` (000): one output, hypothesis sigmoid, cost 1/(2m) sum_i (sigmoid(z_i) - c_i)^2 with
  c_i in {0, 1}. 000 (6) sums over the samples; rkgen divides by m so that a learning rate does not
  depend on the size of the data set (backtracking is indifferent to the scale).
- ``cross-entropy`` (004): K outputs, softmax, cost -1/m sum_i log softmax(z_i)[c_i].

Each function returns (cost, dcost/dZ, number of correct predictions).
"""

from __future__ import annotations

import numpy as np

LOSSES = ("squared", "cross-entropy")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def squared(z: np.ndarray, c: np.ndarray):
    """Sigmoid hypothesis with squared error; z has shape (m, 1)."""
    m = z.shape[0]
    hyp = _sigmoid(z[:, 0])
    r = hyp - c
    cost = 0.5 * float(r @ r) / m
    dz = (r * hyp * (1.0 - hyp) / m)[:, None]
    correct = int(np.count_nonzero((hyp > 0.5) == (c == 1)))
    return cost, dz, correct


def cross_entropy(z: np.ndarray, c: np.ndarray):
    """Softmax with cross-entropy; z has shape (m, K)."""
    m = z.shape[0]
    zmax = z.max(axis=1, keepdims=True)
    e = np.exp(z - zmax)
    tot = e.sum(axis=1, keepdims=True)
    rows = np.arange(m)
    logp = z[rows, c] - zmax[:, 0] - np.log(tot[:, 0])
    cost = -float(logp.sum()) / m
    dz = e / tot
    dz[rows, c] -= 1.0
    dz /= m
    correct = int(np.count_nonzero(np.argmax(z, axis=1) == c))
    return cost, dz, correct


def probabilities(loss: str, z: np.ndarray) -> np.ndarray:
    """Class probabilities (m, K) from logits: K = 2 columns for the sigmoid hypothesis."""
    if loss == "squared":
        p1 = _sigmoid(z[:, 0])
        return np.column_stack([1.0 - p1, p1])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def get(loss: str):
    return {"squared": squared, "cross-entropy": cross_entropy}[loss]
