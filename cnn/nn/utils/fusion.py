"""Fusing chains of layers in any model, as PyTorch's tools do.

:class:`~cnn.nn.Sequential` fuses Conv2d -> ReLU -> MaxPool2d(2) among its children by itself
(cnn/nn/fusion.py). A model with its own ``forward`` calls its layers itself; name the chains
to :func:`fuse_modules` (``torch.ao.quantization.fuse_modules``), which puts a fused module in
place of the first layer of each chain and :class:`~cnn.nn.Identity` in place of the others::

    class Net(cnn.nn.Module):
        def forward(self, x):
            return self.pool(F.relu(self.conv(x)))   # ReLU as a function: no module to name

    net.relu = cnn.nn.ReLU()                          # ... so give fuse_modules one
    fused = fuse_modules(net, [["conv", "relu", "pool"]])

The chains it knows:

* Conv2d, ReLU, MaxPool2d (2x2, stride 2) -> :class:`~cnn.nn.ConvReLUMaxPool2d`, in any mode;
* Conv2d, ReLU -> :class:`~cnn.nn.ConvReLU2d`;
* Conv2d, BatchNorm2d -> a Conv2d with the batch norm folded into its weight and bias
  (:func:`fuse_conv_bn_eval`), in evaluation mode only, as in PyTorch: folding freezes the
  running statistics, which training would go on updating;
* Conv2d, BatchNorm2d, ReLU -> :class:`~cnn.nn.ConvReLU2d` of the folded Conv2d and the ReLU.
"""
import copy

import numpy as np

from ..modules.activation import ReLU
from ..modules.batchnorm import BatchNorm2d
from ..modules.conv import Conv2d
from ..modules.fused import ConvReLU2d, ConvReLUMaxPool2d
from ..modules.linear import Identity
from ..modules.pooling import MaxPool2d
from ..parameter import Parameter

__all__ = ["fuse_conv_bn_eval", "fuse_conv_bn_weights", "fuse_known_modules", "fuse_modules"]


def fuse_conv_bn_weights(conv_w, conv_b, bn_rm, bn_rv, bn_eps, bn_w, bn_b, transpose=False):
    """Fold a batch norm's statistics and affine parameters into a convolution's weight and
    bias, as ``torch.nn.utils.fusion.fuse_conv_bn_weights``.

    ``bn(conv(x)) == conv'(x)`` with ``w' = w * s`` per output channel and
    ``b' = (b - running_mean) * s + beta``, where ``s = gamma / sqrt(running_var + eps)``.

    Args:
        conv_w: The convolution's weight ``(C_out, C_in / groups, kH, kW)`` (a Tensor or
            array); with `transpose`, a transposed convolution's ``(C_in, C_out / groups, ...)``.
        conv_b: Its bias ``(C_out,)``, or None for zeros.
        bn_rm, bn_rv: The running mean and variance ``(C_out,)``.
        bn_eps (float): The batch norm's eps.
        bn_w, bn_b: Its scale and shift ``(C_out,)``, or None for ones and zeros.
        transpose (bool): The weight has the output channels on its second axis.

    Returns:
        (Parameter, Parameter): The folded weight (of the weight's dtype) and bias (of the
        bias's dtype, else the weight's). They require grad as the weight and bias did (a bias
        made from None does not).

    Raises:
        ValueError: If the statistics do not have one entry per output channel.
    """
    weight = np.asarray(conv_w)
    mean, var = np.asarray(bn_rm), np.asarray(bn_rv)
    channels = weight.shape[1 if transpose else 0]
    for name, value in (("bn_rm", mean), ("bn_rv", var), ("bn_w", bn_w), ("bn_b", bn_b),
                        ("conv_b", conv_b)):
        if value is not None and np.shape(value) != (channels,):
            raise ValueError(f"{name}: expected shape ({channels},) (one entry per output "
                             f"channel of the convolution), got {np.shape(value)}")
    bias = np.zeros_like(mean) if conv_b is None else np.asarray(conv_b)
    scale = np.ones_like(mean) if bn_w is None else np.asarray(bn_w)
    shift = np.zeros_like(mean) if bn_b is None else np.asarray(bn_b)
    var_rsqrt = 1 / np.sqrt(var + bn_eps)
    shape = [1, -1] if transpose else [-1, 1]
    shape += [1] * (weight.ndim - 2)
    fused_w = (weight * (scale * var_rsqrt).reshape(shape)).astype(weight.dtype)
    fused_b = ((bias - mean) * var_rsqrt * scale + shift).astype(
        weight.dtype if conv_b is None else bias.dtype)
    return (Parameter(fused_w, getattr(conv_w, "requires_grad", True)),
            Parameter(fused_b, conv_b is not None and getattr(conv_b, "requires_grad", True)))


def fuse_conv_bn_eval(conv, bn, transpose=False):
    """Return a copy of `conv` computing ``bn(conv(x))`` in evaluation mode, as
    ``torch.nn.utils.fusion.fuse_conv_bn_eval``.

    Args:
        conv (Conv2d): The convolution (left unchanged).
        bn (BatchNorm2d): The batch norm after it, with running statistics.
        transpose (bool): As in :func:`fuse_conv_bn_weights`.

    Returns:
        Conv2d: A deep copy of `conv` with the folded weight and bias.

    Raises:
        ValueError: If either module is in training mode, or `bn` keeps no running
            statistics.
    """
    if conv.training or bn.training:
        raise ValueError("fuse_conv_bn_eval: fusion only for eval mode (batch norm folded into "
                         "the convolution is frozen); call model.eval() first")
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("bn: folding needs running statistics (track_running_stats=True)")
    fused = copy.deepcopy(conv)
    fused.weight, fused.bias = fuse_conv_bn_weights(
        fused.weight, fused.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias,
        transpose)
    return fused


