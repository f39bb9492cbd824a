"""``rkgen train``: the command line of the trainer.

The lead's rkgen/cli.py hooks it in as a subcommand through ``add_arguments(parser)`` and
``run(args)``; ``python -m rkgen.train.cli`` runs it alone. Every option defaults to None here and
is filled in from TrainConfig, so that --resume can tell which options were given.
"""

from __future__ import annotations

import argparse
import sys

from rkgen.errors import RkgenError
from rkgen.train.config import DEFAULT_TABLEAU, DEFAULTS, TrainConfig
from rkgen.train.datasets import dataset_names
from rkgen.train.models import ACTIVATIONS, AUGMENTS, DTYPES, FIELDS, INITS, KINDS, PARAMS, REDUCTIONS
from rkgen.train.optimizers import OPTIMIZERS

EXIT_OK, EXIT_DIVERGED, EXIT_INTERRUPTED = 0, 1, 130
#: a run stopped by a signal exits as a shell reports a process killed by it: 128 + the signal
#: number (130 for Ctrl-C/SIGINT, 143 for SIGTERM), after saving everything
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}

DESCRIPTION = """\
Train a Runge-Kutta network (or the plain Net baseline) on a point-classification data set.

example:
  rkgen train --tableau rk4 --dataset spiral --layers 15 --width 2 \\
      --optimizer gd-backtracking --iterations 10000 --seed 1 --out runs/spiral-rk4

It writes config.json, dataset.npz, history.csv, params.npz, state.npz, summary.json and the plots
(PNG and PDF) into the run folder. Ctrl-C or SIGTERM (timeout, SLURM, docker stop) stops cleanly
after a checkpoint, with exit status 130 or 143; --resume DIR continues a run exactly. Exit status
0: completed (or stalled), 1: diverged, 2: bad input.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the trainer's options. Defaults stay out of the namespace (argparse.SUPPRESS), so run()
    sees exactly what was given, and the help texts state the real defaults themselves."""
    before = len(parser._actions)
    _add(parser)
    for action in parser._actions[before:]:
        action.default = argparse.SUPPRESS


