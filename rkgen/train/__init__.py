"""The trainer, downstream of the chain: it fits generated network modules to data.

Numpy only: data sets, models, losses, optimisers, the
training loop with run folders and resume, and plots. ``train`` is the Python API behind
``rkgen train``."""

import sys

from rkgen.train.config import TrainConfig
from rkgen.train.trainer import TrainResult, train

__all__ = ["TrainConfig", "TrainResult", "train"]


class _CallableModule(sys.modules[__name__].__class__):
    """Lets ``rkgen.train(...)`` call :func:`train` while ``rkgen.train`` stays the subpackage."""

    def __call__(self, *args, **kwargs):
        return train(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
