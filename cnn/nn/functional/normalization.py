"""Batch normalisation over the channel dimension (dimension 1) of (N, C, *) inputs.

The passes over the data run in the kernels of cnn/_ext/norm.pyx (statistics, the per-channel
affine map, the gradient's sums); this module turns their per-channel sums into the
coefficients of PyTorch's formulas, in double precision.
"""
import math

import numpy as np

from cnn import _ext
from cnn._validation import flag, real_number
from cnn.autograd import Function
from cnn.threads import kernel_threads

from ._inputs import array_of, float_array_of, same_dtype


def _channels_view(array):
    """(N, C, *) as a C-contiguous (N, C, S) array, S = the product of the trailing sizes."""
    n, c = array.shape[:2]
    return np.ascontiguousarray(array).reshape(n, c, math.prod(array.shape[2:]))


def _coefficients(var, weight, bias, eps):
    """(1 / sqrt(var + eps), the affine map's scale and shift), per channel, float64."""
    inv_std = 1 / np.sqrt(var + eps)
    scale = inv_std if weight is None else inv_std * weight
    shift = np.zeros(var.shape) if bias is None else bias.astype(np.float64)
    return inv_std, scale, shift


def evaluation_coefficients(running_mean, running_var, weight, bias, eps):
    """A batch norm's map in evaluation mode: float64 rows (mean, scale, shift, 1 / std), one
    value per channel (norm.evaluation_coefficients). BatchNorm applies the first three, and a
    convolution's epilogue applies them in its place (cnn.compile folds the two)."""
    coefficients = np.empty((4, running_mean.shape[0]))
    _ext.backend.norm.evaluation_coefficients(
        *[None if a is None else np.ascontiguousarray(a)
          for a in (running_mean, running_var, weight, bias)], eps, coefficients)
    return coefficients


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    Training uses the batch's statistics (biased variance) and updates the running ones in place
    (unbiased variance, as PyTorch); evaluation uses the running statistics. Keeps the input,
    the weight and the per-channel mean and 1/sqrt(var + eps) for backward (x_hat is
    recomputed there, not stored). With `relu`, a ReLU follows in the same pass (cnn.compile
    fuses a batch norm and the ReLU that alone takes its output): the gradient is taken through
    the ReLU inside the sums, as relu's backward would, its mask recomputed from the input by the
    forward's own map (the same bits), so that backward streams one array less.
    """

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps,
                num_batches_tracked=None, relu=False):
        channels = x.shape[1]
        if training and num_batches_tracked is not None:
            # The module's count of batches, kept here rather than in its forward so that the
            # whole update is one op (a replayed forward, cnn.compile, re-runs ops only).
            num_batches_tracked += 1
            if momentum is None:  # a cumulative average over all batches seen
                momentum = 1.0 / float(num_batches_tracked)
        threads = kernel_threads()
        x3 = _channels_view(x)
        if training and x.size == 0:
            # An empty batch has no statistics: normalise nothing and leave the running ones
            # as they are (as PyTorch does), rather than fold NaN into them.
            mean, var = np.zeros(channels), np.ones(channels)
        elif training:
            mean, var = np.empty(channels), np.empty(channels)
            _ext.backend.norm.statistics(x3, mean, var, threads)
            if running_mean is not None:
                count = x.size // channels
                running_mean *= 1 - momentum
                running_mean += (momentum * mean).astype(x.dtype)
                running_var *= 1 - momentum
                running_var += (momentum * var * (count / max(count - 1, 1))).astype(x.dtype)
        if training:
            inv_std, scale, shift = _coefficients(var, weight, bias, eps)
        else:
            mean, scale, shift, inv_std = evaluation_coefficients(running_mean, running_var,
                                                                  weight, bias, eps)
        out = np.empty_like(x3)
        _ext.backend.norm.normalize(x3, mean, scale, shift, out, relu, threads)
        ctx.save_for_backward(x3, weight)
        ctx.statistics = (mean, inv_std)
        # The ReLU's mask is recomputed from x by the same map (the output is not kept).
        ctx.relu_affine = (scale, shift) if relu else (None, None)
        ctx.training, ctx.shape = training, x.shape
        return out.reshape(x.shape)

    @staticmethod
    def backward(ctx, grad_output):
        x3, weight = ctx.saved_tensors
        relu_affine = ctx.relu_affine
        mean, inv_std = ctx.statistics
        needs_x, _, _, needs_w, needs_b = ctx.needs_input_grad[:5]
        threads = kernel_threads()
        g3 = _channels_view(grad_output)
        channels = x3.shape[1]
        sum_grad, sum_grad_x = np.empty(channels), np.empty(channels)
        grad_x = None
        if needs_x:
            # One kernel makes the sums and then, from them, the input gradient, a few channels
            # at a time, so that its second pass over grad and x finds them in the cache. When
            # training, the batch statistics depend on x too, and their share of the gradient
            # is subtracted (norm.backward's b and k).
            a = inv_std if weight is None else inv_std * weight
            grad_x = np.empty_like(x3)
            _ext.backend.norm.backward(g3, x3, mean, a, inv_std, ctx.training, sum_grad,
                                       sum_grad_x, grad_x, threads, *relu_affine)
            grad_x = grad_x.reshape(ctx.shape)
        else:
            _ext.backend.norm.gradient_sums(g3, x3, mean, sum_grad, sum_grad_x, threads,
                                            *relu_affine)
        dtype = x3.dtype
        grad_w = (inv_std * sum_grad_x).astype(dtype) if needs_w else None
        grad_b = sum_grad.astype(dtype) if needs_b else None
        return grad_x, None, None, grad_w, grad_b, None, None, None, None, None


def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Normalise each channel of `input` (N, C, *) by batch or running statistics.

    Args:
        input: Tensor (N, C) or (N, C, L) or (N, C, H, W).
        running_mean, running_var: arrays (C,) updated in place when training (may be None
            when training, to use batch statistics only).
        weight, bias: optional per-channel scale and shift (C,).
        training: use the batch's statistics (and update the running ones).
        momentum: weight of the new batch in the running statistics.
        eps: added to the variance for stability.
    """
    return counted_batch_norm(input, running_mean, running_var, weight, bias, training,
                              real_number(momentum, "momentum"), eps)


