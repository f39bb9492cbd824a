"""Reload a trained run and predict (downstream of the trainer): ``rkgen.load_run(RUN)``.

A run folder written by ``rkgen train`` holds everything a prediction needs: config.json (the
resolved configuration and the network's tableau), dataset.npz (the class names and the data
dimension), params.npz (the learned parameters) and summary.json (the final metrics). ``load_run``
rebuilds the model from them (in the parameter layout config.json records; in the continuous
layout with the node times of config.json and params.npz), checks that they fit together, and
returns a :class:`Run`::

    run = rkgen.load_run("runs/spiral-rk4")
    p = run.predict_proba(x)            # (m, K) class probabilities
    c = run.predict(x)                  # (m,) class indices 0..K-1
    names = run.predict_labels(x)       # (m,) the original class names, run.class_names[c]

Inputs are points as in the data source, shape (m, d) with d the data dimension: the run's
--data-scale is applied to them exactly as training applied it, and they are padded with zeros to
the network width. The run's dataset.npz holds the points already scaled (what training saw);
pass ``scaled=True`` for such points. Predictions follow the trainer's rule for a correct
prediction, so ``run.evaluate("test")`` gives the test accuracy of history.csv exactly.

A tableau that was a JSON file or a generated ``*_net.py`` is loaded from the path config.json
records (a ``*_net.py`` is imported: Python code, as ``rkgen train`` imported it; only modules
that rkgen wrote are accepted); if it moved, give its new place with ``network=``. The network
is checked against the tableau config.json records. Every problem is one RkgenError line.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rkgen.errors import RkgenError
from rkgen.train import runs
from rkgen.train.config import TrainConfig
from rkgen.train.datasets import Dataset
from rkgen.train.models import Model, SolveFailure, resolve_network
from rkgen.train.runs import check_same_tableau as _check_same_tableau

_NEEDED = ("config.json", "params.npz", "dataset.npz")


@dataclass(eq=False)
class Run:
    """A trained run, reloaded: its configuration, model, parameters and data set."""

    path: Path
    config: TrainConfig
    model: Model
    flat: np.ndarray
    params: dict
    dataset: Dataset
    summary: dict | None
    class_names: tuple

    @property
    def n_classes(self) -> int:
        return self.model.n_classes

    @property
    def dim(self) -> int:
        """The data dimension d: inputs have shape (m, d)."""
        return self.model.in_dim

    @property
    def status(self) -> str | None:
        """The run's status in summary.json (completed, stalled, interrupted, diverged)."""
        return None if self.summary is None else self.summary.get("status")

    def __repr__(self) -> str:
        acc = (self.summary or {}).get("final", {}).get("test_accuracy")
        tail = f", test accuracy {100 * acc:.1f}%" if isinstance(acc, (int, float)) else ""
        return f"Run({str(self.path)!r}: {self.model.name} on {self.dataset.name}, {self.n_classes} classes{tail})"

    # -- predictions -------------------------------------------------------------------------------

    def points(self, x, *, scaled: bool = False, where=None) -> np.ndarray:
        """x checked (m, d) finite numbers, multiplied by the run's data scale unless scaled.

        where: optional names of the points' places for the messages (e.g. a file's lines); by default
        "point 1", "point 2", ... (1-based)."""
        a = np.asarray(x)
        if a.dtype.kind not in "biuf":
            raise RkgenError(f"the points must be real numbers, got an array of dtype {a.dtype}")
        d = self.dim
        if a.ndim != 2 or a.shape[1] != d:
            raise RkgenError(
                f"the points must have shape (m, {d}) (this run's data has {d} features), got shape {a.shape}"
            )
        a = a.astype(float, copy=False)
        bad = ~np.all(np.isfinite(a), axis=1)
        if bad.any():
            some, n = _some_points(bad, where)
            raise RkgenError(f"{some} {'holds' if n == 1 else 'hold'} NaN or infinite values")
        scale = self.config.data_scale
        if not scaled and scale != 1.0:
            with np.errstate(over="ignore", under="ignore", invalid="ignore"):
                a = a * scale  # exactly as the trainer scales its points
            bad = ~np.all(np.isfinite(a), axis=1)
            if bad.any():
                some, n = _some_points(bad, where)
                raise RkgenError(
                    f"{some} {'overflows' if n == 1 else 'overflow'} to infinity when scaled by the run's "
                    f"data scale {scale:g} (its --data-scale): with it, the values must stay below "
                    f"{np.finfo(float).max / scale:.3g} in magnitude"
                )
        return a

    def classify(self, x, *, scaled: bool = False, where=None) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities (m, K), class indices (m,)) from one pass over x (where: see points)."""
        a = self.points(x, scaled=scaled, where=where)
        K = self.n_classes
        if len(a) == 0:
            return np.empty((0, K)), np.empty(0, dtype=np.int64)
        try:
            with np.errstate(over="ignore", under="ignore", invalid="ignore", divide="ignore"):
                proba, classes = self.model.probabilities(self.flat, a)
        except SolveFailure as e:
            raise RkgenError(f"cannot predict these points: {e}") from None
        bad = ~np.all(np.isfinite(proba), axis=1)
        if bad.any():
            some, _ = _some_points(bad, where)
            raise RkgenError(f"the network's output is not finite for {some} (points far outside the training data?)")
        return proba, classes

    def predict_proba(self, x, *, scaled: bool = False) -> np.ndarray:
        """Class probabilities (m, K): the sigmoid hypothesis as [1 - p, p] for the squared loss,
        the softmax for cross-entropy. Column k belongs to class_names[k]."""
        return self.classify(x, scaled=scaled)[0]

    def predict(self, x, *, scaled: bool = False) -> np.ndarray:
        """Class indices (m,) in 0..K-1; class_names maps them to the original labels."""
        return self.classify(x, scaled=scaled)[1]

    def predict_labels(self, x, *, scaled: bool = False) -> np.ndarray:
        """The predicted original class names (m,), as strings."""
        return self.decode(self.predict(x, scaled=scaled))

    # -- labels ------------------------------------------------------------------------------------

    def decode(self, classes) -> np.ndarray:
        """Class indices -> the original class names (strings)."""
        return np.array(self.class_names, dtype=str)[np.asarray(classes, dtype=np.int64)]

    def encode(self, labels, where=None) -> np.ndarray:
        """Original labels (class names; numbers match a numeric name of equal value) -> indices.

        where: optional names of the labels' places for the message (e.g. a file's lines)."""
        a = np.asarray(labels)
        if a.ndim != 1:
            raise RkgenError(f"the labels must be one-dimensional, got shape {a.shape}")
        index = {name: k for k, name in enumerate(self.class_names)}
        numeric = {}
        for k, name in enumerate(self.class_names):
            try:
                numeric.setdefault(float(name), k)
            except ValueError:
                pass
        out = np.empty(len(a), dtype=np.int64)
        for i, v in enumerate(a.tolist()):
            text = str(v).strip()
            k = index.get(text)
            if k is None:
                try:
                    k = numeric.get(float(text))
                except ValueError:
                    k = None
            if k is None:
                place = f"labels[{i}]" if where is None else where[i]
                raise RkgenError(
                    f"{place}: the label {text!r} is not a class of this run; its classes are "
                    f"{', '.join(self.class_names)}"
                )
            out[i] = k
        return out

    def accuracy(self, x, labels, *, scaled: bool = False) -> float:
        """The share of points whose predicted class is their label (original class names)."""
        c = self.encode(labels)
        a = self.points(x, scaled=scaled)
        if len(c) != len(a):
            raise RkgenError(f"{len(a)} point{'s' * (len(a) != 1)} but {len(c)} label{'s' * (len(c) != 1)}")
        if len(a) == 0:
            raise RkgenError("no points to measure an accuracy on")
        return float(np.count_nonzero(self.predict(a, scaled=True) == c) / len(a))

    def evaluate(self, split: str = "test") -> float:
        """The accuracy on the run's own training or test points (dataset.npz)."""
        if split not in ("train", "test"):
            raise RkgenError(f"split must be 'train' or 'test', not {split!r}")
        x = getattr(self.dataset, f"x_{split}")
        c = getattr(self.dataset, f"c_{split}")
        return float(np.count_nonzero(self.predict(x, scaled=True) == c) / len(x))


