"""The `rkgen` command, the chain's front door.  Every user error becomes one line ``rkgen: error: ...`` and exit 2."""

from __future__ import annotations

import argparse
import json
import os
import sys

from . import __version__
from .errors import RkgenError

COMMANDS = (
    "check", "list", "generate", "train", "sweep", "predict", "evaluate", "derive", "plot", "compare-adjoints",
)  # fmt: skip

DESCRIPTION = """\
rkgen turns a Butcher tableau into a Runge-Kutta neural network with exact gradients.

A tableau is a JSON file {"name", "A", "b", "c"} with exact entries ("1/2", "1/2 - sqrt(3)/6")
or a built-in name (see 'rkgen list').  'rkgen TABLEAU' is short for 'rkgen generate TABLEAU'.
"""

EPILOG = """\
examples:
  rkgen list                         the built-in tableaux with order, stages, structure
  rkgen check rk4                    order, symplecticity, partner tableau (exact)
  rkgen check my.json --partner p.json   verify a tableau pair against conditions (19)
  rkgen rk4                          write rk4_net.py: numba forward + exact adjoint
  rkgen train --tableau rk4 --dataset spiral   train a network, with plots
  rkgen sweep spec.toml --workers 2  a grid of runs (tableaux x depths x seeds), mean +- std
  rkgen predict runs/spiral-rk4 points.csv -o pred.csv   class probabilities of new points
  rkgen evaluate runs/spiral-euler --tableau rk4 --layers 10 20 40   swap the solver of a continuous run
  rkgen derive gauss2 -o gauss2.md   the derivation for a tableau, step by step
  rkgen plot rk4 --stability         the stability region as a PNG (also --order-star; .pdf, .svg)
"""


