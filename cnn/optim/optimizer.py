"""The base class of the optimizers: parameter groups, per-parameter state and its (de)serialisation."""
import copy
import math
import numbers
from collections import defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from .._validation import flag
from ..tensor import Tensor

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class Optimizer:
    """Base class of all optimizers, with the semantics of ``torch.optim.Optimizer``.

    Subclasses pass their hyperparameters as ``defaults``, validate them in ``_check_options`` and
    implement ``_update_group``, which ``step`` calls for each group. Parameters are updated in
    place (a parameter's array is never replaced, because modules and checkpoints hold it);
    parameters whose ``grad`` is None are skipped.

    A user's own optimizer written PyTorch's way works too: it calls
    ``super().__init__(params, defaults)``, overrides ``step`` (typically under
    ``@torch.no_grad()``), keeps its state in ``self.state[p]`` (a defaultdict of dicts keyed by
    parameter, whose values may be Tensors) and updates ``p`` with in-place Tensor operations.

    Args:
        params: an iterable of Parameters, an iterable of dicts (parameter groups, each with a
            ``"params"`` entry and any options that override ``defaults``), or an object with a
            ``parameters()`` method such as a Module.
        defaults (dict): the default value of every option.

    Attributes:
        defaults (dict): the default options.
        param_groups (list of dict): each group's ``"params"`` list and every option.
        state (collections.defaultdict): per-parameter state (e.g. momentum buffers), a dict
            per parameter, keyed by parameter.
    """

    #: Names of per-parameter state entries that are arrays shaped like their parameter.
    _array_state = ()
    #: Names of per-parameter state entries that are numbers.
    _number_state = ()

    def __init__(self, params, defaults):
        self._check_options(defaults)
        self.defaults = defaults
        self.state = defaultdict(dict)
        self.param_groups = []

        if callable(getattr(params, "parameters", None)):
            params = params.parameters()
        if isinstance(params, (Tensor, np.ndarray)):
            raise TypeError("params argument given to the optimizer should be an iterable of Tensors "
                            f"or dicts, but got {type(params).__name__}")
        try:
            param_groups = list(params)
        except TypeError:
            raise TypeError("params argument given to the optimizer should be an iterable of "
                            f"Tensors or dicts, but got {type(params).__name__}") from None
        if not param_groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(param_groups[0], Mapping):
            param_groups = [{"params": param_groups}]
        for param_group in param_groups:
            self.add_param_group(param_group)

    def __repr__(self):
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {key}: {group[key]}" for key in sorted(group) if key != "params")
        return "\n".join(lines) + "\n)"

    def _check_options(self, options):
        """Validate (and normalise in place) a group's options; raise ValueError naming the bad one."""

    def _required_state(self, group):
        """Names that a non-empty state entry of a parameter in ``group`` must have."""
        return ()

    def add_param_group(self, param_group):
        """Add a parameter group, e.g. layers unfrozen while fine-tuning.

        Args:
            param_group (dict): ``"params"`` (a Parameter or an iterable of them) and any options;
                options it leaves out take the optimizer's defaults.

        Raises:
            TypeError: if the group is not a dict or holds something other than float Tensors.
            ValueError: if an option is invalid or a parameter is already being optimized.
        """
        if not isinstance(param_group, Mapping):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError("param_group must have a 'params' entry")
        group = dict(param_group)
        params = group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, (set, frozenset)):
            raise TypeError("optimizer parameters need to be organized in ordered collections, but the "
                            "ordering of tensors in sets will change between runs. Please use a list instead.")
        group["params"] = params = list(params)

        for param in params:
            if not isinstance(param, Tensor):
                raise TypeError("optimizer can only optimize Tensors, but one of the params is "
                                f"{type(param).__name__}")
            if param._data.dtype not in _FLOAT_DTYPES:
                raise TypeError("optimizer can only optimize float32 or float64 Tensors, got dtype "
                                f"{param._data.dtype}")
        # Tensors compare elementwise, so parameters are matched by identity, never with ``in`` on a list.
        ids = {id(p) for p in params}
        if len(ids) != len(params):
            raise ValueError("optimizer got a parameter group that lists the same parameter twice")
        if any(id(p) in ids for other in self.param_groups for p in other["params"]):
            raise ValueError("some parameters appear in more than one parameter group")

        for name, default in self.defaults.items():
            group.setdefault(name, default)
        self._check_options(group)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none=True):
        """Reset the gradients of all optimized parameters.

        Args:
            set_to_none (bool): set the gradients to None (the default) instead of filling them with
                zeros in place. Parameters whose gradient is None are then skipped by ``step``,
                whereas a zero gradient still moves them (momentum, weight decay).
        """
        for group in self.param_groups:
            for p in group["params"]:
                if p._grad is not None:
                    if set_to_none:
                        p._grad = None
                    else:
                        p._grad.fill(0)

    def step(self, closure=None):
        """Perform a single optimization step: update every parameter that has a gradient.

        Args:
            closure (callable, optional): re-evaluates the model and returns the loss.

        Returns:
            The closure's loss, or None without a closure.
        """
        loss = None if closure is None else closure()
        for group in self.param_groups:
            self._update_group(group)
        return loss

    def _update_group(self, group):
        """Update the parameters of one group that have a gradient (the subclass's rule)."""
        raise NotImplementedError

    def state_dict(self):
        """Return the optimizer's state in PyTorch's format.

        Returns:
            dict: ``"state"``, a dict from parameter index to that parameter's state (arrays and
            numbers), and ``"param_groups"``, a list of dicts holding every option and
            ``"params"``, the indices of the group's parameters. Parameters are numbered in group
            order from 0. The arrays are copies: later steps do not change a saved state dict.
        """
        param_groups = []
        state = {}
        index = 0
        for group in self.param_groups:
            packed = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            packed["params"] = list(range(index, index + len(group["params"])))
            param_groups.append(packed)
            for p in group["params"]:
                if p in self.state:
                    state[index] = {name: _copy_state_value(value)
                                    for name, value in self.state[p].items()}
                index += 1
        return {"state": state, "param_groups": param_groups}

    def load_state_dict(self, state_dict):
        """Load a state made by ``state_dict()``, after checking all of it.

        The saved groups' options replace the current ones; the parameters stay. State arrays are
        copied (converted to their parameter's dtype), never shared with ``state_dict``.

        Args:
            state_dict (dict): ``"state"`` and ``"param_groups"``, as returned by ``state_dict()``.
                Indices may be strings of digits (as after a round trip through a file).

        Raises:
            ValueError: naming the problem, if the group count, a group's parameter count, an
                option, a state index, a state name, a shape or a dtype does not fit. Nothing is
                changed then.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, but got {type(state_dict).__name__}")
        for key in ("state", "param_groups"):
            if key not in state_dict:
                raise ValueError(f"loaded state dict has no {key!r} entry")
        param_groups, by_index = self._load_param_groups(state_dict["param_groups"])
        state = self._load_state(state_dict["state"], by_index)
        self.param_groups = param_groups
        self.state = defaultdict(dict, state)

    def _load_param_groups(self, saved_groups):
        """The new param_groups, and {saved index: (parameter, its new group)}."""
        if not isinstance(saved_groups, Sequence) or isinstance(saved_groups, str):
            raise ValueError(f"loaded param_groups must be a list, got {type(saved_groups).__name__}")
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"loaded state dict has {len(saved_groups)} parameter groups, "
                             f"the optimizer has {len(self.param_groups)}")
        param_groups = []
        by_index = {}
        for i, (group, saved) in enumerate(zip(self.param_groups, saved_groups)):
            where = f"parameter group {i} of the loaded state dict"
            if not isinstance(saved, Mapping):
                raise ValueError(f"{where} is a {type(saved).__name__}, not a dict")
            if "params" not in saved:
                raise ValueError(f"{where} has no 'params' entry")
            saved_params = saved["params"]
            if isinstance(saved_params, np.ndarray):
                saved_params = saved_params.tolist()
            if not isinstance(saved_params, Sequence) or isinstance(saved_params, str):
                raise ValueError(f"{where}: 'params' must be a list of indices, "
                                 f"got {type(saved_params).__name__}")
            indices = [_index(index, f"{where}: 'params'") for index in saved_params]
            if len(indices) != len(group["params"]):
                raise ValueError(f"{where} has {len(indices)} parameters, the optimizer's group has "
                                 f"{len(group['params'])}")
            missing = [name for name in self.defaults if name not in saved]
            if missing:
                raise ValueError(f"{where} lacks the options {missing}")
            new_group = {key: _plain(copy.deepcopy(value)) for key, value in saved.items() if key != "params"}
            new_group["params"] = group["params"]
            try:
                self._check_options(new_group)
            except (TypeError, ValueError) as error:
                raise ValueError(f"{where}: {error}") from None
            for index, param in zip(indices, group["params"]):
                if index in by_index:
                    raise ValueError(f"{where} repeats the parameter index {index}")
                by_index[index] = (param, new_group)
            param_groups.append(new_group)
        return param_groups, by_index

    def _load_state(self, saved_state, by_index):
        """The new state dict, its arrays copied and checked against their parameters."""
        if not isinstance(saved_state, Mapping):
            raise ValueError(f"loaded state must be a dict, got {type(saved_state).__name__}")
        state = {}
        for key, saved in saved_state.items():
            index = _index(key, "loaded state")
            if index not in by_index:
                raise ValueError(f"loaded state has an entry for parameter index {index}, "
                                 "which no loaded parameter group lists")
            param, group = by_index[index]
            where = f"loaded state of parameter {index}"
            if not isinstance(saved, Mapping):
                raise ValueError(f"{where} is a {type(saved).__name__}, not a dict")
            entry = {}
            for name, value in saved.items():
                if name in self._array_state:
                    entry[name] = _state_array(value, param._data, f"{where}, {name!r}")
                elif name in self._number_state:
                    entry[name] = _state_number(value, f"{where}, {name!r}")
                elif not (self._array_state or self._number_state):
                    # An optimizer that declares no state (a user's own): kept as saved, copied.
                    entry[name] = _copy_state_value(value)
                else:
                    raise ValueError(f"{where} has an unknown entry {name!r} for {type(self).__name__}")
            missing = [name for name in self._required_state(group) if name not in entry]
            if entry and missing:
                raise ValueError(f"{where} lacks {missing}")
            if entry:
                state[param] = entry
        return state


def _copy_state_value(value):
    """A copy of a state entry: arrays and Tensors copied, numbers and the rest deep-copied."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, Tensor):
        return Tensor(np.array(value._data, copy=True))
    return copy.deepcopy(value)


