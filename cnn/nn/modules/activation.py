"""Activation layers.

`inplace=True` is accepted for PyTorch compatibility; the result is computed out of place, with
the same values and gradients (an autograd graph over NumPy arrays gains nothing from aliasing).
"""
from cnn._validation import integer, real_number
from cnn.nn import functional as F
from cnn.nn.module import Module


class ReLU(Module):
    """max(x, 0) element-wise."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.relu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class LeakyReLU(Module):
    """x where x > 0, else negative_slope * x."""

    def __init__(self, negative_slope=0.01, inplace=False):
        super().__init__()
        real_number(negative_slope, "negative_slope")
        self.negative_slope = negative_slope
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.leaky_relu(input, self.negative_slope)

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}" + (", inplace=True" if self.inplace else "")


class Sigmoid(Module):
    """1 / (1 + exp(-x)) element-wise."""

    def forward(self, input):
        return F.sigmoid(input)


class Tanh(Module):
    """tanh(x) element-wise."""

    def forward(self, input):
        return F.tanh(input)


class Softmax(Module):
    """Softmax along `dim` (outputs sum to 1 along it)."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim if dim is None else integer(dim, "dim")

    def forward(self, input):
        return F.softmax(input, _implicit_dim(self.dim, input))

    def extra_repr(self):
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) along `dim`, computed stably."""

    def __init__(self, dim=None):
        super().__init__()
        self.dim = dim if dim is None else integer(dim, "dim")

    def forward(self, input):
        return F.log_softmax(input, _implicit_dim(self.dim, input))

    def extra_repr(self):
        return f"dim={self.dim}"


def _implicit_dim(dim, input):
    """PyTorch's legacy rule when no dim is given: 0 for 0-, 1- and 3-D inputs, else 1."""
    if dim is not None:
        return dim
    return 0 if input.ndim in (0, 1, 3) else 1
