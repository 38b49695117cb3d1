"""Dropout: zero elements with probability p during training, scale the rest by 1 / (1 - p)."""
from cnn._validation import flag, real_number
from cnn.autograd import Function
from cnn.random import default_generator
from cnn.tensor import Tensor, from_numpy

from ._inputs import float_array_of


class Dropout(Function):
    """Multiplies by a random mask (kept elements scaled by 1 / (1 - p)); backward uses the mask."""

    @staticmethod
    def forward(ctx, x, p):
        keep = default_generator().random(x.shape, dtype=x.dtype) >= p
        scale = x.dtype.type(0.0 if p == 1 else 1.0 / (1.0 - p))
        mask = keep * scale
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad_output):
        (mask,) = ctx.saved_tensors
        return grad_output * mask, None


def dropout(input, p=0.5, training=True):
    """Randomly zero elements of `input` with probability `p` when `training` (else identity).

    The mask is drawn from cnn's generator (`cnn.manual_seed` makes it reproducible).
    """
    float_array_of(input, "input")
    p = check_probability(p)
    if not flag(training, "training") or p == 0:
        return input if isinstance(input, Tensor) else from_numpy(input)
    return Dropout.apply(input, p)


def check_probability(p):
    """The dropout probability `p` as a float in [0, 1]."""
    p = real_number(p, "p")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"p: dropout probability has to be between 0 and 1, got {p}")
    return p
