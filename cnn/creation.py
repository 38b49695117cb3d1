"""Tensor factories with ``torch``'s names and arguments: ``tensor``, ``zeros``, ``arange``, ...

Every factory takes PyTorch's keywords (``dtype``, ``device``, ``requires_grad``; the random ones
``generator``). Float factories give the default dtype (float32, see
``cnn.set_default_dtype``); random ones draw from ``cnn.manual_seed``'s generator unless given
a ``numpy.random.Generator``. ``device`` may only name the CPU.

This module knows the Tensor class through :func:`cnn.autograd.function.register_tensor_class`
(as the engine does), so that ``cnn/tensor.py`` can re-export these names.
"""
import math

import numpy as np

from . import _dtypes
from ._validation import integer
from .autograd import function
from .devices import as_device
from .random import default_generator

__all__ = ["tensor", "as_tensor", "from_numpy", "zeros", "ones", "empty", "full", "zeros_like",
           "ones_like", "empty_like", "full_like", "rand", "randn", "randint", "randperm",
           "rand_like", "randn_like", "randint_like", "arange", "linspace", "eye"]


def tensor(data, dtype=None, device=None, requires_grad=False, pin_memory=False):
    """Create a tensor from a copy of ``data``.

    Args:
        data: A number, a (nested) list or tuple, a NumPy array or a Tensor.
        dtype: The element type. By default Python floats give the default float dtype
            (float32), Python ints int64, bools bool, and a NumPy array keeps its dtype.
        device: None or the CPU.
        requires_grad: Record ops on the result for ``backward()`` (floating dtypes only).
        pin_memory: Accepted for PyTorch's signature; nothing to pin on the CPU.

    Returns:
        Tensor: A new leaf tensor owning its data.

    Raises:
        TypeError: The dtype is not bool, integer or floating point (e.g. complex, object).
    """
    as_device(device)
    return function.Tensor(_array(data, dtype, copy=True), requires_grad=requires_grad)


def as_tensor(data, dtype=None, device=None):
    """Convert ``data`` to a tensor, sharing memory where it can (a Tensor or an array of the
    requested dtype is not copied).

    Args:
        data: A Tensor, NumPy array, number or (nested) list.
        dtype: The element type (as :func:`tensor`).
        device: None or the CPU.
    """
    as_device(device)
    Tensor = function.Tensor
    if isinstance(data, Tensor):
        if dtype is None or _dtypes.as_dtype(dtype, "dtype") == data._data.dtype:
            return data
        return data.to(dtype)
    return Tensor(_array(data, dtype, copy=False))


def from_numpy(ndarray):
    """Wrap a NumPy array without copying: the tensor and the array share memory."""
    if not isinstance(ndarray, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(ndarray).__name__}")
    return function.Tensor(ndarray)


def zeros(*size, dtype=None, device=None, requires_grad=False):
    """Return a tensor of zeros of shape ``size`` (ints or one tuple), float32 by default."""
    return _filled(np.zeros, size, dtype, device, requires_grad, "zeros")


def ones(*size, dtype=None, device=None, requires_grad=False):
    """Return a tensor of ones of shape ``size`` (ints or one tuple), float32 by default."""
    return _filled(np.ones, size, dtype, device, requires_grad, "ones")


def empty(*size, dtype=None, device=None, requires_grad=False):
    """Return an uninitialised tensor of shape ``size`` (ints or one tuple), float32 by default."""
    return _filled(np.empty, size, dtype, device, requires_grad, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad=False):
    """Return a tensor of shape ``size`` filled with ``fill_value``.

    The dtype, unless given, follows the value: the default float dtype for a float, int64
    for an int, bool for a bool.
    """
    if dtype is None:
        dtype = _scalar_dtype(fill_value, "fill_value")
    return function.Tensor(np.full(_shape((size,), "full"), fill_value,
                                   _dtype(dtype, device)), requires_grad)


def zeros_like(input, dtype=None, device=None, requires_grad=False):
    """Return zeros of ``input``'s shape and (unless ``dtype`` is given) dtype."""
    return _like(np.zeros_like, input, dtype, device, requires_grad)


def ones_like(input, dtype=None, device=None, requires_grad=False):
    """Return ones of ``input``'s shape and (unless ``dtype`` is given) dtype."""
    return _like(np.ones_like, input, dtype, device, requires_grad)


def empty_like(input, dtype=None, device=None, requires_grad=False):
    """Return an uninitialised tensor of ``input``'s shape and (unless given) dtype."""
    return _like(np.empty_like, input, dtype, device, requires_grad)


def full_like(input, fill_value, dtype=None, device=None, requires_grad=False):
    """Return ``fill_value`` everywhere, in ``input``'s shape and (unless given) dtype."""
    array = _input_array(input)
    dtype = array.dtype if dtype is None else _dtype(dtype, device)
    return function.Tensor(np.full(array.shape, fill_value, dtype), requires_grad)


