"""Gradient clipping, as ``torch.nn.utils.clip_grad_norm_`` and ``clip_grad_value_``.

Both work on the parameters' ``.grad`` in place, between ``backward()`` and the optimizer's
``step()``; parameters without a gradient are skipped.
"""
import math

import numpy as np

from ..._validation import real_number
from ...tensor import Tensor

__all__ = ["clip_grad_norm_", "clip_grad_value_"]


def _gradients(parameters):
    """The ``.grad`` Tensors of `parameters` (a Tensor or an iterable of them) that have one."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = []
    for position, param in enumerate(parameters):
        if not isinstance(param, Tensor):
            raise TypeError(f"parameters: element {position} is a {type(param).__name__}, not "
                            "a Tensor")
        if param.grad is not None:
            grads.append(param.grad)
    return grads


def clip_grad_norm_(parameters, max_norm, norm_type=2.0, error_if_nonfinite=False,
                    foreach=None):
    """Scale the gradients so that their total norm is at most ``max_norm``.

    The total norm is that of all gradients concatenated into one vector; every gradient is
    multiplied by ``min(max_norm / (total_norm + 1e-6), 1)`` (PyTorch's formula).

    Args:
        parameters: A Tensor or an iterable of Tensors (``model.parameters()``).
        max_norm (float): The largest total norm allowed.
        norm_type (float): The p of the p-norm; ``inf`` for the largest absolute value.
        error_if_nonfinite (bool): Raise if the total norm is NaN or infinite (the gradients
            are then left unscaled).
        foreach: Accepted for PyTorch's signature.

    Returns:
        Tensor: The total norm before clipping (0-d).

    Raises:
        RuntimeError: With ``error_if_nonfinite``, for a non-finite total norm.
    """
    max_norm = real_number(max_norm, "max_norm")
    norm_type = float(norm_type) if not isinstance(norm_type, str) else norm_type
    if isinstance(norm_type, str) or math.isnan(norm_type):
        raise ValueError(f"norm_type: expected a number or inf, got {norm_type!r}")
    grads = _gradients(parameters)
    if not grads:
        return Tensor(np.zeros((), np.float32))
    dtype = grads[0].dtype
    norms = [_norm(np.asarray(grad), norm_type) for grad in grads]
    total = _norm(np.array(norms, dtype), norm_type)
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"The total norm of order {norm_type} for gradients from "
                           "`parameters` is non-finite, so it cannot be clipped. To disable "
                           "this error and scale the gradients by the non-finite norm anyway, "
                           "set `error_if_nonfinite=False`")
    coefficient = min(dtype.type(max_norm) / (total + dtype.type(1e-6)), dtype.type(1.0))
    for grad in grads:
        grad.mul_(coefficient)
    return Tensor(np.asarray(total, dtype))


def _norm(values, norm_type):
    """The p-norm of an array's elements, in its dtype."""
    magnitude = np.abs(values)
    if norm_type == math.inf:
        return magnitude.max() if magnitude.size else values.dtype.type(0)
    if norm_type == -math.inf:
        return magnitude.min() if magnitude.size else values.dtype.type(0)
    if norm_type == 0:
        return values.dtype.type(np.count_nonzero(values))
    if norm_type == 2:
        return np.sqrt(np.sum(magnitude * magnitude))
    return np.sum(magnitude ** norm_type) ** values.dtype.type(1.0 / norm_type)


def clip_grad_value_(parameters, clip_value, foreach=None):
    """Clamp every gradient element to ``[-clip_value, clip_value]``, in place.

    Args:
        parameters: A Tensor or an iterable of Tensors.
        clip_value (float): The largest magnitude allowed.
        foreach: Accepted for PyTorch's signature.
    """
    clip_value = real_number(clip_value, "clip_value")
    for grad in _gradients(parameters):
        grad.clamp_(-clip_value, clip_value)
