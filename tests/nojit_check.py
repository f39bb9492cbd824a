"""Numerical checks of generated network modules, shared by the tests, and a script that runs them
on the golden modules with numba's JIT switched off.

As a library (imported by tests/test_generated_numerics.py and tests/test_adjoint.py) it offers
the problem generator, central differences, the P-form (partner) backward pass for a given partner
tableau (rkgen.reference's, fed with b - Ã), and :func:`check_module`, which runs every check on
one module. As a script::

    NUMBA_DISABLE_JIT=1 python tests/nojit_check.py [NAME ...]

it imports ``generated/<NAME>_net.py`` for every NAME (default: every built-in tableau), runs the
same Python source as plain Python (numba compiles nothing), and prints one JSON object with the
measured errors of every (tableau, field, activation) case. The test parses the JSON and asserts;
this script only measures. It refuses to run with the JIT on (that would compile every module).

Everything is seeded: the same run prints the same numbers.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import numpy as np

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GENERATED = ROOT / "generated"

# h_j: one ordinary step, one exactly zero, one negative
STEPS = (0.35, 0.0, -0.25)
FD_STEP = 1e-6
# smallest |pre-activation| allowed with relu, so that no central difference crosses the kink
RELU_MARGIN = 1e-3
# the sizes of the no-JIT check (m samples, width d; N = len(STEPS) layers)
NOJIT_M, NOJIT_D = 2, 2


def _reference():
    if str(TESTS) not in sys.path:
        sys.path.insert(0, str(TESTS))
    import reference

    return reference


# --------------------------------------------------------------------------------------------------
# problems
# --------------------------------------------------------------------------------------------------


def tableau_floats(name):
    """(A, b) of a built-in tableau as float arrays, rounded from the exact entries by rkgen."""
    from rkgen import load

    A, b, _ = load(name).floats()
    return np.array(A, dtype=float), np.array(b, dtype=float)


def relu_margin(A, b, y0, K, beta, h, field):
    """The smallest |pre-activation| over every stage of every layer (reference forward pass)."""
    ref = _reference()
    _, stages = ref.rk_forward(A, b, y0, K, beta, h, field, "relu", return_stages=True)
    return min(float(np.abs(Y @ K[j].T + beta[j]).min()) for j, (_, Y) in enumerate(stages))


def draw_problem(A, b, m, d, field, activation, seed=0, steps=STEPS, scale=0.6):
    """A seeded instance (y0, K, beta, h, W); for relu the first seed (from ``seed`` on) whose
    stages all stay RELU_MARGIN away from the kink."""
    N = len(steps)
    for s in range(seed, seed + 500):
        rng = np.random.default_rng(s)
        y0 = rng.normal(size=(m, d))
        K = scale * rng.normal(size=(N, d, d))
        beta = 0.5 * rng.normal(size=(N, d))
        W = rng.normal(size=(m, d))
        h = np.array(steps, dtype=float)
        if activation != "relu" or relu_margin(A, b, y0, K, beta, h, field) > RELU_MARGIN:
            return y0, K, beta, h, W
    raise AssertionError("no seed keeps relu away from its kink")


# --------------------------------------------------------------------------------------------------
# derivatives
# --------------------------------------------------------------------------------------------------


def loss(net, params, W, field, activation):
    """J = sum(W * y_N) through a generated module's forward pass."""
    yN, _ = net.forward(*params, field=field, activation=activation)
    return float(np.sum(W * yN))


def central_gradient(fun, params, step=FD_STEP):
    """Central differences of the scalar ``fun(params)`` with respect to every entry of every
    array in ``params`` (a sequence of float arrays)."""
    params = [np.array(p, dtype=float) for p in params]
    grads = [np.zeros(p.shape) for p in params]
    for P, G in zip(params, grads, strict=True):
        for idx in np.ndindex(*P.shape):
            saved = P[idx]
            P[idx] = saved + step
            up = fun(params)
            P[idx] = saved - step
            down = fun(params)
            P[idx] = saved
            G[idx] = (up - down) / (2 * step)
    return tuple(grads)


def relative_error(got, want):
    """max |got - want| / max |want|, over all arrays of the two sequences together."""
    got = np.concatenate([np.ravel(g) for g in got])
    want = np.concatenate([np.ravel(w) for w in want])
    assert got.shape == want.shape
    return float(np.max(np.abs(got - want)) / np.max(np.abs(want)))


def reference_stages(A, b, y0, K, beta, h, field, activation):
    """The stage values of every layer by the reference forward pass, as an array (N, s, m, d)."""
    ref = _reference()
    _, stages = ref.rk_forward(A, b, y0, K, beta, h, field, activation, return_stages=True)
    return np.array([Y for _, Y in stages])


