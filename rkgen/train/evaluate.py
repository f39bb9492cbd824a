"""Swap the solver of a trained run: ``evaluate_run(run, tableau, layers)`` (``rkgen evaluate``).

A run trained in the continuous parameter layout (``--params continuous``) holds K(t) and beta(t)
as nodal values at the fixed node times tau_0 < ... < tau_N, linear in between: a vector field
f(t, y) = sigma(K(t) y + beta(t)) defined at every time, not only at the stage times the run was
trained on. So it can be integrated again with another tableau and on other grids: here with N2
equal steps over the same time span [tau_0, tau_N], the parameters interpolated at the new stage
times t_j + c_i h_j. If the accuracy stays as the grid is refined and the tableau changed, the
network has learned an ODE flow; if it collapses, it has learned a discrete map that only its own
solver and grid reproduce (Ott et al., ICLR 2021, "ResNet after all? Neural ODEs and their
numerical solution"). The shared and stage layouts tie each parameter set to one layer (or stage)
of one grid, so they define no network at another step size; such runs are refused.

For every tableau and N2 the evaluation reports the test and training accuracy and the change in
y_N: max |y_N - y_N^run| / max |y_N^run| over the test points, y_N^run being the run's own network's
features. At the run's own tableau and N (a run with fixed steps) the network is the run's: the
same accuracy, a change of 0.
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError
from rkgen.train.models import Model, SolveFailure, resolve_network
from rkgen.train.predict import Run, load_run

COLUMNS = ("tableau", "layers", "step", "test_accuracy", "train_accuracy", "yN_change", "run_network")

REFUSAL = (
    "only the continuous layout defines a network at any step size (Ott et al., ICLR 2021, "
    '"ResNet after all?"); train with --params continuous to swap the solver'
)


@dataclass(frozen=True)
class Evaluation:
    """One re-evaluation: the tableau's name, N2 layers of equal step, the accuracies (shares of 1)
    and the relative change of y_N on the test points; ``run_network``: this is the run's own
    network (its tableau, its N, its fixed steps)."""

    tableau: str
    layers: int
    step: float
    test_accuracy: float
    train_accuracy: float
    yN_change: float
    run_network: bool

    def row(self) -> dict:
        return {k: getattr(self, k) for k in COLUMNS}


def _as_list(value, what):
    if isinstance(value, (str, bytes)) or hasattr(value, "forward") or not hasattr(value, "__iter__"):
        return [value]
    items = list(value)
    if not items:
        raise RkgenError(f"give at least one {what}")
    return items


def _same_tableau(a, b) -> bool:
    if a is b:
        return True
    for key in ("A", "B"):
        x, y = getattr(a, key, None), getattr(b, key, None)
        if x is None or y is None:
            return False
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if x.shape != y.shape or not np.array_equal(x, y):
            return False
    return True


def check_continuous(run: Run) -> None:
    """Refuse a run whose parameters are not in the continuous layout (one line, saying why)."""
    layout = getattr(run.model, "params", "shared")
    if run.model.network is None:
        raise RkgenError(f"{run.path}: a plain net run has no solver to swap; {REFUSAL}")
    if layout != "continuous":
        raise RkgenError(f"{run.path}: its parameters use the {layout} layout; {REFUSAL}")


def swapped(run: Run, network, layers: int) -> tuple[Model, np.ndarray]:
    """The run's continuous network integrated by ``network`` with ``layers`` equal steps over
    [tau_0, tau_N]: (model, flat parameters). At the run's own tableau and N of a run with fixed
    steps, the steps are the run's (so the network is the run's, to the bit)."""
    m = run.model
    nodes = m.nodes
    span = float(nodes[-1] - nodes[0])
    model = Model(
        "rk",
        layers,
        m.d,
        m.in_dim,
        m.n_classes,
        network=network,
        field=m.field,
        activation=m.activation,
        loss=m.loss,
        final_time=span,
        params="continuous",
        nodes=nodes,
        augment=m.augment,
        reduction=m.reduction,
        dtype=m.dtype,
    )
    flat = np.empty(model.size, model.dtype)
    new, old = model.views(flat), m.views(run.flat)
    for k in ("K", "beta", "W", "mu", "E"):
        if k not in new:
            continue
        new[k][...] = old[k]
    if m.kind == "rk" and layers == m.N and _same_tableau(network, m.network):
        new["h"][...] = old["h"]
    else:
        new["h"][...] = model.step0
    return model, flat


def _classes(model: Model, flat, x) -> tuple[np.ndarray, np.ndarray]:
    """(y_N, predicted classes) of points x, by the trainer's rule of a correct prediction."""
    fw = model.forward(flat, x, keep_tape=False)
    z = fw.logits
    if model.loss == "squared":
        e = np.exp(-np.abs(z[:, 0]))
        hyp = np.where(z[:, 0] >= 0.0, 1.0 / (1.0 + e), e / (1.0 + e))
        return fw.y_final, (hyp > 0.5).astype(np.int64)
    return fw.y_final, np.argmax(z, axis=1).astype(np.int64)


