"""Differentiable operations with PyTorch's names and arguments (`import cnn.nn.functional as F`).

Each op is a `cnn.autograd.Function` whose forward and backward sit side by side in the module of
its family; the public function beside it checks its arguments (SPEC section 8) and applies it.
Importing this package also gives the Tensor the methods whose home is here (``x.relu()``,
``x.softmax(dim)``: see ``tensor_methods.py``).
"""
from . import tensor_methods
from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .adaptive_max_pool import adaptive_max_pool1d, adaptive_max_pool2d
from .conv import conv2d, conv2d_relu_max_pool2d
from .conv_transpose import conv_transpose2d
from .dropout import dropout, dropout2d
from .elementwise_loss import (binary_cross_entropy, binary_cross_entropy_with_logits,
                               huber_loss, kl_div, l1_loss, smooth_l1_loss)
from .group_norm import group_norm, layer_norm
from .linear import flatten, linear
from .loss import cross_entropy, mse_loss, nll_loss
from .nonlinear import elu, gelu, hardtanh, relu6, silu, softplus
from .normalization import batch_norm
from .one_dimensional import avg_pool1d, conv1d, max_pool1d
from .one_hot import one_hot
from .padding import pad
from .pooling import avg_pool2d, max_pool2d
from .resampling import adaptive_avg_pool1d, adaptive_avg_pool2d, interpolate

tensor_methods.attach()

__all__ = ["conv1d", "conv2d", "conv_transpose2d", "max_pool1d", "max_pool2d", "avg_pool1d",
           "avg_pool2d", "adaptive_avg_pool1d", "adaptive_avg_pool2d", "adaptive_max_pool1d",
           "adaptive_max_pool2d", "linear", "relu", "relu6", "leaky_relu", "elu", "gelu",
           "silu", "softplus", "hardtanh", "sigmoid", "tanh", "softmax", "log_softmax",
           "dropout", "dropout2d", "batch_norm", "layer_norm", "group_norm", "cross_entropy",
           "nll_loss", "mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss",
           "binary_cross_entropy", "binary_cross_entropy_with_logits", "kl_div", "one_hot",
           "pad", "interpolate", "flatten", "conv2d_relu_max_pool2d"]
