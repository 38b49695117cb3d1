"""Command-line options several commands share, and the data that ``--data`` names."""
import argparse
import os
import tempfile

from .. import transforms
from ..threads import max_threads, set_num_threads
from .data import fetch_mnist_into_cache
from .errors import CommandError
from .lenet import DEFAULT_CHECKPOINT
from .models import DATASETS


def positive_int(text):
    """argparse type: an integer >= 1."""
    return _integer(text, 1, "a positive integer")


def non_negative_int(text):
    """argparse type: an integer >= 0."""
    return _integer(text, 0, "a non-negative integer")


def _integer(text, minimum, expected):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from None
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def thread_count(text):
    """argparse type: an integer >= 1, at most the threads OpenMP can give."""
    value = positive_int(text)
    bound, reason = max_threads()
    if value > bound:
        raise argparse.ArgumentTypeError(f"expected at most {bound} ({reason}), got {value}")
    return value


def positive_float(text):
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text!r}") from None
    # `not value > 0` is also true for nan, which a comparison with <= would let through.
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


def add_data_options(parser, datasets=False):
    """Add ``--data DIR``, the folder holding the four MNIST files (or, with `datasets`, the
    chosen dataset's), and ``--download``."""
    if datasets:
        data_help = ("folder with the dataset's files: for mnist the four MNIST files, gzipped "
                     "or not (default: $CNN_DATA, else ~/.cache/cnn/mnist, where they are "
                     "downloaded on first use); for fashion-mnist "
                     "the folder holding FashionMNIST/ or fashion-mnist/ (default: "
                     "/usr/share/datasets, where Debian's dataset-fashion-mnist puts it); for "
                     "cifar10 the folder holding cifar-10-batches-py/ or -bin/")
    else:
        data_help = ("folder with the four MNIST files, gzipped or not (default: $CNN_DATA, "
                     "else ~/.cache/cnn/mnist, where they are downloaded on first use)")
    parser.add_argument("--data", metavar="DIR", help=data_help)
    parser.add_argument(
        "--download", action="store_true",
        help="fetch the files missing from that folder from the public mirrors")


def add_model_option(parser):
    """Add ``--model FILE``, the trained LeNet-5 to use (default: what ``train`` writes)."""
    parser.add_argument("--model", default=DEFAULT_CHECKPOINT, metavar="FILE",
                        help="a checkpoint of 'train', LeNet-5 weights saved with cnn.save or "
                             "save_model, or a PyTorch checkpoint (.pt/.pth) of the same "
                             f"LeNet-5 (default: {DEFAULT_CHECKPOINT}, what train writes)")


def add_threads_option(parser):
    """Add ``--threads N``, the kernels' thread count."""
    parser.add_argument(
        "--threads", type=thread_count, metavar="N",
        help="threads for the compiled kernels (default: $OMP_NUM_THREADS, else all the cores "
             "this process may use)")


def apply_threads(args):
    """Set the kernels' thread count from ``--threads`` when it was given."""
    if args.threads is not None:
        set_num_threads(args.threads)


def load_mnist(args, train, limit=None):
    """The MNIST training or test set that ``--data`` and ``--download`` name, its images as
    float32 Tensors ``(1, 28, 28)`` in [0, 1] (``ToTensor``).

    Args:
        args: The parsed arguments: ``data`` (a folder, or None for ``$CNN_DATA``, else the
            default folder) and ``download``.
        train (bool): The training set (True) or the test set.
        limit (int, optional): Keep only the first `limit` images (quick runs and tests).

    Raises:
        CommandError: If files are missing, malformed or failed to download; MNIST's message
            names the folder and how to get the files.
    """
    return load_dataset(args, "mnist", train, transforms.ToTensor(), limit)


def load_dataset(args, name, train, transform, limit=None):
    """The training or test set of dataset `name` (a key of ``models.DATASETS``) that
    ``--data`` and ``--download`` name, with `transform` on its images.

    Args:
        args: The parsed arguments: ``data`` and ``download``.
        name (str): ``"mnist"``, ``"fashion-mnist"`` or ``"cifar10"``.
        train (bool): The training set (True) or the test set.
        transform (callable): Applied to each image.
        limit (int, optional): Keep only the first `limit` images (quick runs and tests).

    Raises:
        CommandError: If files are missing, malformed or failed to download (the dataset's
            message names the folder and how to get the files), or a dataset without a
            default folder is not given ``--data``.
    """
    if name == "mnist":
        fetch_mnist_into_cache(args)
    choice = DATASETS[name]
    root = args.data or choice.default_root
    if root is None and name != "mnist":
        raise CommandError(f"--dataset {name} needs --data DIR, the folder that holds its "
                           f"files (add --download to fetch them there)")
    try:
        dataset = choice.cls(root, train=train, transform=transform, download=args.download)
    except FileNotFoundError as error:
        # The dataset's message speaks to Python callers (download=True).
        raise CommandError(f"{error} On the command line: --download.") from None
    except (OSError, ValueError) as error:
        raise CommandError(str(error)) from None
    if limit is not None:
        # `data` and `targets` are the datasets' documented arrays; slicing them keeps the
        # batch indexing the DataLoader relies on.
        dataset.data = dataset.data[:limit]
        dataset.targets = dataset.targets[:limit]
    if len(dataset) == 0:
        part = "training" if train else "test"
        raise CommandError(f"the {part} set in {getattr(dataset, 'root', root)} holds no images: "
                           "nothing to train on or test with (its files are empty)")
    return dataset


def check_output_path(path, option):
    """Check now, before any work, that `path` can be written as an ``atomic_write`` will
    write it: a file (not a folder) in an existing folder where a new file can be created.

    Args:
        path (str): The output file.
        option (str): The option that named it, for the message (``"--out"``).

    Raises:
        CommandError: Naming the option, the path and what is wrong.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise CommandError(f"{option} {path} is a folder; give a file name")
    if not os.path.isdir(folder):
        raise CommandError(f"{option} {path}: the folder {folder} does not exist")
    try:
        # Creating a file is the only test that sees read-only mounts, ACLs and root alike.
        fd, probe = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                     suffix=".probe")
        os.close(fd)
        os.unlink(probe)
    except OSError as error:
        raise CommandError(f"{option} {path}: cannot write in {folder} "
                           f"({error.strerror or error})") from None
