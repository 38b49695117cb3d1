"""``cnn train``: LeNet-5 on MNIST (or another model and dataset: ``--model``, ``--dataset``),
with a checkpoint after every epoch and an exact resume.

A run is reproducible from its settings alone: ``cnn.manual_seed(seed)`` fixes the initial
weights, and the DataLoader's ``seed`` fixes every epoch's order and its workers' random
augmentations (epoch ``k``'s depend only on ``(seed, k)`` and the number of workers). A checkpoint therefore holds everything that changes while training (the
weights, the optimizer's moments, the schedule, the epoch count, ``cnn``'s generator) and the
settings; a run resumed from it after epoch ``k`` takes the same steps an uninterrupted run would
and ends with the same weights, bit for bit.
"""
import contextlib
import copy
import hashlib
import math
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping

import numpy as np

from .. import distributed as dist
from .. import optim
from ..runtime_info import show_config
from ..utils.data import DataLoader, DistributedLoader
from ..nn import functional as F
from ..threads import set_num_threads
from ..random import get_rng_state, manual_seed, set_rng_state
from ..serialization import load, remove_stale_temporaries, save
from .errors import CommandError, EveryRankError, Terminated, exit_status
from .lenet import DEFAULT_CHECKPOINT, TRAIN_CHECKPOINT, predict
from .models import DATASETS, MODELS, build
from .options import (add_data_options, add_threads_option, apply_threads, check_output_path,
                      load_dataset, non_negative_int, positive_float, positive_int)

DEFAULT_OUT = DEFAULT_CHECKPOINT
# The README recipe: these reach >= 99.0% test accuracy in 10 epochs. `lr` is None because its
# default depends on the optimizer, `model` and `workers` because theirs depend on the dataset.
DEFAULTS = {"epochs": 10, "batch_size": 64, "optimizer": "adam", "lr": None, "seed": 0,
            "limit_train": None, "limit_test": None, "dataset": "mnist", "model": None,
            "workers": None}
# What a checkpoint written before --dataset, --model and --workers existed was trained with.
LEGACY_SETTINGS = {"dataset": "mnist", "model": "lenet5", "workers": 0}
DEFAULT_LR = {"adam": 1e-3, "sgd": 0.05}
SGD_MOMENTUM = 0.9
# A fixed step schedule rather than one fitted to the number of epochs (a cosine), so that a
# resumed run may be given more epochs and still continue the schedule it was on.
LR_STEP_SIZE, LR_GAMMA = 5, 0.1
# Settings a resumed run keeps from its checkpoint: with any of them changed, no uninterrupted
# run would end where the resumed one does (the workers too: which worker augments which batch
# decides the random draws). The epoch count, the folders and the thread count (results do not
# depend on it) may change.
RUN_DEFINING = ("batch_size", "optimizer", "lr", "seed", "limit_train", "dataset", "model",
                "workers")
CHECKPOINT_VERSION = 1
_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "epoch", "loader", "rng_state", "args",
                    "history")


