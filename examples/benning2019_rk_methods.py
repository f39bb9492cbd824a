"""Benning et al. 2019 (000), section 5.3: Runge-Kutta networks from four explicit tableaux
(Table 1 of 000): ResNet/Euler (euler), Improved Euler (heun2), Kutta(3) (kutta3) and Kutta(4)
(rk4), 15 layers, on donut1d, donut2d, spiral and squares.

Setting: width 2, tanh, sigmoid hypothesis with squared error, fixed equal steps h = T/15 with T = 5
(000 does not state T), gradient descent with backtracking, 10000 iterations (000 Fig. 13).

    python examples/benning2019_rk_methods.py            # 16 runs of 10000 iterations
    python examples/benning2019_rk_methods.py --quick    # 16 runs of 500 iterations

Figures: fig9_<dataset> (prediction above, transformed points below; 000 Fig. 9),
fig10-12_<dataset>_layers (layers 0, 5, 10, 15; 000 Fig. 10-12), fig13_loss (000 Fig. 13).
"""

from __future__ import annotations

import time

import _common
from matplotlib.figure import Figure

from rkgen.train import plots, train

DATASETS = ("donut1d", "donut2d", "spiral", "squares")
METHODS = (
    ("ResNet/Euler", "euler"),
    ("Improved Euler", "heun2"),
    ("Kutta(3)", "kutta3"),
    ("Kutta(4)", "rk4"),
)


def main(argv=None) -> int:
    p = _common.parser(__doc__, "500 iterations instead of 10000")
    p.add_argument("--iterations", type=int, help="override the number of iterations")
    p.add_argument("--final-time", type=float, default=5.0, help="T (default 5)")
    args = p.parse_args(argv)
    its = args.iterations or (500 if args.quick else 10000)
    out = _common.out_dir("benning2019-rk-methods", args.out)
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
        ],
    )
    t0 = time.perf_counter()
    runs = {}
    for ds in DATASETS:
        for label, tab in METHODS:
            print(f"{ds}: {label} ({its} iterations)", flush=True)
            res = train(
                tableau=tab,
                model="rk",
                dataset=ds,
                layers=15,
                width=2,
                final_time=args.final_time,
                iterations=its,
                eval_every=max(1, its // 100),
                seed=args.seed,
                out=str(out / f"{ds}-{tab}"),
                progress=args.progress,
            )
            runs[ds, label] = res
            results.add(
                dataset=ds,
                method=label,
                tableau=tab,
                train_loss=res.final("train_loss"),
                test_loss=res.final("test_loss"),
                train_accuracy=res.final("train_accuracy"),
                test_accuracy=res.final("test_accuracy"),
                seconds=res.seconds,
                status=res.status,
            )
    figures(out, runs)
    _common.report(out, summary(results.rows, its, time.perf_counter() - t0))
    return 0


def figures(out, runs):
    for ds in DATASETS:
        fig = Figure(figsize=(13, 6.4), layout="constrained")
        axes = fig.subplots(2, 4)
        for j, (label, _) in enumerate(METHODS):
            r = runs[ds, label]
            plots.draw_prediction(axes[0, j], r.model, r.flat, r.dataset, title=label)
            y = r.model.forward(r.flat, r.dataset.x_train).y_final
            plots.draw_features(
                axes[1, j], r.model, r.flat, y, r.dataset.c_train, title="transformed"
            )
        fig.suptitle(f"{ds}, 15 layers")
        plots.save(fig, out / f"fig9_{ds}")
        fig = Figure(figsize=(12, 12), layout="constrained")
        for sub, (label, _) in zip(fig.subfigures(4, 1), METHODS, strict=True):
            r = runs[ds, label]
            plots.draw_layers(
                sub,
                r.model,
                r.flat,
                r.dataset.x_train,
                r.dataset.c_train,
                layers=[0, 5, 10, 15],
                title=label,
            )
        plots.save(fig, out / f"fig10-12_{ds}_layers")
    floss = Figure(figsize=(10, 7), layout="constrained")
    facc = Figure(figsize=(10, 7), layout="constrained")
    for al, aa, ds in zip(
        floss.subplots(2, 2).ravel(), facc.subplots(2, 2).ravel(), DATASETS, strict=True
    ):
        for label, _ in METHODS:
            plots.draw_history(al, aa, runs[ds, label].history, label=label)
        al.set_title(ds)
        aa.set_title(ds)
    for f, name in ((floss, "fig13_loss"), (facc, "accuracy")):
        f.axes[0].legend()
        f.suptitle("train solid, test dashed")
        plots.save(f, out / name)


def summary(rows, its, total) -> str:
    lines = [
        f"000 section 5.3, {its} iterations of gd-backtracking, 15 layers; {total:.0f} s in all",
        "",
    ]
    body = [
        [
            r["dataset"],
            r["method"],
            f"{r['train_loss']:.4f}",
            f"{r['test_loss']:.4f}",
            f"{100 * r['train_accuracy']:.1f}",
            f"{100 * r['test_accuracy']:.1f}",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    lines.append(
        _common.table(["dataset", "method", "loss", "test loss", "train %", "test %", "s"], body)
    )
    lines += ["", "The paper's findings beside ours:"]
    checks = []
    for ds in DATASETS:
        acc = [r["test_accuracy"] for r in rows if r["dataset"] == ds]
        spread = 100 * (max(acc) - min(acc))
        checks.append(
            [
                ds,
                "the four methods perform rather similarly (000 Fig. 9, 13; 001)",
                f"test accuracy {100 * min(acc):.1f}-{100 * max(acc):.1f}% "
                f"(spread {spread:.1f} points)",
                "agree" if spread <= 5 else "differ",
            ]
        )
    lines.append(_common.table(["dataset", "000 reports", "rkgen", ""], checks))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
