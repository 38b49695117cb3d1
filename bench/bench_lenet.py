"""Time cnn against PyTorch on the figures of SPEC section 7, side by side in one process.

Usage (from the repository root, with the kernels built in place or cnn installed)::

    python bench/bench_lenet.py                 # the full run, a few minutes
    python bench/bench_lenet.py --quick         # a smoke run, under a minute or two
    python bench/bench_lenet.py --json          # the same figures as JSON on stdout
    python bench/bench_lenet.py --threads 1 --repeats 30 --only step64,threads

Figures (ids for --only in brackets):

1. LeNet-5 training step (zero_grad, forward, cross_entropy, backward, SGD momentum 0.9 step)
   at batch 10, 64 and 256 [step10, step64, step256];
2. LeNet-5 inference over the 10,000 test images at batch 1000, eval mode, no grad [infer];
3. the CIFAR-sized net (3x32x32; conv 3->32 3x3 pad 1, ReLU, pool 2; conv 32->64 3x3 pad 1,
   ReLU, pool 2; linear 4096->10), training step at batch 64 [cifar];
4. one full MNIST epoch of LeNet-5 at batch 64, data loading included [epoch];
5. cnn's batch-64 step at 1 and 2 threads, and the speedup (PyTorch's alongside) [threads];
6. peak memory (VmHWM) of a 1-epoch training run, each library alone in a fresh process
   [memory];
and cnn's per-layer forward/backward table of LeNet-5 from cnn.profiler [profile].

Method: both libraries get the same thread count (--threads, default 2), the same data (the
first images of MNIST when its files are found, else random data of the same shapes) and the
same initial weights (cnn's, copied into PyTorch). After warm-up calls, the two are timed in
turns, measurement by measurement, so that load from other processes hits both alike; each
figure is the median over the repeats, the spread is the interquartile range, and
ratio = cnn median / PyTorch median. Without PyTorch (not installed, or CNN_BENCH_NO_TORCH=1)
the table gives cnn's figures alone and says so.
"""
import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

benchlib.prefer_checkout()

import numpy as np  # noqa: E402

from eager import Pair, sgd_trainer, training_step  # noqa: E402
from nets import cifar_net, lenet  # noqa: E402
from peers import torch_info  # noqa: E402

ALL_FIGURES = ("step10", "step64", "step256", "infer", "cifar", "epoch", "threads", "memory",
               "profile")
# SPEC section 7: figure id -> (target as written, test on the row).
TARGETS = {
    "step64": ("ratio <= 0.5", lambda row: row["ratio"] <= 0.5),
    "step10": ("ratio <= 0.5", lambda row: row["ratio"] <= 0.5),
    "step256": ("ratio <= 0.7", lambda row: row["ratio"] <= 0.7),
    "infer": ("ratio <= 0.5", lambda row: row["ratio"] <= 0.5),
    "cifar": ("ratio <= 1.0", lambda row: row["ratio"] <= 1.0),
    "memory": ("ratio <= 0.5", lambda row: row["ratio"] <= 0.5),
}


def log(message):
    """Progress goes to stderr, so that stdout holds only the table (or the JSON)."""
    print(message, file=sys.stderr, flush=True)


def import_torch(disabled):
    """(torch module or None, why not)."""
    if disabled:
        return None, "disabled (--no-torch or CNN_BENCH_NO_TORCH=1)"
    try:
        import torch
    except ImportError as error:
        return None, f"not importable ({error})"
    return torch, None


# ***** networks: bench/nets.py; steps: bench/eager.py *****

def check_same_loss(ctx, pair, x, y):
    """The first forward pass gives the same loss in both (else the harness compares apples
    with pears); returns the absolute difference, or None without PyTorch."""
    if pair.torch is None:
        return None
    with ctx.cnn.no_grad():
        a = float(ctx.cnn.nn.functional.cross_entropy(
            pair.cnn(ctx.cnn.from_numpy(x)), ctx.cnn.from_numpy(y)).item())
    with ctx.torch.no_grad():
        b = float(ctx.torch.nn.functional.cross_entropy(
            pair.torch(ctx.torch.from_numpy(x)), ctx.torch.from_numpy(y)).item())
    if abs(a - b) > 1e-3 * max(1.0, abs(b)):
        ctx.notes.append(f"WARNING: first losses differ (cnn {a:.6f}, torch {b:.6f}): the two "
                         "networks are not the same")
    return abs(a - b)


