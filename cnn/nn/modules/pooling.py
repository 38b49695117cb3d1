"""Max- and average-pooling layers."""
from cnn._validation import integer, pair
from cnn.nn import functional as F
from cnn.nn.module import Module


def _int_or_pair(value, name, minimum):
    """Check like pair(), but keep an int an int, so the repr reads as PyTorch's."""
    checked = pair(value, name, minimum)
    return checked if isinstance(value, (tuple, list)) else checked[0]


class MaxPool2d(Module):
    """2-D max-pooling, as torch.nn.MaxPool2d (padding is -inf; the first maximum wins).

    Args:
        kernel_size, stride, padding, dilation: int or pair; stride defaults to kernel_size,
            padding is at most half the kernel.
        ceil_mode: round the output size up.
        return_indices: also return the argmax indices.
    """

    def __init__(self, kernel_size, stride=None, padding=0, dilation=1, return_indices=False,
                 ceil_mode=False):
        super().__init__()
        self.kernel_size = _int_or_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _int_or_pair(stride, "stride", 1)
        self.padding = _int_or_pair(padding, "padding", 0)
        self.dilation = _int_or_pair(dilation, "dilation", 1)
        self.return_indices = bool(return_indices)
        self.ceil_mode = bool(ceil_mode)

    def forward(self, input):
        return F.max_pool2d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)

    def extra_repr(self):
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(Module):
    """2-D average-pooling with zero padding, as torch.nn.AvgPool2d.

    Args:
        kernel_size, stride, padding: int or pair; stride defaults to kernel_size.
        ceil_mode: round the output size up.
        count_include_pad: count padded zeros in each window's divisor (PyTorch's default).
    """

    def __init__(self, kernel_size, stride=None, padding=0, ceil_mode=False,
                 count_include_pad=True):
        super().__init__()
        self.kernel_size = _int_or_pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else _int_or_pair(stride, "stride", 1)
        self.padding = _int_or_pair(padding, "padding", 0)
        self.ceil_mode = bool(ceil_mode)
        self.count_include_pad = bool(count_include_pad)

    def forward(self, input):
        return F.avg_pool2d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class MaxPool1d(MaxPool2d):
    """1-D max-pooling over (N, C, L) or (C, L), as torch.nn.MaxPool1d (same arguments as
    MaxPool2d, each an int)."""

    def forward(self, input):
        return F.max_pool1d(input, self.kernel_size, self.stride, self.padding, self.dilation,
                            self.ceil_mode, self.return_indices)


class AvgPool1d(AvgPool2d):
    """1-D average-pooling over (N, C, L) or (C, L), as torch.nn.AvgPool1d."""

    def forward(self, input):
        return F.avg_pool1d(input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
                            self.count_include_pad)


class _AdaptivePool(Module):
    """Shared by the adaptive poolings: the output size (an int, or a tuple with None for
    "keep that dim")."""

    def __init__(self, output_size):
        super().__init__()
        sizes = output_size if isinstance(output_size, (tuple, list)) else (output_size,)
        for size in sizes:
            if size is not None:
                integer(size, "output_size", 1)
        self.output_size = tuple(output_size) if isinstance(output_size, list) else output_size

    def extra_repr(self):
        return f"output_size={self.output_size}"


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average-pool (N, C, H, W) to ``output_size`` whatever the input size (PyTorch's bins).

    Args:
        output_size: int or (OH, OW); None keeps that dim.
    """

    def forward(self, input):
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average-pool (N, C, L) to ``output_size`` whatever the input size (PyTorch's bins)."""

    def forward(self, input):
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveMaxPool2d(_AdaptivePool):
    """Max-pool (N, C, H, W) to ``output_size`` whatever the input size (PyTorch's bins).

    Args:
        output_size: int or (OH, OW); None keeps that dim.
        return_indices: also return the flat in-plane index of every maximum.
    """

    def __init__(self, output_size, return_indices=False):
        super().__init__(output_size)
        self.return_indices = bool(return_indices)

    def forward(self, input):
        return F.adaptive_max_pool2d(input, self.output_size, self.return_indices)
