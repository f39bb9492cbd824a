"""Activations on blocks of samples and their derivatives, for every generated module (runtime, inlined at render).

The codes: 0 tanh, 1 relu, 2 softplus, 3 sigmoid (the order of ``ACTIVATIONS`` in :mod:`rkgen.runtime.api`).
"""

import math

from numba import njit

from .fastmath import _sigmoid, _softplus, _tanh, _wide_vectors


@njit(cache=True, error_model="numpy")
def _activate(Z, S, act, d, nb):
    """S = sigma(Z) on a block; act: 0 tanh, 1 relu, 2 softplus, 3 sigmoid. The backward pass takes
    sigma'(Z) from S (_derivative, or 1 - S^2 in the adjoint's own pass for an explicit tableau's tanh), so the
    forward pass computes no derivative.

    When the nb columns are the whole rows, the d rows are one contiguous vector and one loop runs over all of
    them. A loop over one short row does not vectorise: LLVM's vector body takes 16 values at a time and leaves a
    shorter loop to its scalar remainder, so a batch of 5 samples (one group of 8 columns) ran tanh in scalar code."""
    _wide_vectors()
    if nb == Z.shape[1] and nb == S.shape[1]:  # whole rows: one long loop
        _activate_vector(Z.reshape(d * nb), S.reshape(d * nb), act, d * nb)
        return
    if act == 0:
        for a in range(d):
            for q in range(nb):
                S[a, q] = _tanh(Z[a, q])
    elif act == 1:
        for a in range(d):
            for q in range(nb):
                z = Z[a, q]
                S[a, q] = z if z > 0.0 else 0.0
    elif act == 2:
        for a in range(d):
            for q in range(nb):
                S[a, q] = _softplus(Z[a, q])
    else:
        for a in range(d):
            for q in range(nb):
                S[a, q] = _sigmoid(Z[a, q])


@njit(cache=True, error_model="numpy", inline="always")
def _activate_vector(z, s, act, n):
    """s = sigma(z) on n contiguous values."""
    if act == 0:
        for i in range(n):
            s[i] = _tanh(z[i])
    elif act == 1:
        for i in range(n):
            v = z[i]
            s[i] = v if v > 0.0 else 0.0
    elif act == 2:
        for i in range(n):
            s[i] = _softplus(z[i])
    else:
        for i in range(n):
            s[i] = _sigmoid(z[i])


@njit(cache=True, error_model="numpy")
def _activate_shifted(Z, b, S, act, d, nb):
    """S = sigma(Z + b) on a block, b (d,) added to every column: the bias and the activation in one pass."""
    _wide_vectors()
    if act == 0:
        for a in range(d):
            ba = b[a]
            for q in range(nb):
                S[a, q] = _tanh(Z[a, q] + ba)
    elif act == 1:
        for a in range(d):
            ba = b[a]
            for q in range(nb):
                z = Z[a, q] + ba
                S[a, q] = z if z > 0.0 else 0.0
    elif act == 2:
        for a in range(d):
            ba = b[a]
            for q in range(nb):
                S[a, q] = _softplus(Z[a, q] + ba)
    else:
        for a in range(d):
            ba = b[a]
            for q in range(nb):
                S[a, q] = _sigmoid(Z[a, q] + ba)


@njit(cache=True, error_model="numpy")
def _derivative(S, D, act, d, nb):
    """D = sigma'(Z) from S = sigma(Z), which the tape keeps (no activation is evaluated again)."""
    _wide_vectors()
    if nb == S.shape[1] and nb == D.shape[1]:  # whole rows: one long loop (see _activate)
        s = S.reshape(d * nb)
        t = D.reshape(d * nb)
        n = d * nb
        if act == 0:
            for i in range(n):
                t[i] = 1.0 - s[i] * s[i]
        elif act == 1:
            for i in range(n):
                t[i] = 1.0 if s[i] > 0.0 else 0.0
        elif act == 2:
            for i in range(n):
                t[i] = -math.expm1(-s[i])
        else:
            for i in range(n):
                t[i] = s[i] * (1.0 - s[i])
        return
    if act == 0:
        for a in range(d):
            for q in range(nb):
                D[a, q] = 1.0 - S[a, q] * S[a, q]
    elif act == 1:
        for a in range(d):
            for q in range(nb):
                D[a, q] = 1.0 if S[a, q] > 0.0 else 0.0
    elif act == 2:
        for a in range(d):
            for q in range(nb):
                D[a, q] = -math.expm1(-S[a, q])
    else:
        for a in range(d):
            for q in range(nb):
                D[a, q] = S[a, q] * (1.0 - S[a, q])


@njit(cache=True, error_model="numpy")
def _sigma(z, act):
    """(sigma(z), sigma'(z)) for one number."""
    if act == 0:
        t = _tanh(z)
        return t, 1.0 - t * t
    if act == 1:
        return (z, 1.0) if z > 0.0 else (0.0, 0.0)
    if act == 2:
        return _softplus(z), _sigmoid(z)
    t = _sigmoid(z)
    return t, t * (1.0 - t)
