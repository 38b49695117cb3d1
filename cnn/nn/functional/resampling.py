"""Resampling as separable linear maps: ``interpolate`` (nearest, linear, bilinear, area) and
adaptive average pooling.

Each of these computes every output row from a few input rows with fixed weights, separately
along each spatial dim, so it is a matrix per dim: ``out = M_h @ x @ M_w.T`` over the last two
dims (one matrix for 1-D), and the backward pass is the transposed maps. The matrices are
built with PyTorch's index arithmetic, in its precision (float32 positions for nearest, the
input's dtype for linear weights), so the same input rows are picked.
"""
import math

import numpy as np

from cnn._validation import integer, real_number
from cnn.autograd import Function

from ._inputs import float_array_of

MODES = ("nearest", "nearest-exact", "linear", "bilinear", "area")
_UNSUPPORTED = ("bicubic", "trilinear")


class SeparableMap(Function):
    """``x`` with each of its last ``len(matrices)`` dims mapped by a matrix (out x in)."""

    @staticmethod
    def forward(ctx, x, matrices):
        ctx.matrices = matrices
        *outer, last = matrices
        out = x @ last.T
        if outer:
            out = outer[0] @ out
        return out

    @staticmethod
    def backward(ctx, grad_output):
        *outer, last = ctx.matrices
        grad = grad_output @ last
        if outer:
            grad = outer[0].T @ grad
        return grad, None


# ***** the matrices *****

def nearest_matrix(size_in, size_out, scale, exact, dtype):
    """One-hot rows picking ``min(floor(dst * scale), in - 1)`` (``exact``: ``(dst + 0.5) *
    scale``), in float32 as PyTorch's nearest kernels compute it."""
    dst = np.arange(size_out, dtype=np.float32)
    position = (dst + np.float32(0.5)) * np.float32(scale) if exact else dst * np.float32(scale)
    src = np.minimum(np.floor(position).astype(np.int64), size_in - 1)
    matrix = np.zeros((size_out, size_in), dtype)
    matrix[np.arange(size_out), src] = 1
    return matrix


def linear_matrix(size_in, size_out, scale, align_corners, dtype):
    """Rows of two weights (1 - l, l) on neighbouring inputs, PyTorch's source positions:
    ``scale * dst`` with align_corners, else ``max(scale * (dst + 0.5) - 0.5, 0)``."""
    kind = np.dtype(dtype).type
    dst = np.arange(size_out).astype(dtype)
    if align_corners:
        src = kind(scale) * dst
    else:
        src = np.maximum(kind(scale) * (dst + kind(0.5)) - kind(0.5), kind(0))
    low = src.astype(np.int64)
    high = np.minimum(low + 1, size_in - 1)
    weight = src - low.astype(dtype)
    matrix = np.zeros((size_out, size_in), dtype)
    rows = np.arange(size_out)
    np.add.at(matrix, (rows, low), 1 - weight)
    np.add.at(matrix, (rows, high), weight)
    return matrix


