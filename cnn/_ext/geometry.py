"""The geometry of convolution and pooling windows: one place for the output-size formulas.

Both the convolution plans (cnn/_ext/conv.pyx) and the pooling ops ask here, once per geometry,
and get back plain tuples of ints they can trust: every check that makes the formulas meaningful
(positive kernels and strides, non-negative padding, a window no larger than the padded input)
happens here, with an error that names the argument (SPEC section 8). The formulas are
PyTorch's.

A geometry is ``(kernel, stride, padding, dilation, out)``, each a (height, width) pair.
"""
import functools

from cnn._validation import flag, pair


def conv_output_size(size, kernel, stride, padding, dilation, axis):
    """Output length of a convolution along one axis ('height' or 'width').

    out = floor((size + 2*padding - dilation*(kernel - 1) - 1) / stride) + 1
    """
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * padding:
        raise ValueError(
            f"kernel_size: the (dilated) kernel {axis} {span} is larger than the padded input "
            f"{axis} {size + 2 * padding} (input {size} + 2 * padding {padding})")
    return (size + 2 * padding - span) // stride + 1


def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode, axis):
    """Output length of a pooling window along one axis, as PyTorch computes it.

    With ceil_mode the last window may hang over the end, but it must start inside the input or
    the left padding.
    """
    if padding > kernel // 2:
        raise ValueError(f"padding: must be at most half the kernel size ({kernel} // 2 = "
                         f"{kernel // 2}) along the {axis}, got {padding}")
    span = dilation * (kernel - 1) + 1
    if span > size + 2 * padding:
        raise ValueError(
            f"kernel_size: the (dilated) window {axis} {span} is larger than the padded input "
            f"{axis} {size + 2 * padding} (input {size} + 2 * padding {padding})")
    numerator = size + 2 * padding - span + (stride - 1 if ceil_mode else 0)
    out = numerator // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def _plane(input_shape):
    """(H, W) of an input shape (..., C, H, W), refusing empty channels, rows or columns."""
    c, h, w = input_shape[-3:]
    if c < 1 or h < 1 or w < 1:
        raise ValueError(f"input: expected at least one channel, row and column, got shape "
                         f"{tuple(input_shape)}")
    return h, w


def _conv_geometry(input_shape, kernel_size, stride, padding, dilation):
    kernel = pair(kernel_size, "kernel_size", 1)
    strides = pair(stride, "stride", 1)
    pads = pair(padding, "padding", 0)
    dilations = pair(dilation, "dilation", 1)
    h, w = _plane(input_shape)
    out = (conv_output_size(h, kernel[0], strides[0], pads[0], dilations[0], "height"),
           conv_output_size(w, kernel[1], strides[1], pads[1], dilations[1], "width"))
    return kernel, strides, pads, dilations, out


def _pool_geometry(input_shape, kernel_size, stride, padding, dilation, ceil_mode):
    kernel = pair(kernel_size, "kernel_size", 1)
    # () and [] also mean the default, as in PyTorch (not `stride == ()`: a NumPy integer
    # would compare elementwise).
    default = stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0)
    strides = kernel if default else pair(stride, "stride", 1)
    pads = pair(padding, "padding", 0)
    dilations = pair(dilation, "dilation", 1)
    ceil_mode = flag(ceil_mode, "ceil_mode")
    h, w = _plane(input_shape)
    out = tuple(pool_output_size(size, k, s, p, d, ceil_mode, axis)
                for size, k, s, p, d, axis in zip((h, w), kernel, strides, pads, dilations,
                                                  ("height", "width")))
    return kernel, strides, pads, dilations, out


# A layer asks for the same geometry on every step; checking it once is enough (lru_cache never
# stores a call that raised, so bad arguments raise every time).
_cached_conv = functools.lru_cache(maxsize=1024)(_conv_geometry)
_cached_pool = functools.lru_cache(maxsize=1024)(_pool_geometry)


def is_plain(value):
    """Whether `value` is None, an int or a tuple of ints, exactly: only these are cached,
    because a cache compares keys with ==, and 2 == 2.0 == True would let a float or a bool
    skip its TypeError."""
    if value is None or type(value) is int:
        return True
    return type(value) is tuple and all(type(item) is int for item in value)


def conv_geometry(input_shape, kernel_size, stride=1, padding=0, dilation=1):
    """Checked convolution geometry of an input (..., C, H, W): ``(kernel, stride, padding,
    dilation, out)``, each an (height, width) pair of ints.

    Raises:
        TypeError: An argument is not an int or a pair of ints.
        ValueError: A kernel, stride or dilation below 1, a negative padding, an input without
            channels, rows or columns, or a dilated kernel larger than the padded input.
    """
    arguments = (kernel_size, stride, padding, dilation)
    if all(map(is_plain, arguments)):
        return _cached_conv(tuple(input_shape), *arguments)
    return _conv_geometry(input_shape, *arguments)


def pool_geometry(input_shape, kernel_size, stride=None, padding=0, dilation=1,
                  ceil_mode=False):
    """Checked pooling geometry of an input (..., C, H, W), as :func:`conv_geometry`;
    ``stride=None`` (or ``()``) means the kernel size, and padding may be at most half the
    kernel, as in PyTorch."""
    arguments = (kernel_size, stride, padding, dilation)
    if all(map(is_plain, arguments)) and type(ceil_mode) is bool:
        return _cached_pool(tuple(input_shape), *arguments, ceil_mode)
    return _pool_geometry(input_shape, *arguments, ceil_mode)