class _Parser(argparse.ArgumentParser):
    """argparse with rkgen's error style: one line ``rkgen: error: ...``, exit status 2; options are spelled out
    (no abbreviations, which would change meaning when an option is added)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message):
        command = self.prog.split(" ", 1)[1] if " " in self.prog else ""
        where = f"{command}: " if command else ""
        self.exit(2, f"rkgen: error: {where}{message} (see '{self.prog} --help')\n")


def _add_check(sub):
    p = sub.add_parser(
        "check",
        help="analyse a tableau exactly: order, structure, symplecticity, partner",
        description="Analyse a Butcher tableau exactly (sympy and exact number-field arithmetic): structure, "
        "classical order by rooted trees (and the failing conditions of the next order), stage order, "
        "simplifying assumptions B/C/D, symplecticity M = diag(b)A + A^T diag(b) - b b^T, the "
        "symplectic partner of conditions (19), and linear stability: the stability function R(z), A- and "
        "L-stability (decided by exact real-root counting, never by sampling), the real stability interval, "
        "algebraic stability (b >= 0 and M positive semidefinite) and the partner's R~(z) = 1/R(-z).",
    )
    p.add_argument("tableau", help="a JSON file or a built-in name (see 'rkgen list')")
    p.add_argument("--partner", metavar="TABLEAU", help="verify this tableau as the partner (conditions (19))")
    p.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object instead of the report: exact numbers as strings; the integers in "
        "zero_weights, backward_pass and the violations' i, j are 0-based positions in the JSON arrays A and b "
        "(the report's subscripts, b_2 and a_21 as in 'rkgen derive', are 1-based)",
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="exit with status 1 when a check fails: the partner given (--partner, or the partner field of "
        "the tableau's file) violates conditions (19), also when it is the tableau itself and that is not symplectic. "
        "The report is printed all the same, and one line 'rkgen: check failed: ...' on stderr. Without "
        "--strict the status is 0 whatever the analysis finds; bad input is status 2 either way",
    )
    p.add_argument(
        "--max-order", type=int, default=12, metavar="N", help="check order conditions up to order N (default 12)"
    )
    p.add_argument(
        "--tol",
        type=float,
        default=1e-12,
        metavar="X",
        help="tolerance of the tolerant order (residuals up to X count as zero; default 1e-12). "
        "The exact order never uses a tolerance.",
    )
    p.set_defaults(run=_run_check)


def _run_check(args) -> int:
    from .order import analyse_order
    from .report import check_data, format_report
    from .tableau import load

    if args.max_order < 1 or args.max_order > 16:
        raise RkgenError("--max-order must be between 1 and 16")
    if not 0 <= args.tol < float("inf"):
        raise RkgenError("--tol must be a finite nonnegative number")
    tableau = load(args.tableau)
    report = None
    if args.max_order != 12 or args.tol != 1e-12:
        report = analyse_order(tableau, args.max_order, args.tol)
    partner = load(args.partner) if args.partner else tableau.given_partner
    data = check_data(tableau, partner, order_report=report)
    if args.json:
        print(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        print(format_report(data))
    if args.strict and data.get("pair_symplectic") is False:
        n = len(data["violations"])
        sys.stdout.flush()
        print(
            f"rkgen: check failed: {tableau.name}: the given partner {partner.name} violates {n} of conditions (19)",
            file=sys.stderr,
        )
        return 1
    return 0


def _add_list(sub):
    p = sub.add_parser("list", help="list the built-in tableaux", description="List the built-in tableaux.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(run=_run_list)


def _run_list(args) -> int:
    from .tableau import builtin_names, load

    rows = []
    for name in builtin_names():
        t = load(name)
        rows.append(
            {
                "name": name,
                "stages": t.stages,
                "order": t.order,
                "structure": t.structure_detail,
                "symplectic": t.is_symplectic,
                "description": t.description,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
        return 0
    print(f"{'name':<15} {'s':>2} {'p':>3}  {'symplectic':<10}  structure")
    for r in rows:
        print(
            f"{r['name']:<15} {r['stages']:>2} {r['order']:>3}  {'yes' if r['symplectic'] else 'no':<10}  "
            f"{r['structure']}"
        )
    return 0


def _add_generate(sub):
    p = sub.add_parser(
        "generate",
        help="write <name>_net.py: numba forward pass and exact adjoint (the default command)",
        description="Write a Python module with numba-compiled forward and backward (exact discrete adjoint) "
        "passes of the Runge-Kutta network of TABLEAU. The module imports numpy, numba and the standard library (wide "
        "layers multiply through scipy's OpenBLAS, their large products through MKL where the process has it: "
        "RKGEN_BLAS=auto|openblas|mkl).",
    )
    p.add_argument("tableau", help="a JSON file or a built-in name")
    p.add_argument("-o", "--output", metavar="PATH", help="output file or directory (default ./<name>_net.py)")
    p.add_argument("--force", action="store_true", help="overwrite an existing file that differs")
    p.set_defaults(run=_run_generate)


def _run_generate(args) -> int:
    from .codegen import generate_file
    from .tableau import load

    tableau = load(args.tableau)
    result = generate_file(tableau, args.output, force=args.force)
    print(result.summary())
    return 0


def _add_derive(sub):
    p = sub.add_parser(
        "derive",
        help="write the derivation of the exact gradient for a tableau, step by step",
        description="Write a document deriving, for TABLEAU, the order conditions, symplecticity, the "
        "partner tableau and the stage-wise adjoint equations, with a numerical check.",
    )
    p.add_argument("tableau", help="a JSON file or a built-in name")
    p.add_argument(
        "--format",
        choices=("md", "tex", "pdf", "ipynb"),
        default=None,
        help="output format (default: from -o, else md); ipynb is a Jupyter notebook whose code cells recompute the "
        "document's numbers with rkgen",
    )
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="output file or folder; a file's suffix must fit the format (.md, .tex, .pdf, .ipynb; .json with "
        "--json); a Markdown file gets its drawings as SVG files in <stem>_figures/ beside it "
        "(default: Markdown/LaTeX to stdout, a PDF or notebook to ./<name>_derivation.pdf or .ipynb)",
    )
    p.add_argument(
        "--force", action="store_true", help="overwrite an existing file that differs (an existing PDF always needs it)"
    )
    p.add_argument("--json", action="store_true", help="print the equations as JSON instead")
    p.add_argument(
        "--params",
        choices=("shared", "stage", "continuous"),  # rkgen.adjoint.PARAMS; literal to keep sympy out of parsing
        default="shared",
        help="parameter layout: one (K, beta) per layer (shared, the default), one per stage (stage), or nodal "
        "values linear in t read at the stage times (continuous); adds section 6.5 and the layout in --json",
    )
    p.set_defaults(run=_run_derive)


def _run_derive(args) -> int:
    from .derive import run_derive

    return run_derive(args)


def _add_train(sub):
    try:
        from .train import cli as train_cli
    except ImportError:  # pragma: no cover - the trainer ships with the package
        return
    p = sub.add_parser(
        "train",
        help="train a Runge-Kutta network on the papers' problems, with plots",
        description="Train a network generated from any tableau (or the Net baseline) on a dataset.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    train_cli.add_arguments(p)
    p.set_defaults(run=train_cli.run)


def _add_run_command(sub, name: str, module, help: str):
    """A subcommand whose options and run live in a module of rkgen.train (add_arguments, run, DESCRIPTION)."""
    p = sub.add_parser(
        name, help=help, description=module.DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    module.add_arguments(p)
    p.set_defaults(run=module.run)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rkgen",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"rkgen {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    _add_check(sub)
    _add_list(sub)
    _add_generate(sub)
    _add_train(sub)
    from . import compare_cli
    from .train import evaluate_cli, predict_cli, sweep_cli

    _add_run_command(sub, "sweep", sweep_cli, "run a grid of training runs from a TOML spec, resumable, in parallel")

    _add_run_command(sub, "predict", predict_cli, "predict the classes of new points with a trained run")
    _add_run_command(
        sub, "evaluate", evaluate_cli, "re-evaluate a continuous-layout run with other tableaux or finer grids"
    )
    _add_derive(sub)
    from . import plot_cli

    _add_run_command(sub, "plot", plot_cli, "draw the stability region or the order star of a tableau")
    _add_run_command(sub, "compare-adjoints", compare_cli, "the two roads to the gradient, measured for a tableau")
    return parser


class _Stdout:
    """sys.stdout for the length of a command: a failed write (a full disk, a closed pipe's EIO) becomes one line
    instead of a traceback; the results of a command are never lost without saying so."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            raise RkgenError(f"stdout: cannot write: {getattr(exc, 'strerror', None) or exc}") from None

    def flush(self):
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except (OSError, ValueError) as exc:
            raise RkgenError(f"stdout: cannot write: {getattr(exc, 'strerror', None) or exc}") from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "generate")  # 'rkgen tableau.json'
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:  # named by the command's own parser, which points at its own --help
        command = parser._subparsers._group_actions[0].choices.get(getattr(args, "command", None) or "", parser)
        command.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    if sys.stdout is None:
        print("rkgen: error: stdout is closed; redirect it to a file or to /dev/null", file=sys.stderr)
        return 2
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)
    try:
        code = int(args.run(args) or 0)
        sys.stdout.flush()
        return code
    except RkgenError as exc:
        print(f"rkgen: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("rkgen: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _quiet_stdout()
        return 0
    finally:
        sys.stdout = stdout


def _quiet_stdout() -> None:
    """After a closed pipe (``rkgen list | head``): point stdout at /dev/null so the interpreter's last flush is
    silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
