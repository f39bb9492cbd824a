"""The examples of Benning et al. 2019 (000) sections 5.2 and 5.4 at tiny size (3 iterations each
run): every run writes its row, the summary prints the paper's findings with verdicts, the figures
are written. The two examples take about 35 s (section 5.2, most of it drawing the figures) and 20 s
(section 5.4) of CPU; they start in the background right after collection (``prestart``), so that
they overlap with the rest of the session."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
from test_examples import assert_figures, rows

from conftest import ROOT, Background

pytest.importorskip("sklearn")  # digits08 comes with scikit-learn

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import benning2019_digits  # noqa: E402
import benning2019_models  # noqa: E402

SETS = ["benning-donut1d", "benning-donut2d", "benning-spiral", "benning-squares"]
MODELS = ["Net", "ResNet", "ODENet", "ODENet+simplex"]
TIMEOUT = 900
#: the tests that run an example, and their example
EXAMPLES = {"test_benning2019_models": "benning2019_models", "test_benning2019_digits": "benning2019_digits"}
_jobs = {}


def _start(name: str):
    """The example `name` at tiny size in a process of its own, started once: (output folder, job)."""
    if name not in _jobs:
        tmp = tempfile.TemporaryDirectory(prefix=f"rkgen-{name}-")  # removed when the session ends
        out = Path(tmp.name) / "out"
        args = [sys.executable, str(ROOT / "examples" / f"{name}.py"), "--out", str(out), "--no-progress"]
        _jobs[name] = (tmp, out, Background([*args, "--quick", "--iterations", "3"], cwd=tmp.name))
    return _jobs[name][1:]


def prestart(items):
    """Called by conftest after collection: start the selected examples at once."""
    for item in items:
        name = EXAMPLES.get(getattr(item, "originalname", ""))
        if name:
            _start(name)


def _finished(name: str):
    out, job = _start(name)
    code, text, err = job.result(timeout=TIMEOUT)
    assert code == 0, f"{name} exited with {code}:\n{err[-3000:]}"
    return out, text


def test_benning2019_models():
    out, text = _finished("benning2019_models")
    got = rows(out)
    assert [(r["dataset"], r["model"]) for r in got] == [(d, m) for d in SETS for m in MODELS] + [
        ("benning-donut2d", "Net"),
        ("benning-donut2d", "ODENet"),
    ]
    assert {r["iterations"] for r in got} == {"3"}
    assert [r["seed"] for r in got[-2:]] == ["2", "2"]
    for r in got:
        assert r["status"] == "completed" and 0.0 <= float(r["test_accuracy"]) <= 1.0
        if r["model"] == "ResNet":  # h_j = T/N = 1/20 as in the authors' code; ResNet keeps them
            assert r["steps"].split() == ["0.05"] * 20
        if r["model"] == "ODENet+simplex":
            assert abs(sum(float(h) for h in r["steps"].split()) - 1.0) < 1e-3  # written to 4 digits
    assert "The paper's findings beside ours:" in text and "T = 1;" in text
    for finding in ("Net learns (partly)", "ODENet+simplex keeps 2-3 of 20 steps", "ODENet is fastest at first"):
        assert text.count(finding) == 4, finding
    assert_figures(
        out,
        "fig1_datasets",
        "fig2_benning-spiral",
        "fig3_spiral_layers",
        "fig5_seeds",
        "fig6_loss",
        "fig7_accuracy",
        "fig8_steps",
    )


def test_benning2019_digits():
    out, text = _finished("benning2019_digits")
    got = rows(out)
    assert [r["model"] for r in got] == ["Net", "Net (K/8)", "ResNet", "ODENet", "ODENet+simplex"]
    assert float(got[0]["saturation_init"]) > 0.5  # K ~ N(0, 1) at width 64 saturates the Net
    assert float(got[1]["saturation_init"]) < 0.01
    assert "The paper's findings beside ours" in text and "ODENet+simplex: very sparse steps" in text
    assert_figures(out, "fig14_training", "fig15_features")


def test_verdict_rules_can_fail():
    """The measures behind the verdicts tell the cases apart."""
    rng = np.random.default_rng(0)
    cloud = rng.uniform(-1, 1, size=(500, 2))
    t = np.linspace(-1, 1, 500)
    curve = np.column_stack([t, np.sin(3 * t)]) + 1e-3 * rng.standard_normal((500, 2))
    assert benning2019_models.local_ratio(cloud) > 0.6
    assert benning2019_models.local_ratio(curve) < 0.05
    assert benning2019_models.local_ratio(np.zeros((50, 2))) == 0.0
    x = rng.uniform(0, 1, size=(20, 64))
    assert np.allclose(benning2019_digits.correlation(x, 2 * x + 1), 1.0)
    assert abs(benning2019_digits.correlation(x, rng.standard_normal((20, 64))).mean()) < 0.2
