"""The base class of every layer and model: parameters, buffers, submodules and their state.

`Module` follows `torch.nn.Module`: assigning a :class:`Parameter` or a `Module` to an attribute
registers it in an ordered dict, so `named_parameters()` and `state_dict()` can walk the tree
and name every entry with PyTorch's dotted keys (``"features.0.weight"``). Buffers are plain
NumPy arrays (running statistics) or Tensors (``register_buffer("mask", cnn.ones(3))``), saved
with the parameters but never trained.
"""
import threading
import warnings
from collections import OrderedDict, namedtuple
from collections.abc import Mapping

import numpy as np

from .. import _aligned
from .._tensor.conversion import to_arguments
from .._validation import FLOAT_DTYPES
from ..devices import unavailable
from ..tensor import Tensor
from ..utils.hooks import RemovableHandle
from .parameter import Parameter

__all__ = ["Module", "structure_version"]

# Counts every change to any module's attributes, children, parameters, buffers or hooks (and
# the train/eval switch, an attribute too): cnn.compile's captured forwards are valid while it
# stays the same. One increment per change; nothing on the hot path reads it but cnn.compile.
_structure_version = 0
_structure_lock = threading.Lock()


def structure_version():
    """The number of changes made so far to any module's attributes, children, parameters,
    buffers or hooks (train/eval included): equal values mean no module changed between."""
    return _structure_version


def _changed():
    global _structure_version
    with _structure_lock:  # two threads' changes must both count
        _structure_version += 1

# Which source dtype kinds a destination of each kind accepts in load_state_dict: ints and floats
# cast into floats as PyTorch's copy_ does, but a float never silently truncates into an integer
# buffer, and bools, complex numbers, strings and objects are refused everywhere.
_LOADABLE_KINDS = {"f": "iuf", "i": "iu", "u": "iu"}


class _IncompatibleKeys(namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])):
    """What `load_state_dict` skipped: names it expected but did not get, and names it ignored."""

    __slots__ = ()

    def __repr__(self):
        if not self.missing_keys and not self.unexpected_keys:
            return "<All keys matched successfully>"
        return super().__repr__()


def _addindent(text, spaces):
    """Indent every line of `text` but the first (it follows a "(name): " label)."""
    lines = text.split("\n")
    if len(lines) == 1:
        return text
    pad = " " * spaces
    return lines[0] + "\n" + "\n".join(pad + line for line in lines[1:])