def _add(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    g = parser.add_argument_group("model")
    g.add_argument(
        "--tableau",
        metavar="SPEC",
        help=f"built-in tableau name, JSON tableau file or generated *_net.py (default "
        f"{DEFAULT_TABLEAU}; --model net has none). A name or JSON file compiles rkgen's own copy "
        "under the user cache (its path is printed); a *_net.py written by 'rkgen generate' is "
        "used as it is",
    )
    g.add_argument(
        "--model",
        choices=KINDS,
        help="rk: fixed equal steps T/N (ResNet with --tableau euler); odenet: learned "
        "steps; odenet-simplex: learned steps with h >= 0, sum h = T; net: "
        f"y <- sigma(K y + beta) (default {d.model})",
    )
    g.add_argument("--layers", type=int, metavar="N", help=f"number of layers (default {d.layers})")
    g.add_argument(
        "--width",
        type=int,
        metavar="D_HAT",
        help="network width; inputs are padded with zeros (default: the data dimension)",
    )
    g.add_argument(
        "--field",
        choices=FIELDS,
        help=f"resnet: sigma(K y + beta); stable: -K^T sigma(K y + beta) (default {DEFAULTS['field']})",
    )
    g.add_argument("--activation", choices=ACTIVATIONS, help=f"(default {d.activation})")
    g.add_argument(
        "--params",
        choices=PARAMS,
        help="the parameter layout: shared: one (K_j, beta_j) per layer, for all its stages; stage: one "
        "per stage of every layer; continuous: values at the node times j T/N (fixed), interpolated "
        "linearly at each stage's time t_j + c_i h_j, a network at any step size (see 'rkgen "
        f"evaluate'); --model net: shared only (default {d.params})",
    )
    t = g.add_mutually_exclusive_group()
    t.add_argument(
        "--final-time",
        type=float,
        metavar="T",
        help="total time; each step starts at T/N (default 5: the built-in sets span about +-4)",
    )
    t.add_argument("--step", type=float, metavar="H", help="step per layer, so T = N*H (004: 0.05)")
    g.add_argument(
        "--loss",
        choices=("auto", "squared", "cross-entropy"),
        help="squared: sigmoid + squared error, one output (000); cross-entropy: softmax "
        "(004); auto: squared for two classes, else cross-entropy (default auto)",
    )
    g.add_argument(
        "--fix-classifier",
        action="store_true",
        default=None,
        help="keep W and mu at their initial values (000 Fig. 4)",
    )
    g.add_argument(
        "--init",
        choices=INITS,
        help="uniform: K, beta, W, mu uniform on [-S/sqrt(D_HAT), S/sqrt(D_HAT)] (PyTorch's default, 004); "
        "normal: K, W ~ N(0, S^2), beta = mu = 0 (000 section 5.2); normal-bias: K, beta, W ~ N(0, S^2), "
        f"mu ~ U(0, 1) (000 section 5.3) (default {d.init})",
    )
    g.add_argument(
        "--init-scale",
        type=float,
        metavar="S",
        help="the scale S of --init (default 1)",
    )
    g.add_argument(
        "--augment",
        choices=AUGMENTS,
        help="how inputs enter the width D_HAT: zeros pads them with zeros; random maps them by a fixed, "
        "untrained random matrix, uniform on [-1/sqrt(d), 1/sqrt(d)] (004's published default) "
        f"(default {d.augment})",
    )
    g.add_argument(
        "--reduction",
        choices=REDUCTIONS,
        help="the cost over the samples: mean (1/m sum) or sum (000 section 5.3) (default mean)",
    )

    g = parser.add_argument_group("data")
    g.add_argument(
        "--dataset",
        metavar="NAME|FILE",
        help=f"one of {', '.join(dataset_names())}, or a .csv/.npz file (default {d.dataset})",
    )
    g.add_argument(
        "--samples",
        type=int,
        metavar="M",
        help="training points (default: 500 donut1d, 1000 donut2d/squares/spiral, 1500 "
        "the multiclass sets, 100 digits08)",
    )
    g.add_argument("--test-samples", type=int, metavar="M", help="test points (default: --samples)")
    g.add_argument(
        "--data-scale",
        type=float,
        metavar="S",
        help="multiply every input point by S (default 1). A flow of final time T with tanh moves a "
        "point by at most T, so data much wider than T cannot be reshaped much",
    )
    g.add_argument(
        "--label-column",
        type=int,
        metavar="I",
        help="CSV column of the label (default -1, the last); files only",
    )
    g.add_argument(
        "--test-fraction",
        type=float,
        metavar="F",
        help="share of a file's rows held out for testing when it has no test set (default 0.5)",
    )

    g = parser.add_argument_group("optimisation")
    g.add_argument(
        "--optimizer",
        choices=OPTIMIZERS,
        help="gd-backtracking: 000 Algorithm 2; gd-armijo: Armijo halving on the step (000 section 5.3); "
        f"gd: Algorithm 1; adam: mini-batches (004) (default {d.optimizer})",
    )
    g.add_argument(
        "--iterations",
        type=int,
        metavar="K",
        help="iterations of gd / gd-backtracking / gd-armijo (default 1000)",
    )
    g.add_argument("--epochs", type=int, metavar="E", help="epochs of adam (default 40)")
    g.add_argument(
        "--lr", type=float, help="learning rate of gd (default 0.1) and adam (1e-3); gd-armijo's first step (0.05)"
    )
    g.add_argument("--batch-size", type=int, metavar="B", help=f"adam (default {DEFAULTS['batch_size']})")
    g.add_argument(
        "--lipschitz",
        type=float,
        metavar="L",
        help=f"backtracking: initial L, the first step is 1/L (default {DEFAULTS['lipschitz']})",
    )
    g.add_argument(
        "--rho-up",
        type=float,
        help=f"backtracking: L <- rho_up L on rejection (default {DEFAULTS['rho_up']})",
    )
    g.add_argument(
        "--rho-down",
        type=float,
        help=f"backtracking: L <- rho_down L on acceptance (default {DEFAULTS['rho_down']})",
    )
    g.add_argument(
        "--max-trials",
        type=int,
        help=f"backtracking and gd-armijo: rejections before giving up (default {DEFAULTS['max_trials']})",
    )
    g.add_argument("--seed", type=int, help=f"seeds data, initialisation and shuffling (default {d.seed})")

    g = parser.add_argument_group("output")
    g.add_argument(
        "--out",
        metavar="DIR",
        help="run folder, created new (default runs/<dataset>-<tableau>-<model>-<time>-<random suffix>)",
    )
    g.add_argument(
        "--resume",
        metavar="DIR",
        help="continue the run in DIR from its last checkpoint (with --iterations or --epochs: extend it)",
    )
    g.add_argument(
        "--eval-every",
        type=int,
        metavar="K",
        help="evaluate train and test sets every K iterations (gd) or epochs (adam) (default 10 / 1)",
    )
    g.add_argument(
        "--checkpoint-seconds",
        type=float,
        metavar="S",
        help=f"save parameters and state at most this often (default "
        f"{d.checkpoint_seconds:g}); always at the end and on Ctrl-C",
    )
    g.add_argument("--no-plots", dest="plots", action="store_false", default=None, help="do not draw the plots")
    g.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show the progress bar (default: when stderr is a terminal)",
    )
    g.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="threads of the compiled kernels (numba) and of numpy's BLAS (default: every core)",
    )
    g.add_argument(
        "--dtype",
        choices=DTYPES,
        help="the arithmetic of the run: data, parameters, network, loss gradient and optimiser state. float32 "
        "halves the tape's memory and helps wide layers (width >= 17, whose stage products go through BLAS): "
        "a gradient at widths 64 and 256 took about half the time of float64's on an AVX2 machine. It costs "
        "accuracy: every result is rounded to float32 (about 6e-8 relative), gradients agree with float64 "
        "ones to ~1e-6, and a long run drifts from the float64 run of the same seed. A resumed run keeps its "
        f"dtype (default {d.dtype})",
    )


