"""The trainer's configuration (downstream of the chain): every option, its default, its checks.

A bad option becomes one clear line. The resolved configuration (defaults filled in) is what a run folder's config.json
holds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from rkgen.errors import RkgenError
from rkgen.train.models import ACTIVATIONS, FIELDS, KINDS
from rkgen.train.optimizers import DEFAULT_LR, OPTIMIZERS


@dataclass
class TrainConfig:
    tableau: str | None = "rk4"
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

    def resolved(self) -> TrainConfig:
        """A copy with every default filled in and every option checked."""
        c = dataclasses.replace(self)
        if c.model not in KINDS:
            raise RkgenError(f"unknown model {c.model!r}; choose one of {', '.join(KINDS)}")
        if c.optimizer not in OPTIMIZERS:
            raise RkgenError(
                f"unknown optimizer {c.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}"
            )
        if c.field not in FIELDS:
            raise RkgenError(f"unknown field {c.field!r}; choose one of {', '.join(FIELDS)}")
        if c.activation not in ACTIVATIONS:
            raise RkgenError(
                f"unknown activation {c.activation!r}; choose one of {', '.join(ACTIVATIONS)}"
            )
        if c.model == "net":
            c.tableau = None
            if c.final_time is not None or c.step is not None:
                raise RkgenError("--final-time and --step do not apply to --model net")
        elif not c.tableau:
            raise RkgenError(f"--model {c.model} needs --tableau")
        if c.final_time is not None and c.step is not None:
            raise RkgenError("give either --final-time or --step, not both")
        if c.model != "net" and c.step is None and c.final_time is None:
            c.final_time = 5.0
        if c.model == "odenet-simplex" and c.step is not None and c.step <= 0:
            raise RkgenError("odenet-simplex needs a positive --step (the steps sum to N*step)")
        if c.model == "odenet-simplex" and c.final_time is not None and c.final_time <= 0:
            raise RkgenError("odenet-simplex needs a positive --final-time (the sum of the steps)")
        if c.layers < 1:
            raise RkgenError("--layers must be at least 1")
        if c.width is not None and c.width < 1:
            raise RkgenError("--width must be positive")
        if c.optimizer == "adam":
            if c.iterations is not None:
                raise RkgenError(
                    "--iterations applies to gd and gd-backtracking; adam counts --epochs"
                )
            c.epochs = 40 if c.epochs is None else c.epochs
            if c.epochs < 0:
                raise RkgenError("--epochs must be non-negative")
            if c.batch_size < 1:
                raise RkgenError("--batch-size must be at least 1")
        else:
            if c.epochs is not None:
                raise RkgenError(f"--epochs applies to adam; {c.optimizer} counts --iterations")
            c.iterations = 1000 if c.iterations is None else c.iterations
            if c.iterations < 0:
                raise RkgenError("--iterations must be non-negative")
        if c.optimizer == "gd-backtracking":
            if c.lr is not None:
                raise RkgenError(
                    "gd-backtracking chooses its own steps (1/L); set --lipschitz, not --lr"
                )
            if not (c.rho_up > 1.0 and 0.0 < c.rho_down <= 1.0 and c.lipschitz > 0.0):
                raise RkgenError(
                    "backtracking needs --rho-up > 1, 0 < --rho-down <= 1, --lipschitz > 0"
                )
        else:
            c.lr = DEFAULT_LR[c.optimizer] if c.lr is None else c.lr
            if not c.lr > 0:
                raise RkgenError("--lr must be positive")
        if c.eval_every is None:
            c.eval_every = 1 if c.optimizer == "adam" else 10
        if c.eval_every < 1:
            raise RkgenError("--eval-every must be at least 1")
        if not (c.data_scale > 0.0 and c.data_scale < float("inf")):
            raise RkgenError("--data-scale must be a positive finite number")
        if c.samples is not None and c.samples < 2:
            raise RkgenError("--samples must be at least 2")
        if c.loss not in ("auto", "squared", "cross-entropy"):
            raise RkgenError(f"unknown loss {c.loss!r}; choose auto, squared or cross-entropy")
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
