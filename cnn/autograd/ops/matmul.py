"""The matrix product with NumPy's rules (``@``, ``torch.matmul``)."""
import numpy as np

from ..function import Function
from ._broadcast import unbroadcast


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
            grad_a = unbroadcast(grad @ np.swapaxes(b, -1, -2), a.shape).reshape(shape_a)
        if need_b:
            grad_b = unbroadcast(np.swapaxes(a, -1, -2) @ grad, b.shape).reshape(shape_b)
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

