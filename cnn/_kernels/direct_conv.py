"""Checked direct convolution (groups = 1): forward, fused ReLU + 2x2 max-pool, and gradients.

The kernels are in cnn/_ext/direct_conv.pyx; this module validates arguments, repacks weights
(so BLOCK output channels form one vector) and lays out the scratch each thread needs.
"""
import functools

import numpy as np

from cnn import _ext
from cnn._validation import flag, float_array, shape
from cnn.parallel import get_num_threads

from .im2col import conv_geometry

BLOCK = 16  # output channels per tile; 8 for layers with at most 8 (cnn/_ext/conv_tile.h)
# The weight gradient sums images in about this many blocks, each into its own buffer, then adds
# the buffers in order. The split depends on the batch size only, never on the thread count
# (so results are bit-identical for any thread count), and is fine enough that two threads
# share even a batch of 10 evenly.
WEIGHT_GRAD_BLOCKS = 16


def _padded_channels(f):
    """Channels rounded up to whole tiles: 8 for up to 8 channels (the 8-channel tile), else a
    multiple of BLOCK. The kernels infer the tile width from this."""
    return 8 if f <= 8 else -(-f // BLOCK) * BLOCK


def repack_weight(weight):
    """Weights (F, C, KH, KW) as wt (C*KH*KW, F rounded up to BLOCK), zero-padded channels."""
    f, taps = weight.shape[0], weight.shape[1] * weight.shape[2] * weight.shape[3]
    wt = np.zeros((taps, _padded_channels(f)), dtype=weight.dtype)
    wt[:, :f] = weight.reshape(f, taps).T
    return wt


@functools.lru_cache(maxsize=256)
def tap_offsets(channels, kernel, dilation, hp, wp):
    """Offset of every window position (c, i, j), in tap order, from a window's origin inside a
    padded (channels, hp, wp) image. Cached (a layer asks for the same offsets every step), so
    the array is read-only."""
    c, i, j = np.meshgrid(np.arange(channels), np.arange(kernel[0]), np.arange(kernel[1]),
                          indexing="ij")
    offsets = ((c * hp + i * dilation[0]) * wp + j * dilation[1]).astype(np.intp).ravel()
    offsets.flags.writeable = False
    return offsets


@functools.lru_cache(maxsize=256)
def window_origins(out_size, strides, wp):
    """Offset of every output pixel's window origin inside a padded image of width wp (cached,
    read-only)."""
    oy, ox = np.meshgrid(np.arange(out_size[0]), np.arange(out_size[1]), indexing="ij")
    origins = (oy * strides[0] * wp + ox * strides[1]).astype(np.intp).ravel()
    origins.flags.writeable = False
    return origins


def _checked(x, weight, bias, stride, padding, dilation):
    """Validated arrays and geometry shared by every entry point."""
    x = float_array(x, "input", ndim=4)
    weight = float_array(weight, "weight", ndim=4)
    if weight.dtype != x.dtype or weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight: expected dtype {x.dtype} and {x.shape[1]} input channels, "
                         f"got {weight.dtype} and shape {weight.shape}")
    geometry = conv_geometry(x.shape, weight.shape[2:], stride, padding, dilation)
    f = weight.shape[0]
    bias_padded = np.zeros(_padded_channels(f), dtype=x.dtype)
    if bias is not None:
        bias = float_array(bias, "bias", ndim=1)
        if bias.shape != (f,) or bias.dtype != x.dtype:
            raise ValueError(f"bias: expected shape ({f},) and dtype {x.dtype}, got "
                             f"{bias.shape} and {bias.dtype}")
        bias_padded[:f] = bias
    return x, weight, bias_padded, geometry


def _padded_image_setup(x, kernel, pads, dilations, extra_per_thread=0):
    """Tap offsets and per-thread scratch (a padded image, plus `extra_per_thread` elements)."""
    n, c, h, w = x.shape
    hp, wp = h + 2 * pads[0], w + 2 * pads[1]
    threads = get_num_threads()
    scratch = np.empty((threads, c * hp * wp + extra_per_thread), dtype=x.dtype)
    return tap_offsets(c, kernel, dilations, hp, wp), scratch, threads, wp


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, relu=False):
    """conv2d(x, weight) + bias (then ReLU when `relu`), computed directly, NCHW in and out."""
    relu = flag(relu, "relu")
    x, weight, bias_padded, (kernel, strides, pads, dilations, out_size) = _checked(
        x, weight, bias, stride, padding, dilation)
    taps, scratch, threads, _ = _padded_image_setup(x, kernel, pads, dilations)
    out = np.empty((x.shape[0], weight.shape[0]) + out_size, dtype=x.dtype)
    _ext.backend.direct_conv.conv_forward(x, repack_weight(weight), bias_padded, taps, out,
                                          scratch, *strides, *pads, bool(relu), threads)
    return out


