"""Max- and average-pooling over (N, C, H, W) inputs (the kernels are in cnn/_ext/pool.pyx)."""
from cnn import _kernels
from cnn.autograd import Function
from cnn.tensor import Tensor

from ._inputs import float_array_of


class MaxPool2d(Function):
    """Max-pooling; keeps only the argmax indices (and the input shape) for backward."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, dilation, ceil_mode):
        values, indices = _kernels.max_pool2d(x, kernel_size, stride, padding, dilation,
                                              ceil_mode)
        ctx.save_for_backward(indices)
        ctx.input_shape = x.shape
        return values

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        return (_kernels.max_pool2d_backward(grad_output, indices, ctx.input_shape),
                None, None, None, None, None)


class AvgPool2d(Function):
    """Average-pooling with zero padding; backward spreads each gradient over its window."""

    @staticmethod
    def forward(ctx, x, kernel_size, stride, padding, ceil_mode, count_include_pad):
        ctx.arguments = (x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
        return _kernels.avg_pool2d(x, kernel_size, stride, padding, ceil_mode, count_include_pad)

    @staticmethod
    def backward(ctx, grad_output):
        return (_kernels.avg_pool2d_backward(grad_output, *ctx.arguments),
                None, None, None, None, None)


def _batched(input, name):
    """(input as 4-D, whether it was one unbatched (C, H, W) image)."""
    x = float_array_of(input, name, (3, 4))
    if x.ndim == 3:
        return input.reshape(1, *x.shape), True
    return input, False


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
    x, unbatched = _batched(input, "input")
    values = MaxPool2d.apply(x, kernel_size, stride, padding, dilation, ceil_mode)
    indices = None
    if return_indices:
        # Recompute rather than keep the graph's copy alive outside it.
        _, indices = _kernels.max_pool2d(x.data if isinstance(x, Tensor) else x, kernel_size,
                                         stride, padding, dilation, ceil_mode)
        indices = Tensor(indices[0] if unbatched else indices)
    if unbatched:
        values = values[0]
    return (values, indices) if return_indices else values


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
    x, unbatched = _batched(input, "input")
    out = AvgPool2d.apply(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    return out[0] if unbatched else out
