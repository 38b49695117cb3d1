"""Max- and average-pooling layers."""
from cnn._validation import pair
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
