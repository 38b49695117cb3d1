"""The Tensor's in-place operations: ``add_``, ``+=``, ``fill_``, ``copy_``, ``normal_``, ...

Each writes into the tensor's own memory and returns the tensor, with PyTorch's rules
(:mod:`cnn.autograd.inplace`): allowed under ``no_grad()`` on anything writable, recorded when
grad mode is on, refused on a leaf that requires grad outside ``no_grad()``. Operations whose
out-of-place form is a composition (``addcmul_``, ``lerp_``, ``masked_fill_``, ...) compute it
and :meth:`copy_` the result in.
"""
import numpy as np

from .. import _dtypes
from ..autograd import ops
from ..autograd.inplace import apply_inplace, write_inplace
from ..creation import random_generator
from ._args import tensor_class


def _operand(tensor, other, alpha, name):
    """`other` (times `alpha`) ready to be combined into `tensor`."""
    Tensor = tensor_class()
    if alpha != 1:
        if _dtypes.scalar_category(alpha) is None:
            raise TypeError(f"{name}: alpha must be a number, got {type(alpha).__name__}")
        other = other * alpha
    if isinstance(other, Tensor):
        return other
    if _dtypes.scalar_category(other) is not None:
        dtype = tensor._data.dtype
        # A Python float meets a float tensor in its dtype (PyTorch computes in it).
        return dtype.type(other) if dtype.kind == "f" else other
    other = np.asarray(other)
    _dtypes.check(other.dtype, "other")
    return other


