"""Fully connected layers: y = x @ W.T + b."""
import math

import numpy as np

from cnn import _ext
from cnn._ext import gemm
from cnn.autograd import Function
from cnn.tensor import Tensor, from_numpy
from cnn.threads import kernel_threads

from ._inputs import array_of, float_array_of, same_dtype
from .activation import relu_backward


class Linear(Function):
    """x (*, in) @ weight.T (in, out) + bias; the leading dimensions are flattened for the GEMMs,
    which share their column blocks out to the kernels' threads (cnn/_ext/gemm.py). A forward
    of one row (batch-1 inference) is one call of cnn/_ext/linear.pyx instead: the product,
    the bias and the ReLU in one pass over the weight.

    With `relu` (cnn.compile folds a ReLU that alone takes a Linear's output into it), ReLU's
    rule runs in the bias's pass over the result (elementwise.bias_relu), and backward takes
    the gradient through it first, as relu's backward would: the same values and gradients as
    the two ops, without the second op.

    With cnn.compile's freezing, a forward of one row takes the weight and bias once
    (linear.FrozenAffine), not at every call.
    """

    freezable = True
    frozen_takes = (0,)

    @staticmethod
    def forward(ctx, x, weight, bias, relu=False):
        rows = _rows(x)
        out = _affine(rows, weight, bias, relu, kernel_threads())
        ctx.save_for_backward(rows, weight, out if relu else None)
        ctx.input_shape = x.shape
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def inference(threads, x, weight, bias, relu=False, frozen=False):
        # (frozen: the layer keeps no layout of its weight to use.)
        out = _affine(_rows(x), weight, bias, relu, threads)
        return out if x.ndim == 2 else out.reshape(x.shape[:-1] + (weight.shape[0],))

    @staticmethod
    def frozen(shape, weight, bias, relu=False):
        kernels = _ext.backend.linear
        if len(shape) != 2 or shape[0] > kernels.MAX_ROWS:
            return None  # more rows go to BLAS, other shapes through inference's reshapes
        return kernels.FrozenAffine(np.ascontiguousarray(weight),
                                    bias if bias is None else np.ascontiguousarray(bias), relu)

    @staticmethod
    def backward(ctx, grad_output):
        rows, weight, relu_out = ctx.saved_tensors
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        threads = kernel_threads()
        if relu_out is not None:
            grad_output = relu_backward(grad_output, relu_out.reshape(grad_output.shape),
                                        threads)
        grad_rows = _rows(grad_output)
        grad_x = None
        if needs_x:
            grad_x = gemm.product(grad_rows, weight, False, False, threads).reshape(
                ctx.input_shape)
        grad_w = gemm.product(grad_rows, rows, True, False, threads) if needs_w else None
        grad_b = grad_rows.sum(axis=0) if needs_b else None
        return grad_x, grad_w, grad_b


def _affine(rows, weight, bias, relu, threads):
    """rows @ weight.T + bias, then ReLU's rule with `relu`: forward's value. A single row
    (batch-1 inference) is one call of cnn's own kernel; more rows are BLAS's product, then
    the bias and the ReLU in one pass. Either way the bits do not depend on the thread count."""
    kernels = _ext.backend
    if rows.shape[0] <= kernels.linear.MAX_ROWS:
        out = np.empty((rows.shape[0], weight.shape[0]), dtype=rows.dtype)
        kernels.linear.affine_rows(np.ascontiguousarray(rows), np.ascontiguousarray(weight),
                                   bias if bias is None else np.ascontiguousarray(bias), out,
                                   relu, threads)
        return out
    out = gemm.product(rows, weight, False, True, threads)
    if relu:
        kernels.elementwise.bias_relu(out, bias, relu, threads)
    elif bias is not None:
        out += bias
    return out


def _rows(array):
    """array (*, features) as a (rows, features) matrix (itself when it is one: a batch-1
    layer's reshapes were a tenth of its time); the row count is explicit, since -1 is
    ambiguous for 0 features."""
    if array.ndim == 2:
        return array
    return array.reshape(math.prod(array.shape[:-1]), array.shape[-1])


def linear(input, weight, bias=None):
    """Affine map input @ weight.T + bias.

    Args:
        input: Tensor (*, in_features).
        weight: Tensor (out_features, in_features).
        bias: optional Tensor (out_features,).

    Returns:
        Tensor (*, out_features).
    """
    x = float_array_of(input, "input")
    w = float_array_of(weight, "weight", (2,))
    same_dtype(w, x, "weight", "input")
    if x.ndim == 0 or x.shape[-1] != w.shape[1]:
        raise ValueError(f"input: expected a last dimension of {w.shape[1]} (weight.shape[1], "
                         f"in_features), got shape {x.shape}")
    if bias is not None:
        b = array_of(bias, "bias")
        same_dtype(b, x, "bias", "input")
        if b.shape != (w.shape[0],):
            raise ValueError(f"bias: expected shape ({w.shape[0]},), got {b.shape}")
    return Linear.apply(input, weight, bias)


def flatten(input, start_dim=0, end_dim=-1):
    """Merge dimensions start_dim..end_dim into one (a view when possible), like torch.flatten."""
    if not isinstance(input, Tensor):
        input = from_numpy(array_of(input, "input"))
    return input.flatten(start_dim, end_dim)
