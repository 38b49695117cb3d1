"""Weight initialisers with `torch.nn.init`'s names, formulas and defaults.

Each function fills a Parameter's (or Tensor's, or array's) values in place, keeping its
dtype, and returns its argument. Random ones draw from ``cnn.random.default_generator()``
(reseeded by ``cnn.manual_seed``) unless a ``generator`` is given, so runs are reproducible.
The layers use PyTorch's defaults: ``kaiming_uniform_(w, a=math.sqrt(5))`` for weights, which
is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for biases.
"""
import math
import numbers
import warnings

import numpy as np

from .. import random as _random
from .._validation import FLOAT_DTYPES
from ..tensor import Tensor

__all__ = ["calculate_gain", "calculate_fan_in_and_fan_out", "uniform_", "normal_", "constant_",
           "zeros_", "ones_", "xavier_uniform_", "xavier_normal_", "kaiming_uniform_",
           "kaiming_normal_"]

_LINEAR_FUNCTIONS = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d",
                     "conv_transpose2d", "conv_transpose3d", "sigmoid")
_NONLINEARITIES = _LINEAR_FUNCTIONS + ("tanh", "relu", "leaky_relu", "selu")


def _array(tensor):
    """The array an initialiser writes into: a Tensor's, or the array itself."""
    array = tensor._data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray):
        raise TypeError(f"tensor: expected a Tensor, Parameter or NumPy array, got "
                        f"{type(tensor).__name__}")
    return array


def _float_array(tensor):
    array = _array(tensor)
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"tensor: expected float32 or float64 data for a random initialiser, "
                        f"got dtype {array.dtype}")
    return array


def _real(value, name):
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    return float(value)


def _generator(generator):
    if generator is None:
        return _random.default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def calculate_gain(nonlinearity, param=None):
    """Return the recommended gain for a nonlinearity (PyTorch's table).

    ====================  ===================================
    nonlinearity          gain
    ====================  ===================================
    linear, conv*, sigmoid 1
    tanh                  5/3
    relu                  sqrt(2)
    leaky_relu            sqrt(2 / (1 + negative_slope**2))
    selu                  3/4
    ====================  ===================================

    Args:
        nonlinearity (str): The function's name in ``cnn.nn.functional``.
        param (float, optional): The negative slope for ``"leaky_relu"`` (default 0.01).

    Returns:
        float: The gain.

    Raises:
        ValueError: For an unknown nonlinearity.
        TypeError: If `param` is not a number.
    """
    if nonlinearity in _LINEAR_FUNCTIONS:
        return 1
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else _real(param, "param")
        return math.sqrt(2.0 / (1 + slope**2))
    if nonlinearity == "selu":
        # Found empirically by PyTorch (pytorch/pytorch#50664).
        return 3.0 / 4
    raise ValueError(f"nonlinearity: expected one of {', '.join(_NONLINEARITIES)}, "
                     f"got {nonlinearity!r}")


def calculate_fan_in_and_fan_out(tensor):
    """Return the fan-in and fan-out of a weight.

    For a Linear weight ``(out, in)`` they are ``in`` and ``out``; for a convolution weight
    ``(out, in/groups, kH, kW)`` both are multiplied by the receptive field ``kH*kW``.

    Args:
        tensor: A Tensor, Parameter or array with at least 2 dimensions.

    Returns:
        (int, int): ``(fan_in, fan_out)``.

    Raises:
        ValueError: If it has fewer than 2 dimensions.
    """
    shape = _array(tensor).shape
    if len(shape) < 2:
        raise ValueError(f"tensor: fan in and fan out need at least 2 dimensions, got shape "
                         f"{shape}")
    receptive_field = math.prod(shape[2:])
    return shape[1] * receptive_field, shape[0] * receptive_field


# PyTorch's private name, for code ported from torch.nn.init.
_calculate_fan_in_and_fan_out = calculate_fan_in_and_fan_out


def _calculate_correct_fan(tensor, mode):
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(f"mode: expected 'fan_in' or 'fan_out', got {mode!r}")
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    return fan_in if mode.lower() == "fan_in" else fan_out


def uniform_(tensor, a=0.0, b=1.0, generator=None):
    """Fill with values drawn from the uniform distribution U(a, b).

    Args:
        tensor: A float Tensor, Parameter or array, filled in place.
        a (float): Lower bound.
        b (float): Upper bound; at least `a`.
        generator (numpy.random.Generator, optional): Instead of the library's generator.

    Returns:
        The `tensor` argument.
    """
    array = _float_array(tensor)
    a, b = _real(a, "a"), _real(b, "b")
    if a > b:
        raise ValueError(f"b: expected an upper bound >= a = {a}, got {b}")
    sample = _generator(generator).random(array.shape, dtype=array.dtype)
    sample *= b - a
    sample += a
    array[...] = sample
    return tensor


