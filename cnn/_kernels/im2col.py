"""Checked im2col / col2im (the column layout is described in cnn/_ext/im2col.pyx)."""
import functools

import numpy as np

from cnn import _ext
from cnn._validation import float_array, pair, shape
from cnn.threads import get_num_threads

from .geometry import conv_output_size


def conv_geometry(input_shape, kernel_size, stride, padding, dilation):
    """Checked convolution arguments: ((kh, kw), (sh, sw), (ph, pw), (dh, dw), (oh, ow))."""
    arguments = (kernel_size, stride, padding, dilation)
    if all(map(_plain_int_or_pair, arguments)):
        return _cached_conv_geometry(tuple(input_shape), *arguments)
    return _conv_geometry(input_shape, *arguments)


def _plain_int_or_pair(value):
    """An int or a tuple of ints, exactly: only these are cached, because a cache compares keys
    with ==, and 2 == 2.0 == True would let a float or bool skip its TypeError."""
    return type(value) is int or (type(value) is tuple and len(value) == 2
                                  and type(value[0]) is int and type(value[1]) is int)


def _conv_geometry(input_shape, kernel_size, stride, padding, dilation):
    kernel = pair(kernel_size, "kernel_size", 1)
    strides = pair(stride, "stride", 1)
    pads = pair(padding, "padding", 0)
    dilations = pair(dilation, "dilation", 1)
    n, c, h, w = input_shape
    if c < 1 or h < 1 or w < 1:
        raise ValueError(f"input: expected at least one channel, row and column, got shape "
                         f"{tuple(input_shape)}")
    out = (conv_output_size(h, kernel[0], strides[0], pads[0], dilations[0], "height"),
           conv_output_size(w, kernel[1], strides[1], pads[1], dilations[1], "width"))
    return kernel, strides, pads, dilations, out


# A layer asks for the same geometry on every step; checking it once is enough. (lru_cache never
# stores a call that raised, so bad arguments raise every time.)
_cached_conv_geometry = functools.lru_cache(maxsize=1024)(_conv_geometry)


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Convolution patches of `x` (N, C, H, W) as columns (N, C*KH*KW, OH*OW).

    Column (c*KH + i)*KW + j of image n holds x[n, c, oy*SH - PH + i*DH, ox*SW - PW + j*DW] at
    position oy*OW + ox (zero in the padding), so `w.reshape(F, -1) @ cols` is the convolution.
    """
    x = float_array(x, "input", ndim=4)
    kernel, strides, pads, dilations, out = conv_geometry(x.shape, kernel_size, stride, padding,
                                                          dilation)
    n, c = x.shape[:2]
    cols = np.empty((n, c * kernel[0] * kernel[1], out[0] * out[1]), dtype=x.dtype)
    _ext.backend.im2col.im2col(x, cols, *kernel, *strides, *pads, *dilations, *out,
                               get_num_threads())
    return cols


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    """The adjoint of im2col: sums columns (N, C*KH*KW, OH*OW) back into an (N, C, H, W) array."""
    cols = float_array(cols, "cols", ndim=3)
    input_shape = shape(input_shape, "input_shape", 4)
    kernel, strides, pads, dilations, out = conv_geometry(input_shape, kernel_size, stride,
                                                          padding, dilation)
    n, c = input_shape[:2]
    expected = (n, c * kernel[0] * kernel[1], out[0] * out[1])
    if cols.shape != expected:
        raise ValueError(f"cols: expected shape {expected} for input shape {input_shape}, got "
                         f"{cols.shape}")
    x = np.empty(input_shape, dtype=cols.dtype)
    _ext.backend.im2col.col2im(cols, x, *kernel, *strides, *pads, *dilations, *out,
                               get_num_threads())
    return x
