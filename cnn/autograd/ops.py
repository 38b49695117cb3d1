"""The Tensor's own differentiable operations.

Each op is a :class:`~cnn.autograd.function.Function` whose ``forward`` and ``backward`` sit
side by side and work on NumPy arrays. Binary ops broadcast like NumPy; ``backward`` sums each
operand's gradient back to the operand's shape with :func:`_unbroadcast`. A non-Tensor operand
(a scalar or a constant array) gets no gradient: ``ctx.needs_input_grad`` is False for it.
"""
import numpy as np

from .function import Function


def _unbroadcast(grad, shape):
    """Sum a broadcast gradient back to an operand's shape.

    Args:
        grad: The gradient of a broadcast result, e.g. of shape (N, C, H, W).
        shape: The operand's shape, e.g. (C, 1, 1).

    Returns:
        numpy.ndarray: ``grad`` summed over the leading axes broadcasting added and over
        the axes it stretched from 1, of shape ``shape``.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple([axis for axis, size in enumerate(shape)
                       if size == 1 and grad.shape[axis] != 1])
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _elementwise(ufunc, a, b):
    try:
        return ufunc(a, b)
    except ValueError:
        raise ValueError(f"{ufunc.__name__}: operands of shapes {np.shape(a)} and {np.shape(b)} "
                         "cannot be broadcast together") from None


def _expand_reduced(grad, shape, dim, keepdim):
    """Broadcast the gradient of a reduction over ``dim`` back to the input's ``shape``."""
    if dim is not None and not keepdim:
        grad = grad.reshape(_kept_shape(shape, dim))
    # Filling a new array is several times faster than np.broadcast_to on small tensors,
    # and gives the next backward a writable, contiguous gradient.
    expanded = np.empty(shape, grad.dtype)
    expanded[...] = grad
    return expanded


def _kept_shape(shape, dim):
    """The shape of a reduction over ``dim`` (an int or a tuple) with keepdim=True."""
    axes = range(len(shape))
    reduced = {axes[axis] for axis in (dim if isinstance(dim, tuple) else (dim,))}
    return tuple([1 if axis in reduced else size for axis, size in enumerate(shape)])


# ***** elementwise arithmetic *****

