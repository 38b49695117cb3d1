"""``pad``: padding (or, with negative sizes, cropping) of the last dims, as ``F.pad``.

Constant padding writes the input into a filled array; reflect, replicate and circular
padding gather each padded dim through an index map (the source index of every output
position), so that one backward rule serves all three: the gradient is scattered back and
summed through the same maps.
"""
import numpy as np

from cnn._validation import integer, real_number
from cnn.autograd import Function

from ._inputs import float_array_of

MODES = ("constant", "reflect", "replicate", "circular")
_NUMPY_MODES = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


class ConstantPad(Function):
    """``x`` with ``pads`` ((before, after) per dim, negative crops) filled with ``value``."""

    @staticmethod
    def forward(ctx, x, pads, value):
        lead = x.ndim - len(pads)
        grown = [(0, 0)] * lead + [(max(before, 0), max(after, 0)) for before, after in pads]
        ctx.pads, ctx.shape = pads, x.shape
        return np.pad(x[_crops(pads, x.ndim)], grown, mode="constant", constant_values=value)

    @staticmethod
    def backward(ctx, grad_output):
        lead = grad_output.ndim - len(ctx.pads)
        grown = (slice(None),) * lead + tuple(
            slice(max(before, 0), size - max(after, 0))
            for (before, after), size in zip(ctx.pads, grad_output.shape[lead:]))
        grad = np.zeros(ctx.shape, grad_output.dtype)
        grad[_crops(ctx.pads, len(ctx.shape))] = grad_output[grown]
        return grad, None, None


class IndexPad(Function):
    """``x`` gathered along each padded dim through an index map (reflect, replicate,
    circular)."""

    @staticmethod
    def forward(ctx, x, maps):
        ctx.maps, ctx.shape = maps, x.shape
        for axis, index in maps:
            x = np.take(x, index, axis=axis)
        return x

    @staticmethod
    def backward(ctx, grad_output):
        grad = grad_output
        for axis, index in reversed(ctx.maps):
            size = ctx.shape[axis]
            summed = np.zeros(grad.shape[:axis] + (size,) + grad.shape[axis + 1:], grad.dtype)
            np.add.at(summed, (slice(None),) * axis + (index,), grad)
            grad = summed
        return grad, None


def _crops(pads, ndim):
    """The slices that cut negative padding off (pads cover the last dims)."""
    lead = ndim - len(pads)
    return (slice(None),) * lead + tuple(slice(-min(before, 0), None if after >= 0 else after)
                                         for before, after in pads)


def pad(input, pad, mode="constant", value=None):
    """Pad the last dims of ``input``: ``pad = (left, right)`` pads the last dim,
    ``(left, right, top, bottom)`` the last two, and so on (PyTorch's order, last dim first).

    Args:
        input: Tensor.
        pad: An even-length sequence of ints; negative sizes crop (constant mode).
        mode: "constant" (``value``, default 0), "reflect" (mirrored without repeating the
            edge; each pad smaller than its dim), "replicate" (the edge repeated) or
            "circular" (wrapped around; each pad at most its dim).
        value: The fill value of constant padding.

    Returns:
        Tensor of the padded shape.
    """
    x = float_array_of(input, "input")
    if mode not in MODES:
        raise ValueError(f"mode: expected one of {MODES}, got {mode!r}")
    if not isinstance(pad, (tuple, list)) or len(pad) % 2:
        raise ValueError(f"pad: expected a sequence of (before, after) pairs, got {pad!r}")
    sizes = [integer(p, "pad") for p in pad]
    if len(sizes) // 2 > x.ndim:
        raise ValueError(f"pad: {len(sizes)} sizes pad {len(sizes) // 2} dims, but input has "
                         f"{x.ndim}")
    # (before, after) per padded dim, first dim first.
    pads = [(sizes[i], sizes[i + 1]) for i in range(0, len(sizes), 2)][::-1]
    lead = x.ndim - len(pads)
    if mode == "constant":
        value = 0.0 if value is None else real_number(value, "value")
        for axis, (before, after) in enumerate(pads, lead):
            if x.shape[axis] + before + after < 0:
                raise ValueError(f"pad: cropping {-before} and {-after} from dim {axis} of size "
                                 f"{x.shape[axis]} leaves nothing")
        return ConstantPad.apply(input, tuple(pads), value)
    if value not in (None, 0, 0.0):
        raise ValueError(f"value: only constant padding takes a fill value, got mode {mode!r}")
    maps = []
    for axis, (before, after) in enumerate(pads, lead):
        size = x.shape[axis]
        if before < 0 or after < 0:
            raise ValueError(f"pad: {mode} padding needs non-negative sizes, got {pad}")
        limit = {"reflect": size - 1, "replicate": None, "circular": size}[mode]
        if size == 0 or (limit is not None and max(before, after) > limit):
            raise ValueError(f"pad: {mode} padding of dim {axis} (size {size}) by "
                             f"({before}, {after}) is too large: at most "
                             f"{limit if limit is not None else 'any size'} per side")
        if before or after:
            index = np.pad(np.arange(size), (before, after), mode=_NUMPY_MODES[mode])
            maps.append((axis, index))
    return IndexPad.apply(input, tuple(maps))
