"""Helpers for bench_lenet.py: alternating timer, statistics, machine facts, MNIST files, table.

Nothing here knows about networks; bench_lenet.py builds the models and says what to time.
Only the standard library and NumPy are imported at module level, so the memory-measuring
child processes load nothing but the one library they measure.
"""
import gc
import gzip
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

clock = time.perf_counter
REPO = Path(__file__).resolve().parent.parent


def prefer_checkout():
    """Measure the cnn of this checkout when its kernels are built in place, else the installed
    one (call before cnn is imported)."""
    ext = REPO / "cnn" / "_ext"
    built = list(ext.glob("_cpu*.so")) + list(ext.glob("_cpu*.pyd"))
    if built and str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))


# ***** timing *****

class Samples:
    """Seconds per call, one value per measurement, of one contender (e.g. "cnn")."""

    def __init__(self, label):
        self.label = label
        self.values = []   # seconds per call, one per measurement
        self.cores = []    # this process's CPU seconds per wall second, one per measurement
        self.number = None  # calls per measurement

    def summary(self):
        """Median, quartiles, min and max of the per-call times, in seconds, and the median
        number of cores the process kept busy meanwhile (its CPU time over the wall time)."""
        v = sorted(self.values)
        if len(v) >= 4:
            q1, _, q3 = statistics.quantiles(v, n=4, method="inclusive")
        else:  # too few for quartiles: the range stands in for them
            q1, q3 = v[0], v[-1]
        return {"median": statistics.median(v), "q1": q1, "q3": q3, "min": v[0], "max": v[-1],
                "repeats": len(v), "calls_per_repeat": self.number,
                "cores_used": statistics.median(self.cores) if self.cores else None}


def median_ratio(a, b):
    """The median over measurements of a's time / b's time (two Samples timed in turns).

    Each pair was measured back to back, so a slow spell of the machine inflates both terms
    of the same ratio: the median of the ratios is steadier than the ratio of the medians.
    """
    return statistics.median(x / y for x, y in zip(a.values, b.values))


# Measurements of this many calls or fewer (callables of 0.1 s or more) start with an untimed
# call each (see _turns).
SETTLE_BELOW = 2


def _measure(fn, number):
    """(seconds per call, cores used) of `number` back-to-back calls of fn.

    Cores used is the process's CPU time (all its threads) over the wall time: about the
    thread count when a library's threads all work, less when they wait.
    """
    cpu = time.process_time()
    start = clock()
    for _ in range(number):
        fn()
    wall = clock() - start
    return wall / number, (time.process_time() - cpu) / max(wall, 1e-9)


def alternate(contenders, repeats, warmup=3, min_time=0.2, number=None, before=None, log=None,
              pause=0.0):
    """Time several callables measurement by measurement, taking turns.

    Turn-taking, rather than timing one callable's repeats and then the other's, makes a burst
    of load from another process (the machines here are shared) hit every contender alike, so
    the ratio of the medians stays meaningful even when the absolute times move.

    Args:
        contenders (dict): label -> callable taking no argument (one training step, ...).
        repeats (int): Measurements per contender; the median of them is the figure.
        warmup (int): Calls of each contender before the measurements (workspaces get
            allocated, caches and the OpenMP team get warm, lazy imports happen); the last
            one is timed to calibrate `number`, the others are not.
        min_time (float): Each measurement runs the callable enough times to last about this
            many seconds, so that timer resolution and per-measurement noise do not matter;
            callables slower than that run once per measurement.
        number (int, optional): Calls per measurement, fixed; skips the calibration call
            (for callables as long as a whole epoch).
        before (dict, optional): label -> callable run untimed before each of that contender's
            measurements (for example to switch the thread count).
        log (callable, optional): Progress messages go here.
        pause (float): Seconds to sleep before each measurement, so that the worker threads
            of the contender measured before (OpenMP teams, ONNX Runtime's pool) stop spinning
            and do not take cores from the next one.

    A measurement of at most SETTLE_BELOW calls is preceded by one untimed call of the same
    contender, which absorbs what the contender before it left behind.

    Returns:
        dict: label -> :class:`Samples`.
    """
    before = before or {}
    samples = {label: Samples(label) for label in contenders}
    for label, fn in contenders.items():
        before.get(label, _nothing)()
        for _ in range(warmup - 1):
            fn()
        if number is not None:
            if warmup:
                fn()
            samples[label].number = number
            continue
        # Calibrate: the last warm-up call, timed, decides how many calls make up one
        # measurement (an extra call where there is no warm-up).
        once, _ = _measure(fn, 1)
        samples[label].number = max(1, math.ceil(min_time / max(once, 1e-9)))
    labels = list(contenders)
    # Everything alive now (the libraries' modules, the models) is frozen out of the garbage
    # collector's sight, so that the collection before each measurement looks at the
    # contenders' new objects only: with PyTorch, JAX and ONNX Runtime imported a full
    # collection takes 0.1-0.5 s, which would double a run's length.
    gc.collect()
    gc.freeze()
    try:
        _turns(contenders, samples, labels, repeats, before, log, pause)
    finally:
        gc.unfreeze()
    return samples