# ***** figures: each returns one table row (a dict) *****

def row(fid, figure, unit, samples, scale, note=""):
    """A table row from `alternate`'s samples: medians, spread, ratio cnn/torch."""
    cnn_s = samples["cnn"].summary()
    torch_s = samples["torch"].summary() if "torch" in samples else None
    ratio = cnn_s["median"] / torch_s["median"] if torch_s else None
    return {"id": fid, "figure": figure, "unit": unit, "scale": scale, "cnn": cnn_s,
            "torch": torch_s, "ratio": ratio, "note": note}


def time_pair(ctx, fns, **kwargs):
    """alternate() over {"cnn": ..., "torch": ...}, dropping torch when it is absent."""
    fns = {label: fn for label, fn in fns.items() if fn is not None}
    return benchlib.alternate(fns, repeats=kwargs.pop("repeats", ctx.repeats),
                              min_time=kwargs.pop("min_time", ctx.min_time),
                              log=log, **kwargs)


def fig_train_step(ctx, batch):
    """LeNet-5 training step at `batch`, on the first `batch` training images."""
    log(f"LeNet-5 training step, batch {batch}")
    x, y = ctx.train_batch(batch)
    pair = Pair(ctx, lenet)
    diff = check_same_loss(ctx, pair, x, y)
    samples = time_pair(ctx, {
        "cnn": training_step(ctx.cnn, pair.cnn, x, y),
        "torch": pair.torch and training_step(ctx.torch, pair.torch, x, y)}, warmup=5)
    out = row(f"step{batch}", f"LeNet-5 train step, batch {batch} (ms)", "ms", samples, 1e3)
    out["first_loss_abs_diff"] = diff
    return out


def fig_inference(ctx):
    """LeNet-5 forward over the 10,000 test images in batches of 1000, eval mode, no grad."""
    log("LeNet-5 inference, 10,000 test images at batch 1000")
    images, labels = ctx.test_data()
    x = images.astype(np.float32) / np.float32(255)
    pair = Pair(ctx, lenet)
    fns = {}

    def make(lib, model, to_tensor):
        model.eval()
        batches = [to_tensor(x[i:i + 1000]) for i in range(0, len(x), 1000)]

        def infer():
            with lib.no_grad():
                # argmax, as an evaluation loop would; counting hits is left out.
                return [model(b).argmax(1) for b in batches]
        return infer

    fns["cnn"] = make(ctx.cnn, pair.cnn, ctx.cnn.from_numpy)
    if pair.torch is not None:
        fns["torch"] = make(ctx.torch, pair.torch, ctx.torch.from_numpy)
    samples = time_pair(ctx, fns, warmup=2)
    return row("infer", "LeNet-5 inference, 10k test images, batch 1000 (ms)", "ms",
               samples, 1e3)


def fig_cifar(ctx):
    """The CIFAR-sized net's training step at batch 64 on random data."""
    log("CIFAR-sized net training step, batch 64")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 3, 32, 32), dtype=np.float32)
    y = rng.integers(0, 10, 64, dtype=np.int64)
    pair = Pair(ctx, cifar_net)
    diff = check_same_loss(ctx, pair, x, y)
    samples = time_pair(ctx, {
        "cnn": training_step(ctx.cnn, pair.cnn, x, y),
        "torch": pair.torch and training_step(ctx.torch, pair.torch, x, y)}, warmup=5)
    out = row("cifar", "CIFAR-sized net train step, batch 64 (ms)", "ms", samples, 1e3)
    out["first_loss_abs_diff"] = diff
    return out