class _BinaryOp(Function):
    """A broadcasting elementwise op ``ufunc(a, b)``.

    Subclasses name the ufunc and give the gradient for each operand before it is summed
    back to the operand's shape: ``grad_a(grad, a, b)`` and ``grad_b(grad, a, b)``.
    """

    ufunc = None

    @classmethod
    def forward(cls, ctx, a, b):
        ctx.save_for_backward(a, b)
        return _elementwise(cls.ufunc, a, b)

    @classmethod
    def backward(cls, ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (_unbroadcast(cls.grad_a(grad, a, b), a.shape) if need_a else None,
                _unbroadcast(cls.grad_b(grad, a, b), b.shape) if need_b else None)


class Add(_BinaryOp):
    """``a + b``."""

    ufunc = np.add
    grad_a = staticmethod(lambda grad, a, b: grad)
    grad_b = staticmethod(lambda grad, a, b: grad)


class Sub(_BinaryOp):
    """``a - b``."""

    ufunc = np.subtract
    grad_a = staticmethod(lambda grad, a, b: grad)
    grad_b = staticmethod(lambda grad, a, b: -grad)


class Mul(_BinaryOp):
    """``a * b``."""

    ufunc = np.multiply
    grad_a = staticmethod(lambda grad, a, b: grad * b)
    grad_b = staticmethod(lambda grad, a, b: grad * a)


class Div(_BinaryOp):
    """``a / b``."""

    ufunc = np.divide
    grad_a = staticmethod(lambda grad, a, b: grad / b)
    grad_b = staticmethod(lambda grad, a, b: -grad * a / (b * b))


class Pow(_BinaryOp):
    """``a ** b``; either may be a tensor (the gradient for ``b`` needs ``a > 0``)."""

    ufunc = np.power
    grad_a = staticmethod(lambda grad, a, b: grad * b * a ** (b - 1))
    grad_b = staticmethod(lambda grad, a, b: grad * a ** b * np.log(a))


class Neg(Function):
    """``-x``."""

    @staticmethod
    def forward(ctx, x):
        return -x

    @staticmethod
    def backward(ctx, grad):
        return -grad


class Exp(Function):
    """``exp(x)``."""

    @staticmethod
    def forward(ctx, x):
        out = np.exp(x)
        ctx.save_for_backward(out)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, = ctx.saved_tensors
        return grad * out


class Log(Function):
    """Natural logarithm."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx, grad):
        x, = ctx.saved_tensors
        return grad / x


class Cast(Function):
    """``x.astype(dtype)``; the gradient is cast back to the input's dtype."""

    @staticmethod
    def forward(ctx, x, dtype):
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad.astype(ctx.dtype), None


# ***** matrix product *****

class MatMul(Function):
    """``a @ b`` with NumPy's rules: 1-D operands are vectors, leading dims are batch dims.

    Shapes: (k,) @ (k,) -> (); (m, k) @ (k, n) -> (m, n); (..., m, k) @ (..., k, n) -> (..., m, n),
    the batch dims broadcasting.
    """

    @staticmethod
    def forward(ctx, a, b):
        _check_matmul_shapes(np.shape(a), np.shape(b))
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    @staticmethod
    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        shape_a, shape_b = a.shape, b.shape
        need_a, need_b = ctx.needs_input_grad
        # Treat vectors as (1, k) and (k, 1) matrices, and give the gradient back the
        # dims that np.matmul dropped for them.
        if b.ndim == 1:
            b, grad = b[:, None], grad[..., None]
        if a.ndim == 1:
            a, grad = a[None, :], grad[..., None, :]
        grad_a = grad_b = None
        if need_a:
            grad_a = _unbroadcast(grad @ np.swapaxes(b, -1, -2), a.shape).reshape(shape_a)
        if need_b:
            grad_b = _unbroadcast(np.swapaxes(a, -1, -2) @ grad, b.shape).reshape(shape_b)
        return grad_a, grad_b


def _check_matmul_shapes(shape_a, shape_b):
    if not shape_a or not shape_b:
        raise ValueError(f"matmul: both operands need at least one dimension, got shapes "
                         f"{shape_a} and {shape_b}")
    k_b = shape_b[-2] if len(shape_b) > 1 else shape_b[0]
    if shape_a[-1] != k_b:
        raise ValueError(f"matmul: shapes {shape_a} and {shape_b} do not match: the first's last "
                         f"dim ({shape_a[-1]}) must equal the second's "
                         f"{'second-to-last' if len(shape_b) > 1 else 'only'} dim ({k_b})")
    try:
        np.broadcast_shapes(shape_a[:-2], shape_b[:-2])
    except ValueError:
        raise ValueError(f"matmul: the batch dims of shapes {shape_a} and {shape_b} cannot be "
                         "broadcast together") from None


# ***** reductions *****

class Sum(Function):
    """Sum over ``dim`` (an int, a tuple of ints, or None for all elements)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        return x.sum(axis=dim, keepdims=keepdim)

    @staticmethod
    def backward(ctx, grad):
        return _expand_reduced(grad, ctx.shape, ctx.dim, ctx.keepdim), None, None


class Mean(Function):
    """Mean over ``dim`` (an int, a tuple of ints, or None for all elements)."""

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        out = x.mean(axis=dim, keepdims=keepdim)
        ctx.shape, ctx.dim, ctx.keepdim = x.shape, dim, keepdim
        ctx.count = x.size // max(np.size(out), 1)
        return out

    @staticmethod
    def backward(ctx, grad):
        return _expand_reduced(grad / ctx.count, ctx.shape, ctx.dim, ctx.keepdim), None, None


class Max(Function):
    """Maximum of all elements (``dim=None``) or along one ``dim``.

    The gradient goes to the first maximal element, the one ``argmax`` picks (PyTorch's rule),
    so ties never share or double-count it.
    """

    @staticmethod
    def forward(ctx, x, dim=None, keepdim=False):
        ctx.shape = x.shape
        if dim is None:
            x, dim, keepdim = x.reshape(-1), 0, False
        if x.shape[dim] == 0:
            raise ValueError(f"max: cannot take the maximum over an empty dim of shape {x.shape}")
        index = np.argmax(x, axis=dim, keepdims=True)
        ctx.index, ctx.dim, ctx.keepdim, ctx.reduced_shape = index, dim, keepdim, x.shape
        values = np.take_along_axis(x, index, axis=dim)
        return values if keepdim else values.squeeze(dim)

    @staticmethod
    def backward(ctx, grad):
        if not ctx.keepdim:
            grad = np.expand_dims(grad, ctx.dim)
        grad_x = np.zeros(ctx.reduced_shape, grad.dtype)
        np.put_along_axis(grad_x, ctx.index, grad, axis=ctx.dim)
        return grad_x.reshape(ctx.shape), None, None


# ***** shape and indexing *****

class Reshape(Function):
    """``x.reshape(shape)`` (one dim may be -1)."""

    @staticmethod
    def forward(ctx, x, shape):
        ctx.shape = x.shape
        try:
            return x.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape a tensor of shape {x.shape} ({x.size} "
                             f"elements) into shape {tuple(shape)}") from None

    @staticmethod
    def backward(ctx, grad):
        return grad.reshape(ctx.shape), None


class Permute(Function):
    """``np.transpose(x, dims)``: dim ``i`` of the result is dim ``dims[i]`` of ``x``."""

    @staticmethod
    def forward(ctx, x, dims):
        ctx.dims = dims
        return np.transpose(x, dims)

    @staticmethod
    def backward(ctx, grad):
        return np.transpose(grad, np.argsort(ctx.dims)), None


class GetItem(Function):
    """``x[index]`` with basic slices, integer arrays, boolean masks and tuples of them.

    Integer arrays may repeat an element; its gradient then sums every use.
    """

    @staticmethod
    def forward(ctx, x, index):
        ctx.shape, ctx.index = x.shape, index
        return x[index]

    @staticmethod
    def backward(ctx, grad):
        grad_x = np.zeros(ctx.shape, grad.dtype)
        if _is_basic_index(ctx.index):
            # Basic indexing selects each element at most once: a plain store is enough.
            grad_x[ctx.index] = grad
        else:
            np.add.at(grad_x, ctx.index, grad)
        return grad_x, None


_BASIC_INDEX_TYPES = (int, np.integer, slice, type(None), type(Ellipsis))


def _is_basic_index(index):
    if isinstance(index, tuple):
        return all(isinstance(item, _BASIC_INDEX_TYPES) for item in index)
    return isinstance(index, _BASIC_INDEX_TYPES)
