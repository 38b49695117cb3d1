"""Argument checks shared by the Tensor's methods (each error names the argument)."""
import numpy as np

from .._validation import dimension, integer
from ..autograd import function

__all__ = ["dimension", "integer", "dims", "shape_arg", "view_of"]


def dims(dim, ndim):
    """A reduction's ``dim`` (None, an int, or a tuple or list of ints) checked against ``ndim``
    dims: None, an int or a tuple of distinct non-negative ints."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        checked = tuple([dimension(d, ndim) for d in dim])
        if len(set(checked)) != len(checked):
            raise ValueError(f"dim: each dimension may appear once, got {tuple(dim)}")
        if not checked:
            return None  # PyTorch reduces over everything for an empty dim list
    else:
        checked = dimension(dim, ndim)
    # A 0-d tensor's only dim is itself: reducing over it reduces over everything.
    return None if not ndim else checked


def shape_arg(shape, name):
    """Accept ``f(2, 3)`` as well as ``f((2, 3))``; every entry an integer."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple([integer(size, name) for size in shape])


def view_of(base, out):
    """Mark `out` as a view of `base` when it shares its memory (so both share one version
    counter and in-place rules see the base), and return `out`."""
    array, source = out._data, base._data
    owner = array.base
    # NumPy points a view at the array that owns the memory: two identity tests settle the
    # common cases (a reshape or slice), the bounds test the rest.
    if owner is not None and (owner is source or owner is source.base
                              or np.may_share_memory(array, source)):
        out._base = base if base._base is None else base._base
    return out


def tensor_class():
    """``cnn.Tensor`` (registered by cnn.tensor)."""
    return function.Tensor
