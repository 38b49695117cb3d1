"""Batch normalisation over the channel dimension (dimension 1) of (N, C, *) inputs."""
import numpy as np

from cnn._validation import flag, real_number
from cnn.autograd import Function

from ._inputs import array_of, float_array_of, same_dtype


class BatchNorm(Function):
    """y = (x - mean) / sqrt(var + eps) * weight + bias, per channel.

    Training uses the batch's statistics (biased variance) and updates the running ones in place
    (unbiased variance, as PyTorch); evaluation uses the running statistics.
    """

    @staticmethod
    def forward(ctx, x, running_mean, running_var, weight, bias, training, momentum, eps):
        axes = (0,) + tuple(range(2, x.ndim))
        shape = (1, -1) + (1,) * (x.ndim - 2)
        if training and x.size == 0:
            # An empty batch has no statistics: normalise nothing and leave the running ones
            # as they are (as PyTorch does), rather than fold NaN into them.
            mean, var = np.zeros(x.shape[1], x.dtype), np.ones(x.shape[1], x.dtype)
        elif training:
            mean = x.mean(axis=axes)
            var = x.var(axis=axes)
            if running_mean is not None:
                count = x.size // x.shape[1]
                running_mean *= 1 - momentum
                running_mean += momentum * mean
                running_var *= 1 - momentum
                running_var += momentum * var * (count / max(count - 1, 1))
        else:
            mean, var = running_mean, running_var
        inv_std = (1 / np.sqrt(var + eps)).astype(x.dtype, copy=False)
        x_hat = (x - mean.reshape(shape)) * inv_std.reshape(shape)
        out = x_hat if weight is None else x_hat * weight.reshape(shape)
        if bias is not None:
            out = out + bias.reshape(shape)
        ctx.save_for_backward(x_hat, inv_std, weight)
        ctx.training, ctx.axes, ctx.shape = training, axes, shape
        return out

    @staticmethod
    def backward(ctx, grad_output):
        x_hat, inv_std, weight = ctx.saved_tensors
        needs_x, _, _, needs_w, needs_b = ctx.needs_input_grad[:5]
        axes, shape = ctx.axes, ctx.shape
        grad_w = (grad_output * x_hat).sum(axis=axes) if needs_w else None
        grad_b = grad_output.sum(axis=axes) if needs_b else None
        grad_x = None
        if needs_x:
            g = grad_output if weight is None else grad_output * weight.reshape(shape)
            if ctx.training and g.size:
                # The batch statistics depend on x too: subtract their share of the gradient.
                mean_g = g.mean(axis=axes, keepdims=True)
                mean_gx = (g * x_hat).mean(axis=axes, keepdims=True)
                g = g - mean_g - x_hat * mean_gx
            grad_x = g * inv_std.reshape(shape)
        return grad_x, None, None, grad_w, grad_b, None, None, None


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
    x = float_array_of(input, "input", (2, 3, 4, 5))
    training = flag(training, "training")
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
                           eps)