def _check_betas(options):
    """Normalise ``options["betas"]`` to a pair of floats in [0, 1) (PyTorch's checks)."""
    betas = options["betas"]
    if isinstance(betas, np.ndarray):
        betas = betas.tolist()
    if not isinstance(betas, (tuple, list)) or len(betas) != 2:
        raise ValueError(f"betas must be a pair of floats, got {betas!r}")
    for i, beta in enumerate(betas):
        _check_number(beta, f"betas[{i}]", f"beta parameter at index {i}", upper=1.0)
    options["betas"] = (float(betas[0]), float(betas[1]))


def _params_with_grad(group):
    """Yield ``(parameter, its array, its gradient array)`` for each parameter of ``group`` with a gradient.

    Raises:
        ValueError: if a gradient is not shaped and typed like its parameter (broadcasting or
            casting it into the in-place update would corrupt the parameter silently).
    """
    for p in group["params"]:
        # The gradient array itself (what the .grad property wraps in a Tensor for users).
        grad = p._grad
        if grad is None:
            continue
        data = p._data
        if grad.shape != data.shape or grad.dtype != data.dtype:
            raise ValueError(f"gradient of shape {grad.shape} and dtype {grad.dtype} does not match "
                             f"its parameter of shape {data.shape} and dtype {data.dtype}")
        yield p, data, grad


