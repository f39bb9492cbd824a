"""Shared pieces of the examples of Giesecke and Kröner (004): the setting of its published code,
its early-stopping rule, its per-entry accuracy, and the verdict rule that puts rkgen's mean beside
004's.

Facts from 004's published code (configs/experiments/*.json, NN.py, optimization.py, accuracy.py):

- every network starts with a bias-free linear layer from the input (width d) to the width d_hat,
  initialised by PyTorch (uniform on +-1/sqrt(d)) and never trained; with ``fill_zeros: false`` (all
  configs but width.json) it stays random, with ``fill_zeros: true`` it is [I; 0] (zero padding).
  rkgen: ``augment="random"`` and ``augment="zeros"``. StandardNet, EulerNet and RK4Net alike.
- hidden layers and the classifier are nn.Linear: weights and biases uniform on +-1/sqrt(d_hat)
  (rkgen: ``init="uniform"``); StandardNet is y <- sigma(K y + b) after the embedding, EulerNet and
  RK4Net take the fixed step h = 0.05 per layer (T = 0.05 L).
- softmax with cross-entropy on K outputs (``binary: false``, so two outputs for two classes), Adam
  with PyTorch's defaults (lr 1e-3), mini-batches of 5 reshuffled every epoch, float32.
- early stopping: after each epoch from the 11th on, stop when the mean validation cost of the last
  five evaluations exceeds that of the five before by more than tol = 0.05 (the evaluation before
  training counts as the first). The tables report the last epoch's values, averaged over the
  repetitions. rkgen runs all epochs; ``stop_004`` below finds where 004 would have stopped, so
  the examples report both.
- accuracy: the code of March 2021 (the version the experiments of the paper ran with; replaced on
  2021-09-13) counts matching entries of the one-hot vectors, ``(C_pred == C).sum() / K / total``.
  A wrong prediction mismatches two entries of K, so per-entry accuracy e and per-sample accuracy a
  relate by e = 1 - 2 (1 - a) / K; for two classes they are the same.
"""

from __future__ import annotations

import math

import _common
import numpy as np

from rkgen.train import train

#: 004's step per layer for EulerNet and RK4Net (NN.py: h = 0.05)
STEP = 0.05
#: 004's early-stopping tolerance on the validation cost (configs: "tol": 0.05)
TOL = 0.05
#: the networks of 004 as rkgen models
NETS = {
    "StandardNet": dict(model="net"),
    "EulerNet": dict(model="rk", tableau="euler", step=STEP),
    "RK4Net": dict(model="rk", tableau="rk4", step=STEP),
}
#: the training of 004's configs (Adam lr 1e-3 batch 5, cross-entropy, random embedding)
SETTING = dict(
    activation="tanh",
    loss="cross-entropy",
    optimizer="adam",
    lr=1e-3,
    batch_size=5,
    augment="random",
    init="uniform",
)
COLUMNS = [
    "train_accuracy",
    "test_accuracy",
    "train_loss",
    "test_loss",
    "stop_004",
    "train_accuracy_004stop",
    "test_accuracy_004stop",
    "train_loss_004stop",
    "test_loss_004stop",
    "seconds",
    "seconds_per_epoch",
]


def stop_004(test_loss, tol: float = TOL) -> int:
    """The epoch after which 004's optimization.train would stop, given the validation costs after
    epochs 0 (before training), 1, 2, ...: the first epoch e + 1 >= 11 with mean(cost[e-3 : e+2]) -
    mean(cost[e-8 : e-3]) > tol; the last epoch when the rule never fires."""
    v = np.asarray(test_loss, dtype=float)
    for e in range(10, len(v) - 1):  # e: 004's 0-based loop index; cost_val then holds v[: e + 2]
        w = v[: e + 2]
        if w[-5:].mean() - w[-10:-5].mean() > tol:
            return e + 1
    return len(v) - 1


