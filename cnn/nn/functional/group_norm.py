"""Normalisation by per-sample statistics: layer norm (over the last dims) and group norm
(over groups of channels), with PyTorch's biased variance and ``eps`` inside the root.

Both reshape the input into rows, one per normalised group of one sample, normalise each row
(``x_hat = (x - mean) * inv_std``) and apply the affine map; backward uses the standard
per-row formula ``inv_std * (g - mean(g) - x_hat * mean(g * x_hat))``.
"""
import math

import numpy as np

from cnn._validation import integer, real_number
from cnn.autograd import Function

from ._inputs import array_of, float_array_of, same_dtype


def _normalized_rows(rows, eps):
    """(x_hat, inv_std) of each row of a (M, K) array."""
    centered = rows - rows.mean(axis=1, keepdims=True)
    var = (centered * centered).mean(axis=1, keepdims=True)
    inv_std = 1 / np.sqrt(var + rows.dtype.type(eps))
    return centered * inv_std, inv_std


def _rows_gradient(grad_hat, x_hat, inv_std):
    """d(loss)/d(rows) from d(loss)/d(x_hat), through the rows' own mean and variance."""
    return inv_std * (grad_hat - grad_hat.mean(axis=1, keepdims=True)
                      - x_hat * (grad_hat * x_hat).mean(axis=1, keepdims=True))


class LayerNorm(Function):
    """Normalise over the last dims (``normalized_shape``), then ``* weight + bias`` (both of
    that shape, either may be None)."""

    @staticmethod
    def forward(ctx, x, weight, bias, normalized_shape, eps):
        x_hat, inv_std = _normalized_rows(x.reshape(-1, math.prod(normalized_shape)), eps)
        out = x_hat
        if weight is not None:
            out = out * weight.reshape(-1)
        if bias is not None:
            out = out + bias.reshape(-1)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.shape, ctx.normalized_shape = x.shape, normalized_shape
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        g = grad_output.reshape(x_hat.shape)
        grad_w = (g * x_hat).sum(axis=0).reshape(ctx.normalized_shape) if need_w else None
        grad_b = g.sum(axis=0).reshape(ctx.normalized_shape) if need_b else None
        grad_x = None
        if need_x:
            grad_hat = g if weight is None else g * weight.reshape(-1)
            grad_x = _rows_gradient(grad_hat, x_hat, inv_std).reshape(ctx.shape)
        return grad_x, grad_w, grad_b, None, None


class GroupNorm(Function):
    """Normalise each of ``groups`` groups of channels of each sample of (N, C, *), then
    ``* weight + bias`` per channel (either may be None)."""

    @staticmethod
    def forward(ctx, x, weight, bias, groups, eps):
        n, c = x.shape[:2]
        x_hat, inv_std = _normalized_rows(x.reshape(n * groups, -1), eps)
        out = x_hat.reshape(n, c, -1)
        if weight is not None:
            out = out * weight[:, None]
        if bias is not None:
            out = out + bias[:, None]
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.shape = x.shape
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, inv_std, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        n, c = ctx.shape[:2]
        g = grad_output.reshape(n, c, -1)
        grad_w = (g * x_hat.reshape(n, c, -1)).sum(axis=(0, 2)) if need_w else None
        grad_b = g.sum(axis=(0, 2)) if need_b else None
        grad_x = None
        if need_x:
            grad_hat = g if weight is None else g * weight[:, None]
            grad_x = _rows_gradient(grad_hat.reshape(x_hat.shape), x_hat,
                                    inv_std).reshape(ctx.shape)
        return grad_x, grad_w, grad_b, None, None


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Normalise ``input`` over its last ``len(normalized_shape)`` dims (which must equal
    ``normalized_shape``), then scale by ``weight`` and shift by ``bias`` (that shape)."""
    x = float_array_of(input, "input")
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    shape = tuple(integer(size, "normalized_shape", 1) for size in shape)
    if not shape or x.shape[x.ndim - len(shape):] != shape or len(shape) > x.ndim:
        raise ValueError(f"input: expected the last dims to be normalized_shape {shape}, got "
                         f"shape {x.shape}")
    _check_affine(weight, bias, x, shape)
    return LayerNorm.apply(input, weight, bias, shape, real_number(eps, "eps", minimum=0))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Normalise each group of ``C / num_groups`` channels of each sample of (N, C, *), then
    scale and shift per channel by ``weight`` and ``bias`` (C,)."""
    x = float_array_of(input, "input")
    if x.ndim < 2:
        raise ValueError(f"input: expected (N, C, *), got shape {x.shape}")
    groups = integer(num_groups, "num_groups", 1)
    if x.shape[1] % groups:
        raise ValueError(f"num_groups: the {x.shape[1]} channels must divide into "
                         f"{groups} groups")
    if x.size == 0:
        raise ValueError(f"input: expected a non-empty tensor, got shape {x.shape}")
    _check_affine(weight, bias, x, (x.shape[1],))
    return GroupNorm.apply(input, weight, bias, groups, real_number(eps, "eps", minimum=0))


def _check_affine(weight, bias, x, shape):
    for name, value in (("weight", weight), ("bias", bias)):
        if value is None:
            continue
        array = array_of(value, name)
        same_dtype(array, x, name, "input")
        if array.shape != shape:
            raise ValueError(f"{name}: expected shape {shape}, got {array.shape}")
