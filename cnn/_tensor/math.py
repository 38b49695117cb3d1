"""The Tensor's math: arithmetic with PyTorch's type promotion, elementwise functions,
clamps and selections, comparisons and matrix products.

Activations that ``torch.nn.functional`` also offers (``relu``, ``sigmoid``, ``tanh``,
``softmax``, ``log_softmax``) are attached to the Tensor by ``cnn.nn.functional``, their home.
"""
import numpy as np

from .. import _dtypes
from ..autograd import function, ops
from ._args import tensor_class


def binary_operands(tensor, other, true_division=False):
    """``(tensor, other)`` ready to meet in a binary op, cast to PyTorch's result dtype.

    An integer tensor meets a float one, or a Python float, as float (the float tensor's dtype,
    or the default float dtype); a 0-d tensor or a scalar does not widen a dimensioned tensor
    of its kind; true division of integers gives the default float dtype. Casts of tensors
    are differentiable.

    Returns:
        (Tensor, Tensor or array or scalar): The operands, in the order given.
    """
    Tensor = function.Tensor
    array = tensor._data
    # The common cases first: they run for every arithmetic operator.
    if isinstance(other, Tensor):
        other_array = other._data
        if other_array.dtype == array.dtype and (array.dtype.kind == "f" or not true_division):
            return tensor, other
        dtype = _dtypes.result_type(array, other_array)
    elif other.__class__ is float and array.dtype.kind == "f":
        # NumPy would let a float64 scalar widen a float32 tensor; PyTorch does not.
        return tensor, array.dtype.type(other)
    elif _dtypes.scalar_category(other) is not None:
        dtype = _dtypes.result_type(array, other)
    else:
        other = np.asarray(other)
        _dtypes.check(other.dtype, "other")
        dtype = _dtypes.result_type(array, other)
    if true_division and dtype.kind != "f":
        dtype = _dtypes.get_default_dtype()
    if array.dtype != dtype:
        tensor = tensor.to(dtype)
    if isinstance(other, Tensor):
        if other._data.dtype != dtype:
            other = other.to(dtype)
    elif isinstance(other, np.ndarray):
        other = other.astype(dtype, copy=False)
    elif dtype.kind == "f":
        # NumPy would let a float64 scalar widen a float32 tensor; PyTorch does not.
        other = dtype.type(other)
    return tensor, other


def _tensor(value, name):
    """`value` as a Tensor (numbers and arrays wrapped, without a graph)."""
    Tensor = tensor_class()
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    _dtypes.check(array.dtype, name)
    return Tensor(array)


def _bound(value, name, dtype):
    """A clamp bound: None, a number (in the tensor's float dtype), or a Tensor."""
    Tensor = tensor_class()
    if value is None or isinstance(value, Tensor):
        return value
    if _dtypes.scalar_category(value) is None:
        raise TypeError(f"{name}: expected a number, a Tensor or None, got "
                        f"{type(value).__name__} {value!r}")
    return dtype.type(value) if dtype.kind == "f" else value


