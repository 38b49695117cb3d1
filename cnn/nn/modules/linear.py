"""Linear, Flatten and Identity layers."""
from cnn._validation import integer
from cnn.nn import functional as F
from cnn.nn.module import Module

from ._factory import add_weight_and_bias, reset_weight_and_bias


class Linear(Module):
    """Affine layer y = x @ weight.T + bias, as torch.nn.Linear.

    Args:
        in_features, out_features: sizes of each input and output sample.
        bias: learn an additive bias.
        dtype: parameter dtype (float32 by default).

    Shape:
        (*, in_features) -> (*, out_features).

    Attributes:
        weight: Parameter (out_features, in_features).
        bias: Parameter (out_features,) or None.
    """

    def __init__(self, in_features, out_features, bias=True, dtype=None):
        super().__init__()
        self.in_features = integer(in_features, "in_features", 0)
        self.out_features = integer(out_features, "out_features", 0)
        add_weight_and_bias(self, (self.out_features, self.in_features), bias, dtype)
        self.reset_parameters()

    def reset_parameters(self):
        """Draw fresh weights and bias as PyTorch does (from cnn.manual_seed's generator)."""
        reset_weight_and_bias(self.weight, self.bias)

    def forward(self, input):
        return F.linear(input, self.weight, self.bias)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Flatten(Module):
    """Merge dimensions start_dim..end_dim (by default all but the batch dimension)."""

    def __init__(self, start_dim=1, end_dim=-1):
        super().__init__()
        self.start_dim = integer(start_dim, "start_dim")
        self.end_dim = integer(end_dim, "end_dim")

    def forward(self, input):
        return F.flatten(input, self.start_dim, self.end_dim)

    def extra_repr(self):
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Identity(Module):
    """Returns its input unchanged (a placeholder that keeps a model's structure)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, input):
        return input
