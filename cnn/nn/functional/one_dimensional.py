"""1-D convolution and pooling over (N, C, L) inputs, computed as their 2-D forms over
(N, C, 1, L): the same kernels, values and gradients."""
from cnn._validation import pair
from cnn.tensor import Tensor

from . import conv_padding
from ._inputs import float_array_of
from .conv import conv2d
from .padding import pad as pad_
from .pooling import avg_pool2d, max_pool2d


def _as_image(input, name):
    """(input as (N, C, 1, L), whether it was one unbatched (C, L) signal)."""
    x = float_array_of(input, name, (2, 3))
    if not isinstance(input, Tensor):
        input = Tensor(x)
    unbatched = x.ndim == 2
    if unbatched:
        input = input.unsqueeze(0)
    return input.unsqueeze(2), unbatched


def _as_signal(out, unbatched):
    out = out.squeeze(2)
    return out[0] if unbatched else out


def _single(value, name, minimum):
    if isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name}: expected one size for a 1-d op, got {value!r}")
        value = value[0]
    return pair(value, name, minimum)[0]


def conv1d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """1-D convolution of (N, C_in, L) (or one (C_in, L) signal) by weights (C_out,
    C_in / groups, K).

    Args:
        stride, dilation: int (or a 1-tuple).
        padding: int, "same" (stride 1) or "valid".

    Returns:
        Tensor (N, C_out, OL), OL = (L + 2 * padding - dilation * (K - 1) - 1) // stride + 1.
    """
    image, unbatched = _as_image(input, "input")
    w = float_array_of(weight, "weight", (3,))
    stride, dilation = _single(stride, "stride", 1), _single(dilation, "dilation", 1)
    pads, extra = conv_padding.resolve(padding, (w.shape[2],), (dilation,), (stride,), 1)
    if extra is not None:
        image = pad_(image, extra)
    weight = weight.unsqueeze(2) if isinstance(weight, Tensor) else Tensor(w[:, :, None])
    out = conv2d(image, weight, bias, (1, stride), (0, pads[0]), (1, dilation), groups)
    return _as_signal(out, unbatched)


def max_pool1d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """1-D max-pooling of (N, C, L) or (C, L) (PyTorch's rules: -inf padding, the first
    maximum wins); with ``return_indices`` also the positions of the maxima along L."""
    image, unbatched = _as_image(input, "input")
    kernel = _single(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _single(stride, "stride", 1)
    out = max_pool2d(image, (1, kernel), (1, stride), (0, _single(padding, "padding", 0)),
                     (1, _single(dilation, "dilation", 1)), ceil_mode, return_indices)
    if return_indices:
        return _as_signal(out[0], unbatched), _as_signal(out[1], unbatched)
    return _as_signal(out, unbatched)


def avg_pool1d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True):
    """1-D average-pooling of (N, C, L) or (C, L) with zero padding."""
    image, unbatched = _as_image(input, "input")
    kernel = _single(kernel_size, "kernel_size", 1)
    stride = kernel if stride is None else _single(stride, "stride", 1)
    out = avg_pool2d(image, (1, kernel), (1, stride), (0, _single(padding, "padding", 0)),
                     ceil_mode, count_include_pad)
    return _as_signal(out, unbatched)
