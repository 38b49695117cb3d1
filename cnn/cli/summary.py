"""``cnn summary``: LeNet-5's layers, output shapes and parameter counts, as torchinfo prints."""
import numpy as np

from ..autograd import no_grad
from ..nn import Conv2d, Linear
from ..tensor import zeros
from .lenet import lenet5

INPUT_SHAPE = (1, 1, 28, 28)


def register(subparsers):
    """Add the ``summary`` command to `subparsers`."""
    parser = subparsers.add_parser(
        "summary", help="layers, output shapes and parameter counts of LeNet-5",
        description="Print LeNet-5's layers with their output shapes, parameter counts and "
                    "multiply-adds for one 1 x 28 x 28 image.")
    parser.set_defaults(run=run)


def run(args):
    """Run ``cnn summary``; return the exit status."""
    print(summarize(lenet5(), INPUT_SHAPE))
    return 0


def summarize(model, input_shape):
    """A table of a Sequential's layers: type, output shape, parameters, multiply-adds.

    The shapes come from running a batch of zeros through the layers one at a time.

    Args:
        model (Sequential): The model.
        input_shape (tuple of int): The input's shape, batch first.

    Returns:
        str: The table, then the totals and sizes.
    """
    rows = [("Layer (type)", "Output shape", "Param #", "Mult-adds")]
    total_params = total_macs = 0
    output = zeros(*input_shape)
    with no_grad():
        for name, layer in model.named_children():
            output = layer(output)
            params = sum(param._data.size for param in layer.parameters())
            macs = _multiply_adds(layer, output.shape)
            total_params += params
            total_macs += macs
            rows.append((f"{name}: {type(layer).__name__}", str(list(output.shape)),
                         f"{params:,}", f"{macs:,}"))
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    rule = "=" * (sum(widths) + 2 * 3)

    def line(row):
        return "  ".join([row[0].ljust(widths[0]), row[1].ljust(widths[1])]
                         + [cell.rjust(width) for cell, width in zip(row[2:], widths[2:])])

    params_mb = sum(param._data.nbytes for param in model.parameters()) / 1e6
    input_mb = np.prod(input_shape) * np.dtype(np.float32).itemsize / 1e6
    return "\n".join([
        rule, line(rows[0]), rule, *map(line, rows[1:]), rule,
        f"Total params: {total_params:,}",
        f"Trainable params: {sum(p._data.size for p in model.parameters() if p.requires_grad):,}",
        f"Non-trainable params: "
        f"{sum(p._data.size for p in model.parameters() if not p.requires_grad):,}",
        f"Total mult-adds: {total_macs:,} (forward, batch {input_shape[0]})",
        rule,
        f"Input size (MB): {input_mb:.2f}",
        f"Params size (MB): {params_mb:.2f}",
        rule])


def _multiply_adds(layer, output_shape):
    """Multiply-adds of a layer's forward pass producing `output_shape` (0 for cheap layers)."""
    if isinstance(layer, Conv2d):
        kernel = layer.weight._data[0].size  # in_channels / groups * kh * kw
        return int(np.prod(output_shape)) * kernel
    if isinstance(layer, Linear):
        return int(np.prod(output_shape[:-1])) * layer.in_features * layer.out_features
    return 0
