"""Training of Runge-Kutta networks (numpy only): data sets, models, losses, optimisers, the
training loop with run folders and resume, and plots. ``train`` is the Python API behind
``rkgen train``."""

from rkgen.train.config import TrainConfig
from rkgen.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]