def register(subparsers):
    """Add the ``train`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "train", help="train LeNet-5 on MNIST (or another model and dataset)",
        description="Train LeNet-5 on MNIST (or --model on --dataset), showing a progress bar "
                    "(on a terminal) and the "
                    "test accuracy after every epoch, and writing a checkpoint atomically after "
                    "every epoch. The defaults reach at least 99.0% test accuracy in 10 "
                    "epochs. Ctrl-C stops cleanly, keeping the last complete checkpoint; "
                    "--resume continues from it and ends with exactly the weights of an "
                    "uninterrupted run.",
        epilog="example: %(prog)s --data ~/mnist   then   %(prog)s --resume lenet_mnist.npz")
    parser.add_argument("--dataset", choices=tuple(DATASETS),
                        help="the images to train on (default: mnist); cifar10 trains with "
                             "the standard augmentation (random 32-pixel crops of the image "
                             "padded by 4, horizontal flips) in worker processes")
    parser.add_argument("--model", choices=tuple(MODELS),
                        help="the network (default: lenet5, or cifar-net for cifar10)")
    add_data_options(parser, datasets=True)
    parser.add_argument("--workers", type=non_negative_int, metavar="N",
                        help="worker processes loading the training batches (default: 0, or "
                             "2 for cifar10); they run the kernels on one thread each")
    parser.add_argument("--epochs", type=positive_int, metavar="N",
                        help=f"epochs to train in all (default: {DEFAULTS['epochs']}; with "
                             "--resume, the checkpoint's)")
    parser.add_argument("--batch-size", type=positive_int, metavar="B",
                        help=f"images per step (default: {DEFAULTS['batch_size']})")
    parser.add_argument("--optimizer", choices=("adam", "sgd"),
                        help=f"adam, or sgd with momentum {SGD_MOMENTUM} (default: "
                             f"{DEFAULTS['optimizer']})")
    parser.add_argument("--lr", type=positive_float, metavar="LR",
                        help=f"initial learning rate, multiplied by {LR_GAMMA} every "
                             f"{LR_STEP_SIZE} epochs (default: {DEFAULT_LR['adam']} for adam, "
                             f"{DEFAULT_LR['sgd']} for sgd)")
    add_threads_option(parser)
    parser.add_argument("--seed", type=non_negative_int, metavar="S",
                        help="seed of the initial weights and of the order of the images "
                             f"(default: {DEFAULTS['seed']})")
    parser.add_argument("--out", metavar="FILE",
                        help=f"checkpoint written after every epoch (default: {DEFAULT_OUT}, "
                             "or MODEL_DATASET.npz for other choices, in the current folder; "
                             "with --resume, the resumed file)")
    parser.add_argument("--resume", metavar="FILE",
                        help="continue the run saved in FILE, with its settings")
    parser.add_argument("--limit-train", type=positive_int, metavar="N",
                        help="train on the first N training images only (quick tries, tests)")
    parser.add_argument("--limit-test", type=positive_int, metavar="N",
                        help="test on the first N test images only")
    parser.add_argument("--distributed", action="store_true",
                        help="train data-parallel on MPI (needs mpi4py: pip install "
                             "'cnn[mpi]'); implied when launched by mpirun or srun with more "
                             "than one rank. --batch-size is then the global batch, split "
                             "evenly over the ranks, and each rank uses the cores of its "
                             "machine divided by its ranks there as threads (unless --threads "
                             "or $OMP_NUM_THREADS says otherwise)")
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn train``; return the exit status (130 after Ctrl-C)."""
    progress_bar = _progress_bar_class()
    if _in_main_thread():
        # Python leaves SIGINT ignored when its parent ignored it (as a non-interactive shell
        # does for background jobs); this command promises a clean stop on Ctrl-C, so it always
        # listens.
        signal.signal(signal.SIGINT, signal.default_int_handler)
    apply_threads(args)
    world = _join_mpi(args)
    checkpoint = None if args.resume is None else _read_checkpoint(args.resume)
    settings = _settings(args, None if checkpoint is None else checkpoint["args"])
    out = args.out or args.resume or _default_out(settings)
    check_output_path(out, "--out" if args.out or not args.resume else "--resume")
    remove_stale_temporaries(out)  # of a run killed while it wrote (SIGKILL, power cut)
    choice = DATASETS[settings["dataset"]]
    train_set = load_dataset(args, choice.name, True, choice.train_transform(),
                             settings["limit_train"])
    test_set = load_dataset(args, choice.name, False, choice.test_transform(),
                            settings["limit_test"])

    training = _Training(settings, train_set)
    if checkpoint is not None:
        training.restore(checkpoint, args.resume)
    if world > 1:
        _join_training(training, train_set, test_set, world)
    _print_header(training, train_set, test_set, out)
    epochs = settings["epochs"]
    if training.epoch >= epochs:
        print(f"{args.resume} already holds {_count(training.epoch, 'epoch')}: nothing to "
              f"train (pass --epochs with more than {training.epoch} to train further)")
        return 0
    started = time.perf_counter()
    try:
        while training.epoch < epochs:
            # disable=None: a bar on a terminal only, not thousands of updates in a log file.
            with progress_bar(total=len(train_set), desc=f"epoch {training.epoch + 1}/{epochs}",
                              unit="img", unit_scale=True, leave=False,
                              disable=None if dist.is_root() else True,
                              dynamic_ncols=True) as bar:
                record = training.train_epoch(bar)
            record["test_accuracy"] = _accuracy(training.model, test_set)
            training.save(out, record)
            print(_epoch_line(record, epochs), flush=True)
    except KeyboardInterrupt as error:  # Ctrl-C, or SIGTERM (Terminated)
        print(f"\n{training.interrupted(args, error)}", file=sys.stderr)
        return exit_status(error)
    except _Diverged as error:
        raise CommandError(f"training diverged: {error}. {training.kept()}. Try a lower "
                           f"learning rate than --lr {settings['lr']:g} (start a new run).")
    elapsed = _duration(time.perf_counter() - started)
    print(f"done in {elapsed}: test accuracy {training.history[-1]['test_accuracy']:.2%} after "
          f"{_count(epochs, 'epoch')}; the model is in {out}")
    # evaluate finds the data and train's default checkpoint the way train did.
    model_option = "" if out == DEFAULT_OUT else f" --model {out}"
    data_option = "" if args.data is None else f" --data {args.data}"
    print(f"next: {args.prog} evaluate{model_option}{data_option}")
    return 0


