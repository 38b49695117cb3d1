"""Containers: `Sequential` chains modules, `ModuleList` and `ModuleDict` hold them like a list
and a dict, `ParameterList` and `ParameterDict` hold parameters.

Children are named ``"0"``, ``"1"``, ... (or by their keys) so state_dict keys read
``"0.weight"``, ``"3.bias"``, ``"heads.cls.weight"``, exactly as PyTorch's.
"""
import operator
from collections import OrderedDict
from collections.abc import Mapping

from ..tensor import Tensor
from . import fusion
from .module import Module
from .module import _changed as module_changed
from .parameter import Parameter

__all__ = ["Sequential", "ModuleList", "ModuleDict", "ParameterList", "ParameterDict"]


class _ModuleSequence(Module):
    """The list behaviour Sequential and ModuleList share: indexing by position, len, iter."""

    def _key(self, index):
        """The child name at position `index` (negative counts from the end)."""
        try:
            index = operator.index(index)
        except TypeError:
            raise TypeError(f"index: expected an integer or a slice, got {type(index).__name__} "
                            f"{index!r}") from None
        size = len(self._modules)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range for {type(self).__name__} of "
                             f"length {size}")
        return list(self._modules)[index]

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._slice(index)
        return self._modules[self._key(index)]

    def __setitem__(self, index, module):
        setattr(self, self._key(index), module)

    def __delitem__(self, index):
        keys = list(self._modules)[index] if isinstance(index, slice) else [self._key(index)]
        for key in keys:
            del self._modules[key]
        # Renumber so that positions and names agree again, as PyTorch does.
        module_changed()
        remaining = list(self._modules.values())
        self._modules.clear()
        self._modules.update((str(i), module) for i, module in enumerate(remaining))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())

    def append(self, module):
        """Add `module` at the end, named by its position.

        Args:
            module (Module): The module to add.

        Returns:
            self
        """
        self.add_module(str(len(self._modules)), module)
        return self

    def extend(self, modules):
        """Append every module of an iterable.

        Args:
            modules (iterable of Module): The modules to add, in order.

        Returns:
            self
        """
        for module in modules:
            self.append(module)
        return self


class Sequential(_ModuleSequence):
    """A chain of modules: the output of each is the input of the next.

    Built from modules given in order (named ``"0"``, ``"1"``, ...) or from one mapping of
    names to modules::

        model = Sequential(Conv2d(1, 6, 5), ReLU(), MaxPool2d(2))
        model = Sequential(OrderedDict([("conv", Conv2d(1, 6, 5)), ("relu", ReLU())]))

    Indexing with an int gives a module, with a slice a new Sequential of the same modules
    (keeping their names, as in PyTorch).
    """

    def __init__(self, *args):
        super().__init__()
        # The fused modules the fusion pass built over chains of the children (not children
        # themselves: see cnn/nn/fusion.py), kept so that each forward need not rebuild them.
        object.__setattr__(self, "_fused", {})
        if len(args) == 1 and isinstance(args[0], Mapping):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def _slice(self, index):
        return type(self)(OrderedDict(list(self._modules.items())[index]))

    def forward(self, input):
        """Run the modules in order, each chain the fusion pass accepts as one fused module
        with the same values and gradients (Conv2d -> ReLU -> MaxPool2d(2); see
        cnn/nn/fusion.py).

        Args:
            input: The first module's input.

        Returns:
            The last module's output (the input itself when empty).
        """
        for segment in fusion.segments(tuple(self._modules.values()), self._fused):
            input = segment(input)
        return input


class ModuleList(_ModuleSequence):
    """A list of modules, registered so their parameters are found; it has no forward.

    Args:
        modules (iterable of Module, optional): The initial modules.
    """

    def __init__(self, modules=None):
        super().__init__()
        if modules is not None:
            self.extend(modules)

    def _slice(self, index):
        return type(self)(list(self._modules.values())[index])

    def __iadd__(self, modules):
        return self.extend(modules)


