"""Output sizes of convolution and pooling, with the checks that make them meaningful.

One place for the formulas, shared by im2col, pooling and the functional ops (PyTorch's rules).
"""


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
