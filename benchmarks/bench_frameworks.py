"""rkgen's layers inside PyTorch and JAX against the same network written in each framework, and torchdiffeq.

One training step: y_N of N layers of an autonomous Runge-Kutta network y' = tanh(K y + beta) (one K (d, d) and
beta (d) for all layers, a neural ODE on a fixed grid, step h = T/N), the loss J = sum(y_N * W) for a fixed
random W (m, d), and the gradient of J with respect to K, beta and y0. Run from the repository root:

    flock /tmp/rkgen-bench.lock python benchmarks/bench_frameworks.py [--widths 2 16 64] [--samples 256]
        [--layers 8] [--threads 1 2] [--repeats 7] [--quick]

Implementations, all float64, side by side in one process, at equal thread counts: one table per count in
``--threads``, each measured in its own process whose CPU affinity is that many cores (torch.set_num_threads and
numba.set_num_threads set to it as well; JAX sizes its thread pool by the cores it may use, and XLA_FLAGS do not
limit it, so the affinity is what holds JAX to the same count):

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
  (on the table's cores). rkgen.jax's differentiated calls of an explicit tableau are two XLA custom calls of the
  module's own handlers (rkgen.runtime.xla, where JAX has jax.ffi). ``rkgen.jax callbacks``: the same step through
  host callbacks (buffer_callback), as implicit tableaux run, and ``rkgen.jax pure_cb`` through jax.pure_callback
  (older JAX), to show what the callbacks cost. Per width, the JAX callback overhead is printed as well
  (:func:`callback_overhead`).

The gradient error is max |g - g_exact| / max |g_exact| over K, beta and y0, g_exact the exact gradient of the
discrete network: torch autograd through the explicit stages in float64 (exact differentiation of the discrete
map, to rounding), and for gauss2 autograd through 60 fixed-point sweeps (converged to rounding).

Timings: after a warm-up, ``--repeats`` rounds, each round one sample of every implementation of a width in turn,
each round starting one implementation later (interleaved, so that a change in the machine's speed during the run
reaches all of them alike, and no implementation always follows the same one), a sample being a
loop of back-to-back steps lasting at least 20 ms (one step where a step takes longer): the steady state of a
training loop. Each row gives the median and the minimum over the rounds; each ratio is the median of the ratios
within rounds, with their range. The targets (rkgen's issue 16) are printed last, met or missed: rkgen.torch at
least 3x plain torch for rk4 at widths 2 and 16; gauss2's rkgen.torch at least 3x torch's fixed-point sweeps at
equal accuracy (the fewest sweeps whose gradient error is within 10x rkgen's, or 1e-14); rkgen.jax at least 1.5x
jax at widths 2 and 16. Figures taken on a loaded machine are upper bounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

# A child measuring one thread count runs on the cores its parent names (set here, before numpy, torch or JAX start
# any thread, which then inherit them).
CORES_VARIABLE = "RKGEN_BENCH_CORES"
if os.environ.get(CORES_VARIABLE) and hasattr(os, "sched_setaffinity"):
    os.sched_setaffinity(0, {int(c) for c in os.environ[CORES_VARIABLE].split(",")})

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import torch_first  # noqa: E402, F401  (torch before any generated module)
from baselines import calls_per_sample, sample_times  # noqa: E402

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

    FFI = rj.USE_FFI
    out = {}
    # (name, function, (FFI, buffer callback) while traced: None for the plain network)
    variants = [("rkgen.jax", ours, (rj.USE_FFI, rj.USE_BUFFER_CALLBACK)), ("jax", plain, None)]
    if rj.USE_FFI:
        variants.insert(1, ("rkgen.jax callbacks", ours, (False, rj.USE_BUFFER_CALLBACK)))
    if rj.USE_BUFFER_CALLBACK:
        variants.insert(1, ("rkgen.jax pure_cb", ours, (False, False)))
    for name, fn, paths in variants:
        g = jax.jit(jax.grad(lambda K, beta, y0, fn=fn: jnp.sum(fn(K, beta, y0, arrays["h"]) * arrays["W"]),
                             argnums=(0, 1, 2)))

        def step(g=g, paths=paths):
            if paths is not None:  # read when traced: the first call of each variant
                rj.USE_FFI, rj.USE_BUFFER_CALLBACK = paths
            try:
                grads = jax.block_until_ready(g(arrays["K"], arrays["beta"], arrays["y0"]))
            finally:
                rj.USE_FFI, rj.USE_BUFFER_CALLBACK = FFI, rj._buffer_callback is not None
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


TARGETS = (  # (what, peer, ours, method, widths, at least): issue 16's targets
    ("rk4: rkgen.torch vs plain torch", "torch", "rkgen.torch", "rk4", (2, 16), 3.0),
    ("gauss2: rkgen.torch vs torch's sweeps at equal accuracy", None, "rkgen.torch", "gauss2", None, 3.0),
    ("rk4: rkgen.jax vs jax.jit", "jax", "rkgen.jax", "rk4", (2, 16), 1.5),
)
PAIRS = (  # (method, peer, ours): the ratios printed per width
    ("rk4", "torch", "rkgen.torch"), ("rk38", "torchdiffeq rk4", "rkgen.torch"), ("rk4", "jax", "rkgen.jax"),
    ("rk4", "jax", "rkgen.jax callbacks"), ("rk4", "jax", "rkgen.jax pure_cb"), ("rk4", "rkgen.torch", "kernels"),
    ("rk4", "rkgen.jax", "kernels"),
)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--widths", type=int, nargs="+", default=[2, 16, 64])
    p.add_argument("--samples", type=int, default=256)
    p.add_argument("--layers", type=int, default=8)
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2],
                   help="thread counts, each a table measured in a process pinned to that many cores")
    p.add_argument("--repeats", type=int, default=7, help="interleaved rounds")
    p.add_argument("--iters", type=int, nargs="+", default=[3, 6, 12], help="fixed-point sweeps of torch's gauss2")
    p.add_argument("--no-jax", action="store_true")
    p.add_argument("--quick", action="store_true", help="widths 2 and 16, 3 rounds")
    p.add_argument("--pinned", action="store_true", help=argparse.SUPPRESS)  # a child: this process is the table
    args = p.parse_args(argv)
    if args.quick:
        args.widths, args.repeats = [2, 16], 3
    if min(args.threads) < 1:
        p.error("--threads takes counts of at least 1")
    pinnable = hasattr(os, "sched_getaffinity")
    cores = sorted(os.sched_getaffinity(0)) if pinnable else list(range(os.cpu_count() or 1))
    if not args.pinned:
        from bench_builds import cpu_model

        print(f"CPU: {cpu_model()}; {os.cpu_count()} logical cores", flush=True)
        if not pinnable:
            print("(this system cannot pin a process to cores: JAX uses its own thread count in every table)")
        verdicts = []
        for threads in args.threads:
            if threads > len(cores):
                print(f"== {threads} threads: this process may use {len(cores)} cores; skipped\n")
                continue
            verdicts += _child(argv, threads, cores[:threads])
        met = sum(v.startswith("  met") for v in verdicts)
        if not verdicts:
            print("targets: none assessed (no target width among --widths, or every thread count skipped)")
        else:
            print(f"targets: {met} of {len(verdicts)} met" + ("" if met == len(verdicts) else "; missed:"))
        for v in verdicts:
            if not v.startswith("  met"):
                print(v)
        return 0
    (threads,) = args.threads

    import numba
    import torch

    from rkgen.layers import Spec, network

    try:
        from torchdiffeq import odeint
    except ImportError:
        odeint = None
    torch.set_default_dtype(torch.float64)
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    print(f"torch {torch.__version__}, numba {numba.__version__}", end="")
    if odeint is not None:
        from importlib.metadata import version

        print(f", torchdiffeq {version('torchdiffeq')}", end="")
    print(f"; m = {args.samples} samples, N = {args.layers} layers, h = 1/{args.layers}, float64")
    nets = {name: network(name) for name in ("rk4", "rk38", "gauss2")}
    print(f"rkgen's products from {nets['rk4'].LARGE_PRODUCT} multiply-adds: {nets['rk4'].BLAS_LIBRARY} (torch is "
          "imported first); smaller ones: scipy's OpenBLAS")
    before = load()
    where = cores if pinnable else "all cores"
    print(f"== {threads} thread(s) on cores {where} (torch, numba and JAX); load average before: "
          f"{before[0]:.2f} {before[1]:.2f} {before[2]:.2f}")
    rows = run(args, nets, torch, odeint, Spec)
    after = load()
    print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")
    report(args, rows, threads)
    print()
    return 0


def _child(argv, threads, cores):
    """Run one thread count's table in a child process pinned to ``cores``, echoing its output as it comes; returns
    its verdict lines."""
    rest = _without_threads(sys.argv[1:] if argv is None else list(argv))
    env = dict(os.environ, **{CORES_VARIABLE: ",".join(map(str, cores))})
    command = [sys.executable, str(Path(__file__).resolve()), *rest, "--threads", str(threads), "--pinned"]
    verdicts = []
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, text=True) as child:
        for line in child.stdout:
            print(line, end="", flush=True)
            if line.startswith(("  met", "  MISSED")):
                verdicts.append(line.rstrip("\n"))
    if child.returncode != 0:
        raise SystemExit(f"the {threads}-thread table failed (exit status {child.returncode})")
    return verdicts


def _without_threads(argv):
    """argv without its --threads option and values."""
    out, skip = [], False
    for a in argv:
        if a == "--threads":
            skip = True
            continue
        if skip and not a.startswith("-"):
            continue
        skip = False
        out.append(a)
    return out


def run(args, nets, torch, odeint, Spec):
    """{(d, method, implementation): (seconds per step in each round, gradient error)}, the implementations of a
    width measured in interleaved rounds."""
    rows = {}
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
        errors = [rel_error(step(), ref) for _, _, step, ref in cases]  # also the warm-up
        calls = [calls_per_sample(step) for _, _, step, _ in cases]
        times = [[] for _ in cases]
        for r in range(args.repeats):  # each round starts one case later: no case always follows the same one
            for k in range(len(cases)):
                c = (k + r) % len(cases)
                times[c] += sample_times(cases[c][2], 1, calls=calls[c])
        for (method, impl, _, _), t, err in zip(cases, times, errors, strict=True):
            rows[d, method, impl] = t, err
            print(f"d={d:<3} {method:<7} {impl:<18} {1e3 * statistics.median(t):10.3f} ms (min {1e3 * min(t):9.3f})"
                  f"   gradient error {err:.1e}", flush=True)
        print()
    return rows


def _ratio(rows, peer, ours):
    """(median, min, max) over the rounds of the peer's time over ours."""
    r = [a / b for a, b in zip(rows[peer][0], rows[ours][0], strict=True)]
    return statistics.median(r), min(r), max(r)


