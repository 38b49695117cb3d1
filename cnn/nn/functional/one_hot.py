"""``one_hot``: class indices as rows of zeros with a one (an integer op; no gradient)."""
import numpy as np

from cnn._validation import integer
from cnn.tensor import Tensor

from ._inputs import array_of


def one_hot(tensor, num_classes=-1):
    """Return int64 ``(*tensor.shape, num_classes)`` with a 1 at each index.

    Args:
        tensor: Class indices, an integer tensor.
        num_classes: The number of classes; -1 takes the largest index plus one.

    Raises:
        TypeError: For a tensor that is not of an integer dtype.
        ValueError: For negative indices, or indices >= num_classes.
    """
    indices = array_of(tensor, "tensor")
    if indices.dtype.kind not in "iu":
        raise TypeError(f"tensor: one_hot is only applicable to index tensors (integers), got "
                        f"dtype {indices.dtype}")
    num_classes = integer(num_classes, "num_classes", -1)
    if indices.size and indices.min() < 0:
        raise ValueError("tensor: class values must be non-negative")
    if num_classes == -1:
        if not indices.size:
            raise ValueError("num_classes: cannot be inferred from an empty tensor; give it")
        num_classes = int(indices.max()) + 1
    elif indices.size and indices.max() >= num_classes:
        raise ValueError(f"tensor: class values must be smaller than num_classes "
                         f"({num_classes}), got {int(indices.max())}")
    out = np.zeros(indices.shape + (num_classes,), np.int64)
    np.put_along_axis(out, indices[..., None].astype(np.int64), 1, axis=-1)
    return Tensor(out)