def _turns(contenders, samples, labels, repeats, before, log, pause):
    """alternate()'s measurements, in turns."""
    for r in range(repeats):
        # Alternate the order too (ABBA...), so that neither contender always runs right
        # after the other (what one leaves in the caches or the OpenMP team's spin state
        # would otherwise always favour or hurt the same one).
        order = labels if r % 2 == 0 else labels[::-1]
        for label in order:
            before.get(label, _nothing)()
            # Collect the previous contender's garbage now, not during this measurement.
            gc.collect()
            if pause:
                time.sleep(pause)
            if samples[label].number <= SETTLE_BELOW:
                # The first call after another library's turn pays for what that library left
                # (memory it gave back to the system, which the next big arrays fault in
                # again: 1.5-2x a ResNet-8 inference at batch 1000 on this VM); a loop of
                # calls, what a user runs, does not. One untimed call absorbs it.
                contenders[label]()
            seconds, cores = _measure(contenders[label], samples[label].number)
            samples[label].values.append(seconds)
            samples[label].cores.append(cores)
        if log:
            log(f"    repeat {r + 1}/{repeats}: " + ", ".join(
                f"{label} {samples[label].values[-1] * 1e3:.2f} ms" for label in labels))


def _nothing():
    pass


# ***** the machine *****

def cpu_flags():
    """The vector instruction sets the CPU reports (avx2, fma, avx512f, ...)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    flags = set(line.split(":", 1)[1].split())
                    return sorted(f for f in flags if f.startswith(("avx", "fma", "sse4")))
    except OSError:
        pass
    return []


def usable_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count()


def load_average():
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def machine():
    """Facts about the machine and interpreter that every figure depends on."""
    # Imported here, not at the top: the memory-measuring child of PyTorch must not load cnn
    # (it did, and was charged about 15 MiB of cnn's modules).
    import cnn
    return {
        "cpu": cnn.show_config(mode="dicts")["cpu"],
        "cores_online": os.cpu_count(),
        "cores_usable": usable_cores(),
        "cpu_vector_flags": cpu_flags(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "load_average_at_start": load_average(),
        "environment": {k: os.environ[k] for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                    "OPENBLAS_NUM_THREADS", "GOMP_SPINCOUNT",
                                                    "OMP_WAIT_POLICY", "CNN_ISA")
                        if k in os.environ},
    }


class CpuMonitor:
    """How much CPU other processes used while a stretch of the benchmark ran.

    The busy time of all cores (/proc/stat) minus this process's own CPU time (and that of its
    finished children), over the wall time: in cores, 0 on an idle machine. On 2 cores, even
    0.5 of a core taken by someone else makes 2-thread OpenMP and BLAS steps wait for
    scheduler quanta (see the performance notes), so every figure records it. None where there
    is no /proc.
    """

    def __init__(self):
        self.start = self._snapshot()

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        # user nice system idle iowait irq softirq steal ...: busy = all but idle and iowait
        busy = (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        t = os.times()
        own = t.user + t.system + t.children_user + t.children_system
        return clock(), busy, own

    def others(self):
        """Average cores used by other processes since this monitor was made (or None)."""
        end = self._snapshot()
        if self.start is None or end is None or end[0] <= self.start[0]:
            return None
        wall = end[0] - self.start[0]
        return max(0.0, ((end[1] - self.start[1]) - (end[2] - self.start[2])) / wall)


def wait_for_idle(limit, threshold, window=1.0, log=None):
    """Wait up to `limit` seconds for a `window` in which other processes used at most
    `threshold` cores; returns the last window's figure (None where there is no /proc)."""
    deadline = clock() + limit
    while True:
        monitor = CpuMonitor()
        time.sleep(window)
        others = monitor.others()
        if others is None or others <= threshold or clock() >= deadline:
            return others
        if log:
            log(f"    waiting for an idle machine: other processes use {others:.2f} cores")


