"""How the functional ops read their tensor arguments before running (SPEC section 8)."""
import numpy as np

from cnn._validation import FLOAT_DTYPES
from cnn.tensor import Tensor


def array_of(value, name):
    """The NumPy array behind a Tensor or ndarray argument (TypeError for anything else)."""
    if isinstance(value, Tensor):
        return value._data
    if isinstance(value, np.ndarray):
        return value
    raise TypeError(f"{name}: expected a Tensor, got {type(value).__name__}")


def float_array_of(value, name, ndims=None):
    """Like array_of, and the array must be float32/float64 with one of `ndims` dimensions."""
    array = array_of(value, name)
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 tensor, got dtype {array.dtype}")
    if ndims is not None and array.ndim not in ndims:
        expected = " or ".join(str(n) for n in ndims)
        raise ValueError(f"{name}: expected {expected} dimensions, got shape {array.shape}")
    return array


def same_dtype(array, reference, name, reference_name):
    """Refuse mixed precision, as PyTorch does (a silent cast would hide a float64 leak)."""
    if array.dtype != reference.dtype:
        raise TypeError(f"{name}: expected dtype {reference.dtype} (the dtype of "
                        f"{reference_name}), got {array.dtype}")