def normal_(tensor, mean=0.0, std=1.0, generator=None):
    """Fill with values drawn from the normal distribution N(mean, std**2).

    Args:
        tensor: A float Tensor, Parameter or array, filled in place.
        mean (float): The mean.
        std (float): The standard deviation; not negative.
        generator (numpy.random.Generator, optional): Instead of the library's generator.

    Returns:
        The `tensor` argument.
    """
    array = _float_array(tensor)
    mean, std = _real(mean, "mean"), _real(std, "std")
    if std < 0:
        raise ValueError(f"std: expected a standard deviation >= 0, got {std}")
    sample = _generator(generator).standard_normal(array.shape, dtype=array.dtype)
    sample *= std
    sample += mean
    array[...] = sample
    return tensor


def constant_(tensor, val):
    """Fill with the value `val`.

    Args:
        tensor: A Tensor, Parameter or array, filled in place.
        val (float): The value.

    Returns:
        The `tensor` argument.
    """
    _array(tensor)[...] = _real(val, "val")
    return tensor


def zeros_(tensor):
    """Fill with zeros.

    Args:
        tensor: A Tensor, Parameter or array, filled in place.

    Returns:
        The `tensor` argument.
    """
    return constant_(tensor, 0.0)


def ones_(tensor):
    """Fill with ones.

    Args:
        tensor: A Tensor, Parameter or array, filled in place.

    Returns:
        The `tensor` argument.
    """
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor, gain=1.0, generator=None):
    """Glorot initialisation: U(-bound, bound), bound = gain * sqrt(6 / (fan_in + fan_out)).

    Args:
        tensor: A float weight with at least 2 dimensions, filled in place.
        gain (float): Scaling factor, e.g. ``calculate_gain("relu")``.
        generator (numpy.random.Generator, optional): Instead of the library's generator.

    Returns:
        The `tensor` argument.
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    bound = math.sqrt(3.0) * _real(gain, "gain") * math.sqrt(2.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor, gain=1.0, generator=None):
    """Glorot initialisation: N(0, std**2), std = gain * sqrt(2 / (fan_in + fan_out)).

    Args:
        tensor: A float weight with at least 2 dimensions, filled in place.
        gain (float): Scaling factor, e.g. ``calculate_gain("relu")``.
        generator (numpy.random.Generator, optional): Instead of the library's generator.

    Returns:
        The `tensor` argument.
    """
    fan_in, fan_out = calculate_fan_in_and_fan_out(tensor)
    std = _real(gain, "gain") * math.sqrt(2.0 / (fan_in + fan_out))
    return normal_(tensor, 0.0, std, generator)


def _kaiming_std(tensor, a, mode, nonlinearity):
    """gain / sqrt(fan), or None for an empty tensor (PyTorch warns and leaves it alone)."""
    if 0 in _array(tensor).shape:
        warnings.warn("Initializing zero-element tensors is a no-op", stacklevel=3)
        return None
    return calculate_gain(nonlinearity, a) / math.sqrt(_calculate_correct_fan(tensor, mode))


def kaiming_uniform_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: U(-bound, bound), bound = gain * sqrt(3 / fan).

    With PyTorch's layer default ``a=math.sqrt(5)`` (leaky_relu) the bound is 1/sqrt(fan_in).

    Args:
        tensor: A float weight with at least 2 dimensions, filled in place.
        a (float): The negative slope of the leaky_relu that follows (used by its gain).
        mode (str): ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one.
        nonlinearity (str): The function that follows, ``"relu"`` or ``"leaky_relu"``.
        generator (numpy.random.Generator, optional): Instead of the library's generator.

    Returns:
        The `tensor` argument.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    bound = math.sqrt(3.0) * std
    return uniform_(tensor, -bound, bound, generator)


def kaiming_normal_(tensor, a=0, mode="fan_in", nonlinearity="leaky_relu", generator=None):
    """He initialisation: N(0, std**2), std = gain / sqrt(fan).

    Args:
        tensor: A float weight with at least 2 dimensions, filled in place.
        a (float): The negative slope of the leaky_relu that follows (used by its gain).
        mode (str): ``"fan_in"`` keeps the forward variance, ``"fan_out"`` the backward one.
        nonlinearity (str): The function that follows, ``"relu"`` or ``"leaky_relu"``.
        generator (numpy.random.Generator, optional): Instead of the library's generator.

    Returns:
        The `tensor` argument.
    """
    std = _kaiming_std(tensor, a, mode, nonlinearity)
    if std is None:
        return tensor
    return normal_(tensor, 0.0, std, generator)
