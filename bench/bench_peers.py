"""Time cnn against every installed peer: PyTorch eager, JAX (jit) and ONNX Runtime.

Usage (from the repository root; `pip install -e '.[bench]'` plus PyTorch, see bench/README.md)::

    python bench/bench_peers.py                   # every figure, about 6 minutes when idle
    python bench/bench_peers.py --quick           # a smoke run, about a minute
    python bench/bench_peers.py --only lenet,train --json > peers.json
    python bench/bench_peers.py --skip jax --threads 1
    python bench/bench_peers.py --report peers.json   # the table of a saved --json run
    python bench/bench_peers.py --wait-idle 120 --retry-busy 2   # on a shared machine

Figures (ids for --only; a net name or a kind selects all of its figures):

- training steps: lenet-train-b10, -b64, -b256, cifar-train-b64, resnet8-train-b64,
  vgg-train-b32 (cnn, PyTorch, JAX);
- inference at batch 1000: lenet-infer-b1000 (the 10,000 MNIST test images), cifar-, resnet8-,
  vgg-infer-b1000 (1000 random 3x32x32 images) (cnn, PyTorch, JAX, ONNX Runtime);
- batch-1 latency: lenet-, cifar-, resnet8-, vgg-latency-b1 (the same four).

Method: every library gets the same thread count (--threads) and cnn's initial weights; the
first losses or outputs are checked to agree. The contenders are timed in turns, measurement
by measurement (ABBA order, a pause before each so the previous one's threads stop spinning);
a ratio is the median over repeats of cnn's time / the peer's. A figure taken while other
processes used more than 0.1 core is marked busy and not judged. A peer that is not installed
is skipped, and the report says so.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import benchlib  # noqa: E402

benchlib.prefer_checkout()

import numpy as np  # noqa: E402

import peer_figures  # noqa: E402
import peer_report  # noqa: E402
from nets import NETS  # noqa: E402
from peers import PEERS, Peers  # noqa: E402

# mode -> measurements per figure, min seconds per measurement, warm-up calls, pause (s),
# images for the batch-1000 inference figures (LeNet-5, the 3x32x32 nets), batch cap.
MODES = {
    "full": dict(repeats=15, min_time=0.2, warmup=3, pause=0.02, images=(10000, 1000),
                 batch_cap=None),
    # A smoke run: the 3x32x32 nets infer 250 images (1000 take seconds per call in VGG).
    "quick": dict(repeats=3, min_time=0.02, warmup=1, pause=0.005, images=(1000, 250),
                  batch_cap=None),
    # For the test suite: two images per batch, one measurement; shows the plumbing only.
    "tiny": dict(repeats=1, min_time=0.0, warmup=1, pause=0.0, images=(4, 4), batch_cap=2),
}


def log(message):
    """Progress goes to stderr, so that stdout holds only the table (or the JSON)."""
    print(message, file=sys.stderr, flush=True)


class Data:
    """Inputs: MNIST for LeNet-5 (random MNIST-shaped data where the files are absent),
    random normal 3x32x32 images with random labels for the other nets."""

    def __init__(self, root):
        self.root = root
        self.source = f"MNIST from {root}" if root else "random MNIST-shaped (files not found)"
        self._mnist = {}

    def _lenet(self, split):
        if split not in self._mnist:
            if self.root:
                self._mnist[split] = benchlib.read_mnist(self.root, split)
            else:
                self._mnist[split] = benchlib.random_mnist(60000 if split == "train" else 10000,
                                                           seed=0 if split == "train" else 1)
        return self._mnist[split]

    def _get(self, net, split, n):
        if net.mnist:
            images, labels = self._lenet(split)
            return images[:n].astype(np.float32) / np.float32(255), labels[:n].copy()
        rng = np.random.default_rng(1 if split == "train" else 2)
        return (rng.standard_normal((n,) + net.input, dtype=np.float32),
                rng.integers(0, 10, n, dtype=np.int64))

    def train(self, net, n):
        """(images float32 (n, C, H, W), labels int64 (n,)) for training steps."""
        return self._get(net, "train", n)

    def test(self, net, n):
        """n float32 images for inference (MNIST's test set for LeNet-5)."""
        return self._get(net, "test", n)[0]


class Context:
    """What every figure needs: cnn, the peers, the data, the mode's sizes."""

    def __init__(self, args, cnn, peers):
        self.cnn, self.peers, self.threads = cnn, peers, args.threads
        self.mode = "tiny" if args.tiny else "quick" if args.quick else "full"
        self.settings = dict(MODES[self.mode])
        if args.repeats:
            self.settings["repeats"] = args.repeats
        self.wait_idle, self.retry_busy = args.wait_idle, args.retry_busy
        self.data = Data(benchlib.mnist_root(args.data))
        self.compile = args.compile or args.freezing
        self.freezing = args.freezing
        self._inference = (None, None)
        cnn.set_num_threads(args.threads)

    def compiled(self, model):
        """cnn's model as timed: `cnn.compile(model)` with --compile (with its freezing option
        with --freezing), else the eager model."""
        if not self.compile:
            return model
        return self.cnn.compile(model, options={"freezing": self.freezing})

    def batch(self, fig):
        """The figure's batch size (capped in the tiny mode)."""
        cap = self.settings["batch_cap"]
        return fig.batch if cap is None else min(fig.batch, cap)

    def infer_images(self, fig):
        """How many images the figure's forward passes cover."""
        if fig.kind == "latency":
            return 1
        lenet_images, other_images = self.settings["images"]
        return lenet_images if NETS[fig.net].mnist else other_images

    def inference_models(self, net):
        """The network ready for inference everywhere; kept for the net's next figure."""
        if self._inference[0] != net.name:
            self._inference = (None, None)  # free the previous net's first
            self._inference = (net.name, peer_figures.InferenceModels(self, net))
        return self._inference[1]


def environment(ctx):
    """Machine, versions and thread settings: the facts next to the figures."""
    info = benchlib.machine()
    info["cnn"] = {**ctx.cnn.show_config("dicts"), "path": str(Path(ctx.cnn.__file__).parent)}
    info["peers"] = ctx.peers.versions()
    info["threads"] = ctx.threads
    info["data"] = ctx.data.source
    info["mode"] = ctx.mode
    info["cnn_compiled"] = ctx.compile
    info["cnn_frozen"] = ctx.freezing
    info["repeats"] = ctx.settings["repeats"]
    info["min_seconds_per_measurement"] = ctx.settings["min_time"]
    return info


def run_figure(ctx, fig):
    """Build, check and time one figure; returns its JSON record."""
    images = ctx.infer_images(fig)
    # The sizes run: smaller than the figure's in the quick and tiny modes, and then not judged.
    run = fig._replace(batch=min(ctx.batch(fig), images) if fig.kind != "train"
                       else ctx.batch(fig))
    label = peer_figures.title(run, images)
    log(label)
    fns, check = peer_figures.BUILDERS[fig.kind](ctx, run)
    s = ctx.settings
    best = None  # (others, samples) of the least busy attempt
    for attempt in range(1 + ctx.retry_busy):
        if ctx.wait_idle:
            benchlib.wait_for_idle(ctx.wait_idle, peer_report.BUSY_CORES, log=log)
        # From here on: other processes' load during set-up (exports, compilations) is
        # harmless, during the measurements it is not.
        monitor = benchlib.CpuMonitor()
        samples = benchlib.alternate(fns, repeats=s["repeats"], warmup=s["warmup"],
                                     min_time=s["min_time"], pause=s["pause"], log=log)
        others = monitor.others()
        if best is None or (others is not None and others < best[0]):
            best = (others, samples)
        if others is None or others <= peer_report.BUSY_CORES:
            break
        if attempt < ctx.retry_busy:
            log(f"    busy (other processes used {others:.2f} cores): timing it again")
    unjudged = ("tiny run" if ctx.mode == "tiny" else
                "smaller batch than the target's" if run.batch != fig.batch else None)
    return peer_report.figure_row(run, label, best[1], check, best[0], unjudged)


def selected(only):
    """The figures whose id, net or kind is in `only` (all when it is empty)."""
    if not only:
        return list(peer_figures.FIGURES)
    return [f for f in peer_figures.FIGURES if {f.id, f.net, f.kind} & set(only)]


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 3 repeats, fewer "
                        "images for the batch-1000 figures (about a minute)")
    parser.add_argument("--tiny", action="store_true", help="the test suite's run: batches of "
                        "at most 2, 4 images, 1 repeat (checks agreement, times nothing real)")
    parser.add_argument("--compile", action="store_true", help="time cnn's models through "
                        "cnn.compile (captured once, replayed: the same numbers as eager)")
    parser.add_argument("--freezing", action="store_true", help="as --compile, with "
                        "options={'freezing': True}: inference takes the convolutions' weights "
                        "for constants, laid out once, as an ONNX Runtime session does (training "
                        "steps as --compile's)")
    parser.add_argument("--threads", type=int, default=2, help="threads for every library "
                        "(default 2, the cores of the reference machine)")
    parser.add_argument("--repeats", type=int, help="measurements per figure (default 15, "
                        "quick 3)")
    parser.add_argument("--only", help="comma-separated figure ids, nets (lenet, cifar, "
                        "resnet8, vgg) or kinds (train, infer, latency)")
    parser.add_argument("--skip", default="", help=f"comma-separated peers to leave out: "
                        f"{','.join(PEERS)}")
    parser.add_argument("--data", help="folder of the MNIST files (default: $CNN_DATA, the "
                        "shared data folder, ~/.cache/cnn/mnist; random data when absent)")
    parser.add_argument("--wait-idle", type=float, default=0, metavar="SECONDS",
                        help="before timing each figure, wait up to SECONDS for a second in "
                        "which other processes use at most 0.1 core")
    parser.add_argument("--retry-busy", type=int, default=0, metavar="N",
                        help="time a figure measured while busy again, up to N more times, "
                        "keeping the least busy attempt")
    parser.add_argument("--report", metavar="FILE", help="print the report of a run saved "
                        "with --json (runs nothing)")
    args = parser.parse_args(argv)
    if args.threads < 1 or (args.repeats is not None and args.repeats < 1):
        parser.error("--threads and --repeats must be positive")
    if args.wait_idle < 0 or args.retry_busy < 0:
        parser.error("--wait-idle and --retry-busy must not be negative")
    args.only = [w for w in (args.only or "").split(",") if w]
    known = {f.id for f in peer_figures.FIGURES} | set(NETS) | set(peer_figures.BUILDERS)
    if set(args.only) - known:
        parser.error(f"unknown in --only: {sorted(set(args.only) - known)}; choose from "
                     f"{sorted(known)}")
    args.skip = [w for w in args.skip.split(",") if w]
    if set(args.skip) - set(PEERS):
        parser.error(f"unknown in --skip: {sorted(set(args.skip) - set(PEERS))}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.report:
        with open(args.report) as f:
            print(peer_report.report_text(json.load(f)))
        return 0
    started = benchlib.clock()
    import cnn
    # The peers (JAX above all) read their thread settings when imported: before anything runs.
    peers = Peers(args.threads, args.skip)
    ctx = Context(args, cnn, peers)
    log(f"data: {ctx.data.source}; threads {ctx.threads}; peers: "
        f"{', '.join(peers.installed()) or 'none'}"
        + "".join(f"; {name} skipped: {why}" for name, why in peers.missing.items()))
    env = environment(ctx)
    whole_run = benchlib.CpuMonitor()
    figures = [run_figure(ctx, fig) for fig in selected(args.only)]
    result = {"environment": env, "figures": figures, "other_cpu_cores": whole_run.others(),
              "skipped_peers": dict(peers.missing),
              "load_average_at_end": benchlib.load_average()}
    result["notes"] = peer_report.notes(result)
    result["table"] = peer_report.table_rows(figures, peers.missing)
    result["seconds"] = benchlib.clock() - started
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(peer_report.report_text(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
