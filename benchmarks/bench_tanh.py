"""Compare math.tanh with the vectorisable _tanh from rkgen/runtime/fastmath.py, in one run.

Each variant is a numba loop (error_model='numpy') that writes f(x[i]) to out[i] for a contiguous
float64 array. Two shapes are timed:

  * n = 10**6, one pass per call;
  * n = 16*32 = 512 (a batch-times-width block that stays in L1), with 200 passes inside the
    compiled function, so that dispatch overhead is not counted.

Samples are x ~ N(0, 2^2). The fast functions take the same time for any input; glibc's do not.
The variants are interleaved over many short trials. Each trial is timed in CPU time of the thread
(time.thread_time), so preemption on a busy machine is not counted, and each variant keeps its best
trial. sigmoid and softplus are timed
as well, against straightforward math.exp / math.log1p versions.

    /tmp/venv/bin/python benchmarks/bench_tanh.py [--trials 15]
"""

import argparse
import math
import time

import numpy as np
from numba import njit


def load_fragment():
    """The fast math of every generated module: rkgen/runtime/fastmath.py, imported as it is."""
    import rkgen.runtime.fastmath as module

    return module


@njit(cache=False, error_model="numpy")
def _math_sigmoid(x):
    return 1.0 / (1.0 + math.exp(-x))


@njit(cache=False, error_model="numpy")
def _math_softplus(x):
    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))


@njit(cache=False, error_model="numpy")
def _math_tanh(x):
    return math.tanh(x)


def make_loop(f):
    @njit(error_model="numpy")
    def apply(x, out, passes):
        for _ in range(passes):
            for i in range(x.size):
                out[i] = f(x[i])

    return apply


def best_times(variants, x, passes, trials):
    out = np.empty_like(x)
    for loop in variants.values():
        loop(x, out, 1)  # compile and warm up
    best = dict.fromkeys(variants, math.inf)
    for _ in range(trials):
        for name, loop in variants.items():
            t0 = time.thread_time()
            loop(x, out, passes)
            dt = (time.thread_time() - t0) / (passes * x.size)
            best[name] = min(best[name], dt)
    return best


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=15)
    args = ap.parse_args(argv)

    fm = load_fragment()
    pairs = [
        ("tanh", _math_tanh, fm._tanh),
        ("sigmoid", _math_sigmoid, fm._sigmoid),
        ("softplus", _math_softplus, fm._softplus),
    ]
    variants = {}
    for name, ref, fast in pairs:
        variants[f"math {name}"] = make_loop(ref)
        variants[f"_{name}"] = make_loop(fast)

    rng = np.random.default_rng(0)
    print("numba loops, error_model='numpy'; best thread CPU time over trials; ns/element")
    shapes = (("n = 10**6", 10**6, 1, args.trials), ("n = 16*32 = 512", 512, 200, 4 * args.trials))
    for label, n, passes, trials in shapes:
        x = rng.normal(0.0, 2.0, n)
        best = best_times(variants, x, passes, trials)
        print(f"\n{label}")
        for name, _, _ in pairs:
            slow, fast = best[f"math {name}"], best[f"_{name}"]
            print(
                f"  {name:9s} math {slow * 1e9:7.2f}   fast {fast * 1e9:7.2f}   "
                f"speed-up x{slow / fast:5.2f}"
            )
        if n == 10**6:
            t = min(_time_ufunc(np.tanh, x) for _ in range(args.trials)) / n
            print(f"  (np.tanh ufunc on the same array: {t * 1e9:.2f} ns/element)")


def _time_ufunc(ufunc, x):
    out = np.empty_like(x)
    t0 = time.thread_time()
    ufunc(x, out=out)
    return time.thread_time() - t0


if __name__ == "__main__":
    main()
