"""The base class of the learning-rate schedulers and the checks their state dicts share."""
import math
import numbers
import warnings
from collections.abc import Mapping

import numpy as np

from ..._validation import integer
from ..optimizer import Optimizer

__all__ = ["LRScheduler"]


class LRScheduler:
    """Base class of the learning-rate schedulers, as ``torch.optim.lr_scheduler.LRScheduler``.

    Constructing a scheduler records each group's ``"initial_lr"`` (when ``last_epoch`` is -1) and
    performs the initial step, so ``get_last_lr()`` is defined at once. Call ``step()`` after the
    optimizer's ``step()``, once per epoch (or per iteration, as the schedule is meant). Subclasses
    implement ``get_lr``, the rates for ``last_epoch``, usually computed from the current ones
    (and may give ``_get_closed_form_lr``, the rates computed from ``base_lrs`` alone, which
    ``step(epoch)`` and :class:`SequentialLR` use).

    Construct the scheduler before loading an optimizer checkpoint: the initial step writes the
    groups' ``"lr"``.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        last_epoch (int): index of the last epoch seen; -1 (the default) starts the schedule,
            anything else resumes it and needs ``"initial_lr"`` in every group.

    Attributes:
        optimizer (Optimizer): the scheduled optimizer.
        base_lrs (list of float): each group's initial learning rate.
        last_epoch (int): the number of ``step()`` calls after the initial one, plus the
            ``last_epoch`` given.
    """

    #: True only during the constructor's step (PyTorch's ``_is_initial``).
    _is_initial = False
    #: Checks of the subclass's own state entries: {name: function(value, name) -> value}.
    _checks = {}

    def __init__(self, optimizer, last_epoch=-1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        last_epoch = integer(last_epoch, "last_epoch", minimum=-1)
        if last_epoch == -1:
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:
            for i, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise ValueError(f"param 'initial_lr' is not specified in param_groups[{i}] when "
                                     "resuming a scheduler with last_epoch >= 0; load the optimizer's "
                                     "state first")
        self.optimizer = optimizer
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._initial_step()

    def _initial_step(self):
        """The constructor's step: the schedule's first rates."""
        self._step_count = 0
        self._is_initial = True
        try:
            self.step()
        finally:
            del self._is_initial  # back to the class's False, out of the state dict

    def get_lr(self):
        """The learning rate of each parameter group at ``last_epoch`` (called by ``step``)."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group.

        Returns:
            list of float: a copy; changing it does not change the optimizer.
        """
        return list(self._last_lr)

    def step(self, epoch=None):
        """Advance the schedule by one epoch and write the new learning rates into the optimizer.

        Args:
            epoch (int, optional): deprecated in PyTorch and here: jump to this epoch (the
                closed-form rates where the schedule has them).
        """
        self._step_count += 1
        if epoch is not None:
            warnings.warn("The epoch parameter in `scheduler.step()` was not necessary and is "
                          "being deprecated where possible. Please use `scheduler.step()` to "
                          "step the scheduler.", UserWarning, stacklevel=2)
        self._update_lr(epoch)

    def _update_lr(self, epoch=None):
        if epoch is None:
            self.last_epoch += 1
            values = self.get_lr()
        else:
            self.last_epoch = integer(epoch, "epoch", minimum=0)
            closed_form = getattr(self, "_get_closed_form_lr", None)
            values = closed_form() if closed_form is not None else self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, values):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        """The scheduler's state: every attribute except the optimizer (lists copied).

        Returns:
            dict: e.g. ``base_lrs``, ``last_epoch``, ``_step_count``, ``_last_lr`` and the
            schedule's own hyperparameters, with PyTorch's names.
        """
        return {key: list(value) if isinstance(value, list) else value
                for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict):
        """Load a state made by ``state_dict()``, after checking all of it.

        Args:
            state_dict (dict): exactly the keys ``state_dict()`` returns.

        Raises:
            ValueError: naming the key, if one is missing or unknown or its value does not fit
                (e.g. a list of rates whose length is not the number of parameter groups).
                Nothing is changed then.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"state_dict must be a dict, but got {type(state_dict).__name__}")
        expected = set(self.state_dict())
        missing = sorted(expected - set(state_dict))
        unexpected = sorted(set(state_dict) - expected, key=str)
        if missing or unexpected:
            raise ValueError(f"scheduler state dict: missing keys {missing}, unexpected keys {unexpected}")
        state = dict(state_dict)
        try:
            self._check_state(state)
        except (TypeError, ValueError) as error:
            raise ValueError(f"scheduler state dict: {error}") from None
        self.__dict__.update(state)

    def _check_state(self, state):
        """Validate, and normalise in place, a state with the keys of ``state_dict()``."""
        groups = len(self.optimizer.param_groups)
        for key in ("base_lrs", "_last_lr"):
            if key in state:
                state[key] = rate_list(state[key], key, groups)
        for key in ("last_epoch", "_step_count"):
            if key in state:
                state[key] = integer(state[key], key, minimum=-1 if key == "last_epoch" else 0)
        for key, check in self._checks.items():
            if key in state:
                state[key] = check(state[key], key)


def real(value, name):
    """``value`` as a finite Python float (NumPy scalars and 0-d arrays accepted)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name}: expected a finite real number, got {value!r}")
    return float(value)


def positive_integer(value, name):
    """``value`` as an int >= 1."""
    return integer(value, name, minimum=1)


def flag(value, name):
    """``value`` as a bool (True or False only)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def rate_list(rates, name, groups):
    """A list of ``groups`` finite floats (an array or tuple accepted)."""
    if isinstance(rates, np.ndarray):
        rates = rates.tolist()
    if not isinstance(rates, (list, tuple)) or len(rates) != groups:
        raise ValueError(f"{name} must be a list of {groups} learning rates, got {rates!r}")
    return [real(rate, name) for rate in rates]


def per_group(value, name, optimizer):
    """One value per parameter group: a list of that length, or one value repeated (PyTorch's
    ``_format_param``)."""
    groups = len(optimizer.param_groups)
    if isinstance(value, (list, tuple)):
        if len(value) != groups:
            raise ValueError(f"{name} must have the same length as optimizer.param_groups. "
                             f"{name} has {len(value)} values, param_groups has {groups}.")
        return [real(v, name) for v in value]
    return [real(value, name)] * groups
