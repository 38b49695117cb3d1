"""Checked max-pool and average-pool kernels over (N, C, H, W) arrays."""
import numpy as np

from cnn import _ext
from cnn._validation import float_array, pair, shape
from cnn.threads import get_num_threads

from .geometry import pool_output_size


def pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    """Checked pooling arguments: ((kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow)).

    `stride=None` means the kernel size, as in PyTorch.
    """
    kernel = pair(kernel_size, "kernel_size", 1)
    # () and [] also mean the default, as in PyTorch (not `stride == ()`: a NumPy integer
    # would compare elementwise).
    default = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    strides = kernel if default else pair(stride, "stride", 1)
    pads = pair(padding, "padding", 0)
    dilations = pair(dilation, "dilation", 1)
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode: expected a bool, got {ceil_mode!r}")
    n, c, h, w = input_shape
    if c < 1 or h < 1 or w < 1:
        raise ValueError(f"input: expected at least one channel, row and column, got shape "
                         f"{tuple(input_shape)}")
    out = tuple(pool_output_size(size, k, s, p, d, bool(ceil_mode), axis)
                for size, k, s, p, d, axis in zip((h, w), kernel, strides, pads, dilations,
                                                  ("height", "width")))
    return kernel, strides, pads, dilations, out


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """Max-pool `x` (N, C, H, W); returns (values, indices), both (N, C, OH, OW).

    indices[n, c, oy, ox] is the flat position y*W + x of the maximum inside plane (n, c) (the
    first maximum in row-major window order; a NaN wins), or -1 for a window that covers only
    padding.
    """
    x = float_array(x, "input", ndim=4)
    kernel, strides, pads, dilations, out = pool_geometry(x.shape, kernel_size, stride, padding,
                                                          dilation, ceil_mode)
    n, c, h, w = x.shape
    values = np.empty((n, c) + out, dtype=x.dtype)
    indices = np.empty((n, c) + out, dtype=np.int64)
    _ext.backend.pool.max_pool_forward(
        x.reshape(n * c, h, w), values.reshape(n * c, *out), indices.reshape(n * c, *out),
        *kernel, *strides, *pads, *dilations, get_num_threads())
    return values, indices


def max_pool2d_backward(grad_output, indices, input_shape):
    """Gradient of max_pool2d with respect to its input, from the indices it returned."""
    grad_output = float_array(grad_output, "grad_output", ndim=4)
    input_shape = shape(input_shape, "input_shape", 4)
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError("indices: expected the int64 array returned by max_pool2d, got "
                        f"{getattr(indices, 'dtype', type(indices).__name__)}")
    if indices.shape != grad_output.shape:
        raise ValueError(f"indices: expected the shape of grad_output {grad_output.shape}, got "
                         f"{indices.shape}")
    n, c, h, w = input_shape
    if grad_output.shape[:2] != (n, c):
        raise ValueError(f"grad_output: expected batch and channels {(n, c)} of input_shape, got "
                         f"shape {grad_output.shape}")
    indices = np.ascontiguousarray(indices)
    planes, outputs = n * c, grad_output.shape[2] * grad_output.shape[3]
    grad_input = np.empty(input_shape, dtype=grad_output.dtype)
    _ext.backend.pool.max_pool_backward(
        grad_output.reshape(planes, outputs), indices.reshape(planes, outputs),
        grad_input.reshape(planes, h * w), get_num_threads())
    return grad_input


def _avg_arguments(input_shape, kernel_size, stride, padding, ceil_mode, count_include_pad):
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad: expected a bool, got {count_include_pad!r}")
    kernel, strides, pads, _, out = pool_geometry(input_shape, kernel_size, stride, padding, 1,
                                                  ceil_mode)
    return (*kernel, *strides, *pads, bool(count_include_pad)), out


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    """Average-pool `x` (N, C, H, W) with zero padding; returns (N, C, OH, OW)."""
    x = float_array(x, "input", ndim=4)
    arguments, out = _avg_arguments(x.shape, kernel_size, stride, padding, ceil_mode,
                                    count_include_pad)
    n, c, h, w = x.shape
    values = np.empty((n, c) + out, dtype=x.dtype)
    _ext.backend.pool.avg_pool_forward(x.reshape(n * c, h, w), values.reshape(n * c, *out),
                                       *arguments, get_num_threads())
    return values


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):
    """Gradient of avg_pool2d (same arguments) with respect to its input."""
    grad_output = float_array(grad_output, "grad_output", ndim=4)
    input_shape = shape(input_shape, "input_shape", 4)
    arguments, out = _avg_arguments(input_shape, kernel_size, stride, padding, ceil_mode,
                                    count_include_pad)
    n, c, h, w = input_shape
    if grad_output.shape != (n, c) + out:
        raise ValueError(f"grad_output: expected shape {(n, c) + out} for input shape "
                         f"{input_shape}, got {grad_output.shape}")
    grad_input = np.empty(input_shape, dtype=grad_output.dtype)
    _ext.backend.pool.avg_pool_backward(grad_output.reshape(n * c, *out),
                                        grad_input.reshape(n * c, h, w), *arguments,
                                        get_num_threads())
    return grad_input
