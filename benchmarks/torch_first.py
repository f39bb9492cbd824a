"""Imported by the benchmarks that run torch beside generated modules, before they load any of them.

A generated module sets OMP_WAIT_POLICY and GOMP_SPINCOUNT where the user set neither (rkgen.runtime.layout), and
torch's OpenMP reads them when torch is imported. Importing torch first gives torch the process's own environment,
as in a user's program that imports torch before rkgen. Without torch installed, nothing happens.
"""

try:
    import torch  # noqa: F401
except ImportError:
    pass
