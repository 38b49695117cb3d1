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


class GELU(Module):
    """Gaussian error linear unit, x * Phi(x) (or its tanh approximation)."""

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def forward(self, input):
        return F.gelu(input, self.approximate)

    def extra_repr(self):
        return f"approximate={self.approximate!r}"


class SiLU(Module):
    """x * sigmoid(x) (swish)."""

    def __init__(self, inplace=False):
        super().__init__()
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.silu(input)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class ELU(Module):
    """x where x > 0, else alpha * (exp(x) - 1)."""

    def __init__(self, alpha=1.0, inplace=False):
        super().__init__()
        self.alpha = real_number(alpha, "alpha")
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.elu(input, self.alpha)

    def extra_repr(self):
        return f"alpha={self.alpha}" + (", inplace=True" if self.inplace else "")


class Hardtanh(Module):
    """x clamped to [min_val, max_val]."""

    def __init__(self, min_val=-1.0, max_val=1.0, inplace=False):
        super().__init__()
        self.min_val, self.max_val = real_number(min_val, "min_val"), real_number(max_val,
                                                                                  "max_val")
        if self.min_val > self.max_val:
            raise ValueError(f"max_val: must be at least min_val ({min_val}), got {max_val}")
        self.inplace = bool(inplace)

    def forward(self, input):
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self):
        return (f"min_val={self.min_val}, max_val={self.max_val}"
                + (", inplace=True" if self.inplace else ""))


class ReLU6(Hardtanh):
    """min(max(x, 0), 6)."""

    def __init__(self, inplace=False):
        super().__init__(0.0, 6.0, inplace)

    def extra_repr(self):
        return "inplace=True" if self.inplace else ""


class Softplus(Module):
    """log(1 + exp(beta * x)) / beta, linear above ``threshold``."""

    def __init__(self, beta=1.0, threshold=20.0):
        super().__init__()
        self.beta, self.threshold = real_number(beta, "beta"), real_number(threshold,
                                                                           "threshold")

    def forward(self, input):
        return F.softplus(input, self.beta, self.threshold)

    def extra_repr(self):
        return f"beta={self.beta}, threshold={self.threshold}"
