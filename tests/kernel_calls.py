"""The kernel floor's operations as plain functions of arrays, the form the kernel tests use.

Convolutions go through the plan of their geometry (``cnn._ext.conv_plan``), pooling through the
kernels' entry points (``cnn._ext.pooling``) with a geometry from ``cnn._ext.geometry``: exactly
the calls the functional layer makes, with the thread count of ``cnn.get_num_threads()``.
"""
import numpy as np

import cnn
from cnn import _ext
from cnn._ext import geometry, pooling
from cnn._validation import pair


def plan(x, weight, stride=1, padding=0, dilation=1, groups=1):
    """The plan of conv2d(x, weight, ...), for arrays x (N, C, H, W) and weight."""
    return _ext.conv_plan(x.shape, weight.shape, stride, padding, dilation, groups, x.dtype)


def conv2d_forward(x, weight, bias=None, stride=1, padding=0, dilation=1, relu=False, groups=1):
    return plan(x, weight, stride, padding, dilation, groups).forward(
        x, weight, bias, relu=relu, num_threads=cnn.get_num_threads())[0]


def conv2d_relu_max_pool2d(x, weight, bias=None, stride=1, padding=0, dilation=1):
    return plan(x, weight, stride, padding, dilation).forward_relu_pool(
        x, weight, bias, num_threads=cnn.get_num_threads())


def conv2d_backward(x, weight, grad_output, stride=1, padding=0, dilation=1,
                    needs=(True, True, True), groups=1):
    return plan(x, weight, stride, padding, dilation, groups).backward(
        x, weight, grad_output, needs, num_threads=cnn.get_num_threads())


def conv2d_relu_max_pool2d_backward(x, weight, grad_output, pooled, indices, stride=1,
                                    padding=0, dilation=1, needs=(True, True, True)):
    return plan(x, weight, stride, padding, dilation).backward_relu_pool(
        x, weight, grad_output, pooled, indices, needs, num_threads=cnn.get_num_threads())


def im2col(x, kernel_size, stride=1, padding=0, dilation=1):
    """Columns (N, C*KH*KW, OH*OW) of x, through the plan of a one-channel-out convolution."""
    kernel = pair(kernel_size, "kernel_size", 1)
    weight_shape = (1, x.shape[1]) + kernel
    return _ext.conv_plan(x.shape, weight_shape, stride, padding, dilation, 1,
                          x.dtype).columns(x, cnn.get_num_threads())


def col2im(cols, input_shape, kernel_size, stride=1, padding=0, dilation=1):
    kernel = pair(kernel_size, "kernel_size", 1)
    weight_shape = (1, input_shape[1]) + kernel
    return _ext.conv_plan(input_shape, weight_shape, stride, padding, dilation, 1,
                          cols.dtype).columns_adjoint(cols, cnn.get_num_threads())


def max_pool2d(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    shape = geometry.pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode)
    return pooling.max_pool(x, shape, cnn.get_num_threads())


def max_pool2d_backward(grad_output, indices, input_shape):
    return pooling.max_pool_backward(grad_output, indices, input_shape, cnn.get_num_threads())


def avg_pool2d(x, kernel_size, stride=None, padding=0, ceil_mode=False, count_include_pad=True):
    shape = geometry.pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode)
    return pooling.avg_pool(x, shape, count_include_pad, cnn.get_num_threads())


def avg_pool2d_backward(grad_output, input_shape, kernel_size, stride=None, padding=0,
                        ceil_mode=False, count_include_pad=True):
    shape = geometry.pool_geometry(input_shape, kernel_size, stride, padding, 1, ceil_mode)
    return pooling.avg_pool_backward(grad_output, input_shape, shape, count_include_pad,
                                     cnn.get_num_threads())


def random_batch_norm(rng, channels, dtype):
    """A batch norm in evaluation mode with random statistics and affine parameters: a plan's
    `batch_norm` argument (running_mean, running_var, weight, bias, eps)."""
    mean, weight, bias = (rng.standard_normal(channels).astype(dtype) for _ in range(3))
    var = (rng.random(channels) + 0.5).astype(dtype)
    return mean, var, weight, bias, 1e-5


def batch_norm_rows(batch_norm):
    """The rows (mean, scale, shift) of a batch norm's map in evaluation mode, float64, as the
    batch norm's own kernels compute them (norm.evaluation_coefficients)."""
    out = np.empty((4, batch_norm[0].shape[0]))
    _ext.backend.norm.evaluation_coefficients(*batch_norm, out)
    return out[:3]
