"""Ops that overwrite values: fill, copy, and assignment to an index.

They are the out-of-place halves of ``fill_``, ``copy_`` and ``x[index] = value``
(``cnn/autograd/inplace.py`` stores their result into the tensor): each returns the new values
and sends no gradient to the values it replaced.
"""
import numpy as np

from ..function import Function
from ._broadcast import unbroadcast


class Fill(Function):
    """Every element set to ``value`` (a number, or a 0-d array whose gradient is the sum)."""

    inplace_safe = True

    @staticmethod
    def forward(ctx, x, value):
        return np.full(x.shape, value, x.dtype)

    @staticmethod
    def backward(ctx, grad):
        need_x, need_value = ctx.needs_input_grad
        return (np.zeros_like(grad) if need_x else None,
                grad.sum() if need_value else None)


class Copy(Function):
    """The values of ``source`` broadcast to ``x``'s shape and cast to its dtype."""

    inplace_safe = True

    @staticmethod
    def forward(ctx, x, source):
        ctx.source_shape = np.shape(source)
        try:
            return np.broadcast_to(source, x.shape).astype(x.dtype)
        except ValueError:
            raise ValueError(f"copy_: the source of shape {np.shape(source)} cannot be broadcast "
                             f"to the destination's shape {x.shape}") from None

    @staticmethod
    def backward(ctx, grad):
        need_x, need_source = ctx.needs_input_grad
        return (np.zeros_like(grad) if need_x else None,
                unbroadcast(grad, ctx.source_shape) if need_source else None)


class SetItem(Function):
    """``x`` with ``x[index] = value``; the replaced elements get no gradient and ``value``
    gets the gradient of where it was written."""

    inplace_safe = True

    @staticmethod
    def forward(ctx, x, index, value):
        ctx.index, ctx.value_shape = index, np.shape(value)
        out = x.copy()
        out[index] = value
        return out

    @staticmethod
    def backward(ctx, grad):
        need_x, _, need_value = ctx.needs_input_grad
        grad_x = grad_value = None
        if need_x:
            grad_x = grad.copy()
            grad_x[ctx.index] = 0
        if need_value:
            # NumPy lets a value with extra leading dims of size 1 fill a region.
            grad_value = unbroadcast(grad[ctx.index], ctx.value_shape).reshape(ctx.value_shape)
        return grad_x, None, grad_value
