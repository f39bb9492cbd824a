"""rkgen's layers inside PyTorch and JAX against the same network written in each framework, and torchdiffeq.

One training step: y_N of N layers of an autonomous Runge-Kutta network y' = tanh(K y + beta) (one K (d, d) and
beta (d) for all layers, a neural ODE on a fixed grid, step h = T/N), the loss J = sum(y_N * W) for a fixed
random W (m, d), and the gradient of J with respect to K, beta and y0. Run from the repository root:

    flock /tmp/rkgen-bench.lock python benchmarks/bench_frameworks.py [--widths 2 16 64] [--samples 256]
        [--layers 8] [--threads 1 2] [--repeats 5] [--quick]

Implementations, all float64, side by side in one process, at equal thread counts (torch.set_num_threads and
numba.set_num_threads both, one table per count in ``--threads``):

- ``rkgen.torch``: rkgen.torch.rk_block (the generated module's forward and exact adjoint, through a
  torch.autograd.Function); K is expanded to the shared layout's (N, d, d), whose gradient torch sums.
- ``kernels``: the generated module called directly (forward + backward through the numpy contract): the
  difference to ``rkgen.torch`` is the wrapper's overhead.
- ``torch``: the same stages written in torch, autograd through them. Implicit tableaux: the stage equations by
  fixed-point iteration, ``iters`` sweeps from F_i = f(y), autograd through the sweeps (the gradient is exact
  only as far as the iteration has converged).
- ``torchdiffeq``: torchdiffeq.odeint(method="rk4", fixed grid). Its rk4 is the 3/8 rule (rkgen's rk38): its
  gradient error is measured against rk38's exact gradient. The released torchdiffeq (0.2.5) has no implicit
  fixed-grid method (its GitHub master has Gauss-Legendre solvers, unreleased), so gauss2 has no torchdiffeq peer.
- ``rkgen.jax`` and ``jax``: rkgen.jax.rk_block and the same stages in jax.numpy, each one jax.jit step
  (JAX's own threads; XLA_FLAGS before start-up changes them). ``rkgen.jax pure_cb``: rkgen.jax through
  jax.pure_callback instead of buffer_callback (where JAX has buffer_callback), to show what the callback costs.
  Per width, the JAX callback overhead is printed as well (:func:`callback_overhead`).

The gradient error is max |g - g_exact| / max |g_exact| over K, beta and y0, g_exact the exact gradient of the
discrete network: torch autograd through the explicit stages in float64 (exact differentiation of the discrete
map, to rounding), and for gauss2 autograd through 60 fixed-point sweeps (converged to rounding). Timings are the
median over ``--repeats`` samples after a warm-up, each sample a loop of back-to-back steps lasting at least 20 ms
(one step per sample where a step takes longer): the steady state of a training loop; figures taken on a loaded
machine are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch_first  # noqa: E402, F401  (torch before any generated module)
from baselines import sample_times  # noqa: E402

TABLEAUX = {
    "rk4": ([[0, 0, 0, 0], [0.5, 0, 0, 0], [0, 0.5, 0, 0], [0, 0, 1, 0]], [1 / 6, 1 / 3, 1 / 3, 1 / 6]),
    "rk38": ([[0, 0, 0, 0], [1 / 3, 0, 0, 0], [-1 / 3, 1, 0, 0], [1, -1, 1, 0]], [1 / 8, 3 / 8, 3 / 8, 1 / 8]),
    "gauss2": (
        [[1 / 4, 1 / 4 - 3**0.5 / 6], [1 / 4 + 3**0.5 / 6, 1 / 4]],
        [0.5, 0.5],
    ),
}


def load():
    return os.getloadavg()


def median_ms(fn, repeats):
    """(median, min) in ms of one call of fn() over ``repeats`` samples of back-to-back calls lasting at least
    baselines.MIN_SAMPLE (baselines.sample_times: steady state, as a training loop runs), after a warm-up call."""
    fn()
    times = sample_times(fn, repeats)
    return 1e3 * statistics.median(times), 1e3 * min(times)


def problem(d, m, N, seed=0):
    rng = np.random.default_rng(seed)
    a = 1.0 / np.sqrt(d)
    return {
        "y0": rng.uniform(-1, 1, (m, d)),
        "K": rng.uniform(-a, a, (d, d)),
        "beta": rng.uniform(-a, a, d),
        "W": rng.normal(size=(m, d)),
        "h": np.full(N, 1.0 / N),
    }


def rel_error(g, ref):
    scale = max(np.abs(r).max() for r in ref)
    return max(np.abs(np.asarray(x) - r).max() for x, r in zip(g, ref, strict=True)) / scale


# -- torch ---------------------------------------------------------------------------------------------------------


def torch_stages(torch, A, b, iters=None):
    """y_N of the explicit stages (iters None) or of `iters` fixed-point sweeps of implicit ones, in torch."""
    s = len(b)

    def run(y, K, beta, h):
        def f(z):
            return torch.tanh(z @ K.T + beta)

        for hj in h:
            if iters is None:
                F = []
                for i in range(s):
                    Y = y
                    for j in range(i):
                        if A[i][j]:
                            Y = Y + hj * A[i][j] * F[j]
                    F.append(f(Y))
            else:
                F = [f(y)] * s
                for _ in range(iters):
                    F = [f(y + hj * sum(A[i][j] * F[j] for j in range(s))) for i in range(s)]
            y = y + hj * sum(b[i] * F[i] for i in range(s))
        return y

    return run


def torch_step(torch, run, P):
    y0 = torch.tensor(P["y0"], requires_grad=True)
    K = torch.tensor(P["K"], requires_grad=True)
    beta = torch.tensor(P["beta"], requires_grad=True)
    W, h = torch.tensor(P["W"]), [float(x) for x in P["h"]]

    def step():
        for t in (y0, K, beta):
            t.grad = None
        (run(y0, K, beta, h) * W).sum().backward()
        return K.grad.numpy(), beta.grad.numpy(), y0.grad.numpy()

    return step


def rkgen_torch_step(torch, spec, P):
    from rkgen.torch import rk_block

    N = len(P["h"])
    y0 = torch.tensor(P["y0"], requires_grad=True)
    K = torch.tensor(P["K"], requires_grad=True)
    beta = torch.tensor(P["beta"], requires_grad=True)
    W, h = torch.tensor(P["W"]), torch.tensor(P["h"])

    def step():
        for t in (y0, K, beta):
            t.grad = None
        d = K.shape[0]
        yN = rk_block(spec, y0, K.expand(N, d, d), beta.expand(N, d), h)
        (yN * W).sum().backward()
        return K.grad.numpy(), beta.grad.numpy(), y0.grad.numpy()

    return step


def kernels_step(net, P):
    N, (d, _) = len(P["h"]), P["K"].shape
    K, beta = np.ascontiguousarray(np.broadcast_to(P["K"], (N, d, d))), np.ascontiguousarray(
        np.broadcast_to(P["beta"], (N, d))
    )

    def step():
        _, tape = net.forward(P["y0"], K, beta, P["h"])
        dy0, dK, db, _ = net.backward(tape, P["W"])
        return dK.sum(axis=0), db.sum(axis=0), dy0

    return step


def torchdiffeq_step(torch, odeint, P):
    y0 = torch.tensor(P["y0"], requires_grad=True)
    K = torch.tensor(P["K"], requires_grad=True)
    beta = torch.tensor(P["beta"], requires_grad=True)
    W = torch.tensor(P["W"])
    N = len(P["h"])
    t = torch.linspace(0.0, float(np.sum(P["h"])), N + 1, dtype=torch.float64)

    def func(_, y):
        return torch.tanh(y @ K.T + beta)

    def step():
        for x in (y0, K, beta):
            x.grad = None
        yN = odeint(func, y0, t, method="rk4")[-1]
        (yN * W).sum().backward()
        return K.grad.numpy(), beta.grad.numpy(), y0.grad.numpy()

    return step


# -- jax -----------------------------------------------------------------------------------------------------------


def jax_steps(spec, P, A, b):
    import jax
    import jax.numpy as jnp

    from rkgen.jax import rk_block

    jax.config.update("jax_enable_x64", True)
    N = len(P["h"])
    s = len(b)
    arrays = {k: jnp.asarray(v) for k, v in P.items()}

    def plain(K, beta, y0, h):
        y = y0
        for j in range(N):
            F = []
            for i in range(s):
                Y = y
                for q in range(i):
                    if A[i][q]:
                        Y = Y + h[j] * A[i][q] * F[q]
                F.append(jnp.tanh(Y @ K.T + beta))
            y = y + h[j] * sum(b[i] * F[i] for i in range(s))
        return y

    def ours(K, beta, y0, h):
        d = K.shape[0]
        return rk_block(spec, y0, jnp.broadcast_to(K, (N, d, d)), jnp.broadcast_to(beta, (N, d)), h)

    import rkgen.jax as rj

    out = {}
    variants = [("rkgen.jax", ours, rj.USE_BUFFER_CALLBACK), ("jax", plain, None)]
    if rj.USE_BUFFER_CALLBACK:
        variants.insert(1, ("rkgen.jax pure_cb", ours, False))
    for name, fn, buffer in variants:
        g = jax.jit(jax.grad(lambda K, beta, y0, fn=fn: jnp.sum(fn(K, beta, y0, arrays["h"]) * arrays["W"]),
                             argnums=(0, 1, 2)))

        def step(g=g, buffer=buffer):
            if buffer is not None:  # read when traced: the first call of each variant
                rj.USE_BUFFER_CALLBACK = buffer
            try:
                grads = jax.block_until_ready(g(arrays["K"], arrays["beta"], arrays["y0"]))
            finally:
                rj.USE_BUFFER_CALLBACK = rj._buffer_callback is not None
            return tuple(np.asarray(x) for x in grads)

        out[name] = step
    return out


def callback_overhead(spec, P, repeats):
    """Where a JAX step's time goes besides the kernels, in microseconds (median of ``repeats`` x 20 calls):
    jit of a trivial function of the block's five arguments; the same with an empty jax.pure_callback, and with
    an empty buffer_callback, in between (their round trip: the difference); rkgen.jax's host callbacks called
    directly on numpy arrays (taped forward + backward: the Python work that is rkgen's), against the kernels
    alone (forward + backward through the module's contract); and the numba threads the callback thread sees."""
    import jax
    import jax.numpy as jnp
    import numba

    import rkgen.jax as rj

    m, d = P["y0"].shape
    N = len(P["h"])
    Kx = np.ascontiguousarray(np.broadcast_to(P["K"], (N, d, d)))
    bx = np.ascontiguousarray(np.broadcast_to(P["beta"], (N, d)))
    args = tuple(jnp.asarray(a) for a in (P["y0"], Kx, bx, P["h"], P["W"]))
    sd = jax.ShapeDtypeStruct((m, d), jnp.float64)
    seen = {}

    def host(y0, K, beta, h, W):
        seen["threads"] = numba.get_num_threads()
        return np.asarray(y0)

    def host_buffer(ctx, out, y0, K, beta, h, W):
        np.asarray(out)[...] = np.asarray(y0)

    fns = {"jit, no callback": jax.jit(lambda *a: a[0] * 2.0 + a[4]),
           "jit + empty pure_callback": jax.jit(lambda *a: jax.pure_callback(host, sd, *a) * 2.0 + a[4])}
    if rj._buffer_callback is not None:
        empty = rj._buffer_callback(host_buffer, sd)
        fns["jit + empty buffer_callback"] = jax.jit(lambda *a: empty(*a) * 2.0 + a[4])
    times = {}
    for name, f in fns.items():
        times[name] = 1e3 * median_ms(lambda f=f: [jax.block_until_ready(f(*args)) for _ in range(20)],
                                      repeats)[0] / 20
    h = rj._host(spec)
    y0, W = P["y0"], P["W"]

    def direct():
        for _ in range(20):
            _, token = h.taped(y0, Kx, bx, P["h"])
            h.backward(token, y0, Kx, bx, P["h"], W)

    def kernels():
        for _ in range(20):
            _, tape = spec.net.forward(y0, Kx, bx, P["h"])
            spec.net.backward(tape, W)

    times["rkgen.jax host callbacks, called directly"] = 1e3 * median_ms(direct, repeats)[0] / 20
    times["kernels alone (forward + backward)"] = 1e3 * median_ms(kernels, repeats)[0] / 20
    return times, seen.get("threads")


# -- the run -------------------------------------------------------------------------------------------------------


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[2, 16, 64])
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts, each a table")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--iters", type=int, nargs="+", default=[3, 6, 12], help="fixed-point sweeps of torch's gauss2")
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--quick", action="store_true", help="widths 2 and 16, 3 repeats")
    args = p.parse_args(argv)
    if args.quick:
        args.widths, args.repeats = [2, 16], 3

    import numba
    import torch
    from bench_builds import cpu_model

    from rkgen.layers import Spec, network

    try:
        from torchdiffeq import odeint
    except ImportError:
        odeint = None
    torch.set_default_dtype(torch.float64)
    print(f"CPU: {cpu_model()}; {os.cpu_count()} logical cores")
    print(f"torch {torch.__version__}, numba {numba.__version__}", end="")
    if odeint is not None:
        from importlib.metadata import version

        print(f", torchdiffeq {version('torchdiffeq')}", end="")
    print(f"; m = {args.samples} samples, N = {args.layers} layers, h = 1/{args.layers}, float64\n")
    nets = {name: network(name) for name in ("rk4", "rk38", "gauss2")}
    for threads in args.threads:
        torch.set_num_threads(threads)
        numba.set_num_threads(threads)
        before = load()
        print(f"== {threads} thread(s), torch and numba; load average before: {before[0]:.2f} {before[1]:.2f} "
              f"{before[2]:.2f}")
        rows = run(args, nets, torch, odeint, Spec)
        after = load()
        print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
        ratios(args, rows)
        print()
    return 0


