"""One gradient (forward + loss + backward) of rkgen's generated networks against PyTorch, JAX and numpy.

Run from the repository root:

    python benchmarks/bench_network.py [--configs A-rk4 B ...] [--params shared stage continuous]
                                       [--rounds 5] [--repeats 7] [--no-compile]
    python benchmarks/bench_network.py --quick      # A-rk4 and B in every layout, 3 rounds, no compile times
    python benchmarks/bench_network.py --dtype float32 [--configs D E]   # float32 side by side (explicit, shared)

All implementations run side by side in one process on the same problem, in float64, and their gradients are
checked against each other before timing.  Parameter layouts (``forward(..., params=...)``): every config in the
shared layout, and A-rk4 and B also per stage (K (N, s, d, d)) and continuous (nodal K (N+1, d, d) at the layer
boundaries, interpolated at the stage times); torch and JAX build the stage sets themselves (continuous:
interpolated in torch / jnp, autodiff takes the gradient back to the nodes), numpy by its hand-written backward.

Threads: rkgen (numba), torch and numpy are timed at equal thread counts, numba's count and 1 (``rkgen(2t)``
against ``torch(2t)`` and ``numpy(2t)``, ``rkgen(1t)`` against ``torch(1t)`` and ``numpy(1t)``; numpy's BLAS is
limited to the count with threadpoolctl); JAX runs with its own default (set ``XLA_FLAGS`` before starting Python
to change it) and is compared with rkgen at numba's count.  The targets (``TARGETS``) are met or missed at equal
thread counts; a missed target is reported, not an error (the exit status is non-zero only when gradients
disagree).

Lower bound: for every config the run measures this machine's DGEMM rate (numpy's, at each thread count, on the
config's product shapes, m x d times d x d and d x d times d x m; beside it the bound at torch's rate, MKL, which
rkgen's large products call where the process has it, as here, where torch is imported first: the header names the
library) and the cost of rkgen's vector tanh (its own
kernel, one thread), and prints the time below which no implementation of the same arithmetic can go: the flops
of the stage products (6 d^2 m per stage and layer: K Y forward, K^T G and G Y^T backward) at the DGEMM rate,
plus s N m d activations at the tanh cost divided by the threads; and rkgen's distance to it (``BOUND_TARGETS``).
Beside it, not part of it: the time to write rkgen's tape ((s + 1) N m d values for RK4's resnet field, which keeps
of the stage values only each layer's input; 2 s N m d otherwise) and read it back at the measured memory copy
rate, and rkgen's distance to the sum.

float32 (``--dtype float32``, default configs D and E): the same problems rounded to float32; rkgen (a float32
y0 runs the module in float32), torch float32 and numpy float32 (the same hand-written backward as numpy_grad, kept in
float32) side by side at equal thread counts, explicit tableaux in the shared layout. Their gradients are checked
against numpy's float64 gradient of the rounded problem (``AGREE32``). The bounds use numpy's and torch's SGEMM
rates and rkgen's tanh cost on float32 arrays; the targets are ``TARGETS32``.

Every implementation and layout of a config is timed once per round (the median of ``--repeats`` samples, each a
loop of back-to-back calls lasting at least 20 ms: baselines.time_it), in alternating order over the rounds; the
table gives the median over the rounds with its range, and the ratios other/rkgen and layout/shared computed
within each round (median and range), which is what a shared, noisy machine lets one compare. Also measured: the
cold numba compile of a generated module (in a fresh process with an empty cache folder) and the first call in a
new process with a warm cache.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import baselines  # noqa: E402
import numba  # noqa: E402
import numpy as np  # noqa: E402
import torch_first  # noqa: E402, F401  (torch before any generated module)
from bench_builds import cpu_model  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from rkgen.codegen import import_path  # noqa: E402

TARGETS = {  # config: (competitor, minimum speed-up over it of rkgen), shared layout; torch and numpy at every
    # thread count against rkgen at the same count, JAX (its own threads) against rkgen at numba's count
    "A-rk4": [("torch", 5.0), ("jax", 1.5)],
    "A-midpoint": [("torch", 5.0)],
    "B": [("torch", 40.0)],
    "C": [("torch", 1.2)],
    "D": [("torch", 1.5), ("numpy", 1.5)],
    "E": [("torch", 1.2)],
    "gauss2-wide": [("torch", 1.0)],  # torch: the fixed-point iteration unrolled (baselines.UNROLLED)
}
BOUND_TARGETS = {"D": 1.5, "E": 1.5}  # config: rkgen's time at most this multiple of the lower bound
VARIANTS = ("A-rk4", "B")  # configs timed in every parameter layout by default
AGREE = 1e-10  # largest relative gradient difference accepted between implementations
TARGETS32 = {"D": [("torch", 1.5)], "E": [("torch", 1.5)]}  # --dtype float32, at equal thread counts
# float32 gradients against the float64 one of the same rounded problem: C sqrt(n) u with n = 2 N s (d + 4) + m
# roundings on the longest chain (tests/test_float32.py) is 3e-5 at D; 1e-4 leaves room for the classifier's sums
AGREE32 = 1e-4


def with_numba_threads(fn, n):
    def call(problem):
        threads = numba.get_num_threads()
        numba.set_num_threads(n)
        try:
            return fn(problem)
        finally:
            numba.set_num_threads(threads)

    return call


def with_torch_threads(fn, n):
    import torch

    def call(problem):
        threads = torch.get_num_threads()
        torch.set_num_threads(n)
        try:
            return fn(problem)
        finally:
            torch.set_num_threads(threads)

    return call


def with_blas_threads(fn, n):
    def call(problem):
        with threadpool_limits(limits=n, user_api="blas"):
            return fn(problem)

    return call


def implementations(tableau: str, threads: list[int], peers: set[str]) -> dict:
    """name -> grad(problem): rkgen, torch and numpy at each thread count, JAX at its default."""
    rkgen = baselines.contract_grad(import_path(ROOT / "generated" / f"{tableau}_net.py"))  # imported once
    impls = {f"rkgen({n}t)": with_numba_threads(rkgen, n) for n in threads}
    if "torch" in peers:
        impls.update({f"torch({n}t)": with_torch_threads(baselines.torch_grad, n) for n in threads})
    impls.update({f"numpy({n}t)": with_blas_threads(baselines.numpy_grad, n) for n in threads})
    if "jax" in peers:
        impls["jax"] = baselines.jax_grad
    return impls


def reference_of(name: str, threads: list[int]) -> str:
    """The rkgen timing a peer is compared with: equal threads where the peer's count is set, else numba's count."""
    if name.endswith("t)"):
        return "rkgen(" + name.split("(", 1)[1]
    return f"rkgen({threads[0]}t)"


def span(values, scale=1.0, digits=2) -> str:
    """median (min-max) of values * scale."""
    return f"{statistics.median(values) * scale:.{digits}f} ({min(values) * scale:.{digits}f}-" \
           f"{max(values) * scale:.{digits}f})"


def run_config(config, layouts, threads, peers, rounds, repeats):
    """Gradients checked, then the timings: {(layout, impl): [seconds per round]} and, per layout, the worst
    relative difference from the reference gradient (numpy, or torch where numpy lacks the layout) and its name."""
    problems = {params: baselines.make_problem(config, 0, params=params) for params in layouts}
    impls = implementations(problems[layouts[0]]["tableau"], threads, peers)
    agree, keys = {}, []
    for params, problem in problems.items():
        grads = {}
        for name, fn in impls.items():
            try:
                grads[name] = fn(problem)
            except ValueError as exc:  # a baseline without this layout (numpy: implicit tableaux)
                if name.startswith("rkgen"):
                    raise
                print(f"{config} {params}: {name} skipped: {exc}")
        ref = next(name for name in (f"numpy({threads[-1]}t)", f"torch({threads[-1]}t)", f"rkgen({threads[-1]}t)")
                   if name in grads)
        agree[params] = max(baselines.relative_difference(g, grads[ref]) for g in grads.values()), ref
        keys += [(params, name) for name in grads]
    times = {key: [] for key in keys}
    for r in range(rounds):
        for params, name in keys if r % 2 == 0 else reversed(keys):
            fn, problem = impls[name], problems[params]
            times[params, name].append(baselines.time_it(lambda f=fn, p=problem: f(p), repeats))
    return times, agree


def report_config(config, times, agree, threads):
    layouts = list(dict.fromkeys(params for params, _ in times))
    names = list(dict.fromkeys(name for _, name in times))
    print(f"{'config':7s} {'layout':10s} {'impl':10s} {'ms per gradient':>22s}  {'other/rkgen, same threads':>26s}"
          f"  {'layout/shared':>20s}")
    for params in layouts:
        for name in names:
            if (params, name) not in times:
                continue
            t = times[params, name]
            vs_rkgen = vs_shared = ""
            if not name.startswith("rkgen"):
                ref = times[params, reference_of(name, threads)]
                vs_rkgen = span([a / b for a, b in zip(t, ref, strict=True)], digits=1)
            if params != "shared" and ("shared", name) in times:
                vs_shared = span([a / b for a, b in zip(t, times["shared", name], strict=True)])
            print(f"{config:7s} {params:10s} {name:10s} {span(t, 1e3):>22s}  {vs_rkgen:>26s}  {vs_shared:>20s}")
        worst, ref = agree[params]
        print(f"{config:7s} {params:10s} gradients of all agree with {ref} to {worst:.0e}")


def gemm_rate(m, d, threads, dtype=np.float64, repeats=9):
    """{library: flop/s}: the GEMM rates this machine gives the stage products of m samples, (m x d)(d x d) and
    (d x d)(d x m), at this thread count, of numpy's BLAS (OpenBLAS: the issue's measure, on which the bound's
    target is judged) and, where torch is imported, of torch's (MKL on x86, which rkgen's large products call where
    the process has it, as here: rkgen.runtime.blas); each the better shape, best of the repeats (a shared machine
    only ever slows a run down)."""
    rng = np.random.default_rng(0)
    calls = max(1, int(1e8 // (2 * m * d * d)))  # about 0.1 GFLOP a timing
    shapes = (((m, d), (d, d)), ((d, d), (d, m)))
    pairs = [(rng.normal(size=a).astype(dtype), rng.normal(size=b).astype(dtype)) for a, b in shapes]
    torch = sys.modules.get("torch")
    best = {}
    with threadpool_limits(limits=threads, user_api="blas"):
        best["numpy"] = _product_time(pairs, np.matmul, calls, repeats)
    if torch is not None:
        saved = torch.get_num_threads()
        torch.set_num_threads(threads)
        try:
            best["torch"] = _product_time([tuple(map(torch.from_numpy, p)) for p in pairs], torch.matmul, calls,
                                          repeats)
        finally:
            torch.set_num_threads(saved)
    return {library: 2.0 * m * d * d / t for library, t in best.items()}


def _product_time(pairs, matmul, calls, repeats):
    """Seconds of the fastest product matmul(A, B, out=...) of the pairs (numpy's or torch's matmul)."""
    return min(_best_time(functools.partial(matmul, A, B, out=matmul(A, B)), calls, repeats) for A, B in pairs)


def _best_time(fn, calls, repeats):
    fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - t0) / calls)
    return best


def tanh_cost(net, repeats=7):
    """Seconds per element of rkgen's vector tanh (the module's own activation kernel, one thread, in cache)."""
    Z = np.random.default_rng(0).normal(size=(64, 2048))
    S = np.empty_like(Z)
    net._activate(Z, S, 0, 64, 2048)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(20):
            net._activate(Z, S, 0, 64, 2048)
        best = min(best, (time.perf_counter() - t0) / (20 * Z.size))
    return best


def copy_rate(size=2**25, repeats=5):
    """Bytes per second that numpy moves on one thread copying a large float64 array (``size`` values, 256 MB: far
    beyond the caches) into another, read and written counted: the memory bandwidth a tape meets."""
    a, b = np.ones(size), np.zeros(size)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.copyto(b, a)
        best = min(best, time.perf_counter() - t0)
    return 2 * a.nbytes / best


def lower_bounds(config, threads):
    """{threads: (bound in s, DGEMM flop/s, tanh s per element, tape traffic in s, copy bytes/s, faster bound in s,
    its library)}: the stage products at numpy's DGEMM rate (gemm_rate) plus the activations at rkgen's tanh cost
    (explicit tableaux: one tanh per stage, layer, sample and row); beside it the same at the faster library's rate
    (torch's MKL, where it is faster). Not in the bound, printed beside it: the time to write the tape of rkgen's
    reverse pass (the activations S_i and the stage values Y_i it keeps: (s + 1) N m d numbers for an explicit
    tableau with the resnet field, which keeps of the Y_i only y_j, else 2 s N m d; the module's _tape_inputs) and
    read it back, at the measured copy rate (numpy copies on one thread: the rate at n threads is taken as n times
    it at most)."""
    d, N, m, _, tableau = baselines.CONFIGS[config]
    s = baselines.TABLEAUX[tableau][1].shape[0]
    net = import_path(ROOT / "generated" / f"{tableau}_net.py")
    tanh = tanh_cost(net)
    flops = 6.0 * d * d * m * s * N
    rows = s + (net._tape_inputs("resnet") if hasattr(net, "_tape_inputs") else s)  # the configs' field
    tape = 2 * rows * N * m * d * 8  # bytes written, then read
    copy = copy_rate()
    out = {}
    for n in threads:
        rates = gemm_rate(m, d, n)
        fastest = max(rates, key=rates.get)
        activations = s * N * m * d * tanh / n
        out[n] = (flops / rates["numpy"] + activations, rates["numpy"], tanh, tape / (n * copy), copy,
                  flops / rates[fastest] + activations, f"{fastest} {rates[fastest] / 1e9:.1f} GFLOP/s")
    return out


def report_bound(config, times, bounds, threads):
    """rkgen's distance to the lower bound at each thread count; the targets of BOUND_TARGETS met or missed; the
    bound at the faster library's rate; and the tape's memory traffic, which the bound leaves out."""
    for n in threads:
        bound, rate, tanh, traffic, copy, faster, library = bounds[n]
        t = statistics.median(times["shared", f"rkgen({n}t)"])
        target = BOUND_TARGETS.get(config)
        verdict = "" if target is None else f"  (target <= {target}x: {'met' if t / bound <= target else 'missed'})"
        print(f"        bound {n}t: DGEMM {rate / 1e9:.1f} GFLOP/s (numpy), tanh {tanh * 1e9:.2f} ns -> "
              f"{bound * 1e3:.1f} ms; rkgen({n}t) {t * 1e3:.1f} ms = {t / bound:.2f}x the bound{verdict}")
        print(f"          at the fastest GEMM ({library}): {faster * 1e3:.1f} ms, rkgen {t / faster:.2f}x that")
        print(f"          not in the bound: the tape written and read back at {copy / 1e9:.1f} GB/s (one thread's "
              f"copy rate, times {n}) {traffic * 1e3:.1f} ms; bound + tape {(bound + traffic) * 1e3:.1f} ms, "
              f"rkgen {t / (bound + traffic):.2f}x that")


# ----------------------------------------------------------------------------------------------
# float32 (--dtype float32): explicit tableaux, shared layout
# ----------------------------------------------------------------------------------------------


def problem32(config, seed=0):
    """make_problem's problem with its arrays rounded to float32 (mu stays a Python float)."""
    problem = baselines.make_problem(config, seed)
    for key in ("y0", "K", "beta", "h", "W", "labels"):
        problem[key] = problem[key].astype(np.float32)
    return problem


def _explicit_shared(problem):
    A, b = problem["A"], problem["b"]
    if not baselines.is_explicit(A) or problem.get("params", "shared") != "shared":
        raise ValueError("the float32 baselines take explicit tableaux in the shared layout")
    # Python floats: under numpy's promotion rules they never widen a float32 array (numpy scalars would)
    return [[float(x) for x in row] for row in A], [float(x) for x in b], [float(x) for x in problem["h"]]


def numpy_grad32(problem):
    """numpy_grad's hand-written backward, every array in the problem's dtype (float32 here)."""
    A, b, hs = _explicit_shared(problem)
    y, K, beta, field = problem["y0"], problem["K"], problem["beta"], problem["field"]
    s = len(b)
    tape = []
    for j, hj in enumerate(hs):
        Ys, Ss, F = [], [], []
        for i in range(s):
            Yi = y
            for l in range(i):
                if A[i][l] != 0.0:
                    Yi = Yi + (hj * A[i][l]) * F[l]
            S = np.tanh(Yi @ K[j].T + beta[j])
            Ys.append(Yi)
            Ss.append(S)
            F.append(S if field == "resnet" else -(S @ K[j]))
        tape.append((Ys, Ss))
        y = y + hj * sum(b[i] * F[i] for i in range(s) if b[i] != 0.0)
    loss, p, dW, dmu = baselines._classifier(y, problem["W"], problem["mu"], problem["labels"])
    dK, dbeta = np.zeros_like(K), np.zeros_like(beta)
    for j in reversed(range(len(hs))):
        hj, (Ys, Ss) = hs[j], tape[j]
        mu = [None] * s
        for i in reversed(range(s)):
            xi = (hj * b[i]) * p
            for k in range(i + 1, s):
                if A[k][i] != 0.0:
                    xi = xi + (hj * A[k][i]) * mu[k]
            mu[i], dKi, dbi = baselines._np_pullback(xi, Ys[i], Ss[i], K[j], field)
            dK[j] += dKi
            dbeta[j] += dbi
        p = p + sum(mu)
    return baselines.Gradient(loss, dK, dbeta, dW, dmu)


def torch_grad32(problem):
    """torch_grad for explicit tableaux in the shared layout, in the problem's dtype (float32 here)."""
    import torch

    A, b, hs = _explicit_shared(problem)
    field, s = problem["field"], len(b)
    y = torch.from_numpy(problem["y0"])
    K = torch.from_numpy(problem["K"]).clone().requires_grad_(True)
    beta = torch.from_numpy(problem["beta"]).clone().requires_grad_(True)
    W = torch.from_numpy(problem["W"]).clone().requires_grad_(True)
    mu = torch.tensor(float(problem["mu"]), dtype=W.dtype, requires_grad=True)
    labels = torch.from_numpy(problem["labels"])
    for j, hj in enumerate(hs):
        F = []
        for i in range(s):
            Yi = y
            for l in range(i):
                if A[i][l] != 0.0:
                    Yi = Yi + (hj * A[i][l]) * F[l]
            S = torch.tanh(Yi @ K[j].T + beta[j])
            F.append(S if field == "resnet" else -(S @ K[j]))
        y = y + hj * sum(b[i] * F[i] for i in range(s) if b[i] != 0.0)
    g = torch.sigmoid(y @ W + mu)
    loss = 0.5 * torch.sum((g - labels) ** 2)
    loss.backward()
    return baselines.Gradient(float(loss.detach()), K.grad.numpy(), beta.grad.numpy(), W.grad.numpy(),
                              float(mu.grad))


def tanh_cost32(net, repeats=7):
    """tanh_cost on float32 arrays (rkgen's activation kernel compiled for float32)."""
    Z = np.random.default_rng(0).normal(size=(64, 2048)).astype(np.float32)
    S = np.empty_like(Z)
    net._activate(Z, S, 0, 64, 2048)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(20):
            net._activate(Z, S, 0, 64, 2048)
        best = min(best, (time.perf_counter() - t0) / (20 * Z.size))
    return best


def run_float32(configs, threads, peers, rounds, repeats):
    """--dtype float32: every config side by side in float32; returns (missed targets, disagreeing gradients)."""
    missed, failed = [], []
    for config in configs:
        name = config.removesuffix("-rk4") if config[:1] in "BCDE" else config
        problem = problem32(config)
        wide = {k: (v.astype(np.float64) if isinstance(v, np.ndarray) and v.dtype == np.float32 else v)
                for k, v in problem.items()}
        net = import_path(ROOT / "generated" / f"{problem['tableau']}_net.py")
        rkgen = baselines.contract_grad(net)
        impls = {f"rkgen({n}t)": with_numba_threads(rkgen, n) for n in threads}
        if "torch" in peers:
            impls.update({f"torch({n}t)": with_torch_threads(torch_grad32, n) for n in threads})
        impls.update({f"numpy({n}t)": with_blas_threads(numpy_grad32, n) for n in threads})
        want = baselines.numpy_grad(wide)
        worst = 0.0
        for impl, fn in impls.items():
            g = fn(problem)
            if g.dK.dtype != np.float32:
                failed.append(f"{name} {impl}: gradient in {g.dK.dtype}, not float32")
            worst = max(worst, baselines.relative_difference(g, want))
        times = {("shared", impl): [] for impl in impls}
        keys = list(impls)
        for r in range(rounds):
            for impl in keys if r % 2 == 0 else reversed(keys):
                fn = impls[impl]
                times["shared", impl].append(baselines.time_it(lambda f=fn, p=problem: f(p), repeats))
        report_config(name, times, {"shared": (worst, "numpy float64")}, threads)
        if worst > AGREE32:
            failed.append(f"{name} float32: gradients differ from float64 by {worst:.0e}")
        for competitor, target in TARGETS32.get(name, []):
            for n in threads:
                other, own = f"{competitor}({n}t)", f"rkgen({n}t)"
                if ("shared", other) not in times:
                    continue
                ratio = statistics.median(times["shared", other]) / statistics.median(times["shared", own])
                ok = ratio >= target
                print(f"        target {own} >= {target}x {other} (float32): {ratio:.2f}x {'met' if ok else 'missed'}")
                if not ok:
                    missed.append(f"{name} float32 {own} vs {other}: {ratio:.2f}x < {target}x")
        d, N, m, _, tableau = baselines.CONFIGS[name]
        s = baselines.TABLEAUX[tableau][1].shape[0]
        tanh = tanh_cost32(net)
        for n in threads:
            rates = gemm_rate(m, d, n, np.float32)
            t = statistics.median(times["shared", f"rkgen({n}t)"])
            for library, rate in rates.items():
                bound = 6.0 * d * d * m * s * N / rate + s * N * m * d * tanh / n
                print(f"        bound {n}t: SGEMM {rate / 1e9:.1f} GFLOP/s ({library}), tanh {tanh * 1e9:.2f} ns "
                      f"-> {bound * 1e3:.1f} ms; rkgen({n}t) {t * 1e3:.1f} ms = {t / bound:.2f}x the bound")
    return missed, failed


COLD = """
import time, sys
t0 = time.perf_counter()
sys.path.insert(0, {root!r})
from rkgen.codegen import import_path
import numpy as np
net = import_path({path!r})
t1 = time.perf_counter()
rng = np.random.default_rng(0)
m, d, N = {m}, 2, 3
y0 = rng.normal(size=(m, d)); K = rng.normal(size=(N, d, d)); beta = rng.normal(size=(N, d)); h = np.full(N, 0.1)
yN, tape = net.forward(y0, K, beta, h)
net.backward(tape, np.ones_like(yN))
t2 = time.perf_counter()
print(t1 - t0, t2 - t1)
"""


def compile_times(tableau: str, m: int) -> tuple[float, float]:
    """(cold compile + first call, first call with a warm cache), each in a new process."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"{tableau}_net.py"
        shutil.copy(ROOT / "generated" / f"{tableau}_net.py", path)
        code = COLD.format(root=str(ROOT), path=str(path), m=m)
        env = dict(os.environ)
        cold = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        warm = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
        return float(cold.stdout.split()[1]), float(warm.stdout.split()[1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="*", help="default: all of baselines.CONFIGS (--quick: A-rk4 B)")
    parser.add_argument("--params", nargs="*", choices=baselines.PARAMS,
                        help=f"layouts for every config (default: shared, and all layouts for {' '.join(VARIANTS)})")
    parser.add_argument("--rounds", type=int, help="alternating rounds (default 5, --quick 3)")
    parser.add_argument("--repeats", type=int, help="calls per timing, median taken (default 7, --quick 3)")
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurements")
    parser.add_argument("--quick", action="store_true", help="A-rk4 and B, 3 rounds of 3, no compile times")
    parser.add_argument("--dtype", choices=("float64", "float32"), default="float64",
                        help="float32: rkgen, torch and numpy in float32 side by side (default configs D E; "
                        "explicit tableaux, shared layout), no compile times")
    args = parser.parse_args(argv)
    configs = args.configs or (list(VARIANTS) if args.quick else list(baselines.CONFIGS))
    if args.dtype == "float32" and not args.configs:
        configs = ["D", "E"]
    rounds = args.rounds or (3 if args.quick else 5)
    repeats = args.repeats or (3 if args.quick else 7)

    peers = set()
    versions = [f"numba {numba.__version__}"]
    for name in ("torch", "jax"):
        try:
            module = __import__(name)
        except ImportError:
            print(f"{name} not installed: skipped")
            continue
        peers.add(name)
        versions.append(f"{name} {module.__version__}")
    torch = sys.modules.get("torch")
    threads = sorted({numba.get_num_threads(), 1}, reverse=True)
    print(f"{datetime.datetime.now().astimezone():%Y-%m-%d %H:%M %Z}; CPU: {cpu_model()}; {os.cpu_count()} logical "
          f"CPUs; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"{', '.join(versions)}; numba threads {numba.get_num_threads()} (threading layer "
          f"{numba.config.THREADING_LAYER}); torch default threads {torch.get_num_threads() if torch else None}")
    rk4 = import_path(ROOT / "generated" / "rk4_net.py")
    print(f"rkgen's wide products: {rk4.BLAS_LIBRARY} from {rk4.LARGE_PRODUCT} multiply-adds a product, numba's "
          "BLAS helper (scipy's OpenBLAS) below; RKGEN_BLAS=" + os.environ.get("RKGEN_BLAS", "auto (unset)"))
    print(f"rkgen, torch and numpy (BLAS limited by threadpoolctl) timed at {' and '.join(f'{n}' for n in threads)} "
          f"thread(s) each; JAX at its default (XLA_FLAGS={os.environ.get('XLA_FLAGS', 'unset')}) against "
          f"rkgen({threads[0]}t)")
    print(f"per cell: median over {rounds} alternating rounds (range), each round the median of {repeats} "
          "samples of back-to-back calls (at least 20 ms each)")

    if args.dtype == "float32":
        missed, failed = run_float32(configs, threads, peers, rounds, repeats)
        print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
        print("float32 targets missed (on this machine, this run): " + ("; ".join(missed) if missed else "none"))
        print("gradients that disagree: " + ("; ".join(failed) if failed else "none"))
        return 1 if failed else 0
    failed, missed = [], []
    for config in configs:
        name = config.removesuffix("-rk4") if config[:1] in "BCDE" else config
        if args.params:
            layouts = list(args.params)
        else:
            layouts = list(baselines.PARAMS) if name in VARIANTS else ["shared"]
        times, agree = run_config(config, layouts, threads, peers, rounds, repeats)
        report_config(name, times, agree, threads)
        if name in baselines.UNROLLED and name in baselines.UNROLLED_RESIDUAL:
            print(f"        torch unrolls the fixed-point iteration {baselines.UNROLLED[name]} times: stage residual "
                  f"{baselines.UNROLLED_RESIDUAL[name]:.1e} relative to 1 + max|Y| (rkgen's Newton: last update "
                  f"<= 1e-13 or estimated error <= 1e-15, relative)")
        for params, (worst, _) in agree.items():
            if worst > AGREE:
                failed.append(f"{name} {params}: gradients differ by {worst:.0e}")
        if "shared" not in layouts:
            continue
        for competitor, target in TARGETS.get(name, []):
            pairs = [(f"{competitor}({n}t)", f"rkgen({n}t)") for n in threads]
            if competitor == "jax":
                pairs = [("jax", f"rkgen({threads[0]}t)")]
            for other, own in pairs:
                if ("shared", other) not in times:
                    continue
                ratio = statistics.median(times["shared", other]) / statistics.median(times["shared", own])
                ok = ratio >= target
                print(f"        target {own} >= {target}x {other}: {ratio:.2f}x {'met' if ok else 'missed'}")
                if not ok:
                    missed.append(f"{name} {own} vs {other}: {ratio:.2f}x < {target}x")
        if name in ("C", "D", "E", "gauss2-wide"):  # the widths where the products dominate
            bounds = lower_bounds(name, threads)
            report_bound(name, times, bounds, threads)
            for n in threads:
                distance = statistics.median(times["shared", f"rkgen({n}t)"]) / bounds[n][0]
                if name in BOUND_TARGETS and distance > BOUND_TARGETS[name]:
                    missed.append(f"{name} rkgen({n}t): {distance:.2f}x the bound > {BOUND_TARGETS[name]}x")
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if not (args.no_compile or args.quick):
        print("== compile: cold (empty cache, new process) and first call from the cache ==")
        for tableau in ("euler", "rk4", "midpoint", "gauss2"):
            for m in (5, 50000):
                t0 = time.perf_counter()
                cold, warm = compile_times(tableau, m)
                path = "serial" if m == 5 else "parallel"
                print(f"{tableau:9s} {path:8s} cold {cold:6.1f} s   first call from cache {warm:5.2f} s"
                      f"   ({time.perf_counter() - t0:.0f} s)")
    print("targets missed (on this machine, this run): " + ("; ".join(missed) if missed else "none"))
    print("gradients that disagree: " + ("; ".join(failed) if failed else "none"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