class _Diverged(Exception):
    """The loss or the weights stopped being finite numbers."""


class _Training:
    """One run: the model, its optimizer and schedule, the data order, and where it stands.

    Attributes:
        epoch (int): Epochs completed.
        step (int): Steps done in the epoch under way.
        saved (tuple or None): ``(path, epoch)`` of the last checkpoint known to be complete.
        history (list of dict): Per completed epoch, its loss, test accuracy and time.
    """

    def __init__(self, settings, train_set):
        self.settings = settings
        manual_seed(settings["seed"])
        self.model = build(settings["model"], settings["dataset"])
        lr = settings["lr"]
        if settings["optimizer"] == "adam":
            self.optimizer = optim.Adam(self.model.parameters(), lr=lr)
        else:
            self.optimizer = optim.SGD(self.model.parameters(), lr=lr, momentum=SGD_MOMENTUM)
        self.scheduler = optim.lr_scheduler.StepLR(self.optimizer, LR_STEP_SIZE, LR_GAMMA)
        loader_class = DataLoader if dist.world_size() == 1 else DistributedLoader
        # Workers start afresh each epoch (not persistent): their seeds then come from
        # (seed, epoch), which a resumed run reproduces.
        self.loader = loader_class(train_set, batch_size=settings["batch_size"], shuffle=True,
                                   seed=settings["seed"], num_workers=settings["workers"])
        self.epoch = 0
        self.step = 0
        self.saved = None
        self.history = []

    def restore(self, checkpoint, path):
        """Continue from `checkpoint` (read from `path`), validating all of it first."""
        try:
            self.model.load_state_dict(checkpoint["model"])
            self.optimizer.load_state_dict(checkpoint["optimizer"])
            self.scheduler.load_state_dict(checkpoint["scheduler"])
            epoch = int(checkpoint["epoch"])
            self.loader.set_epoch(checkpoint["loader"]["epoch"])
            set_rng_state(checkpoint["rng_state"])
        except (TypeError, ValueError, KeyError) as error:
            raise CommandError(f"cannot resume from {path}: {error}") from None
        self.epoch = epoch
        self.history = list(checkpoint["history"])
        self.saved = (path, epoch)

    def train_epoch(self, bar):
        """Train one epoch, advancing `bar` (a tqdm) by the images done.

        Returns:
            dict: The epoch's number, mean loss, seconds and images per second.

        Raises:
            _Diverged: If the loss is not finite, or the weights are not at the end.
        """
        self.model.train()
        self.step = 0
        total_loss, images = 0.0, 0
        start = time.perf_counter()
        # Overflow on the way to a nan loss is reported once, by the guard below, rather than
        # as NumPy's warnings from deep inside the layers.
        with np.errstate(over="ignore", invalid="ignore"):
            for inputs, labels in self.loader:
                self.step += 1
                self.optimizer.zero_grad()
                loss, value, count = self._forward(inputs, labels)
                if not math.isfinite(value):
                    raise _Diverged(f"the loss is {value} at epoch {self.epoch + 1}, step "
                                    f"{self.step} of {len(self.loader)}")
                if loss is not None:
                    loss.backward()
                self.optimizer.step()
                total_loss += value * count
                images += count
                bar.set_postfix(loss=f"{total_loss / images:.4f}", refresh=False)
                bar.update(count)
        seconds = time.perf_counter() - start
        # The last step can turn the weights into inf or nan with a finite loss: such weights
        # must not replace the last good checkpoint.
        if not all(np.isfinite(param._data).all() for param in self.model.parameters()):
            raise _Diverged(f"the weights are no longer finite numbers after epoch "
                            f"{self.epoch + 1}")
        self.scheduler.step()
        return {"epoch": self.epoch + 1, "loss": total_loss / images, "seconds": seconds,
                "images_per_second": images / seconds}

    def _forward(self, inputs, labels):
        """The step's loss: ``(loss to call backward on, its value, images)``.

        Data-parallel, this rank's shard goes forward and backward here and the gradients are
        averaged over the ranks; the value and image count returned are the global batch's, the
        same on every rank (so all stop together on a nan), and no loss is left to backward.
        """
        if dist.world_size() == 1:
            loss = F.cross_entropy(self.model(inputs), labels)
            return loss, loss.item(), len(labels)
        value = 0.0
        if len(labels):  # a short last batch may leave a rank nothing
            loss = F.cross_entropy(self.model(inputs), labels)
            loss.backward()
            value = loss.item() * len(labels)
        total, count = dist.allreduce_gradients(self.model, weight=len(labels),
                                                extras=[value, len(labels)])
        return None, float(total / count), int(count)

    def save(self, path, record):
        """Count the epoch just trained as done, add its `record` to the history and write the
        checkpoint to `path`, atomically."""
        with _interrupts_deferred():
            self.epoch += 1
            self.step = 0
            self.history.append(record)
            try:
                if dist.is_root():  # data-parallel, every rank holds the same state
                    save(self.checkpoint(), path)
            except OSError as error:
                raise CommandError(f"cannot write the checkpoint {path}: {error}. "
                                   f"{self.kept()}.") from None
            self.saved = (path, self.epoch)

    def checkpoint(self):
        """Everything needed to continue exactly, and the settings: a dict for ``cnn.save``."""
        return {"format": TRAIN_CHECKPOINT, "version": CHECKPOINT_VERSION,
                "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(), "epoch": self.epoch,
                # The loader's order is a function of (seed, epoch): this is its whole state.
                "loader": {"seed": self.settings["seed"], "epoch": self.loader.epoch},
                "rng_state": get_rng_state(), "args": dict(self.settings),
                "history": list(self.history)}

    def kept(self):
        """A sentence on the last complete checkpoint, for the messages that stop a run."""
        if self.saved is None:
            return "No checkpoint was written: the run stopped in its first epoch"
        path, epoch = self.saved
        return f"The last good checkpoint, {path} (after epoch {epoch}), is intact"

    def interrupted(self, args, error=None):
        """The message after Ctrl-C (or SIGTERM, `error`): where the run stopped and how to
        continue it."""
        where = f"in epoch {self.epoch + 1}"
        if 0 < self.step < len(self.loader):
            where += f" (step {self.step} of {len(self.loader)})"
        elif self.step == len(self.loader):
            where += " (while testing it)"
        stopped = "Terminated (SIGTERM)" if isinstance(error, Terminated) else "Interrupted"
        message = f"{stopped} {where}. {self.kept()}."
        if self.saved is not None:
            data = "" if args.data is None else f" --data {args.data}"
            message += f" Continue with: {args.prog} train --resume {self.saved[0]}{data}"
        return message


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C and SIGTERM back until the block ends, then raise them.

    The checkpoint file is safe without this (it is written atomically); this keeps the message
    after an interrupt true: the file and the record of which epoch it holds change together.
    """
    if not _in_main_thread():  # only the main thread may set handlers, or receives signals
        yield
        return
    received = []
    deferred = (signal.SIGINT, signal.SIGTERM)
    previous = [signal.signal(signum, lambda signum, frame: received.append(signum))
                for signum in deferred]
    try:
        yield
    finally:
        for signum, handler in zip(deferred, previous):
            signal.signal(signum, handler)
    if signal.SIGTERM in received:
        raise Terminated
    if received:
        raise KeyboardInterrupt


def _in_main_thread():
    return threading.current_thread() is threading.main_thread()


def _settings(args, saved):
    """The run's settings: the command line's over the defaults, or over `saved` on resume."""
    settings = dict(DEFAULTS if saved is None else saved)
    for name in DEFAULTS:
        given = getattr(args, name)
        if given is None:
            continue
        if saved is not None and name in RUN_DEFINING and given != saved[name]:
            raise CommandError(
                f"--{name.replace('_', '-')} {given} differs from the {saved[name]} the resumed "
                "run was started with. A resumed run keeps its settings, so that it ends exactly "
                "where an uninterrupted run would; start a new run to change them")
        settings[name] = given
    if settings["lr"] is None:
        settings["lr"] = DEFAULT_LR[settings["optimizer"]]
    choice = DATASETS[settings["dataset"]]
    if settings["model"] is None:
        settings["model"] = choice.default_model
    if settings["workers"] is None:
        settings["workers"] = choice.default_workers
    return settings


def _default_out(settings):
    if (settings["model"], settings["dataset"]) == ("lenet5", "mnist"):
        return DEFAULT_OUT
    return f"{settings['model']}_{settings['dataset']}.npz"


def _read_checkpoint(path):
    """The checkpoint of ``cnn train`` at `path`, checked to have every entry a resume needs."""
    try:
        checkpoint = load(path)
    except (OSError, ValueError) as error:
        raise CommandError(f"cannot resume from {path}: {error}") from None
    if not (isinstance(checkpoint, Mapping) and checkpoint.get("format") == TRAIN_CHECKPOINT):
        raise CommandError(f"cannot resume from {path}: not a checkpoint of cnn train (a file "
                           "of weights alone can be evaluated, but not resumed)")
    missing = [key for key in _CHECKPOINT_KEYS if key not in checkpoint]
    args = checkpoint.get("args")
    if isinstance(args, Mapping):
        checkpoint["args"] = args = {**LEGACY_SETTINGS, **args}
        missing += [f"args/{key}" for key in DEFAULTS if key not in args]
    elif "args" not in missing:
        missing.append("args")
    if missing:
        raise CommandError(f"cannot resume from {path}: the checkpoint lacks "
                           f"{', '.join(missing)}")
    problems = [f"args/{name} is {args[name]!r}, expected {expected}"
                for name, (valid, expected) in _SETTING_CHECKS.items() if not valid(args[name])]
    if not _is_count(checkpoint["epoch"], 0):
        problems.append(f"epoch is {checkpoint['epoch']!r}, expected an integer >= 0")
    if not isinstance(checkpoint["history"], (list, tuple)):
        problems.append(f"history is of type {type(checkpoint['history']).__name__}, "
                        "expected a list")
    if not isinstance(checkpoint["loader"], Mapping) or "epoch" not in checkpoint["loader"]:
        problems.append("loader is not a mapping with an epoch")
    if problems:
        raise CommandError(f"cannot resume from {path}: {'; '.join(problems)} (a damaged or "
                           "edited checkpoint)")
    return checkpoint


def _is_count(value, minimum):
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool) and \
        value >= minimum


def _optional_count(minimum):
    return lambda value: value is None or _is_count(value, minimum)


# What each saved setting may be: (test, what it should be), as the command line's own types.
_SETTING_CHECKS = {
    "epochs": (lambda v: _is_count(v, 1), "an integer >= 1"),
    "batch_size": (lambda v: _is_count(v, 1), "an integer >= 1"),
    "optimizer": (lambda v: isinstance(v, str) and v in DEFAULT_LR,
                  f"one of {', '.join(DEFAULT_LR)}"),
    "lr": (lambda v: v is None or (isinstance(v, (int, float, np.floating))
                                  and not isinstance(v, bool) and 0 < v < math.inf),
           "a positive number"),
    "seed": (lambda v: _is_count(v, 0), "an integer >= 0"),
    "limit_train": (_optional_count(1), "None or an integer >= 1"),
    "limit_test": (_optional_count(1), "None or an integer >= 1"),
    "dataset": (lambda v: isinstance(v, str) and v in DATASETS,
                f"one of {', '.join(DATASETS)}"),
    "model": (lambda v: v is None or (isinstance(v, str) and v in MODELS),
              f"one of {', '.join(MODELS)}"),
    "workers": (_optional_count(0), "None or an integer >= 0"),
}


def _progress_bar_class():
    """tqdm, or when it is not installed a stand-in that draws nothing (and a note saying so).

    A missing progress bar is no reason to refuse to train: the epoch lines say it all.
    """
    try:
        from tqdm import tqdm
    except ImportError:
        print("(no progress bar: tqdm is not installed; pip install tqdm)", file=sys.stderr)
        return _NoProgressBar
    return tqdm


class _NoProgressBar:
    """The part of tqdm's interface that train uses, doing nothing."""

    def __init__(self, *args, **kwargs):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n=1):
        """Do nothing."""

    def set_postfix(self, *args, **kwargs):
        """Do nothing."""


