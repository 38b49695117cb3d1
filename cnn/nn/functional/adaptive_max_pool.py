"""Adaptive max-pooling: the maximum of each of PyTorch's adaptive bins.

Bin ``i`` of a dim of size ``n`` pooled to ``m`` covers ``[floor(i n / m), ceil((i + 1) n / m))``;
bins may overlap. The first maximum of a bin in row-major order wins (PyTorch's rule, as in
max_pool2d) and receives the gradient; overlapping bins add their gradients.
"""
import numpy as np

from cnn.autograd import Function
from cnn.tensor import Tensor

from ._inputs import float_array_of
from .resampling import adaptive_output_size


def _bins(size_in, size_out):
    return [((i * size_in) // size_out, -(-((i + 1) * size_in) // size_out))
            for i in range(size_out)]


def _pool(x, output_size):
    """(values, flat in-plane indices of the maxima), both (N, C, OH, OW)."""
    n, c, h, w = x.shape
    planes = x.reshape(n * c, h, w)
    values = np.empty((n * c,) + output_size, x.dtype)
    indices = np.empty((n * c,) + output_size, np.int64)
    rows = np.arange(n * c)
    for i, (top, bottom) in enumerate(_bins(h, output_size[0])):
        for j, (left, right) in enumerate(_bins(w, output_size[1])):
            window = planes[:, top:bottom, left:right].reshape(n * c, -1)
            # The first maximum wins; NaN wins, as in PyTorch (np.argmax finds the first NaN).
            best = np.argmax(window, axis=1)
            values[:, i, j] = window[rows, best]
            width = right - left
            indices[:, i, j] = (top + best // width) * w + left + best % width
    return values.reshape((n, c) + output_size), indices.reshape((n, c) + output_size)


class AdaptiveMaxPool2d(Function):
    """(N, C, H, W) -> (N, C, OH, OW); keeps the flat in-plane index of every maximum."""

    @staticmethod
    def forward(ctx, x, output_size):
        values, indices = _pool(x, output_size)
        ctx.save_for_backward(indices)
        ctx.shape = x.shape
        return values

    @staticmethod
    def backward(ctx, grad_output):
        (indices,) = ctx.saved_tensors
        n, c, h, w = ctx.shape
        grad = np.zeros((n * c, h * w), grad_output.dtype)
        rows = np.repeat(np.arange(n * c), indices.size // max(n * c, 1))
        np.add.at(grad, (rows, indices.reshape(-1)), grad_output.reshape(-1))
        return grad.reshape(ctx.shape), None


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max-pool (N, C, H, W) or (C, H, W) into ``output_size`` (an int or a pair; None keeps a
    dim) with PyTorch's adaptive bins.

    Returns:
        Tensor (N, C, OH, OW), or (values, int64 indices into each H*W plane) with
        ``return_indices``.
    """
    x = float_array_of(input, "input", (3, 4))
    if any(size == 0 for size in x.shape[-2:]):
        raise ValueError(f"input: expected non-empty spatial dims, got shape {x.shape}")
    if not isinstance(input, Tensor):
        input = Tensor(x)
    unbatched = x.ndim == 3
    if unbatched:
        input, x = input.unsqueeze(0), x[None]
    sizes = adaptive_output_size(x.shape, output_size, 2)
    values = AdaptiveMaxPool2d.apply(input, sizes)
    if unbatched:
        values = values[0]
    if not return_indices:
        return values
    # Recomputed rather than kept alive outside the graph that holds them.
    indices = Tensor(_pool(x, sizes)[1])
    return values, indices[0] if unbatched else indices


def adaptive_max_pool1d(input, output_size, return_indices=False):
    """Max-pool (N, C, L) or (C, L) into ``output_size`` with PyTorch's adaptive bins."""
    x = float_array_of(input, "input", (2, 3))
    if not isinstance(input, Tensor):
        input = Tensor(x)
    size = adaptive_output_size(x.shape, output_size, 1)[0]
    out = adaptive_max_pool2d(input.unsqueeze(-2), (1, size), return_indices)
    if return_indices:
        return out[0].squeeze(-2), out[1].squeeze(-2)
    return out.squeeze(-2)
