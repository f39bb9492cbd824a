"""Benning et al. 2019 (000), section 5.2: Net, ResNet, ODENet and ODENet+simplex, 20 layers, on the
four data sets donut1d, donut2d, spiral and squares, in the setting of the authors' published code.

Setting (from the authors' code): the data sets benning-donut1d, benning-donut2d, benning-spiral and
benning-squares (500 training and 500 validation points within about [-1, 1]^2); width 2, tanh;
Net is y <- tanh(K y + beta); ResNet and ODENet start with steps h_j = 1/N (T = 1) and ODENet+simplex
keeps sum h = 1 (the Euler tableau for all three); K ~ N(0, 1), beta = 0, W ~ N(0, 1), mu = 0; the
squared error of the sigmoid hypothesis averaged over the points; gradient descent with
backtracking (000 Algorithm 2) from L0 = 0.1 with rho_up = 1.5, rho_down = 0.99 and at most 200
trials; 5000 (donut1d), 8000 (donut2d), 20000 (spiral) and 8000 (squares) iterations. Figure 5's
robustness check trains Net and ODENet on donut2d once more with the next seed.

    python examples/benning2019_models.py            # 18 runs, 000's iterations
    python examples/benning2019_models.py --quick    # a quarter of the iterations
    python examples/benning2019_models.py --data 004 --final-time 5   # 004's generators (+-4)

Figures (PNG and PDF) in the output folder: fig1_datasets, fig2_<dataset> (prediction above,
features y_N with the linear classifier below), fig3_spiral_layers (features layer by layer),
fig5_seeds (donut2d, two seeds), fig6_loss and fig7_accuracy (train solid, test dashed),
fig8_steps; results.csv and summary.txt hold the numbers, the verdicts and the rules behind them.
"""

from __future__ import annotations

import time

import _common
import numpy as np
from matplotlib.figure import Figure

from rkgen.train import plots, train

#: 000's data sets as its authors' code draws them, and the iterations their code runs
BENNING = {
    "benning-donut1d": 5000,
    "benning-donut2d": 8000,
    "benning-spiral": 20000,
    "benning-squares": 8000,
}
#: 004's generators (data over about +-4), for comparison (--data 004)
OLD = {"donut1d": 5000, "donut2d": 8000, "spiral": 20000, "squares": 8000}
MODELS = (
    ("Net", "net"),
    ("ResNet", "rk"),
    ("ODENet", "odenet"),
    ("ODENet+simplex", "odenet-simplex"),
)
COLORS = {"Net": "#7f7f7f", "ResNet": "#1f77b4", "ODENet": "#d62728", "ODENet+simplex": "#2ca02c"}
QUICK_SHARE = 4  # --quick runs a quarter of the iterations

# The rules of the verdicts (stated in the summary as well)
LEARN_MARGIN = 0.05  # Net "learns partly": test accuracy at least 5 points above the majority class
TRAIL_MARGIN = 0.01  # Net "trails": at least 1 point below the worst ODE network (close: within 1)
STRING_RATIO = 0.25  # features on a curve: median local s2/s1 below this; two-dimensional above
NEIGHBOURS = 10  # the local patches of the s2/s1 measure hold a tenth of the points
EARLY_SHARE = 10  # "fastest at first": train loss at 1/10 of the iterations
SEED_SPREAD = 0.03  # Fig. 5: the two seeds' test accuracies within 3 points


