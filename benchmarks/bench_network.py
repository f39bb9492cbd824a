"""One gradient (forward + loss + backward) of rkgen's generated networks against PyTorch, JAX and numpy.

Run from the repository root:  python benchmarks/bench_network.py [--configs A-rk4 B ...] [--repeats 7]

All implementations run side by side in one process on the same problem, in float64, and their gradients are
checked against each other before timing.  The table reports median times and the ratios other/rkgen; on a
shared, noisy machine only the ratios mean much.  Also measured: the cold numba compile of a generated module
(in a fresh process with an empty cache folder) and the first call in a new process with a warm cache.
"""

from __future__ import annotations

import argparse
import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import baselines  # noqa: E402

from rkgen.codegen import import_path  # noqa: E402

TARGETS = {  # config: (competitor, minimum speed-up of rkgen over it)
    "A-rk4": [("torch(1t)", 5.0), ("jax", 1.5)],
    "A-midpoint": [("torch(1t)", 2.5)],
    "B": [("torch(1t)", 40.0)],
    "C": [("torch(1t)", 1.2)],
    "D": [("torch(1t)", 1.0)],
}


def rkgen_grad(problem):
    net = import_path(ROOT / "generated" / f"{problem['tableau']}_net.py")
    return baselines.contract_grad(net)(problem)


def rkgen_serial_grad(problem):
    """The same generated module on one thread (numba.set_num_threads(1))."""
    import numba

    threads = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        return rkgen_grad(problem)
    finally:
        numba.set_num_threads(threads)


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
    parser.add_argument("--configs", nargs="*", default=list(baselines.CONFIGS))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-compile", action="store_true", help="skip the compile-time measurements")
    args = parser.parse_args(argv)

    impls = {"rkgen": rkgen_grad, "rkgen(1t)": rkgen_serial_grad}
    impls.update(baselines.IMPLEMENTATIONS)
    for name in ("torch", "jax"):
        try:
            __import__(name)
        except ImportError:
            print(f"{name} not installed: skipped")
            impls.pop(name)
    torch = sys.modules.get("torch")
    default_threads = torch.get_num_threads() if torch else None
    import numba

    print(f"numba threads: {numba.get_num_threads()}, threading layer set by the module: "
          f"{numba.config.THREADING_LAYER}; torch default threads: {default_threads}")
    failed = []
    rows = {}
    for config in args.configs:
        problem = baselines.make_problem(config, 0)
        grads = {name: fn(problem) for name, fn in impls.items()}
        worst = max(baselines.relative_difference(g, grads["numpy"]) for g in grads.values())
        times = {}
        for name, fn in impls.items():
            call = functools.partial(fn, problem)
            if name == "torch":
                for threads in sorted({1, default_threads}):
                    torch.set_num_threads(threads)
                    times[f"torch({threads}t)"] = baselines.time_it(call, args.repeats)
                torch.set_num_threads(default_threads)
            else:
                times[name] = baselines.time_it(call, args.repeats)
        rows[config] = times
        base = times["rkgen"]
        text = "  ".join(f"{k} {v * 1e3:.2f} ms ({v / base:.1f}x)" for k, v in times.items())
        print(f"{config:10s} agree {worst:.0e} | {text}")
        for competitor, target in TARGETS.get(config, []):
            if competitor in times:
                ratio = times[competitor] / base
                ok = ratio >= target
                print(f"           target rkgen >= {target}x {competitor}: {ratio:.1f}x {'ok' if ok else 'MISSED'}")
                if not ok:
                    failed.append(f"{config} vs {competitor}: {ratio:.1f}x < {target}x")
    if not args.no_compile:
        print("== compile: cold (empty cache, new process) and first call from the cache ==")
        for tableau in ("euler", "rk4", "midpoint", "gauss2"):
            for m in (5, 50000):
                t0 = time.perf_counter()
                cold, warm = compile_times(tableau, m)
                path = "serial" if m == 5 else "parallel"
                print(f"{tableau:9s} {path:8s} cold {cold:6.1f} s   first call from cache {warm:5.2f} s"
                      f"   ({time.perf_counter() - t0:.0f} s)")
    print("targets missed: " + ("; ".join(failed) if failed else "none"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
