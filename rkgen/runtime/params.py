"""Parameter layouts: which (K, beta) each stage of each layer uses, and the gradients back in the caller's layout.

The kernels read parameter *rows* K[r], beta[r]; ``rows[j, i]`` is the row of stage i of layer j:

- ``shared``: one set per layer, K (N, d, d), beta (N, d); every stage of layer j uses row j (000 Prop. 3.2).
- ``stage``: one set per stage, K (N, s, d, d), beta (N, s, d); row j s + i (000 Prop. 3.1).
- ``continuous``: nodal values K (M+1, d, d), beta (M+1, d) at node times tau_0 < ... < tau_M, linear in t
  between nodes (and beyond the end nodes); stage i of layer j uses them at its time t_j + c_i h_j, with
  t_j = h_0 + ... + h_(j-1).  The nodes need not be the layer boundaries, nor as many: the same nodal values
  define a network for any steps and any tableau (M = N when the nodes default to the layer boundaries,
  tau = (0, cumsum(h))).  The kernels run on the interpolated stage sets (the stage layout); the gradient of a
  stage set goes back to its two nodes with the interpolation weights, and, because the node times are held
  fixed while the steps move the stage times, dJ/dh also gets (dJ/du_ji) . (du/dt) times dt_ji/dh_k (1 for
  k < j, c_i for k = j).

The stage nodes c_i are the tableau's ``C``.
"""

import numpy as np
from numba import njit

from ._tableau import STAGES, C

PARAMS = ("shared", "stage", "continuous")


def _stage_rows(N, params):
    """rows[j, i]: the parameter row of stage i of layer j (int64, C-contiguous; kept per shape, since building it
    costs more than a small network's forward pass). Shared between calls, and only read: left writeable, so that
    the kernels have one signature for it whether it comes from here or from XLA's buffers (rkgen.runtime.xla, where
    a read-only array would be a second type, and the kernels compiled again for it)."""
    key = (N, params == "shared")
    rows = _ROWS.get(key)
    if rows is None:
        if params == "shared":
            rows = np.ascontiguousarray(np.repeat(np.arange(N, dtype=np.int64)[:, None], STAGES, axis=1))
        else:
            rows = np.arange(N * STAGES, dtype=np.int64).reshape(N, STAGES)
        if len(_ROWS) >= 64:
            _ROWS.clear()
        _ROWS[key] = rows
    return rows


_ROWS = {}


def _layer_count(K, d, params):
    """N from the parameter array's shape in this layout (checked); M, the nodal rows - 1, for continuous."""
    if params == "shared":
        if K.ndim != 3 or K.shape[1:] != (d, d):
            raise ValueError(f"K must have shape (N, {d}, {d}) for params='shared', got {K.shape}")
        return K.shape[0]
    if params == "stage":
        if K.ndim != 4 or K.shape[1:] != (STAGES, d, d):
            raise ValueError(f"K must have shape (N, {STAGES}, {d}, {d}) for params='stage', got {K.shape}")
        return K.shape[0]
    if params == "continuous":
        if K.ndim != 3 or K.shape[1:] != (d, d) or K.shape[0] < 2:
            raise ValueError(f"K must have shape (M+1, {d}, {d}) with M >= 1 for params='continuous', got {K.shape}")
        return K.shape[0] - 1
    raise ValueError(f"params must be one of {PARAMS}, got {params!r}")


def _stage_times(h):
    """t_ji = t_j + c_i h_j, shape (N, s)."""
    start = np.concatenate(((0.0,), np.cumsum(h)[:-1]))
    return start[:, None] + np.asarray(C)[None, :] * h[:, None]


def _interpolation(nodes, times):
    """(segment, weight of its right node, segment length) of each time: t = tau_k + w (tau_(k+1) - tau_k), on the
    segment that holds t from the left (a time on a node takes the segment that starts there), the end segments
    extended beyond the ends."""
    seg = np.clip(np.searchsorted(nodes, times, side="right") - 1, 0, len(nodes) - 2)
    width = nodes[seg + 1] - nodes[seg]
    return seg, (times - nodes[seg]) / width, width


@njit(cache=True, error_model="numpy")
def _to_nodes(P, G, seg, w, width, out, dt):
    """One pass over the stage-set gradients G (N, s, n): out[seg] += (1 - w) G, out[seg + 1] += w G (the nodal
    gradient, P and out flattened to (M+1, n)), and dt[j, i] = G . (P[seg + 1] - P[seg]) / width (dJ/dt_ji)."""
    N, s, n = G.shape
    for j in range(N):
        for i in range(s):
            k = seg[j, i]
            wr = w[j, i]
            wl = 1.0 - wr
            acc = 0.0
            for a in range(n):
                g = G[j, i, a]
                out[k, a] += wl * g
                out[k + 1, a] += wr * g
                acc += g * (P[k + 1, a] - P[k, a])
            dt[j, i] = acc / width[j, i]


