"""The DataLoader's worker processes against the kernels' threads: an augmented CIFAR-shaped
epoch at num_workers 0, 1 and 2.

By default a loader with workers limits the kernel threads to max(1, cores - workers) while it
loads (limit_kernel_threads=True); where that changes the thread count, the bench also runs the
configuration without the limit, to show what the limit saves.

One epoch of the CIFAR net of the figures (conv 3->32, ReLU, pool; conv 32->64, ReLU, pool;
linear 4096->10; SGD with momentum, batch 64) over CIFAR-shaped images (32 x 32 x 3 uint8, read
by cnn.datasets.CIFAR10) with the standard augmentation (RandomCrop(32, padding=4),
RandomHorizontalFlip, ToTensor, Normalize), for each kernel thread count (--threads, default
2 and 1) and worker count (0, 1, 2); and the same epoch's loading alone (no training), which
shows what the augmentation costs. The configurations take turns, repeat by repeat, so that
load from other processes hits them alike; the figures are medians.

    python bench/bench_loader.py [--data DIR] [--images N] [--repeats R] [--threads 2 1]
                                 [--json FILE]

--data names a folder holding cifar-10-batches-bin/ or cifar-10-batches-py/; without it the
bench writes random images in CIFAR-10's binary format to a temporary folder.
"""
import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

import cnn
import cnn.transforms as transforms
from cnn import nn
from cnn.nn import functional as F
from cnn.utils.data import DataLoader

import benchlib

MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def log(message):
    print(message, file=sys.stderr, flush=True)


def random_cifar(folder, images, seed=0):
    """CIFAR-10's binary distribution holding `images` random training images (split over the
    five batch files) and a small test batch."""
    folder = Path(folder) / "cifar-10-batches-bin"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    sizes = [images // 5 + (k < images % 5) for k in range(5)] + [10]
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    for name, size in zip(names, sizes):
        records = rng.integers(0, 256, (size, 1 + 3072), dtype=np.uint8)
        records[:, 0] %= 10
        (folder / (name + ".bin")).write_bytes(records.tobytes())
    (folder / "batches.meta.txt").write_text("\n".join(f"class{k}" for k in range(10)))


def cifar_net():
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4096, 10))


def epoch_runner(dataset, workers, train, limit=True):
    """A callable running one epoch: loading with `workers` workers, training if `train`;
    `limit` is the loader's limit_kernel_threads (the default, True)."""
    model = cifar_net()
    optimizer = cnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loader = DataLoader(dataset, batch_size=64, shuffle=True, num_workers=workers,
                        limit_kernel_threads=limit)

    def epoch():
        for x, y in loader:
            if train:
                optimizer.zero_grad()
                F.cross_entropy(model(x), y).backward()
                optimizer.step()
    return epoch


def run(args):
    with tempfile.TemporaryDirectory() as scratch:
        root = args.data
        if root is None:
            random_cifar(scratch, args.images)
            root = scratch
        recipe = transforms.Compose([
            transforms.RandomCrop(32, padding=4), transforms.RandomHorizontalFlip(),
            transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
        dataset = cnn.datasets.CIFAR10(root, train=True, transform=recipe)
        if args.data is not None and args.images < len(dataset):
            dataset.data, dataset.targets = (dataset.data[:args.images],
                                             dataset.targets[:args.images])
        log(f"{len(dataset):,} images from {'random data' if args.data is None else root}, "
            f"batch 64; load average {benchlib.load_average()}")
        contenders, before = {}, {}
        cores = benchlib.usable_cores()
        for threads, workers in itertools.product(args.threads, args.workers):
            limited = max(1, min(threads, cores - workers)) if workers else threads
            for limit in (True, False) if limited != threads else (True,):
                if limit and limited != threads:
                    label = f"train, threads {threads} (default: {limited} while loading)"
                else:
                    label = f"train, threads {threads}" + ("" if limit else ", not limited")
                label += f", {workers} workers"
                contenders[label] = epoch_runner(dataset, workers, train=True, limit=limit)
                before[label] = lambda threads=threads: cnn.set_num_threads(threads)
        for workers in args.workers:
            contenders[f"load only, {workers} workers"] = epoch_runner(dataset, workers,
                                                                       train=False)
        samples = benchlib.alternate(contenders, args.repeats, warmup=1, number=1,
                                     before=before, log=log)
    results = []
    for label, sample in samples.items():
        summary = sample.summary()
        results.append({"configuration": label, "seconds": summary,
                        "images_per_second": len(dataset) / summary["median"]})
    return {"machine": benchlib.machine(), "images": len(dataset),
            "load_average_after": benchlib.load_average(), "results": results}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", help="folder holding cifar-10-batches-bin/ or -py/")
    parser.add_argument("--images", type=int, default=10000,
                        help="images per epoch (default 10,000)")
    parser.add_argument("--repeats", type=int, default=3, help="epochs timed per configuration")
    parser.add_argument("--threads", type=int, nargs="+", default=[2, 1],
                        help="kernel thread counts to try (default 2 1)")
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2],
                        help="worker counts to try (default 0 1 2)")
    parser.add_argument("--json", help="also write the results to this file")
    args = parser.parse_args(argv)
    report = run(args)
    rows = [[r["configuration"], benchlib.format_ms(r["seconds"], scale=1, digits=2),
             f"{r['images_per_second']:,.0f}"] for r in report["results"]]
    print(f"Augmented CIFAR-shaped epoch, {report['images']:,} images, batch 64 "
          f"(load average after: {report['load_average_after']})")
    print(benchlib.format_table(rows, ["configuration", "seconds [q1-q3]", "images/s"]))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