# --------------------------------------------------------------------------------------------------
# the P form of the adjoint (000 eq. 24, 001 Prop. 1): the partner tableau applied backwards
# --------------------------------------------------------------------------------------------------


def correct_partner(A, b):
    """ã_ij = b_j - b_j a_ji / b_i (conditions (19) with the transposed index)."""
    return b[None, :] - b[None, :] * A.T / b[:, None]


def misprinted_partner(A, b):
    """ã_ij = b_j - b_j a_ij / b_i: (19) as printed in 000 and 001, with the untransposed index."""
    return b[None, :] - b[None, :] * A / b[:, None]


def pform_backward(Atilde, b, stages, K, beta, h, p, field="resnet", activation="tanh"):
    """Gradient (dJ/dy0, dJ/dK, dJ/dbeta, dJ/dh) of a network from its stage values, by the adjoint
    in P form with the partner tableau ``Atilde`` (every b_i != 0: it divides by nothing, but the
    partner itself was built by dividing by b_i).

    Per layer, from p = dJ/dy_(j+1), with w_ik = b_k - ã_ik and J_k = f'(Y_k):

        P_i = p + h sum_k w_ik J_k^T P_k        (one (s d) linear system per sample)
        dJ/dy_j = p + h sum_i b_i J_i^T P_i
        dJ/dh_j = sum_i b_i P_i . F_i
        dJ/dK_j, dJ/dbeta_j = pullback of the cotangents h b_i P_i of F_i

    ``stages`` is (N, s, m, d), e.g. :func:`reference_stages`. The pass itself is rkgen's
    (:func:`rkgen.reference.backward_p_form`); only the partner ``Atilde`` comes from here.
    """
    from rkgen.reference import backward_p_form

    b = np.asarray(b, dtype=float)
    Wt = b[None, :] - np.asarray(Atilde, dtype=float)
    weights = [[(k, float(w)) for k, w in enumerate(row) if w != 0.0] for row in Wt]
    return backward_p_form(b, weights, stages, K, beta, h, p, field, activation)


# --------------------------------------------------------------------------------------------------
# all checks of one module
# --------------------------------------------------------------------------------------------------


def check_module(net, name, field, activation, m, d, seed=0):
    """Measure one (module, field, activation) case on a seeded instance; returns a dict of floats.

    fd:       gradient (backward) vs central differences of the forward pass, relative;
    reverse:  gradient vs the independent hand-written reverse pass (tests/reference.py);
    forward:  y_N vs the reference forward pass, relative to max |y_N|;
    pform:    gradient vs the P-form backward with the partner tableau (None when some b_i = 0);
    failures, iterations: from the tape.
    """
    ref = _reference()
    A, b = tableau_floats(name)
    y0, K, beta, h, W = draw_problem(A, b, m, d, field, activation, seed=seed)
    yN, tape = net.forward(y0, K, beta, h, field=field, activation=activation)
    grad = net.backward(tape, W)
    fd = central_gradient(lambda x: loss(net, x, W, field, activation), (y0, K, beta, h))
    want = ref.rk_forward(A, b, y0, K, beta, h, field, activation)
    rev = ref.hand_reverse_gradient(A, b, y0, K, beta, h, W, field, activation)
    out = {
        "fd": relative_error(grad, fd),
        "reverse": relative_error(grad, rev),
        "forward": float(np.max(np.abs(yN - want)) / np.max(np.abs(want))),
        "pform": None,
        "failures": int(tape.failures),
        "iterations": int(tape.iterations),
        "finite": bool(all(np.all(np.isfinite(g)) for g in grad)),
        "dh_zero_layer": float(grad[3][1]),
        "dK_zero_layer": float(np.max(np.abs(grad[1][1]))),
    }
    if np.all(b != 0):
        stages = reference_stages(A, b, y0, K, beta, h, field, activation)
        pf = pform_backward(correct_partner(A, b), b, stages, K, beta, h, W, field, activation)
        out["pform"] = relative_error(grad, pf)
    return out


def main(argv):
    import numba

    if not numba.config.DISABLE_JIT:
        print("nojit_check: set NUMBA_DISABLE_JIT=1 (this script must not compile)", file=sys.stderr)
        return 2
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from rkgen import builtin_names
    from rkgen.codegen import import_path

    ref = _reference()
    names = argv or builtin_names()
    results = {}
    for name in names:
        net = import_path(GENERATED / f"{name}_net.py")
        for field in ref.FIELDS:
            for activation in ref.ACTIVATIONS:
                key = f"{name}/{field}/{activation}"
                try:
                    results[key] = check_module(net, name, field, activation, NOJIT_M, NOJIT_D)
                except Exception as exc:  # reported, and the test fails on it
                    results[key] = {"error": f"{type(exc).__name__}: {exc}"}
    json.dump({"disable_jit": True, "pid": os.getpid(), "results": results}, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