def counted_batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps,
                       num_batches_tracked=None):
    """:func:`batch_norm` for the BatchNorm modules: when training, `num_batches_tracked` (a
    0-d int64 array, or None) counts the batch, and a `momentum` of None makes the running
    statistics the cumulative average of every batch counted."""
    x = float_array_of(input, "input", (2, 3, 4, 5))
    training = flag(training, "training")
    if momentum is not None:
        momentum = real_number(momentum, "momentum")
    eps = real_number(eps, "eps", minimum=0)
    channels = x.shape[1]
    for name, value in (("running_mean", running_mean), ("running_var", running_var),
                        ("weight", weight), ("bias", bias)):
        if value is None:
            if name.startswith("running") and not training:
                raise ValueError(f"{name}: needed when training=False")
            continue
        array = array_of(value, name)
        same_dtype(array, x, name, "input")
        if array.shape != (channels,):
            raise ValueError(f"{name}: expected shape ({channels},), got {array.shape}")
        if training and name.startswith("running") and not array.flags.writeable:
            raise ValueError(f"{name}: updated in place when training, but the array is "
                             "read-only")
    if training and x.size == channels and channels:
        raise ValueError(f"input: expected more than 1 value per channel when training, got "
                         f"shape {x.shape}")
    running_mean = array_of(running_mean, "running_mean") if running_mean is not None else None
    running_var = array_of(running_var, "running_var") if running_var is not None else None
    return BatchNorm.apply(input, running_mean, running_var, weight, bias, training, momentum,
                           eps, num_batches_tracked)
