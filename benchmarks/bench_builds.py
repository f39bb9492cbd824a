"""Two builds of rkgen's generated modules side by side in one process: before and after a change of the generator.

Run from the repository root:

    git worktree add /tmp/rkgen-before <revision>          # or any checkout of the revision to compare with
    python benchmarks/bench_builds.py --before /tmp/rkgen-before/generated [--rounds 5] [--repeats 7]

For every configuration of ``baselines.CONFIGS`` it imports ``<tableau>_net.py`` from both folders, checks that
their gradients agree, and then times one gradient (forward + loss + backward) of each, alternating before and
after in every round, at numba's thread count and on one thread (equal thread counts on both sides).  It prints
the median ratio after/before with its range over the rounds (the run-to-run spread), and the cold compile (new
process, empty cache) of each build for a few tableaux.  A ratio below 1 means the new build is faster.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import baselines  # noqa: E402
import numba  # noqa: E402

from rkgen.codegen import import_path  # noqa: E402


def cpu_model() -> str:
    """The CPU's name, its family and model numbers and its widest vector unit. Under a hypervisor the name can be
    generic ("AMD EPYC"), and the family tells the generation (AMD: 23 Zen 1/2, 25 Zen 3/4, 26 Zen 5)."""
    try:
        info = {}
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            info.setdefault(key.strip(), value.strip())
    except OSError:
        return platform.processor() or platform.machine()
    flags = set(info.get("flags", "").split())
    vector = "AVX-512" if "avx512f" in flags else "AVX2, no AVX-512" if "avx2" in flags else "no AVX2"
    name = info.get("model name", platform.processor() or platform.machine())
    return f"{name} (family {info.get('cpu family', '?')}, model {info.get('model', '?')}; {vector})"


COLD = """
import sys, time
sys.path.insert(0, {root!r})
from rkgen.codegen import import_path
import numpy as np
t0 = time.perf_counter()
net = import_path({path!r})
rng = np.random.default_rng(0)
m, d, N = {m}, 2, 3
y0 = rng.normal(size=(m, d)); K = rng.normal(size=(N, d, d)); beta = rng.normal(size=(N, d)); h = np.full(N, 0.1)
yN, tape = net.forward(y0, K, beta, h)
net.backward(tape, np.ones_like(yN))
print(time.perf_counter() - t0)
"""


def cold_compile(module: Path, m: int) -> float:
    """Import + first forward and backward in a new process, from an empty cache (seconds)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / module.name
        shutil.copy(module, path)
        code = COLD.format(root=str(ROOT), path=str(path), m=m)
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
        return float(run.stdout.split()[-1])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", required=True, type=Path, help="folder of the other build's *_net.py files")
    parser.add_argument("--after", type=Path, default=ROOT / "generated", help="default: generated/")
    parser.add_argument("--configs", nargs="*", default=list(baselines.CONFIGS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--compile", nargs="*", default=["euler", "rk4", "midpoint", "gauss2"],
                        help="tableaux whose cold compile is measured (none: skip)")
    args = parser.parse_args(argv)
    threads = numba.get_num_threads()
    print(f"CPU: {cpu_model()}; {os.cpu_count()} logical CPUs; numba {numba.__version__}, {threads} threads")
    print(f"before: {args.before}\nafter:  {args.after}")
    head = f"{'config':11s} {'threads':>7s} {'before':>10s} {'after':>10s}"
    print(f"{head}  after/before (range over {args.rounds} rounds)")
    for config in args.configs:
        problem = baselines.make_problem(config, 0)
        name = f"{problem['tableau']}_net.py"
        grads = {side: baselines.contract_grad(import_path(folder / name))
                 for side, folder in (("before", args.before), ("after", args.after))}
        diff = baselines.relative_difference(grads["after"](problem), grads["before"](problem))
        for n in sorted({threads, 1}, reverse=True):
            numba.set_num_threads(n)
            ratios, times = [], {"before": [], "after": []}
            for _ in range(args.rounds):
                for side in ("before", "after"):
                    times[side].append(baselines.time_it(lambda g=grads[side], p=problem: g(p), args.repeats))
                ratios.append(times["after"][-1] / times["before"][-1])
            before, after = statistics.median(times["before"]), statistics.median(times["after"])
            print(f"{config:11s} {n:7d} {before * 1e3:8.2f} ms {after * 1e3:8.2f} ms  {statistics.median(ratios):.3f}"
                  f" ({min(ratios):.3f}-{max(ratios):.3f})   gradients agree to {diff:.0e}")
        numba.set_num_threads(threads)
    if args.compile:
        print("cold compile + first call, new process, empty cache (serial kernels; parallel kernels):")
        for tableau in args.compile:
            cells = []
            for side, folder in (("before", args.before), ("after", args.after)):
                serial, parallel = (cold_compile(folder / f"{tableau}_net.py", m) for m in (5, 50000))
                cells.append(f"{side} {serial:5.1f} s; {parallel:5.1f} s")
            print(f"  {tableau:9s} " + "   ".join(cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())
