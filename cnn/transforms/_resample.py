"""Resampling planes ``(..., C, H, W)``: resizing and rotating, with PyTorch's formulas.

Resizing is separable: each axis is a matrix ``(out, in)`` of weights (``interpolate``'s
bilinear taps with ``align_corners=False``, or with ``antialias`` its triangle filter widened by
the scale, PIL's rule, which torch follows), so ``out = Wy @ x @ Wx.T``. Nearest picks indices
as ``interpolate(mode="nearest" | "nearest-exact")``. Rotation samples the source at the
inverse-mapped centre of each output pixel, as ``grid_sample(align_corners=False)`` with
torchvision's mask for the fill. The arithmetic is in float32 like torch's for images that are
not float64, so that results agree to the rounding.
"""
import math

import numpy as np


def compute_dtype(dtype):
    """The float type the resampling of an image of `dtype` computes in."""
    return np.dtype(np.float64) if np.dtype(dtype) == np.float64 else np.dtype(np.float32)


def linear_weights(in_size, out_size, antialias, dtype):
    """The ``(out_size, in_size)`` matrix of bilinear weights along one axis."""
    one = dtype.type(1)
    scale = dtype.type(in_size) / dtype.type(out_size)
    weights = np.zeros((out_size, in_size), dtype)
    rows = np.arange(out_size)
    if antialias:
        support = scale if scale >= one else one
        invscale = one / scale if scale >= one else one
        for i in range(out_size):
            center = scale * dtype.type(i + 0.5)
            low = max(int(center - support + dtype.type(0.5)), 0)
            high = min(int(center + support + dtype.type(0.5)), in_size)
            taps = (np.arange(low, high, dtype=dtype) - center + dtype.type(0.5)) * invscale
            taps = np.maximum(one - np.abs(taps), 0).astype(dtype)
            total = taps.sum(dtype=dtype)
            weights[i, low:high] = taps / total if total else taps
        return weights
    source = np.maximum(scale * (rows.astype(dtype) + dtype.type(0.5)) - dtype.type(0.5), 0)
    low = source.astype(np.int64)
    high = np.minimum(low + 1, in_size - 1)
    fraction = np.clip(source - low.astype(dtype), 0, 1).astype(dtype)
    np.add.at(weights, (rows, low), one - fraction)
    np.add.at(weights, (rows, high), fraction)
    return weights


def nearest_indices(in_size, out_size, exact):
    """The source index of every output position along one axis."""
    if in_size == out_size:
        return np.arange(out_size)
    scale = np.float32(in_size) / np.float32(out_size)
    positions = np.arange(out_size, dtype=np.float32) + (np.float32(0.5) if exact else 0)
    return np.minimum(np.floor(positions * scale).astype(np.int64), in_size - 1)


def resize_planes(planes, size, mode, antialias):
    """`planes` ``(..., C, H, W)`` resized to `size` ``(h, w)``.

    Args:
        mode (str): ``"bilinear"``, ``"nearest"`` or ``"nearest-exact"``.
        antialias (bool): Widen the bilinear filter when shrinking.
    """
    height, width = planes.shape[-2:]
    out_h, out_w = size
    if mode != "bilinear":
        exact = mode == "nearest-exact"
        rows = nearest_indices(height, out_h, exact)
        columns = nearest_indices(width, out_w, exact)
        return planes[..., rows[:, None], columns[None, :]]
    dtype = compute_dtype(planes.dtype)
    values = planes.astype(dtype, copy=False)
    values = np.matmul(linear_weights(height, out_h, antialias, dtype), values)
    values = np.matmul(values, linear_weights(width, out_w, antialias, dtype).T)
    return round_to(values, planes.dtype)


def round_to(values, dtype):
    """Float `values` as `dtype`: rounded (half to even) into an integer type, as torchvision's
    resampling ends."""
    dtype = np.dtype(dtype)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype, copy=False)


