"""rkgen.layers, framework-free: what rkgen.torch and rkgen.jax share, checked on numpy arrays.

The tied layout is checked here rather than through a framework: torch sums a gradient of the expanded shape down to
the parameter's shape by itself, so a torch test would pass even if rkgen.layers.backward returned the layers'
gradients unsummed.
"""

from __future__ import annotations

import numpy as np
import pytest

from rkgen import layers

pytestmark = pytest.mark.numba


def _problem(d, N, m, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    y0 = rng.standard_normal((m, d)).astype(dtype)
    K = (0.4 * rng.standard_normal((d, d))).astype(dtype)
    beta = (0.3 * rng.standard_normal(d)).astype(dtype)
    h = np.full(N, 0.2, dtype)
    p = rng.standard_normal((m, d)).astype(dtype)
    return y0, K, beta, h, p


@pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True, ids=["explicit", "implicit"])
def test_tied_is_the_shared_layout_summed_over_the_layers(net):
    """The tied block runs the shared layout with every layer's K_j = K and beta_j = beta: the same output, and as
    gradient the shared gradient summed over the layers (here in numpy, on the very arrays the module returns)."""
    d, N = 3, 4
    y0, K, beta, h, p = _problem(d, N, 5)
    tied, shared = layers.Spec(net, d, N, params="tied"), layers.Spec(net, d, N)
    yt, tape_t = layers.forward(tied, y0, K, beta, h)
    ys, tape_s = layers.forward(shared, y0, np.stack([K] * N), np.stack([beta] * N), h)
    np.testing.assert_array_equal(yt, ys)
    gt = layers.backward(tied, tape_t, p)
    gs = layers.backward(shared, tape_s, p)
    assert [g.shape for g in gt] == [(5, d), (d, d), (d,), (N,)]
    np.testing.assert_array_equal(gt[0], gs[0])
    np.testing.assert_array_equal(gt[1], gs[1].sum(axis=0))
    np.testing.assert_array_equal(gt[2], gs[2].sum(axis=0))
    np.testing.assert_array_equal(gt[3], gs[3])


def test_tied_float32_gradients_are_float32_and_near_float64(net_rk4):
    """A float32 tied block gives float32 results near the float64 block's: a loose check (64 N float32 roundings of
    the largest entry) that the layers' float32 gradients are summed, not their dtype or scale lost; the derived
    float32 tolerances of the module's own gradients are tests/test_float32.py's."""
    d, N = 3, 4
    tied = layers.Spec(net_rk4, d, N, params="tied")
    args64 = _problem(d, N, 5)
    args32 = tuple(a.astype(np.float32) for a in args64)
    g64 = layers.backward(tied, layers.forward(tied, *args64[:4])[1], args64[4])
    g32 = layers.backward(tied, layers.forward(tied, *args32[:4])[1], args32[4])
    assert all(g.dtype == np.float32 for g in g32)
    for a, b in zip(g32, g64, strict=True):
        np.testing.assert_allclose(a, b, rtol=0, atol=64 * N * np.finfo(np.float32).eps * np.abs(b).max())
