"""Benning et al., IFAC 2021 (001), Fig. 2: an implicit symplectic network (the implicit midpoint
rule) against ResNet (explicit Euler), 5 layers, constant step h = 0.1 (so T = 0.5), 5000
iterations of gradient descent with backtracking; the gradients come from the generated adjoint
formulas (001 Proposition 1), not from differentiating the Newton iterations of the stage solves.

What 001 states is used as stated (5 layers, h = 0.1, 5000 iterations, gradient descent with
backtracking, tanh, sigmoid classifier with the squared cost). The rest is a choice:

- data: 001 does not name the data set of its Fig. 2. Its authors' own sets are used
  (benning-donut1d, -donut2d, -spiral, -squares, drawn as their code for 000 draws them, within
  about [-1, 1]^2): a flow of T = 0.5 with tanh moves each coordinate of a point by at most 0.5,
  which is enough on that scale (on 004's sets, spanning +-4, neither network learns anything). The full run trains
  on all four; fig2_donut2d is the figure shown as 001 Fig. 2 (donut2d is the set of 000 Figs. 5
  and 11, whose separation needs the flow to move one class out of the other).
- sizes: those of the authors' section 5.2 code (000 Figs. 6-7): 500 training points for donut1d,
  1000 for the others, a test set of the same size.
- backtracking and initialisation: those of the authors' section 5.2 code, the only code of
  theirs with a backtracking of this kind: L0 = 0.1, L <- 1.5 L on a rejected trial, L <- 0.99 L
  on an accepted one, at most 200 trials; K ~ N(0, 1), beta = 0 (init="normal"); the cost
  1/(2m) sum of squares (reduction="mean", the code's factor 1/m); W ~ N(0, 1) and mu = 0 (the
  line W = [10, 10] there is commented out).

001 reports no numbers, only the pictures of Fig. 2 (features at t = 0 and t = 0.5 for both
networks), and sums up the RK networks as performing "rather similarly". The verdict tests that:
per data set, the two networks' test accuracies must lie within 3 points to agree, within 6 to be
close; otherwise they differ.

    python examples/ifac2021_implicit_midpoint.py            # 4 data sets x 2 networks x 5000 iterations
    python examples/ifac2021_implicit_midpoint.py --quick    # the same with 1500 iterations

Figures: fig2_<dataset> (features at t = 0 and t = 0.5 for both networks, as 001 Fig. 2), loss.
"""

from __future__ import annotations

import time

import _common
import numpy as np
from matplotlib.figure import Figure

from rkgen.train import plots, train

METHODS = (("implicit midpoint", "midpoint"), ("ResNet (Euler)", "euler"))
DATASETS = ("benning-donut2d", "benning-donut1d", "benning-spiral", "benning-squares")
#: training points of the authors' section 5.2 code (the test set is of the same size)
SIZES = {"benning-donut1d": 500}
#: the verdict's tolerances: test accuracy of the two networks, in points
AGREE, CLOSE = 3.0, 6.0


