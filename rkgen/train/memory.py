"""What a training run will allocate, estimated before it allocates anything, and what the machine has.

A run that cannot fit is refused with the estimate, instead of running until the kernel kills it. The
largest item is usually the tape of the forward pass: 2·N·s·m·d floats (the stage values Y and
S = σ(K Y + β) of every layer, stage, sample and feature), for N layers, s stages, m samples of a
gradient (the training set, or Adam's mini-batch) and width d; (s + 1)·N·m·d where the network keeps
only Y_1 = y_j of the stage values (an explicit tableau with the resnet field: the module's
``_tape_inputs``). Two tapes are alive at once: the current
iterate's, and the trial step's (gradient descent) or the next batch's (Adam), which is computed before
the previous one is let go. The estimate counts words of 8 bytes (float64), or of 4 for a float32 run
(``word=4``; the tape and the Newton workspace of implicit tableaux stay float64):

>>> est = estimate(layers=10, width=2, stages=4, samples=1000, test_samples=1000, dim=2, classes=2)
>>> est.items["tapes"] == 2 * (2 * 10 * 4 * 1000 * 2) * 8
True
>>> est.total > est.items["tapes"]
True
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rkgen.errors import RkgenError

WORD = 8  # bytes of a float64
#: copies of the flat parameter vector a run holds: the vector, its gradient, the trial step, the
#: previous iterate, Adam's two moments, the tape's copy of K/beta/h and a checkpoint in flight
PARAMETER_COPIES = 8
#: the share of the available memory a run may plan to use (the rest: Python, numba, plots, BLAS)
HEADROOM = 0.8


@dataclass(frozen=True)
class Estimate:
    """Bytes by item (tape, states, data, parameters, solver) and their total."""

    items: dict

    @property
    def total(self) -> int:
        return sum(self.items.values())

    def describe(self) -> str:
        parts = [f"{name} {human(n)}" for name, n in self.items.items() if n >= 2**20]
        return ", ".join(parts) or "under 1 MiB in all"


def human(n: float) -> str:
    """Bytes for people: '1.5 GiB'.

    >>> human(3 * 2**30 // 2)
    '1.5 GiB'
    """
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


def estimate(
    *,
    layers: int,
    width: int,
    stages: int,
    samples: int,
    test_samples: int,
    dim: int,
    classes: int,
    structure: str = "explicit",
    net: bool = False,
    threads: int = 1,
    tape_samples: int | None = None,
    tapes: int = 2,
    params: str = "shared",
    word: int = WORD,
    stage_values: int | None = None,
) -> Estimate:
    """The memory of one run, in bytes. ``net`` is the plain Net (its tape: the N+1 states and N
    activation derivatives); ``structure`` of a Runge-Kutta network decides its per-thread Newton
    workspace (none for explicit, d×d for DIRK, (s·d)×(s·d) for fully implicit tableaux).
    ``tape_samples``: the samples of one gradient (default: all training samples). ``params``: the
    parameter layout, which decides how many K and beta there are (the steps are N more):
    shared N·(d²+d), stage N·s·(d²+d), continuous (N+1)·(d²+d) (the plain Net: N·(d²+d)).
    ``stage_values``: the stage values Y_i a tape keeps per layer (default s; 1 where it keeps y_j only).

    >>> [parameters(10, 2, 4, p) for p in ("shared", "stage", "continuous")]
    [70, 250, 76]
    >>> sizes = dict(layers=10, width=2, stages=4, samples=1000, test_samples=1000, dim=2, classes=2)
    >>> estimate(**sizes).items["tapes"] == 2 * estimate(**sizes, word=4).items["tapes"]  # float32: half
    True
    """
    N, d, s, m = int(layers), int(width), int(stages), int(samples)
    mt = int(test_samples)
    mb = m if tape_samples is None else min(int(tape_samples), m)
    params = parameters(N, d, s, params) + classes * (d + 1)
    if net:
        tape = (2 * N + 1) * mb * d
    else:
        tape = (s + (s if stage_values is None else int(stage_values))) * N * mb * d
    n = 0 if structure == "explicit" else d if structure == "diagonally implicit" else s * d
    items = {
        # implicit tableaux run a float32 call in float64 (their tape too: the module's _widened_forward)
        "tapes": tapes * tape * (word if structure == "explicit" else WORD),
        # the plots keep every layer's features of the training points (N+1)·m·d
        "states": (N + 1) * m * d * word,
        # raw and padded points, final features and classifier outputs of both sets
        "data": (m + mt) * (dim + 3 * d + 2 * classes) * word,
        "parameters": PARAMETER_COPIES * params * word,
        "solver": max(threads, 1) * (n * n + 3 * s * d * d) * WORD if n else 0,
    }
    return Estimate(items)


def parameters(layers: int, width: int, stages: int, params: str = "shared") -> int:
    """The parameters of a network of N layers of width d and s stages, the steps h_j included:
    shared N·(d²+d+1), stage N·s·(d²+d)+N, continuous (N+1)·(d²+d)+N."""
    N, d, s = int(layers), int(width), int(stages)
    sets = {"shared": N, "stage": N * s, "continuous": N + 1 if N else 0}[params]
    return sets * (d * d + d) + N


def available() -> int | None:
    """Bytes this process may still allocate: the smaller of the free memory the kernel reports
    (MemAvailable) and the room left under a cgroup limit (containers, batch schedulers); None
    where neither is known."""
    found = []
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                found.append(int(line.split()[1]) * 1024)
                break
    except (OSError, ValueError, IndexError):
        pass
    for limit, usage in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            cap = Path(limit).read_text().strip()
            if cap != "max" and int(cap) < 2**60:
                found.append(int(cap) - int(Path(usage).read_text().strip()))
                break
        except (OSError, ValueError):
            continue
    if not found:
        try:
            found.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (OSError, ValueError, AttributeError):
            return None
    return max(min(found), 0)


def check(est: Estimate, what: str, have: int | None = None) -> None:
    """Refuse a run whose estimate exceeds the share of the available memory it may plan on."""
    have = available() if have is None else have
    if have is None:
        return
    if est.total > HEADROOM * have:
        raise RkgenError(
            f"{what} needs about {human(est.total)} of memory ({est.describe()}), but this machine "
            f"has {human(have)} available; reduce --layers, --width or --samples"
        )