class _Dict(Module):
    """The dict behaviour ModuleDict and ParameterDict share, over the store ``_store``."""

    _store = None

    def __init__(self, items=None):
        super().__init__()
        if items is not None:
            self.update(items)

    def _members(self):
        return self.__dict__[self._store]

    def __getitem__(self, key):
        return self._members()[key]

    def __delitem__(self, key):
        del self._members()[key]

    def __len__(self):
        return len(self._members())

    def __iter__(self):
        return iter(self._members())

    def __contains__(self, key):
        return key in self._members()

    def keys(self):
        """Return the keys, in insertion order."""
        return self._members().keys()

    def items(self):
        """Return the (key, member) pairs, in insertion order."""
        return self._members().items()

    def values(self):
        """Return the members, in insertion order."""
        return self._members().values()

    def pop(self, key):
        """Remove the member under `key` and return it."""
        return self._members().pop(key)

    def clear(self):
        """Remove every member."""
        self._members().clear()

    def update(self, items):
        """Add (or replace) the members of a mapping or of an iterable of (key, member) pairs."""
        pairs = items.items() if isinstance(items, Mapping) else items
        for pair in pairs:
            if not isinstance(pair, (tuple, list)) or len(pair) != 2:
                raise TypeError(f"{type(self).__name__}.update: expected (key, value) pairs, "
                                f"got {pair!r}")
            self[pair[0]] = pair[1]


class ModuleDict(_Dict):
    """An ordered dict of modules, registered so their parameters are found; it has no forward.

    Args:
        modules (mapping or iterable of (key, Module) pairs, optional): The initial modules.
    """

    _store = "_modules"

    def __init__(self, modules=None):
        super().__init__(modules)

    def __setitem__(self, key, module):
        self.add_module(key, module)


def _as_parameter(value, name):
    """`value` as a Parameter: a Tensor is wrapped, sharing its memory, as PyTorch's parameter
    containers do; None keeps an empty slot."""
    if value is None or isinstance(value, Parameter):
        return value
    if isinstance(value, Tensor):
        return Parameter(value._data, requires_grad=value.requires_grad)
    raise TypeError(f"{name}: expected a Parameter or a Tensor, got {type(value).__name__}")


def _parameters_repr(module):
    """One line per parameter, as PyTorch's parameter containers print."""
    return "\n".join(f"({key}): Parameter containing: [cnn.{param.dtype.name} of size "
                     f"{'x'.join(map(str, param.shape))}]"
                     for key, param in module._parameters.items() if param is not None)


class ParameterList(Module):
    """A list of parameters (named ``"0"``, ``"1"``, ...), registered with the module.

    Args:
        values (iterable of Parameter or Tensor, optional): The initial parameters; Tensors
            are wrapped into Parameters sharing their memory.
    """

    def __init__(self, values=None):
        super().__init__()
        if values is not None:
            self.extend(values)

    def _key(self, index):
        index = operator.index(index)
        size = len(self._parameters)
        if not -size <= index < size:
            raise IndexError(f"index {index} is out of range for ParameterList of length {size}")
        return str(index % size)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return ParameterList(list(self._parameters.values())[index])
        return self._parameters[self._key(index)]

    def __setitem__(self, index, param):
        self.register_parameter(self._key(index), _as_parameter(param, "param"))

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())

    def append(self, value):
        """Add a parameter at the end; returns self."""
        self.register_parameter(str(len(self._parameters)), _as_parameter(value, "value"))
        return self

    def extend(self, values):
        """Append every parameter of an iterable; returns self."""
        for value in values:
            self.append(value)
        return self

    extra_repr = _parameters_repr


class ParameterDict(_Dict):
    """An ordered dict of parameters, registered with the module under their keys.

    Args:
        parameters (mapping or iterable of (key, Parameter) pairs, optional): The initial
            parameters; Tensors are wrapped into Parameters sharing their memory.
    """

    _store = "_parameters"

    def __init__(self, parameters=None):
        super().__init__(parameters)

    def __setitem__(self, key, value):
        self.register_parameter(key, _as_parameter(value, "value"))

    extra_repr = _parameters_repr
