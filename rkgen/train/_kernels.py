"""The trainer's compiled passes (downstream of the chain; numba, imported on first use, so that commands which do
not train never import it).

- Single passes for the losses of :mod:`rkgen.train.losses`.
- The heads (``*_head``, ``head_backward``) run the affine classifier, the loss and the classifier's gradients in one
  compiled call each: in numpy the same work was five to eight small calls per pass, about a tenth of an iteration of
  000's setting 1 (15 layers of width 2, 1000 points).
- ``adam_update``, Adam's step in one pass (fourteen numpy calls over the parameters before: about 0.1 ms a batch of
  004's setting, 100 layers of width 16); ``all_finite``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from rkgen.runtime.fastmath import _sigmoid, _wide_vectors


@njit(cache=True, error_model="numpy")
def squared_pass(z, c, dz):
    """Sigmoid hypothesis with squared error on logits z (m, 1), labels c in {0, 1}: writes dcost/dz
    into dz and returns (cost, number correct); (nan, -1) if a label lies outside {0, 1}.

    Three loops: the labels' check; the sigmoid of every logit into dz, a map that vectorises (the runtime's
    :func:`rkgen.runtime.fastmath._sigmoid`, straight-line, accurate to 2.3e-16, in IEEE arithmetic here); then
    the cost, dcost/dz and the count in one pass, summed in order. 000's setting 1 (1000 points): 3.8-4.2 against
    7.7-8.6 us a pass with glibc's exp in one loop that also checked the labels (Intel Xeon, one thread, 7
    interleaved runs)."""
    _wide_vectors()
    m = z.shape[0]
    for i in range(m):
        if c[i] < 0 or c[i] > 1:
            return math.nan, -1
    for i in range(m):
        dz[i, 0] = _sigmoid(z[i, 0])
    cost = 0.0
    correct = 0
    for i in range(m):
        hyp = dz[i, 0]
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


@njit(cache=True, error_model="numpy")
def _logits(y, W, mu, z):
    """z = y W^T + mu (the product through BLAS, as numpy's y @ W.T + mu)."""
    np.dot(y, W.T, z)
    for i in range(z.shape[0]):
        for k in range(z.shape[1]):
            z[i, k] += mu[k]


@njit(cache=True, error_model="numpy")
def squared_head(y, W, mu, c, z, dz):
    """The logits z = y W^T + mu (one column) and :func:`squared_pass` on them."""
    _logits(y, W, mu, z)
    return squared_pass(z, c, dz)


@njit(cache=True, error_model="numpy")
def cross_entropy_head(y, W, mu, c, z, dz):
    """The logits z = y W^T + mu and :func:`cross_entropy_pass` on them."""
    _logits(y, W, mu, z)
    return cross_entropy_pass(z, c, dz)


@njit(cache=True, error_model="numpy")
def head_backward(dz, y, W, gW, gmu, p):
    """The classifier's share of the gradient from dz = dcost/dz: gW = dz^T y, gmu = the column sums of dz, and
    p = dz W = dcost/dy (the adjoint's start)."""
    np.dot(dz.T, y, gW)
    np.dot(dz, W, p)
    for k in range(dz.shape[1]):
        gmu[k] = 0.0
    for i in range(dz.shape[0]):
        for k in range(dz.shape[1]):
            gmu[k] += dz[i, k]


@njit(cache=True, error_model="numpy")
def all_finite(a):
    """Whether every entry of the 1-D float64 or float32 array a is finite: the largest exponent field of its
    entries is not all ones (inf and NaN have all ones). An integer max over the bits vectorises, where a loop that
    returns at the first non-finite entry does not: 004's gradient (27 000 entries, float64) 2.6 against 10.4 us
    a call (Intel Xeon, model 167, one thread)."""
    if a.itemsize == 4:  # float32
        return _largest_field(a.view(np.int32), np.int32(0x7F800000)) != np.int32(0x7F800000)
    return _largest_field(a.view(np.int64), np.int64(0x7FF0000000000000)) != np.int64(0x7FF0000000000000)


@njit(cache=True, error_model="numpy", inline="always")
def _largest_field(bits, mask):
    """max over i of bits[i] & mask (integers of one width, mask >= 0)."""
    worst = mask - mask
    for i in range(bits.shape[0]):
        worst = max(worst, bits[i] & mask)
    return worst


@njit(cache=True, error_model="numpy")
def adam_update(u, g, m, v, b1, c_b1, b2, c_b2, root_c2, eps, rate, before, keep):
    """One Adam step in place: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, u -= rate m / (sqrt(v) / sqrt(c2) +
    eps), with rate = lr / c1 and c_b1, c_b2 = 1 - b1, 1 - b2. The constants come in the arrays' dtype, so a float32
    run computes in float32; the operations and their order are those of the numpy expressions they replace, element
    by element, without contraction into fused multiply-adds (numba's default): a float64 step gives the same bits.
    With ``keep``, u's entries before the step go to ``before`` in the same pass (the trainer's last good
    parameters: a copy of its own before, 6 us of 004's iteration)."""
    for i in range(u.shape[0]):
        if keep:
            before[i] = u[i]
        gi = g[i]
        mi = m[i] * b1 + c_b1 * gi
        vi = v[i] * b2 + (gi * gi) * c_b2
        m[i] = mi
        v[i] = vi
        u[i] -= mi / (np.sqrt(vi) / root_c2 + eps) * rate
