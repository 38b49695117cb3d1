"""Elementwise math of one tensor (exp, log, sqrt, abs, ...), clamp and where.

Each unary op names its NumPy function, what its backward reads (the input ``"x"`` or the
output ``"out"``) and the gradient in terms of it, so that forward and backward sit on
neighbouring lines.
"""
import numpy as np

from ..function import Function
from ._broadcast import unbroadcast


class _UnaryOp(Function):
    """``function(x)`` elementwise, with ``grad_input = derivative(grad, saved)``.

    Subclasses set ``function``, ``keeps`` ("x", "out" or "" for nothing) and
    ``derivative(grad, saved)``.
    """

    function = None
    keeps = "x"

    @classmethod
    def forward(cls, ctx, x):
        out = cls.function(x)
        if cls.keeps:
            ctx.save_for_backward(x if cls.keeps == "x" else out)
        return out

    @classmethod
    def backward(cls, ctx, grad):
        saved = ctx.saved_tensors[0] if cls.keeps else None
        return cls.derivative(grad, saved)


def _unary(name, function, keeps, derivative, doc):
    """A _UnaryOp subclass named `name` (one line per op below)."""
    return type(name, (_UnaryOp,), {
        "__doc__": doc, "function": staticmethod(function), "keeps": keeps,
        "derivative": staticmethod(derivative), "__module__": __name__})


def _zero(grad, saved):
    return np.zeros_like(grad)


Exp = _unary("Exp", np.exp, "out", lambda g, out: g * out, "``exp(x)``.")
Log = _unary("Log", np.log, "x", lambda g, x: g / x, "Natural logarithm.")
Log2 = _unary("Log2", np.log2, "x", lambda g, x: g / (x * x.dtype.type(np.log(2))), "``log2(x)``.")
Log1p = _unary("Log1p", np.log1p, "x", lambda g, x: g / (1 + x), "``log(1 + x)``.")
Expm1 = _unary("Expm1", np.expm1, "out", lambda g, out: g * (out + 1), "``exp(x) - 1``.")
Sqrt = _unary("Sqrt", np.sqrt, "out", lambda g, out: g / (2 * out), "Square root.")
Rsqrt = _unary("Rsqrt", lambda x: 1 / np.sqrt(x), "out",
               lambda g, out: g * out * out * out * out.dtype.type(-0.5), "``1 / sqrt(x)``.")
Abs = _unary("Abs", np.abs, "x", lambda g, x: g * np.sign(x), "``|x|`` (gradient 0 at 0).")
Sin = _unary("Sin", np.sin, "x", lambda g, x: g * np.cos(x), "Sine.")
Cos = _unary("Cos", np.cos, "x", lambda g, x: -g * np.sin(x), "Cosine.")
Reciprocal = _unary("Reciprocal", np.reciprocal, "out", lambda g, out: -g * out * out,
                    "``1 / x``.")
# Piecewise constant: the gradient is zero everywhere (as PyTorch's).
Sign = _unary("Sign", np.sign, "", _zero, "-1, 0 or 1 by the sign of x.")
Floor = _unary("Floor", np.floor, "", _zero, "Round down.")
Ceil = _unary("Ceil", np.ceil, "", _zero, "Round up.")
Round = _unary("Round", np.round, "", _zero, "Round half to even.")
Trunc = _unary("Trunc", np.trunc, "", _zero, "Round towards zero.")


class Clamp(Function):
    """``min(max(x, low), high)`` (either bound may be None); the gradient passes where
    ``low <= x <= high``, as in PyTorch."""

    @staticmethod
    def forward(ctx, x, low, high):
        ctx.save_for_backward(x)
        ctx.bounds = (low, high)
        out = x
        if low is not None:
            out = np.maximum(out, low)
        if high is not None:
            out = np.minimum(out, high)
        return out if out is not x else x.copy()

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        low, high = ctx.bounds
        keep = np.ones(x.shape, bool)
        if low is not None:
            keep &= x >= low
        if high is not None:
            keep &= x <= high
        return np.where(keep, grad, 0).astype(grad.dtype, copy=False), None, None


class Where(Function):
    """``where(condition, a, b)``: ``a`` where the condition holds, else ``b`` (broadcast)."""

    @staticmethod
    def forward(ctx, condition, a, b):
        ctx.save_for_backward(condition)
        ctx.shapes = (np.shape(a), np.shape(b))
        return np.where(condition, a, b)

    @staticmethod
    def backward(ctx, grad):
        (condition,) = ctx.saved_tensors
        shape_a, shape_b = ctx.shapes
        _, need_a, need_b = ctx.needs_input_grad
        zero = grad.dtype.type(0)
        return (None,
                unbroadcast(np.where(condition, grad, zero), shape_a) if need_a else None,
                unbroadcast(np.where(condition, zero, grad), shape_b) if need_b else None)