def cnn_epoch(cnn, root, model, threads, seed=0):
    """A callable training `model` for one epoch over MNIST at batch 64 with cnn's loaders."""
    cnn.set_num_threads(threads)
    dataset = cnn.datasets.MNIST(root, train=True, transform=cnn.transforms.ToTensor())
    loader = cnn.data.DataLoader(dataset, batch_size=64, shuffle=True, seed=seed,
                                 as_tensor=True)
    step = sgd_trainer(cnn, model)

    def epoch(max_batches=None):
        for x, y in itertools.islice(loader, max_batches):
            loss = step(x, y)
        return loss
    return epoch


def torch_epoch(torch, root, model, threads, seed=0):
    """The PyTorch equivalent of cnn_epoch: torch.utils.data over tensors of the same data.

    The images stay uint8 and each batch is converted to float32 / 255, as cnn's MNIST does.
    The loader fetches whole batches (a BatchSampler as sampler, batch_size=None) as cnn's
    does, which is PyTorch's fastest form here: the per-sample form
    (DataLoader(dataset, batch_size=64, shuffle=True)) costs about 0.2 s more per epoch.
    """
    from torch.utils.data import BatchSampler, DataLoader, RandomSampler, TensorDataset
    torch.set_num_threads(threads)
    images, labels = benchlib.read_mnist(root, "train")
    dataset = TensorDataset(torch.from_numpy(images), torch.from_numpy(labels))
    generator = torch.Generator().manual_seed(seed)
    loader = DataLoader(dataset, batch_size=None, sampler=BatchSampler(
        RandomSampler(dataset, generator=generator), batch_size=64, drop_last=False))
    step = sgd_trainer(torch, model)

    def epoch(max_batches=None):
        for x, y in itertools.islice(loader, max_batches):
            loss = step(x.float().div_(255), y)
        return loss
    return epoch


def fig_epoch(ctx):
    """One full MNIST epoch of LeNet-5 at batch 64, data loading included (s)."""
    log(f"One MNIST epoch of LeNet-5, batch 64, {ctx.threads} threads")
    pair = Pair(ctx, lenet)
    fns = {"cnn": cnn_epoch(ctx.cnn, ctx.data_root, pair.cnn, ctx.threads)}
    if pair.torch is not None:
        fns["torch"] = torch_epoch(ctx.torch, ctx.data_root, pair.torch, ctx.threads)
    for fn in fns.values():  # warm-up: a few batches, not a whole epoch
        fn(max_batches=20)
    samples = time_pair(ctx, fns, repeats=ctx.epoch_repeats, number=1, warmup=0)
    threads = f"{ctx.threads} thread{'s' * (ctx.threads > 1)}"
    out = row("epoch", f"one MNIST epoch, batch 64, {threads} (s)", "s", samples, 1.0)
    seconds = out["cnn"]["median"]
    out["target"] = "<= 2.0 s and ratio < 0.5"
    if out["ratio"] is None:
        out["met"] = seconds <= 2.0
        out["note"] = "ratio not judged without PyTorch"
    else:
        out["met"] = seconds <= 2.0 and out["ratio"] < 0.5
    return out


def fig_threads(ctx):
    """cnn's batch-64 training step at 1 and 2 threads (PyTorch's too, for reference)."""
    log("LeNet-5 training step, batch 64, 1 vs 2 threads")
    x, y = ctx.train_batch(64)
    pair = Pair(ctx, lenet)
    fns, before = {}, {}
    for n in (1, 2):
        fns[f"cnn{n}"] = training_step(ctx.cnn, pair.cnn, x, y)
        before[f"cnn{n}"] = (lambda n=n: ctx.cnn.set_num_threads(n))
        if pair.torch is not None:
            fns[f"torch{n}"] = training_step(ctx.torch, pair.torch, x, y)
            before[f"torch{n}"] = (lambda n=n: ctx.torch.set_num_threads(n))
    try:
        samples = benchlib.alternate(fns, repeats=ctx.repeats, min_time=ctx.min_time,
                                     warmup=5, before=before, log=log)
    finally:
        ctx.set_threads(ctx.threads)
    med = {label: s.summary() for label, s in samples.items()}
    speedup = med["cnn1"]["median"] / med["cnn2"]["median"]
    torch_speedup = (med["torch1"]["median"] / med["torch2"]["median"]
                     if "torch1" in med else None)
    note = ("ms per step at 1 -> 2 threads; the ratio column is cnn's speedup (1-thread time / "
            "2-thread time), PyTorch's is in brackets")
    if speedup < 1.0:
        note += (" -- 2 threads slower than 1: the cores were busy with other processes (an "
                 "OpenMP team on a shared core waits for scheduler quanta)")
    return {"id": "threads", "figure": "OpenMP: train step batch 64, 1 -> 2 threads (ms)",
            "unit": "x", "speedup": speedup, "torch_speedup": torch_speedup,
            "samples": med, "target": ">= 1.6x", "met": speedup >= 1.6, "note": note}


