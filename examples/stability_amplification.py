"""The stability claim of the slides on 000 (002): for the stable field
dy/dt = -K(t)^T sigma(K(t) y + beta(t)) with a monotone sigma,

    |y(T) - y^delta(T)| <= C |y(0) - y^delta(0)|,

because d/dt 1/2 |y - y^delta|^2 = -<sigma(z) - sigma(z^delta), z - z^delta> <= 0 with z = K y + beta:
the flow is non-expansive, C = 1, whatever K is. This example measures it on trained networks.

For each field (resnet: dy/dt = sigma(K y + beta); stable: the field above), each tableau (explicit
Euler, the implicit midpoint rule, Kutta(4)) and each step h, a network is trained and then the
amplification

    |y_N(x + delta) - y_N(x)| / |delta|

is measured over the test points x, with delta drawn uniformly on the circle of radius 1e-4
(--directions per point, default 8; --delta sets the radius). Reported: its largest and median
value; the worst direction (the largest singular value of the Jacobian dy_N/dx, by central
differences), largest over the test points; the largest amplification at |delta| = 0.1 (a finite
perturbation, the size of the data's noise); the same for the trained network's own continuous flow
(the ODE with the trained K_j, beta_j on each layer's interval, integrated by Kutta(4) with 64
substeps a layer); and, for the stable field, h mu, where mu is the largest eigenvalue of
K_j^T D K_j, D = diag(sigma'(K_j y_j + beta_j)), over layers j and test points. An explicit Euler
step has the symmetric Jacobian I - h K^T D K: it is non-expansive iff h mu <= 2 (Kutta(4): about
h mu <= 2.79 in the linearisation); the implicit midpoint rule is non-expansive for every h when
the field is monotone (its update y+ - z+ = (y - z) + h (f(ybar) - f(zbar)) gives
|y+ - z+|^2 - |y - z|^2 = 2 h <f(ybar) - f(zbar), ybar - zbar> <= 0).

Setting (choices; 002 names no experiment): benning-donut2d (000's data as its authors draw it),
1000 training and 1000 test points; T = 1 for every h, as in the authors' section 5.2 code (its
steps are 1/N), so N = T/h layers: h = 0.05, 0.1, 0.2, 0.5, 1 give N = 20, 10, 5, 2, 1; width 2,
tanh; section 5.2's training as that code runs it: gradient descent with backtracking (L0 0.1, up
1.5, down 0.99, 200 trials), init normal (K ~ N(0, 1), beta = 0), cost 1/(2m) sum of squares; 2000
iterations (section 5.2 runs 5000-20000; fewer here to keep 30 networks affordable).

Where the implicit midpoint rule's stage equations are not solved (rkgen's Newton iteration fails to
converge at some point, at large h), the network is not measured (nan) and the status says so.

Verdicts (C = 1, the slides' constant, within 1e-3 for finite differences): the continuous flow of
every trained stable network is non-expansive; every implicit-midpoint stable network is; and the
explicit Euler networks amplify (above 1.001) where, and only where, h mu > 2.

    python examples/stability_amplification.py            # 2 x 3 x 5 networks, 2000 iterations
    python examples/stability_amplification.py --quick    # h = 0.1, 0.2, 0.5; 500 points, 300 iterations

Figures: amplification (largest and median over the test points, against h; one curve per tableau
and field), h_mu (the stable networks' h mu against h, with Euler's and Kutta(4)'s limits).
"""

from __future__ import annotations

import time

import _common
import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter, ScalarFormatter

from rkgen.train import plots, train
from rkgen.train.models import SolveFailure

