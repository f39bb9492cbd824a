"""``rkgen evaluate``: re-evaluate a continuous-layout run with another solver (rkgen.train.evaluate).

The lead's rkgen/cli.py hooks it in as a subcommand through ``add_arguments(parser)`` and
``run(args)``; ``python -m rkgen.train.evaluate_cli`` runs it alone.
"""

from __future__ import annotations

import argparse
import sys

DESCRIPTION = """\
Swap the solver of a trained run: integrate its network again with other tableaux and finer equal
grids over the same time span, and report the test and training accuracy and the change in y_N
(max |y_N - y_N of the run| / max |y_N of the run| over the test points).

Only runs trained with --params continuous qualify: their parameters are nodal values at fixed
node times, linear in between, so they define the network at any step size and are interpolated at
the new stage times. If the accuracy stays as N grows and the tableau changes, the network learned
an ODE flow; if it collapses, a discrete map tied to its own solver (Ott et al., ICLR 2021, "ResNet
after all?").

example:
  rkgen train --tableau euler --params continuous --layers 10 --out runs/spiral-euler
  rkgen evaluate runs/spiral-euler --tableau rk4 euler --layers 10 20 40 80 --out runs/swap
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN", help="the run folder (written by 'rkgen train --params continuous')")
    parser.add_argument(
        "--tableau",
        nargs="+",
        required=True,
        metavar="T",
        help="the tableau(s) to integrate with: built-in names, JSON tableau files or generated *_net.py",
    )
    parser.add_argument(
        "--layers",
        nargs="+",
        required=True,
        type=int,
        metavar="N",
        help="numbers of equal steps over the run's time span [tau_0, tau_N]",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="also write evaluate.csv and the figure evaluate.png/.pdf (accuracy against N) into DIR",
    )
    parser.add_argument(
        "--run-tableau",
        metavar="SPEC",
        help="the run's own tableau, if its file (JSON or *_net.py) has moved since training",
    )


def run(args: argparse.Namespace) -> int:
    from rkgen.train.evaluate import describe, evaluate_run, format_table, write_outputs
    from rkgen.train.plots import run_title
    from rkgen.train.predict import load_run

    r = load_run(args.run_dir, network=getattr(args, "run_tableau", None))
    rows = evaluate_run(r, args.tableau, args.layers)
    print(describe(r))
    print(format_table(rows))
    out = getattr(args, "out", None)
    if out:
        files = write_outputs(rows, out, run_title(r.model, r.dataset))
        print(f"  -> {', '.join(str(f) for f in files)}")
    return 0


def main(argv=None) -> int:
    from rkgen.train.cli import standalone

    return standalone("rkgen evaluate", DESCRIPTION, add_arguments, run, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
