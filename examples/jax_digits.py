"""A Runge-Kutta block from your own tableau inside a JAX model, trained on the 8x8 digits.

The JAX twin of examples/torch_digits.py: an embedding (64 -> 64, affine), an rkgen.jax.RKBlock of width 64 (its
gradient the generated exact adjoint, through jax.custom_vjp and jax.pure_callback), and a linear classifier to the
10 classes, trained with Adam (jax.example_libraries.optimizers, which ships with JAX) on scikit-learn's 8x8 digits
(all 10 classes, bundled: no download), a stratified two-thirds for training. The whole training step is one
jax.jit function. Beside your tableau (``--tableau``, a built-in name or a JSON file; default the 3-stage
examples/ralston3.json): implicit midpoint, gauss2 and rk4 blocks, and a plain MLP of the same size
(N layers y <- tanh(K y + beta)). It prints each model's test accuracy and training time.

    python examples/jax_digits.py                            # ralston3.json, midpoint, gauss2, rk4, MLP
    python examples/jax_digits.py --tableau my_tableau.json --compare rk4
    python examples/jax_digits.py --quick                    # a few hundred images, one epoch (a smoke test)

float32, as JAX computes by default (the kernels compute in float64 and round back); ``--x64`` trains in float64.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numba
import numpy as np
from jax.example_libraries import optimizers
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from rkgen.jax import RKBlock

HERE = Path(__file__).resolve().parent
WIDTH = 64
CLASSES = 10


def digits(seed: int, quick: bool):
    x, c = load_digits(return_X_y=True)
    xtr, xte, ctr, cte = train_test_split(x / 16.0, c, test_size=1 / 3, stratify=c, random_state=seed)
    if quick:
        xtr, ctr, xte, cte = xtr[:300], ctr[:300], xte[:200], cte[:200]
    return xtr, ctr, xte, cte


def _linear(key, n_in, n_out):
    a = 1.0 / np.sqrt(n_in)  # torch.nn.Linear's initialisation
    kw, kb = jax.random.split(key)
    return {"w": jax.random.uniform(kw, (n_in, n_out), minval=-a, maxval=a),
            "b": jax.random.uniform(kb, (n_out,), minval=-a, maxval=a)}


def make_model(middle, layers: int, key):
    """(parameters, apply) of embedding -> middle -> classifier; ``middle`` an RKBlock or None (the MLP)."""
    k1, k2, k3 = jax.random.split(key, 3)
    params = {"embed": _linear(k1, WIDTH, WIDTH), "head": _linear(k3, WIDTH, CLASSES)}
    if middle is not None:
        block = middle
        params["block"] = {k: v for k, v in block.init(k2).items() if k != "h"}  # the steps stay fixed
        h = block.init(k2)["h"]

        def mid(p, y):
            return block({**p["block"], "h": h}, y)
    else:
        params["mlp"] = [_linear(k, WIDTH, WIDTH) for k in jax.random.split(k2, layers)]

        def mid(p, y):
            for layer in p["mlp"]:
                y = jnp.tanh(y @ layer["w"] + layer["b"])
            return y

    def apply(p, x):
        y = x @ p["embed"]["w"] + p["embed"]["b"]
        y = mid(p, y)
        return y @ p["head"]["w"] + p["head"]["b"]

    return params, apply


def fit(params, apply, data, epochs: int, batch: int, lr: float, seed: int):
    xtr, ctr, xte, cte = (jnp.asarray(a) for a in data)
    init, update, get = optimizers.adam(lr)

    def loss(p, x, c):
        logp = jax.nn.log_softmax(apply(p, x))
        return -jnp.mean(jnp.take_along_axis(logp, c[:, None], axis=1))

    @jax.jit
    def step(i, state, x, c):
        return update(i, jax.grad(loss)(get(state), x, c), state)

    @jax.jit
    def correct(p, x, c):
        return jnp.sum(jnp.argmax(apply(p, x), axis=1) == c)

    def accuracy(p, x, c):
        return sum(int(correct(p, x[i : i + batch], c[i : i + batch])) for i in range(0, len(x), batch)) / len(x)

    state = init(params)
    rng = np.random.default_rng(seed)
    full = len(xtr) // batch * batch  # whole batches only: one compiled step
    step(0, state, xtr[:batch], ctr[:batch])  # compile (the result is dropped)
    start = time.perf_counter()
    i = 0
    for _ in range(epochs):
        order = rng.permutation(len(xtr))[:full]
        for j in range(0, full, batch):
            state = step(i, state, xtr[order[j : j + batch]], ctr[order[j : j + batch]])
            i += 1
    p = get(state)
    jax.block_until_ready(p)
    seconds = time.perf_counter() - start
    return accuracy(p, xtr, ctr), accuracy(p, xte, cte), seconds


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tableau", default=str(HERE / "ralston3.json"), help="a built-in name or a JSON tableau file")
    p.add_argument("--compare", default="midpoint,gauss2,rk4", help="built-in tableaux to run beside it ('' none)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="numba's threads (default: all cores)")
    p.add_argument("--x64", action="store_true", help="train in float64")
    p.add_argument("--quick", action="store_true", help="300 training images, one epoch of batches of 16")
    args = p.parse_args(argv)
    if args.quick:  # small batches run on one thread: only the serial kernels compile
        args.epochs, args.batch = 1, 16
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    numba.set_num_threads(threads)
    data = digits(args.seed, args.quick)
    print(f"digits: {len(data[0])} training and {len(data[2])} test images, width {WIDTH}, {args.layers} layers, "
          f"{args.epochs} epochs of Adam (batch {args.batch}, lr {args.lr}), {threads} numba threads, "
          f"{'float64' if args.x64 else 'float32'}")
    print(f"{'model':<22} {'parameters':>10} {'train acc':>9} {'test acc':>9} {'seconds':>8}")
    names = [(f"RK {Path(args.tableau).stem}", args.tableau)]
    names += [(f"RK {n.strip()}", n.strip()) for n in args.compare.split(",") if n.strip()]
    names += [("MLP", None)]
    for label, tableau in names:
        start = time.perf_counter()
        block = None if tableau is None else RKBlock(tableau, WIDTH, args.layers)
        params, apply = make_model(block, args.layers, jax.random.key(args.seed))
        train_acc, test_acc, seconds = fit(params, apply, data, args.epochs, args.batch, args.lr, args.seed)
        load = time.perf_counter() - start - seconds
        size = sum(a.size for a in jax.tree.leaves(params))
        print(f"{label:<22} {size:>10} {train_acc:>9.3f} {test_acc:>9.3f} {seconds:>8.1f}"
              + (f"   (load, compile and evaluation {load:.0f} s)" if load > 2 else ""), flush=True)


if __name__ == "__main__":
    main()
