"""Benning et al. 2019 (000), section 5.4: Net, ResNet, ODENet and ODENet+simplex, 20 layers, on 0
against 8 with 100 training images.

000 trains on MNIST100 (100 MNIST images of 0 and 8, 500 for testing), which cannot be downloaded
here; its stand-in is digits08: the 0s and 8s of scikit-learn's 8x8 digits, pixels in [0, 1], 100
training images and the rest (252) for testing. The width is the input dimension, 64. The rest is
section 5.2's setting as the authors' code runs it: tanh, K ~ N(0, 1), beta = 0, W ~ N(0, 1), mu = 0,
the squared error of the sigmoid hypothesis averaged over the images, gradient descent with
backtracking (L0 = 0.1, rho_up = 1.5, rho_down = 0.99, at most 200 trials), steps h_j = 1/N to
start (T = 1, Euler). 000 does not state its number of iterations; rkgen runs 1000.

At width 64, K ~ N(0, 1) saturates the plain Net (most |K y + beta| exceed 3), so one more run,
"Net (K/8)", starts Net from K ~ N(0, 1/64) (--init-scale 1/sqrt(64)) to show what Net does unsaturated.

    python examples/benning2019_digits.py            # 5 runs of 1000 iterations
    python examples/benning2019_digits.py --quick    # 5 runs of 100 iterations

Figures (PNG and PDF): fig14_training (loss and accuracy, train solid and test dashed, and the steps
h_j), fig15_features (test digits, first row the inputs, then the features y_N of each network as
8x8 images); results.csv and summary.txt hold the numbers, the verdicts and their rules.
"""

from __future__ import annotations

import time

import _common
import numpy as np
from benning2019_models import COLORS, majority
from matplotlib.figure import Figure

from rkgen.train import plots, train

WIDTH = 64
MODELS = (
    ("Net", "net", 1.0),
    ("Net (K/8)", "net", 1.0 / np.sqrt(WIDTH)),
    ("ResNet", "rk", 1.0),
    ("ODENet", "odenet", 1.0),
    ("ODENet+simplex", "odenet-simplex", 1.0),
)
ODE = ("ResNet", "ODENet", "ODENet+simplex")
COLORS = {**COLORS, "Net (K/8)": "#9467bd"}
SHOWN = 4  # test digits of each class in fig15

# The rules of the verdicts
WELL_TRAIN, WELL_TEST = 0.95, 0.90  # "perform very well": at least 95% train and 90% test accuracy
SPARSE, SPARSE_CLOSE = 5, 10  # "very sparse": at most 5 of 20 steps nonzero (close: at most 10)
KEPT, NOISE = 0.5, 0.2  # structure kept: mean corr(x, y_N) >= 0.5; like noise: <= 0.2