def run(args, nets, torch, odeint, Spec):
    rows = []
    for d in args.widths:
        P = problem(d, args.samples, args.layers)
        specs = {k: Spec(v, d, args.layers) for k, v in nets.items()}
        # explicit: rk4 (and rk38, torchdiffeq's rk4)
        A, b = TABLEAUX["rk4"]
        exact = torch_step(torch, torch_stages(torch, A, b), P)()
        A38, b38 = TABLEAUX["rk38"]
        exact38 = torch_step(torch, torch_stages(torch, A38, b38), P)()
        cases = [
            ("rk4", "rkgen.torch", rkgen_torch_step(torch, specs["rk4"], P), exact),
            ("rk4", "kernels", kernels_step(nets["rk4"], P), exact),
            ("rk4", "torch", torch_step(torch, torch_stages(torch, A, b), P), exact),
            ("rk38", "rkgen.torch", rkgen_torch_step(torch, specs["rk38"], P), exact38),
        ]
        if odeint is not None:
            cases.append(("rk38", "torchdiffeq rk4", torchdiffeq_step(torch, odeint, P), exact38))
        if not args.no_jax:
            for name, step in jax_steps(specs["rk4"], P, A, b).items():
                cases.append(("rk4", name, step, exact))
            times, threads = callback_overhead(specs["rk4"], P, args.repeats)
            print(f"d={d:<3} JAX callback overhead, us per call (numba threads in the callback thread: {threads}):")
            for name, us in times.items():
                print(f"      {name:<45} {us:9.1f}")
        # fully implicit: gauss2
        Ag, bg = TABLEAUX["gauss2"]
        exactg = torch_step(torch, torch_stages(torch, Ag, bg, iters=60), P)()
        cases.append(("gauss2", "rkgen.torch", rkgen_torch_step(torch, specs["gauss2"], P), exactg))
        cases.append(("gauss2", "kernels", kernels_step(nets["gauss2"], P), exactg))
        for k in args.iters:
            cases.append(("gauss2", f"torch {k} sweeps", torch_step(torch, torch_stages(torch, Ag, bg, iters=k), P),
                          exactg))
        for method, impl, step, ref in cases:
            err = rel_error(step(), ref)
            med, best = median_ms(step, args.repeats)
            rows.append((d, method, impl, med, best, err))
            print(f"d={d:<3} {method:<7} {impl:<18} {med:10.3f} ms (min {best:9.3f})   gradient error {err:.1e}",
                  flush=True)
        print()
    return rows


