"""Smooth and bounded element-wise activations: GELU, SiLU, ELU, Hardtanh (ReLU6), Softplus.

Each Function keeps what its gradient reads (the input, or the output where the derivative is
a function of it) and computes PyTorch's formulas, including its choices at the kinks
(Hardtanh passes no gradient at its bounds) and its thresholds (Softplus is linear above
``threshold``).
"""
import math

import numpy as np

from cnn._validation import real_number
from cnn.autograd import Function

from ._inputs import float_array_of

_SQRT_2 = math.sqrt(2.0)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_erf = np.frompyfunc(math.erf, 1, 1)


def _gauss_cdf(x):
    """Phi(x) = (1 + erf(x / sqrt 2)) / 2, elementwise, in double precision (NumPy has no erf:
    the C library's, one element at a time, as PyTorch's CPU kernel calls it)."""
    return 0.5 * (1.0 + _erf(np.asarray(x, np.float64) / _SQRT_2).astype(np.float64))


class GELU(Function):
    """x * Phi(x) (``approximate="none"``) or its tanh approximation; keeps the input."""

    @staticmethod
    def forward(ctx, x, approximate):
        ctx.save_for_backward(x)
        ctx.approximate = approximate
        if approximate == "tanh":
            inner = x.dtype.type(_SQRT_2_OVER_PI) * (x + x.dtype.type(0.044715) * x * x * x)
            return x * x.dtype.type(0.5) * (1 + np.tanh(inner))
        return (x * _gauss_cdf(x)).astype(x.dtype)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        if ctx.approximate == "tanh":
            kind = x.dtype.type
            inner = kind(_SQRT_2_OVER_PI) * (x + kind(0.044715) * x * x * x)
            t = np.tanh(inner)
            slope = kind(_SQRT_2_OVER_PI) * (1 + kind(3 * 0.044715) * x * x)
            derivative = kind(0.5) * (1 + t) + kind(0.5) * x * (1 - t * t) * slope
        else:
            wide = x.astype(np.float64)
            derivative = _gauss_cdf(wide) + wide * _INV_SQRT_2PI * np.exp(-0.5 * wide * wide)
        return (grad_output * derivative).astype(x.dtype, copy=False), None


class SiLU(Function):
    """x * sigmoid(x); keeps the input."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * _sigmoid(x)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        s = _sigmoid(x)
        return grad_output * s * (1 + x * (1 - s))


class ELU(Function):
    """x where x > 0, else alpha * (exp(x) - 1); keeps the input."""

    @staticmethod
    def forward(ctx, x, alpha):
        alpha = x.dtype.type(alpha)
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return np.where(x > 0, x, alpha * np.expm1(np.minimum(x, 0)))

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        return np.where(x > 0, grad_output, grad_output * ctx.alpha * np.exp(np.minimum(x, 0))), None


class Hardtanh(Function):
    """x clamped to [min_val, max_val]; the gradient passes strictly inside (PyTorch's rule)."""

    @staticmethod
    def forward(ctx, x, min_val, max_val):
        ctx.save_for_backward(x)
        ctx.bounds = (x.dtype.type(min_val), x.dtype.type(max_val))
        return np.clip(x, *ctx.bounds)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        inside = (x > low) & (x < high)
        return np.where(inside, grad_output, 0).astype(grad_output.dtype, copy=False), None, None


class Softplus(Function):
    """log(1 + exp(beta * x)) / beta, and x where beta * x > threshold; keeps the input."""

    @staticmethod
    def forward(ctx, x, beta, threshold):
        ctx.save_for_backward(x)
        ctx.beta, ctx.threshold = x.dtype.type(beta), x.dtype.type(threshold)
        scaled = x * ctx.beta
        # log1p(exp(z)) = max(z, 0) + log1p(exp(-|z|)): no overflow for large z.
        smooth = (np.maximum(scaled, 0) + np.log1p(np.exp(-np.abs(scaled)))) / ctx.beta
        return np.where(scaled > ctx.threshold, x, smooth)

    @staticmethod
    def backward(ctx, grad_output):
        (x,) = ctx.saved_tensors
        scaled = x * ctx.beta
        return np.where(scaled > ctx.threshold, grad_output,
                        grad_output * _sigmoid(scaled)), None, None


def _sigmoid(x):
    """1 / (1 + exp(-x)) without overflow, in x's dtype."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def gelu(input, approximate="none"):
    """Gaussian error linear unit: input * Phi(input), or with ``approximate="tanh"``
    0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))."""
    float_array_of(input, "input")
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
    return GELU.apply(input, approximate)


def silu(input, inplace=False):
    """Sigmoid linear unit (swish): input * sigmoid(input). ``inplace`` is accepted and
    computed out of place."""
    float_array_of(input, "input")
    return SiLU.apply(input)


def elu(input, alpha=1.0, inplace=False):
    """Exponential linear unit: input where positive, else alpha * (exp(input) - 1)."""
    float_array_of(input, "input")
    return ELU.apply(input, real_number(alpha, "alpha"))


def hardtanh(input, min_val=-1.0, max_val=1.0, inplace=False):
    """input clamped to [min_val, max_val]."""
    float_array_of(input, "input")
    min_val, max_val = real_number(min_val, "min_val"), real_number(max_val, "max_val")
    if min_val > max_val:
        raise ValueError(f"max_val: must be at least min_val ({min_val}), got {max_val}")
    return Hardtanh.apply(input, min_val, max_val)


def relu6(input, inplace=False):
    """min(max(input, 0), 6): ``hardtanh(input, 0, 6)``."""
    return hardtanh(input, 0.0, 6.0)


def softplus(input, beta=1.0, threshold=20.0):
    """log(1 + exp(beta * input)) / beta, linear (input itself) where beta * input > threshold."""
    float_array_of(input, "input")
    beta = real_number(beta, "beta")
    if beta == 0:
        raise ValueError("beta: must be nonzero")
    return Softplus.apply(input, beta, real_number(threshold, "threshold"))