# ***** random *****

def rand(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Return samples uniform on [0, 1) of shape ``size``, float32 by default."""
    dtype = _float_dtype(dtype, device, "rand")
    data = random_generator(generator).random(_shape(size, "rand"), dtype=_draw_dtype(dtype))
    return function.Tensor(data.astype(dtype, copy=False), requires_grad)


def randn(*size, generator=None, dtype=None, device=None, requires_grad=False):
    """Return standard normal samples of shape ``size``, float32 by default.

    Args:
        *size: Ints or one tuple.
        generator: A ``numpy.random.Generator``; by default the one ``cnn.manual_seed`` seeds.
        dtype: A floating dtype.
        device: None or the CPU.
        requires_grad: Record ops on the result for ``backward()``.
    """
    dtype = _float_dtype(dtype, device, "randn")
    data = random_generator(generator).standard_normal(_shape(size, "randn"),
                                                 dtype=_draw_dtype(dtype))
    return function.Tensor(data.astype(dtype, copy=False), requires_grad)


def randint(low=0, high=None, size=None, generator=None, dtype=None, device=None,
            requires_grad=False):
    """Return integers uniform on [low, high) of shape ``size``, int64 by default.

    Called as ``randint(high, size)`` or ``randint(low, high, size)``, as in PyTorch.
    """
    if size is None and isinstance(high, (tuple, list)):
        low, high, size = 0, low, high
    elif high is None:
        low, high = 0, low
    if size is None:
        raise TypeError("randint: expected a size (a tuple of ints)")
    low, high = integer(low, "low", None, None), integer(high, "high", None, None)
    if high <= low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    dtype = np.dtype(np.int64) if dtype is None else _dtype(dtype, device)
    data = random_generator(generator).integers(low, high, _shape((size,), "randint"), dtype=np.int64)
    return function.Tensor(data.astype(dtype, copy=False), requires_grad)


def randperm(n, generator=None, dtype=None, device=None, requires_grad=False):
    """Return a random permutation of ``0 .. n-1`` (int64 by default)."""
    n = integer(n, "n", 0, None)
    dtype = np.dtype(np.int64) if dtype is None else _dtype(dtype, device)
    return function.Tensor(random_generator(generator).permutation(n).astype(dtype), requires_grad)


def rand_like(input, dtype=None, device=None, requires_grad=False, generator=None):
    """Return :func:`rand` samples of ``input``'s shape and (unless given) floating dtype."""
    array = _input_array(input)
    return rand(array.shape, generator=generator, dtype=array.dtype if dtype is None else dtype,
                device=device, requires_grad=requires_grad)


def randn_like(input, dtype=None, device=None, requires_grad=False, generator=None):
    """Return :func:`randn` samples of ``input``'s shape and (unless given) floating dtype."""
    array = _input_array(input)
    return randn(array.shape, generator=generator,
                 dtype=array.dtype if dtype is None else dtype, device=device,
                 requires_grad=requires_grad)


def randint_like(input, low=0, high=None, dtype=None, device=None, requires_grad=False,
                 generator=None):
    """Return :func:`randint` samples of ``input``'s shape and (unless given) dtype;
    ``randint_like(input, high)`` draws from [0, high)."""
    array = _input_array(input)
    if high is None:
        low, high = 0, low
    return randint(low, high, array.shape, generator=generator,
                   dtype=array.dtype if dtype is None else dtype, device=device,
                   requires_grad=requires_grad)


# ***** ranges *****

def arange(start=0, end=None, step=1, dtype=None, device=None, requires_grad=False):
    """Return ``start, start + step, ...`` up to (not including) ``end``.

    ``arange(end)`` starts at 0. The dtype, unless given, is int64 when every argument is an
    integer and the default float dtype otherwise.
    """
    if end is None:
        start, end = 0, start
    values = [_number(value, name) for value, name in ((start, "start"), (end, "end"),
                                                       (step, "step"))]
    if values[2] == 0:
        raise ValueError("arange: step must be nonzero")
    if (values[1] - values[0]) * values[2] < 0:
        raise ValueError(f"arange: upper bound and larger bound inconsistent with step sign "
                         f"(start={start}, end={end}, step={step})")
    if dtype is None:
        dtype = (np.int64 if all(isinstance(v, int) for v in values)
                 else _dtypes.get_default_dtype())
    dtype = _dtype(dtype, device)
    count = max(math.ceil((values[1] - values[0]) / values[2]), 0)
    # Computed in int64 or double precision, then cast, as PyTorch does.
    exact = np.int64 if all(isinstance(v, int) for v in values) else np.float64
    data = values[0] + np.arange(count, dtype=exact) * values[2]
    return function.Tensor(data.astype(dtype), requires_grad)


def linspace(start, end, steps, dtype=None, device=None, requires_grad=False):
    """Return ``steps`` evenly spaced values from ``start`` to ``end`` (both included)."""
    steps = integer(steps, "steps", 0, None)
    start, end = _number(start, "start"), _number(end, "end")
    dtype = _float_dtype(dtype, device, "linspace") if dtype is None else _dtype(dtype, device)
    # PyTorch's kernel: the first half counts up from start, the second half down from end
    # (so both ends are exact), with the step in the result's precision and each value
    # rounded once (the compiled kernel fuses the multiply-add).
    kind = dtype.type if dtype.kind == "f" else np.float64
    step = (kind(end) - kind(start)) / kind(max(steps - 1, 1))
    index = np.arange(steps, dtype=np.float64)
    wide = np.float64(step)
    values = np.where(index < steps // 2, np.float64(kind(start)) + wide * index,
                      np.float64(kind(end)) - wide * (steps - index - 1))
    return function.Tensor(values.astype(dtype), requires_grad)


def eye(n, m=None, dtype=None, device=None, requires_grad=False):
    """Return the ``n`` x ``m`` identity matrix (``m`` defaults to ``n``)."""
    n = integer(n, "n", 0, None)
    m = n if m is None else integer(m, "m", 0, None)
    dtype = _float_dtype(dtype, device, "eye") if dtype is None else _dtype(dtype, device)
    return function.Tensor(np.eye(n, m, dtype=dtype), requires_grad)


# ***** helpers *****

def _array(data, dtype, copy):
    """``data`` as an ndarray of a supported dtype, Python floats as the default float dtype."""
    Tensor = function.Tensor
    if isinstance(data, Tensor):
        data = data._data
    if dtype is not None:
        dtype = _dtypes.as_dtype(dtype, "dtype")
    try:
        if dtype is None and not isinstance(data, (np.ndarray, np.generic)):
            array = np.array(data)
            if array.dtype == np.float64 and not _holds_float64(data):
                array = array.astype(_dtypes.get_default_dtype())
        else:
            array = np.array(data, dtype=dtype) if copy else np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise type(error)(f"data: cannot make an array of the given {type(data).__name__}: "
                          f"{error}") from None
    _dtypes.check(array.dtype, "dtype" if dtype is not None else "data")
    return array


def _holds_float64(data):
    """Whether a list's values are float64 tensors or arrays (which keep their dtype, as in
    PyTorch), rather than Python floats."""
    while isinstance(data, (list, tuple)) and data:
        data = data[0]
    return isinstance(data, (np.ndarray, np.floating, function.Tensor))


def _filled(make, size, dtype, device, requires_grad, name):
    dtype = _dtypes.get_default_dtype() if dtype is None else dtype
    return function.Tensor(make(_shape(size, name), _dtype(dtype, device)), requires_grad)


def _like(make, input, dtype, device, requires_grad):
    array = _input_array(input)
    dtype = None if dtype is None else _dtype(dtype, device)
    as_device(device)
    return function.Tensor(make(array, dtype=dtype), requires_grad)


def _input_array(input):
    if isinstance(input, function.Tensor):
        return input._data
    array = np.asarray(input)
    _dtypes.check(array.dtype, "input")
    return array


def _dtype(dtype, device):
    as_device(device)
    return _dtypes.as_dtype(dtype, "dtype")


def _float_dtype(dtype, device, name):
    dtype = _dtypes.get_default_dtype() if dtype is None else _dtype(dtype, device)
    as_device(device)
    if dtype.kind != "f":
        raise TypeError(f"{name}: dtype must be floating point, got {dtype}")
    return dtype


def _draw_dtype(dtype):
    # Generator draws float32 and float64 natively; other floats are drawn as float64.
    return dtype if dtype in _dtypes.FLOAT_DTYPES else np.dtype(np.float64)


def random_generator(generator):
    """`generator` checked (a ``numpy.random.Generator``), or cnn's default one for None."""
    if generator is None:
        return default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


def _scalar_dtype(value, name):
    category = _dtypes.scalar_category(value)
    if category is None:
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    return (np.bool_, np.int64, _dtypes.get_default_dtype())[category]


def _number(value, name):
    if isinstance(value, function.Tensor):
        value = value.item()
    if _dtypes.scalar_category(value) in (None, 0):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    return int(value) if isinstance(value, (int, np.integer)) else float(value)


def _shape(size, name):
    """Normalise ``f(2, 3)`` / ``f((2, 3))`` / ``f([2, 3])`` / ``f(Size)`` to a shape tuple."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    shape = []
    for n in size:
        if isinstance(n, function.Tensor):
            n = n.__index__()
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{name}: size must be ints, got {size}")
        if n < 0:
            raise ValueError(f"{name}: size must be non-negative, got {size}")
        shape.append(int(n))
    return tuple(shape)
