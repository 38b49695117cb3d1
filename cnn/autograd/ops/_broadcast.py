"""Shapes shared by the ops' backward passes: broadcasting undone, reductions expanded back."""
import numpy as np


def unbroadcast(grad, shape):
    """Sum a broadcast gradient back to an operand's shape.

    Args:
        grad: The gradient of a broadcast result, e.g. of shape (N, C, H, W).
        shape: The operand's shape, e.g. (C, 1, 1).

    Returns:
        numpy.ndarray: ``grad`` summed over the leading axes broadcasting added and over
        the axes it stretched from 1, of shape ``shape``.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple([axis for axis, size in enumerate(shape)
                       if size == 1 and grad.shape[axis] != 1])
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def elementwise(ufunc, a, b):
    """``ufunc(a, b)``, with an error naming both shapes when they do not broadcast."""
    try:
        return ufunc(a, b)
    except ValueError:
        raise ValueError(f"{ufunc.__name__}: operands of shapes {np.shape(a)} and {np.shape(b)} "
                         "cannot be broadcast together") from None


def expand_reduced(grad, shape, dim, keepdim):
    """Broadcast the gradient of a reduction over ``dim`` back to the input's ``shape``."""
    if dim is not None and not keepdim:
        grad = grad.reshape(kept_shape(shape, dim))
    # Filling a new array is several times faster than np.broadcast_to on small tensors,
    # and gives the next backward a writable, contiguous gradient.
    expanded = np.empty(shape, grad.dtype)
    expanded[...] = grad
    return expanded


def kept_shape(shape, dim):
    """The shape of a reduction over ``dim`` (an int, a tuple, or None) with keepdim=True."""
    if dim is None:
        return (1,) * len(shape)
    axes = range(len(shape))
    reduced = {axes[axis] for axis in (dim if isinstance(dim, tuple) else (dim,))}
    return tuple([1 if axis in reduced else size for axis, size in enumerate(shape)])