def inverse_rotation(angle, center):
    """torchvision's inverse affine matrix ``[a, b, c, d, e, f]`` of a rotation by `angle`
    degrees (counter-clockwise) about `center` (offset from the image centre, in pixels)."""
    rot = math.radians(-angle)  # torchvision's rotate passes -angle to the affine matrix
    a, b, c, d = math.cos(rot), -math.sin(rot), math.sin(rot), math.cos(rot)
    matrix = [d, -b, 0.0, -c, a, 0.0]
    cx, cy = center
    matrix[2] += matrix[0] * -cx + matrix[1] * -cy + cx
    matrix[5] += matrix[3] * -cx + matrix[4] * -cy + cy
    return matrix


def expanded_size(matrix, width, height):
    """The ``(width, height)`` that holds the whole rotated image (torchvision's rule)."""
    corners = np.array([[-0.5 * width, -0.5 * height, 1.0], [-0.5 * width, 0.5 * height, 1.0],
                        [0.5 * width, 0.5 * height, 1.0], [0.5 * width, -0.5 * height, 1.0]],
                       np.float32)
    moved = corners @ np.asarray(matrix, np.float32).reshape(2, 3).T
    # Shifted to [0, w] x [0, h], as PIL measures.
    moved += np.array([0.5 * width, 0.5 * height], np.float32)
    tol = np.float32(1e-4)  # precision cut, so that a ceil of 1e-15 is not 1
    top = np.ceil(np.trunc(moved.max(axis=0) / tol) * tol)
    bottom = np.floor(np.trunc(moved.min(axis=0) / tol) * tol)
    size = top - bottom
    return int(size[0]), int(size[1])


def rotate_planes(planes, matrix, out_size, mode, fill):
    """`planes` ``(..., C, H, W)`` sampled through the inverse affine `matrix` onto `out_size`
    ``(w, h)``; pixels from outside take `fill` (a value per channel, or None for zeros)."""
    height, width = planes.shape[-2:]
    out_w, out_h = out_size
    dtype = compute_dtype(planes.dtype)
    half = dtype.type(0.5)
    # torchvision's _gen_affine_grid: the output pixel centres, mapped and normalised by the
    # input size; grid_sample then unnormalises with align_corners=False.
    xs = np.linspace(-out_w * 0.5 + 0.5, out_w * 0.5 - 0.5, out_w, dtype=dtype)
    ys = np.linspace(-out_h * 0.5 + 0.5, out_h * 0.5 - 0.5, out_h, dtype=dtype)
    base = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], dtype.type(1)), axis=-1)
    theta = np.asarray(matrix, dtype).reshape(2, 3).T / np.array(
        [half * width, half * height], dtype)
    grid = base.reshape(-1, 3) @ theta
    source_x = ((grid[:, 0] + 1) * width - 1) / 2
    source_y = ((grid[:, 1] + 1) * height - 1) / 2
    values = planes.astype(dtype, copy=False)
    if mode == "nearest":
        column, row = np.rint(source_x).astype(np.int64), np.rint(source_y).astype(np.int64)
        inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
        sampled = values[..., np.clip(row, 0, height - 1), np.clip(column, 0, width - 1)]
        sampled = sampled * inside
        mask = inside.astype(dtype)
    else:
        sampled, mask = _bilinear_samples(values, source_x, source_y)
    if fill is not None:
        fills = np.asarray(fill, dtype).reshape(-1, 1)
        if mode == "nearest":
            sampled = np.where(mask < 0.5, fills, sampled)
        else:
            sampled = sampled * mask + (1 - mask) * fills
    sampled = sampled.reshape(planes.shape[:-2] + (out_h, out_w))
    return round_to(sampled, planes.dtype)


def _bilinear_samples(values, source_x, source_y):
    """grid_sample's bilinear samples with zero padding, and the mask (the same of ones)."""
    height, width = values.shape[-2:]
    left, top = np.floor(source_x), np.floor(source_y)
    fx, fy = source_x - left, source_y - top
    left, top = left.astype(np.int64), top.astype(np.int64)
    sampled = np.zeros(values.shape[:-2] + source_x.shape, values.dtype)
    mask = np.zeros(source_x.shape, values.dtype)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            row, column = top + dy, left + dx
            inside = (column >= 0) & (column < width) & (row >= 0) & (row < height)
            weight = (wx * wy * inside).astype(values.dtype)
            sampled += values[..., np.clip(row, 0, height - 1), np.clip(column, 0, width - 1)] \
                * weight
            mask += weight
    return sampled, mask