def _fuse_conv_relu_max_pool(is_qat, conv, relu, pool):
    return ConvReLUMaxPool2d(conv, relu, pool)


def _fuse_conv_relu(is_qat, conv, relu):
    return ConvReLU2d(conv, relu)


def _fuse_conv_bn(is_qat, conv, bn):
    _check_eval(is_qat, conv, bn)
    return fuse_conv_bn_eval(conv, bn)


def _fuse_conv_bn_relu(is_qat, conv, bn, relu):
    _check_eval(is_qat, conv, bn)
    return ConvReLU2d(fuse_conv_bn_eval(conv, bn), relu)


def _check_eval(is_qat, conv, bn):
    if conv.training != bn.training:
        raise ValueError("Conv and BN both must be in the same mode (train or eval).")
    if is_qat:
        raise ValueError("is_qat: quantization-aware training is not supported; fuse "
                         "Conv2d and BatchNorm2d in eval mode")


# The chains fuse_known_modules fuses, by the exact classes of their modules, as PyTorch's
# default fuser method mapping: fuser(is_qat, *modules) -> the fused module.
_FUSER_METHODS = {
    (Conv2d, ReLU, MaxPool2d): _fuse_conv_relu_max_pool,
    (Conv2d, ReLU): _fuse_conv_relu,
    (Conv2d, BatchNorm2d): _fuse_conv_bn,
    (Conv2d, BatchNorm2d, ReLU): _fuse_conv_bn_relu,
}


def fuse_known_modules(mod_list, is_qat=False, additional_fuser_method_mapping=None):
    """Fuse one chain of modules, as ``torch.ao.quantization.fuse_known_modules``.

    The forward pre-hooks of the first module and the forward hooks of the last move to the
    fused module.

    Args:
        mod_list (list of Module): The chain, in order.
        is_qat (bool): Quantization-aware training; only False is supported.
        additional_fuser_method_mapping (dict, optional): More chains: a tuple of classes to a
            ``fuser(is_qat, *modules)`` returning the fused module.

    Returns:
        list of Module: The fused module, then an :class:`~cnn.nn.Identity` (in the first
        module's mode) for each other module.

    Raises:
        ValueError: If the chain is not one it knows (the message names the classes), or its
            modules' settings or modes do not allow fusing.
    """
    types = tuple(type(module) for module in mod_list)
    methods = {**_FUSER_METHODS, **(additional_fuser_method_mapping or {})}
    fuser = methods.get(types)
    if fuser is None:
        known = "; ".join(", ".join(kind.__name__ for kind in chain) for chain in methods)
        raise ValueError(f"Cannot fuse modules: ({', '.join(t.__name__ for t in types)}); "
                         f"the chains that fuse are: {known}")
    fused = fuser(is_qat, *mod_list)
    first, last = mod_list[0], mod_list[-1]
    for hook in first._forward_pre_hooks.values():
        fused.register_forward_pre_hook(hook)
    first._forward_pre_hooks.clear()
    for hook in last._forward_hooks.values():
        fused.register_forward_hook(hook)
    last._forward_hooks.clear()
    identities = []
    for _ in mod_list[1:]:
        identity = Identity()
        identity.training = first.training
        identities.append(identity)
    return [fused] + identities


def fuse_modules(model, modules_to_fuse, inplace=False, fuser_func=fuse_known_modules,
                 fuse_custom_config_dict=None):
    """Fuse chains of a model's submodules, as ``torch.ao.quantization.fuse_modules``.

    Each chain is a list of dotted submodule names in the order the model applies them
    (``["conv", "bn", "relu"]``, ``["features.0", "features.1", "features.2"]``). Its first
    module is replaced by the fused module and the others by :class:`~cnn.nn.Identity`, so the
    model's own ``forward`` runs the fused computation unchanged. The fused module holds the
    original layers (a folded copy for Conv2d -> BatchNorm2d), so the state_dict keys of a
    fused chain change as in PyTorch (``"conv.0.weight"``).

    Args:
        model (Module): The model.
        modules_to_fuse (list): One chain (a list of names) or a list of chains.
        inplace (bool): Change `model` itself; by default a deep copy is fused and returned.
        fuser_func (callable): ``fuser_func(mod_list, is_qat, additional_fuser_method_mapping)``
            returning the replacement modules (default :func:`fuse_known_modules`).
        fuse_custom_config_dict (dict, optional): ``{"additional_fuser_method_mapping":
            {classes: fuser}}``, passed to `fuser_func`.

    Returns:
        Module: The fused model (`model` itself when `inplace`).

    Raises:
        ValueError: For a chain that cannot fuse (see :func:`fuse_known_modules`).
        AttributeError: For a name that is not a submodule.

    Example::

        model.eval()
        fused = fuse_modules(model, [["conv1", "bn1", "relu1"], ["conv2", "relu2", "pool2"]])
    """
    if not inplace:
        model = copy.deepcopy(model)
    chains = modules_to_fuse
    if all(isinstance(name, str) for name in modules_to_fuse):
        chains = [modules_to_fuse]
    additional = (fuse_custom_config_dict or {}).get("additional_fuser_method_mapping", {})
    for chain in chains:
        replacements = fuser_func([_get_module(model, name) for name in chain], False,
                                  additional)
        for name, module in zip(chain, replacements):
            _set_module(model, name, module)
    return model


def _get_module(model, name):
    module = model
    for token in name.split("."):
        module = getattr(module, token)
    return module


def _set_module(model, name, module):
    parent, _, leaf = name.rpartition(".")
    setattr(_get_module(model, parent) if parent else model, leaf, module)
