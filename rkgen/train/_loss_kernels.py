"""Compiled loss passes for the trainer (downstream of the chain; numba, imported on first use).

Single passes for the losses of :mod:`rkgen.train.losses`, imported there on first use so
that commands which do not train never import numba)."""

from __future__ import annotations

import math

from numba import njit


@njit(cache=True, error_model="numpy")
def squared_pass(z, c, dz):
    """Sigmoid hypothesis with squared error on logits z (m, 1), labels c in {0, 1}: writes dcost/dz
    into dz and returns (cost, number correct); (nan, -1) at the first label outside {0, 1}."""
    m = z.shape[0]
    cost = 0.0
    correct = 0
    for i in range(m):
        if c[i] < 0 or c[i] > 1:
            return math.nan, -1
        # sigmoid(z) = 1/(1 + exp(-z)), written so that exp never overflows
        e = math.exp(-abs(z[i, 0]))
        hyp = 1.0 / (1.0 + e) if z[i, 0] >= 0.0 else e / (1.0 + e)
        r = hyp - c[i]
        cost += r * r
        dz[i, 0] = r * hyp * (1.0 - hyp) / m
        correct += (hyp > 0.5) == (c[i] == 1)
    return 0.5 * cost / m, correct


@njit(cache=True, error_model="numpy")
def cross_entropy_pass(z, c, dz):
    """Softmax with cross-entropy on logits z (m, K), labels c in 0..K-1: writes dcost/dz into dz and
    returns (cost, number correct); (nan, -1) at the first label outside 0..K-1, before it is used as an index."""
    m, k = z.shape
    cost = 0.0
    correct = 0
    for i in range(m):
        if c[i] < 0 or c[i] >= k:
            return math.nan, -1
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