def _some_points(bad: np.ndarray, where=None) -> tuple[str, int]:
    """("1 point (point 3)" or "2 points (the first: line 5)", how many): the rows where ``bad``, named by
    ``where`` or counted from 1."""
    rows = np.flatnonzero(bad)
    first = where[rows[0]] if where is not None else f"point {rows[0] + 1}"
    if len(rows) == 1:
        return f"1 point ({first})", 1
    return f"{len(rows)} points (the first: {first})", len(rows)


# -- loading ---------------------------------------------------------------------------------------


def load_run(run, network=None) -> Run:
    """Reload the run folder ``run`` for prediction.

    network: the tableau to use instead of the one config.json names (a built-in name, a JSON
    tableau or a generated ``*_net.py`` path, or a module), e.g. when that file has moved; it must
    be the same tableau.
    """
    path = Path(run)
    if not path.is_dir():
        if path.is_file():
            raise RkgenError(f"{run} is a file, not a run folder (give the folder 'rkgen train' wrote)")
        if path.exists() or path.is_symlink():
            raise RkgenError(f"{run} is not a folder, so not a run folder")
        raise RkgenError(f"{run}: no such run folder")
    for name in _NEEDED:
        if not (path / name).is_file():
            raise RkgenError(f"{run} is not a trained run folder (no {name})")
    saved = runs.read_json(path / "config.json")
    if not isinstance(saved, dict) or not isinstance(saved.get("config"), dict):
        raise RkgenError(f"{path / 'config.json'}: not a run configuration (no 'config' object)")
    try:
        cfg = TrainConfig.from_dict(saved["config"])
    except RkgenError as e:
        raise RkgenError(f"{path / 'config.json'}: {e} (written by another version of rkgen?)") from None
    dataset = runs.read_dataset(path / "dataset.npz")
    net = _network(path, cfg, saved, network)
    model = _model(path, cfg, saved, dataset, net)
    flat, params = _read_params(path / "params.npz", model)
    summary = runs.read_json(path / "summary.json") if (path / "summary.json").is_file() else None
    if summary is not None and not isinstance(summary, dict):
        raise RkgenError(f"{path / 'summary.json'}: not a run summary")
    names = tuple(dataset.class_names) or tuple(str(k) for k in range(dataset.n_classes))
    if len(names) != dataset.n_classes or len(set(names)) != len(names):
        raise RkgenError(f"{path / 'dataset.npz'}: {len(names)} class names for {dataset.n_classes} classes")
    return Run(path, cfg, model, flat, params, dataset, summary, names)