def _shown(r):
    """A ratio as the report prints it: the median, the range over the rounds in brackets."""
    return f"{r[0]:.2f} [{r[1]:.2f}-{r[2]:.2f}]"


def _equal_accuracy(rows, d, iters):
    """The fewest torch sweeps of gauss2 whose gradient error is within 10x rkgen's (or 1e-14), or None."""
    ours = rows[d, "gauss2", "rkgen.torch"][1]
    for k in sorted(iters):
        key = (d, "gauss2", f"torch {k} sweeps")
        if key in rows and rows[key][1] <= max(10 * ours, 1e-14):
            return key
    return None


def report(args, rows, threads):
    print("ratios per width (time of the peer / time of rkgen's layer in the same framework; median of the rounds' "
          "ratios, their range in brackets):")
    for d in args.widths:
        parts = []
        for method, peer, ours in PAIRS:
            if (d, method, peer) in rows and (d, method, ours) in rows:
                parts.append(f"{peer}/{ours} ({method}) {_shown(_ratio(rows, (d, method, peer), (d, method, ours)))}")
        for k in args.iters:
            key = (d, "gauss2", f"torch {k} sweeps")
            if key in rows:
                r = _ratio(rows, key, (d, "gauss2", "rkgen.torch"))
                parts.append(f"torch {k} sweeps/rkgen.torch (gauss2) {_shown(r)}")
        print(f"d={d}: " + "; ".join(parts))
    print(f"targets, {threads} thread(s):")
    for what, peer, ours, method, widths, least in TARGETS:
        for d in args.widths if widths is None else [w for w in widths if w in args.widths]:
            key = _equal_accuracy(rows, d, args.iters) if peer is None else (d, method, peer)
            if key is None and (d, method, ours) in rows:
                print(f"  MISSED {what}, d = {d}, {threads} thread(s): not assessed, no sweep count in --iters "
                      f"reaches rkgen's accuracy")
                continue
            if key not in rows or (d, method, ours) not in rows:
                continue
            r = _ratio(rows, key, (d, method, ours))
            name = key[2]
            verdict = "met" if r[0] >= least else "MISSED"
            print(f"  {verdict:<6} {what}, d = {d}, {threads} thread(s): {name}/{ours} {_shown(r)}, target >= {least}")


if __name__ == "__main__":
    child = "--pinned" in sys.argv
    if not child:
        subprocess.run(["uptime"], check=False)
    code = main()
    if not child:
        subprocess.run(["uptime"], check=False)
    sys.exit(code)