def peak_rss_bytes():
    """Peak resident set size of this process so far (VmHWM; ru_maxrss where there is no /proc)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import resource
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if platform.system() == "Darwin" else peak * 1024  # bytes on macOS, else KiB


def rss_bytes():
    """Current resident set size (VmRSS), or None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# ***** MNIST files *****

MNIST_FILES = {("train", "images"): "train-images-idx3-ubyte",
               ("train", "labels"): "train-labels-idx1-ubyte",
               ("test", "images"): "t10k-images-idx3-ubyte",
               ("test", "labels"): "t10k-labels-idx1-ubyte"}


def mnist_root(explicit=None):
    """The first folder holding all four MNIST files, or None (then the bench uses random data).

    Looked for in `explicit` alone when given, else in $CNN_DATA, the project's shared data
    folder (../shared/data/mnist beside the repository), ~/.cache/cnn/mnist.
    """
    here = Path(__file__).resolve().parent
    if explicit:  # asked for by name: that folder or nothing
        candidates = [explicit]
    else:
        candidates = [os.environ.get("CNN_DATA"),
                      here.parent.parent / "shared" / "data" / "mnist", "~/.cache/cnn/mnist"]
    for folder in candidates:
        if not folder:
            continue
        folder = Path(folder).expanduser()
        if all(_idx_path(folder, stem) for stem in MNIST_FILES.values()):
            return folder
    return None


def _idx_path(folder, stem):
    for name in (stem, stem + ".gz"):
        if (folder / name).is_file():
            return folder / name
    return None


def read_mnist(root, split):
    """(images uint8 (N, 1, 28, 28), labels int64 (N,)) of split "train" or "test".

    A minimal IDX reader of its own, so that the PyTorch side (and its memory-measuring child)
    gets the same data without importing cnn; the cnn side reads through cnn.datasets.MNIST.
    It reads straight into the final array (no intermediate bytes object), as cnn's reader
    does, so that the memory figure does not charge PyTorch for a transient copy.
    """
    arrays = []
    for kind, dims in (("images", 3), ("labels", 1)):
        path = _idx_path(Path(root), MNIST_FILES[(split, kind)])
        with open(path, "rb") as f:
            gzipped = f.read(2) == b"\x1f\x8b"
        with (gzip.open if gzipped else open)(path, "rb") as f:
            header = f.read(4 + 4 * dims)
            shape = [int.from_bytes(header[i:i + 4], "big") for i in range(4, len(header), 4)]
            array = np.empty(shape, np.uint8)
            view, filled = memoryview(array.reshape(-1)), 0
            while filled < array.size:
                # In 1 MiB pieces: gzip's readinto builds a bytes object of the size asked
                # for, which for the whole file would be a second transient copy.
                got = f.readinto(view[filled:filled + 2**20])
                if not got:
                    raise ValueError(f"{path}: truncated")
                filled += got
        arrays.append(array)
    images, labels = arrays
    return images.reshape(-1, 1, 28, 28), labels.astype(np.int64)


def random_mnist(n, seed):
    """MNIST-shaped random data (uint8 images, int64 labels), when the real files are absent."""
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, 1, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, n, dtype=np.int64))


# ***** output *****

def format_ms(summary, scale=1e3, digits=2):
    """'4.12 [3.98-4.30]': median and interquartile range, milliseconds by default."""
    if summary is None:
        return "-"
    return (f"{summary['median'] * scale:.{digits}f} "
            f"[{summary['q1'] * scale:.{digits}f}-{summary['q3'] * scale:.{digits}f}]")


def format_table(rows, headers):
    """A plain-text table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(row[i])) for row in [headers] + rows) for i in range(len(headers))]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])
