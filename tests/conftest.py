"""Shared test fixtures.

Compiled network modules
------------------------
Compiling one generated module costs 20-35 s of numba time on a cold cache, so only a
representative set (``COMPILED``) is compiled in-process, each once per session: the golden
module ``generated/<name>_net.py`` is imported through :func:`rkgen.codegen.import_path` and its
serial kernels are compiled by a first tiny call. Ask for one by name with the fixture
``net_<name>`` (e.g. ``net_rk4``), or parametrize the fixture ``net`` indirectly::

    @pytest.mark.numba
    @pytest.mark.parametrize("net", ["rk4", "gauss2"], indirect=True)
    def test_something(net): ...

Tests that use these fixtures are marked ``numba`` automatically (deselect them with
``-m "not numba"``). numba's ``cache=True`` keeps the machine code in ``generated/__pycache__``,
so a second session does not compile again. Other tableaux are checked without the JIT, in one
subprocess (tests/nojit_check.py).

Background work
---------------
A test module may define ``prestart(items)``: it is called once after collection with the
selected items of that module (never under pytest-xdist, where the work may belong to another
worker), so that slow independent work, e.g. a subprocess, can start early and overlap with the
rest of the session. Start processes with :class:`Background`; any still running when the
session ends are killed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
GENERATED = ROOT / "generated"

for _path in (str(ROOT), str(TESTS)):
    if _path not in sys.path:
        sys.path.append(_path)

# The large products' BLAS (rkgen.runtime.blas) is bound once per process, to MKL where torch was imported first:
# in a test worker that would depend on which tests ran there before. The suite binds scipy's OpenBLAS, so that
# every worker and every subprocess computes alike; test_wide_products_under_either_blas runs MKL and OpenBLAS in
# processes of their own. RKGEN_BLAS=mkl (or auto) in the environment runs the whole suite with that choice.
os.environ.setdefault("RKGEN_BLAS", "openblas")

#: compiled in-process: explicit (with a zero weight: heun3; with several terms in a stage: kutta3,
#: whose third stage is -k1 + 2 k2), DIRK, and fully implicit tableaux
COMPILED = ("euler", "rk4", "heun3", "kutta3", "midpoint", "gauss2", "sdirk2", "radau_iia2")


def golden_module(name: str):
    """The golden module generated/<name>_net.py, imported (once per process), not compiled."""
    from rkgen.codegen import import_path

    path = GENERATED / f"{name}_net.py"
    if not path.is_file():
        pytest.fail(f"{path} is missing; regenerate with `python -m rkgen.codegen generated`")
    return import_path(path)


def _compiled(name: str):
    net = golden_module(name)
    # compile the serial forward and backward kernels (one signature serves every size,
    # field and activation)
    rng = np.random.default_rng(0)
    y0, K, beta = rng.normal(size=(1, 2)), rng.normal(size=(1, 2, 2)), rng.normal(size=(1, 2))
    yN, tape = net.forward(y0, K, beta, np.array([0.1]))
    net.backward(tape, np.ones_like(yN))
    return net


def _net_fixture(name: str):
    @pytest.fixture(scope="session", name=f"net_{name}")
    def fixture():
        return _compiled(name)

    fixture.__doc__ = f"generated/{name}_net.py, compiled (session-scoped)."
    return fixture


for _name in COMPILED:
    globals()[f"_net_{_name}"] = _net_fixture(_name)


@pytest.fixture
def net(request):
    """A compiled golden module, by name through indirect parametrization."""
    name = request.param
    if name not in COMPILED:
        raise ValueError(f"{name} is not compiled in-process; COMPILED = {COMPILED}")
    return request.getfixturevalue(f"net_{name}")


def pytest_collection_modifyitems(items):
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "net" in names or any(n.startswith("net_") and n[4:] in COMPILED for n in names):
            item.add_marker(pytest.mark.numba)


class Background:
    """A subprocess whose stdout and stderr go to temporary files (no pipe can fill up)."""

    running: list[Background] = []

    def __init__(self, args, env=None, cwd=None):
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.proc = subprocess.Popen(args, stdout=self.out, stderr=self.err, env=env, cwd=cwd)
        Background.running.append(self)

    def result(self, timeout):
        """(exit status, stdout, stderr); kills the process and raises TimeoutExpired on timeout."""
        try:
            code = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self.out.seek(0)
        self.err.seek(0)
        return code, self.out.read().decode(), self.err.read().decode()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()  # only the process started here
            self.proc.wait()


def pytest_collection_finish(session):
    if "PYTEST_XDIST_WORKER" in os.environ:
        return
    by_module = {}
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and callable(getattr(module, "prestart", None)):
            by_module.setdefault(module, []).append(item)
    for module, items in by_module.items():
        module.prestart(items)


def pytest_sessionfinish(session):
    for job in Background.running:
        job.kill()
    Background.running.clear()
