"""Broadcasting binary arithmetic, negation and casts.

Binary ops broadcast like NumPy; ``backward`` sums each operand's gradient back to the
operand's shape. A non-Tensor operand (a scalar or a constant array) gets no gradient:
``ctx.needs_input_grad`` is False for it. Each op saves only the operands its needed
gradients read, so that modifying an operand in place afterwards is refused only where the
gradient would really be wrong.
"""
import numpy as np

from ..function import Function
from ._broadcast import elementwise, unbroadcast


class _BinaryOp(Function):
    """A broadcasting elementwise op ``ufunc(a, b)``.

    Subclasses name the ufunc and give the gradient for each operand before it is summed
    back to the operand's shape: ``grad_a(grad, a, b)`` and ``grad_b(grad, a, b)``, and which
    operands each reads (``grad_a_reads``, ``grad_b_reads``: strings of "a" and "b").
    """

    ufunc = None
    grad_a_reads = "ab"
    grad_b_reads = "ab"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # Which operands to save, by which gradients are needed: {(need_a, need_b): (a?, b?)}.
        cls._saves = {
            (need_a, need_b): tuple(name in (cls.grad_a_reads if need_a else "")
                                    + (cls.grad_b_reads if need_b else "") for name in "ab")
            for need_a in (False, True) for need_b in (False, True)}

    @classmethod
    def forward(cls, ctx, a, b):
        inputs = ctx._inputs
        need_a, need_b = inputs[0] is not None, inputs[1] is not None
        if need_a or need_b:  # recorded (an unrecorded ctx has no inputs)
            save_a, save_b = cls._saves[need_a, need_b]
            ctx.save_for_backward(a if save_a else None, b if save_b else None,
                                  a.shape if a.__class__ is np.ndarray else np.shape(a),
                                  b.shape if b.__class__ is np.ndarray else np.shape(b))
        return elementwise(cls.ufunc, a, b)

    @classmethod
    def backward(cls, ctx, grad):
        a, b, shape_a, shape_b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (unbroadcast(cls.grad_a(grad, a, b), shape_a) if need_a else None,
                unbroadcast(cls.grad_b(grad, a, b), shape_b) if need_b else None)


class Add(_BinaryOp):
    """``a + b``."""

    ufunc = np.add
    grad_a_reads = grad_b_reads = ""
    # Its backward reads no values, so an in-place add needs no copy of the old values.
    inplace_safe = True
    grad_a = staticmethod(lambda grad, a, b: grad)
    grad_b = staticmethod(lambda grad, a, b: grad)


class Sub(_BinaryOp):
    """``a - b``."""

    ufunc = np.subtract
    grad_a_reads = grad_b_reads = ""
    inplace_safe = True
    grad_a = staticmethod(lambda grad, a, b: grad)
    grad_b = staticmethod(lambda grad, a, b: -grad)


class Mul(_BinaryOp):
    """``a * b``."""

    ufunc = np.multiply
    grad_a_reads, grad_b_reads = "b", "a"
    grad_a = staticmethod(lambda grad, a, b: grad * b)
    grad_b = staticmethod(lambda grad, a, b: grad * a)


class Div(_BinaryOp):
    """``a / b``."""

    ufunc = np.divide
    grad_a_reads = "b"
    grad_a = staticmethod(lambda grad, a, b: grad / b)
    grad_b = staticmethod(lambda grad, a, b: -grad * a / (b * b))


class Pow(_BinaryOp):
    """``a ** b``; either may be a tensor (the gradient for ``b`` needs ``a > 0``)."""

    ufunc = np.power
    grad_a = staticmethod(lambda grad, a, b: grad * _power_slope(a, b))
    grad_b = staticmethod(lambda grad, a, b: grad * _power_log(a, b))


def _power_slope(a, b):
    """d(a ** b)/da = b * a ** (b - 1), and 0 where b == 0 (as PyTorch: no 0 * inf)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b == 0, 0, b * np.power(a, b - 1))


def _power_log(a, b):
    """d(a ** b)/db = a ** b * log(a), and 0 where a == 0 and b >= 0 (as PyTorch)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where((a == 0) & (b >= 0), 0, np.power(a, b) * np.log(a))


class Maximum(_BinaryOp):
    """``maximum(a, b)``; where they are equal each gets half the gradient (PyTorch's rule)."""

    ufunc = np.maximum
    grad_a = staticmethod(lambda grad, a, b: grad * _share(a, b))
    grad_b = staticmethod(lambda grad, a, b: grad * _share(b, a))


class Minimum(_BinaryOp):
    """``minimum(a, b)``; where they are equal each gets half the gradient (PyTorch's rule)."""

    ufunc = np.minimum
    grad_a = staticmethod(lambda grad, a, b: grad * _share(b, a))
    grad_b = staticmethod(lambda grad, a, b: grad * _share(a, b))


def _share(winner, other):
    """1 where `winner` > `other`, 0.5 where equal, 0 elsewhere (in the floating dtype)."""
    dtype = np.result_type(winner, other)
    return (winner > other).astype(dtype) + (winner == other).astype(dtype) * dtype.type(0.5)


class Neg(Function):
    """``-x``."""

    inplace_safe = True

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Cast(Function):
    """``x.astype(dtype)``; the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None
