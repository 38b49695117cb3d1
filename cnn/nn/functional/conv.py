"""2-D convolution: direct kernels for groups = 1, im2col + batched GEMMs for grouped ones."""
import numpy as np

from cnn import _blas
from cnn._kernels import col2im, direct_conv, im2col
from cnn._kernels.im2col import conv_geometry
from cnn._validation import integer
from cnn.autograd import Function

from ._inputs import array_of, float_array_of, same_dtype


class Conv2d(Function):
    """Convolution of (N, C, H, W) by weights (F, C/groups, KH, KW).

    groups = 1 runs the direct kernels of cnn/_ext/direct_conv.pyx (few channels: reading the
    input in place beats building columns). Grouped convolutions use im2col: with cols of shape
    (N, C*KH*KW, P) (P = OH*OW; rows channel-major, see cnn/_ext/im2col.pyx), group g's output is
    w_g (F/groups, Cg*KH*KW) @ cols_g, batched matmuls that produce NCHW directly; backward
    dW_g = sum_n dy_g[n] @ cols_g[n].T, dcols_g = w_g.T @ dy_g, dx = col2im(dcols).
    The input gradient is skipped when the input needs none (the first layer).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, groups):
        ctx.geometry = (x.shape, stride, padding, dilation, groups)
        if groups == 1:
            ctx.save_for_backward(x, weight)
            return direct_conv.conv2d_forward(x, weight, bias, stride, padding, dilation)
        n = x.shape[0]
        f = weight.shape[0]
        kernel = weight.shape[2:]
        _, _, _, _, (oh, ow) = conv_geometry(x.shape, kernel, stride, padding, dilation)
        cols = im2col(x, kernel, stride, padding, dilation)
        rows = cols.shape[1] // groups  # explicit sizes: -1 cannot be inferred for empty arrays
        w_groups = weight.reshape(groups, f // groups, rows)
        cols_groups = cols.reshape(n, groups, rows, oh * ow)
        with _blas.single_threaded():
            out = np.matmul(w_groups, cols_groups)  # (N, groups, F/groups, P)
        out = out.reshape(n, f, oh, ow)
        if bias is not None:
            out += bias.reshape(1, f, 1, 1)
        ctx.save_for_backward(cols_groups, weight)
        return out

    @staticmethod
    def backward(ctx, grad_output):
        input_shape, stride, padding, dilation, groups = ctx.geometry
        needs = ctx.needs_input_grad[:3]
        if groups == 1:
            x, weight = ctx.saved_tensors
            return direct_conv.conv2d_backward(x, weight, grad_output, stride, padding,
                                               dilation, needs) + (None,) * 4
        needs_x, needs_w, needs_b = needs
        grad_b = grad_output.sum(axis=(0, 2, 3)) if needs_b else None
        cols_groups, weight = ctx.saved_tensors
        n, f = grad_output.shape[:2]
        pixels = grad_output.shape[2] * grad_output.shape[3]
        grad_groups = grad_output.reshape(n, groups, f // groups, pixels)
        grad_x = grad_w = None
        with _blas.single_threaded():
            if needs_w:
                grad_w = np.matmul(grad_groups, cols_groups.transpose(0, 1, 3, 2)).sum(axis=0)
                grad_w = grad_w.reshape(weight.shape)
            if needs_x:
                w_groups = weight.reshape(groups, f // groups, cols_groups.shape[2])
                dcols = np.matmul(w_groups.transpose(0, 2, 1), grad_groups)
        if needs_x:
            grad_x = col2im(dcols.reshape(n, groups * dcols.shape[2], pixels), input_shape,
                            weight.shape[2:], stride, padding, dilation)
        return grad_x, grad_w, grad_b, None, None, None, None


def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution over an (N, C, H, W) input, or (C, H, W) for one image.

    Args:
        input: Tensor (N, C_in, H, W).
        weight: Tensor (C_out, C_in / groups, KH, KW).
        bias: optional Tensor (C_out,).
        stride, padding, dilation: int or pair of ints (height, width); padding is zeros.
        groups: split the channels into this many independent convolutions.

    Returns:
        Tensor (N, C_out, OH, OW) with OH = (H + 2*padding - dilation*(KH - 1) - 1) // stride + 1
        (likewise OW).
    """
    x = float_array_of(input, "input", (3, 4))
    if x.ndim == 3:
        return conv2d(input.reshape(1, *x.shape), weight, bias, stride, padding, dilation,
                      groups)[0]
    groups = check_conv_arguments(x, weight, bias, stride, padding, dilation, groups)
    return Conv2d.apply(input, weight, bias, stride, padding, dilation, groups)


def check_conv_arguments(x, weight, bias, stride, padding, dilation, groups):
    """Check a convolution's arguments against the 4-D input array x; return groups as an int."""
    w = float_array_of(weight, "weight", (4,))
    same_dtype(w, x, "weight", "input")
    groups = integer(groups, "groups", 1)
    channels, out_channels = x.shape[1], w.shape[0]
    if out_channels % groups:
        raise ValueError(f"groups: must divide out_channels ({out_channels}), got {groups}")
    if channels != w.shape[1] * groups:
        raise ValueError(f"input: expected {w.shape[1] * groups} channels (weight.shape[1] = "
                         f"{w.shape[1]} times groups = {groups}), got {channels} channels in "
                         f"shape {x.shape}")
    if bias is not None:
        b = array_of(bias, "bias")
        same_dtype(b, x, "bias", "input")
        if b.shape != (out_channels,):
            raise ValueError(f"bias: expected shape ({out_channels},), got {b.shape}")
    conv_geometry(x.shape, w.shape[2:], stride, padding, dilation)
    return groups