def _root(array):
    """The array that owns `array`'s memory (itself unless it is a view)."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


def _check_name(name, kind, owner):
    """Refuse a name that could not be an attribute or would break dotted state_dict keys."""
    if not isinstance(name, str):
        raise TypeError(f"name: expected a string for the {kind} name, got "
                        f"{type(name).__name__} {name!r}")
    if "." in name:
        raise ValueError(f"name: a {kind} name cannot contain '.', got {name!r}")
    if name == "":
        raise ValueError(f"name: a {kind} name cannot be the empty string")
    if hasattr(owner, name) and name not in owner.__dict__[f"_{kind}s"]:
        raise ValueError(f"name: {type(owner).__name__} already has an attribute {name!r} that is "
                         f"not a {kind}")


def _require_init(module, kind):
    if "_parameters" not in module.__dict__:
        raise AttributeError(f"cannot assign {kind} before Module.__init__() call: call "
                             f"super().__init__() first in {type(module).__name__}.__init__")


class Module:
    """Base class for all layers and models.

    Subclasses call ``super().__init__()`` first, assign their parameters and submodules as
    attributes, and override :meth:`forward`. Calling the module runs ``forward``::

        class Net(cnn.nn.Module):
            def __init__(self):
                super().__init__()
                self.fc = cnn.nn.Linear(4, 2)

            def forward(self, x):
                return self.fc(x).relu()

    Attributes:
        training (bool): True in training mode (dropout active, batch norm updating its running
            statistics), False after :meth:`eval`.
    """

    def __init__(self):
        # Bypass __setattr__: it reads these very dicts to route every later assignment.
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", {})
        set_(self, "_buffers", {})
        set_(self, "_non_persistent_buffers", set())
        set_(self, "_modules", {})
        # Hook tables keyed by RemovableHandle.id, ordered dicts (as PyTorch's) so that a
        # handle can refer to them weakly and a prepended hook can move to the front.
        set_(self, "_forward_pre_hooks", OrderedDict())
        set_(self, "_forward_pre_hooks_with_kwargs", OrderedDict())
        set_(self, "_forward_hooks", OrderedDict())
        set_(self, "_forward_hooks_with_kwargs", OrderedDict())
        set_(self, "_forward_hooks_always_called", OrderedDict())

    def forward(self, *args, **kwargs):
        """Compute the module's output; every subclass must override this.

        Raises:
            NotImplementedError: Always, on the base class.
        """
        raise NotImplementedError(f'Module [{type(self).__name__}] is missing the required '
                                  f'"forward" function: define forward(self, ...) in the class')

    # Every layer of every training step passes through here: without hooks, one test of two
    # empty dicts and the forward call.
    def __call__(self, *args, **kwargs):
        """Run :meth:`forward` with the given arguments, and the hooks around it if any."""
        if self._forward_pre_hooks or self._forward_hooks:
            return self._call_with_hooks(args, kwargs)
        return self.forward(*args, **kwargs)

    # ----- hooks -----

    def register_forward_pre_hook(self, hook, *, prepend=False, with_kwargs=False):
        """Call `hook` before every :meth:`forward`, as ``torch.nn.Module``'s pre-hooks.

        ``hook(module, args)`` gets the positional arguments as a tuple and may return None
        (keep them), a tuple (the new arguments) or a single value (the new only argument).
        With ``with_kwargs=True`` it is ``hook(module, args, kwargs)`` and returns None or a
        pair ``(new_args, new_kwargs)``.

        Args:
            hook (callable): The hook.
            prepend (bool): Run it before the pre-hooks already registered, not after.
            with_kwargs (bool): Pass the keyword arguments too.

        Returns:
            cnn.utils.hooks.RemovableHandle: ``handle.remove()`` unregisters the hook.
        """
        return _add_hook(self._forward_pre_hooks, hook, prepend,
                         [(self._forward_pre_hooks_with_kwargs, with_kwargs)])

    def register_forward_hook(self, hook, *, prepend=False, with_kwargs=False,
                              always_call=False):
        """Call `hook` after every :meth:`forward`, as ``torch.nn.Module``'s forward hooks.

        ``hook(module, args, output)`` gets the positional arguments (as the pre-hooks left
        them) and the output, and may return None (keep the output) or a new output. With
        ``with_kwargs=True`` it is ``hook(module, args, kwargs, output)``.

        Args:
            hook (callable): The hook.
            prepend (bool): Run it before the forward hooks already registered, not after.
            with_kwargs (bool): Pass the keyword arguments too.
            always_call (bool): Run it even when a pre-hook or forward raises (with the output
                None); an error it raises then is turned into a warning and the first error
                propagates.

        Returns:
            cnn.utils.hooks.RemovableHandle: ``handle.remove()`` unregisters the hook.
        """
        return _add_hook(self._forward_hooks, hook, prepend,
                         [(self._forward_hooks_with_kwargs, with_kwargs),
                          (self._forward_hooks_always_called, always_call)])

    def _call_with_hooks(self, args, kwargs):
        """:meth:`__call__` of a module with hooks, in ``torch.nn.Module._call_impl``'s order."""
        result = None
        called = set()  # the always-called forward hooks that already ran
        try:
            for hook_id, hook in list(self._forward_pre_hooks.items()):
                if hook_id in self._forward_pre_hooks_with_kwargs:
                    new = hook(self, args, kwargs)
                    if new is not None:
                        if not (isinstance(new, tuple) and len(new) == 2):
                            raise RuntimeError("forward pre-hook must return None or a tuple of "
                                               f"(new_args, new_kwargs), but got {new}.")
                        args, kwargs = new
                else:
                    new = hook(self, args)
                    if new is not None:
                        args = new if isinstance(new, tuple) else (new,)
            result = self.forward(*args, **kwargs)
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called:
                    called.add(hook_id)
                new = self._run_forward_hook(hook_id, hook, args, kwargs, result)
                if new is not None:
                    result = new
            return result
        except Exception:
            for hook_id, hook in list(self._forward_hooks.items()):
                if hook_id in self._forward_hooks_always_called and hook_id not in called:
                    try:
                        new = self._run_forward_hook(hook_id, hook, args, kwargs, result)
                    except Exception as error:  # noqa: BLE001 (the first error wins)
                        warnings.warn("forward hook with ``always_call=True`` raised an "
                                      "exception that was silenced as another error was "
                                      f"raised in forward: {error}", stacklevel=2)
                        continue
                    if new is not None:
                        result = new
            raise

    def _run_forward_hook(self, hook_id, hook, args, kwargs, result):
        if hook_id in self._forward_hooks_with_kwargs:
            return hook(self, args, kwargs, result)
        return hook(self, args, result)

    # ----- registration -----

    def register_parameter(self, name, param):
        """Add a parameter under `name`, or reserve the slot with None (e.g. ``bias=False``).

        Args:
            name (str): Attribute name; no dots.
            param (Parameter or None): The parameter. A None slot is skipped by
                :meth:`parameters` and :meth:`state_dict`.

        Raises:
            TypeError: If `param` is neither a Parameter nor None, or `name` is not a string.
            ValueError: If `name` is empty, contains a dot, or is already a non-parameter attribute.
        """
        _require_init(self, "parameters")
        _check_name(name, "parameter", self)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"cannot assign {type(param).__name__} to parameter {name!r}: "
                            f"expected a cnn.nn.Parameter or None")
        _changed()
        self._parameters[name] = param

    def register_buffer(self, name, tensor, persistent=True):
        """Add a buffer: state that is saved but not trained, such as batch norm running means.

        Args:
            name (str): Attribute name; no dots.
            tensor (Tensor, numpy.ndarray or None): The buffer, kept as given (``self.name`` is
                that object). A None buffer is not saved.
            persistent (bool): Whether :meth:`state_dict` includes it.

        Raises:
            TypeError: If `tensor` is neither a Tensor, a NumPy array nor None, or `name` is
                not a string.
            ValueError: If `name` is empty, contains a dot, or is already a non-buffer attribute.
        """
        _require_init(self, "buffers")
        _check_name(name, "buffer", self)
        _check_buffer(name, tensor)
        _changed()
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name, module):
        """Add a child module under `name` (None keeps the slot empty).

        Args:
            name (str): Attribute name; no dots.
            module (Module or None): The child.

        Raises:
            TypeError: If `module` is neither a Module nor None, or `name` is not a string.
            ValueError: If `name` is empty, contains a dot, or is already a non-module attribute.
        """
        _require_init(self, "modules")
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"cannot assign {type(module).__name__} as child module {name!r}: "
                            f"expected a cnn.nn.Module or None")
        _check_name(name, "module", self)
        _changed()
        self._modules[name] = module

    def register_module(self, name, module):
        """Alias of :meth:`add_module`."""
        self.add_module(name, module)

    def __getattr__(self, name):
        # Only reached when ordinary lookup fails, which is how every `self.weight` in every
        # forward arrives here, hence unrolled. Reading __dict__ keeps this safe on a half-built
        # instance (copy.deepcopy probes attributes before filling it).
        state = self.__dict__
        if "_parameters" in state:
            members = state["_parameters"]
            if name in members:
                return members[name]
            members = state["_buffers"]
            if name in members:
                return members[name]
            members = state["_modules"]
            if name in members:
                return members[name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __setattr__(self, name, value):
        _changed()
        state = self.__dict__
        params = state.get("_parameters")
        modules = state.get("_modules")
        buffers = state.get("_buffers")
        if isinstance(value, Parameter):
            _require_init(self, "parameters")
            self._forget(name, state, buffers, modules)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as parameter {name!r}: "
                                f"expected a cnn.nn.Parameter or None")
            params[name] = None
        elif isinstance(value, Module):
            _require_init(self, "modules")
            self._forget(name, state, params, buffers)
            modules[name] = value
        elif modules is not None and name in modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} as child module {name!r}: "
                                f"expected a cnn.nn.Module or None")
            modules[name] = None
        elif buffers is not None and name in buffers:
            _check_buffer(name, value)
            buffers[name] = value
        else:
            object.__setattr__(self, name, value)

    def _forget(self, name, *stores):
        """Drop `name` from the other stores so one attribute lives in exactly one place."""
        for store in stores:
            if name in store:
                del store[name]
        self._non_persistent_buffers.discard(name)

    def __delattr__(self, name):
        _changed()
        if name in self._parameters:
            del self._parameters[name]
        elif name in self._buffers:
            del self._buffers[name]
            self._non_persistent_buffers.discard(name)
        elif name in self._modules:
            del self._modules[name]
        else:
            object.__delattr__(self, name)

    def __dir__(self):
        keys = (dir(type(self)) + list(self.__dict__) + list(self._parameters)
                + list(self._modules) + list(self._buffers))
        # Sequential's "0", "1", ... are not identifiers.
        return sorted({key for key in keys if not key[0].isdigit()})

    # ----- traversal -----

    def named_modules(self, memo=None, prefix="", remove_duplicate=True):
        """Iterate over this module and every module below it, depth first, with dotted names.

        Args:
            memo (set, optional): Modules already visited; they and their subtrees are skipped.
            prefix (str): Prepended to every name; this module's own name.
            remove_duplicate (bool): Yield a module reached by several paths only once.

        Yields:
            (str, Module): The name (``""`` for this module, ``"features.0"`` below) and module.
        """
        if memo is None:
            memo = set()
        if self in memo:
            return
        if remove_duplicate:
            memo.add(self)
        yield prefix, self
        for name, module in self._modules.items():
            if module is not None:
                yield from module.named_modules(memo, f"{prefix}.{name}" if prefix else name,
                                                remove_duplicate)

    def modules(self):
        """Iterate over this module and every module below it, each once.

        Yields:
            Module: This module first, then its descendants depth first.
        """
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        """Iterate over the direct children, each once.

        Yields:
            (str, Module): The attribute name and the child.
        """
        seen = set()
        for name, module in self._modules.items():
            if module is not None and module not in seen:
                seen.add(module)
                yield name, module

    def children(self):
        """Iterate over the direct children, each once.

        Yields:
            Module: Each child module.
        """
        for _, module in self.named_children():
            yield module

    def _named_members(self, store, prefix, recurse, remove_duplicate):
        # Buffers are ndarrays, which are unhashable, so members are remembered by identity.
        seen = set()
        pairs = (self.named_modules(prefix=prefix, remove_duplicate=remove_duplicate) if recurse
                 else [(prefix, self)])
        for module_prefix, module in pairs:
            for name, member in module.__dict__[store].items():
                if member is None or id(member) in seen:
                    continue
                if remove_duplicate:
                    seen.add(id(member))
                yield (f"{module_prefix}.{name}" if module_prefix else name), member

    def named_parameters(self, prefix="", recurse=True, remove_duplicate=True):
        """Iterate over the parameters with their dotted names, each parameter once.

        Args:
            prefix (str): Prepended to every name.
            recurse (bool): Include the parameters of submodules, not only this module's own.
            remove_duplicate (bool): A parameter shared by several modules is listed once,
                under the first name it is reached by.

        Yields:
            (str, Parameter): Names such as ``"0.weight"`` or ``"features.3.bias"``.
        """
        return self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse=True):
        """Iterate over the parameters, each once (what an optimizer is given).

        Args:
            recurse (bool): Include the parameters of submodules.

        Yields:
            Parameter: In registration order, depth first.
        """
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix="", recurse=True, remove_duplicate=True):
        """Iterate over the buffers with their dotted names, persistent or not.

        Args:
            prefix (str): Prepended to every name.
            recurse (bool): Include the buffers of submodules.
            remove_duplicate (bool): List an array held by several modules once.

        Yields:
            (str, numpy.ndarray): Names such as ``"bn.running_mean"``.
        """
        return self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse=True):
        """Iterate over the buffers, each once.

        Args:
            recurse (bool): Include the buffers of submodules.

        Yields:
            numpy.ndarray: Each buffer array.
        """
        for _, array in self.named_buffers(recurse=recurse):
            yield array

    def apply(self, fn):
        """Call `fn` on every submodule (children first) and then on this module.

        Args:
            fn (callable): Takes a Module; typically re-initialises weights.

        Returns:
            Module: self
        """
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ----- state -----

    def state_dict(self, *, destination=None, prefix="", keep_vars=False):
        """Return the module's state: every parameter and persistent buffer under PyTorch's keys.

        Shared parameters appear under every name that reaches them, as in PyTorch, so the
        dict loads back into the same architecture key for key.

        Args:
            destination (dict, optional): Filled and returned instead of a new OrderedDict.
            prefix (str): Prepended to every key.
            keep_vars (bool): Give the Parameter objects instead of their arrays.

        Returns:
            OrderedDict: ``{"0.weight": array, ..., "bn.running_mean": array}``. The arrays are
            the live ones (like PyTorch's detached views): copy them to keep a snapshot.
        """
        if destination is None:
            destination = OrderedDict()
        for name, param in self._parameters.items():
            if param is not None:
                destination[prefix + name] = param if keep_vars else param._data
        for name, buffer in self._buffers.items():
            if buffer is not None and name not in self._non_persistent_buffers:
                destination[prefix + name] = (buffer._data if isinstance(buffer, Tensor)
                                              and not keep_vars else buffer)
        for name, module in self._modules.items():
            if module is not None:
                module.state_dict(destination=destination, prefix=f"{prefix}{name}.",
                                  keep_vars=keep_vars)
        return destination

    def load_state_dict(self, state_dict, strict=True):
        """Copy values from `state_dict` into the parameters and buffers, in place.

        Every key, shape and dtype is checked before anything is written, so a failed load
        leaves the module exactly as it was. Values are copied into the existing arrays, so the
        Parameter objects (and the optimizers holding them) stay valid. Floats of another
        precision and integers are cast to the destination's dtype, as PyTorch's ``copy_`` does.

        Args:
            state_dict (Mapping): Names to NumPy arrays (or NumPy scalars for 0-d entries) or
                Tensors, as :meth:`state_dict` gives, or to other libraries' arrays: PyTorch
                tensors (``model.load_state_dict(torch_model.state_dict())``) and anything
                with ``.numpy()`` or ``__array__``.
            strict (bool): Require exactly this module's keys. When False, missing and
                unexpected keys are returned instead of raised; wrong shapes and dtypes still raise.

        Returns:
            IncompatibleKeys: A namedtuple ``(missing_keys, unexpected_keys)`` of lists.

        Raises:
            ValueError: Missing or unexpected keys (strict), shape mismatches, or a read-only
                destination; the message lists every problem by key.
            TypeError: If `state_dict` is not a mapping, or every problem is a value that is not
                an array of a real numeric dtype castable to the destination.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        targets = self.state_dict()
        missing = [key for key in targets if key not in state_dict]
        unexpected = [key for key in state_dict if key not in targets]
        problems = []  # (exception type, message)
        if strict and missing:
            problems.append((ValueError, "Missing key(s) in state_dict: "
                             + ", ".join(f'"{key}"' for key in missing) + "."))
        if strict and unexpected:
            problems.append((ValueError, "Unexpected key(s) in state_dict: "
                             + ", ".join(f'"{key}"' for key in unexpected) + "."))
        sources = {}
        for key, target in targets.items():
            if key in state_dict:
                source, problem = _loadable(key, state_dict[key], target)
                if problem:
                    problems.append(problem)
                else:
                    sources[key] = source
        if problems:
            error = ValueError if any(kind is ValueError for kind, _ in problems) else TypeError
            raise error(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                        + "\n\t".join(message for _, message in problems))
        # A source that is a view of another key's destination (keys swapped within one model)
        # would be overwritten before it is read; detach those first.
        owners = {id(_root(target)) for target in targets.values()}
        for key, source in sources.items():
            if source is not targets[key] and id(_root(source)) in owners:
                sources[key] = source.copy()
        for key, source in sources.items():
            np.copyto(targets[key], source, casting="unsafe")
        return _IncompatibleKeys(missing, unexpected)

    # ----- modes and conversions -----

    def train(self, mode=True):
        """Set training mode on this module and every submodule.

        Args:
            mode (bool): True for training, False for evaluation.

        Returns:
            Module: self
        """
        if not isinstance(mode, (bool, np.bool_)):
            raise TypeError(f"mode: expected a bool, got {type(mode).__name__} {mode!r}")
        self.training = bool(mode)
        # Through each child's own train(), so a layer that overrides it is honoured.
        for module in self.children():
            module.train(mode)
        return self

    def eval(self):
        """Set evaluation mode (``train(False)``) on this module and every submodule.

        Returns:
            Module: self
        """
        return self.train(False)

    def requires_grad_(self, requires_grad=True):
        """Set ``requires_grad`` on every parameter (False freezes them).

        Args:
            requires_grad (bool): Whether autograd records operations on the parameters.

        Returns:
            Module: self
        """
        if not isinstance(requires_grad, (bool, np.bool_)):
            raise TypeError(f"requires_grad: expected a bool, got {type(requires_grad).__name__} "
                            f"{requires_grad!r}")
        for param in self.parameters():
            param.requires_grad = bool(requires_grad)
        return self

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of every parameter.

        Args:
            set_to_none (bool): Drop the gradients (the default, as in PyTorch) rather than
                fill them with zeros.
        """
        for param in self.parameters():
            grad = param.grad
            if grad is None:
                continue
            if set_to_none:
                param.grad = None
            else:
                array = grad._data if isinstance(grad, Tensor) else grad
                # A gradient may be a read-only broadcast view; then a fresh zero array replaces it.
                if array.flags.writeable:
                    array.fill(0)
                else:
                    param.grad = np.zeros_like(array)

    def to(self, *args, **kwargs):
        """Convert the floating-point parameters and buffers to a dtype, in place.

        Takes PyTorch's forms: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``,
        ``to(tensor)`` (its dtype), with keywords ``device``, ``dtype``, ``non_blocking``. The
        device can only be the CPU, where everything already is. The Parameter objects stay the
        same (optimizers keep working); their arrays are replaced by converted copies and their
        gradients are dropped. Integer buffers are kept.

        Returns:
            Module: self

        Raises:
            TypeError: If the dtype is not float32 or float64.
            RuntimeError: If the device is not the CPU ("cuda", ...).
        """
        try:
            dtype, _ = to_arguments(args, kwargs)
        except TypeError as error:
            raise TypeError(f"dtype: expected numpy.float32 or numpy.float64 ({error})") from None
        if dtype is None:
            return self
        # Not `None not in FLOAT_DTYPES`: numpy compares None equal to float64.
        if dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype: expected numpy.float32 or numpy.float64, got {dtype}")
        for param in self.parameters():
            if param._data.dtype != dtype:
                param._data = _aligned.converted(param._data, dtype)
                param.grad = None
        for module in self.modules():
            buffers = module._buffers
            for name, buffer in buffers.items():
                array = buffer._data if isinstance(buffer, Tensor) else buffer
                if array is None or array.dtype.kind != "f" or array.dtype == dtype:
                    continue
                if isinstance(buffer, Tensor):
                    buffer._data = array.astype(dtype)
                else:
                    buffers[name] = array.astype(dtype)
        return self

    def double(self):
        """Convert floating-point parameters and buffers to float64 (``to(numpy.float64)``).

        Returns:
            Module: self
        """
        return self.to(np.float64)

    def float(self):
        """Convert floating-point parameters and buffers to float32 (``to(numpy.float32)``).

        Returns:
            Module: self
        """
        return self.to(np.float32)

    def cpu(self):
        """Return self: everything already lives in main memory.

        Returns:
            Module: self
        """
        return self

    def cuda(self, device=None):
        """Raise: cnn runs on the CPU only."""
        raise unavailable("CUDA", "cuda()")

    # ----- representation -----

    def extra_repr(self):
        """Return this module's own settings for its repr, e.g. ``"1, 6, kernel_size=(5, 5)"``.

        Layers override this; the base class has none.

        Returns:
            str: One line, or several separated by newlines.
        """
        return ""

    def __repr__(self):
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({name}): " + _addindent(repr(module), 2)
                       for name, module in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if len(extra_lines) == 1 and not child_lines:
            body = extra_lines[0]
        elif lines:
            body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{type(self).__name__}({body})"


