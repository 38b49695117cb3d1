"""Check analytic gradients against central differences, in float64.

Like the engine, this module knows the Tensor class through
:func:`cnn.autograd.function.register_tensor_class` rather than by importing cnn.tensor,
which imports this package.
"""
import numpy as np

from . import function
from .grad_mode import no_grad


class GradcheckError(AssertionError):
    """An analytic gradient differs from the numeric one."""


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3):
    """Compare the gradients ``backward()`` computes with central differences.

    The scalar checked is ``sum(fn(*inputs) * w)`` for fixed random weights ``w``, so that
    every element of the output and every way it depends on the inputs is covered. Each
    element ``x[j]`` of every input that requires grad is moved by ``+eps`` and ``-eps``.

    Args:
        fn: Maps the inputs to one Tensor.
        inputs: A Tensor or a tuple of arguments for ``fn``; floating-point ones must be
            float64, because float32 rounding swamps a difference quotient.
        eps: The perturbation.
        atol: Absolute tolerance.
        rtol: Tolerance relative to the numeric gradient.

    Returns:
        True when every gradient matches.

    Raises:
        TypeError: A floating-point input is not float64, or ``fn`` returned no Tensor.
        ValueError: No input requires grad.
        GradcheckError: A gradient differs; the message names the input's position, the
            element's index and both values.
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    for position, value in enumerate(inputs):
        is_array = isinstance(value, (function.Tensor, np.ndarray))
        dtype = np.asarray(value).dtype if is_array else None
        if dtype is not None and dtype.kind == "f" and dtype != np.float64:
            raise TypeError(f"gradcheck: input {position} has dtype {dtype}; gradcheck needs "
                            "float64 inputs (use .double())")
    checked = [position for position, value in enumerate(inputs)
               if isinstance(value, function.Tensor) and value.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input requires grad")
    analytic, weights = _analytic_gradients(fn, inputs, checked)
    for position in checked:
        numeric = _numeric_gradient(fn, inputs, inputs[position], weights, eps)
        _compare(position, analytic[position], numeric, atol, rtol)
    return True


def _analytic_gradients(fn, inputs, checked):
    """Return ``({position: gradient}, weights)``; the inputs' own ``.grad`` is left as it was."""
    saved = {position: inputs[position]._grad for position in checked}
    try:
        for position in checked:
            inputs[position]._grad = None
        out = fn(*inputs)
        if not isinstance(out, function.Tensor):
            raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
        weights = np.random.default_rng(0).standard_normal(out.shape)
        if out.requires_grad:
            out.backward(weights)
        gradients = {}
        for position in checked:
            grad = inputs[position]._grad
            gradients[position] = np.zeros(inputs[position].shape) if grad is None else grad
    finally:
        for position, grad in saved.items():
            inputs[position]._grad = grad
    return gradients, weights


def _numeric_gradient(fn, inputs, x, weights, eps):
    original = x._data
    # Perturb a private copy, so that the caller's array is never written (it may be read-only).
    x._data = perturbed = original.copy()
    grad = np.zeros(original.shape)
    try:
        with no_grad():
            for index in np.ndindex(original.shape):
                value = perturbed[index]
                perturbed[index] = value + eps
                plus = _weighted_sum(fn, inputs, weights)
                perturbed[index] = value - eps
                minus = _weighted_sum(fn, inputs, weights)
                perturbed[index] = value
                grad[index] = (plus - minus) / (2 * eps)
    finally:
        x._data = original
    return grad


def _weighted_sum(fn, inputs, weights):
    return float(np.sum(np.asarray(fn(*inputs), dtype=np.float64) * weights))


def _compare(position, analytic, numeric, atol, rtol):
    mismatch = ~(np.abs(analytic - numeric) <= atol + rtol * np.abs(numeric))
    if mismatch.any():
        index = tuple(int(i) for i in np.argwhere(mismatch)[0])
        raise GradcheckError(
            f"gradcheck: the gradient of input {position} differs at index {index}: analytic "
            f"{float(analytic[index]):.10g}, numeric {float(numeric[index]):.10g} "
            f"({int(mismatch.sum())} of {mismatch.size} elements differ; atol={atol}, rtol={rtol})")