def reached_epoch(epochs, acc, within: float = 0.01) -> int:
    """The first epoch at which the accuracy comes within `within` of its final value (a late
    wobble of a point, common with Adam on batches of 5, does not move it)."""
    acc = np.asarray(acc, dtype=float)
    return int(epochs[int(np.argmax(acc >= acc[-1] - within))])


def entry_accuracy(a, k: int):
    """004's per-entry accuracy (March 2021 code) of a per-sample accuracy a with k classes."""
    return 1.0 - 2.0 * (1.0 - np.asarray(a, dtype=float)) / k


def sample_accuracy(e, k: int):
    """The per-sample accuracy of a per-entry accuracy e (the inverse of entry_accuracy)."""
    return 1.0 - k * (1.0 - np.asarray(e, dtype=float)) / 2.0


def entry_accuracy_of(model, flat, x, c) -> float:
    """Per-entry accuracy computed as 004's March 2021 accuracy.py does: one-hot prediction (argmax)
    against one-hot labels, matching entries over K times the points."""
    p = model.predict_proba(flat, x)
    k = p.shape[1]
    pred = np.zeros_like(p)
    pred[np.arange(len(p)), np.argmax(p, axis=1)] = 1.0
    onehot = np.zeros_like(p)
    onehot[np.arange(len(c)), c] = 1.0
    return float((pred == onehot).sum() / k / len(c))


def run(name: str, seed: int, out, progress, **options):
    """Train 004's network ``name`` in 004's setting (options override), and the row of results
    (final values, and the values at the epoch where 004's rule would have stopped)."""
    res = train(**{**SETTING, **NETS[name], **options}, seed=seed, out=str(out), progress=progress, plots=False)
    h = res.history
    stop = stop_004(h["test_loss"])
    i = int(np.flatnonzero(h["epoch"] == stop)[0]) if np.any(h["epoch"] == stop) else len(h["epoch"]) - 1
    row = dict(
        **_common.finals(res),
        stop_004=stop,
        train_accuracy_004stop=float(h["train_accuracy"][i]),
        test_accuracy_004stop=float(h["test_accuracy"][i]),
        train_loss_004stop=float(h["train_loss"][i]),
        test_loss_004stop=float(h["test_loss"][i]),
        seconds=res.seconds,
        seconds_per_epoch=res.seconds / max(1, res.epoch),
    )
    return res, row


def judge(values, paper: float, floor: float, paper_reps: int = 4):
    """rkgen's mean beside 004's mean of paper_reps repetitions. The tolerance is two standard
    errors of the difference of the two means, taking 004's spread equal to rkgen's (004 publishes
    means only), and never below floor: tol = max(floor, 2 s sqrt(1/n + 1/paper_reps)), s the
    sample standard deviation of rkgen's n repetitions (0 for one). Verdict: agrees when |diff| <=
    tol, close when <= 2 tol, differs beyond. Returns (mean, diff, tol, verdict)."""
    v = np.asarray(values, dtype=float)
    mean = float(v.mean()) if len(v) else float("nan")
    s = float(v.std(ddof=1)) if len(v) > 1 else 0.0
    tol = max(floor, 2.0 * s * math.sqrt(1.0 / max(1, len(v)) + 1.0 / paper_reps))
    diff = mean - paper
    if not math.isfinite(diff):
        return mean, diff, tol, "-"
    verdict = "agrees" if abs(diff) <= tol else "close" if abs(diff) <= 2.0 * tol else "differs"
    return mean, diff, tol, verdict


def worst(*verdicts: str) -> str:
    """The worst of several verdicts (differs < close < agrees)."""
    order = ("differs", "close", "agrees")
    known = [v for v in verdicts if v in order]
    return min(known, key=order.index) if known else "-"


def mean_of(rows, key, **match) -> float:
    v = [r[key] for r in rows if all(r[k] == val for k, val in match.items())]
    return float(np.mean(v)) if v else float("nan")


def values_of(rows, key, **match) -> list:
    return [r[key] for r in rows if all(r[k] == val for k, val in match.items())]
