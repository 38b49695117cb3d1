"""Conv2d: a 2-D convolution layer."""
from cnn._validation import integer, pair
from cnn.nn import functional as F
from cnn.nn.module import Module

from ._factory import add_weight_and_bias, reset_weight_and_bias


class Conv2d(Module):
    """2-D convolution over (N, C_in, H, W) inputs, as torch.nn.Conv2d.

    Args:
        in_channels, out_channels: channel counts (both divisible by groups).
        kernel_size, stride, padding, dilation: int or (height, width) pair; zero padding.
        groups: independent channel groups.
        bias: learn an additive bias per output channel.
        dtype: parameter dtype (float32 by default).

    Shape:
        (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2*padding - dilation*(KH-1) - 1)
        // stride + 1.

    Attributes:
        weight: Parameter (C_out, C_in / groups, KH, KW).
        bias: Parameter (C_out,) or None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, dtype=None):
        super().__init__()
        self.in_channels = integer(in_channels, "in_channels", 1)
        self.out_channels = integer(out_channels, "out_channels", 1)
        self.groups = integer(groups, "groups", 1)
        for name, value in (("in_channels", self.in_channels),
                            ("out_channels", self.out_channels)):
            if value % self.groups:
                raise ValueError(f"{name}: must be divisible by groups ({self.groups}), got {value}")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        self.dilation = pair(dilation, "dilation", 1)
        add_weight_and_bias(
            self, (self.out_channels, self.in_channels // self.groups) + self.kernel_size, bias,
            dtype)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights and bias as PyTorch does (from cnn.manual_seed's generator)."""
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input):
        return F.conv2d(input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                        self.groups)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text
