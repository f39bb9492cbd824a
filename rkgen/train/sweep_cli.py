"""``rkgen sweep``: a grid of training runs from a TOML spec, resumable, on a process pool or a Dask cluster.

rkgen/cli.py hooks it in as a subcommand through ``add_arguments(parser)`` and ``run(args)``; the work is in
:mod:`rkgen.train.sweep`, whose docstring describes the spec.
"""

from __future__ import annotations

import argparse
import signal
import sys

DESCRIPTION = """\
Run many training runs from one spec: a base configuration (any 'rkgen train' option) and the
axes that vary, as a full grid ([grid]), an explicit list ([[runs]]), or both crossed.

  [base]                     [grid]                       [summary]
  dataset = "spiral"         layers = [1, 5, 20]          repeat = "seed"     # mean +- std over it
  optimizer = "adam"         seed = [1, 2, 3, 4]          x = "layers"        # plotted against it
  epochs = 40                tableau = ["euler", "rk4"]

A grid axis may also list option sets, each a value of the axis:
  data = [{ label = "spiral", dataset = "spiral", epochs = 40 }, { label = "donut", dataset = "donut2d" }]

Each run is a run folder under the sweep folder (default sweeps/<spec name>), named from its axis
values. The sweep folder holds sweep.toml (the resolved spec), results.csv (a row per run, appended
as runs end) and summary.md (mean +- std over the repeat axis, figures against x).

Running the same command again skips the runs that ended and resumes the interrupted ones. A run
that fails or diverges is recorded and the sweep goes on. Ctrl-C or SIGTERM stops cleanly: the
running runs save a checkpoint and results.csv holds only whole rows. A run's numbers do not depend
on the executor or the number of workers: every run has its own seeds and runs on [sweep] threads
threads (default 1).

Every network module the runs need is compiled once, before the runs start.

examples:
  rkgen sweep examples/sweeps/giesecke_table1.toml                 a local pool, one worker per core
  rkgen sweep spec.toml --workers 1                                one run after another, here
  rkgen sweep spec.toml --dask local:2                             a Dask LocalCluster of 2 processes
  rkgen sweep spec.toml --dask tcp://scheduler:8786 --out /shared/sweep   an existing Dask cluster
  rkgen sweep spec.toml --dry-run                                  list the runs and their state
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="the sweep spec (TOML)")
    parser.add_argument("--out", metavar="DIR", help="the sweep folder (default: sweeps/<spec name>)")
    where = parser.add_mutually_exclusive_group()
    where.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="worker processes of the local pool (default: the cores divided by [sweep] threads; 1 runs here)",
    )
    where.add_argument(
        "--dask",
        metavar="ADDRESS",
        help='a Dask scheduler\'s address, or local:N for a LocalCluster of N processes (pip install "rkgen[dask]"); '
        "on several machines --out must be a folder every worker sees at the same path",
    )
    parser.add_argument("--dry-run", action="store_true", help="check the spec and list the runs; run nothing")


def run(args: argparse.Namespace) -> int:
    """0 when every run completed (or stalled), 1 when some diverged, failed or are unfinished, 128 + the signal
    when stopped by one."""
    from rkgen.train.sweep import run_sweep

    result = run_sweep(
        args.spec, out=args.out, workers=args.workers, dask=args.dask, dry_run=args.dry_run,
        report=lambda text: print(text, flush=True),
    )
    if args.dry_run:
        return 0
    if result.get("signal"):
        return 128 + int(signal.Signals(result["signal"]))
    bad = result.get("unfinished", 0) + result.get("diverged", 0) + result.get("failed", 0)
    return 1 if bad else 0


def main(argv=None) -> int:
    from rkgen.train.cli import standalone

    return standalone("rkgen sweep", DESCRIPTION, add_arguments, run, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
