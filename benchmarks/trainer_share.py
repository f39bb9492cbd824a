"""How an iteration of rkgen's trainer splits between the generated kernels and the trainer's own work.

``share(config, iterations)`` trains once with the network module's forward and backward wrapped in timers, and
returns the loop's seconds, the seconds inside the module's forward and backward (its public functions: argument
checks, the tape and the compiled passes), the number of calls of each per iteration, and the trainer's own work
per iteration: everything else (parameter views, the classifier and the loss, the line search's arithmetic, the
evaluations' bookkeeping, the history). An iteration of backtracking makes more than one forward pass (every trial
step is one, and the test set is evaluated every ``eval_every`` iterations), so "one gradient" is not one
iteration; the counts say how many passes an iteration made.
"""

from __future__ import annotations

import time
from contextlib import contextmanager


@contextmanager
def _timed_networks(acc):
    """Every network module the trainer loads, with forward and backward timed into ``acc``."""
    import rkgen.train.models as models

    original = models.resolve_network
    wrapped = {}

    def resolve(spec):
        mod = original(spec)
        key = id(mod)
        if key not in wrapped:
            forward, backward = mod.forward, mod.backward

            def timed_forward(*a, **k):
                t0 = time.perf_counter()
                try:
                    return forward(*a, **k)
                finally:
                    acc["forward"] += time.perf_counter() - t0
                    acc["forwards"] += 1

            def timed_backward(*a, **k):
                t0 = time.perf_counter()
                try:
                    return backward(*a, **k)
                finally:
                    acc["backward"] += time.perf_counter() - t0
                    acc["backwards"] += 1

            wrapped[key] = type(mod.__name__ + "_timed", (), {})()
            for name in dir(mod):
                if not name.startswith("__"):
                    setattr(wrapped[key], name, getattr(mod, name))
            wrapped[key].forward = timed_forward
            wrapped[key].backward = timed_backward
        return wrapped[key]

    models.resolve_network = resolve
    try:
        yield
    finally:
        models.resolve_network = original


def share(config: dict, iterations: int) -> dict:
    """Train ``config`` for ``iterations`` (after a short warm-up run) and split the loop's time."""
    from rkgen.train import train

    acc = dict(forward=0.0, backward=0.0, forwards=0, backwards=0)
    with _timed_networks(acc):
        train(**{**config, "iterations": 5})
        for k in acc:
            acc[k] = 0 if isinstance(acc[k], int) else 0.0
        res = train(**{**config, "iterations": iterations})
    loop = float(res.history["seconds"][-1])
    n = max(res.iteration, 1)
    kernels = acc["forward"] + acc["backward"]
    return {
        "iterations": n,
        "loop_ms": 1e3 * loop / n,
        "forward_ms": 1e3 * acc["forward"] / max(acc["forwards"], 1),
        "backward_ms": 1e3 * acc["backward"] / max(acc["backwards"], 1),
        "forwards_per_iteration": acc["forwards"] / n,
        "backwards_per_iteration": acc["backwards"] / n,
        "own_ms": 1e3 * (loop - kernels) / n,
        "own_share": (loop - kernels) / loop if loop > 0 else float("nan"),
    }


def describe(s: dict) -> str:
    return (
        f"{s['loop_ms']:.3f} ms per iteration = {s['forwards_per_iteration']:.2f} forward passes x "
        f"{s['forward_ms']:.3f} ms + {s['backwards_per_iteration']:.2f} backward x {s['backward_ms']:.3f} ms + the "
        f"trainer's own work {s['own_ms']:.3f} ms ({100 * s['own_share']:.1f}% of the iteration)"
    )
