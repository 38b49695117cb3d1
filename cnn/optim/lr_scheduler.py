"""Learning-rate schedules (PyTorch's ``torch.optim.lr_scheduler`` semantics and formulas)."""
import math
import numbers
from collections.abc import Mapping

import numpy as np

from .._validation import integer
from .optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "CosineAnnealingLR"]


class LRScheduler:
    """Base class of the learning-rate schedulers, as ``torch.optim.lr_scheduler.LRScheduler``.

    Constructing a scheduler records each group's ``"initial_lr"`` (when ``last_epoch`` is -1) and
    performs the initial step, so ``get_last_lr()`` is defined at once. Call ``step()`` after the
    optimizer's ``step()``, once per epoch (or per iteration, as the schedule is meant). Subclasses
    implement ``get_lr``, the rates for ``last_epoch``, usually computed from the current ones.

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
        self._step_count = 0
        self.step()

    def get_lr(self):
        """The learning rate of each parameter group at ``last_epoch`` (called by ``step``)."""
        raise NotImplementedError

    def get_last_lr(self):
        """The learning rates the last ``step()`` set, one per parameter group.

        Returns:
            list of float: a copy; changing it does not change the optimizer.
        """
        return list(self._last_lr)

    def step(self):
        """Advance the schedule by one epoch and write the new learning rates into the optimizer."""
        self._step_count += 1
        self.last_epoch += 1
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
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
            rates = state[key]
            if isinstance(rates, np.ndarray):
                rates = rates.tolist()
            if not isinstance(rates, (list, tuple)) or len(rates) != groups:
                raise ValueError(f"{key} must be a list of {groups} learning rates, got {rates!r}")
            state[key] = [_real(rate, key) for rate in rates]
        state["last_epoch"] = integer(state["last_epoch"], "last_epoch", minimum=-1)
        state["_step_count"] = integer(state["_step_count"], "_step_count", minimum=0)


class StepLR(LRScheduler):
    """Multiply each group's learning rate by ``gamma`` every ``step_size`` epochs.

    With ``lr = 0.05``, ``step_size=30`` and ``gamma=0.1``: ``lr`` is 0.05 for epochs 0-29, 0.005
    for epochs 30-59, 0.0005 for epochs 60-89, and so on. The rate is scaled from its current
    value, so changes made to it by other means persist.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        step_size (int): period of the decay, in epochs (>= 1).
        gamma (float): multiplicative factor of the decay (default: 0.1).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).

    Example::

        >>> scheduler = StepLR(optimizer, step_size=30, gamma=0.1)
        >>> for epoch in range(100):
        ...     train(...)
        ...     scheduler.step()
    """

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = integer(step_size, "step_size", minimum=1)
        self.gamma = _real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current rates, multiplied by ``gamma`` at every non-zero multiple of ``step_size``."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _check_state(self, state):
        super()._check_state(state)
        state["step_size"] = integer(state["step_size"], "step_size", minimum=1)
        state["gamma"] = _real(state["gamma"], "gamma")


class CosineAnnealingLR(LRScheduler):
    """Anneal each group's learning rate along a cosine from its initial value to ``eta_min``.

    The rate follows ``eta_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``,
    computed as PyTorch does, recursively from the current rate::

        eta_t = eta_min + (eta_{t-1} - eta_min) * (1 + cos(pi * t / T_max)) / (1 + cos(pi * (t-1) / T_max))

    (when that denominator vanishes, at ``t - 1 = T_max, 3 T_max, ...``, the rate instead steps up
    by ``(base_lr - eta_min) * (1 - cos(pi / T_max)) / 2``). Past ``T_max`` the rate therefore
    rises again, tracing a cosine of period ``2 T_max``; there are no warm restarts (SGDR).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        T_max (int): half period of the cosine, in epochs (>= 1).
        eta_min (float): the minimum learning rate (default: 0).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = integer(T_max, "T_max", minimum=1)
        self.eta_min = _real(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates for ``last_epoch``, from the current ones by PyTorch's recursive formula."""
        groups = self.optimizer.param_groups
        if self._step_count == 1:
            # The constructor's step keeps the rates, whether the schedule starts or resumes.
            return [group["lr"] for group in groups]
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            # Written in PyTorch's order of operations, so that the rates agree to the last bit.
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        ratio = ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                 / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]

    def _check_state(self, state):
        super()._check_state(state)
        state["T_max"] = integer(state["T_max"], "T_max", minimum=1)
        state["eta_min"] = _real(state["eta_min"], "eta_min")


def _real(value, name):
    """``value`` as a finite Python float (NumPy scalars and 0-d arrays accepted)."""
    if isinstance(value, np.ndarray) and value.ndim == 0:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise TypeError(f"{name}: expected a finite real number, got {value!r}")
    return float(value)
