"""A sweep's wall time on a local pool, one worker, in one process, and on Dask; and what compiling once saves.

    python benchmarks/bench_sweep.py [--spec examples/sweeps/giesecke_table1.toml] [--epochs E] [--layers L ...]
                                     [--seeds S ...] [--no-dask]

Every mode runs the same grid into its own fresh folder, side by side in one run:

- ``serial``: every run in this process, one after another (``--workers 1``); its network compile is timed apart,
  so "serial minus compile" is the time of the runs themselves;
- ``pool-1``, ``pool-2``: a pool of 1 and of 2 worker processes (the runs fan out after the one compile);
- ``dask-2``: a Dask LocalCluster of 2 worker processes (started and stopped inside the timing).

Printed: each mode's wall time; the pool's speed-up of 2 workers over 1 (target >= 1.7 on 2 cores); the pool of
one worker against the same runs done one after another in this process minus their compile (the sweep's own
cost; target <= 1.1); the pool of 2 against half of that (what 2 cores allow); and the Dask path's overhead per
run against the pool.

Compile once: with an empty network cache, a pool of 2 whose workers each compile the network (precompile off)
against one compile before the fan-out. The CPU model and the load average are printed; other work on the
machine makes every figure an upper bound.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_builds import cpu_model  # noqa: E402

from rkgen.train import sweep as sw  # noqa: E402


def spec_of(args):
    data = tomllib.loads(Path(args.spec).read_text())
    base = data.setdefault("base", {})
    if args.epochs is not None:
        base["epochs"] = args.epochs
    if args.layers:
        data["grid"]["layers"] = args.layers
    if args.seeds:
        data["grid"]["seed"] = args.seeds
    return sw.parse_spec(data, args.spec)


def timed(label, spec, root, **kw):
    out = root / label
    t0 = time.perf_counter()
    res = sw.run_sweep(spec, out=out, report=lambda t: None, **kw)
    wall = time.perf_counter() - t0
    if res.get("completed", 0) + res.get("stalled", 0) != len(spec.runs):
        bad = [r for r in csv.DictReader(open(out / "results.csv")) if r["status"] not in ("completed", "stalled")]
        raise SystemExit(f"{label}: not every run completed: {res}; first: {bad[0]['run']}: {bad[0]['message']}")
    print(f"{label:>10}: {wall:8.1f} s wall" + (f" (of which {res['compile_seconds']:.1f} s compiling)"
                                               if res["compile_seconds"] >= 0.05 else ""), flush=True)
    return wall, res


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--spec", default=str(ROOT / "examples" / "sweeps" / "giesecke_table1.toml"))
    p.add_argument("--epochs", type=int, help="override the spec's epochs")
    p.add_argument("--layers", type=int, nargs="+", help="override the spec's layers axis")
    p.add_argument("--seeds", type=int, nargs="+", help="override the spec's seed axis")
    p.add_argument("--no-dask", action="store_true", help="skip the Dask LocalCluster")
    p.add_argument("--no-compile", action="store_true", help="skip the compile-once measurement")
    p.add_argument(
        "--dask-only",
        action="store_true",
        help="only the pool of 2 and the Dask LocalCluster side by side (the Dask path's overhead per run)",
    )
    args = p.parse_args(argv)
    spec = spec_of(args)
    print(f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; CPU: {cpu_model()}; {os.cpu_count()} logical CPUs; "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"spec {args.spec}: {len(spec.runs)} runs, {spec.threads} thread(s) per run", flush=True)
    root = Path(tempfile.mkdtemp(prefix="rkgen-bench-sweep-"))
    try:
        if args.dask_only:
            two, _ = _pool(spec, root, 2)
            dask, _ = timed("dask-2", spec, root, dask="local:2")
            print(f"Dask LocalCluster(2) against the pool of 2: {(dask - two) / len(spec.runs) * 1e3:+.0f} ms per run "
                  f"({dask / two:.2f}x the wall time, the cluster's start and stop included)")
            return 0
        serial, res = timed("serial", spec, root, workers=1)
        runs_only = serial - res["compile_seconds"]
        one, _ = _pool(spec, root, 1)
        two, _ = _pool(spec, root, 2)
        verdict = "met" if one / two >= 1.7 else "missed"
        print(f"pool: 2 workers {one / two:.2f}x the speed of 1 (target >= 1.7: {verdict})")
        verdict = "met" if one / runs_only <= 1.1 else "missed"
        print(f"pool of 1: {one / runs_only:.2f}x the runs done one after another in one process minus their "
              f"compile ({runs_only:.1f} s; target <= 1.1: {verdict})")
        print(f"pool of 2: {two / (runs_only / 2):.2f}x half of that (the most 2 cores allow)")
        if not args.no_dask:
            dask, _ = timed("dask-2", spec, root, dask="local:2")
            print(f"Dask LocalCluster(2) against the pool of 2: {(dask - two) / len(spec.runs) * 1e3:+.0f} ms per run "
                  f"({dask / two:.2f}x the wall time, the cluster's start and stop included)")
        if not args.no_compile:
            compile_once(spec, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


def _pool(spec, root, workers):
    """A pool of ``workers`` processes (workers=1: one worker process, not this one)."""
    return timed(f"pool-{workers}", spec, root, workers=workers, processes=True)


def compile_once(spec, root):
    """An empty network cache: each worker compiles, against one compile before the runs fan out."""
    saved = os.environ.get("RKGEN_CACHE")
    times = {}
    for label, pre in (("workers compile", False), ("compile once", True)):
        os.environ["RKGEN_CACHE"] = str(root / f"cache-{pre}")
        try:
            times[label], _ = timed(label.replace(" ", "-"), spec, root, workers=2, precompile=pre)
        finally:
            if saved is None:
                os.environ.pop("RKGEN_CACHE", None)
            else:
                os.environ["RKGEN_CACHE"] = saved
    print(f"compile once saves {times['workers compile'] - times['compile once']:.1f} s of "
          f"{times['workers compile']:.1f} s (cold cache, 2 workers)")


if __name__ == "__main__":
    sys.exit(main())
