"""The ``torch.*`` functions on tensors: ``cnn.cat``, ``cnn.stack``, ``cnn.where``,
``cnn.flatten``, ``cnn.max``, ``cnn.sum``, ``cnn.exp``, ``cnn.clamp``, ...

Most are the Tensor method of the same name applied to the first argument
(``cnn.sum(x, 1)`` is ``x.sum(1)``), built below from one table; the ones whose arguments
differ from the method's (``cat``, ``stack``, ``where``, ``is_tensor``) are written out.
"""
import numpy as np

from . import _dtypes
from ._validation import dimension
from .autograd import ops
from .tensor import Tensor, as_tensor

# The Tensor methods that ``torch`` also offers as functions of the tensor.
_METHODS = (
    # shapes
    "reshape", "flatten", "unflatten", "squeeze", "unsqueeze", "permute", "transpose",
    "swapaxes", "t", "narrow", "select", "chunk", "split", "unbind", "flip", "gather",
    "index_select", "masked_select", "clone", "numel",
    # math
    "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide",
    "floor_divide", "remainder", "pow", "neg", "negative", "square", "lerp", "addcmul",
    "addcdiv", "exp", "log", "log2", "log1p", "expm1", "sqrt", "rsqrt", "reciprocal", "sin",
    "cos", "abs", "absolute", "sign", "floor", "ceil", "round", "trunc", "clamp", "clip",
    "clamp_min", "clamp_max", "maximum", "minimum", "masked_fill", "eq", "ne", "lt", "le",
    "gt", "ge", "greater", "greater_equal", "less", "less_equal", "not_equal", "equal",
    "isclose", "allclose", "isnan", "isinf", "isfinite", "logical_not", "logical_and",
    "logical_or", "logical_xor", "matmul", "mm", "bmm", "mv", "dot", "outer",
    # reductions
    "sum", "mean", "max", "min", "amax", "amin", "argmax", "argmin", "var", "std", "norm",
    "logsumexp", "all", "any", "count_nonzero", "nonzero", "topk", "sort", "argsort",
)


def _method_function(name):
    method = getattr(Tensor, name)

    def function(input, *args, **kwargs):
        return getattr(_tensor(input, name), name)(*args, **kwargs)

    function.__name__ = function.__qualname__ = name
    function.__module__ = __name__
    function.__doc__ = (f"``{name}(input, ...)``: ``input.{name}(...)``"
                        f" (:meth:`cnn.Tensor.{name}`).\n\n{method.__doc__ or ''}")
    return function


def _tensor(value, name):
    """The tensor argument of a function: a Tensor, or a number or array made into one."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (np.ndarray, np.generic)) or _dtypes.scalar_category(value) is not None:
        return as_tensor(value)
    raise TypeError(f"{name}(): argument 'input' must be Tensor, not {type(value).__name__}")


globals().update({name: _method_function(name) for name in _METHODS})


def is_tensor(obj):
    """Return True if ``obj`` is a cnn Tensor (or Parameter)."""
    return isinstance(obj, Tensor)


def cat(tensors, dim=0):
    """Concatenate tensors of the same shape except along ``dim``; differentiable.

    Args:
        tensors (sequence of Tensor): At least one; 1-D empty tensors are skipped (as PyTorch
            does).
        dim (int): The dim to join along.

    Returns:
        Tensor: The tensors joined, in the promoted dtype.
    """
    tensors = _tensor_sequence(tensors, "cat")
    kept = [t for t in tensors if t._data.shape != (0,)] or tensors[:1]
    ndim = kept[0]._data.ndim
    if ndim == 0:
        raise ValueError("cat: zero-dimensional tensor cannot be concatenated")
    dim = dimension(dim, ndim)
    shape = kept[0]._data.shape
    for position, t in enumerate(kept):
        other = t._data.shape
        if len(other) != ndim or other[:dim] + other[dim + 1:] != shape[:dim] + shape[dim + 1:]:
            raise ValueError(f"cat: sizes of tensors must match except in dimension {dim}; "
                             f"tensor 0 has shape {shape}, tensor {position} has shape {other}")
    dtype = kept[0]._data.dtype
    for t in kept[1:]:
        dtype = _dtypes.promote_types(dtype, t._data.dtype)
    return ops.Cat.apply(*[t if t._data.dtype == dtype else t.to(dtype) for t in kept], dim=dim)


concat = concatenate = cat


def stack(tensors, dim=0):
    """Join tensors of one shape along a new dim ``dim``; differentiable."""
    tensors = _tensor_sequence(tensors, "stack")
    shape = tensors[0]._data.shape
    for position, t in enumerate(tensors):
        if t._data.shape != shape:
            raise ValueError(f"stack: expects each tensor to be equal size, but got {shape} at "
                             f"entry 0 and {t._data.shape} at entry {position}")
    dim = dimension(dim, len(shape) + 1)
    return cat([t.unsqueeze(dim) for t in tensors], dim)


def where(condition, input=None, other=None):
    """``input`` where ``condition`` holds, else ``other`` (broadcast; either may be a number),
    or, with the condition alone, the indices where it holds (a tuple of 1-D int64 tensors)."""
    if input is None and other is None:
        return _tensor(condition, "where").nonzero(as_tuple=True)
    if input is None or other is None:
        raise TypeError("where: expected both input and other, or neither")
    if not isinstance(input, Tensor):
        if not isinstance(other, Tensor):
            other = _tensor(other, "where")
        input = other.new_full((), input) if _dtypes.scalar_category(input) is not None \
            else _tensor(input, "where")
    return input.where(condition, other)


def _tensor_sequence(tensors, name):
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{name}(): argument 'tensors' must be a tuple or list of Tensors, not "
                        f"{type(tensors).__name__}")
    if not tensors:
        raise ValueError(f"{name}(): expected a non-empty list of Tensors")
    for position, t in enumerate(tensors):
        if not isinstance(t, Tensor):
            raise TypeError(f"{name}(): expected Tensor as element {position} in argument 0, "
                            f"but got {type(t).__name__}")
    return list(tensors)


__all__ = sorted(_METHODS) + ["cat", "concat", "concatenate", "is_tensor", "stack", "where"]
