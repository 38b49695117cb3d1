"""Tools that work on modules: fusion of layer chains (``torch.nn.utils`` and
``torch.ao.quantization.fuse_modules``)."""
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_known_modules, fuse_modules

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_known_modules", "fuse_modules"]
