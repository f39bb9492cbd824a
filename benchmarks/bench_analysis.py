"""Benchmark of the exact analysis behind `rkgen check`, against NodePy's exact order.

For each tableau, a fresh Python process (median of several runs) computes everything `rkgen check`
reports -- ``rkgen.report.check_data(load(name))``: exact order by rooted trees up to order 12 (and the
failing conditions), tolerant order, stage order, B/C/D, symplecticity matrix, the partner tableau and
its order. Reported:

- ``total``: wall time of the whole process (interpreter start, imports, analysis), seen from outside;
- ``import``: ``import rkgen.report`` inside the process (mostly sympy);
- ``analysis``: ``load`` + ``check_data`` inside the process.

NodePy (https://github.com/ketch/nodepy), if installed, is timed the same way on
``RungeKuttaMethod.order(mode='exact')`` (sympy-exact order only: far less than check_data computes),
with its own tableaux where it has them (``loadRKM('GL3')``, ``loadRKM('RK44')``) and rkgen's exact
entries otherwise (it has no 5-stage Gauss method); each run gets ``--nodepy-timeout`` seconds
(default 60) and is reported as 'did not finish' beyond that.

Targets: gauss3 < 0.5 s, gauss5 < 3 s.

Run:  python benchmarks/bench_analysis.py [--repeat 3] [--nodepy-timeout 60] [--no-nodepy] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TABLEAUX = ("rk4", "gauss3", "gauss5")
TARGETS = {"gauss3": 0.5, "gauss5": 3.0}
NODEPY_NAMES = {"rk4": "RK44", "gauss3": "GL3"}

RKGEN_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import rkgen.report
from rkgen import load
t1 = time.perf_counter()
data = rkgen.report.check_data(load(sys.argv[1]))
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "analysis": t2 - t1, "order": data["order"]}))
"""

NODEPY_CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
import nodepy.runge_kutta_method as rk
t1 = time.perf_counter()
name, builtin = sys.argv[1], sys.argv[2]
if builtin:
    method = rk.loadRKM(builtin)
else:
    from rkgen import load
    t = load(name)
    method = rk.RungeKuttaMethod(np.array(t.A, dtype=object), np.array(t.b, dtype=object))
order = method.order(mode="exact")
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "analysis": t2 - t1, "order": int(order)}))
"""


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(REPO) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _run(code: str, args: list[str], timeout: float) -> dict | None:
    """One fresh process; its inner timings plus the outer wall time, or None on timeout."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=timeout, env=_env()
        )
    except subprocess.TimeoutExpired:
        return None
    total = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"benchmark child failed ({' '.join(args)}):\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["total"] = total
    return result


def _median(runs: list[dict]) -> dict:
    return {key: statistics.median(r[key] for r in runs) for key in ("total", "import", "analysis")} | {
        "order": runs[0]["order"]
    }


def bench_rkgen(name: str, repeat: int) -> dict:
    return _median([_run(RKGEN_CHILD, [name], timeout=600) for _ in range(repeat)])


def nodepy_available() -> bool:
    probe = subprocess.run(
        [sys.executable, "-c", "import nodepy.runge_kutta_method"], capture_output=True, env=_env(), timeout=120
    )
    return probe.returncode == 0


def bench_nodepy(name: str, repeat: int, timeout: float) -> dict | None:
    runs = []
    for _ in range(repeat):
        r = _run(NODEPY_CHILD, [name, NODEPY_NAMES.get(name, "")], timeout=timeout)
        if r is None:
            return None  # did not finish: no point repeating
        runs.append(r)
    return _median(runs)


def _fmt(seconds: float | None) -> str:
    return "did not finish" if seconds is None else f"{seconds:8.3f} s"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per tableau (median; default 3)")
    parser.add_argument("--nodepy-timeout", type=float, default=60.0, help="seconds per NodePy run (default 60)")
    parser.add_argument("--no-nodepy", action="store_true", help="skip NodePy")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("tableaux", nargs="*", default=list(TABLEAUX))
    args = parser.parse_args(argv)

    have_nodepy = not args.no_nodepy and nodepy_available()
    rows = []
    for name in args.tableaux:
        ours = bench_rkgen(name, args.repeat)
        theirs = bench_nodepy(name, args.repeat, args.nodepy_timeout) if have_nodepy else None
        rows.append({"tableau": name, "rkgen": ours, "nodepy": theirs, "nodepy_ran": have_nodepy})

    if args.json:
        print(json.dumps(rows, indent=2))
        return 0

    print(f"rkgen check data vs NodePy order(mode='exact'); fresh process each, median of {args.repeat}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
    if not have_nodepy:
        print("NodePy: not installed (pip install nodepy six), or skipped")
    head = (
        f"{'tableau':<8} {'order':>5} | {'rkgen total':>11} {'import':>8} {'analysis':>9} {'target':>7} | "
        f"{'nodepy total':>14} {'analysis':>14} | {'ratio total':>11} {'ratio analysis':>14}"
    )
    print(head)
    print("-" * len(head))
    for row in rows:
        ours, theirs = row["rkgen"], row["nodepy"]
        target = TARGETS.get(row["tableau"])
        verdict = "" if target is None else ("ok" if ours["total"] < target else "MISSED")
        target_text = f"<{target:g} s" if target else ""
        if theirs is None:
            np_total = np_analysis = "did not finish" if row["nodepy_ran"] else "-"
            ratio_total = ratio_analysis = f">{args.nodepy_timeout / ours['total']:.0f}x" if row["nodepy_ran"] else "-"
        else:
            np_total, np_analysis = f"{theirs['total']:.3f} s", f"{theirs['analysis']:.3f} s"
            ratio_total = f"{theirs['total'] / ours['total']:.1f}x"
            ratio_analysis = f"{theirs['analysis'] / ours['analysis']:.1f}x"
            assert theirs["order"] == ours["order"], (row["tableau"], theirs["order"], ours["order"])
        print(
            f"{row['tableau']:<8} {ours['order']:>5} | {ours['total']:>9.3f} s {ours['import']:>6.3f} s "
            f"{ours['analysis']:>7.3f} s {target_text:>7} {verdict:<6}| {np_total:>14} {np_analysis:>14} | "
            f"{ratio_total:>11} {ratio_analysis:>14}"
        )
    print("ratio = NodePy time / rkgen time (NodePy computes only the order; rkgen the whole check report)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