class MathMethods:
    """Mixin of ``cnn.Tensor``: arithmetic, elementwise functions, comparisons, products."""

    __slots__ = ()

    # ***** arithmetic as methods *****

    def add(self, other, *, alpha=1):
        """Return ``self + alpha * other``."""
        return self + (other if alpha == 1 else other * alpha)

    def sub(self, other, *, alpha=1):
        """Return ``self - alpha * other``."""
        return self - (other if alpha == 1 else other * alpha)

    subtract = sub

    def mul(self, other):
        """Return ``self * other``."""
        return self * other

    multiply = mul

    def div(self, other, *, rounding_mode=None):
        """Return ``self / other``; ``rounding_mode`` ``"trunc"`` or ``"floor"`` rounds the
        quotient (integers then stay integers; the rounded quotient has a zero gradient)."""
        if rounding_mode is None:
            return self / other
        if rounding_mode not in ("trunc", "floor"):
            raise ValueError(f"rounding_mode: expected None, 'trunc' or 'floor', got "
                             f"{rounding_mode!r}")
        a, b = binary_operands(self, other)
        if a._data.dtype.kind != "f":
            b_array = b._data if isinstance(b, tensor_class()) else b
            if np.any(np.asarray(b_array) == 0):
                raise ZeroDivisionError("integer division by zero")
            quotient = np.floor_divide(a._data, b_array)
            if rounding_mode == "trunc":
                quotient = np.trunc(np.true_divide(a._data, b_array)).astype(a._data.dtype)
            return tensor_class()(quotient)
        quotient = a / b
        return quotient.floor() if rounding_mode == "floor" else quotient.trunc()

    divide = div

    def true_divide(self, other):
        """Return ``self / other`` (floats, even for integer tensors)."""
        return self / other

    def floor_divide(self, other):
        """Return ``floor(self / other)``."""
        return self.div(other, rounding_mode="floor")

    def remainder(self, other):
        """Return ``self - floor(self / other) * other`` (the sign of ``other``, as Python's %)."""
        a, b = binary_operands(self, other)
        if a._data.dtype.kind != "f":
            b_array = b._data if isinstance(b, tensor_class()) else b
            return tensor_class()(np.remainder(a._data, b_array))
        return a - (a / b).floor() * b

    def pow(self, exponent):
        """Return ``self ** exponent``."""
        return self ** exponent

    def neg(self):
        """Return ``-self``."""
        return ops.Neg.apply(self)

    negative = neg

    def square(self):
        """Return ``self * self``."""
        return self * self

    def lerp(self, end, weight):
        """Return ``self + weight * (end - self)``."""
        return self + (end - self) * weight

    def addcmul(self, tensor1, tensor2, *, value=1):
        """Return ``self + value * tensor1 * tensor2``."""
        return self + tensor1 * tensor2 * value

    def addcdiv(self, tensor1, tensor2, *, value=1):
        """Return ``self + value * tensor1 / tensor2``."""
        return self + tensor1 / tensor2 * value

    # ***** elementwise functions *****

    def exp(self):
        """Return ``e ** self``, elementwise."""
        return ops.Exp.apply(_float(self))

    def log(self):
        """Return the natural logarithm, elementwise."""
        return ops.Log.apply(_float(self))

    def log2(self):
        """Return the base-2 logarithm, elementwise."""
        return ops.Log2.apply(_float(self))

    def log1p(self):
        """Return ``log(1 + self)``, accurate for small values."""
        return ops.Log1p.apply(_float(self))

    def expm1(self):
        """Return ``exp(self) - 1``, accurate for small values."""
        return ops.Expm1.apply(_float(self))

    def sqrt(self):
        """Return the square root, elementwise."""
        return ops.Sqrt.apply(_float(self))

    def rsqrt(self):
        """Return ``1 / sqrt(self)``, elementwise."""
        return ops.Rsqrt.apply(_float(self))

    def reciprocal(self):
        """Return ``1 / self``, elementwise."""
        return ops.Reciprocal.apply(_float(self))

    def sin(self):
        """Return the sine, elementwise."""
        return ops.Sin.apply(_float(self))

    def cos(self):
        """Return the cosine, elementwise."""
        return ops.Cos.apply(_float(self))

    def abs(self):
        """Return ``|self|``, elementwise (the gradient at 0 is 0)."""
        return ops.Abs.apply(self)

    absolute = abs

    def sign(self):
        """Return -1, 0 or 1 by the sign of each element (zero gradient)."""
        return ops.Sign.apply(self)

    def floor(self):
        """Round down, elementwise (zero gradient)."""
        return ops.Floor.apply(self)

    def ceil(self):
        """Round up, elementwise (zero gradient)."""
        return ops.Ceil.apply(self)

    def round(self, decimals=0):
        """Round half to even, elementwise, to ``decimals`` places (zero gradient)."""
        if decimals:
            scale = 10.0 ** decimals
            return (self * scale).round() / scale
        return ops.Round.apply(self)

    def trunc(self):
        """Round towards zero, elementwise (zero gradient)."""
        return ops.Trunc.apply(self)

    # ***** clamps and selections *****

    def clamp(self, min=None, max=None):
        """Limit every element to ``[min, max]`` (either may be None; numbers or tensors).

        The gradient passes where ``min <= self <= max``; a tensor bound gets it where it
        clamped.
        """
        if min is None and max is None:
            raise ValueError("clamp: at least one of min and max must not be None")
        dtype = self._data.dtype
        low, high = _bound(min, "min", dtype), _bound(max, "max", dtype)
        Tensor = tensor_class()
        if isinstance(low, Tensor) or isinstance(high, Tensor):
            # PyTorch's gradients for tensor bounds: the bound gets it where it clamped.
            out = self
            if low is not None:
                out = low.where(out < low, out) if isinstance(low, Tensor) else out.clamp(low)
            if high is not None:
                out = high.where(out > high, out) if isinstance(high, Tensor) \
                    else out.clamp(max=high)
            return out
        if dtype.kind != "f" and any(isinstance(b, float) for b in (low, high)):
            return self.to(_dtypes.get_default_dtype()).clamp(min, max)
        return ops.Clamp.apply(self, low, high)

    clip = clamp

    def clamp_min(self, min):
        """Return ``clamp(min=min)``."""
        return self.clamp(min=min)

    def clamp_max(self, max):
        """Return ``clamp(max=max)``."""
        return self.clamp(max=max)

    def maximum(self, other):
        """Return the elementwise maximum (ties share the gradient equally)."""
        a, b = binary_operands(self, other)
        return ops.Maximum.apply(a, b)

    def minimum(self, other):
        """Return the elementwise minimum (ties share the gradient equally)."""
        a, b = binary_operands(self, other)
        return ops.Minimum.apply(a, b)

    def where(self, condition, other):
        """Return ``self`` where ``condition`` holds, else ``other`` (``torch.where(condition,
        self, other)``)."""
        condition = _condition(condition)
        a, b = binary_operands(self, other)
        return ops.Where.apply(condition, a, b)

    def masked_fill(self, mask, value):
        """Return a copy with ``value`` where ``mask`` (bool, broadcastable) holds."""
        mask = _condition(mask, "mask")
        value = value.item() if isinstance(value, tensor_class()) and value.ndim == 0 else value
        a, b = binary_operands(self, value)
        return ops.Where.apply(mask, b, a)

    # ***** comparisons and tests (no gradient) *****

    def eq(self, other):
        """Return ``self == other`` elementwise (bool)."""
        return self == other

    def ne(self, other):
        """Return ``self != other`` elementwise (bool)."""
        return self != other

    not_equal = ne

    def lt(self, other):
        """Return ``self < other`` elementwise (bool)."""
        return self < other

    less = lt

    def le(self, other):
        """Return ``self <= other`` elementwise (bool)."""
        return self <= other

    less_equal = le

    def gt(self, other):
        """Return ``self > other`` elementwise (bool)."""
        return self > other

    greater = gt

    def ge(self, other):
        """Return ``self >= other`` elementwise (bool)."""
        return self >= other

    greater_equal = ge

    def equal(self, other):
        """Return True if ``other`` has this shape and the same values."""
        other = _tensor(other, "other")
        return self._data.shape == other._data.shape and bool(np.array_equal(self._data,
                                                                            other._data))

    def isclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """Return ``|self - other| <= atol + rtol * |other|`` elementwise (bool)."""
        other = _tensor(other, "other")
        return tensor_class()(np.isclose(self._data, other._data, rtol, atol, equal_nan))

    def allclose(self, other, rtol=1e-05, atol=1e-08, equal_nan=False):
        """Return True if every element is close to ``other``'s (see :meth:`isclose`)."""
        return bool(self.isclose(other, rtol, atol, equal_nan)._data.all())

    def isnan(self):
        """Return where the elements are NaN (bool)."""
        return tensor_class()(np.isnan(self._data))

    def isinf(self):
        """Return where the elements are infinite (bool)."""
        return tensor_class()(np.isinf(self._data))

    def isfinite(self):
        """Return where the elements are finite (bool)."""
        return tensor_class()(np.isfinite(self._data))

    def logical_not(self):
        """Return ``not self`` elementwise (bool)."""
        return tensor_class()(np.logical_not(self._data))

    def logical_and(self, other):
        """Return ``self and other`` elementwise (bool)."""
        return tensor_class()(np.logical_and(self._data, _tensor(other, "other")._data))

    def logical_or(self, other):
        """Return ``self or other`` elementwise (bool)."""
        return tensor_class()(np.logical_or(self._data, _tensor(other, "other")._data))

    def logical_xor(self, other):
        """Return ``self xor other`` elementwise (bool)."""
        return tensor_class()(np.logical_xor(self._data, _tensor(other, "other")._data))

    def is_floating_point(self):
        """Return True if the dtype is floating point."""
        return self._data.dtype.kind == "f"

    # ***** matrix products *****

    def matmul(self, other):
        """Return the matrix product with NumPy's rules (vectors, batches broadcast)."""
        a, b = binary_operands(self, _tensor(other, "other"))
        return ops.MatMul.apply(a, b)

    def mm(self, mat2):
        """Return the product of two matrices (2-D tensors)."""
        _check_ndim(self, 2, "input")
        _check_ndim(mat2, 2, "mat2")
        return self.matmul(mat2)

    def bmm(self, mat2):
        """Return the products of two batches of matrices (3-D tensors)."""
        _check_ndim(self, 3, "input")
        _check_ndim(mat2, 3, "mat2")
        if self._data.shape[0] != np.shape(mat2)[0]:
            raise ValueError(f"bmm: batch sizes differ: {self._data.shape[0]} and "
                             f"{np.shape(mat2)[0]}")
        return self.matmul(mat2)

    def mv(self, vec):
        """Return the product of a matrix and a vector."""
        _check_ndim(self, 2, "input")
        _check_ndim(vec, 1, "vec")
        return self.matmul(vec)

    def dot(self, other):
        """Return the dot product of two 1-D tensors."""
        _check_ndim(self, 1, "input")
        _check_ndim(other, 1, "other")
        return self.matmul(other)

    def outer(self, vec2):
        """Return the outer product of two 1-D tensors."""
        _check_ndim(self, 1, "input")
        _check_ndim(vec2, 1, "vec2")
        return self.unsqueeze(1) * _tensor(vec2, "vec2").unsqueeze(0)


def _float(tensor):
    """Integer tensors meet float functions as the default float dtype (PyTorch's rule)."""
    return tensor if tensor._data.dtype.kind == "f" else tensor.to(_dtypes.get_default_dtype())


def _condition(condition, name="condition"):
    array = condition._data if isinstance(condition, tensor_class()) else np.asarray(condition)
    if array.dtype.kind != "b":
        raise TypeError(f"{name}: expected a bool tensor, got dtype {array.dtype}")
    return array


def _check_ndim(value, ndim, name):
    if np.ndim(value._data if isinstance(value, tensor_class()) else value) != ndim:
        raise ValueError(f"{name}: expected a {ndim}-D tensor, got shape {np.shape(value)}")
