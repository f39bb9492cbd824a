"""The trainer's configuration (downstream of the chain): every option, its default, its checks.

A bad option becomes one clear line. The resolved configuration (defaults filled in) is what a run folder's config.json
holds."""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass

from rkgen.errors import RkgenError
from rkgen.train.models import ACTIVATIONS, FIELDS, KINDS, PARAMS
from rkgen.train.optimizers import DEFAULT_LR, OPTIMIZERS

DEFAULT_TABLEAU = "rk4"

#: options given as real numbers; each must be finite (nan and inf are refused by name)
FLOAT_OPTIONS = (
    "final_time",
    "step",
    "init_scale",
    "data_scale",
    "test_fraction",
    "lr",
    "lipschitz",
    "rho_up",
    "rho_down",
    "checkpoint_seconds",
)


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _choice(flag: str, value, allowed) -> None:
    if value not in allowed:
        raise RkgenError(f"unknown {flag[2:]} {value!r}; choose one of {', '.join(allowed)}")


def _at_least(flag: str, value, low: int, why: str = "") -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RkgenError(f"{flag} must be an integer, not {value!r}")
    if value < low:
        text = "non-negative" if low == 0 else "positive" if low == 1 else f"at least {low}"
        raise RkgenError(f"{flag} must be {text}, not {value}" + (f" {why}" if why else ""))


@dataclass
class TrainConfig:
    tableau: str | None = None  # rk4 for the Runge-Kutta models; Net has none
    model: str = "rk"
    dataset: str = "spiral"
    samples: int | None = None
    test_samples: int | None = None
    label_column: int = -1
    test_fraction: float = 0.5
    data_scale: float = 1.0
    layers: int = 10
    width: int | None = None
    field: str = "resnet"
    activation: str = "tanh"
    params: str = "shared"
    loss: str = "auto"
    final_time: float | None = None
    step: float | None = None
    fix_classifier: bool = False
    init_scale: float = 1.0
    optimizer: str = "gd-backtracking"
    iterations: int | None = None
    epochs: int | None = None
    lr: float | None = None
    batch_size: int = 5
    lipschitz: float = 1.0
    rho_up: float = 2.0
    rho_down: float = 0.9
    max_trials: int = 60
    seed: int = 1
    eval_every: int | None = None
    checkpoint_seconds: float = 10.0
    out: str | None = None
    plots: bool = True
    progress: bool | None = None
    threads: int | None = None

    def resolved(self) -> TrainConfig:
        """A copy with every default filled in and every option checked."""
        c = dataclasses.replace(self)
        _choice("--model", c.model, KINDS)
        _choice("--optimizer", c.optimizer, OPTIMIZERS)
        _choice("--field", c.field, FIELDS)
        _choice("--activation", c.activation, ACTIVATIONS)
        _choice("--loss", c.loss, ("auto", "squared", "cross-entropy"))
        _choice("--params", c.params, PARAMS)
        for name in FLOAT_OPTIONS:
            value = getattr(c, name)
            if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
                raise RkgenError(f"{_flag(name)} must be a finite number, not {value!r}")
        if c.model == "net":
            if c.tableau is not None:
                raise RkgenError(
                    f"--tableau does not apply to --model net (the plain y <- sigma(K y + beta)); "
                    f"drop --tableau {c.tableau}, or choose --model rk, odenet or odenet-simplex"
                )
            if c.final_time is not None or c.step is not None:
                raise RkgenError("--final-time and --step do not apply to --model net")
            if c.params != "shared":
                raise RkgenError(
                    f"--params {c.params} applies to the Runge-Kutta models (rk, odenet, odenet-simplex); "
                    "--model net has one (K_j, beta_j) per layer (--params shared)"
                )
        elif c.tableau is None:
            c.tableau = DEFAULT_TABLEAU
        elif not c.tableau:
            raise RkgenError(f"--model {c.model} needs --tableau")
        if c.final_time is not None and c.step is not None:
            raise RkgenError("give either --final-time or --step, not both")
        if c.model != "net" and c.step is None and c.final_time is None:
            c.final_time = 5.0
        if c.final_time is not None and not c.final_time > 0.0:
            raise RkgenError(f"--final-time must be positive, not {c.final_time:g}")
        if c.step is not None and not c.step > 0.0:
            raise RkgenError(f"--step must be positive, not {c.step:g}")
        _at_least("--layers", c.layers, 1)
        if c.width is not None:
            _at_least("--width", c.width, 1)
        _at_least("--seed", c.seed, 0, "(numpy's seeds are non-negative integers)")
        if c.seed >= 2**128:
            raise RkgenError("--seed must be below 2**128")
        if c.optimizer == "adam":
            if c.iterations is not None:
                raise RkgenError("--iterations applies to gd and gd-backtracking; adam counts --epochs")
            c.epochs = 40 if c.epochs is None else c.epochs
            _at_least("--epochs", c.epochs, 0)
            _at_least("--batch-size", c.batch_size, 1)
        else:
            if c.epochs is not None:
                raise RkgenError(f"--epochs applies to adam; {c.optimizer} counts --iterations")
            c.iterations = 1000 if c.iterations is None else c.iterations
            _at_least("--iterations", c.iterations, 0)
        if c.optimizer == "gd-backtracking":
            if c.lr is not None:
                raise RkgenError("gd-backtracking chooses its own steps (1/L); set --lipschitz, not --lr")
            if not (c.rho_up > 1.0 and 0.0 < c.rho_down <= 1.0 and c.lipschitz > 0.0):
                raise RkgenError("backtracking needs --rho-up > 1, 0 < --rho-down <= 1, --lipschitz > 0")
            _at_least("--max-trials", c.max_trials, 1)
        else:
            c.lr = DEFAULT_LR[c.optimizer] if c.lr is None else c.lr
            if not c.lr > 0:
                raise RkgenError("--lr must be positive")
        if c.eval_every is None:
            c.eval_every = 1 if c.optimizer == "adam" else 10
        _at_least("--eval-every", c.eval_every, 1)
        if not c.data_scale > 0.0:
            raise RkgenError("--data-scale must be a positive finite number")
        if not c.init_scale >= 0.0:
            raise RkgenError("--init-scale must be a non-negative finite number")
        if not c.checkpoint_seconds >= 0.0:
            raise RkgenError("--checkpoint-seconds must be a non-negative number")
        if not 0.0 < c.test_fraction < 1.0:
            raise RkgenError(
                f"--test-fraction must lie strictly between 0 and 1 (a share of the rows), not {c.test_fraction:g}"
            )
        if c.samples is not None:
            _at_least("--samples", c.samples, 2)
        if c.test_samples is not None:
            _at_least("--test-samples", c.test_samples, 1)
        if c.threads is not None:
            _at_least("--threads", c.threads, 1)
        return c

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise RkgenError(f"unknown configuration keys: {', '.join(sorted(unknown))}")
        return cls(**d)