def _check_number(value, name, description, upper=None):
    """Raise PyTorch's ValueError unless ``value`` is a real number >= 0 (and < ``upper`` when given)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    if not 0.0 <= value or (upper is not None and not value < upper):
        bounds = ">= 0" if upper is None else f"in [0, {upper:g})"
        raise ValueError(f"Invalid {description}: {value} ({name} must be {bounds})")
    if not math.isfinite(value):
        raise ValueError(f"Invalid {description}: {value} ({name} must be finite)")


_DESCRIPTIONS = {"lr": "learning rate", "eps": "epsilon value"}


def _check_nonnegative(options, names):
    """PyTorch's ValueError for each option of `names` that is not a real number >= 0."""
    for name in names:
        _check_number(options[name], name, _DESCRIPTIONS.get(name, f"{name} value"))


def _check_flags(options, names):
    """Normalise the boolean options ``names`` to bool; TypeError naming one that is not."""
    for name in names:
        options[name] = flag(options[name], name)


def _index(key, where):
    """A parameter index given as an int or a string of digits (as after a round trip through a file)."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool) and key >= 0:
        return int(key)
    raise ValueError(f"{where}: {key!r} is not a parameter index")


def _plain(value):
    """NumPy scalars and 0-d arrays (as read back from a file) as Python numbers."""
    if isinstance(value, np.generic) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value.item()
    return value


def _state_array(value, data, where):
    """A C-contiguous copy of a saved state array in ``data``'s dtype, after checking its shape and dtype."""
    if not isinstance(value, np.ndarray):
        raise ValueError(f"{where} is a {type(value).__name__}, expected an array")
    if value.dtype.kind != "f":
        raise ValueError(f"{where} has dtype {value.dtype}, expected a float dtype")
    if value.shape != data.shape:
        raise ValueError(f"{where} has shape {value.shape}, its parameter has shape {data.shape}")
    return np.array(value, dtype=data.dtype, order="C", copy=True)


def _state_number(value, where):
    """A saved state number (e.g. Adam's step count) as a Python float."""
    value = _plain(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0 <= value < float("inf"):
        raise ValueError(f"{where} is {value!r}, expected a finite number >= 0")
    return float(value)
