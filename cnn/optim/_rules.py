"""Pieces the NumPy optimizers' update rules share, written as PyTorch computes them."""
import numpy as np

__all__ = ["followed_gradient", "zeros_like", "lerp_"]


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
