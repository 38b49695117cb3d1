"""Losses: cross-entropy (fused with log-softmax), negative log-likelihood, mean squared error.

Cross-entropy and NLL share one formulation: every loss is -sum(Q * logp) per sample, where Q
(N, C) folds the targets, the class weights and label smoothing together, and the mean divides by
a divisor D (the number of counted samples, or the sum of their weights, as in PyTorch). The
gradient with respect to the logits is then g * (softmax * rowsum(Q) - Q): one fused step.

With class-index targets the loss adds only the terms PyTorch's formula has (the target's, and
with label smoothing every class of a counted sample), so a masked class (a -inf logit, whose
log-probability is -inf) adds nothing where PyTorch adds nothing, instead of ``0 * -inf = nan``;
with class-probability targets every product counts, as in PyTorch.
"""
import numpy as np

from cnn._validation import FLOAT_DTYPES, integer, real_number
from cnn.autograd import Function
from cnn.tensor import Tensor

from ._inputs import array_of, float_array_of, same_dtype
from .activation import log_softmax_array

REDUCTIONS = ("mean", "sum", "none")


def check_reduction(reduction):
    if not isinstance(reduction, str) or reduction not in REDUCTIONS:
        raise ValueError(f"reduction: expected one of {REDUCTIONS}, got {reduction!r}")
    return reduction


def _target_weights(logits, target, weight, ignore_index, label_smoothing):
    """Q (N, C), the mean's divisor D, and the terms of -sum(Q * logp) that count: None for
    class-probability targets (all of them), else a boolean (N, C) mask or (N, 1) column."""
    n, classes = logits.shape
    dtype = logits.dtype
    w = np.ones(classes, dtype) if weight is None else weight.astype(dtype, copy=False)
    if target.dtype.kind == "f":  # probabilities per class
        q = target.astype(dtype, copy=False)
        if label_smoothing:
            q = q * (1 - label_smoothing) + label_smoothing / classes
        return q * w, dtype.type(n), None
    counted = target != ignore_index
    labels = np.where(counted, target, 0)
    rows = np.arange(n)
    q = np.zeros((n, classes), dtype)
    picked = w[labels] * counted
    q[rows, labels] = picked * (1 - label_smoothing)
    if label_smoothing:
        q += (label_smoothing / classes) * w * counted[:, None]
        terms = counted[:, None]
    else:
        terms = np.zeros((n, classes), bool)
        terms[rows, labels] = counted
    return q, picked.sum(dtype=dtype), terms


def _per_sample_loss(q, logp, terms):
    """-sum(Q * logp) per row over the terms that count (see _target_weights)."""
    # 0 * -inf and inf - inf are nan without a warning, as in PyTorch; the mask drops the
    # terms that PyTorch's formula never computes.
    with np.errstate(invalid="ignore"):
        products = q * logp
        if terms is not None:
            products = np.where(terms, products, 0)
        return -products.sum(axis=1)


def _reduce(per_sample, reduction, divisor):
    if reduction == "none":
        return per_sample
    # inf + -inf is nan, and an empty batch (or only ignored samples) has a NaN mean, as in
    # PyTorch: no warning.
    with np.errstate(invalid="ignore", divide="ignore"):
        total = per_sample.sum()
        return total if reduction == "sum" else total / divisor


