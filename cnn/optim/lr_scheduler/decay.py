"""Schedules that multiply the learning rates: by a function of the epoch (LambdaLR,
MultiplicativeLR), by ``gamma`` at steps (StepLR, MultiStepLR) or every epoch (ExponentialLR),
and warm-ups by a constant or linear factor (ConstantLR, LinearLR).

Like PyTorch's, the recursive ones compute each rate from the current one (so that changes
made to it by other means persist) and give a closed form from ``base_lrs`` for
``step(epoch)``.
"""
import types
from bisect import bisect_right
from collections import Counter

from ..._validation import integer
from .base import LRScheduler, positive_integer, real

__all__ = ["LambdaLR", "MultiplicativeLR", "StepLR", "MultiStepLR", "ConstantLR", "LinearLR",
           "ExponentialLR"]


class _LambdaScheduler(LRScheduler):
    """Shared by LambdaLR and MultiplicativeLR: one function of the epoch per group.

    Their state dict holds, for each function that is a callable object (not a plain function
    or lambda), a copy of its ``__dict__``, as PyTorch's does.
    """

    def __init__(self, optimizer, lr_lambda, last_epoch=-1):
        groups = len(getattr(optimizer, "param_groups", ()))
        if isinstance(lr_lambda, (list, tuple)):
            if len(lr_lambda) != groups:
                raise ValueError(f"Expected {groups} lr_lambdas, but got {len(lr_lambda)}")
            self.lr_lambdas = list(lr_lambda)
        else:
            self.lr_lambdas = [lr_lambda] * groups
        for function in self.lr_lambdas:
            if not callable(function):
                raise TypeError(f"lr_lambda should be a function, but got "
                                f"{type(function).__name__}")
        super().__init__(optimizer, last_epoch)

    def state_dict(self):
        """The state, with ``lr_lambdas`` as the ``__dict__`` of callable objects (None for
        plain functions)."""
        state = {key: list(value) if isinstance(value, list) else value
                 for key, value in self.__dict__.items()
                 if key not in ("optimizer", "lr_lambdas")}
        state["lr_lambdas"] = [None if isinstance(function, types.FunctionType)
                               else dict(function.__dict__) for function in self.lr_lambdas]
        return state

    def load_state_dict(self, state_dict):
        """Load a state made by ``state_dict()`` (the functions themselves are kept)."""
        state = dict(state_dict)
        saved = state.get("lr_lambdas")
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self.lr_lambdas):
            raise ValueError(f"scheduler state dict: lr_lambdas must be a list of "
                             f"{len(self.lr_lambdas)} entries, got {saved!r}")
        state["lr_lambdas"] = self.lr_lambdas
        super().load_state_dict(state)
        self.lr_lambdas = state["lr_lambdas"]
        for function, attributes in zip(self.lr_lambdas, saved):
            if attributes is not None:
                function.__dict__.update(attributes)


class LambdaLR(_LambdaScheduler):
    """Set each group's rate to its initial rate times ``lr_lambda(epoch)``.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        lr_lambda (callable or list of callables): the factor as a function of the epoch, one
            for all groups or one per group.
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    def get_lr(self):
        """``base_lr * lr_lambda(last_epoch)`` per group."""
        return [base_lr * function(self.last_epoch)
                for function, base_lr in zip(self.lr_lambdas, self.base_lrs)]


class MultiplicativeLR(_LambdaScheduler):
    """Multiply each group's rate by ``lr_lambda(epoch)`` every epoch (from the first step on).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        lr_lambda (callable or list of callables): the factor as a function of the epoch.
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    def get_lr(self):
        """The current rates times ``lr_lambda(last_epoch)`` (unchanged at construction)."""
        if self._is_initial:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * function(self.last_epoch)
                for function, group in zip(self.lr_lambdas, self.optimizer.param_groups)]


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

    _checks = {"step_size": positive_integer, "gamma": real}

    def __init__(self, optimizer, step_size, gamma=0.1, last_epoch=-1):
        self.step_size = positive_integer(step_size, "step_size")
        self.gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current rates, multiplied by ``gamma`` at every non-zero multiple of ``step_size``."""
        if self.last_epoch == 0 or self.last_epoch % self.step_size != 0:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** (self.last_epoch // self.step_size)
                for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply each group's rate by ``gamma`` at each milestone epoch (twice for a milestone
    listed twice).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        milestones (list of int): the epochs of the decays.
        gamma (float): multiplicative factor (default: 0.1).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    _checks = {"milestones": lambda value, name: _milestones(value, name), "gamma": real}

    def __init__(self, optimizer, milestones, gamma=0.1, last_epoch=-1):
        self.milestones = _milestones(milestones, "milestones")
        self.gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current rates, times ``gamma`` once per milestone at ``last_epoch``."""
        if self.last_epoch not in self.milestones:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma ** self.milestones[self.last_epoch]
                for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        milestones = sorted(self.milestones.elements())
        return [base_lr * self.gamma ** bisect_right(milestones, self.last_epoch)
                for base_lr in self.base_lrs]