def _looks_like_path(spec: str) -> bool:
    return spec.endswith((".json", ".py")) or "/" in spec or "\\" in spec


def _network(path: Path, cfg: TrainConfig, saved: dict, network):
    """The network module of the run (None for the plain net), checked against config.json."""
    if cfg.model == "net":
        if network is not None:
            raise RkgenError(f"{path} is a plain net run; it has no tableau to replace")
        return None
    spec = network if network is not None else cfg.tableau
    if not isinstance(spec, str):
        if spec is None:
            raise RkgenError(f"{path / 'config.json'}: model {cfg.model!r} without a tableau")
        net = resolve_network(spec)
    else:
        given = network is not None
        if _looks_like_path(spec) and not Path(spec).is_file():
            if given:
                raise RkgenError(f"tableau {spec!r}: no such file")
            raise RkgenError(
                f"{path}: the run's tableau file {spec!r} (config.json) is not there any more; "
                "if it moved, give its new place (rkgen predict --tableau, load_run(network=...))"
            )
        if spec.endswith(".py"):
            _check_generated(Path(spec))
        net = resolve_network(spec)
    info = saved.get("network")
    if isinstance(info, dict):
        _check_same_tableau(path, net, info, spec)
    return net


def _check_generated(file: Path) -> None:
    """Refuse to import a .py file that rkgen did not write (a run folder names it; the import
    runs it)."""
    try:
        with open(file, encoding="utf-8", errors="replace") as fh:
            head = fh.read(8192)
    except OSError as e:
        raise RkgenError(f"{file}: cannot read: {e.strerror}") from None
    if "Generated by rkgen" not in head or 'MODULE_KEY = "rkgen_net_' not in head:
        raise RkgenError(f"{file} is not a network module written by rkgen; not importing it")


