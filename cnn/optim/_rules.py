"""Pieces the NumPy optimizers' update rules share, written as PyTorch computes them."""
import numpy as np

__all__ = ["followed_gradient", "adam_gradient", "update_moments", "zeros_like", "lerp_"]


def followed_gradient(grad, param, weight_decay, maximize):
    """The gradient an update follows: negated to maximize, plus ``weight_decay * param`` (L2)."""
    if maximize:
        grad = -grad
    if weight_decay:
        grad = grad + param.dtype.type(weight_decay) * param
    return grad


def zeros_like(param):
    """A state array for `param`: zeros, C-contiguous, in its dtype."""
    return np.zeros_like(param, order="C")


def lerp_(average, target, weight):
    """``average += weight * (target - average)`` in place: PyTorch's ``lerp_`` for weights
    below 0.5 (its form for larger weights is ``target - (target - average) * (1 - weight)``)."""
    kind = average.dtype.type
    if abs(weight) < 0.5:
        average += kind(weight) * (target - average)
    else:
        average[...] = target - (target - average) * kind(1 - weight)


def adam_gradient(grad, param, group):
    """The gradient of an Adam-family step: with ``decoupled_weight_decay`` the parameter
    shrinks by ``1 - lr * weight_decay`` first (AdamW's rule), else the decay is an L2 term."""
    weight_decay = group["weight_decay"]
    if group["decoupled_weight_decay"] and weight_decay:
        param *= param.dtype.type(1 - group["lr"] * weight_decay)
        weight_decay = 0
    return followed_gradient(grad, param, weight_decay, group["maximize"])


def update_moments(exp_avg, exp_avg_sq, grad, betas):
    """Adam's running averages, in place: ``m += (1 - beta1) (g - m)`` (a lerp) and
    ``v = beta2 v + (1 - beta2) g^2``."""
    beta1, beta2 = betas
    kind = exp_avg_sq.dtype.type
    lerp_(exp_avg, grad, 1 - beta1)
    exp_avg_sq *= kind(beta2)
    exp_avg_sq += kind(1 - beta2) * grad * grad