def memory_child(lib, root, threads, max_batches):
    """In a fresh process of one library only: train one epoch, print the peak RSS as JSON."""
    rss_start = benchlib.rss_bytes()
    start = benchlib.clock()
    if lib == "cnn":
        import cnn
        rss_import = benchlib.rss_bytes()
        cnn.manual_seed(0)
        run = cnn_epoch(cnn, root, lenet(cnn.nn), threads)
    else:
        import torch
        rss_import = benchlib.rss_bytes()
        torch.manual_seed(0)
        run = torch_epoch(torch, root, lenet(torch.nn), threads)
    rss_data = benchlib.rss_bytes()
    run(max_batches=max_batches)
    print(json.dumps({"lib": lib, "peak_rss": benchlib.peak_rss_bytes(),
                      "rss_start": rss_start, "rss_after_import": rss_import,
                      "rss_after_data": rss_data, "seconds": benchlib.clock() - start,
                      "max_batches": max_batches}))


def fig_memory(ctx):
    """Peak RSS (VmHWM) of a 1-epoch run, each library alone in a fresh process, in MiB."""
    log("Peak memory of a 1-epoch training run, one fresh process per library")
    results = {}
    for lib in ("cnn", "torch") if ctx.torch is not None else ("cnn",):
        command = [sys.executable, str(Path(__file__).resolve()), "--memory-child", lib,
                   "--threads", str(ctx.threads), "--data", str(ctx.data_root)]
        if ctx.memory_batches:
            command += ["--max-batches", str(ctx.memory_batches)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"memory child for {lib} failed:\n{done.stderr}")
        results[lib] = json.loads(done.stdout.strip().splitlines()[-1])
        log(f"    {lib}: peak {results[lib]['peak_rss'] / 2**20:.0f} MiB "
            f"({results[lib]['seconds']:.1f} s)")
    mb = {lib: r["peak_rss"] / 2**20 for lib, r in results.items()}
    note = "" if not ctx.memory_batches else f"partial epoch: {ctx.memory_batches} batches"
    return {"id": "memory", "figure": "peak memory, 1-epoch training run (MiB)", "unit": "MiB",
            "cnn_mb": mb["cnn"], "torch_mb": mb.get("torch"),
            "ratio": mb["cnn"] / mb["torch"] if "torch" in mb else None,
            "children": results, "note": note}


def layer_profile(ctx):
    """cnn's per-layer forward/backward table of LeNet-5 training steps at batch 64.

    The profiler runs the layers one by one (the fused Conv2d+ReLU+MaxPool2d path is bypassed
    to time each layer), so its total is compared with the fused step's time.
    """
    iterations = ctx.profile_iterations
    log(f"Per-layer profile of cnn's LeNet-5, batch 64, {iterations} steps")
    x, y = ctx.train_batch(64)
    pair = Pair(ctx, lenet)
    step = training_step(ctx.cnn, pair.cnn, x, y)
    for _ in range(5):
        step()
    start = benchlib.clock()
    with ctx.cnn.profiler.profile(pair.cnn) as prof:
        for _ in range(iterations):
            step()
    profiled = (benchlib.clock() - start) / iterations
    return {"table": prof.table(iterations=iterations), "iterations": iterations,
            "profiled_step_ms": profiled * 1e3,
            "layers": [{"name": n, "type": t, "forward_ms": f / iterations * 1e3,
                        "backward_ms": b / iterations * 1e3}
                       for n, t, f, b in zip(prof.names, prof.types, prof.forward_time,
                                             prof.backward_time)]}


