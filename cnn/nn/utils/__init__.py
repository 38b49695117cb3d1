"""Tools that work on modules and their parameters (``torch.nn.utils``): gradient clipping,
parameters as one vector, and fusion of layer chains (``torch.ao.quantization.fuse_modules``)."""
from .clip_grad import clip_grad_norm_, clip_grad_value_
from .convert_parameters import parameters_to_vector, vector_to_parameters
from .fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_known_modules, fuse_modules

__all__ = ["clip_grad_norm_", "clip_grad_value_", "fuse_conv_bn_eval", "fuse_conv_bn_weights",
           "fuse_known_modules", "fuse_modules", "parameters_to_vector", "vector_to_parameters"]