def conv2d_relu_max_pool2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    """max_pool2d(relu(conv2d(x, weight) + bias), 2): (pooled, indices), where indices are the
    argmax positions y*OW + x in each conv-output plane (as max_pool2d returns them)."""
    x, weight, bias_padded, (kernel, strides, pads, dilations, (oh, ow)) = _checked(
        x, weight, bias, stride, padding, dilation)
    if oh < 2 or ow < 2:
        raise ValueError(f"input: the convolution's output {(oh, ow)} is smaller than the 2x2 "
                         "pooling window")
    taps, scratch, threads, _ = _padded_image_setup(x, kernel, pads, dilations)
    shape = (x.shape[0], weight.shape[0], oh // 2, ow // 2)
    pooled = np.empty(shape, dtype=x.dtype)
    indices = np.empty(shape, dtype=np.int64)
    _ext.backend.direct_conv.conv_relu_pool_forward(
        x, repack_weight(weight), bias_padded, taps, pooled, indices, scratch, ow, *strides,
        *pads, threads)
    return pooled, indices


def conv2d_weight_grad(x, grad_output, kernel_size, stride=1, padding=0, dilation=1):
    """d(loss)/d(weight) (F, C, KH, KW) of conv2d(x, weight) given d(loss)/d(output)."""
    x = float_array(x, "input", ndim=4)
    grad_output = float_array(grad_output, "grad_output", ndim=4)
    kernel, strides, pads, dilations, out_size = conv_geometry(x.shape, kernel_size, stride,
                                                               padding, dilation)
    n, f = grad_output.shape[:2]
    if grad_output.dtype != x.dtype or grad_output.shape != (x.shape[0], f) + out_size:
        raise ValueError(f"grad_output: expected shape {(x.shape[0], f) + out_size} and dtype "
                         f"{x.dtype}, got {grad_output.shape} and {grad_output.dtype}")
    f_padded = _padded_channels(f)
    pixels = out_size[0] * out_size[1]
    taps, scratch, threads, wp = _padded_image_setup(x, kernel, pads, dilations,
                                                     extra_per_thread=pixels * f_padded)
    origins = window_origins(out_size, strides, wp)
    images_per_block = max(1, -(-n // WEIGHT_GRAD_BLOCKS))
    blocks = max(1, -(-n // images_per_block))
    rows = -(-taps.size // 4) * 4  # whole groups of 4 taps (the tile's lanes)
    partial = np.empty((blocks, rows, f_padded), dtype=x.dtype)
    if n == 0:
        partial[...] = 0
    else:
        active = np.empty((threads, origins.size), dtype=np.intp)
        _ext.backend.direct_conv.conv_weight_grad(x, grad_output, taps, origins, partial,
                                                  scratch, active, *pads, images_per_block,
                                                  threads)
    # Blocks are summed in their fixed order, whatever the thread count.
    summed = partial.sum(axis=0)[:taps.size]
    return np.ascontiguousarray(summed[:, :f].T).reshape((f, x.shape[1]) + kernel)


def conv2d_input_grad(grad_output, weight, input_shape, stride=1, padding=0, dilation=1):
    """d(loss)/d(input) of conv2d.

    With at least BLOCK input channels: a stride-1 direct convolution of the zero-dilated, padded
    output gradient with the weights rotated by 180 degrees, input and output channels swapped.
    With fewer, that convolution would fill less than a vector per pixel, so each output pixel's
    column gradient (an axpy over the taps per non-zero gradient value) is scattered back into
    the image instead (cnn/_ext/direct_conv.pyx, conv_input_grad).
    """
    grad_output = float_array(grad_output, "grad_output", ndim=4)
    weight = float_array(weight, "weight", ndim=4)
    input_shape = shape(input_shape, "input_shape", 4)
    n, c, h, w = input_shape
    if c != weight.shape[1]:
        raise ValueError(f"input_shape: expected {weight.shape[1]} channels (weight.shape[1]), "
                         f"got {c} in {input_shape}")
    kernel, strides, pads, dilations, out_size = conv_geometry(input_shape, weight.shape[2:],
                                                               stride, padding, dilation)
    f = weight.shape[0]
    if grad_output.shape != (n, f) + out_size or grad_output.dtype != weight.dtype:
        raise ValueError(f"grad_output: expected shape {(n, f) + out_size} and dtype "
                         f"{weight.dtype}, got {grad_output.shape} and {grad_output.dtype}")
    if c < BLOCK:
        return _scattered_input_grad(grad_output, weight, input_shape, kernel, strides, pads,
                                     dilations, out_size)
    # dx[y] = sum_i w[i] g[(y + p - i*d) / s]: place g every s rows, `lead` rows in, so that a
    # stride-1 correlation with the rotated kernel (dilation d) lands each term on its input row.
    sizes, places = [], []
    for axis in range(2):
        lead = dilations[axis] * (kernel[axis] - 1) - pads[axis]
        size = input_shape[2 + axis] + dilations[axis] * (kernel[axis] - 1)
        positions = np.arange(out_size[axis]) * strides[axis] + lead
        kept = np.flatnonzero((positions >= 0) & (positions < size))
        sizes.append(size)
        # Kept positions are consecutive multiples of the stride: one strided slice each side.
        places.append((slice(positions[kept[0]], positions[kept[-1]] + 1, strides[axis]),
                       slice(kept[0], kept[-1] + 1)) if kept.size else (slice(0, 0), slice(0, 0)))
    dilated = np.zeros((n, f) + tuple(sizes), dtype=grad_output.dtype)
    (rows, grad_rows), (cols, grad_cols) = places
    dilated[:, :, rows, cols] = grad_output[:, :, grad_rows, grad_cols]
    rotated = np.ascontiguousarray(weight[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    return conv2d_forward(dilated, rotated, None, 1, 0, dilations)


def _scattered_input_grad(grad_output, weight, input_shape, kernel, strides, pads, dilations,
                          out_size):
    """conv2d_input_grad for layers with few input channels (arguments already checked)."""
    n, c, h, w = input_shape
    f, taps_count = weight.shape[0], c * kernel[0] * kernel[1]
    hp, wp = h + 2 * pads[0], w + 2 * pads[1]
    threads = get_num_threads()
    scratch = np.empty((threads, c * hp * wp + taps_count), dtype=weight.dtype)
    dx = np.zeros(input_shape, dtype=weight.dtype)
    _ext.backend.direct_conv.conv_input_grad(
        grad_output, weight.reshape(f, taps_count), tap_offsets(c, kernel, dilations, hp, wp),
        window_origins(out_size, strides, wp), dx, scratch, *pads, threads)
    return dx