FIGURES = {"step10": lambda ctx: fig_train_step(ctx, 10),
           "step64": lambda ctx: fig_train_step(ctx, 64),
           "step256": lambda ctx: fig_train_step(ctx, 256),
           "infer": fig_inference, "cifar": fig_cifar, "epoch": fig_epoch,
           "threads": fig_threads, "memory": fig_memory}


# ***** the run *****

class Context:
    """What every figure needs: the libraries, the settings, the data."""

    def __init__(self, args, cnn, torch, torch_missing):
        self.args, self.cnn, self.torch, self.torch_missing = args, cnn, torch, torch_missing
        self.threads = args.threads
        self.quick = args.quick
        self.repeats = args.repeats or (3 if args.quick else 15)
        self.epoch_repeats = args.epoch_repeats or (1 if args.quick else 3)
        self.min_time = 0.05 if args.quick else 0.2
        self.memory_batches = args.max_batches or (150 if args.quick else None)
        self.profile_iterations = 10 if args.quick else 100
        self.notes = []
        self._tmp = None
        self.data_root = None if args.random_data else benchlib.mnist_root(args.data)
        if self.data_root is None and args.data and not args.random_data:
            raise SystemExit(f"--data {args.data}: the four MNIST files are not there "
                             f"({', '.join(benchlib.MNIST_FILES.values())}, each with or "
                             "without .gz)")
        if self.data_root is None:
            # Random data written as IDX files, so that every code path (cnn.datasets.MNIST
            # included) is the same as with the real files.
            self._tmp = tempfile.TemporaryDirectory(prefix="cnn-bench-")
            self.data_root = Path(self._tmp.name)
            write_random_mnist(self.data_root)
            self.data_source = ("random (--random-data)" if args.random_data else
                                "random (MNIST files not found; pass --data or set CNN_DATA)")
        else:
            self.data_source = f"MNIST from {self.data_root}"
        self._train = self._test = None
        self.set_threads(self.threads)

    def set_threads(self, n):
        """The same thread count for both libraries (cnn's kernels, PyTorch's intra-op pool)."""
        self.cnn.set_num_threads(n)
        if self.torch is not None:
            self.torch.set_num_threads(n)

    def train_batch(self, batch):
        """The first `batch` training images as float32 in [0, 1], and their labels."""
        if self._train is None:
            self._train = benchlib.read_mnist(self.data_root, "train")
        images, labels = self._train
        return (images[:batch].astype(np.float32) / np.float32(255), labels[:batch].copy())

    def test_data(self):
        if self._test is None:
            self._test = benchlib.read_mnist(self.data_root, "test")
        return self._test

    def close(self):
        if self._tmp is not None:
            self._tmp.cleanup()


def write_random_mnist(folder):
    """The four MNIST IDX files (uncompressed) holding random images and labels."""
    for split, n, seed in (("train", 60000, 0), ("test", 10000, 1)):
        images, labels = benchlib.random_mnist(n, seed)
        for kind, array, header in (
                ("images", images, [2051, n, 28, 28]), ("labels", labels.astype(np.uint8),
                                                        [2049, n])):
            path = Path(folder) / benchlib.MNIST_FILES[(split, kind)]
            with open(path, "wb") as f:
                f.write(b"".join(v.to_bytes(4, "big") for v in header))
                f.write(array.tobytes())


def environment(ctx):
    """Versions, threads, BLAS and instruction sets: the facts next to the figures."""
    info = benchlib.machine()
    config = ctx.cnn.show_config("dicts")
    info["cnn"] = {**config, "path": str(Path(ctx.cnn.__file__).parent)}
    try:
        from cnn import _blas
        info["cnn"]["blas_threads"] = _blas.info()
    except Exception:  # a private module: its absence must not stop the benchmark
        pass
    if ctx.torch is None:
        info["torch"] = {"available": False, "reason": ctx.torch_missing}
    else:
        info["torch"] = {"available": True, **torch_info(ctx.torch)}
    info["threads"] = ctx.threads
    info["data"] = ctx.data_source
    info["mode"] = "quick" if ctx.quick else "full"
    info["repeats"] = {"timed_figures": ctx.repeats, "epoch": ctx.epoch_repeats,
                       "min_seconds_per_measurement": ctx.min_time}
    return info