def evaluate_run(run, tableau, layers, network=None) -> list[Evaluation]:
    """Re-evaluate the continuous-layout run ``run`` (a folder or a loaded :class:`Run`) with each
    tableau of ``tableau`` (a spec or module, or a list of them) at each N of ``layers`` (an integer
    or a list); the rows in that order. ``network``: the run's own tableau if its file has moved
    (as in load_run)."""
    if not isinstance(run, Run):
        run = load_run(run, network=network)
    check_continuous(run)
    specs = _as_list(tableau, "tableau")
    counts = _as_list(layers, "number of layers")
    for n in counts:
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise RkgenError(f"the numbers of layers must be positive integers, not {n!r}")
    ds = run.dataset
    rows = []
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        try:
            y_run, _ = _classes(run.model, run.flat, ds.x_test)
        except SolveFailure as e:
            raise RkgenError(f"{run.path}: the run's own network fails on its test points: {e}") from None
        scale = float(np.max(np.abs(y_run)))
        for spec in specs:
            net = resolve_network(spec)
            for n in counts:
                model, flat = swapped(run, net, int(n))
                try:
                    y, test = _classes(model, flat, ds.x_test)
                    _, train = _classes(model, flat, ds.x_train)
                except SolveFailure as e:
                    raise RkgenError(f"{net.NAME} at N = {n}: {e}") from None
                diff = float(np.max(np.abs(y - y_run)))
                rows.append(
                    Evaluation(
                        tableau=str(net.NAME),
                        layers=int(n),
                        step=float(model.views(flat)["h"][0]),
                        test_accuracy=float(np.count_nonzero(test == ds.c_test) / len(test)),
                        train_accuracy=float(np.count_nonzero(train == ds.c_train) / len(train)),
                        yN_change=diff / scale if scale > 0.0 else diff,
                        run_network=run.model.kind == "rk"
                        and int(n) == run.model.N
                        and _same_tableau(net, run.model.network),
                    )
                )
    return rows


# -- reporting -------------------------------------------------------------------------------------


def describe(run: Run) -> str:
    """One line on the run: its network, span and accuracies."""
    m = run.model
    nodes = m.nodes
    steps = "fixed steps" if m.kind == "rk" else f"learned steps (sum {float(np.sum(m.views(run.flat)['h'])):.4g})"
    return (
        f"{run.path.name}: {m.network.NAME}, N = {m.N}, {steps}, continuous parameters at {len(nodes)} node "
        f"times on [{nodes[0]:g}, {nodes[-1]:g}]; test accuracy {100 * run.evaluate('test'):.2f}%, "
        f"train {100 * run.evaluate('train'):.2f}%"
    )


def format_table(rows: list[Evaluation]) -> str:
    """The rows as an aligned text table; the run's own network is marked with *."""
    header = ("tableau", "N", "step h", "test acc %", "train acc %", "y_N change")
    cells = [header] + [
        (
            r.tableau + (" *" if r.run_network else ""),
            str(r.layers),
            f"{r.step:.4g}",
            f"{100 * r.test_accuracy:.2f}",
            f"{100 * r.train_accuracy:.2f}",
            f"{r.yN_change:.3g}",
        )
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in cells
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if any(r.run_network for r in rows):
        lines.append("* the run's own network")
    return "\n".join(lines)


def format_csv(rows: list[Evaluation]) -> str:
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(
            [repr(v) if isinstance(v, float) else int(v) if isinstance(v, bool) else v for v in r.row().values()]
        )
    return buf.getvalue()


def accuracy_figure(rows: list[Evaluation], title: str = ""):
    """Accuracy against N (log scale), one colour per tableau: test solid, train dashed; the run's
    own network starred."""
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from rkgen.train import plots

    fig = Figure(figsize=(5.4, 3.8), layout="constrained")
    ax = fig.add_subplot()
    names = list(dict.fromkeys(r.tableau for r in rows))
    handles = []
    for k, name in enumerate(names):
        color = plots.MULTI_COLORS[k % len(plots.MULTI_COLORS)]
        sel = sorted((r for r in rows if r.tableau == name), key=lambda r: r.layers)
        n = [r.layers for r in sel]
        ax.plot(n, [100 * r.test_accuracy for r in sel], "-o", color=color, markersize=4)
        ax.plot(n, [100 * r.train_accuracy for r in sel], "--", color=color, lw=1.0)
        handles.append(Line2D([], [], color=color, marker="o", markersize=4, label=name))
        for r in sel:
            if r.run_network:
                ax.plot([r.layers], [100 * r.test_accuracy], "*", color="k", markersize=11, zorder=5)
    handles += [
        Line2D([], [], color="#555555", ls="-", label="test"),
        Line2D([], [], color="#555555", ls="--", lw=1.0, label="train"),
    ]
    if any(r.run_network for r in rows):
        handles.append(Line2D([], [], color="k", ls="", marker="*", markersize=9, label="the run's network"))
    counts = sorted({r.layers for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [str(c) for c in counts])
    ax.minorticks_off()
    ax.set_xlabel(r"layers $N$ (equal steps over $[\tau_0, \tau_N]$)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(handles=handles, fontsize=plots.LEGEND_SIZE, loc="best")
    plots._style(ax, "accuracy after swapping the solver")
    if title:
        fig.suptitle(title, fontsize=plots.TITLE_SIZE)
    return fig


def write_outputs(rows: list[Evaluation], out, title: str = "") -> list[Path]:
    """evaluate.csv and the figure evaluate.png/.pdf in the folder ``out`` (made if need be)."""
    from rkgen.fileio import write_text_atomic
    from rkgen.train import plots

    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RkgenError(f"{out}: cannot create the folder: {e.strerror or e}") from None
    if not out.is_dir():
        raise RkgenError(f"{out} is not a folder")
    write_text_atomic(out / "evaluate.csv", format_csv(rows))
    return [out / "evaluate.csv"] + plots.save(accuracy_figure(rows, title), out / "evaluate")
