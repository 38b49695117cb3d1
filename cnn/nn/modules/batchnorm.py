"""Batch normalisation layers with running statistics."""
import numpy as np

from cnn._validation import integer, real_number
from cnn.nn.functional.normalization import counted_batch_norm
from cnn.nn.functional._inputs import float_array_of
from cnn.nn.module import Module
from cnn.nn.parameter import Parameter

from ._factory import parameter_dtype


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d; they differ only in the input ranks they accept.

    Args:
        num_features: the channel count C.
        eps: added to the variance for stability.
        momentum: weight of each new batch in the running statistics; None for a cumulative
            average over all batches seen.
        affine: learn a per-channel scale (weight) and, with `bias`, a shift.
        track_running_stats: keep running statistics for evaluation mode; without them,
            batch statistics are used in both modes.
        dtype: parameter and buffer dtype (float32 by default).
        bias: learn the shift (keyword-only, as in PyTorch).
    """

    _ndims = ()

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True,
                 track_running_stats=True, dtype=None, *, bias=True):
        super().__init__()
        self.num_features = integer(num_features, "num_features", 1)
        real_number(eps, "eps", minimum=0)
        if momentum is not None:
            real_number(momentum, "momentum")
        self.eps = eps
        self.momentum = momentum
        self.affine = bool(affine)
        self.track_running_stats = bool(track_running_stats)
        dtype = parameter_dtype(dtype)
        # `bias=False` keeps the learned scale but drops the shift (PyTorch >= 2.10).
        if self.affine:
            self.weight = Parameter(np.ones(self.num_features, dtype))
        else:
            self.register_parameter("weight", None)
        if self.affine and bias:
            self.bias = Parameter(np.zeros(self.num_features, dtype))
        else:
            self.register_parameter("bias", None)
        if self.track_running_stats:
            self.register_buffer("running_mean", np.zeros(self.num_features, dtype))
            self.register_buffer("running_var", np.ones(self.num_features, dtype))
            self.register_buffer("num_batches_tracked", np.array(0, np.int64))
        else:
            for name in ("running_mean", "running_var", "num_batches_tracked"):
                self.register_buffer(name, None)

    def reset_running_stats(self):
        """Running mean 0, running variance 1, no batches seen."""
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, input):
        x = float_array_of(input, "input")
        if x.ndim not in self._ndims:
            expected = " or ".join(f"{n}D" for n in self._ndims)
            raise ValueError(f"input: expected {expected} input, got shape {x.shape}")
        use_batch_stats = self.training or not self.track_running_stats
        counter = self.num_batches_tracked if self.training and self.track_running_stats \
            else None
        # Running statistics are None when not tracked; the op updates them (and counts the
        # batch) only when it normalises by batch statistics.
        return counted_batch_norm(input, self.running_mean, self.running_var, self.weight,
                                  self.bias, use_batch_stats, self.momentum, self.eps, counter)

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, bias={self.bias is not None}, "
                f"track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of (N, C) or (N, C, L) inputs over every dimension but C."""

    _ndims = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of (N, C, H, W) inputs over N, H and W for each channel C."""

    _ndims = (4,)