def _check_buffer(name, value):
    if value is not None and not isinstance(value, (np.ndarray, Tensor)):
        raise TypeError(f"cannot assign {type(value).__name__} as buffer {name!r}: expected a "
                        f"Tensor, a NumPy array or None")


def _add_hook(table, hook, prepend, options):
    """Store `hook` in `table` under a new handle's id, marked in each option table whose flag
    is set (``options``: pairs of table and flag); return the handle."""
    handle = RemovableHandle(table, extra_dict=[option for option, _ in options])
    _changed()
    table[handle.id] = hook
    for option, enabled in options:
        if enabled:
            option[handle.id] = True
    if prepend:
        table.move_to_end(handle.id, last=False)
    return handle


def _loadable(key, value, target):
    """`value` as an array ready to copy into `target`, or the problem that prevents it.

    Returns:
        (numpy.ndarray or None, (type, str) or None): The source array, or the exception type
        and message describing why the key cannot be loaded.
    """
    source, problem = _source_array(value)
    if problem:
        return None, (TypeError, f'value of "{key}": {problem}')
    if source.dtype.kind not in _LOADABLE_KINDS.get(target.dtype.kind, target.dtype.kind):
        return None, (TypeError, f'dtype of "{key}": expected a real numeric dtype castable to '
                                 f"{target.dtype}, got {source.dtype}")
    if source.shape != target.shape:
        return None, (ValueError, f'size mismatch for "{key}": expected shape {target.shape} '
                                  f"(the shape in the model), got {source.shape}")
    if not target.flags.writeable:
        return None, (ValueError, f'"{key}": the model\'s array is read-only and cannot be '
                                  f"loaded into")
    return source, None