def main(argv=None) -> int:
    p = _common.parser(__doc__, "1500 iterations instead of 5000")
    p.add_argument("--iterations", type=int, help="override the number of iterations")
    p.add_argument(
        "--datasets", nargs="+", choices=DATASETS, default=list(DATASETS), help="data sets (default: all four)"
    )
    p.add_argument("--samples", type=int, help="training points (default: 500 for donut1d, 1000 for the others)")
    args = p.parse_args(argv)
    its = args.iterations or (1500 if args.quick else 5000)
    out = _common.out_dir("ifac2021-implicit-midpoint", args.out)
    results = _common.Results(
        out / "results.csv",
        [
            "dataset",
            "method",
            "tableau",
            "train_loss",
            "test_loss",
            "train_accuracy",
            "test_accuracy",
            "seconds",
            "status",
            "message",
        ],
    )
    t0 = time.perf_counter()
    runs = {}
    for ds in args.datasets:
        for label, tab in METHODS:
            print(f"{ds}: {label} ({its} iterations)", flush=True)
            res = train(
                tableau=tab,
                model="rk",
                dataset=ds,
                samples=args.samples or SIZES.get(ds, 1000),
                layers=5,
                width=2,
                step=0.1,
                init="normal",
                **_common.STEP_RULE_52,
                iterations=its,
                eval_every=max(1, its // 100),
                seed=args.seed,
                out=str(out / f"{ds}-{tab}"),
                plots=False,
                progress=args.progress,
            )
            runs[ds, label] = res
            results.add(
                dataset=ds,
                method=label,
                tableau=tab,
                **_common.finals(res),
                seconds=res.seconds,
                status=res.status,
                message=res.message,
            )
    train_seconds = time.perf_counter() - t0
    moved = figures(out, runs, args.datasets)
    text = summary(results.rows, args.datasets, its, moved, train_seconds, time.perf_counter() - t0)
    _common.report(out, text)
    return 0


def short(ds: str) -> str:
    return ds.removeprefix("benning-")


def figures(out, runs, datasets) -> dict:
    """fig2_<dataset> and the loss curves; returns, per run, the mean and largest distance a training
    point moves from t = 0 to t = 0.5 (what the pictures show, as numbers)."""
    moved = {}
    for ds in datasets:
        fig = Figure(figsize=(7, 7), layout="constrained")
        for sub, (label, _) in zip(fig.subfigures(2, 1), METHODS, strict=True):
            r = runs[ds, label]
            axes = plots.draw_layers(
                sub, r.model, r.flat, r.dataset.x_train, r.dataset.c_train, layers=[0, 5], title=label
            )
            axes[0].set_title("t = 0")
            axes[1].set_title("t = 0.5")
            states = r.model.states(r.flat, r.dataset.x_train)
            dist = np.linalg.norm(states[-1] - states[0], axis=1)
            moved[ds, label] = (float(dist.mean()), float(dist.max()))
        fig.suptitle(f"{short(ds)}: 5 layers, h = 0.1")
        plots.save(fig, out / f"fig2_{short(ds)}")
    n = len(datasets)
    fig = Figure(figsize=(9, 3.4 * n), layout="constrained")
    axes = fig.subplots(n, 2, squeeze=False)
    for (a1, a2), ds in zip(axes, datasets, strict=True):
        for label, _ in METHODS:
            plots.draw_history(a1, a2, runs[ds, label].history, label=label, loss_name="J = 1/(2m) sum of squares")
        a1.set_title(short(ds))
        a2.set_title(short(ds))
    axes[0, 0].legend()
    fig.suptitle("train solid, test dashed")
    plots.save(fig, out / "loss")
    return moved


def verdict(gap: float) -> str:
    return "agrees" if gap <= AGREE else "close" if gap <= CLOSE else "differs"


def summary(rows, datasets, its, moved, train_seconds, total) -> str:
    body = [
        [
            short(r["dataset"]),
            r["method"],
            f"{r['train_loss']:.4f}",
            f"{100 * r['train_accuracy']:.1f}",
            f"{100 * r['test_accuracy']:.1f}",
            "{:.3f} / {:.3f}".format(*moved[r["dataset"], r["method"]]),
            f"{r['seconds']:.1f}",
            r["status"],
        ]
        for r in rows
    ]
    checks = []
    for ds in datasets:
        acc = {r["method"]: 100 * r["test_accuracy"] for r in rows if r["dataset"] == ds}
        gap = abs(acc[METHODS[0][0]] - acc[METHODS[1][0]])
        checks.append(
            [
                short(ds),
                "RK networks perform rather similarly (pictures only)",
                f"test {acc[METHODS[0][0]]:.1f}% (midpoint) vs {acc[METHODS[1][0]]:.1f}% (Euler): {gap:.1f} points",
                verdict(gap),
            ]
        )
    return "\n".join(
        [
            f"001 Fig. 2: 000's data sets, 5 layers, h = 0.1 (T = 0.5), {its} iterations of gd-backtracking "
            "(L0 0.1, up 1.5, down 0.99, 200 trials), init normal",
            f"training {train_seconds:.0f} s, {total:.0f} s in all",
            "",
            _common.table(
                ["dataset", "method", "J train", "train %", "test %", "moved mean / max", "s", "status"], body
            ),
            "",
            "moved: how far a training point travels from t = 0 to t = 0.5, |y_5 - y_0| (tanh bounds each",
            "coordinate's move by 0.5, so the distance by 0.71).",
            f"Verdict from the gap in test accuracy: agrees <= {AGREE:g} points, close <= {CLOSE:g}, else differs.",
            _common.table(["dataset", "001 reports", "rkgen", "verdict"], checks),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