class InPlaceMethods:
    """Mixin of ``cnn.Tensor``: in-place operations."""

    __slots__ = ()

    # ***** arithmetic *****

    def add_(self, other, *, alpha=1):
        """``self += alpha * other`` in place; returns self."""
        return apply_inplace(ops.Add, self, _operand(self, other, alpha, "add_"), name="add_")

    def sub_(self, other, *, alpha=1):
        """``self -= alpha * other`` in place; returns self."""
        return apply_inplace(ops.Sub, self, _operand(self, other, alpha, "sub_"), name="sub_")

    subtract_ = sub_

    def mul_(self, other):
        """``self *= other`` in place; returns self."""
        return apply_inplace(ops.Mul, self, _operand(self, other, 1, "mul_"), name="mul_")

    multiply_ = mul_

    def div_(self, other, *, rounding_mode=None):
        """``self /= other`` in place (``rounding_mode`` as :meth:`div`); returns self."""
        if rounding_mode is not None:
            return self.copy_(self.div(other, rounding_mode=rounding_mode))
        return apply_inplace(ops.Div, self, _operand(self, other, 1, "div_"), name="div_")

    divide_ = div_

    def pow_(self, exponent):
        """``self **= exponent`` in place; returns self."""
        return apply_inplace(ops.Pow, self, _operand(self, exponent, 1, "pow_"), name="pow_")

    def addcmul_(self, tensor1, tensor2, *, value=1):
        """``self += value * tensor1 * tensor2`` in place; returns self."""
        return self.add_(tensor1 * tensor2, alpha=value)

    def addcdiv_(self, tensor1, tensor2, *, value=1):
        """``self += value * tensor1 / tensor2`` in place; returns self."""
        return self.add_(tensor1 / tensor2, alpha=value)

    def lerp_(self, end, weight):
        """``self += weight * (end - self)`` in place; returns self."""
        return self.add_((end - self) * weight)

    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __ipow__(self, exponent):
        return self.pow_(exponent)

    def __ifloordiv__(self, other):
        return self.div_(other, rounding_mode="floor")

    def __imod__(self, other):
        return self.copy_(self.remainder(other))

    def __iand__(self, other):
        return self.copy_(self & other)

    def __ior__(self, other):
        return self.copy_(self | other)

    def __ixor__(self, other):
        return self.copy_(self ^ other)

    # ***** elementwise functions *****

    def neg_(self):
        """Negate in place; returns self."""
        return apply_inplace(ops.Neg, self, name="neg_")

    def abs_(self):
        """``|self|`` in place; returns self."""
        return apply_inplace(ops.Abs, self, name="abs_")

    def sqrt_(self):
        """Square root in place; returns self."""
        return apply_inplace(ops.Sqrt, self, name="sqrt_")

    def exp_(self):
        """``e ** self`` in place; returns self."""
        return apply_inplace(ops.Exp, self, name="exp_")

    def log_(self):
        """Natural logarithm in place; returns self."""
        return apply_inplace(ops.Log, self, name="log_")

    def reciprocal_(self):
        """``1 / self`` in place; returns self."""
        return apply_inplace(ops.Reciprocal, self, name="reciprocal_")

    def floor_(self):
        """Round down in place; returns self."""
        return apply_inplace(ops.Floor, self, name="floor_")

    def ceil_(self):
        """Round up in place; returns self."""
        return apply_inplace(ops.Ceil, self, name="ceil_")

    def round_(self):
        """Round half to even in place; returns self."""
        return apply_inplace(ops.Round, self, name="round_")

    def trunc_(self):
        """Round towards zero in place; returns self."""
        return apply_inplace(ops.Trunc, self, name="trunc_")

    def clamp_(self, min=None, max=None):
        """Limit every element to ``[min, max]`` in place (see :meth:`clamp`); returns self."""
        Tensor = tensor_class()
        if isinstance(min, Tensor) or isinstance(max, Tensor) or self._data.dtype.kind != "f":
            return self.copy_(self.clamp(min, max))
        if min is None and max is None:
            raise ValueError("clamp_: at least one of min and max must not be None")
        low = None if min is None else _operand(self, min, 1, "clamp_")
        high = None if max is None else _operand(self, max, 1, "clamp_")
        return apply_inplace(ops.Clamp, self, low, high, name="clamp_")

    clip_ = clamp_

    def clamp_min_(self, min):
        """``clamp_(min=min)``."""
        return self.clamp_(min=min)

    def clamp_max_(self, max):
        """``clamp_(max=max)``."""
        return self.clamp_(max=max)

    def masked_fill_(self, mask, value):
        """Set the elements where ``mask`` (bool, broadcastable) holds to ``value``; returns
        self."""
        return self.copy_(self.masked_fill(mask, value))

    # ***** fills and copies *****

    def zero_(self):
        """Fill with zeros in place; returns self."""
        return self.fill_(0)

    def fill_(self, value):
        """Fill with ``value`` (a number or a one-element tensor) in place; returns self."""
        Tensor = tensor_class()
        if isinstance(value, Tensor):
            if value._data.size != 1:
                raise ValueError(f"fill_: only supports 0-dimension value tensor but got "
                                 f"tensor with {value._data.ndim} dimensions")
            if not value._requires_grad:
                value = value._data.reshape(()).item()
            else:
                value = value.reshape(())
        elif _dtypes.scalar_category(value) is None:
            raise TypeError(f"fill_: expected a number, got {type(value).__name__} {value!r}")
        return apply_inplace(ops.Fill, self, value, name="fill_")

    def copy_(self, src, non_blocking=False):
        """Copy the values of ``src`` (broadcast to this shape, cast to this dtype) into this
        tensor; the gradient flows to ``src``. Returns self."""
        Tensor = tensor_class()
        if not isinstance(src, Tensor):
            src = np.asarray(src)
            _dtypes.check(src.dtype, "src")
        return apply_inplace(ops.Copy, self, src, name="copy_")

    def normal_(self, mean=0.0, std=1.0, *, generator=None):
        """Fill with samples of N(mean, std**2) from cnn's generator; returns self."""
        values = random_generator(generator).normal(mean, std, self._data.shape)
        return write_inplace(self, values.astype(self._data.dtype), "normal_")

    def uniform_(self, *bounds, generator=None, **named):
        """Fill with samples uniform on [from, to) (default [0, 1)) from cnn's generator;
        returns self. Called as ``uniform_(a, b)`` or ``uniform_(**{"from": a, "to": b})``."""
        low = named.pop("from", bounds[0] if bounds else 0.0)
        high = named.pop("to", bounds[1] if len(bounds) > 1 else 1.0)
        if named or len(bounds) > 2:
            raise TypeError(f"uniform_: unexpected arguments {sorted(named) or bounds[2:]}")
        values = random_generator(generator).uniform(low, high, self._data.shape)
        return write_inplace(self, values.astype(self._data.dtype), "uniform_")
