"""A Runge-Kutta block from your own tableau inside a PyTorch model, trained on the 8x8 digits.

The model: an embedding (torch.nn.Linear 64 -> 64), an rkgen.torch.RKBlock of width 64 (N layers of the
Runge-Kutta network of a tableau, its gradient the generated exact adjoint), and a linear classifier to the 10
classes, trained with torch.optim.Adam on scikit-learn's 8x8 digits (1797 images, all 10 classes, bundled with
scikit-learn: no download), pixels scaled to [0, 1], a stratified two-thirds for training.

Beside the block of your tableau (``--tableau``, a built-in name or a JSON file; default the 3-stage
examples/ralston3.json) the same model runs with implicit midpoint, gauss2 and rk4 blocks, and with a plain MLP of
the same size in place of the block (N layers y <- tanh(K y + beta), the same parameters as the block's shared
layout). It prints each model's test accuracy and training time.

    python examples/torch_digits.py                          # ralston3.json, midpoint, gauss2, rk4, MLP
    python examples/torch_digits.py --tableau my_tableau.json --compare rk4
    python examples/torch_digits.py --quick                  # a few hundred images, one epoch (a smoke test)

The blocks compute in float64 (float32 parameters and inputs are converted for the kernels and back). The fully
implicit gauss2 block solves one (s d) x (s d) = 128 x 128 Newton system per sample and stage solve: it is by far
the slowest here. Each new tableau's kernels compile once (20-35 s) into rkgen's cache.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numba
import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from rkgen.torch import RKBlock

HERE = Path(__file__).resolve().parent
WIDTH = 64
CLASSES = 10


def digits(seed: int, quick: bool):
    """(x_train, c_train, x_test, c_test) as tensors: pixels in [0, 1], a stratified split."""
    x, c = load_digits(return_X_y=True)
    x = (x / 16.0).astype(np.float32)
    xtr, xte, ctr, cte = train_test_split(x, c, test_size=1 / 3, stratify=c, random_state=seed)
    if quick:
        xtr, ctr, xte, cte = xtr[:300], ctr[:300], xte[:200], cte[:200]
    return tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in (xtr, ctr, xte, cte))


class MLP(torch.nn.Module):
    """N layers y <- tanh(K_j y + beta_j): the plain network of the block's size (K (N, d, d), beta (N, d))."""

    def __init__(self, width: int, layers: int):
        super().__init__()
        self.layers = torch.nn.ModuleList(torch.nn.Linear(width, width) for _ in range(layers))

    def forward(self, y):
        for layer in self.layers:
            y = torch.tanh(layer(y))
        return y


def model(middle: torch.nn.Module) -> torch.nn.Module:
    return torch.nn.Sequential(torch.nn.Linear(WIDTH, WIDTH), middle, torch.nn.Linear(WIDTH, CLASSES))


def accuracy(net, x, c, batch: int) -> float:
    with torch.no_grad():  # the blocks run without a tape here
        right = sum(int((net(x[i : i + batch]).argmax(1) == c[i : i + batch]).sum()) for i in range(0, len(x), batch))
    return right / len(x)


def fit(net, data, epochs: int, batch: int, lr: float, seed: int):
    """Adam on mini-batches of a seeded shuffle; returns (train accuracy, test accuracy, seconds)."""
    xtr, ctr, xte, cte = data
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(xtr), generator=gen)
        for i in range(0, len(xtr), batch):
            idx = order[i : i + batch]
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xtr[idx]), ctr[idx]).backward()
            opt.step()
    seconds = time.perf_counter() - start
    return accuracy(net, xtr, ctr, batch), accuracy(net, xte, cte, batch), seconds


def blocks(args):
    """(label, middle layer) of every model the run trains."""
    yield f"RK {Path(args.tableau).stem}", lambda: RKBlock(args.tableau, WIDTH, args.layers)
    for name in [n for n in args.compare.split(",") if n.strip()]:
        yield f"RK {name}", lambda name=name: RKBlock(name.strip(), WIDTH, args.layers)
    yield "MLP", lambda: MLP(WIDTH, args.layers)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tableau", default=str(HERE / "ralston3.json"), help="a built-in name or a JSON tableau file")
    p.add_argument("--compare", default="midpoint,gauss2,rk4", help="built-in tableaux to run beside it ('' none)")
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=None, help="torch's and numba's threads (default: all cores)")
    p.add_argument("--quick", action="store_true", help="300 training images, one epoch of batches of 16")
    args = p.parse_args(argv)
    if args.quick:  # small batches run on one thread: only the serial kernels compile
        args.epochs, args.batch = 1, 16
    threads = args.threads or numba.config.NUMBA_NUM_THREADS
    torch.set_num_threads(threads)
    numba.set_num_threads(threads)
    data = digits(args.seed, args.quick)
    print(f"digits: {len(data[0])} training and {len(data[2])} test images, width {WIDTH}, {args.layers} layers, "
          f"{args.epochs} epochs of Adam (batch {args.batch}, lr {args.lr}), {threads} threads")
    print(f"{'model':<22} {'parameters':>10} {'train acc':>9} {'test acc':>9} {'seconds':>8}")
    for label, make in blocks(args):
        torch.manual_seed(args.seed)
        start = time.perf_counter()
        net = model(make())
        net(data[0][: args.batch]).sum().backward()  # loads the module, compiles its kernels on a first run
        net.zero_grad()
        torch.manual_seed(args.seed)
        net = model(make())
        load = time.perf_counter() - start
        train_acc, test_acc, seconds = fit(net, data, args.epochs, args.batch, args.lr, args.seed)
        size = sum(q.numel() for q in net.parameters())
        print(f"{label:<22} {size:>10} {train_acc:>9.3f} {test_acc:>9.3f} {seconds:>8.1f}"
              + (f"   (load and compile {load:.0f} s)" if load > 2 else ""), flush=True)


if __name__ == "__main__":
    main()
