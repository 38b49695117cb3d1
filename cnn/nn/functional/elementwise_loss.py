"""Losses that reduce a per-element term: L1, smooth L1, Huber, binary cross-entropy (on
probabilities and on logits) and Kullback-Leibler divergence.

Every loss is one :class:`ElementwiseLoss` op: a term ``l(x, t)`` per element, optionally
weighted, reduced by ``reduction`` ("mean", "sum", "none"; ``kl_div`` also "batchmean"). Each
term gives its value and its derivatives with respect to the input and the target
(PyTorch's formulas, including its clamps), side by side.
"""
import math
import warnings

import numpy as np

from cnn._validation import real_number
from cnn.autograd import Function

from ._inputs import array_of, float_array_of, same_dtype
from .loss import check_reduction


class _Term:
    """A loss's per-element term: ``value(x, t)`` and ``gradients(x, t) -> (dl/dx, dl/dt)``."""

    def value(self, x, t):
        raise NotImplementedError

    def gradients(self, x, t):
        raise NotImplementedError


class _L1(_Term):
    def value(self, x, t):
        return np.abs(x - t)

    def gradients(self, x, t):
        d = np.sign(x - t)
        return d, -d


class _SmoothL1(_Term):
    """0.5 d^2 / beta where |d| < beta, else |d| - 0.5 beta (L1 for beta = 0)."""

    def __init__(self, beta):
        self.beta = beta

    def value(self, x, t):
        d = x - t
        a, beta = np.abs(d), d.dtype.type(self.beta)
        if not self.beta:
            return a
        return np.where(a < beta, d * d * d.dtype.type(0.5) / beta, a - d.dtype.type(0.5) * beta)

    def gradients(self, x, t):
        d = x - t
        beta = d.dtype.type(self.beta)
        g = np.sign(d) if not self.beta else np.where(np.abs(d) < beta, d / beta, np.sign(d))
        return g, -g


class _Huber(_Term):
    """0.5 d^2 where |d| < delta, else delta * (|d| - 0.5 delta)."""

    def __init__(self, delta):
        self.delta = delta

    def value(self, x, t):
        d = x - t
        a, delta, half = np.abs(d), d.dtype.type(self.delta), d.dtype.type(0.5)
        return np.where(a < delta, half * d * d, delta * (a - half * delta))

    def gradients(self, x, t):
        d = x - t
        delta = d.dtype.type(self.delta)
        g = np.where(np.abs(d) < delta, d, delta * np.sign(d))
        return g, -g


class _BinaryCrossEntropy(_Term):
    """-(t log x + (1 - t) log(1 - x)), the logarithms clamped to >= -100 (PyTorch's)."""

    def value(self, x, t):
        log_x, log_1mx = _clamped_log(x), _clamped_log(1 - x)
        return -(t * log_x + (1 - t) * log_1mx)

    def gradients(self, x, t):
        eps = x.dtype.type(1e-12)
        return ((x - t) / np.maximum((1 - x) * x, eps),
                _clamped_log(1 - x) - _clamped_log(x))


class _BinaryCrossEntropyWithLogits(_Term):
    """(1 - t) x + w_p(t) softplus(-x), w_p(t) = (pos_weight - 1) t + 1 (stable for any x)."""

    def __init__(self, pos_weight):
        self.pos_weight = pos_weight

    def value(self, x, t):
        softplus = np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))
        return (1 - t) * x + self._weight(t) * softplus

    def gradients(self, x, t):
        e = np.exp(-np.abs(x))
        sigmoid = np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)
        softplus = np.maximum(-x, 0) + np.log1p(e)
        pos = 1 if self.pos_weight is None else self.pos_weight
        return ((1 - t) - self._weight(t) * (1 - sigmoid), (pos - 1) * softplus - x)

    def _weight(self, t):
        return 1 if self.pos_weight is None else (self.pos_weight - 1) * t + 1


class _KLDivergence(_Term):
    """t (log t - x) with 0 where t = 0, or exp(t) (t - x) for log-space targets."""

    def __init__(self, log_target):
        self.log_target = log_target

    def value(self, x, t):
        if self.log_target:
            return np.exp(t) * (t - x)
        return _xlogx(t) - t * x

    def gradients(self, x, t):
        if self.log_target:
            e = np.exp(t)
            return -e, e * (t - x + 1)
        return -t, np.where(t > 0, np.log(np.where(t > 0, t, 1)) + 1, 0) - x


def _xlogx(t):
    """t log t, and 0 at t = 0 (PyTorch's xlogy(t, t))."""
    return np.where(t > 0, t * np.log(np.where(t > 0, t, 1)), 0).astype(t.dtype, copy=False)


def _clamped_log(values):
    with np.errstate(divide="ignore"):
        return np.maximum(np.log(values), values.dtype.type(-100))


