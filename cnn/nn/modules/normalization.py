"""Normalisation by per-sample statistics: LayerNorm and GroupNorm."""
import numpy as np

from cnn._validation import integer, real_number
from cnn.nn import functional as F
from cnn.nn.module import Module
from cnn.nn.parameter import Parameter

from ._factory import parameter_dtype


class LayerNorm(Module):
    """Normalise over the last dims (``normalized_shape``), then scale and shift elementwise.

    Args:
        normalized_shape: int or tuple, the trailing shape normalised over.
        eps: added to the variance for stability.
        elementwise_affine: learn ``weight`` (ones) and ``bias`` (zeros) of that shape.
        bias: learn the shift (with elementwise_affine).
        dtype: parameter dtype (float32 by default).
    """

    def __init__(self, normalized_shape, eps=1e-5, elementwise_affine=True, bias=True,
                 dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, int) else normalized_shape
        self.normalized_shape = tuple(integer(size, "normalized_shape", 1) for size in shape)
        self.eps = real_number(eps, "eps", minimum=0)
        self.elementwise_affine = bool(elementwise_affine)
        dtype = parameter_dtype(dtype)
        if self.elementwise_affine:
            self.weight = Parameter(np.ones(self.normalized_shape, dtype))
        else:
            self.register_parameter("weight", None)
        if self.elementwise_affine and bias:
            self.bias = Parameter(np.zeros(self.normalized_shape, dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.layer_norm(input, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Normalise groups of channels of each sample of (N, C, *), then scale and shift per
    channel.

    Args:
        num_groups: groups the channels divide into.
        num_channels: C.
        eps: added to the variance for stability.
        affine: learn a per-channel ``weight`` (ones) and ``bias`` (zeros).
        dtype: parameter dtype (float32 by default).
    """

    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True, dtype=None):
        super().__init__()
        self.num_groups = integer(num_groups, "num_groups", 1)
        self.num_channels = integer(num_channels, "num_channels", 1)
        if self.num_channels % self.num_groups:
            raise ValueError(f"num_channels: must be divisible by num_groups "
                             f"({self.num_groups}), got {self.num_channels}")
        self.eps = real_number(eps, "eps", minimum=0)
        self.affine = bool(affine)
        dtype = parameter_dtype(dtype)
        if self.affine:
            self.weight = Parameter(np.ones(self.num_channels, dtype))
            self.bias = Parameter(np.zeros(self.num_channels, dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, input):
        return F.group_norm(input, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self):
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"