class _Continuous:
    """The interpolation of one forward call, kept on the tape for the backward pass."""

    def __init__(self, nodes, h):
        self.nodes = nodes
        self.h = h
        self.seg, self.w, self.width = _interpolation(nodes, _stage_times(h))

    def stage_values(self, P):
        """(N, s, ...) stage values of the nodal values P (N+1, ...)."""
        w = self.w.reshape(self.w.shape + (1,) * (P.ndim - 1))
        return (1.0 - w) * P[self.seg] + w * P[self.seg + 1]

    def nodal_gradient(self, G, P):
        """Gradient of the nodal values from the stage-set gradient G (N, s, ...), and dJ/dt_ji."""
        N, s = G.shape[:2]
        n = int(np.prod(G.shape[2:]))
        out = np.zeros((P.shape[0], n))
        dt = np.zeros((N, s))
        if N:
            flat = np.ascontiguousarray(P).reshape(P.shape[0], n)
            _to_nodes(flat, np.ascontiguousarray(G).reshape(N, s, n), self.seg, self.w, self.width, out, dt)
        return out.reshape(P.shape), dt

    def step_gradient(self, dt):
        """dJ/dh_k from dJ/dt_ji: t_ji depends on h_k by 1 (k < j) and by c_i (k = j)."""
        per_layer = dt.sum(axis=1)
        later = np.concatenate((np.cumsum(per_layer[::-1])[::-1][1:], (0.0,)))
        return later + dt @ np.asarray(C)


def _kernel_parameters(K, beta, h, d, params, nodes):
    """(N, K rows, beta rows, rows, continuous) for the kernels; ``continuous`` is None unless params='continuous'."""
    N = _layer_count(K, d, params)
    if params == "shared":
        if beta.shape != (N, d):
            raise ValueError(f"beta must have shape ({N}, {d}), got {beta.shape}")
        return N, K, beta, _stage_rows(N, params), None
    if params == "stage":
        if beta.shape != (N, STAGES, d):
            raise ValueError(f"beta must have shape ({N}, {STAGES}, {d}), got {beta.shape}")
        return N, K.reshape(N * STAGES, d, d), beta.reshape(N * STAGES, d), _stage_rows(N, params), None
    M = N  # nodal rows - 1: any number of nodes; the layers are as many as the steps
    N = h.shape[0]
    if beta.shape != (M + 1, d):
        raise ValueError(f"beta must have shape ({M + 1}, {d}) to match K, got {beta.shape}")
    if nodes is None:
        if M != N:
            raise ValueError(f"{M + 1} nodal values for {N} steps: give their times as nodes=")
        if not np.all(h > 0):
            raise ValueError("the default nodes are the layer boundaries, which need positive steps: give nodes=")
        nodes = np.concatenate(((0.0,), np.cumsum(h)))
    nodes = np.ascontiguousarray(nodes, dtype=np.float64)
    if nodes.shape != (M + 1,) or not np.all(np.isfinite(nodes)) or not np.all(np.diff(nodes) > 0):
        raise ValueError(f"nodes must be {M + 1} increasing finite times, got shape {nodes.shape}")
    cont = _Continuous(nodes, h.astype(np.float64))  # times and weights in float64, whatever the network's dtype
    Ks = np.ascontiguousarray(cont.stage_values(K).reshape(N * STAGES, d, d), dtype=K.dtype)  # rounded once
    bs = np.ascontiguousarray(cont.stage_values(beta).reshape(N * STAGES, d), dtype=beta.dtype)
    return N, Ks, bs, _stage_rows(N, "stage"), cont


def _caller_gradients(dK, dbeta, dh, tape):
    """The kernels' row gradients (float64 sums) in the layout the caller gave to forward, in the network's dtype:
    rounded once, at the end."""
    N, d = dh.shape[0], dbeta.shape[-1]
    dtype = tape.y0.dtype
    if tape.params != "shared":
        dK = dK.reshape(N, STAGES, d, d)
        dbeta = dbeta.reshape(N, STAGES, d)
    if tape.params == "continuous":
        cont = tape.continuous
        dK, tK = cont.nodal_gradient(dK, tape.nodal[0].astype(np.float64))
        dbeta, tb = cont.nodal_gradient(dbeta, tape.nodal[1].astype(np.float64))
        dh = dh + cont.step_gradient(tK + tb)
    return dK.astype(dtype, copy=False), dbeta.astype(dtype, copy=False), dh.astype(dtype, copy=False)
