"""Upsample: ``F.interpolate`` as a layer."""
from cnn.nn import functional as F
from cnn.nn.functional.resampling import MODES
from cnn.nn.module import Module


class Upsample(Module):
    """Resize (N, C, L) or (N, C, H, W) to ``size`` or by ``scale_factor``.

    Args:
        size: int or tuple, the output's spatial size; or give ``scale_factor``.
        scale_factor: float or tuple.
        mode: "nearest" (default), "nearest-exact", "linear", "bilinear" or "area".
        align_corners: for the linear modes.
        recompute_scale_factor: compute positions from the output size instead of the factor.
    """

    def __init__(self, size=None, scale_factor=None, mode="nearest", align_corners=None,
                 recompute_scale_factor=None):
        super().__init__()
        if mode not in MODES:
            raise ValueError(f"mode: expected one of {MODES} (bicubic and trilinear are not "
                             f"supported by cnn), got {mode!r}")
        if (size is None) == (scale_factor is None):
            raise ValueError("size, scale_factor: exactly one of them must be given")
        self.size = size
        self.scale_factor = float(scale_factor) if isinstance(scale_factor, (int, float)) \
            else scale_factor
        self.mode = mode
        self.align_corners = align_corners
        self.recompute_scale_factor = recompute_scale_factor

    def forward(self, input):
        return F.interpolate(input, self.size, self.scale_factor, self.mode, self.align_corners,
                             self.recompute_scale_factor)

    def extra_repr(self):
        if self.scale_factor is not None:
            info = f"scale_factor={self.scale_factor!r}"
        else:
            info = f"size={self.size!r}"
        return info + f", mode={self.mode!r}"
