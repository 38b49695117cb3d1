"""Dropout: zero elements (or whole channels) with probability p during training, scale the
rest by 1 / (1 - p)."""
import warnings

from cnn._validation import flag, real_number
from cnn.autograd import Function
from cnn.random import default_generator
from cnn.tensor import Tensor, from_numpy

from ._inputs import float_array_of


class Dropout(Function):
    """Multiplies by a random mask (kept elements scaled by 1 / (1 - p)); backward uses the mask."""

    @staticmethod
    def forward(ctx, x, p):
        return x * _mask(ctx, x.shape, p, x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None


class FeatureDropout(Dropout):
    """Dropout of whole channels of (N, C, *): one mask value per (sample, channel), broadcast
    over the other dims."""

    @staticmethod
    def forward(ctx, x, p):
        return x * _mask(ctx, x.shape[:2] + (1,) * (x.ndim - 2), p, x.dtype)


def _mask(ctx, shape, p, dtype):
    """A random mask of `shape`: 0 with probability p, else 1 / (1 - p); kept for backward."""
    keep = default_generator().random(shape, dtype=dtype) >= p
    scale = dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
    mask = keep * scale
    ctx.save_for_backward(mask)
    return mask


def dropout(input, p=0.5, training=True, inplace=False):
    """Randomly zero elements of `input` with probability `p` when `training` (else identity).

    The mask is drawn from cnn's generator (`cnn.manual_seed` makes it reproducible).
    `inplace` is accepted and computed out of place (the same values).
    """
    float_array_of(input, "input")
    p = check_probability(p)
    if not flag(training, "training") or p == 0:
        return input if isinstance(input, Tensor) else from_numpy(input)
    return Dropout.apply(input, p)


def dropout2d(input, p=0.5, training=True, inplace=False):
    """Randomly zero whole channels of (N, C, H, W) with probability ``p`` when ``training``,
    scaling the rest by 1 / (1 - p). A 3-D input is taken as (N, C, L), with PyTorch's warning.
    ``inplace`` is accepted and computed out of place (the same values)."""
    x = float_array_of(input, "input", (3, 4))
    p = check_probability(p)
    if not flag(training, "training") or p == 0:
        return input if isinstance(input, Tensor) else from_numpy(input)
    if x.ndim == 3:
        warnings.warn("dropout2d: Received a 3D input to dropout2d and assuming that "
                      "channel-wise 1D dropout behavior is desired - input is interpreted as "
                      "shape (N, C, L), where C is the channel dim. This behavior will change "
                      "in a future release to interpret the input as one without a batch "
                      "dimension, i.e. shape (C, H, W). To maintain the 1D channel-wise "
                      "dropout behavior, please switch to using dropout1d instead.",
                      stacklevel=2)
    return FeatureDropout.apply(input, p)


def check_probability(p):
    """The dropout probability `p` as a float in [0, 1]."""
    p = real_number(p, "p")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: dropout probability has to be between 0 and 1, got {p}")
    return p
