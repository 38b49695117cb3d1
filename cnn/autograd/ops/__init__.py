"""The Tensor's own differentiable operations, one file per family.

Each op is a :class:`~cnn.autograd.function.Function` whose ``forward`` and ``backward`` sit
side by side and work on NumPy arrays: ``arithmetic`` (broadcasting binary ops, negation,
casts), ``pointwise`` (exp, log, sqrt, ..., clamp, where), ``matmul``, ``reductions`` (sum,
mean, max, min, var), ``shape`` (reshape, permute, indexing, expand, repeat, cat, flip, clone,
gather) and ``writes`` (fill, copy, index assignment: the halves of in-place operations).
An op marked ``inplace_safe`` reads no values of its first argument in backward, so its
in-place form needs no copy of the values it overwrites.
"""
from ._broadcast import elementwise, unbroadcast
from .arithmetic import Add, Cast, Div, Maximum, Minimum, Mul, Neg, Pow, Sub
from .matmul import MatMul
from .pointwise import (Abs, Ceil, Clamp, Cos, Exp, Expm1, Floor, Log, Log1p, Log2, Reciprocal,
                        Round, Rsqrt, Sign, Sin, Sqrt, Trunc, Where)
from .reductions import Max, Mean, Min, Sum, Var
from .shape import Cat, Clone, Expand, Flip, Gather, GetItem, Permute, Repeat, Reshape
from .writes import Copy, Fill, SetItem

__all__ = ["Abs", "Add", "Cast", "Cat", "Ceil", "Clamp", "Clone", "Copy", "Cos", "Div", "Exp",
           "Expand", "Expm1", "Fill", "Flip", "Floor", "Gather", "GetItem", "Log", "Log1p",
           "Log2", "MatMul", "Max", "Maximum", "Mean", "Min", "Minimum", "Mul", "Neg",
           "Permute", "Pow", "Reciprocal", "Repeat", "Reshape", "Round", "Rsqrt", "SetItem",
           "Sign", "Sin", "Sqrt", "Sub", "Sum", "Trunc", "Var", "Where", "elementwise",
           "unbroadcast"]
