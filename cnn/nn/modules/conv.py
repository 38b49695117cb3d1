"""Convolution layers: Conv1d, Conv2d and ConvTranspose2d."""
from cnn._validation import integer
from cnn.devices import as_device
from cnn.nn import functional as F
from cnn.nn.functional import conv_padding
from cnn.nn.module import Module

from ._factory import add_weight_and_bias, reset_weight_and_bias

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


def _tuple(value, name, minimum, spatial):
    """An int or a sequence of `spatial` ints, as a tuple of `spatial` ints >= `minimum`."""
    values = tuple(value) if isinstance(value, (tuple, list)) else (value,) * spatial
    if len(values) != spatial:
        raise ValueError(f"{name}: expected an integer or {spatial} integers, got {value!r}")
    return tuple(integer(v, name, minimum) for v in values)


class _ConvNd(Module):
    """Arguments, parameters and repr shared by the convolutions (``_spatial`` dims).

    Normalises every size to a tuple of ints once; ``padding`` may also be "same" or "valid",
    kept as given for the repr, with :attr:`padding` holding the symmetric pads and
    ``_pre_padding`` the F.pad sizes (asymmetric "same", or a padding mode other than zeros)
    applied first.
    """

    _spatial = 2
    _transposed = False

    def __init__(self, in_channels, out_channels, kernel_size, stride, padding, dilation, groups,
                 bias, padding_mode, device, dtype, output_padding=0):
        super().__init__()
        as_device(device)
        spatial = self._spatial
        self.in_channels = integer(in_channels, "in_channels", 1)
        self.out_channels = integer(out_channels, "out_channels", 1)
        self.groups = integer(groups, "groups", 1)
        for name, value in (("in_channels", self.in_channels),
                            ("out_channels", self.out_channels)):
            if value % self.groups:
                raise ValueError(f"{name}: must be divisible by groups ({self.groups}), got {value}")
        if padding_mode not in _PADDING_MODES or (self._transposed and padding_mode != "zeros"):
            allowed = ("zeros",) if self._transposed else _PADDING_MODES
            raise ValueError(f"padding_mode: expected one of {allowed}, got {padding_mode!r}")
        self.padding_mode = padding_mode
        self.kernel_size = _tuple(kernel_size, "kernel_size", 1, spatial)
        self.stride = _tuple(stride, "stride", 1, spatial)
        self.dilation = _tuple(dilation, "dilation", 1, spatial)
        self._padding_given = padding if isinstance(padding, str) else None
        if isinstance(padding, str) and self._transposed:
            raise ValueError(f"padding: {type(self).__name__} takes integers, got {padding!r}")
        pads, extra = conv_padding.resolve(padding if isinstance(padding, str) else
                                           _tuple(padding, "padding", 0, spatial),
                                           self.kernel_size, self.dilation, self.stride, spatial)
        self.padding = pads
        self._pre_padding = _pre_padding(pads, extra, padding_mode)
        if self._pre_padding is not None:
            self._conv_padding = (0,) * spatial
        else:
            self._conv_padding = pads
        self.output_padding = _tuple(output_padding, "output_padding", 0, spatial)
        weight_shape = ((self.in_channels, self.out_channels // self.groups) if self._transposed
                        else (self.out_channels, self.in_channels // self.groups))
        add_weight_and_bias(self, weight_shape + self.kernel_size, bias, dtype, self.out_channels)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights and bias as PyTorch does (from cnn.manual_seed's generator)."""
        reset_weight_and_bias(self.weight, self.bias)

    def _padded(self, input):
        """The input with any padding the convolution itself cannot do applied first."""
        if self._pre_padding is None:
            return input
        mode = "constant" if self.padding_mode == "zeros" else self.padding_mode
        return F.pad(input, self._pre_padding, mode=mode)

    def extra_repr(self):
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self._padding_given is not None:
            text += f", padding={self._padding_given}"
        elif self.padding != (0,) * self._spatial:
            text += f", padding={self.padding}"
        if self.dilation != (1,) * self._spatial:
            text += f", dilation={self.dilation}"
        if self.output_padding != (0,) * self._spatial:
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        if self.padding_mode != "zeros":
            text += f", padding_mode={self.padding_mode}"
        return text


def _pre_padding(pads, extra, padding_mode):
    """F.pad's sizes (last dim first) for padding the convolution cannot do itself, or None."""
    if padding_mode == "zeros" and extra is None:
        return None
    sizes = []
    for i, pad in enumerate(reversed(pads)):
        after = extra[2 * i + 1] if extra is not None else 0
        sizes += [pad, pad + after]
    return tuple(sizes)


class Conv2d(_ConvNd):
    """2-D convolution over (N, C_in, H, W) inputs, as torch.nn.Conv2d.

    Args:
        in_channels, out_channels: channel counts (both divisible by groups).
        kernel_size, stride, dilation: int or (height, width) pair.
        padding: int, pair, "valid" (none) or "same" (the output keeps the input's size;
            stride 1 only).
        groups: independent channel groups.
        bias: learn an additive bias per output channel.
        padding_mode: "zeros" (default), "reflect", "replicate" or "circular".
        device: None or the CPU.
        dtype: parameter dtype (float32 by default).

    Shape:
        (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H + 2*padding - dilation*(KH-1) - 1)
        // stride + 1.

    Attributes:
        weight: Parameter (C_out, C_in / groups, KH, KW).
        bias: Parameter (C_out,) or None.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        return F.conv2d(self._padded(input), self.weight, self.bias, self.stride,
                        self._conv_padding, self.dilation, self.groups)


class Conv1d(_ConvNd):
    """1-D convolution over (N, C_in, L) inputs, as torch.nn.Conv1d (arguments as Conv2d's,
    one size each).

    Attributes:
        weight: Parameter (C_out, C_in / groups, K).
        bias: Parameter (C_out,) or None.
    """

    _spatial = 1

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, bias=True, padding_mode="zeros", device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype)

    def forward(self, input):
        return F.conv1d(self._padded(input), self.weight, self.bias, self.stride,
                        self._conv_padding, self.dilation, self.groups)


class ConvTranspose2d(_ConvNd):
    """Transposed 2-D convolution (an upsampling layer), as torch.nn.ConvTranspose2d.

    Args:
        in_channels, out_channels: channel counts (both divisible by groups).
        kernel_size, stride, padding, dilation: int or pair; padding crops the output.
        output_padding: int or pair added to one side of the output (smaller than stride or
            dilation).
        groups, bias, device, dtype: as Conv2d; padding_mode must be "zeros".

    Shape:
        (N, C_in, H, W) -> (N, C_out, OH, OW), OH = (H - 1) * stride - 2 * padding +
        dilation * (KH - 1) + output_padding + 1.

    Attributes:
        weight: Parameter (C_in, C_out / groups, KH, KW).
        bias: Parameter (C_out,) or None.
    """

    _transposed = True

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 output_padding=0, groups=1, bias=True, dilation=1, padding_mode="zeros",
                 device=None, dtype=None):
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, dilation,
                         groups, bias, padding_mode, device, dtype, output_padding)

    def forward(self, input, output_size=None):
        if output_size is not None:
            raise ValueError("output_size: not supported by cnn; give output_padding when "
                             "building the layer")
        return F.conv_transpose2d(input, self.weight, self.bias, self.stride, self.padding,
                                  self.output_padding, self.groups, self.dilation)
