"""Argument checks shared by the kernels' plans and geometry, the functional ops and the modules.

Every failure is a ValueError or TypeError whose message names the argument, what was expected
and what was given (SPEC section 8).
"""
import math
import numbers
import operator

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
# Sizes, strides and paddings go into C integers; anything this large is a mistake anyway.
MAX_INT_ARGUMENT = 2**31 - 1


def integer(value, name, minimum=None, maximum=MAX_INT_ARGUMENT):
    """`value` as a Python int (bools and floats refused) in [minimum, maximum]; None means
    no bound on that side."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected an integer, got {value!r}")
    try:
        result = operator.index(value)
    except TypeError:
        raise TypeError(f"{name}: expected an integer, got {type(value).__name__} {value!r}") from None
    if minimum is not None and result < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {result}")
    if maximum is not None and result > maximum:
        raise ValueError(f"{name}: expected an integer <= {maximum}, got {result}")
    return result


def dimension(dim, ndim, name="dim"):
    """`dim` as an index in [0, ndim) (negative counts from the end; a 0-d array has dim 0 or -1,
    as in PyTorch). Out of range raises numpy's AxisError, a ValueError that is also the
    IndexError PyTorch raises there."""
    dim = integer(dim, name)
    size = max(ndim, 1)
    if not -size <= dim < size:
        raise np.exceptions.AxisError(f"{name}: expected a dimension in [{-size}, {size - 1}] "
                                      f"for a {ndim}-d tensor, got {dim}")
    return dim % size


def real_number(value, name, minimum=None):
    """`value` as a finite Python float (bools refused), at least `minimum` when given."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not math.isfinite(value) or (minimum is not None and value < minimum):
        bound = "" if minimum is None else f" >= {minimum}"
        raise ValueError(f"{name}: expected a finite number{bound}, got {value}")
    return value


def flag(value, name):
    """`value` as a bool; only True and False (Python's or NumPy's) are accepted."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {type(value).__name__} {value!r}")
    return bool(value)


def pair(value, name, minimum):
    """An int or a sequence of two ints, as a tuple of two ints each at least `minimum`."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an integer or a pair of integers, got {value!r}")
        return (integer(value[0], name, minimum), integer(value[1], name, minimum))
    number = integer(value, name, minimum)
    return (number, number)


def float_array(array, name, ndim=None):
    """`array` as a C-contiguous float32/float64 ndarray with `ndim` dimensions (a copy only if needed)."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"{name}: expected a NumPy array, got {type(array).__name__}")
    if array.dtype not in FLOAT_DTYPES:
        raise TypeError(f"{name}: expected a float32 or float64 array, got dtype {array.dtype}")
    if ndim is not None and array.ndim != ndim:
        raise ValueError(f"{name}: expected {ndim} dimensions, got shape {array.shape}")
    return np.ascontiguousarray(array)


def shape(value, name, ndim):
    """A tuple of `ndim` non-negative ints."""
    if not isinstance(value, (tuple, list)) or len(value) != ndim:
        raise ValueError(f"{name}: expected a shape of {ndim} integers, got {value!r}")
    return tuple(integer(v, name, 0) for v in value)