class ElementwiseLoss(Function):
    """``reduce(weight * term(input, target))``; both input and target get gradients."""

    @staticmethod
    def forward(ctx, x, target, weight, term, reduction):
        values = term.value(x, target).astype(x.dtype, copy=False)
        if weight is not None:
            values = values * weight
        ctx.save_for_backward(x, target, weight)
        ctx.term, ctx.reduction, ctx.shape = term, reduction, values.shape
        if reduction == "none":
            return values
        total = values.sum(dtype=x.dtype)
        if reduction == "sum":
            return total
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN for no elements, as PyTorch
            return total / x.dtype.type(_count(values.shape, reduction))

    @staticmethod
    def backward(ctx, grad_output):
        x, target, weight = ctx.saved_tensors
        need_x, need_target = ctx.needs_input_grad[:2]
        g = grad_output
        if ctx.reduction != "none":
            count = 1 if ctx.reduction == "sum" else max(_count(ctx.shape, ctx.reduction), 1)
            g = np.broadcast_to(grad_output / x.dtype.type(count), ctx.shape)
        if weight is not None:
            g = g * weight
        grad_x, grad_t = ctx.term.gradients(x, target)
        dtype = x.dtype
        return ((g * grad_x).astype(dtype, copy=False) if need_x else None,
                (g * grad_t).astype(target.dtype, copy=False) if need_target else None,
                None, None, None)


def _count(shape, reduction):
    """The divisor of a reduction: every element ("mean"), or the batch ("batchmean")."""
    if reduction == "batchmean":
        return shape[0] if shape else 1
    return math.prod(shape)


def _apply(term, input, target, weight, reduction, name, reductions=("mean", "sum", "none")):
    if reduction not in reductions:
        raise ValueError(f"reduction: expected one of {reductions}, got {reduction!r}")
    x = float_array_of(input, "input")
    t = float_array_of(target, "target")
    same_dtype(t, x, "target", "input")
    if t.shape != x.shape:
        raise ValueError(f"target: {name} expects the input's shape {x.shape}, got {t.shape} "
                         "(broadcasting would give a wrong loss)")
    if weight is not None:
        w = array_of(weight, "weight")
        same_dtype(w, x, "weight", "input")
        _check_broadcast(w, x, "weight")
        weight = w
    return ElementwiseLoss.apply(input, target, weight, term, reduction)


def _check_broadcast(array, x, name):
    try:
        fits = np.broadcast_shapes(array.shape, x.shape) == x.shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"{name}: shape {array.shape} does not broadcast to the input's shape "
                         f"{x.shape}")


def l1_loss(input, target, reduction="mean"):
    """Mean (or sum, or per element) absolute error |input - target|."""
    return _apply(_L1(), input, target, None, check_reduction(reduction), "l1_loss")


def smooth_l1_loss(input, target, reduction="mean", beta=1.0):
    """Squared error below ``beta`` (divided by it), absolute error above (minus beta / 2)."""
    beta = real_number(beta, "beta", minimum=0)
    return _apply(_SmoothL1(beta), input, target, None, check_reduction(reduction),
                  "smooth_l1_loss")


def huber_loss(input, target, reduction="mean", delta=1.0):
    """Squared error (halved) below ``delta``, delta times (absolute error - delta / 2) above."""
    delta = real_number(delta, "delta")
    if delta <= 0:
        raise ValueError(f"delta: must be positive, got {delta}")
    return _apply(_Huber(delta), input, target, None, check_reduction(reduction), "huber_loss")


def binary_cross_entropy(input, target, weight=None, reduction="mean"):
    """Binary cross-entropy of probabilities ``input`` in [0, 1] against ``target`` (same
    shape), each log clamped to >= -100 as in PyTorch."""
    x = float_array_of(input, "input")
    if x.size and not ((x >= 0) & (x <= 1)).all():
        raise ValueError("input: all elements of input should be between 0 and 1 (apply a "
                         "sigmoid, or use binary_cross_entropy_with_logits)")
    return _apply(_BinaryCrossEntropy(), input, target, weight, check_reduction(reduction),
                  "binary_cross_entropy")


def binary_cross_entropy_with_logits(input, target, weight=None, reduction="mean",
                                     pos_weight=None):
    """Binary cross-entropy of sigmoid(``input``) against ``target``, computed stably from the
    logits; ``pos_weight`` (broadcast along the last dim) weighs the positive term."""
    if pos_weight is not None:
        x = float_array_of(input, "input")
        p = array_of(pos_weight, "pos_weight")
        same_dtype(p, x, "pos_weight", "input")
        _check_broadcast(p, x, "pos_weight")
        pos_weight = p
    return _apply(_BinaryCrossEntropyWithLogits(pos_weight), input, target, weight,
                  check_reduction(reduction), "binary_cross_entropy_with_logits")


def kl_div(input, target, reduction="mean", log_target=False):
    """Kullback-Leibler divergence of ``target`` from log-probabilities ``input``:
    ``target * (log(target) - input)`` per element ("batchmean" divides the sum by the batch
    size, the mathematically right mean)."""
    if not isinstance(log_target, (bool, np.bool_)):
        raise TypeError(f"log_target: expected True or False, got {log_target!r}")
    if reduction == "mean":
        warnings.warn("reduction: 'mean' divides the total loss by both the batch size and the "
                      "support size.'batchmean' divides only by the batch size, and aligns with "
                      "the KL div math definition.'mean' will be changed to behave the same as "
                      "'batchmean' in the next major release.", stacklevel=2)
    return _apply(_KLDivergence(bool(log_target)), input, target, None, reduction, "kl_div",
                  ("mean", "sum", "none", "batchmean"))
