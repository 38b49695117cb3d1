"""``padding="same"`` and ``padding="valid"`` of PyTorch's convolutions, as explicit pads.

"valid" is no padding. "same" (stride 1 only) pads ``dilation * (kernel - 1)`` in total per dim,
half before and the rest after; when that total is odd the extra row or column goes after,
which a symmetric convolution padding cannot express, so it is padded separately (F.pad).
"""
from cnn._validation import pair

__all__ = ["resolve"]


def resolve(padding, kernel_size, dilation, stride, spatial):
    """The convolution's symmetric padding and any extra padding to apply first.

    Args:
        padding: An int, a sequence of ints, "same" or "valid".
        kernel_size, dilation, stride: One int per spatial dim (tuples).
        spatial (int): 1 or 2.

    Returns:
        (tuple, tuple or None): The symmetric padding per dim, and F.pad's sizes (last dim
        first) of the extra after-padding, or None.

    Raises:
        ValueError: For another string, or "same" with a stride other than 1.
    """
    if not isinstance(padding, str):
        if spatial == 2:
            return pair(padding, "padding", 0), None
        sizes = padding if isinstance(padding, (tuple, list)) else (padding,)
        if len(sizes) != 1:
            raise ValueError(f"padding: expected one size for a 1-d convolution, got "
                             f"{padding!r}")
        return (pair(sizes[0], "padding", 0)[0],), None
    if padding == "valid":
        return (0,) * spatial, None
    if padding != "same":
        raise ValueError(f"padding: expected an int, a tuple of ints, 'same' or 'valid', got "
                         f"{padding!r}")
    if any(s != 1 for s in stride):
        raise ValueError("padding='same' is not supported for strided convolutions")
    totals = [d * (k - 1) for d, k in zip(dilation, kernel_size)]
    pads = tuple(total // 2 for total in totals)
    extra = [total - 2 * (total // 2) for total in totals]
    if not any(extra):
        return pads, None
    sizes = []
    for odd in reversed(extra):  # F.pad lists the last dim first
        sizes += [0, odd]
    return pads, tuple(sizes)

