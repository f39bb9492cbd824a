"""Benning et al., IFAC 2021 (001), Fig. 2: an implicit symplectic network (the implicit midpoint
rule) against ResNet (explicit Euler), 5 layers, constant step h = 0.1 (so T = 0.5), 5000
iterations of gradient descent with backtracking; the gradients come from the generated adjoint
formulas (001 Proposition 1), not from differentiating the Newton iterations of the stage solves.

001 does not name the data set of its Fig. 2, nor its scale; this example uses donut2d scaled by
1/4 (--dataset and --data-scale change them). Why the scale: with tanh, a flow of final time T moves
a point by at most T, here 0.5, while 000's data span about +-4. At scale 1 neither network learns
anything (both stay at the majority class, 62.5% test). Scales 0.5, 0.3, 0.25, 0.2 and 0.125 were
tried with ResNet (5000 iterations): 0.2-0.25 learn donut2d best (about 89% test), 0.125 is again
stuck.

    python examples/ifac2021_implicit_midpoint.py            # 5000 iterations each
    python examples/ifac2021_implicit_midpoint.py --quick    # 2000 iterations each (learning starts near 1500)

Figures: fig2_dynamics (features at t = 0 and t = 0.5 for both networks, as 001 Fig. 2), loss.
"""

from __future__ import annotations

import time

import _common
from matplotlib.figure import Figure

from rkgen.train import plots, train

METHODS = (("implicit midpoint", "midpoint"), ("ResNet (Euler)", "euler"))


def main(argv=None) -> int:
    p = _common.parser(__doc__, "2000 iterations instead of 5000")
    p.add_argument("--iterations", type=int, help="override the number of iterations")
    p.add_argument("--dataset", default="donut2d", help="data set (default donut2d)")
    p.add_argument(
        "--data-scale",
        type=float,
        default=0.25,
        help="multiply the data by this (default 0.25: a flow with T = 0.5 moves points by <= 0.5)",
    )
    args = p.parse_args(argv)
    its = args.iterations or (2000 if args.quick else 5000)
    out = _common.out_dir("ifac2021-implicit-midpoint", args.out)
    results = _common.Results(
        out / "results.csv",
        [
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
    for label, tab in METHODS:
        print(f"{label} ({its} iterations)", flush=True)
        res = train(
            tableau=tab,
            model="rk",
            dataset=args.dataset,
            data_scale=args.data_scale,
            layers=5,
            width=2,
            step=0.1,
            iterations=its,
            eval_every=max(1, its // 100),
            seed=args.seed,
            out=str(out / tab),
            progress=args.progress,
        )
        runs[label] = res
        results.add(
            method=label,
            tableau=tab,
            train_loss=res.final("train_loss"),
            test_loss=res.final("test_loss"),
            train_accuracy=res.final("train_accuracy"),
            test_accuracy=res.final("test_accuracy"),
            seconds=res.seconds,
            status=res.status,
            message=res.message,
        )
    fig = Figure(figsize=(7, 7), layout="constrained")
    for sub, (label, _) in zip(fig.subfigures(2, 1), METHODS, strict=True):
        r = runs[label]
        axes = plots.draw_layers(
            sub, r.model, r.flat, r.dataset.x_train, r.dataset.c_train, layers=[0, 5], title=label
        )
        axes[0].set_title("t = 0")
        axes[1].set_title("t = 0.5")
    plots.save(fig, out / "fig2_dynamics")
    fig = Figure(figsize=(9, 3.6), layout="constrained")
    a1, a2 = fig.subplots(1, 2)
    for label, _ in METHODS:
        plots.draw_history(a1, a2, runs[label].history, label=label)
    a1.legend()
    plots.save(fig, out / "loss")
    rows = results.rows
    body = [
        [
            r["method"],
            f"{r['train_loss']:.4f}",
            f"{100 * r['train_accuracy']:.1f}",
            f"{100 * r['test_accuracy']:.1f}",
            f"{r['seconds']:.0f}",
            r["status"],
        ]
        for r in rows
    ]
    text = "\n".join(
        [
            f"001 Fig. 2: {args.dataset} scaled by {args.data_scale:g}, 5 layers, h = 0.1, {its} iterations "
            "of gd-backtracking; "
            f"{time.perf_counter() - t0:.0f} s in all",
            "",
            _common.table(["method", "loss", "train %", "test %", "s", "status"], body),
            "",
            "001 reports no numbers for this experiment, only the pictures of Fig. 2 (features",
            "at t = 0 and t = 0.5); it notes that different RK networks behave rather similarly.",
            f"rkgen: the test accuracies differ by "
            f"{100 * abs(rows[0]['test_accuracy'] - rows[1]['test_accuracy']):.1f} points; "
            "see fig2_dynamics for the pictures.",
        ]
    )
    _common.report(out, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