def _accuracy(model, dataset):
    with np.errstate(over="ignore", invalid="ignore"):  # huge weights only give a low score
        if dist.world_size() == 1:
            return float(np.mean(predict(model, dataset) == dataset.targets))
        # Data-parallel: each rank tests the images rank::N, and the counts are summed.
        shard = copy.copy(dataset)
        shard.data = dataset.data[dist.rank()::dist.world_size()]
        shard.targets = dataset.targets[dist.rank()::dist.world_size()]
        correct = np.sum(predict(model, shard) == shard.targets) if len(shard.targets) else 0
        return dist.all_reduce_sum(correct) / len(dataset)


def _join_mpi(args):
    """Join the MPI job when launched in one (or asked with --distributed); return the world
    size. Each rank then gets its share of the machine's cores as threads, and only rank 0
    prints to stdout."""
    if not (args.distributed or dist.launched_size() > 1):
        return 1
    try:
        world = dist.init(force=True)
    except ImportError as error:
        raise CommandError(str(error)) from None
    if args.threads is None and not os.environ.get("OMP_NUM_THREADS"):
        set_num_threads(dist.local_threads())
    if not dist.is_root():
        # The progress and epoch lines once, not once per rank; errors still go to stderr.
        sys.stdout = open(os.devnull, "w")
    return world


