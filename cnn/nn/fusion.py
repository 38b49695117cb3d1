"""How Sequential runs its layers: Conv2d -> ReLU -> MaxPool2d(2) as one fused op.

The three layers in a row are the core of small convnets (LeNet-5, the CIFAR-style nets). Run as
one op (cnn.nn.functional.conv2d_relu_max_pool2d) they give the same values and gradients
without storing the convolution's output or making three passes over it. Only the plain library
classes fuse (a subclass may override forward), and only a pool that is exactly 2x2 with stride
2, no padding, dilation 1, floor rounding and no returned indices. The profiler runs the layers
one by one instead (cnn/profiler.py), to time each of them.
"""
from . import functional as F
from .modules.activation import ReLU
from .modules.conv import Conv2d
from .modules.pooling import MaxPool2d

_TWO = (2, (2, 2), [2, 2])


def _pools_2x2(module):
    return (type(module) is MaxPool2d and module.kernel_size in _TWO
            and module.stride in _TWO and module.padding in (0, (0, 0))
            and module.dilation in (1, (1, 1)) and not module.ceil_mode
            and not module.return_indices)


def _fusable(modules, i):
    """Whether modules[i:i + 3] is a Conv2d (groups = 1), a ReLU and a 2x2 max-pool."""
    return (i + 2 < len(modules) and type(modules[i]) is Conv2d and modules[i].groups == 1
            and type(modules[i + 1]) is ReLU and _pools_2x2(modules[i + 2]))


def run(modules, input):
    """Apply `modules` in order to `input`, fusing every Conv2d -> ReLU -> MaxPool2d(2)."""
    i = 0
    while i < len(modules):
        if _fusable(modules, i):
            conv = modules[i]
            input = F.conv2d_relu_max_pool2d(input, conv.weight, conv.bias, conv.stride,
                                             conv.padding, conv.dilation)
            i += 3
        else:
            input = modules[i](input)
            i += 1
    return input
