"""Differentiable operations with PyTorch's names and arguments (`import cnn.nn.functional as F`).

Each op is a `cnn.autograd.Function` whose forward and backward sit side by side in the module of
its family; the public function beside it checks its arguments (SPEC section 8) and applies it.
"""
from .activation import leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from .conv import conv2d, conv2d_relu_max_pool2d
from .dropout import dropout
from .linear import flatten, linear
from .loss import cross_entropy, mse_loss, nll_loss
from .normalization import batch_norm
from .pooling import avg_pool2d, max_pool2d

__all__ = ["conv2d", "max_pool2d", "avg_pool2d", "linear", "relu", "leaky_relu", "sigmoid",
           "tanh", "softmax", "log_softmax", "dropout", "batch_norm", "cross_entropy",
           "nll_loss", "mse_loss", "flatten", "conv2d_relu_max_pool2d"]
