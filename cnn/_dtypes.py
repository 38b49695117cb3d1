"""Element types: PyTorch's dtype names, its type promotion, and the default float dtype.

cnn's dtypes are NumPy's (``cnn.float32 is numpy.float32``), so ``t.dtype == cnn.float32``
and ``t.dtype == numpy.float32`` both hold. Promotion follows PyTorch, not NumPy: an integer
tensor meets a float32 tensor as float32 (NumPy would give float64), a Python float turns an
integer tensor into the default float dtype, and a 0-d tensor does not widen a dimensioned
tensor of the same kind.
"""
import builtins
import numbers

import numpy as np

__all__ = ["bool", "uint8", "int8", "int16", "short", "int32", "int", "int64", "long",
           "float16", "half", "float32", "float", "float64", "double", "get_default_dtype",
           "set_default_dtype", "is_floating_point"]

bool = np.bool_
uint8 = np.uint8
int8 = np.int8
int16 = short = np.int16
int32 = int = np.int32
int64 = long = np.int64
float16 = half = np.float16
float32 = float = np.float32
float64 = double = np.float64

SUPPORTED_KINDS = "biuf"  # bool, signed and unsigned integers, floating point
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# "torch.FloatTensor"-style names (Tensor.type()), by dtype and back.
TENSOR_TYPE_NAMES = {np.dtype(np.float32): "FloatTensor", np.dtype(np.float64): "DoubleTensor",
                     np.dtype(np.float16): "HalfTensor", np.dtype(np.int64): "LongTensor",
                     np.dtype(np.int32): "IntTensor", np.dtype(np.int16): "ShortTensor",
                     np.dtype(np.int8): "CharTensor", np.dtype(np.uint8): "ByteTensor",
                     np.dtype(np.bool_): "BoolTensor"}
_TYPES_BY_NAME = {name: dtype for dtype, name in TENSOR_TYPE_NAMES.items()}

_default = [np.dtype(np.float32)]


def get_default_dtype():
    """Return the dtype of new float tensors (float32 unless :func:`set_default_dtype` changed it).

    Returns:
        numpy.dtype: float32 or float64.
    """
    return _default[0]


def set_default_dtype(d):
    """Set the dtype that Python floats and the float factories give (``torch.set_default_dtype``).

    Args:
        d: ``cnn.float32`` or ``cnn.float64``.

    Raises:
        TypeError: For any other dtype.
    """
    dtype = as_dtype(d, "d")
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"d: only float32 and float64 can be the default dtype, got {dtype}")
    _default[0] = dtype


def is_floating_point(input):
    """Return True if `input` (a Tensor or array) has a floating-point dtype."""
    dtype = getattr(input, "dtype", None)
    return np.dtype(dtype if dtype is not None else np.asarray(input).dtype).kind == "f"


def as_dtype(value, name):
    """`value` (a NumPy dtype or type, a Python type, a name such as ``"float32"`` or
    ``"torch.FloatTensor"``) as a supported ``numpy.dtype``.

    Raises:
        TypeError: Naming `name`, for anything else (complex, object, strings of other
            meaning).
    """
    if isinstance(value, str):
        short = value.rpartition(".")[2]
        if short in _TYPES_BY_NAME:
            return _TYPES_BY_NAME[short]
        value = short
    try:
        dtype = np.dtype(value)
    except TypeError as error:
        raise TypeError(f"{name}: expected a dtype such as cnn.float32, got {value!r} "
                        f"({error})") from None
    check(dtype, name)
    return dtype


def check(dtype, name):
    """Refuse dtypes cnn does not support (complex, strings, objects), naming `name`."""
    if dtype.kind not in SUPPORTED_KINDS:
        raise TypeError(f"{name}: unsupported dtype {dtype}; expected bool, integer or "
                        "floating point")


_CATEGORY = {"b": 0, "u": 1, "i": 1, "f": 2}


def scalar_category(value):
    """0 for bool, 1 for integers, 2 for floats; None if `value` is not a real Python or NumPy
    scalar."""
    if isinstance(value, (builtins.bool, np.bool_)):
        return 0
    if isinstance(value, (numbers.Integral, np.integer)):
        return 1
    if isinstance(value, (numbers.Real, np.floating)):
        return 2
    return None


def result_type(a, b):
    """The dtype PyTorch gives ``a op b`` (each an ndarray or a real scalar; one an ndarray).

    Across kinds (bool < integer < float) the higher kind wins, a scalar of it bringing the
    default float dtype (floats) or int64 (integers). Within one kind arrays promote as NumPy's
    dtypes do, except that a 0-d array never widens a dimensioned one, and a scalar never
    widens an array.
    """
    kind_a, kind_b = _category(a), _category(b)
    if kind_a != kind_b:
        winner, kind = (a, kind_a) if kind_a > kind_b else (b, kind_b)
        if isinstance(winner, np.ndarray):
            return winner.dtype
        return get_default_dtype() if kind == 2 else np.dtype(np.int64 if kind else np.bool_)
    if not isinstance(b, np.ndarray):
        return a.dtype
    if not isinstance(a, np.ndarray):
        return b.dtype
    dimensioned_a, dimensioned_b = a.ndim > 0, b.ndim > 0
    if dimensioned_a != dimensioned_b:
        return a.dtype if dimensioned_a else b.dtype
    return np.promote_types(a.dtype, b.dtype)


def promote_types(a, b):
    """The dtype two dimensioned tensors of dtypes `a` and `b` promote to (PyTorch's rule:
    the higher kind wins; within a kind, NumPy's promotion)."""
    kind_a, kind_b = _CATEGORY[a.kind], _CATEGORY[b.kind]
    if kind_a != kind_b:
        return a if kind_a > kind_b else b
    return np.promote_types(a, b)


def _category(value):
    if isinstance(value, np.ndarray):
        return _CATEGORY[value.dtype.kind]
    return scalar_category(value)
