"""Run by tests/test_distributed.py, under ``mpirun -n N`` or alone.

``python distributed_worker.py train OUT``: a small float64 conv net trained with SGD (momentum)
for 2 epochs, global batch 10, on 101 random images (the last global batch has 1 image, so one
rank's shard is empty); rank 0 saves the final weights to OUT.
``python distributed_worker.py fail``: rank 1 raises after its first step; the others go on.
``python distributed_worker.py kill``: rank 1 kills itself (SIGKILL) after its first step.
``python distributed_worker.py hang``: rank 1 sleeps (alive, silent) after its first step.
``python distributed_worker.py sizes``: the ranks sum metrics of different lengths; each prints
the DisagreementError it gets and exits with status 3.
"""
import os
import signal
import sys
import time

import numpy as np

import cnn
from cnn import distributed as dist
from cnn import nn
from cnn.utils.data import DistributedLoader, TensorDataset
from cnn.nn import functional as F


def main(mode, out=None):
    dist.init()
    if mode == "sizes":
        try:
            dist.all_reduce_sum(np.ones(2 + dist.rank()))
        except dist.DisagreementError as error:
            print(f"rank {dist.rank()}: {error}", file=sys.stderr)
            sys.exit(3)
    cnn.manual_seed(1 + dist.rank())  # different on each rank: the broadcast must fix it
    model = nn.Sequential(nn.Conv2d(1, 3, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(27, 5)).to(np.float64)
    dist.broadcast_parameters(model)
    optimizer = cnn.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    data = np.random.default_rng(0)
    images = data.standard_normal((101, 1, 8, 8))
    labels = data.integers(0, 5, 101)
    loader = DistributedLoader(TensorDataset(images, labels), batch_size=10, shuffle=True,
                               seed=3)
    losses = []
    with dist.abort_on_error():
        for epoch in range(2 if mode == "train" else 1000):
            for step, (x, y) in enumerate(loader):
                optimizer.zero_grad()
                value = 0.0
                if len(y):
                    loss = F.cross_entropy(model(x), y)
                    loss.backward()
                    value = loss.item() * len(y)
                loss_sum, count = dist.allreduce_gradients(model, weight=len(y),
                                                           extras=[value, len(y)])
                losses.append(loss_sum / count)
                optimizer.step()
                if mode != "train" and dist.rank() == 1:
                    if mode == "fail":
                        raise RuntimeError("rank 1 fails on purpose")
                    if mode == "hang":
                        time.sleep(600)
                    os.kill(os.getpid(), signal.SIGKILL)
    if dist.is_root() and out:
        state = {k: v for k, v in model.state_dict().items()}
        state["losses"] = np.array(losses)
        np.savez(out, **state)


if __name__ == "__main__":
    main(*sys.argv[1:])
