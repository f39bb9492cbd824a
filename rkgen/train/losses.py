"""Hypothesis functions and costs on the classifier's output (logits Z = y_N W^T + mu).

- ``squared`` (000): one output, hypothesis sigmoid, cost 1/(2m) sum_i (sigmoid(z_i) - c_i)^2 with
  c_i in {0, 1}. 000 (6) sums over the samples; rkgen divides by m so that a learning rate does not
  depend on the size of the data set (backtracking is indifferent to the scale).
- ``cross-entropy`` (004): K outputs, softmax, cost -1/m sum_i log softmax(z_i)[c_i].

Each function returns (cost, dcost/dZ, number of correct predictions). Each is one compiled pass
over the samples: they run once per forward pass of the trainer, and in numpy they took longer
(about 90 us for 1000 samples) than the rest of the trainer's own work per iteration.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOSSES = ("squared", "cross-entropy")


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


@njit(cache=True, error_model="numpy")
def _squared(z, c, dz):
    m = z.shape[0]
    cost = 0.0
    correct = 0
    for i in range(m):
        # sigmoid(z) = 1/(1 + exp(-z)), written so that exp never overflows
        e = math.exp(-abs(z[i, 0]))
        hyp = 1.0 / (1.0 + e) if z[i, 0] >= 0.0 else e / (1.0 + e)
        r = hyp - c[i]
        cost += r * r
        dz[i, 0] = r * hyp * (1.0 - hyp) / m
        correct += (hyp > 0.5) == (c[i] == 1)
    return 0.5 * cost / m, correct


def squared(z: np.ndarray, c: np.ndarray):
    """Sigmoid hypothesis with squared error; z has shape (m, 1)."""
    dz = np.empty((z.shape[0], 1))
    cost, correct = _squared(np.ascontiguousarray(z, dtype=float), np.ascontiguousarray(c), dz)
    return cost, dz, int(correct)


@njit(cache=True, error_model="numpy")
def _cross_entropy(z, c, dz):
    m, k = z.shape
    cost = 0.0
    correct = 0
    for i in range(m):
        zmax, best = z[i, 0], 0  # the first largest logit, as np.argmax
        for j in range(1, k):
            if z[i, j] > zmax:
                zmax, best = z[i, j], j
        tot = 0.0
        for j in range(k):
            e = math.exp(z[i, j] - zmax)
            dz[i, j] = e
            tot += e
        cost -= z[i, c[i]] - zmax - math.log(tot)
        for j in range(k):
            dz[i, j] = (dz[i, j] / tot - (1.0 if j == c[i] else 0.0)) / m
        correct += best == c[i]
    return cost / m, correct


def cross_entropy(z: np.ndarray, c: np.ndarray):
    """Softmax with cross-entropy; z has shape (m, K)."""
    dz = np.empty(z.shape)
    cost, correct = _cross_entropy(np.ascontiguousarray(z, dtype=float), np.ascontiguousarray(c), dz)
    return cost, dz, int(correct)


def probabilities(loss: str, z: np.ndarray) -> np.ndarray:
    """Class probabilities (m, K) from logits: K = 2 columns for the sigmoid hypothesis."""
    if loss == "squared":
        p1 = _sigmoid(z[:, 0])
        return np.column_stack([1.0 - p1, p1])
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def get(loss: str):
    return {"squared": squared, "cross-entropy": cross_entropy}[loss]
