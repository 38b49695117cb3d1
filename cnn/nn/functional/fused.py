"""Conv2d -> ReLU -> MaxPool2d(2) as one op: the values and gradients of the three, computed
without storing the convolution's output.

`cnn.nn.Sequential` runs such runs of layers through this op automatically (cnn/nn/fusion.py).
The fused kernel computes each 2x2 pooling window's four conv outputs in one register tile, so
it applies the same rules as the separate ops: ReLU keeps NaN, the first maximum in row-major
order wins, a NaN wins. Backward: the pooled gradient goes to each window's argmax where the
pooled value is positive (ReLU's mask), then through the convolution's gradients, in the same
kernel as Conv2d's backward (so the fused and separate layers agree bit for bit) and without
building the convolution-sized gradient.
"""
from cnn._kernels import direct_conv
from cnn.autograd import Function

from ._inputs import float_array_of
from .conv import check_conv_arguments


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
        return direct_conv.conv2d_relu_max_pool2d_backward(
            x, weight, grad_output, pooled, indices, stride, padding, dilation,
            ctx.needs_input_grad[:3]) + (None,) * 3


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
