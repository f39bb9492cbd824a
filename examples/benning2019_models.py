"""Benning et al. 2019 (000), section 5.2: Net, ResNet, ODENet and ODENet+simplex, 20 layers, on the
four data sets donut1d, donut2d, spiral and squares.

Setting, as in 000: width 2 (no augmentation), tanh, sigmoid hypothesis with squared error, gradient
descent with backtracking (Algorithm 2), 10000 iterations (000 Fig. 13), the Euler tableau for the
three ODE networks. 000 does not state the final time; rkgen uses T = 5 (the data span about +-4),
so ResNet steps are h = T/20 and ODENet+simplex keeps sum h = T. How many steps ODENet+simplex keeps
depends on T: at T = 5 about 8 of 20, at T = 3 two to four (000: two to three), at T = 20 all of them
(docs/training.md); --final-time changes it.

    python examples/benning2019_models.py            # 16 runs of 10000 iterations
    python examples/benning2019_models.py --quick    # 16 runs of 500 iterations

Figures (PNG and PDF) in the output folder: fig1_datasets, fig2_<dataset> (prediction above,
features with the linear classifier below), fig3_spiral_layers (features layer by layer), fig6_loss
and fig7_accuracy (train solid, test dashed), fig8_steps; results.csv and summary.txt hold the
numbers.
"""

from __future__ import annotations

import time

import _common
import numpy as np
from matplotlib.figure import Figure

from rkgen.train import plots, train

DATASETS = ("donut1d", "donut2d", "spiral", "squares")
MODELS = (
    ("Net", "net"),
    ("ResNet", "rk"),
    ("ODENet", "odenet"),
    ("ODENet+simplex", "odenet-simplex"),
)
COLORS = {"Net": "#7f7f7f", "ResNet": "#1f77b4", "ODENet": "#d62728", "ODENet+simplex": "#2ca02c"}