def _join_training(training, train_set, test_set, world):
    """Data-parallel: check that every rank runs the same training (one collective: a rank
    with other settings, data or code ends the job on every rank with a message naming what
    differs, before any buffer of a mismatched size reaches MPI), then give every rank rank 0's
    weights (the same anyway: same seed)."""
    try:
        dist.agree(_agreement(training, train_set, test_set))
    except dist.DisagreementError as error:
        raise EveryRankError(f"{error}. Every rank must be given the same options and the "
                             "same data") from None
    size = training.settings["batch_size"]
    if size % world:
        raise CommandError(
            f"--batch-size {size} is the global batch and must split evenly over the {world} "
            f"ranks: try {size - size % world} or {size - size % world + world}")
    dist.broadcast_parameters(training.model)


def _agreement(training, train_set, test_set):
    """What must be the same on every rank, by the name a message shows it under."""
    settings = training.settings
    agreed = {f"--{name.replace('_', '-')}": settings[name] for name in DEFAULTS}
    agreed["resumed after epoch"] = training.epoch
    agreed["optimizer configuration"] = [
        {key: value for key, value in group.items() if key != "params"}
        for group in training.optimizer.param_groups]
    agreed["parameter shapes and dtypes"] = [
        (name, list(param.shape), str(param.dtype))
        for name, param in training.model.named_parameters()]
    agreed["steps per epoch"] = len(training.loader)
    for part, dataset in (("training", train_set), ("test", test_set)):
        agreed[f"{part} images"] = len(dataset)
        agreed[f"{part} data (BLAKE2 of images and labels)"] = _digest(dataset)
    agreed["cnn version"] = show_config(mode="dicts")["cnn"]
    return agreed