def _reduced_gradient(grad_output, reduction, divisor, n):
    """d(loss)/d(per-sample loss) as an (N, 1) column."""
    if reduction == "none":
        return grad_output.reshape(n, 1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a zero divisor: inf/nan, as PyTorch
        scale = grad_output / divisor if reduction == "mean" else grad_output
    return np.full((n, 1), scale, dtype=grad_output.dtype)


class CrossEntropy(Function):
    """Cross-entropy of logits (N, C) against Q; the backward is softmax-based and fused."""

    @staticmethod
    def forward(ctx, logits, q, terms, divisor, reduction):
        logp = log_softmax_array(logits, 1)
        ctx.save_for_backward(logp, q)
        ctx.reduction, ctx.divisor = reduction, divisor
        return _reduce(_per_sample_loss(q, logp, terms), reduction, divisor)

    @staticmethod
    def backward(ctx, grad_output):
        logp, q = ctx.saved_tensors
        g = _reduced_gradient(grad_output, ctx.reduction, ctx.divisor, logp.shape[0])
        with np.errstate(invalid="ignore"):  # 0 * inf (a zero divisor): nan, as PyTorch
            grad = (np.exp(logp) * q.sum(axis=1, keepdims=True) - q) * g
        return grad, None, None, None, None


class IndexCrossEntropy(Function):
    """CrossEntropy for the common case: class-index targets, all counted, no class weights, no
    label smoothing. Q is then one-hot, and this computes what CrossEntropy computes with it,
    operation for operation (so the same bits), without building Q or the terms' mask: the
    picked log-probabilities forward, softmax minus one at the labels backward."""

    @staticmethod
    def forward(ctx, logits, labels, reduction):
        logp = log_softmax_array(logits, 1)
        picked = logp[np.arange(labels.shape[0]), labels]
        ctx.save_for_backward(logp)
        ctx.labels, ctx.reduction = labels, reduction
        ctx.divisor = logits.dtype.type(labels.shape[0])
        return _reduce(-picked, reduction, ctx.divisor)

    @staticmethod
    def backward(ctx, grad_output):
        (logp,) = ctx.saved_tensors
        labels = ctx.labels
        g = _reduced_gradient(grad_output, ctx.reduction, ctx.divisor, logp.shape[0])
        grad = np.exp(logp)
        grad[np.arange(labels.shape[0]), labels] -= 1
        with np.errstate(invalid="ignore"):  # 0 * inf (a zero divisor): nan, as PyTorch
            grad *= g
        return grad, None, None


def _plain_labels(input, target, weight, ignore_index, label_smoothing):
    """The class indices (an array) when cross_entropy is the common case IndexCrossEntropy
    computes, else None (the general path then checks the arguments and says what is wrong)."""
    if (weight is not None or type(label_smoothing) not in (int, float) or label_smoothing != 0
            or type(ignore_index) is not int):
        return None
    x = input._data if isinstance(input, Tensor) else None
    t = target._data if isinstance(target, Tensor) else target
    if (x is None or not isinstance(t, np.ndarray) or x.ndim != 2 or x.dtype not in FLOAT_DTYPES
            or t.dtype.kind not in "iu" or t.shape != (x.shape[0],) or x.shape[0] == 0):
        return None
    low, high = t.min(), t.max()
    if low < 0 or high >= x.shape[1] or low <= ignore_index <= high and (t == ignore_index).any():
        return None
    return t.copy()  # the backward's labels, safe from later changes to the target


class NLLLoss(Function):
    """-sum(Q * input) for log-probabilities; the gradient is -Q scaled."""

    @staticmethod
    def forward(ctx, logp, q, terms, divisor, reduction):
        ctx.save_for_backward(q)
        ctx.reduction, ctx.divisor = reduction, divisor
        return _reduce(_per_sample_loss(q, logp, terms), reduction, divisor)

    @staticmethod
    def backward(ctx, grad_output):
        (q,) = ctx.saved_tensors
        g = _reduced_gradient(grad_output, ctx.reduction, ctx.divisor, q.shape[0])
        with np.errstate(invalid="ignore"):  # 0 * inf (a zero divisor): nan, as PyTorch
            return -q * g, None, None, None, None


def _class_problem(input, target, weight, ignore_index, label_smoothing, probabilities_ok):
    """Check a classification loss's arguments; return (Q, terms, D, was_unbatched)."""
    x = float_array_of(input, "input", (1, 2))
    unbatched = x.ndim == 1
    if unbatched:
        x = x.reshape(1, -1)
    n, classes = x.shape
    if classes == 0:
        raise ValueError(f"input: expected at least one class (a non-empty last dimension), got "
                         f"shape {x.shape}")
    ignore_index = integer(ignore_index, "ignore_index")
    t = array_of(target, "target")
    if unbatched:
        t = t.reshape((1,) + t.shape)
    if t.dtype.kind == "f" and probabilities_ok:
        if t.shape != x.shape:
            raise ValueError(f"target: class probabilities must have the input's shape "
                             f"{x.shape}, got {t.shape}")
    elif t.dtype.kind in "iu":
        if t.shape != (n,):
            raise ValueError(f"target: expected class indices of shape ({n},), got {t.shape}")
        bad = (t != ignore_index) & ((t < 0) | (t >= classes))
        if bad.any():
            raise ValueError(f"target: class indices must be in [0, {classes - 1}] (or "
                             f"ignore_index={ignore_index}), got {t[bad][0]}")
    else:
        kinds = "integer class indices or float class probabilities" if probabilities_ok \
            else "integer class indices"
        raise TypeError(f"target: expected {kinds}, got dtype {t.dtype}")
    if weight is not None:
        w = float_array_of(weight, "weight", (1,))
        if w.shape != (classes,):
            raise ValueError(f"weight: expected one weight per class, shape ({classes},), got "
                             f"{w.shape}")
        weight = w
    label_smoothing = check_label_smoothing(label_smoothing)
    q, divisor, terms = _target_weights(x, t, weight, ignore_index, label_smoothing)
    return q, terms, divisor, unbatched


def check_label_smoothing(label_smoothing):
    label_smoothing = real_number(label_smoothing, "label_smoothing")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing: expected a number in [0, 1], got {label_smoothing}")
    return label_smoothing


def cross_entropy(input, target, weight=None, ignore_index=-100, reduction="mean",
                  label_smoothing=0.0):
    """Cross-entropy between logits and targets (log-softmax and NLL in one stable step).

    Args:
        input: logits, Tensor (N, C) or (C,).
        target: class indices (N,) of an integer dtype, or class probabilities (N, C) float.
        weight: optional per-class weights (C,).
        ignore_index: class index whose samples count for nothing (index targets only).
        reduction: 'mean' (divided by the number, or total weight, of counted samples),
            'sum' or 'none' (one loss per sample).
        label_smoothing: in [0, 1]; mixes the target with the uniform distribution.
    """
    reduction = check_reduction(reduction)
    labels = _plain_labels(input, target, weight, ignore_index, label_smoothing)
    if labels is not None:
        return IndexCrossEntropy.apply(input, labels, reduction)
    q, terms, divisor, unbatched = _class_problem(input, target, weight, ignore_index,
                                                  label_smoothing, probabilities_ok=True)
    logits = input.reshape(1, -1) if unbatched else input
    out = CrossEntropy.apply(logits, q, terms, divisor, reduction)
    return out[0] if unbatched and reduction == "none" else out


def nll_loss(input, target, weight=None, ignore_index=-100, reduction="mean"):
    """Negative log-likelihood of log-probabilities `input` (N, C) at class indices `target`."""
    reduction = check_reduction(reduction)
    q, terms, divisor, unbatched = _class_problem(input, target, weight, ignore_index, 0.0,
                                                  probabilities_ok=False)
    logp = input.reshape(1, -1) if unbatched else input
    out = NLLLoss.apply(logp, q, terms, divisor, reduction)
    return out[0] if unbatched and reduction == "none" else out


class MSELoss(Function):
    """Mean (or sum) of squared differences; gradients for both operands."""

    @staticmethod
    def forward(ctx, x, target, reduction):
        diff = x - target
        ctx.save_for_backward(diff)
        ctx.reduction = reduction
        squared = diff * diff
        if reduction == "none":
            return squared
        if reduction == "sum":
            return squared.sum()
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN for no elements, as PyTorch
            return squared.sum() / squared.dtype.type(squared.size)

    @staticmethod
    def backward(ctx, grad_output):
        (diff,) = ctx.saved_tensors
        scale = 2 / diff.size if ctx.reduction == "mean" and diff.size else 2
        grad = grad_output * diff * diff.dtype.type(scale)
        return grad, -grad, None


def mse_loss(input, target, reduction="mean"):
    """Squared error between `input` and `target` (same shape), averaged, summed or per element."""
    reduction = check_reduction(reduction)
    x = float_array_of(input, "input")
    t = float_array_of(target, "target")
    same_dtype(t, x, "target", "input")
    if x.shape != t.shape:
        raise ValueError(f"target: expected the input's shape {x.shape}, got {t.shape}")
    return MSELoss.apply(input, target, reduction)
