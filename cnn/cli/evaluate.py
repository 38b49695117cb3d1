"""``cnn evaluate``: a checkpoint's accuracy on the MNIST test set and its confusion matrix."""
import numpy as np

from .lenet import load_lenet5, predict
from .options import (add_data_options, add_model_option, add_threads_option, apply_threads,
                      load_mnist)

NUM_CLASSES = 10


def register(subparsers):
    """Add the ``evaluate`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "evaluate", help="test accuracy and confusion matrix of a trained LeNet-5",
        description="Classify the 10,000 MNIST test images with a trained LeNet-5 and print "
                    "the accuracy and the confusion matrix.",
        epilog="examples: %(prog)s --model lenet_mnist.npz; %(prog)s --model lenet.pt (a "
               "PyTorch state dict of the same LeNet-5)")
    add_model_option(parser)
    add_data_options(parser)
    add_threads_option(parser)
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn evaluate``; return the exit status."""
    apply_threads(args)
    model, checkpoint = load_lenet5(args.model)
    test_set = load_mnist(args, train=False)
    predictions = predict(model, test_set)
    labels = test_set.targets
    right = int(np.sum(predictions == labels))
    epoch = None if checkpoint is None else checkpoint.get("epoch")
    trained = (f", trained {epoch} epoch{'' if epoch == 1 else 's'}"
               if isinstance(epoch, int) else "")
    print(f"LeNet-5 from {args.model}{trained}, on {len(labels):,} MNIST test images")
    print(f"test accuracy: {right / len(labels):.2%} ({right:,} of {len(labels):,})")
    print()
    print("confusion matrix (rows: true digit, columns: predicted digit)")
    print(format_confusion(confusion_matrix(labels, predictions)))
    return 0


def confusion_matrix(labels, predictions, num_classes=NUM_CLASSES):
    """Counts of (true class, predicted class) pairs: an int64 array ``(classes, classes)``."""
    counts = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(counts, (labels, predictions), 1)
    return counts


def format_confusion(counts):
    """The confusion matrix as a text table, with each true class's recall in a last column."""
    width = max(5, len(f"{counts.max():,}") + 1)
    header = "true" + "".join(f"{column:>{width}}" for column in range(len(counts)))
    lines = [header + "  recall"]
    for digit, row in enumerate(counts):
        recall = f"{row[digit] / row.sum():.1%}" if row.sum() else "-"
        lines.append(f"{digit:>4}" + "".join(f"{count:>{width},}" for count in row)
                     + f"  {recall:>6}")
    return "\n".join(lines)