_KEYS = (
    "tableau",
    "model",
    "layers",
    "width",
    "field",
    "activation",
    "params",
    "final_time",
    "step",
    "loss",
    "fix_classifier",
    "init_scale",
    "init",
    "augment",
    "reduction",
    "dataset",
    "samples",
    "test_samples",
    "label_column",
    "test_fraction",
    "data_scale",
    "optimizer",
    "iterations",
    "epochs",
    "lr",
    "batch_size",
    "lipschitz",
    "rho_up",
    "rho_down",
    "max_trials",
    "seed",
    "out",
    "eval_every",
    "checkpoint_seconds",
    "plots",
    "progress",
    "threads",
    "dtype",
)


def run(args: argparse.Namespace) -> int:
    """Train as the options say; 0 when done, 1 when training diverged, 130 when interrupted."""
    from rkgen.train.trainer import Interrupted, summary_line, train

    given = {k: getattr(args, k) for k in _KEYS if getattr(args, k, None) is not None}
    try:
        if getattr(args, "resume", None):
            res = train(resume=args.resume, **given)
        else:
            res = train(TrainConfig(**given))
    except Interrupted as e:  # a second signal: stopped at once, the last checkpoint remains
        print(f"rkgen: stopped at once by {e.name} (a second signal); the last checkpoint remains", file=sys.stderr)
        return 128 + int(e.signum)
    print(summary_line(res))
    if res.status == "diverged":
        print(f"rkgen: error: {res.message}", file=sys.stderr)
        return EXIT_DIVERGED
    if res.signal:  # interrupted, or finished with its plots cut short: the user asked to stop
        return EXIT_SIGNAL.get(res.signal, EXIT_INTERRUPTED)
    return EXIT_OK


def standalone(prog: str, description: str, add, run_command, argv=None) -> int:
    """A subcommand run on its own (``python -m rkgen.train.cli``, ``.predict_cli``, ``.evaluate_cli``), with
    rkgen's one-line errors."""
    parser = argparse.ArgumentParser(
        prog=prog, description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add(parser)
    args = parser.parse_args(argv)
    try:
        return run_command(args)
    except RkgenError as e:
        print(f"rkgen: error: {e}", file=sys.stderr)
        return 2


def main(argv=None) -> int:
    return standalone("rkgen train", DESCRIPTION, add_arguments, run, argv)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