def ratios(args, rows):
    print("ratios per width (time of the peer / time of rkgen's layer in the same framework):")
    by = {(d, m, i): t for d, m, i, t, _, _ in rows}
    for d in args.widths:
        parts = []
        for method, peer, ours in (("rk4", "torch", "rkgen.torch"), ("rk38", "torchdiffeq rk4", "rkgen.torch"),
                                   ("rk4", "jax", "rkgen.jax"), ("rk4", "jax", "rkgen.jax pure_cb"),
                                   ("rk4", "rkgen.torch", "kernels"),
                                   ("rk4", "rkgen.jax", "kernels")):
            if (d, method, peer) in by and (d, method, ours) in by:
                parts.append(f"{peer}/{ours} ({method}) {by[d, method, peer] / by[d, method, ours]:.2f}")
        for k in args.iters:
            key = (d, "gauss2", f"torch {k} sweeps")
            if key in by:
                parts.append(f"torch {k} sweeps/rkgen.torch (gauss2) {by[key] / by[d, 'gauss2', 'rkgen.torch']:.2f}")
        print(f"d={d}: " + "; ".join(parts))


if __name__ == "__main__":
    subprocess.run(["uptime"], check=False)
    code = main()
    subprocess.run(["uptime"], check=False)
    sys.exit(code)
