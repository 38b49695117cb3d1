"""``cnn classify``: a grid of MNIST test digits titled with LeNet-5's predictions (matplotlib).

The picture a user wants of a trained model is of its mistakes: the whole test set is
classified, and the grid shows the misclassified digits first (``--errors``: only them), each
titled with the prediction and the true digit.
"""
import os

import numpy as np

from ..serialization import atomic_write
from .errors import CommandError
from .lenet import load_lenet5, predict
from .options import (add_data_options, add_model_option, add_threads_option, apply_threads,
                      check_output_path, load_mnist)

DEFAULT_OUT = "classify_results.png"
GRID = 6
RIGHT_COLOR, WRONG_COLOR = "tab:green", "tab:red"


def register(subparsers):
    """Add the ``classify`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "classify", help="draw test digits with a trained LeNet-5's predictions, mistakes first",
        description=f"Classify the MNIST test digits and draw {GRID * GRID} of them in a "
                    f"{GRID} x {GRID} grid, each titled with the model's prediction and, when "
                    "it is wrong, the true digit: the misclassified digits first, then right "
                    "ones. Needs matplotlib: pip install .[plot]",
        epilog="example: %(prog)s --errors   (after 'train', which writes lenet_mnist.npz)")
    add_model_option(parser)
    add_data_options(parser)
    add_threads_option(parser)
    parser.add_argument("--errors", action="store_true",
                        help="draw only misclassified digits (true and predicted digit)")
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help=f"the image to write; its suffix picks the format (default: "
                             f"{DEFAULT_OUT})")
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn classify``; return the exit status."""
    figure_class = _import_figure()
    file_format = os.path.splitext(args.out)[1].lstrip(".").lower() or "png"
    check_output_path(args.out, "--out")
    apply_threads(args)
    model, _ = load_lenet5(args.model)
    digits = load_mnist(args, train=False)
    predictions = predict(model, digits)
    shown = choose(predictions, digits.targets, GRID * GRID, args.errors)
    wrong = int((predictions != digits.targets).sum())
    summary = f"{wrong:,} of {len(digits):,} test digits misclassified"
    if len(shown) == 0:
        print(f"{summary}: no grid to draw")
        return 0

    figure = figure_class(figsize=(7.5, 8.5), layout="constrained")
    for axes in figure.subplots(GRID, GRID).flat:
        axes.set_axis_off()
    for axes, index in zip(figure.axes, shown):
        label, prediction = digits.targets[index], predictions[index]
        axes.imshow(digits.data[index], cmap="gray_r")
        if prediction == label:
            axes.set_title(f"{prediction} \u2713", color=RIGHT_COLOR, fontsize=11)
        else:
            axes.set_title(f"{prediction} \u2717 (is {label})", color=WRONG_COLOR, fontsize=11)
    what = "misclassified" if args.errors else "mistakes first"
    figure.suptitle(f"LeNet-5 ({os.path.basename(args.model)}): {summary}\n"
                    f"{len(shown)} shown, {what}; title: the prediction \u2713, or the "
                    "prediction \u2717 (the true digit)", fontsize=11)
    supported = sorted(figure.canvas.get_supported_filetypes())
    if file_format not in supported:
        raise CommandError(f"--out {args.out}: matplotlib cannot write .{file_format} files; "
                           f"use one of {', '.join(supported)}")
    try:
        with atomic_write(args.out) as file:
            figure.savefig(file, format=file_format, dpi=100)
    except OSError as error:
        raise CommandError(f"cannot write {args.out}: {error}") from None
    print(f"{summary}; the grid of {len(shown)} ({what}) is in {args.out}")
    return 0


def choose(predictions, labels, count, errors_only):
    """Indices of the test digits to draw: the misclassified ones in test-set order, then
    (unless `errors_only`) the right ones, `count` at most.

    Args:
        predictions, labels: int arrays ``(N,)``.
        count (int): The grid's size.
        errors_only (bool): Draw misclassified digits only.

    Returns:
        numpy.ndarray: int64 indices, at most `count`.
    """
    wrong = np.flatnonzero(predictions != labels)
    if not errors_only:
        wrong = np.concatenate([wrong, np.flatnonzero(predictions == labels)])
    return wrong[:count]


def _import_figure():
    """matplotlib's Figure class, or a CommandError saying how to install matplotlib."""
    try:
        # Figure alone, without pyplot: no GUI backend and no global state, only Agg rendering.
        from matplotlib.figure import Figure
    except ImportError:
        raise CommandError("classify draws with matplotlib, an optional extra that is not "
                           "installed: pip install .[plot] (in cnn's source folder), or "
                           "pip install matplotlib") from None
    return Figure
