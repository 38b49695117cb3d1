"""Shapes and indexing: reshape, permute, indexing, expand, repeat, concatenation, flips,
copies and gathers."""
import numpy as np

from ..function import Function
from ._broadcast import unbroadcast


class Reshape(Function):
    """``x.reshape(shape)`` (one dim may be -1)."""

    views_input = True

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        return Reshape.inference(1, x, shape)

    @staticmethod
    def inference(threads, x, shape):
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} "
                             f"elements) into shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    """``np.transpose(x, dims)``: dim ``i`` of the result is dim ``dims[i]`` of ``x``."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, np.argsort(ctx.dims)), None


class GetItem(Function):
    """``x[index]`` with basic slices, integer arrays, boolean masks and tuples of them.

    Integer arrays may repeat an element; its gradient then sums every use.
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        grad_x = np.zeros(ctx.shape, grad.dtype)
        if _is_basic_index(ctx.index):
            # Basic indexing selects each element at most once: a plain store is enough.
            grad_x[ctx.index] = grad
        else:
            np.add.at(grad_x, ctx.index, grad)
        return grad_x, None


_BASIC_INDEX_TYPES = (int, np.integer, slice, type(None), type(Ellipsis))


def _is_basic_index(index):
    if isinstance(index, tuple):
        return all(isinstance(item, _BASIC_INDEX_TYPES) for item in index)
    return isinstance(index, _BASIC_INDEX_TYPES)


class Expand(Function):
    """``x`` broadcast to ``shape`` without copying (a read-only view, as PyTorch's is not
    writable either); the gradient sums over the stretched dims."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return np.broadcast_to(x, shape)
        except ValueError:
            raise ValueError(f"expand: the shape {x.shape} cannot be expanded to {shape}: each "
                             "size must equal the tensor's or the tensor's must be 1") from None

    @staticmethod
    def backward(ctx, grad):
        return unbroadcast(grad, ctx.shape), None


class Repeat(Function):
    """``x`` tiled ``repeats[i]`` times along each dim (``np.tile``; ``len(repeats)`` at least
    ``x.ndim``, extra leading dims added); the gradient sums the copies."""

    @staticmethod
    def forward(ctx, x, repeats):
        ctx.shape = x.shape
        ctx.repeats = repeats
        return np.tile(x, repeats)

    @staticmethod
    def backward(ctx, grad):
        repeats = ctx.repeats
        sizes = (1,) * (len(repeats) - len(ctx.shape)) + ctx.shape
        # Split every dim into (copy, size) and sum over the copies.
        split = [n for pair in zip(repeats, sizes) for n in pair]
        grad = grad.reshape(split).sum(axis=tuple(range(0, len(split), 2)))
        return grad.reshape(ctx.shape), None


class Cat(Function):
    """Concatenation of the arrays along ``dim`` (keyword); backward splits the gradient."""

    @staticmethod
    def forward(ctx, *arrays, dim):
        ctx.sizes = [array.shape[dim] for array in arrays]
        ctx.dim = dim
        return np.concatenate(arrays, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        bounds = np.cumsum(ctx.sizes)[:-1]
        return tuple(np.split(grad, bounds, axis=ctx.dim))


class Flip(Function):
    """``x`` reversed along ``dims`` (a copy, as ``torch.flip``)."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.flip(x, dims).copy()

    @staticmethod
    def backward(ctx, grad):
        return np.flip(grad, ctx.dims), None


class Clone(Function):
    """A copy of ``x`` in its own (C-contiguous) memory; the gradient passes unchanged."""

    @staticmethod
    def forward(ctx, x):
        return np.array(x, order="C", copy=True)

    @staticmethod
    def backward(ctx, grad):
        return grad


class Gather(Function):
    """``take_along_axis(x, index, dim)`` (``torch.gather``); repeated indices sum their
    gradients."""

    @staticmethod
    def forward(ctx, x, index, dim):
        ctx.shape, ctx.index, ctx.dim = x.shape, index, dim
        return np.take_along_axis(x, index, axis=dim)

    @staticmethod
    def backward(ctx, grad):
        grad_x = np.zeros(ctx.shape, grad.dtype)
        where = list(np.ix_(*[np.arange(size) for size in ctx.index.shape]))
        where[ctx.dim] = ctx.index
        np.add.at(grad_x, tuple(where), grad)
        return grad_x, None, None
