"""``cnn classify``: a grid of MNIST test digits titled with LeNet-5's predictions (matplotlib)."""
import os

from ..serialization import atomic_write
from .errors import CommandError
from .lenet import load_lenet5, predict
from .options import add_data_options, add_model_option, load_mnist

DEFAULT_OUT = "classify_results.png"
GRID = 6
RIGHT_COLOR, WRONG_COLOR = "tab:green", "tab:red"


def register(subparsers):
    """Add the ``classify`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "classify", help="draw test digits with a trained LeNet-5's predictions",
        description=f"Draw the first {GRID * GRID} MNIST test digits in a {GRID} x {GRID} grid, "
                    "each titled with the model's prediction and whether it is right. Needs "
                    "matplotlib: pip install .[plot]",
        epilog="example: %(prog)s --model lenet_mnist.npz")
    add_model_option(parser)
    add_data_options(parser)
    parser.add_argument("--out", default=DEFAULT_OUT, metavar="FILE",
                        help=f"the image to write; its suffix picks the format (default: "
                             f"{DEFAULT_OUT})")
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn classify``; return the exit status."""
    figure_class = _import_figure()
    model, _ = load_lenet5(args.model)
    digits = load_mnist(args, train=False, limit=GRID * GRID)
    predictions = predict(model, digits)
    right = int((predictions == digits.targets).sum())

    figure = figure_class(figsize=(7.5, 8.5), layout="constrained")
    for axes, image, label, prediction in zip(figure.subplots(GRID, GRID).flat, digits.data,
                                              digits.targets, predictions):
        axes.imshow(image, cmap="gray_r")
        axes.set_axis_off()
        if prediction == label:
            axes.set_title(f"{prediction} \u2713", color=RIGHT_COLOR, fontsize=11)
        else:
            axes.set_title(f"{prediction} \u2717 (is {label})", color=WRONG_COLOR, fontsize=11)
    figure.suptitle(f"LeNet-5 ({os.path.basename(args.model)}) on the first {len(digits)} "
                    f"MNIST test digits: {right} of {len(digits)} right\n"
                    "(each title: the prediction, \u2713 if right, \u2717 and the true digit "
                    "if wrong)")
    file_format = os.path.splitext(args.out)[1].lstrip(".").lower() or "png"
    supported = sorted(figure.canvas.get_supported_filetypes())
    if file_format not in supported:
        raise CommandError(f"--out {args.out}: matplotlib cannot write .{file_format} files; "
                           f"use one of {', '.join(supported)}")
    try:
        with atomic_write(args.out) as file:
            figure.savefig(file, format=file_format, dpi=100)
    except OSError as error:
        raise CommandError(f"cannot write {args.out}: {error}") from None
    print(f"{right} of {len(digits)} predictions right; the grid is in {args.out}")
    return 0


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