def judge(figures):
    """Fill in each row's target and whether it is met (None where it cannot be judged)."""
    for fig in figures:
        if fig["id"] in TARGETS:
            text, test = TARGETS[fig["id"]]
            fig["target"] = text
            fig["met"] = test(fig) if fig.get("ratio") is not None else None
    return figures


def table_rows(figures):
    """The rows of the printed table, in SPEC section 7's order."""
    order = ["step64", "step10", "step256", "infer", "epoch", "cifar", "threads", "memory"]
    rows = []
    for fid in order:
        fig = next((f for f in figures if f["id"] == fid), None)
        if fig is None:
            continue
        if fid == "threads":
            ms = fig["samples"]
            cnn_text = f"{ms['cnn1']['median'] * 1e3:.2f} -> {ms['cnn2']['median'] * 1e3:.2f}"
            torch_text = (f"{ms['torch1']['median'] * 1e3:.2f} -> "
                          f"{ms['torch2']['median'] * 1e3:.2f} ({fig['torch_speedup']:.2f}x)"
                          if fig["torch_speedup"] else "-")
            value = f"{fig['speedup']:.2f}x"
        elif fid == "memory":
            cnn_text = f"{fig['cnn_mb']:.0f}"
            torch_text = f"{fig['torch_mb']:.0f}" if fig["torch_mb"] else "-"
            value = f"{fig['ratio']:.2f}" if fig["ratio"] is not None else "-"
        else:
            digits = 3 if fig["unit"] == "s" else 2
            cnn_text = benchlib.format_ms(fig["cnn"], fig["scale"], digits)
            torch_text = benchlib.format_ms(fig["torch"], fig["scale"], digits)
            value = f"{fig['ratio']:.2f}" if fig["ratio"] is not None else "-"
        met = {True: "yes", False: "NO", None: "n/a"}[fig.get("met")]
        others = fig.get("other_cpu_cores")
        rows.append([fig["figure"], cnn_text, torch_text, value, fig.get("target", ""), met,
                     "?" if others is None else f"{others:.2f}"])
    rows.append(["test accuracy, README recipe, <= 10 epochs", "not measured here", "-", "-",
                 ">= 99.0%", "see README", ""])
    return rows


