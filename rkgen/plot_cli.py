"""``rkgen plot``: the stability region or the order star of a tableau as PNG, PDF or SVG (:mod:`rkgen.plot`).

rkgen/cli.py hooks it in as a subcommand through ``add_arguments(parser)`` and ``run(args)``; nothing heavy is
imported until the command runs.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

DESCRIPTION = """\
Draw the linear stability of TABLEAU, from its exact stability function R(z) (see 'rkgen check'):

  --stability    the stability region {z : |R(z)| <= 1}, shaded, its boundary drawn and the real
                 stability interval marked;
  --order-star   the order star {z : |R(z) exp(-z)| > 1}, shaded, with the poles and zeros of R.

The file's suffix gives the format: .png, .pdf or .svg (the same bytes each time for the same input).
The box (Re z from XMIN to XMAX, Im z from YMIN to YMAX) is chosen from the method unless given.

examples:
  rkgen plot rk4 --stability                        ./rk4_stability.png
  rkgen plot gauss2 --order-star -o star.pdf        a PDF for a paper
  rkgen plot my.json --stability --box -4 1 -3 3 -o region.svg
"""

_NAME = {"stability": "stability", "order-star": "order_star"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("tableau", metavar="TABLEAU", help="a JSON file or a built-in name (see 'rkgen list')")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--stability", action="store_true", help="draw the stability region {z : |R(z)| <= 1}")
    what.add_argument("--order-star", action="store_true", help="draw the order star {z : |R(z) exp(-z)| > 1}")
    parser.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="the figure file, .png, .pdf or .svg, or a folder (default: ./<name>_stability.png or "
        "./<name>_order_star.png)",
    )
    parser.add_argument(
        "--box",
        nargs=4,
        type=float,
        metavar=("XMIN", "XMAX", "YMIN", "YMAX"),
        help="the part of the complex plane drawn (default: chosen from the method's stability function)",
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing file that differs")


def target(output: str | None, identifier: str, kind: str) -> Path:
    """The file to write: -o as given, or a default name (in -o's folder when -o is one)."""
    name = f"{identifier}_{_NAME[kind]}.png"
    if output is None:
        return Path(name)
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        return path / name
    return path


def run(args: argparse.Namespace) -> int:
    from .errors import RkgenError
    from .fileio import check_target
    from .plot import check_box, plot, suffix_format, write_plot
    from .tableau import load

    kind = "stability" if args.stability else "order-star"
    if args.output is not None and not str(args.output):
        raise RkgenError("-o is empty; give a file or a folder (or leave -o out)")
    box = None if args.box is None else check_box(args.box)
    tableau = load(args.tableau)
    path = target(None if args.output is None else os.fspath(args.output), tableau.identifier, kind)
    suffix_format(path)
    check_target(path)  # a link, a FIFO or a device is refused before anything is drawn
    status = write_plot(plot(tableau, kind, box), path, force=args.force)
    print(f"{status} {path}")
    return 0