def _model(path: Path, cfg: TrainConfig, saved: dict, dataset: Dataset, net) -> Model:
    scale = cfg.data_scale
    if not isinstance(scale, (int, float)) or isinstance(scale, bool) or not (scale > 0 and math.isfinite(scale)):
        raise RkgenError(f"{path / 'config.json'}: data_scale {scale!r} is not a positive number")
    nodes = _recorded_nodes(path, cfg, saved)
    try:  # as the trainer builds it, without its memory estimate for training
        from rkgen.train.trainer import build_model

        model = build_model(cfg, dataset, net, check_memory=False, nodes=nodes)
    except (TypeError, ValueError) as e:
        raise RkgenError(f"{path / 'config.json'}: cannot build its model ({e})") from None
    except RkgenError as e:
        raise RkgenError(f"{path}: incompatible run: {e}") from None
    recorded = saved.get("dataset") if isinstance(saved.get("dataset"), dict) else {}
    loss = saved.get("loss")
    if (
        recorded.get("dim", dataset.dim) != dataset.dim
        or recorded.get("classes", dataset.n_classes) != dataset.n_classes
        or (loss is not None and loss != model.loss)
    ):
        raise RkgenError(f"{path}: config.json and dataset.npz do not describe the same model")
    return model


def _recorded_nodes(path: Path, cfg: TrainConfig, saved: dict):
    """The node times config.json records for the continuous layout (None: the model's own grid)."""
    if cfg.params != "continuous":
        return None
    layout = saved.get("layout")
    nodes = layout.get("nodes") if isinstance(layout, dict) else None
    if nodes is None:
        return None
    try:
        nodes = np.array(nodes, dtype=float)
    except (TypeError, ValueError):
        raise RkgenError(f"{path / 'config.json'}: the node times are not a list of numbers") from None
    if nodes.shape != (int(cfg.layers) + 1,):
        layers = f"{cfg.layers} layer{'s' * (cfg.layers != 1)}"
        raise RkgenError(f"{path / 'config.json'}: {nodes.size} node times for {layers}")
    return nodes


def _read_params(file: Path, model: Model) -> tuple[np.ndarray, dict]:
    arrays = runs.read_npz(file)
    if model.nodes is not None:
        nodes = arrays.get("nodes")
        if nodes is None or nodes.shape != model.nodes.shape or not np.array_equal(nodes, model.nodes):
            raise RkgenError(f"{file}: the node times ('nodes') are missing or differ from config.json's")
    flat = arrays.get("flat")
    if flat is None:
        flat = np.empty(model.size, model.dtype)
        views = model.views(flat)
        for k, view in views.items():
            a = arrays.get(k)
            if a is None or a.shape != view.shape:
                raise RkgenError(f"{file} does not fit the model of config.json ({k!r})")
            view[...] = a
    elif flat.shape != (model.size,) or flat.dtype.kind != "f":
        raise RkgenError(
            f"{file} does not fit the model of config.json ({flat.size} parameters, the model has {model.size})"
        )
    flat = np.array(flat, dtype=model.dtype)
    if not np.all(np.isfinite(flat)):
        raise RkgenError(f"{file}: the parameters contain NaN or infinite values")
    params = {k: v.copy() for k, v in model.views(flat).items()}
    for k, v in params.items():
        if k in arrays and not np.array_equal(arrays[k], v):
            raise RkgenError(f"{file}: the array {k!r} disagrees with the flat parameter vector")
    return flat, params