def main(argv=None) -> int:
    p = _common.parser(__doc__, "500 iterations instead of 10000")
    p.add_argument("--iterations", type=int, help="override the number of iterations")
    p.add_argument("--final-time", type=float, default=5.0, help="T (default 5)")
    p.add_argument("--tableau", default="euler", help="tableau of the ODE networks (default euler)")
    args = p.parse_args(argv)
    its = args.iterations or (500 if args.quick else 10000)
    out = _common.out_dir("benning2019-models", args.out)
    results = _common.Results(
        out / "results.csv",
        [
            "dataset",
            "model",
            "train_loss",
            "test_loss",
            "train_accuracy",
            "test_accuracy",
            "nonzero_steps",
            "negative_steps",
            "loss_at_10pct",
            "seconds",
            "status",
        ],
    )
    t0 = time.perf_counter()
    runs = {}
    for ds in DATASETS:
        for label, kind in MODELS:
            print(f"{ds}: {label} ({its} iterations)", flush=True)
            res = train(
                tableau=None if kind == "net" else args.tableau,
                model=kind,
                dataset=ds,
                layers=20,
                width=2,
                final_time=None if kind == "net" else args.final_time,
                iterations=its,
                eval_every=max(1, its // 100),
                seed=args.seed,
                out=str(out / f"{ds}-{kind}"),
                progress=args.progress,
            )
            runs[ds, label] = res
            h = res.params.get("h")
            hist = res.history
            k10 = int(np.searchsorted(hist["iteration"], its // 10))
            results.add(
                dataset=ds,
                model=label,
                train_loss=res.final("train_loss"),
                test_loss=res.final("test_loss"),
                train_accuracy=res.final("train_accuracy"),
                test_accuracy=res.final("test_accuracy"),
                nonzero_steps="" if h is None else int(np.count_nonzero(h)),
                negative_steps="" if h is None else int(np.sum(h < 0)),
                loss_at_10pct=float(hist["train_loss"][min(k10, len(hist["train_loss"]) - 1)]),
                seconds=res.seconds,
                status=res.status,
            )
    figures(out, runs)
    total = time.perf_counter() - t0
    _common.report(out, summary(results.rows, its, total))
    return 0


def figures(out, runs):
    datasets = [runs[ds, "Net"].dataset for ds in DATASETS]
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    for ax, ds in zip(fig.subplots(1, 4), datasets, strict=True):
        plots.draw_dataset(ax, ds)
    plots.save(fig, out / "fig1_datasets")

    for ds in DATASETS:
        fig = Figure(figsize=(13, 6.4), layout="constrained")
        axes = fig.subplots(2, 4)
        for j, (label, _) in enumerate(MODELS):
            r = runs[ds, label]
            plots.draw_prediction(axes[0, j], r.model, r.flat, r.dataset, title=label)
            y = r.model.forward(r.flat, r.dataset.x_train).y_final
            plots.draw_features(
                axes[1, j], r.model, r.flat, y, r.dataset.c_train, title="transformed"
            )
        fig.suptitle(f"{ds}: prediction (top), features y_N and linear classifier (bottom)")
        plots.save(fig, out / f"fig2_{ds}")

    fig = Figure(figsize=(12, 12), layout="constrained")
    for sub, (label, _) in zip(fig.subfigures(4, 1), MODELS, strict=True):
        r = runs["spiral", label]
        plots.draw_layers(sub, r.model, r.flat, r.dataset.x_train, r.dataset.c_train, title=label)
    plots.save(fig, out / "fig3_spiral_layers")

    floss = Figure(figsize=(10, 7), layout="constrained")
    facc = Figure(figsize=(10, 7), layout="constrained")
    for al, aa, ds in zip(
        floss.subplots(2, 2).ravel(), facc.subplots(2, 2).ravel(), DATASETS, strict=True
    ):
        for label, _ in MODELS:
            plots.draw_history(al, aa, runs[ds, label].history, label=label, color=COLORS[label])
        al.set_title(ds)
        aa.set_title(ds)
    for f, name in ((floss, "fig6_loss"), (facc, "fig7_accuracy")):
        f.axes[0].legend()
        f.suptitle("train solid, test dashed")
        plots.save(f, out / name)

    fig = Figure(figsize=(10, 7), layout="constrained")
    for ax, ds in zip(fig.subplots(2, 2).ravel(), DATASETS, strict=True):
        for k, (label, _) in enumerate(MODELS[1:]):
            plots.draw_steps(
                ax,
                runs[ds, label].params["h"],
                label=label,
                offset=(k - 1) * 0.27,
                width=0.27,
                color=COLORS[label],
            )
        ax.set_title(ds)
    fig.axes[0].legend()
    plots.save(fig, out / "fig8_steps")


def summary(rows, its, total) -> str:
    by = {(r["dataset"], r["model"]): r for r in rows}
    lines = [
        f"000 section 5.2, {its} iterations of gd-backtracking, 20 layers; {total:.0f} s in all",
        "",
    ]
    body = []
    for r in rows:
        body.append(
            [
                r["dataset"],
                r["model"],
                f"{r['train_loss']:.4f}",
                f"{100 * r['train_accuracy']:.1f}",
                f"{100 * r['test_accuracy']:.1f}",
                r["nonzero_steps"],
                r["negative_steps"],
                f"{r['seconds']:.0f}",
            ]
        )
    lines.append(
        _common.table(
            ["dataset", "model", "loss", "train %", "test %", "h != 0", "h < 0", "s"], body
        )
    )
    lines += ["", "The paper's findings beside ours:"]
    checks = []
    for ds in DATASETS:
        net = by[ds, "Net"]["test_accuracy"]
        ode = min(by[ds, m]["test_accuracy"] for m in ("ResNet", "ODENet", "ODENet+simplex"))
        checks.append(
            [
                ds,
                "Net trails the three ODE networks (Fig. 6, 7)",
                f"Net {100 * net:.1f}% vs worst ODE net {100 * ode:.1f}%",
                "agree" if net < ode else "differ",
            ]
        )
        nz = by[ds, "ODENet+simplex"]["nonzero_steps"]
        checks.append(
            [
                ds,
                "ODENet+simplex keeps 2-3 of 20 steps nonzero (Fig. 8)",
                f"{nz} nonzero",
                "agree" if 2 <= nz <= 3 else ("close" if nz <= 5 else "differ"),
            ]
        )
        neg = by[ds, "ODENet"]["negative_steps"]
        checks.append(
            [
                ds,
                "ODENet learns negative as well as positive steps (Fig. 8)",
                f"{neg} negative",
                "agree" if neg > 0 else "differ",
            ]
        )
        fast = by[ds, "ODENet"]["loss_at_10pct"] < by[ds, "ResNet"]["loss_at_10pct"]
        checks.append(
            [
                ds,
                "ODENet is fastest at first (Fig. 6)",
                f"loss at 10%: ODENet {by[ds, 'ODENet']['loss_at_10pct']:.4f}, ResNet "
                f"{by[ds, 'ResNet']['loss_at_10pct']:.4f}",
                "agree" if fast else "differ",
            ]
        )
    lines.append(_common.table(["dataset", "000 reports", "rkgen", ""], checks))
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