def report_text(result):
    """The human-readable report: environment, table, notes, per-layer profile."""
    env = result["environment"]
    c, t = env["cnn"], env["torch"]
    lines = [
        f"machine: {env['cpu']}, {env['cores_usable']} usable cores "
        f"({env['cores_online']} online), {env['os']}; load average at start "
        f"{env['load_average_at_start']}, at end {result['load_average_at_end']}",
        f"python {env['python']}, numpy {env['numpy']} (BLAS {c['blas']}; "
        f"{c.get('blas_threads', '?')})",
        f"cnn {c['cnn']} from {c['path']}: instruction set {c['isa']} (CPU can run "
        f"{', '.join(c['isa_available'])}), OpenMP {'on' if c['openmp'] else 'off'}, "
        f"{c['threads']} kernel threads",
        (f"torch {t['version']}: {t['threads']} threads ({t['interop_threads']} inter-op), "
         f"CPU capability {t['cpu_capability']}, BLAS {t['blas']}, oneDNN "
         f"{'on' if t['mkldnn'] else 'off'}") if t["available"]
        else f"torch: {t['reason']}: cnn's figures alone, ratios not judged",
        f"threads: {env['threads']} for both libraries; data: {env['data']}; {env['mode']} run, "
        f"{env['repeats']['timed_figures']} repeats (epoch: {env['repeats']['epoch']})",
        "",
        "cnn and torch: median [interquartile range]; ratio = cnn / torch medians; others: "
        "cores used by other processes meanwhile (0 when idle)",
        benchlib.format_table(result["table"], ["figure", "cnn", "torch", "ratio", "target",
                                                "met?", "others"]),
    ]
    notes = list(result["notes"])
    for fig in result["figures"]:
        if fig.get("note"):
            notes.append(f"{fig['id']}: {fig['note']}")
    if notes:
        lines += [""] + [f"note: {n}" for n in notes]
    if result.get("profile"):
        p = result["profile"]
        step64 = next((f for f in result["figures"] if f["id"] == "step64"), None)
        lines += ["", f"cnn per-layer profile, LeNet-5 train step at batch 64 (layers run one "
                      f"by one, unfused): {p['profiled_step_ms']:.2f} ms per profiled step"
                      + (f" vs {step64['cnn']['median'] * 1e3:.2f} ms fused, unprofiled"
                         if step64 else ""),
                  p["table"]]
    lines += ["", f"total benchmark time {result['seconds']:.0f} s"]
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true", help="a fast smoke run (few repeats)")
    parser.add_argument("--repeats", type=int, help="measurements per timed figure "
                        "(default 15, quick 3)")
    parser.add_argument("--epoch-repeats", type=int, help="epochs timed per library "
                        "(default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=2, help="threads for both libraries "
                        "(default 2, the cores of the reference machine)")
    parser.add_argument("--only", help="comma-separated figure ids: " + ",".join(ALL_FIGURES))
    parser.add_argument("--data", help="folder of the MNIST files (default: $CNN_DATA, the "
                        "shared data folder, ~/.cache/cnn/mnist; random data when absent)")
    parser.add_argument("--random-data", action="store_true",
                        help="use random MNIST-shaped data even where the files are found")
    parser.add_argument("--no-torch", action="store_true",
                        help="time cnn alone, as if PyTorch were not installed")
    parser.add_argument("--memory-child", choices=("cnn", "torch"), help=argparse.SUPPRESS)
    parser.add_argument("--max-batches", type=int, help="memory runs: stop the epoch after "
                        "this many batches (quick: 150)")
    args = parser.parse_args(argv)
    if args.threads < 1 or (args.repeats is not None and args.repeats < 1):
        parser.error("--threads and --repeats must be positive")
    args.only = ALL_FIGURES if not args.only else tuple(args.only.split(","))
    unknown = set(args.only) - set(ALL_FIGURES)
    if unknown:
        parser.error(f"unknown figure ids {sorted(unknown)}; choose from {ALL_FIGURES}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.memory_child:
        memory_child(args.memory_child, args.data, args.threads, args.max_batches)
        return 0
    started = benchlib.clock()
    import cnn
    torch, missing = import_torch(args.no_torch or os.environ.get("CNN_BENCH_NO_TORCH") == "1")
    ctx = Context(args, cnn, torch, missing)
    try:
        env = environment(ctx)
        if torch is None:
            ctx.notes.append(f"PyTorch {missing}: cnn's figures alone; ratio targets not judged")
        log(f"data: {ctx.data_source}; threads {ctx.threads}; torch: "
            f"{torch.__version__ if torch else missing}")
        figures, profile = [], None
        whole_run = benchlib.CpuMonitor()
        for fid in ALL_FIGURES:
            if fid not in args.only:
                continue
            monitor = benchlib.CpuMonitor()
            if fid == "profile":
                profile = layer_profile(ctx)
                profile["other_cpu_cores"] = monitor.others()
                continue
            figure = FIGURES[fid](ctx)
            figure["other_cpu_cores"] = monitor.others()
            figures.append(figure)
        judge(figures)
        others = whole_run.others()
        if others is not None and others > 0.1:
            ctx.notes.append(f"other processes used {others:.2f} of the "
                             f"{env['cores_usable']} cores on average during the run (per "
                             "figure in the JSON, other_cpu_cores): on 2 cores that makes "
                             "2-thread steps wait for scheduler quanta; take final figures on "
                             "an idle machine")
        result = {"environment": env, "figures": figures, "profile": profile,
                  "notes": ctx.notes, "other_cpu_cores": others,
                  "load_average_at_end": benchlib.load_average()}
        result["table"] = table_rows(figures)
        result["seconds"] = benchlib.clock() - started
    finally:
        ctx.close()
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(report_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