def average_matrix(size_in, size_out, dtype):
    """Rows averaging PyTorch's adaptive bins ``[floor(i * in / out), ceil((i + 1) * in / out))``."""
    matrix = np.zeros((size_out, size_in), np.float64)
    for i in range(size_out):
        start = (i * size_in) // size_out
        end = -(-((i + 1) * size_in) // size_out)
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix.astype(dtype)


# ***** public functions *****

def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None, antialias=False):
    """Resize the spatial dims of ``input`` (N, C, L) or (N, C, H, W), as ``F.interpolate``.

    Args:
        input: Tensor with 1 or 2 spatial dims.
        size: The output size (an int or one per spatial dim); or give ``scale_factor``.
        scale_factor: A float or one per spatial dim; the output size is
            ``floor(in * scale_factor)``.
        mode: "nearest", "nearest-exact", "linear" (3-D input), "bilinear" (4-D input) or
            "area" (adaptive average pooling). "bicubic" and "trilinear" are not supported.
        align_corners: For linear modes: map the corner pixels' centres onto each other.
        recompute_scale_factor: With ``scale_factor``, compute positions from the output size
            instead of the factor.
        antialias: Must be False.

    Returns:
        Tensor (N, C, *size).
    """
    x = float_array_of(input, "input", (3, 4))
    spatial = x.ndim - 2
    if mode in _UNSUPPORTED or mode not in MODES:
        known = "" if mode in _UNSUPPORTED else f" (expected one of {MODES})"
        raise ValueError(f"mode: {mode!r} is not supported by cnn{known}")
    if mode == "linear" and spatial != 1 or mode == "bilinear" and spatial != 2:
        needs = {"linear": 3, "bilinear": 4}[mode]
        raise ValueError(f"input: got {x.ndim}D input, but {mode} mode needs {needs}D input")
    if align_corners is not None and mode not in ("linear", "bilinear"):
        raise ValueError("align_corners: can only be set with the interpolating modes: "
                         "linear | bilinear")
    if antialias:
        raise ValueError("antialias: anti-aliased resampling is not supported by cnn")
    sizes_in = x.shape[2:]
    sizes_out, scales = _output_sizes(sizes_in, size, scale_factor, recompute_scale_factor)
    matrices = []
    for size_in, size_out, scale in zip(sizes_in, sizes_out, scales):
        if mode == "area":
            matrices.append(average_matrix(size_in, size_out, x.dtype))
            continue
        # PyTorch computes positions in float32 for nearest, in the input's dtype for linear.
        kind = np.float32 if mode.startswith("nearest") else x.dtype.type
        if mode.startswith("nearest") or not align_corners:
            step = kind(1.0 / scale) if scale else kind(size_in) / kind(size_out)
        else:
            step = kind(size_in - 1) / kind(size_out - 1) if size_out > 1 else kind(0)
        if mode.startswith("nearest"):
            matrices.append(nearest_matrix(size_in, size_out, step, mode == "nearest-exact",
                                           x.dtype))
        else:
            matrices.append(linear_matrix(size_in, size_out, step, bool(align_corners),
                                          x.dtype))
    return SeparableMap.apply(input, tuple(matrices))


def adaptive_avg_pool2d(input, output_size):
    """Average-pool (N, C, H, W) or (C, H, W) into ``output_size`` (an int or a pair; None
    keeps that dim) with PyTorch's adaptive bins."""
    return _adaptive_average(input, output_size, 2)


def adaptive_avg_pool1d(input, output_size):
    """Average-pool (N, C, L) or (C, L) into ``output_size`` with PyTorch's adaptive bins."""
    return _adaptive_average(input, output_size, 1)


def adaptive_output_size(shape, output_size, spatial):
    """``output_size`` (an int, or a sequence with None for "keep") as a tuple for the last
    ``spatial`` dims of ``shape``."""
    if isinstance(output_size, (tuple, list)):
        if len(output_size) != spatial:
            raise ValueError(f"output_size: expected {spatial} sizes, got {output_size!r}")
        sizes = output_size
    else:
        sizes = (output_size,) * spatial
    return tuple(shape[-spatial + i] if size is None else integer(size, "output_size", 1)
                 for i, size in enumerate(sizes))


def _adaptive_average(input, output_size, spatial):
    x = float_array_of(input, "input", (spatial + 1, spatial + 2))
    if any(size == 0 for size in x.shape[-spatial:]):
        raise ValueError(f"input: expected non-empty spatial dims, got shape {x.shape}")
    sizes = adaptive_output_size(x.shape, output_size, spatial)
    matrices = tuple(average_matrix(size_in, size_out, x.dtype)
                     for size_in, size_out in zip(x.shape[-spatial:], sizes))
    return SeparableMap.apply(input, matrices)


def _output_sizes(sizes_in, size, scale_factor, recompute):
    """(output sizes, scale factors or None per dim)."""
    spatial = len(sizes_in)
    if (size is None) == (scale_factor is None):
        raise ValueError("size, scale_factor: exactly one of them must be given")
    if size is not None:
        sizes = size if isinstance(size, (tuple, list)) else (size,) * spatial
        if len(sizes) != spatial:
            raise ValueError(f"size: expected {spatial} sizes for {spatial} spatial dims, got "
                             f"{size!r}")
        return tuple(integer(s, "size", 1) for s in sizes), (None,) * spatial
    factors = scale_factor if isinstance(scale_factor, (tuple, list)) else \
        (scale_factor,) * spatial
    if len(factors) != spatial:
        raise ValueError(f"scale_factor: expected {spatial} factors, got {scale_factor!r}")
    factors = tuple(real_number(f, "scale_factor") for f in factors)
    if any(f <= 0 for f in factors):
        raise ValueError(f"scale_factor: must be positive, got {scale_factor!r}")
    sizes = tuple(math.floor(s * f) for s, f in zip(sizes_in, factors))
    if any(s < 1 for s in sizes):
        raise ValueError(f"scale_factor: {scale_factor!r} gives an empty output for input "
                         f"sizes {sizes_in}")
    return sizes, (None,) * spatial if recompute else factors