def _source_array(value):
    """`value` as a NumPy array without copying where possible, or why it cannot be one.

    Takes cnn Tensors, NumPy arrays and scalars, and other libraries' arrays: a PyTorch tensor
    through ``.numpy(force=True)`` (which also serves tensors that require grad or sit on a
    GPU), anything else with ``.numpy()`` or ``__array__``.

    Returns:
        (numpy.ndarray or None, str or None): The array, or the problem.
    """
    if isinstance(value, Tensor):
        return value._data, None
    if isinstance(value, (np.ndarray, np.generic)):  # arithmetic on a 0-d array gives a scalar
        return np.asarray(value), None
    kind = type(value).__qualname__
    if type(value).__module__ != "builtins":  # "torch.Tensor", not a bare "Tensor"
        kind = f"{type(value).__module__}.{kind}"
    try:
        if callable(getattr(value, "numpy", None)):
            try:
                source = value.numpy(force=True)
            except TypeError:  # a numpy() without torch's `force` argument
                source = value.numpy()
        elif hasattr(value, "__array__"):
            source = np.asarray(value)
        else:
            return None, f"expected a NumPy array or Tensor, got {kind}"
    # Another library's conversion fails in its own ways (torch: bfloat16 has no NumPy dtype).
    except Exception as error:  # noqa: BLE001
        return None, f"cannot convert the {kind} to a NumPy array ({error})"
    if not isinstance(source, np.ndarray):
        return None, f"the {kind} converted to a {type(source).__name__}, not a NumPy array"
    return source, None
