"""A generated module is named by its content: the same file imported under two names, in either order, and a
cache folder copied elsewhere with its timestamps (cp -a, rsync -a, a restored CI cache) keep working.

numba's on-disk cache names a file's kernels by the file alone, and a cached parallel kernel refers back to its
module by name. Before modules were named by content, `load_network` imported a file as
`rkgen_generated_<hash of its path>_...`, and a later plain `import x_net` of the same file (or an import from a
copied folder) loaded that cache and died with ModuleNotFoundError. Each process here runs the parallel path.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.slow

RUN = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    how, where = sys.argv[1], sys.argv[2]
    if how == "plain":
        sys.path.insert(0, where)
        import euler_net as net
    else:
        from rkgen.codegen import load_network
        net = load_network(where)
    rng = np.random.default_rng(3)
    m, d, N = 3000, 4, 20  # large enough for the parallel kernels
    y0, K, beta = rng.normal(size=(m, d)), 0.3 * rng.normal(size=(N, d, d)), rng.normal(size=(N, d))
    h = np.full(N, 0.1)
    assert net._layout(m, d, N)[2] is not None, "the parallel path was not taken"
    yN, tape = net.forward(y0, K, beta, h)
    dy0, dK, dbeta, dh = net.backward(tape, np.ones((m, d)))
    print(json.dumps([float(yN.sum()), float(dK.sum()), net.__name__, net.MODULE_KEY]))
    """
)


def _run(tmp_path, how, where):
    env = {**os.environ, "RKGEN_CACHE": str(tmp_path / "cache"), "NUMBA_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", RUN, how, str(where)], capture_output=True, text=True, env=env, timeout=600
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_both_import_orders_and_a_copied_cache(tmp_path):
    from rkgen.codegen import cached_module_path
    from rkgen.tableau import load

    # load_network first, then the same file under its own name
    first = _run(tmp_path, "load", "euler")
    folder = tmp_path / "cache" / cached_module_path(load("euler")).parent.name
    assert (folder / "__pycache__").is_dir()
    plain = _run(tmp_path, "plain", folder)
    assert plain[:2] == first[:2] and plain[3] == first[3] == plain[2]
    # the folder copied elsewhere with its timestamps: both ways of importing still work
    copy = tmp_path / "elsewhere"
    shutil.copytree(folder, copy, copy_function=shutil.copy2)
    assert _run(tmp_path, "plain", copy)[:2] == first[:2]
    assert _run(tmp_path, "load", copy / "euler_net.py")[:2] == first[:2]
    # the reverse order, in a fresh folder: a plain import compiles first, then load_network's import
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    shutil.copy(folder / "euler_net.py", fresh / "euler_net.py")
    assert _run(tmp_path, "plain", fresh)[:2] == first[:2]
    assert _run(tmp_path, "load", fresh / "euler_net.py")[:2] == first[:2]
