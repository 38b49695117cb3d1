"""Reductions: sum, mean, max and min (the gradient to the first extreme), variance."""
import numpy as np

from ..function import Function
from ._broadcast import expand_reduced, kept_shape


class Sum(Function):
    """Sum over ``dim`` (an int, a tuple of ints, or None for all elements)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        return x.sum(axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return expand_reduced(grad, ctx.shape, ctx.dim, ctx.keepdim), None, None


class Mean(Function):
    """Mean over ``dim`` (an int, a tuple of ints, or None for all elements)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        out = x.mean(axis=dim, keepdims=keepdim)
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        ctx.count = x.size // max(np.size(out), 1)
        return out

    @staticmethod
    def backward(ctx, grad):
        return expand_reduced(grad / ctx.count, ctx.shape, ctx.dim, ctx.keepdim), None, None


class Max(Function):
    """Maximum of all elements (``dim=None``) or along one ``dim``.

    The gradient goes to the first maximal element, the one ``argmax`` picks (PyTorch's rule),
    so ties never share or double-count it.
    """

    pick = staticmethod(np.argmax)
    name = "max"

    @classmethod
    def forward(cls, ctx, x, dim=None, keepdim=False):
        ctx.shape = x.shape
        if dim is None:
            x, dim, keepdim = x.reshape(-1), 0, False
        if x.shape[dim] == 0:
            raise ValueError(f"{cls.name}: cannot take the {cls.name}imum over an empty dim of "
                             f"shape {x.shape}")
        index = cls.pick(x, axis=dim, keepdims=True)
        ctx.index, ctx.dim, ctx.keepdim, ctx.reduced_shape = index, dim, keepdim, x.shape
        values = np.take_along_axis(x, index, axis=dim)
        return values if keepdim else values.squeeze(dim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = np.expand_dims(grad, ctx.dim)
        grad_x = np.zeros(ctx.reduced_shape, grad.dtype)
        np.put_along_axis(grad_x, ctx.index, grad, axis=ctx.dim)
        return grad_x.reshape(ctx.shape), None, None


class Min(Max):
    """Minimum of all elements or along one ``dim``; the gradient goes to the first minimum."""

    pick = staticmethod(np.argmin)
    name = "min"


class Var(Function):
    """Variance over ``dim`` with Bessel's ``correction`` (1: unbiased, 0: biased).

    backward: ``2 * (x - mean) / (n - correction)`` times the gradient.
    """

    @staticmethod
    def forward(ctx, x, dim=None, correction=1, keepdim=False):
        centered = x - x.mean(axis=dim, keepdims=True)
        count = x.size // max(int(np.prod(kept_shape(x.shape, dim))), 1)
        divisor = x.dtype.type(max(count - correction, 0))
        ctx.save_for_backward(centered)
        ctx.dim, ctx.keepdim, ctx.divisor = dim, keepdim, divisor
        with np.errstate(divide="ignore", invalid="ignore"):  # inf or NaN below 2, as PyTorch
            return (centered * centered).sum(axis=dim, keepdims=keepdim) / divisor

    @staticmethod
    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = expand_reduced(grad, centered.shape, ctx.dim, ctx.keepdim)
        with np.errstate(divide="ignore", invalid="ignore"):
            return grad * centered * (2 / ctx.divisor), None, None, None