def _milestones(value, name):
    try:
        epochs = [integer(epoch, name, minimum=0) for epoch in value]
    except TypeError:
        raise TypeError(f"{name}: expected a list of epochs (ints), got {value!r}") from None
    return Counter(epochs)


class ConstantLR(LRScheduler):
    """Multiply each group's rate by ``factor`` for the first ``total_iters`` epochs (a
    warm-up), then restore it.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        factor (float): in [0, 1] (default: 1/3).
        total_iters (int): epochs at the reduced rate (default: 5).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    _checks = {"factor": real, "total_iters": lambda value, name: integer(value, name, 0)}

    def __init__(self, optimizer, factor=1.0 / 3, total_iters=5, last_epoch=-1):
        self.factor = real(factor, "factor")
        if not 0 <= self.factor <= 1:
            raise ValueError("Constant multiplicative factor expected to be between 0 and 1.")
        self.total_iters = integer(total_iters, "total_iters", 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """``factor`` times the rates at epoch 0, divided back out at ``total_iters``."""
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.factor for group in groups]
        if self.last_epoch != self.total_iters:
            return [group["lr"] for group in groups]
        return [group["lr"] * (1.0 / self.factor) for group in groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.factor + (self.last_epoch >= self.total_iters) * (1 - self.factor))
                for base_lr in self.base_lrs]


class LinearLR(LRScheduler):
    """Scale each group's rate by a factor going linearly from ``start_factor`` to
    ``end_factor`` over ``total_iters`` epochs (a warm-up), then keep it.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        start_factor (float): in (0, 1] (default: 1/3).
        end_factor (float): in [0, 1] (default: 1).
        total_iters (int): epochs of the ramp (default: 5).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    _checks = {"start_factor": real, "end_factor": real,
               "total_iters": lambda value, name: integer(value, name, 0)}

    def __init__(self, optimizer, start_factor=1.0 / 3, end_factor=1.0, total_iters=5,
                 last_epoch=-1):
        self.start_factor, self.end_factor = real(start_factor, "start_factor"), \
            real(end_factor, "end_factor")
        if not 0 < self.start_factor <= 1:
            raise ValueError("Starting multiplicative factor expected to be greater than 0 and "
                             "less or equal to 1.")
        if not 0 <= self.end_factor <= 1:
            raise ValueError("Ending multiplicative factor expected to be between 0 and 1.")
        self.total_iters = integer(total_iters, "total_iters", 0)
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates scaled by the ratio of this epoch's factor to the previous one's."""
        groups = self.optimizer.param_groups
        if self.last_epoch == 0:
            return [group["lr"] * self.start_factor for group in groups]
        if self._is_initial or self.last_epoch > self.total_iters:
            return [group["lr"] for group in groups]
        change = self.end_factor - self.start_factor
        return [group["lr"] * (1.0 + change / (self.total_iters * self.start_factor
                                               + (self.last_epoch - 1) * change))
                for group in groups]

    def _get_closed_form_lr(self):
        return [base_lr * (self.start_factor + (self.end_factor - self.start_factor)
                           * min(self.total_iters, self.last_epoch) / self.total_iters)
                for base_lr in self.base_lrs]


class ExponentialLR(LRScheduler):
    """Multiply each group's rate by ``gamma`` every epoch.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        gamma (float): multiplicative factor.
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    _checks = {"gamma": real}

    def __init__(self, optimizer, gamma, last_epoch=-1):
        self.gamma = real(gamma, "gamma")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The current rates times ``gamma`` (unchanged at construction)."""
        if self._is_initial:
            return [group["lr"] for group in self.optimizer.param_groups]
        return [group["lr"] * self.gamma for group in self.optimizer.param_groups]

    def _get_closed_form_lr(self):
        return [base_lr * self.gamma ** self.last_epoch for base_lr in self.base_lrs]