FIELDS = ("resnet", "stable")
TABLEAUX = (("explicit Euler", "euler"), ("implicit midpoint", "midpoint"), ("Kutta(4)", "rk4"))
STEPS, QUICK_STEPS = (0.05, 0.1, 0.2, 0.5, 1.0), (0.1, 0.2, 0.5)
#: the edge of the stability interval on the negative real axis: explicit Euler 2, Kutta(4) 2.785
REAL_LIMIT = {"euler": 2.0, "rk4": 2.785}
#: a network is non-expansive (C = 1) when its largest amplification is at most 1 + TOL
TOL = 1e-3
SUBSTEPS = 64
MEASURES = ("amp_max", "amp_median", "amp_share", "jac_max", "amp_large_max", "flow_amp_max", "h_mu", "h_K2")
LARGE_DELTA = 0.1


def main(argv=None) -> int:
    p = _common.parser(__doc__, "h = 0.1, 0.2, 0.5; 500 points, 300 iterations")
    p.add_argument("--iterations", type=int, help="override the number of iterations")
    p.add_argument("--steps", type=float, nargs="+", help="step sizes h (default 0.05 0.1 0.2 0.5 1)")
    p.add_argument("--final-time", type=float, default=1.0, help="T (default 1); N = T/h layers")
    p.add_argument("--samples", type=int, help="training points, and as many test points (default 1000)")
    p.add_argument("--dataset", default="benning-donut2d", choices=("benning-donut2d", "benning-spiral"))
    p.add_argument("--tableaux", nargs="+", choices=[t for _, t in TABLEAUX], default=[t for _, t in TABLEAUX])
    p.add_argument("--delta", type=float, default=1e-4, help="|delta| of the random perturbations (default 1e-4)")
    p.add_argument("--directions", type=int, default=8, help="random directions per test point (default 8)")
    args = p.parse_args(argv)
    its = args.iterations or (300 if args.quick else 2000)
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)
    samples = args.samples or (500 if args.quick else 1000)
    out = _common.out_dir("stability-amplification", args.out)
    results = _common.Results(
        out / "results.csv",
        [
            "field",
            "tableau",
            "h",
            "layers",
            "train_accuracy",
            "test_accuracy",
            "amp_max",
            "amp_median",
            "amp_share",
            "jac_max",
            "amp_large_max",
            "flow_amp_max",
            "h_mu",
            "h_K2",
            "h_K2_init",
            "seconds",
            "status",
        ],
    )
    t0 = time.perf_counter()
    labels = {t: label for label, t in TABLEAUX}
    for field in FIELDS:
        for tab in args.tableaux:
            for h in steps:
                n = max(1, round(args.final_time / h))
                print(f"{field} field, {labels[tab]}, h = {h:g} ({n} layers, {its} iterations)", flush=True)
                opts = dict(
                    tableau=tab,
                    model="rk",
                    dataset=args.dataset,
                    samples=samples,
                    layers=n,
                    width=2,
                    step=h,
                    field=field,
                    init="normal",
                    **_common.STEP_RULE_52,
                    seed=args.seed,
                    plots=False,
                )
                start = train(**opts, iterations=0, out=False, progress=False)  # the initial parameters
                res = train(
                    **opts,
                    iterations=its,
                    eval_every=max(1, its // 20),
                    out=str(out / f"{field}-{tab}-h{h:g}"),
                    progress=args.progress,
                )
                try:
                    m = measure(res, tab, field, h, args.delta, args.directions, args.seed)
                    status = res.status
                except SolveFailure as exc:  # the implicit stage equation has no solution Newton finds
                    m = dict.fromkeys(MEASURES, float("nan"))
                    status = f"{res.status}; measuring: {exc}"
                    print(f"  {status}", flush=True)
                results.add(
                    h_K2_init=h * max(float(np.linalg.norm(K, 2) ** 2) for K in start.params["K"]),
                    field=field,
                    tableau=tab,
                    h=h,
                    layers=n,
                    train_accuracy=res.final("train_accuracy"),
                    test_accuracy=res.final("test_accuracy"),
                    seconds=res.seconds,
                    status=status,
                    **m,
                )
    figures(out, results.rows, args.tableaux, labels)
    text = summary(results.rows, args, its, samples, labels, time.perf_counter() - t0)
    _common.report(out, text)
    return 0


# -- the measurements --------------------------------------------------------------------------------


def measure(res, tab, field, h, delta, directions, seed) -> dict:
    """Amplifications of the trained network res on its test points (see the module docstring)."""
    model, flat = res.model, res.flat
    x = res.dataset.x_test
    m = len(x)
    rng = np.random.default_rng([seed, 2027])

    def net(points):
        return model.forward(flat, points, keep_tape=False).y_final

    if tab == "euler":  # the flow below reads K, beta and h as the network does
        gap = np.abs(euler_map(res.params, field, x) - net(x)).max()
        if gap > 1e-10:
            raise AssertionError(f"Euler by hand differs from the Euler network by {gap:.2e}")

    def flow(points):
        return continuous_flow(res.params, field, points, SUBSTEPS)

    y = net(x)
    theta = rng.uniform(0.0, 2.0 * np.pi, size=(directions, m))
    amps = []
    for k in range(directions):
        d = delta * np.column_stack([np.cos(theta[k]), np.sin(theta[k])])
        amps.append(np.linalg.norm(net(x + d) - y, axis=1) / delta)
    amps = np.concatenate(amps)
    dlarge = LARGE_DELTA * np.column_stack([np.cos(theta[0]), np.sin(theta[0])])
    large = np.linalg.norm(net(x + dlarge) - y, axis=1) / LARGE_DELTA
    yf = flow(x)
    flow_amps = np.concatenate(
        [
            np.linalg.norm(flow(x + delta * np.column_stack([np.cos(t), np.sin(t)])) - yf, axis=1) / delta
            for t in theta[:2]
        ]
    )
    h_mu, h_k2 = step_eigen(res, x, field, h)
    return {
        "amp_max": float(amps.max()),
        "amp_median": float(np.median(amps)),
        "amp_share": float(np.mean(amps > 1.0 + TOL)),
        "jac_max": float(jacobian_norm(net, x).max()),
        "amp_large_max": float(large.max()),
        "flow_amp_max": float(max(flow_amps.max(), jacobian_norm(flow, x).max())),
        "h_mu": h_mu,
        "h_K2": h_k2,
    }


def jacobian_norm(fn, x, eps=1e-5) -> np.ndarray:
    """The largest singular value of d fn / dx at each point, by central differences."""
    cols = []
    for k in range(x.shape[1]):
        e = np.zeros(x.shape[1])
        e[k] = eps
        cols.append((fn(x + e) - fn(x - e)) / (2.0 * eps))
    jac = np.stack(cols, axis=2)  # (m, d_out, d_in)
    return np.linalg.svd(jac, compute_uv=False)[:, 0]


def field_value(field, K, beta, y):
    """f(y) for all points y (m, d): sigma(K y + beta) or -K^T sigma(K y + beta), sigma = tanh."""
    s = np.tanh(y @ K.T + beta)
    return s if field == "resnet" else -s @ K


def euler_map(params, field, x) -> np.ndarray:
    """The explicit Euler network, written out: y <- y + h_j f_j(y)."""
    y = np.array(x, dtype=float)
    for K, beta, hj in zip(params["K"], params["beta"], params["h"], strict=True):
        y = y + hj * field_value(field, K, beta, y)
    return y


def continuous_flow(params, field, x, substeps) -> np.ndarray:
    """y(T) of the trained network's ODE: on layer j's interval (length h_j) the field with K_j, beta_j,
    integrated by Kutta(4) with `substeps` steps (substeps=1 with Euler would be the Euler network)."""
    y = np.array(x, dtype=float)
    for K, beta, hj in zip(params["K"], params["beta"], params["h"], strict=True):
        dt = hj / substeps
        for _ in range(substeps):
            k1 = field_value(field, K, beta, y)
            k2 = field_value(field, K, beta, y + 0.5 * dt * k1)
            k3 = field_value(field, K, beta, y + 0.5 * dt * k2)
            k4 = field_value(field, K, beta, y + dt * k3)
            y = y + dt / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
    return y


def step_eigen(res, x, field, h) -> tuple[float, float]:
    """For the stable field: the largest h lambda_max(K_j^T D K_j) over layers j and test points
    (D = diag(sigma'(K_j y_j + beta_j)) at the layer's state y_j), and the largest h |K_j|_2^2 (D = I).
    NaN for the resnet field."""
    if field != "stable":
        return float("nan"), float("nan")
    states = res.model.states(res.flat, x)
    best = 0.0
    for j, (K, beta) in enumerate(zip(res.params["K"], res.params["beta"], strict=True)):
        dsig = 1.0 - np.tanh(states[j] @ K.T + beta) ** 2  # (m, d)
        mats = np.einsum("ki,mk,kl->mil", K, dsig, K)  # K^T D K per point
        best = max(best, float(np.linalg.eigvalsh(mats)[:, -1].max()))
    k2 = max(float(np.linalg.norm(K, 2) ** 2) for K in res.params["K"])
    return h * best, h * k2


# -- figures and the summary ---------------------------------------------------------------------------


STYLE = {"euler": ("o", "C0"), "midpoint": ("s", "C1"), "rk4": ("^", "C2")}


def figures(out, rows, tableaux, labels):
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, key, what in zip(axes, ("amp_max", "amp_median"), ("largest", "median"), strict=True):
        for field, ls in (("stable", "-"), ("resnet", "--")):
            for tab in tableaux:
                sel = [r for r in rows if r["field"] == field and r["tableau"] == tab]
                marker, color = STYLE[tab]
                ax.plot(
                    [r["h"] for r in sel],
                    [r[key] for r in sel],
                    ls,
                    marker=marker,
                    color=color,
                    label=f"{labels[tab]}, {field}",
                )
        ax.axhline(1.0, color="k", lw=0.8, ls=":")
        log_axes(ax, sorted({r["h"] for r in rows}))
        ax.set_ylabel(what + r" $|y_N(x + \delta) - y_N(x)|\, /\, |\delta|$")
        ax.set_title(f"{what} amplification over the test points")
    axes[0].legend(fontsize=8)
    fig.suptitle("stable field solid, resnet field dashed; dotted: 1 (non-expansive)")
    plots.save(fig, out / "amplification")
    fig = Figure(figsize=(5.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for tab in tableaux:
        sel = [r for r in rows if r["field"] == "stable" and r["tableau"] == tab]
        marker, color = STYLE[tab]
        ax.plot([r["h"] for r in sel], [r["h_mu"] for r in sel], "-", marker=marker, color=color, label=labels[tab])
    sel = [r for r in rows if r["field"] == "stable" and r["tableau"] == tableaux[0]]
    ax.plot([r["h"] for r in sel], [r["h_K2_init"] for r in sel], "k--", label=r"$h\,|K|_2^2$ at initialisation")
    for tab, limit in REAL_LIMIT.items():
        if tab in tableaux:
            ax.axhline(limit, color=STYLE[tab][1], lw=0.8, ls=":", label=f"{labels[tab]}'s limit {limit:g}")
    log_axes(ax, sorted({r["h"] for r in rows}))
    ax.set_ylabel(r"$h\mu = h \max_{j,x} \lambda_{max}(K_j^T D K_j)$")
    ax.set_title(r"stable field: $h\mu$ of the trained networks")
    ax.legend(fontsize=8)
    plots.save(fig, out / "h_mu")


def log_axes(ax, steps):
    """Log-log axes with the step sizes as plain ticks."""
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(steps)
    ax.xaxis.set_major_formatter(ScalarFormatter())
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("step size h")
    ax.grid(True, which="both", alpha=0.3)


def joined(values) -> str:
    return ", ".join(f"{v:g}" for v in values) or "none"


def verdict(ok: bool) -> str:
    return "agrees" if ok else "differs"


def summary(rows, args, its, samples, labels, total) -> str:
    body = [
        [
            r["field"],
            labels[r["tableau"]],
            f"{r['h']:g}",
            r["layers"],
            f"{100 * r['test_accuracy']:.1f}",
            f"{r['amp_max']:.3f}",
            f"{r['amp_median']:.3f}",
            f"{100 * r['amp_share']:.1f}",
            f"{r['jac_max']:.3f}",
            f"{r['amp_large_max']:.3f}",
            f"{r['flow_amp_max']:.3f}",
            "" if np.isnan(r["h_mu"]) else f"{r['h_mu']:.2f}",
            "" if r["field"] != "stable" else f"{r['h_K2_init']:.2f}",
            r["status"],
        ]
        for r in rows
    ]
    stable = [r for r in rows if r["field"] == "stable"]
    flow_max = float(np.nanmax([r["flow_amp_max"] for r in stable]))
    mid = [r for r in stable if r["tableau"] == "midpoint"]
    eul = [r for r in stable if r["tableau"] == "euler"]
    checks = [
        [
            "continuous stable flow is non-expansive (C = 1)",
            f"trained K's own flow: largest amplification {flow_max:.4f} over {len(stable)} networks",
            verdict(flow_max <= 1.0 + TOL),
        ]
    ]
    if mid:
        done = [r for r in mid if not np.isnan(r["amp_max"])]
        failed = [r["h"] for r in mid if np.isnan(r["amp_max"])]
        worst = max((max(r["amp_max"], r["jac_max"], r["amp_large_max"]) for r in done), default=float("nan"))
        checks.append(
            [
                "implicit midpoint keeps it for every h",
                f"largest {worst:.4f} (h = {joined(r['h'] for r in done)}; not solved at h = {joined(failed)})",
                verdict(bool(done) and worst <= 1.0 + TOL),
            ]
        )
    if eul:
        expand = [r["h"] for r in eul if max(r["amp_max"], r["jac_max"]) > 1.0 + TOL]
        over = [r["h"] for r in eul if r["h_mu"] > REAL_LIMIT["euler"]]
        checks.append(
            [
                "explicit Euler amplifies where (only where) h mu > 2",
                f"amplifies at h = {joined(expand)}; h mu > 2 at h = {joined(over)}",
                verdict(expand == over),
            ]
        )
    return "\n".join(
        [
            f"002's stability claim, measured: {args.dataset}, {samples} train / {samples} test points, T = "
            f"{args.final_time:g}, {its} iterations of gd-backtracking (section 5.2's settings), init normal",
            f"delta uniform on the circle of radius {args.delta:g}, {args.directions} per test point; "
            f"{total:.0f} s in all",
            "",
            _common.table(
                [
                    "field",
                    "tableau",
                    "h",
                    "N",
                    "test %",
                    "amp max",
                    "amp median",
                    "% > 1",
                    "worst dir.",
                    f"max |delta|={LARGE_DELTA:g}",
                    "flow max",
                    "h mu",
                    "h|K|^2 init",
                    "status",
                ],
                body,
            ),
            "",
            "amp: over test points and random delta (% > 1: share of them above 1.001); worst dir.: largest",
            "singular value of dy_N/dx; flow: the trained network's continuous ODE (Kutta(4), "
            f"{SUBSTEPS} substeps a layer);",
            "h mu: largest h lambda_max(K^T D K) (stable field);",
            "h|K|^2 init: largest h |K_j|_2^2 of the initial parameters (an upper bound of h mu before training).",
            f"Verdicts: C = 1 within {TOL:g} (finite differences).",
            _common.table(["002 claims / theory says", "rkgen", "verdict"], checks),
        ]
    )


if __name__ == "__main__":
    raise SystemExit(main())
