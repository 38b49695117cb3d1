"""Checked direct convolution (groups = 1): forward, fused ReLU + 2x2 max-pool, and gradients.

The kernels are in cnn/_ext/direct_conv.pyx; this module validates arguments, repacks weights
(so BLOCK output channels form one vector) and lays out the scratch each thread needs.
"""
import functools

import numpy as np

from cnn import _ext
from cnn._validation import flag, float_array
from cnn.threads import get_num_threads

from .im2col import conv_geometry
from .pool import max_pool2d_backward

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


@functools.lru_cache(maxsize=256)
def _segment_layout(weight_shape, input_size, dilation):
    """The layout of a layer's weights in segments, as cnn_scatter_segments and
    cnn_gather_segments (cnn/_ext/conv_scatter.h) read them: (places, shape, offsets).

    Each (input channel c, kernel row i) of a window is cut into runs of 8 consecutive
    positions, weight[f, c, i, j] at position j*dilation_w, zeros between and after; a
    segments array of `shape` (F, S, 8) holds weight.ravel() at the flat positions `places`.
    offsets (S,) place each run from a window origin in a padded (C, hp, wp) image,
    input_size = (hp, wp); S is rounded up to a multiple of 8 with all-zero segments at offset 0.
    Cached per layer geometry, read-only."""
    f, c, kh, kw = weight_shape
    hp, wp = input_size
    per_row = -(-((kw - 1) * dilation[1] + 1) // 8)  # segments per kernel row
    count = c * kh * per_row
    shape = (f, -(-count // 8) * 8, 8)
    fi, ci, ii, ji = np.meshgrid(np.arange(f), np.arange(c), np.arange(kh), np.arange(kw),
                                 indexing="ij")
    position = (ci * kh + ii) * per_row * 8 + ji * dilation[1]  # within one channel's rows
    places = (fi * shape[1] * 8 + position).astype(np.intp).ravel()
    row_offsets = (np.arange(c)[:, None] * hp + np.arange(kh) * dilation[0]) * wp
    offsets = np.zeros(shape[1], dtype=np.intp)
    offsets[:count] = (row_offsets.reshape(-1, 1) + 8 * np.arange(per_row)).ravel()
    places.flags.writeable = offsets.flags.writeable = False
    return places, shape, offsets


def _needs(needs):
    if not isinstance(needs, (tuple, list)) or len(needs) != 3:
        raise ValueError(f"needs: expected three flags (input, weight, bias), got {needs!r}")
    return tuple(flag(value, "needs") for value in needs)


def conv2d_backward(x, weight, grad_output, stride=1, padding=0, dilation=1,
                    needs=(True, True, True)):
    """Gradients of conv2d(x, weight, bias) given d(loss)/d(output) (N, F, OH, OW).

    Returns (grad_input, grad_weight, grad_bias), each None where `needs` (three flags: input,
    weight, bias) says it is not wanted.
    """
    x, weight, geometry = _checked_backward(x, weight, stride, padding, dilation)
    grad_output = float_array(grad_output, "grad_output", ndim=4)
    expected = (x.shape[0], weight.shape[0]) + geometry[4]
    if grad_output.shape != expected or grad_output.dtype != x.dtype:
        raise ValueError(f"grad_output: expected shape {expected} and dtype {x.dtype}, got "
                         f"{grad_output.shape} and {grad_output.dtype}")
    return _backward(x, weight, grad_output, None, None, geometry, _needs(needs))


def conv2d_relu_max_pool2d_backward(x, weight, grad_output, pooled, indices, stride=1,
                                    padding=0, dilation=1, needs=(True, True, True)):
    """Gradients of max_pool2d(relu(conv2d(x, weight, bias)), 2) given d(loss)/d(pooled).

    `pooled` and `indices` are what conv2d_relu_max_pool2d returned. Each pooled gradient goes,
    where the pooled value is positive (ReLU's mask), to its window's argmax pixel, and from
    there through the convolution, without building the convolution-sized gradient. The results
    equal conv2d_backward's on that gradient, bit for bit (the same kernel sums them).
    """
    x, weight, geometry = _checked_backward(x, weight, stride, padding, dilation)
    grad_output = float_array(grad_output, "grad_output", ndim=4)
    pooled = float_array(pooled, "pooled", ndim=4)
    oh, ow = geometry[4]
    expected = (x.shape[0], weight.shape[0], oh // 2, ow // 2)
    for name, array in (("grad_output", grad_output), ("pooled", pooled)):
        if array.shape != expected or array.dtype != x.dtype:
            raise ValueError(f"{name}: expected shape {expected} and dtype {x.dtype}, got "
                             f"{array.shape} and {array.dtype}")
    if not isinstance(indices, np.ndarray) or indices.dtype != np.int64:
        raise TypeError("indices: expected the int64 array returned by conv2d_relu_max_pool2d, "
                        f"got {getattr(indices, 'dtype', type(indices).__name__)}")
    if indices.shape != expected:
        raise ValueError(f"indices: expected shape {expected}, got {indices.shape}")
    return _backward(x, weight, grad_output, pooled, np.ascontiguousarray(indices), geometry,
                     _needs(needs))


def _checked_backward(x, weight, stride, padding, dilation):
    x = float_array(x, "input", ndim=4)
    weight = float_array(weight, "weight", ndim=4)
    if weight.dtype != x.dtype or weight.shape[1] != x.shape[1]:
        raise ValueError(f"weight: expected dtype {x.dtype} and {x.shape[1]} input channels, "
                         f"got {weight.dtype} and shape {weight.shape}")
    return x, weight, conv_geometry(x.shape, weight.shape[2:], stride, padding, dilation)


def _backward(x, weight, grad, pooled, indices, geometry, needs):
    """Run conv_backward over checked arrays; pooled is None for a conv-shaped gradient."""
    kernel, strides, pads, dilations, out_size = geometry
    need_x, need_w, need_b = needs
    n, c, h, w = x.shape
    f = weight.shape[0]
    # With many input channels the input gradient is a dense convolution (see
    # _dilated_input_grad); the kernel's scatter is for the few-channel layers.
    scatter_x = need_x and c < BLOCK
    # Layers with few output channels sum their weight gradient channel by channel over the
    # non-zero gradient values (cnn_gather_segments); the others run the register tile over
    # the active pixels, which fills its vectors with their channels.
    by_channel = f <= 8
    f_padded = _padded_channels(f)
    pixels = out_size[0] * out_size[1]
    hp, wp = h + 2 * pads[0], w + 2 * pads[1]
    image_size = c * hp * wp
    places, shape, segment_offsets = _segment_layout(weight.shape, (hp, wp), dilations)
    if scatter_x:
        segments = np.zeros(shape, dtype=weight.dtype)
        segments.reshape(-1)[places] = weight.reshape(-1)
    else:
        segments = np.zeros((1, 8, 8), x.dtype)
    threads = get_num_threads()
    taps = tap_offsets(c, kernel, dilations, hp, wp)
    lanes = 8 if f_padded == 8 else 4  # the tile's lanes (conv_tile.h): whole groups of taps
    tap_rows = -(-taps.size // lanes) * lanes
    segment_values = shape[1] * 8
    # Per thread: the padded image and the padded input gradient, each with 8 spare elements;
    # the pixel rows; the channels' values of one pixel; each channel's non-zero values, and
    # room for one row of windows (see _channel_lists_pooled). Integers: the same, by place.
    scratch = np.empty((threads, 2 * (image_size + 8) + pixels * f_padded + f
                        + (f + 1) * pixels), x.dtype)
    integers = np.empty((threads, pixels + f + f * pixels + f + pixels), np.intp)
    images_per_block = max(1, -(-n // WEIGHT_GRAD_BLOCKS))
    blocks = max(1, -(-n // images_per_block))
    partial = np.zeros((blocks, f + 1, segment_values) if by_channel else
                       (blocks, tap_rows + 1, f_padded), dtype=x.dtype)
    # Without images or output channels there is nothing to sum, and the gradients are zeros.
    run = (need_w or need_b or scatter_x) and n > 0 and f > 0
    dx = (np.empty if run else np.zeros)(x.shape if scatter_x else (0, 1, 1, 1), dtype=x.dtype)
    pooled_form = pooled is not None
    if not pooled_form:
        pooled, indices = np.empty((0, 1, 1, 1), x.dtype), np.empty((0, 1, 1, 1), np.int64)
    if run:
        _ext.backend.direct_conv.conv_backward(
            x, grad, pooled, indices, weight.reshape(f, taps.size), segments, taps,
            window_origins(out_size, strides, wp), segment_offsets, partial, dx, scratch,
            integers, *pads, images_per_block, pooled_form, by_channel, f_padded,
            out_size[1], need_w, need_b, scatter_x, threads)
    # Blocks are summed in their fixed order, whatever the thread count.
    summed = partial.sum(axis=0)
    if by_channel:
        grad_w = summed[:f].reshape(-1)[places].reshape(weight.shape) if need_w else None
        grad_b = summed[f, :f].copy() if need_b else None
    else:
        grad_w = (np.ascontiguousarray(summed[:taps.size, :f].T).reshape(weight.shape)
                  if need_w else None)
        grad_b = summed[tap_rows, :f].copy() if need_b else None
    grad_x = dx if scatter_x else None
    if need_x and not scatter_x:
        if pooled_form:
            grad = max_pool2d_backward(grad * (pooled > 0), indices, (n, f) + out_size)
        grad_x = _dilated_input_grad(grad, weight, x.shape, geometry)
    return grad_x, grad_w, grad_b


def _dilated_input_grad(grad_output, weight, input_shape, geometry):
    """The input gradient as a stride-1 direct convolution of the zero-dilated, padded output
    gradient with the weights rotated by 180 degrees, input and output channels swapped: dense,
    and a full vector of channels per pixel for layers with at least BLOCK input channels."""
    kernel, strides, pads, dilations, out_size = geometry
    n, f = grad_output.shape[:2]
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
