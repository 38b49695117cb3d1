"""``cnn profile``: LeNet-5's forward and backward time per layer, on random input."""
import time

import numpy as np

from .. import profiler
from ..runtime_info import show_config
from ..nn import functional as F
from ..random import manual_seed
from ..tensor import randn
from .lenet import lenet5
from .options import add_threads_option, apply_threads, positive_int

WARMUP = 3


def register(subparsers):
    """Add the ``profile`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "profile", help="forward/backward time per layer of LeNet-5",
        description="Time the forward and backward pass of each LeNet-5 layer on random "
                    f"1 x 28 x 28 images (after {WARMUP} warm-up steps), then a whole training "
                    "step as training runs it, with Conv2d + ReLU + MaxPool2d fused.")
    parser.add_argument("--batch-size", type=positive_int, default=64, metavar="B",
                        help="images per step (default: 64)")
    parser.add_argument("--iters", type=positive_int, default=50, metavar="N",
                        help="timed steps; the table shows their mean (default: 50)")
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn profile``; return the exit status."""
    apply_threads(args)
    manual_seed(0)
    model = lenet5()
    images = randn(args.batch_size, 1, 28, 28)
    labels = np.random.default_rng(0).integers(0, 10, args.batch_size)

    def step():
        model.zero_grad()
        F.cross_entropy(model(images), labels).backward()

    info = show_config(mode="dicts")
    threads = f"{info['threads']} thread{'' if info['threads'] == 1 else 's'}"
    print(f"LeNet-5, batch {args.batch_size}, {threads}, kernels {info['isa']}: "
          f"forward and backward per layer, mean of {args.iters} steps")
    with profiler.profile(model) as layers:
        for _ in range(WARMUP):
            step()
        layers.reset()
        for _ in range(args.iters):
            step()
    print(layers.table(iterations=args.iters))

    # The profiler runs the layers one by one; a training step runs the fused op.
    for _ in range(WARMUP):
        step()
    start = time.perf_counter()
    for _ in range(args.iters):
        step()
    seconds = (time.perf_counter() - start) / args.iters
    print(f"whole step with the fused Conv2d + ReLU + MaxPool2d (loss included): "
          f"{seconds * 1000:.3f} ms, {args.batch_size / seconds:,.0f} images/s")
    return 0
