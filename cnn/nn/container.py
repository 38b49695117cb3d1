"""Containers: `Sequential` chains modules, `ModuleList` holds them like a list.

Children are named ``"0"``, ``"1"``, ... so state_dict keys read ``"0.weight"``, ``"3.bias"``,
exactly as PyTorch's.
"""
import operator
from collections import OrderedDict
from collections.abc import Mapping

from . import fusion
from .module import Module

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
        if len(args) == 1 and isinstance(args[0], Mapping):
            for name, module in args[0].items():
                self.add_module(name, module)
        else:
            for index, module in enumerate(args):
                self.add_module(str(index), module)

    def _slice(self, index):
        return type(self)(OrderedDict(list(self._modules.items())[index]))

    def forward(self, input):
        """Run the modules in order; a Conv2d, ReLU, MaxPool2d(2) run is one fused op with the
        same values and gradients (see cnn/nn/fusion.py).

        Args:
            input: The first module's input.

        Returns:
            The last module's output (the input itself when empty).
        """
        return fusion.run(tuple(self._modules.values()), input)

    def __str__(self):
        # print(model) as in the original library: PyTorch's repr, then the parameter count.
        # repr(model) stays exactly PyTorch's.
        count = sum(param.data.size for param in self.parameters())
        return f"{self!r}\nNumber of parameters : {count}"

    # ----- the original library's checkpoints (see cnn.seed) -----

    def save_model(self, name):
        """Save the state dict to ``name + ".npy"``, atomically and without pickle.

        The original library's name for saving. The file is an ``.npz`` archive (see
        :func:`cnn.save`) carrying the original's ``.npy`` name.

        Args:
            name (str or os.PathLike): The file name; ``.npy`` is appended unless present.

        Returns:
            str: The path written.
        """
        from ..seed import save_model
        return save_model(self, name)

    def load_model(self, path, allow_pickle=False):
        """Load a checkpoint written by :meth:`save_model` or :func:`cnn.save`, in place.

        Everything is validated before anything changes: a failed load leaves the model as it
        was. With ``allow_pickle=True`` it also reads the original library's pickled
        checkpoints; unpickling runs code stored in the file, so pass True only for a file you
        trust. See :func:`cnn.seed.load_model`.

        Args:
            path (str or os.PathLike): The checkpoint.
            allow_pickle (bool): Allow the original library's pickled format.

        Returns:
            Sequential: self

        Raises:
            OSError: If the file cannot be read.
            ValueError: If it is not a checkpoint for this model, or is pickled and
                `allow_pickle` is False.
            TypeError: If its values have dtypes the model cannot take.
        """
        from ..seed import load_model
        return load_model(self, path, allow_pickle=allow_pickle)

    # ----- the original library's per-layer timing (see cnn.profiler) -----

    def enable_profiling(self, reset=True):
        """Start timing each layer's forward and backward (see :mod:`cnn.profiler`).

        Args:
            reset (bool): Start from zero rather than continue the previous timings.

        Returns:
            cnn.profiler.LayerProfile: The timings being recorded.
        """
        from .. import profiler
        return profiler.enable(self, reset=reset)

    def disable_profiling(self):
        """Stop timing the layers; :attr:`forward_time` and :attr:`backward_time` are kept.

        Returns:
            cnn.profiler.LayerProfile or None: The timings, None if never profiled.
        """
        from .. import profiler
        return profiler.disable(self)

    @property
    def forward_time(self):
        """list of float: Seconds spent in each layer's forward while profiling was enabled.

        One entry per layer (see :mod:`cnn.profiler`), all zero before profiling is first
        enabled with :meth:`enable_profiling`.
        """
        return self._layer_profile().forward_time

    @property
    def backward_time(self):
        """list of float: Seconds spent in each layer's backward while profiling was enabled.

        One entry per layer, all zero before profiling is first enabled.
        """
        return self._layer_profile().backward_time

    def print_profile(self, file=None):
        """Print the table of forward and backward seconds per layer.

        Args:
            file (file object, optional): Where to print; standard output by default.

        Raises:
            RuntimeError: If profiling was never enabled for this model.
        """
        from .. import profiler
        profile = profiler.get_profile(self)
        if profile is None:
            raise RuntimeError("profiling was never enabled for this model: call "
                               "model.enable_profiling() (or use cnn.profiler.profile(model)) "
                               "before running it")
        print(profile.table(), file=file)

    def _layer_profile(self):
        from .. import profiler
        return profiler.get_profile(self) or profiler.blank_profile(self)


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
