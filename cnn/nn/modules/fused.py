"""Fused modules: a chain of layers computed as one op, holding the layers it fuses.

Each is a :class:`~cnn.nn.Sequential` of the modules it fuses (their parameters, their
``state_dict`` keys ``"0.weight"``, ...), as ``torch.ao.nn.intrinsic``'s are, and declares the
chain it accepts: ``fuses``, the exact classes of the chain, and the classmethod
``accepts(modules)``. :class:`ConvReLUMaxPool2d` is also what Sequential runs automatically for
every Conv2d -> ReLU -> MaxPool2d(2) among its children (see cnn/nn/fusion.py);
:func:`cnn.nn.utils.fusion.fuse_modules` builds them in any model.
"""
from collections import OrderedDict

from cnn.nn import functional as F
from cnn.nn import fusion
from cnn.nn.container import Sequential

from .activation import ReLU
from .conv import Conv2d
from .pooling import MaxPool2d

__all__ = ["ConvReLU2d", "ConvReLUMaxPool2d"]


class _FusedModule(Sequential):
    """A Sequential of the modules of one chain that it runs as one op.

    Subclasses set ``fuses`` and may extend :meth:`accepts` with conditions on the settings.
    """

    fuses = ()

    def __init__(self, *modules):
        if not self.accepts(modules):
            given = ", ".join(type(module).__name__ for module in modules)
            expected = ", ".join(kind.__name__ for kind in self.fuses)
            raise ValueError(f"modules: {type(self).__name__} fuses {expected}"
                             f"{self._conditions()}, got {given}")
        super().__init__(*modules)

    @classmethod
    def accepts(cls, modules):
        """Whether `modules` is a chain this class computes as one op.

        Args:
            modules (sequence of Module): The candidate chain.

        Returns:
            bool: True when the classes are exactly ``fuses`` (a subclass may override forward)
            and the settings are supported.
        """
        return tuple(map(type, modules)) == cls.fuses

    @classmethod
    def _conditions(cls):
        """Why a chain of the right classes may still be refused, for error messages."""
        return ""

    def _slice(self, index):
        # A part of the chain is no longer this op: a plain Sequential of those modules.
        return Sequential(OrderedDict(list(self._modules.items())[index]))


_TWO = (2, (2, 2), [2, 2])


@fusion.register
class ConvReLUMaxPool2d(_FusedModule):
    """``MaxPool2d(2)(ReLU()(Conv2d(x)))`` as one op (:func:`F.conv2d_relu_max_pool2d`).

    The values and gradients are bit for bit those of the three layers, computed without
    storing the convolution's output. Fuses a Conv2d with ``groups=1`` and zero padding equal
    on both sides, and a MaxPool2d with a 2x2 window, stride 2, no padding, dilation 1, floor
    rounding and no returned indices.

    Args:
        conv (Conv2d): The convolution; its parameters are used, not copied.
        relu (ReLU): The activation.
        pool (MaxPool2d): The pooling.

    Shape:
        - Input: ``(N, C_in, H, W)``.
        - Output: ``(N, C_out, H_conv // 2, W_conv // 2)``, where ``H_conv`` and ``W_conv``
          are the convolution's output size.

    Raises:
        ValueError: If the modules are not such a chain.
    """

    fuses = (Conv2d, ReLU, MaxPool2d)

    def __init__(self, conv, relu, pool):
        super().__init__(conv, relu, pool)

    @classmethod
    def accepts(cls, modules):
        # The base class's test written out: this runs at every Sequential forward.
        if tuple(map(type, modules)) != cls.fuses:
            return False
        conv, _, pool = modules
        return (conv.groups == 1 and conv._pre_padding is None
                and pool.kernel_size in _TWO and pool.stride in _TWO
                and pool.padding in (0, (0, 0)) and pool.dilation in (1, (1, 1))
                and not pool.ceil_mode and not pool.return_indices)

    @classmethod
    def _conditions(cls):
        return (" (groups=1 and zero padding of equal sides; a 2x2 pool of stride 2 without "
                "padding, dilation, ceil_mode or return_indices)")

    def forward(self, input):
        """Apply the three layers as one op.

        Args:
            input: Tensor ``(N, C_in, H, W)``.

        Returns:
            Tensor: ``(N, C_out, H_conv // 2, W_conv // 2)``.
        """
        conv = self._modules["0"]
        return F.conv2d_relu_max_pool2d(input, conv.weight, conv.bias, conv.stride,
                                        conv.padding, conv.dilation)


class ConvReLU2d(_FusedModule):
    """A Conv2d followed by a ReLU, as ``torch.ao.nn.intrinsic.ConvReLU2d``.

    What :func:`cnn.nn.utils.fusion.fuse_modules` gives for Conv2d -> ReLU and, with the batch
    norm folded into the convolution, for Conv2d -> BatchNorm2d -> ReLU. It runs as the
    Sequential of its two modules.

    Args:
        conv (Conv2d): The convolution.
        relu (ReLU): The activation.

    Raises:
        ValueError: If the modules are not a Conv2d and a ReLU.
    """

    fuses = (Conv2d, ReLU)

    def __init__(self, conv, relu):
        super().__init__(conv, relu)