def correlation(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson's correlation of each image's pixels x_i with its features y_i (0 when either is
    constant)."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.linalg.norm(xc, axis=1) * np.linalg.norm(yc, axis=1)
    return np.where(den > 0, np.sum(xc * yc, axis=1) / np.where(den > 0, den, 1.0), 0.0)


def saturation(model, flat, x) -> float:
    """The share of pre-activations |K y + beta| > 3 (tanh' < 0.01) over the layers of the Net."""
    ys = model.states(flat, x)
    v = model.views(flat)
    pre = [ys[j] @ v["K"][j].T + v["beta"][j] for j in range(model.N)]
    return float(np.mean(np.abs(np.stack(pre)) > 3.0))


def main(argv=None) -> int:
    p = _common.parser(__doc__, "100 iterations instead of 1000")
    p.add_argument("--iterations", type=int, help="override the number of iterations")
    p.add_argument("--final-time", type=float, default=1.0, help="T of the ODE networks (default 1)")
    p.add_argument("--tableau", default="euler", help="tableau of the ODE networks (default euler)")
    args = p.parse_args(argv)
    its = args.iterations or (100 if args.quick else 1000)
    out = _common.out_dir("benning2019-digits", args.out)
    results = _common.Results(
        out / "results.csv",
        [
            "model",
            "init_scale",
            "train_loss",
            "test_loss",
            "train_accuracy",
            "test_accuracy",
            "majority",
            "nonzero_steps",
            "negative_steps",
            "steps",
            "correlation",
            "saturation_init",
            "seconds",
            "status",
        ],
    )
    t0 = time.perf_counter()
    runs = {}
    for label, kind, scale in MODELS:
        print(f"digits08: {label} ({its} iterations)", flush=True)
        options = dict(
            tableau=None if kind == "net" else args.tableau,
            model=kind,
            dataset="digits08",
            layers=20,
            width=WIDTH,
            final_time=None if kind == "net" else args.final_time,
            init="normal",
            init_scale=scale,
            reduction="mean",
            seed=args.seed,
            plots=False,
            progress=args.progress,
            **_common.STEP_RULE_52,
        )
        sat = ""
        if kind == "net":
            start = train(iterations=0, **options)
            sat = saturation(start.model, start.flat, start.dataset.x_train)
        res = train(
            iterations=its, eval_every=max(1, its // 100), out=str(out / "runs" / label.replace(" ", "")), **options
        )
        runs[label] = res
        ds = res.dataset
        h = res.params.get("h")
        y = res.model.forward(res.flat, ds.x_test).y_final
        results.add(
            model=label,
            init_scale=scale,
            **_common.finals(res),
            majority=majority(ds.c_test),
            nonzero_steps="" if h is None else int(np.count_nonzero(h)),
            negative_steps="" if h is None else int(np.sum(h < 0)),
            steps="" if h is None else " ".join(f"{v:.4g}" for v in h),
            correlation=float(np.mean(correlation(ds.x_test, y))),
            saturation_init=sat,
            seconds=res.seconds,
            status=res.status,
        )
    figures(out, runs)
    total = time.perf_counter() - t0
    _common.report(out, summary(results.rows, its, args, total))
    return 0


def figures(out, runs):
    fig = Figure(figsize=(14, 4.2), layout="constrained")
    al, aa, ah = fig.subplots(1, 3)
    for label, _, _ in MODELS:
        plots.draw_history(al, aa, runs[label].history, label=label, color=COLORS[label])
    al.set_title("loss")
    aa.set_title("accuracy")
    aa.legend(fontsize="small")
    for k, label in enumerate(ODE):
        h = runs[label].params["h"]
        plots.draw_steps(ah, h, label=label, offset=(k - 1) * 0.27, width=0.27, color=COLORS[label])
    ah.set_title("steps $h_j$")
    ah.legend(fontsize="small")
    fig.suptitle("digits08 (0 vs 8, 100 training images): train solid, test dashed")
    plots.save(fig, out / "fig14_training")

    ds = runs["Net"].dataset
    picks = np.concatenate([np.flatnonzero(ds.c_test == k)[:SHOWN] for k in (0, 1)])
    labels = [label for label, _, _ in MODELS]
    fig = Figure(figsize=(1.25 * len(picks) + 1.2, 1.3 * (len(labels) + 1) + 0.4), layout="constrained")
    axes = fig.subplots(len(labels) + 1, len(picks), squeeze=False)
    rows = [("input x", ds.x_test[picks])]
    rows += [(label, runs[label].model.forward(runs[label].flat, ds.x_test[picks]).y_final) for label in labels]
    for i, (name, images) in enumerate(rows):
        for j, img in enumerate(images):
            ax = axes[i, j]
            ax.imshow(img.reshape(8, 8), cmap="gray_r", interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(name, fontsize="small")
            if i == 0:
                ax.set_title(f"digit {ds.class_names[ds.c_test[picks[j]]]}", fontsize="small")
    fig.suptitle("test digits and their features $y_N$ (each image on its own grey scale)")
    plots.save(fig, out / "fig15_features")


def pct(v) -> str:
    return f"{100 * v:.1f}"


def kept(c: float) -> str:
    return "kept" if c >= KEPT else "noise" if c <= NOISE else "partly"


def summary(rows, its, args, total) -> str:
    by = {r["model"]: r for r in rows}
    lines = [
        f"000 section 5.4 on digits08: 20 layers, width {WIDTH}, init normal, {args.tableau}, T = "
        f"{args.final_time:g}; gd-backtracking L0 0.1, rho 1.5/0.99, 200 trials; {its} iterations; {total:.0f} s",
        "",
    ]
    body = [
        [
            r["model"],
            f"{r['train_loss']:.2e}",
            pct(r["train_accuracy"]),
            pct(r["test_accuracy"]),
            r["nonzero_steps"],
            r["negative_steps"],
            f"{r['correlation']:.2f}",
            "" if r["saturation_init"] == "" else f"{100 * r['saturation_init']:.0f}%",
            f"{r['seconds']:.0f}",
        ]
        for r in rows
    ]
    header = ["model", "loss", "train %", "test %", "h != 0", "h < 0", "corr(x, y_N)", "|Ky+b|>3 at init", "s"]
    lines.append(_common.table(header, body))
    lines += ["", "ODENet steps: " + by["ODENet"]["steps"], "ODENet+simplex steps: " + by["ODENet+simplex"]["steps"]]
    checks = []
    for m in ODE:
        r = by[m]
        well = r["train_accuracy"] >= WELL_TRAIN and r["test_accuracy"] >= WELL_TEST
        checks.append(
            [
                f"{m} performs very well on train and test (Fig. 14)",
                f"{pct(r['train_accuracy'])}% / {pct(r['test_accuracy'])}%",
                "agrees" if well else "differs",
            ]
        )
    for m in ("Net", "Net (K/8)"):
        r = by[m]
        checks.append(
            [
                f"{m} below the ODE networks (implied by Fig. 14)",
                f"{pct(r['train_accuracy'])}% / {pct(r['test_accuracy'])}%, majority {pct(r['majority'])}%",
                "agrees" if r["test_accuracy"] < min(by[o]["test_accuracy"] for o in ODE) else "differs",
            ]
        )
    neg = by["ODENet"]["negative_steps"]
    checks.append(["ODENet learns negative steps (Fig. 14)", f"{neg} of 20 negative", "agrees" if neg else "differs"])
    nz = by["ODENet+simplex"]["nonzero_steps"]
    checks.append(
        [
            "ODENet+simplex: very sparse steps (Fig. 14)",
            f"{nz} of 20 nonzero",
            "agrees" if nz <= SPARSE else "close" if nz <= SPARSE_CLOSE else "differs",
        ]
    )
    for m in ("Net", "Net (K/8)"):
        c = by[m]["correlation"]
        checks.append(
            [
                f"{m}'s features look like noise (Fig. 15)",
                f"corr(x, y_N) {c:.2f} ({kept(c)})",
                {"noise": "agrees", "partly": "close"}.get(kept(c), "differs"),
            ]
        )
    for m in ODE:
        c = by[m]["correlation"]
        checks.append(
            [
                f"{m} retains some structure of the input (Fig. 15)",
                f"corr(x, y_N) {c:.2f} ({kept(c)})",
                {"kept": "agrees", "partly": "close"}.get(kept(c), "differs"),
            ]
        )
    lines += ["", "The paper's findings beside ours (000 reports no numbers for MNIST100):"]
    lines.append(_common.table(["000 reports", "rkgen", "verdict"], checks))
    lines += [
        "",
        f"Rules: very well = at least {100 * WELL_TRAIN:.0f}% train and {100 * WELL_TEST:.0f}% test accuracy; Net is "
        "below the ODE networks if its test accuracy is below every ODE network's; very sparse = at most "
        f"{SPARSE} of 20 steps nonzero (close: at most {SPARSE_CLOSE}); corr(x, y_N) is Pearson's correlation of a "
        f"test image's pixels with its features, averaged over the test images: structure kept if >= {KEPT}, "
        f"like noise if <= {NOISE}, partly in between.",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
