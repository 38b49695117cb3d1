"""Containers: `Sequential` chains modules, `ModuleList` holds them like a list.

Children are named ``"0"``, ``"1"``, ... so state_dict keys read ``"0.weight"``, ``"3.bias"``,
exactly as PyTorch's.
"""
import operator
from collections import OrderedDict
from collections.abc import Mapping

from . import fusion
from .module import Module
from .module import _changed as module_changed

__all__ = ["Sequential", "ModuleList"]


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