def _digest(dataset):
    digest = hashlib.blake2b(digest_size=16)
    for array in (dataset.data, dataset.targets):
        digest.update(np.ascontiguousarray(np.asarray(array)))
    return digest.hexdigest()


def _print_header(training, train_set, test_set, out):
    info = show_config(mode="dicts")
    settings = training.settings
    parameters = sum(param._data.size for param in training.model.parameters())
    openmp = "OpenMP" if info["openmp"] else "no OpenMP"
    threads = _count(info["threads"], "thread")
    print(f"cnn {info['cnn']}: kernels {info['isa']}, {openmp}, {threads}")
    choice = DATASETS[settings["dataset"]]
    workers = settings["workers"]
    loading = f", {workers} worker process{'es' * (workers > 1)} loading" if workers else ""
    print(f"{MODELS[settings['model']][0]} ({parameters:,} parameters) on {choice.title} from "
          f"{train_set.root}: {len(train_set):,} training and {len(test_set):,} test "
          f"images{loading}")
    print(f"{settings['optimizer']} lr {settings['lr']:g} (x{LR_GAMMA:g} every {LR_STEP_SIZE} "
          f"epochs), batch {settings['batch_size']}, {_count(settings['epochs'], 'epoch')}, seed "
          f"{settings['seed']}; checkpoint after every epoch: {out}")
    if dist.world_size() > 1:
        batch = settings["batch_size"]
        print(f"data-parallel on {dist.world_size()} MPI ranks: {batch // dist.world_size()} of "
              f"the {batch} images of each step per rank, {threads} each")
    if training.saved is not None:
        print(f"resuming {training.saved[0]} after epoch {training.epoch}")


def _epoch_line(record, epochs):
    width = len(str(epochs))
    return (f"epoch {record['epoch']:>{width}}/{epochs}  loss {record['loss']:.4f}  "
            f"test accuracy {record['test_accuracy']:.2%}  {record['seconds']:.1f} s  "
            f"{record['images_per_second']:,.0f} img/s")


def _count(number, noun):
    return f"{number} {noun}{'' if number == 1 else 's'}"


def _duration(seconds):
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds} s" if minutes else f"{seconds} s"
