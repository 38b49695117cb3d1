"""Conv2d -> ReLU -> MaxPool2d(2) as one op: the values and gradients of the three, computed
without storing the convolution's output.

`cnn.nn.Sequential` runs such runs of layers through this op automatically (cnn/nn/fusion.py).
The fused kernel computes each 2x2 pooling window's four conv outputs in one register tile, so
it applies the same rules as the separate ops: ReLU keeps NaN, the first maximum in row-major
order wins, a NaN wins. Backward: the pooled gradient goes to each window's argmax where the
pooled value is positive (ReLU's mask), then through the convolution's gradients.
"""
from cnn import _kernels
from cnn._kernels import direct_conv
from cnn.autograd import Function

from ._inputs import float_array_of
from .conv import check_conv_arguments, direct_conv_gradients


class ConvReLUMaxPool2d(Function):
    """max_pool2d(relu(conv2d(x, w, b)), 2); keeps the input, the weights, the pooled output
    and the argmax indices for backward."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation):
        pooled, indices = direct_conv.conv2d_relu_max_pool2d(x, weight, bias, stride, padding,
                                                             dilation)
        ctx.save_for_backward(x, weight, pooled, indices)
        ctx.geometry = (stride, padding, dilation)
        return pooled

    @staticmethod
    def backward(ctx, grad_output):
        x, weight, pooled, indices = ctx.saved_tensors
        stride, padding, dilation = ctx.geometry
        needs_x, needs_w, needs_b = ctx.needs_input_grad[:3]
        grad_pooled = grad_output * (pooled > 0)
        _, _, _, _, conv_size = direct_conv.conv_geometry(x.shape, weight.shape[2:], stride,
                                                          padding, dilation)
        grad_conv = _kernels.max_pool2d_backward(grad_pooled, indices,
                                                 (x.shape[0], weight.shape[0]) + conv_size)
        grad_x, grad_w = direct_conv_gradients(x, weight, grad_conv, stride, padding, dilation,
                                               needs_x, needs_w)
        # Summed over the conv-shaped gradient, as Conv2d's backward does: the same order of
        # additions, so the fused and separate layers agree to the last bit.
        grad_b = grad_conv.sum(axis=(0, 2, 3)) if needs_b else None
        return grad_x, grad_w, grad_b, None, None, None


def conv2d_relu_max_pool2d(input, weight, bias=None, stride=1, padding=0, dilation=1):
    """max_pool2d(relu(conv2d(input, weight, bias, stride, padding, dilation)), 2) in one op.

    Args:
        input: Tensor (N, C_in, H, W).
        weight, bias, stride, padding, dilation: as conv2d (groups = 1).

    Returns:
        Tensor (N, C_out, OH // 2, OW // 2), OH and OW being the convolution's output size.
    """
    x = float_array_of(input, "input", (4,))
    check_conv_arguments(x, weight, bias, stride, padding, dilation, 1)
    return ConvReLUMaxPool2d.apply(input, weight, bias, stride, padding, dilation)
