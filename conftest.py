"""pytest at the repository root: the layers for PyTorch and JAX are doctested only where those are installed."""

import importlib.util

# rkgen/torch.py and rkgen/jax.py import their framework at the top; without the extras
# (pip install ".[torch,jax]") their doctests are skipped instead of failing at collection.
collect_ignore = [
    f"rkgen/{name}.py" for name in ("torch", "jax") if importlib.util.find_spec(name) is None
]
