"""Max- and average-pooling over (N, C, H, W) inputs (the kernels are in cnn/_ext/pool.pyx).

The public functions check the input and the geometry once (cnn/_ext/geometry.py, cached per
geometry); the Functions below them hand the arrays and that checked geometry to the kernels'
entry points (cnn/_ext/pooling.py).
"""
from cnn._ext import pooling
from cnn._ext.geometry import pool_geometry
from cnn._validation import flag
from cnn.autograd import Function
from cnn.tensor import Tensor
from cnn.threads import kernel_threads

from ._inputs import float_array_of


class MaxPool2d(Function):
    """Max-pooling; keeps only the argmax indices (and the input shape) for backward."""

    per_image = (0,)

    @staticmethod
    def forward(ctx, x, geometry):
        values, indices = pooling.max_pool(x, geometry, kernel_threads())
        ctx.save_for_backward(indices)
        ctx.input_shape = x.shape
        return values

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        return (pooling.max_pool_backward(grad_output, indices, ctx.input_shape,
                                          kernel_threads()), None)


class AvgPool2d(Function):
    """Average-pooling with zero padding; backward spreads each gradient over its window."""

    per_image = (0,)
    freezable = True  # a global pool (a classifier's) has a bound form (cnn.compile)

    @staticmethod
    def forward(ctx, x, geometry, count_include_pad):
        ctx.arguments = (x.shape, geometry, count_include_pad)
        return pooling.avg_pool(x, geometry, count_include_pad, kernel_threads())

    @staticmethod
    def inference(threads, x, geometry, count_include_pad, frozen=False):
        return pooling.avg_pool(x, geometry, count_include_pad, threads)

    @staticmethod
    def frozen(shape, geometry, count_include_pad):
        return pooling.frozen_avg_pool(shape, geometry)

    @staticmethod
    def backward(ctx, grad_output):
        return (pooling.avg_pool_backward(grad_output, *ctx.arguments, kernel_threads()),
                None, None)


def _batched(input, name):
    """(input as 4-D, its array, whether it was one unbatched (C, H, W) image)."""
    x = float_array_of(input, name, (3, 4))
    if x.ndim == 3:
        return input.reshape(1, *x.shape), x.reshape(1, *x.shape), True
    return input, x, False


def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """2-D max-pooling (PyTorch's rules: padding is -inf, first maximum wins, NaN wins).

    Args:
        input: Tensor (N, C, H, W) or (C, H, W).
        kernel_size, stride, padding, dilation: int or pair; stride defaults to kernel_size;
            padding at most half the kernel.
        ceil_mode: round the output size up instead of down.
        return_indices: also return the flat in-plane index (y*W + x) of every maximum.

    Returns:
        Tensor (N, C, OH, OW), or (Tensor, int64 Tensor of indices) with return_indices.
    """
    input, x, unbatched = _batched(input, "input")
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    values = MaxPool2d.apply(input, geometry)
    if unbatched:
        values = values[0]
    if not return_indices:
        return values
    # Recomputed rather than kept alive outside the graph that holds them.
    indices = Tensor(pooling.max_pool(x, geometry, kernel_threads())[1])
    return values, indices[0] if unbatched else indices


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """2-D average-pooling with zero padding.

    Args:
        input: Tensor (N, C, H, W) or (C, H, W).
        kernel_size, stride, padding: int or pair; stride defaults to kernel_size.
        ceil_mode: round the output size up instead of down.
        count_include_pad: divide by the window size including padding (PyTorch's default),
            else by the number of input positions in the window.
    """
    input, x, unbatched = _batched(input, "input")
    geometry = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    out = AvgPool2d.apply(input, geometry, flag(count_include_pad, "count_include_pad"))
    return out[0] if unbatched else out