def local_ratio(y: np.ndarray) -> float:
    """The median over the points of s2/s1, the singular values of the coordinates of the point's
    m/NEIGHBOURS nearest neighbours about their mean: near 0 when the points lie on a curve (at the
    scale of a tenth of the cloud), about 0.7-0.8 for a two-dimensional cloud. A patch of identical
    points counts as 0 (a point is no plane)."""
    k = max(3, len(y) // NEIGHBOURS)
    d2 = np.sum((y[:, None, :] - y[None, :, :]) ** 2, axis=2)
    idx = np.argsort(d2, axis=1)[:, :k]
    patches = y[idx] - y[idx].mean(axis=1, keepdims=True)
    s = np.linalg.svd(patches, compute_uv=False)
    scale = np.ptp(y, axis=0).max() or 1.0
    ratio = np.where(s[:, 0] > 1e-9 * scale, s[:, 1] / np.maximum(s[:, 0], 1e-300), 0.0)
    return float(np.median(ratio))


def majority(c) -> float:
    share = float(np.mean(c))
    return max(share, 1.0 - share)


def main(argv=None) -> int:
    p = _common.parser(__doc__, "a quarter of 000's iterations (1250, 2000, 5000, 2000)")
    p.add_argument("--iterations", type=int, help="the same number of iterations for every data set")
    p.add_argument("--final-time", type=float, default=1.0, help="T of the ODE networks (default 1, h_j = T/20)")
    p.add_argument("--tableau", default="euler", help="tableau of the ODE networks (default euler)")
    p.add_argument(
        "--data",
        choices=("benning", "004"),
        default="benning",
        help="benning: 000's sets as its authors' code draws them (default); 004: 004's generators over +-4",
    )
    p.add_argument("--init", default="normal", help="initialisation (default normal: 000's authors' code)")
    args = p.parse_args(argv)
    sets = BENNING if args.data == "benning" else OLD
    iterations = {ds: args.iterations or (its // QUICK_SHARE if args.quick else its) for ds, its in sets.items()}
    out = _common.out_dir("benning2019-models", args.out)
    results = _common.Results(
        out / "results.csv",
        [
            "dataset",
            "model",
            "seed",
            "iterations",
            "train_loss",
            "test_loss",
            "train_accuracy",
            "test_accuracy",
            "majority",
            "nonzero_steps",
            "negative_steps",
            "steps",
            "early_loss",
            "local_ratio",
            "seconds",
            "status",
        ],
    )
    t0 = time.perf_counter()
    runs = {}
    jobs = [(ds, label, kind, args.seed) for ds in sets for label, kind in MODELS]
    donut2d = list(sets)[1]
    jobs += [(donut2d, label, kind, args.seed + 1) for label, kind in MODELS if label in ("Net", "ODENet")]
    for ds, label, kind, seed in jobs:
        its = iterations[ds]
        print(f"{ds}: {label}, seed {seed} ({its} iterations)", flush=True)
        res = train(
            tableau=None if kind == "net" else args.tableau,
            model=kind,
            dataset=ds,
            layers=20,
            width=2,
            final_time=None if kind == "net" else args.final_time,
            init=args.init,
            reduction="mean",
            iterations=its,
            eval_every=max(1, its // 200),
            seed=seed,
            out=str(out / "runs" / f"{ds}-{kind}-seed{seed}"),
            plots=False,
            progress=args.progress,
            **_common.STEP_RULE_52,
        )
        runs[ds, label, seed] = res
        h = res.params.get("h")
        hist = res.history
        k = min(int(np.searchsorted(hist["iteration"], its // EARLY_SHARE)), len(hist["train_loss"]) - 1)
        y = res.model.forward(res.flat, res.dataset.x_train).y_final
        results.add(
            dataset=ds,
            model=label,
            seed=seed,
            iterations=its,
            **_common.finals(res),
            majority=majority(res.dataset.c_test),
            nonzero_steps="" if h is None else int(np.count_nonzero(h)),
            negative_steps="" if h is None else int(np.sum(h < 0)),
            steps="" if h is None else " ".join(f"{v:.4g}" for v in h),
            early_loss=float(hist["train_loss"][k]),
            local_ratio=local_ratio(y),
            seconds=res.seconds,
            status=res.status,
        )
    train_seconds = time.perf_counter() - t0
    figures(out, runs, list(sets), args.seed)
    total = time.perf_counter() - t0
    _common.report(out, summary(results.rows, list(sets), args, iterations, train_seconds, total))
    return 0


def figures(out, runs, sets, seed):
    first = {ds: {label: runs[ds, label, seed] for label, _ in MODELS} for ds in sets}
    fig = Figure(figsize=(13, 3.4), layout="constrained")
    for ax, ds in zip(fig.subplots(1, 4), sets, strict=True):
        plots.draw_dataset(ax, first[ds]["Net"].dataset, title=ds, legend=ds == sets[0])
    plots.save(fig, out / "fig1_datasets")

    for ds in sets:
        fig = Figure(figsize=(14, 6.6), layout="constrained")
        axes = fig.subplots(2, 4)
        for j, (label, _) in enumerate(MODELS):
            r = first[ds][label]
            last = j == len(MODELS) - 1  # one colorbar per row
            plots.draw_prediction(axes[0, j], r.model, r.flat, r.dataset, title=label, colorbar=last)
            y = r.model.forward(r.flat, r.dataset.x_train).y_final
            plots.draw_features(
                axes[1, j], r.model, r.flat, y, r.dataset.c_train, title=f"{label}: transformed", colorbar=last
            )
        fig.suptitle(f"{ds}: prediction (top), features $y_N$ and linear classifier (bottom)")
        plots.save(fig, out / f"fig2_{ds}")

    spiral = sets[2]
    fig = Figure(figsize=(12, 12), layout="constrained")
    for sub, (label, _) in zip(fig.subfigures(4, 1), MODELS, strict=True):
        r = first[spiral][label]
        plots.draw_layers(sub, r.model, r.flat, r.dataset.x_train, r.dataset.c_train, title=label)
    plots.save(fig, out / "fig3_spiral_layers")

    donut2d = sets[1]
    fig = Figure(figsize=(9, 7.6), layout="constrained")
    axes = fig.subplots(2, 2)
    for i, s in enumerate((seed, seed + 1)):
        for j, label in enumerate(("Net", "ODENet")):
            r = runs[donut2d, label, s]
            y = r.model.forward(r.flat, r.dataset.x_train).y_final
            plots.draw_features(
                axes[i, j], r.model, r.flat, y, r.dataset.c_train, title=f"{label}, seed {s}", colorbar=j == 1
            )
    fig.suptitle(f"{donut2d}: transformed data and linear classifier for two initialisations")
    plots.save(fig, out / "fig5_seeds")

    floss = Figure(figsize=(10, 7.4), layout="constrained")
    facc = Figure(figsize=(10, 7.4), layout="constrained")
    for al, aa, ds in zip(floss.subplots(2, 2).ravel(), facc.subplots(2, 2).ravel(), sets, strict=True):
        for label, _ in MODELS:
            plots.draw_history(al, aa, first[ds][label].history, label=label, color=COLORS[label])
        al.set_title(ds)
        aa.set_title(ds)
    for f, name in ((floss, "fig6_loss"), (facc, "fig7_accuracy")):
        f.axes[0].legend()
        f.suptitle("train solid, test dashed")
        plots.save(f, out / name)

    fig = Figure(figsize=(10, 7.4), layout="constrained")
    for ax, ds in zip(fig.subplots(2, 2).ravel(), sets, strict=True):
        for k, (label, _) in enumerate(MODELS[1:]):
            h = first[ds][label].params["h"]
            plots.draw_steps(ax, h, label=label, offset=(k - 1) * 0.27, width=0.27, color=COLORS[label])
        ax.set_title(ds)
    fig.axes[0].legend()
    fig.suptitle("steps $h_j$: ResNet (fixed), ODENet and ODENet+simplex (learned)")
    plots.save(fig, out / "fig8_steps")


def pct(v) -> str:
    return f"{100 * v:.1f}"


def shape(ratio: float) -> str:
    return "curve" if ratio < STRING_RATIO else "2D"


def verdicts(by, sets, seed) -> list[list[str]]:
    """One row per finding and data set: what 000 reports, rkgen's numbers, the verdict."""
    rows = []
    for ds in sets:
        r = {label: by[ds, label, seed] for label, _ in MODELS}
        net, maj = r["Net"]["test_accuracy"], r["Net"]["majority"]
        worst = min(r[m]["test_accuracy"] for m in ("ResNet", "ODENet", "ODENet+simplex"))
        learned = net >= maj + LEARN_MARGIN
        rows.append(
            [
                ds,
                "Net learns (partly)",
                f"Net {pct(net)}% test, majority class {pct(maj)}%",
                "agrees" if learned else "differs (Net did not learn)",
            ]
        )
        gap = worst - net
        rows.append(
            [
                ds,
                "Net trails the ODE networks (Figs. 6-7)",
                f"Net {pct(net)}% vs worst ODE network {pct(worst)}%",
                "agrees" if gap >= TRAIL_MARGIN else "close" if gap > -TRAIL_MARGIN else "differs",
            ]
        )
        ratio = r["Net"]["local_ratio"]
        rows.append(
            [
                ds,
                "Net maps the data onto a curve (Figs. 2-3)",
                f"local s2/s1 {ratio:.2f} ({shape(ratio)})",
                "agrees" if ratio < STRING_RATIO else "differs",
            ]
        )
        expect = {"Net": "curve", "ResNet": "2D", "ODENet": "curve", "ODENet+simplex": "2D"}
        got = {m: shape(r[m]["local_ratio"]) for m in expect}
        hits = sum(got[m] == expect[m] for m in expect)
        rows.append(
            [
                ds,
                "Net, ODENet onto a string; ResNet, ODENet+simplex 2D (Fig. 3)",
                ", ".join(f"{r[m]['local_ratio']:.2f}" for m in expect),
                "agrees" if hits == 4 else "close" if hits == 3 else "differs",
            ]
        )
        neg = r["ODENet"]["negative_steps"]
        rows.append(
            [
                ds,
                "ODENet learns negative steps (Fig. 8)",
                f"{neg} of 20 negative",
                "agrees" if neg > 0 else "differs",
            ]
        )
        nz = r["ODENet+simplex"]["nonzero_steps"]
        rows.append(
            [
                ds,
                "ODENet+simplex keeps 2-3 of 20 steps (Fig. 8)",
                f"{nz} nonzero",
                "agrees" if 2 <= nz <= 3 else "close" if nz in (1, 4, 5) else "differs",
            ]
        )
        early = {m: r[m]["early_loss"] for m in ("ResNet", "ODENet", "ODENet+simplex")}
        best = min(early, key=early.get)
        rows.append(
            [
                ds,
                "ODENet is fastest at first (Fig. 6)",
                "loss at 10%: " + ", ".join(f"{m} {v:.4f}" for m, v in early.items()),
                "agrees" if best == "ODENet" else "differs",
            ]
        )
        res_l, ode_l = r["ResNet"]["train_loss"], r["ODENet"]["train_loss"]
        rows.append(
            [
                ds,
                "later ResNet overtakes ODENet (Fig. 6)",
                f"final loss ResNet {res_l:.4f}, ODENet {ode_l:.4f}",
                "agrees" if res_l < ode_l else "differs",
            ]
        )
    donut2d = sets[1]
    for label in ("Net", "ODENet"):
        a, b = by[donut2d, label, seed], by[donut2d, label, seed + 1]
        same = shape(a["local_ratio"]) == shape(b["local_ratio"])
        close = abs(a["test_accuracy"] - b["test_accuracy"]) <= SEED_SPREAD
        rows.append(
            [
                donut2d,
                f"{label}: two initialisations behave alike (Fig. 5)",
                f"test {pct(a['test_accuracy'])} / {pct(b['test_accuracy'])}%, "
                f"{shape(a['local_ratio'])} / {shape(b['local_ratio'])}",
                "agrees" if same and close else "close" if same or close else "differs",
            ]
        )
    return rows


def summary(rows, sets, args, iterations, train_seconds, total) -> str:
    by = {(r["dataset"], r["model"], r["seed"]): r for r in rows}
    its = ", ".join(f"{ds} {n}" for ds, n in iterations.items())
    lines = [
        f"000 section 5.2: 20 layers, width 2, init {args.init}, tableau {args.tableau}, "
        f"T = {args.final_time:g}; gd-backtracking L0 0.1, rho 1.5/0.99, 200 trials; iterations: {its}",
        f"{total:.0f} s in all ({train_seconds:.0f} s training)",
        "",
    ]
    body = [
        [
            r["dataset"],
            r["model"],
            r["seed"],
            f"{r['train_loss']:.4f}",
            pct(r["train_accuracy"]),
            pct(r["test_accuracy"]),
            r["nonzero_steps"],
            r["negative_steps"],
            f"{r['local_ratio']:.2f}",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    header = ["dataset", "model", "seed", "loss", "train %", "test %", "h != 0", "h < 0", "s2/s1", "s"]
    lines.append(_common.table(header, body))
    lines += ["", "ODENet+simplex steps (nonzero ones, layer: h):"]
    for ds in sets:
        h = [float(v) for v in by[ds, "ODENet+simplex", args.seed]["steps"].split()]
        lines.append(f"  {ds}: " + ", ".join(f"{j + 1}: {v:.3f}" for j, v in enumerate(h) if v != 0.0))
    lines += ["", "The paper's findings beside ours:"]
    lines.append(_common.table(["dataset", "000 reports", "rkgen", "verdict"], verdicts(by, sets, args.seed)))
    lines += [
        "",
        f"Rules: Net learns if its test accuracy is at least {100 * LEARN_MARGIN:.0f} points above the majority "
        f"class; trails if at least {100 * TRAIL_MARGIN:.0f} point below the worst ODE network (close within "
        f"{100 * TRAIL_MARGIN:.0f}); features y_N lie on a curve if the median over the training points of s2/s1 "
        f"of their m/{NEIGHBOURS} nearest neighbours is below {STRING_RATIO} (2D otherwise; the inputs give "
        "0.5-0.8); 2-3 nonzero simplex steps agree, 1, 4 or 5 are close; fastest at first = lowest train loss of the "
        f"three ODE networks at 1/{EARLY_SHARE} of the iterations; two seeds alike if the test accuracies are "
        f"within {100 * SEED_SPREAD:.0f} points and the features have the same shape (one of the two: close).",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
