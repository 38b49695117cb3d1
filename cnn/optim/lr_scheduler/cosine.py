"""Cosine schedules: annealing (CosineAnnealingLR), annealing with warm restarts
(CosineAnnealingWarmRestarts) and the one-cycle policy (OneCycleLR)."""
import math

from ..._validation import integer
from .base import LRScheduler, flag, per_group, positive_integer, real

__all__ = ["CosineAnnealingLR", "CosineAnnealingWarmRestarts", "OneCycleLR"]


class CosineAnnealingLR(LRScheduler):
    """Anneal each group's learning rate along a cosine from its initial value to ``eta_min``.

    The rate follows ``eta_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2``,
    computed as PyTorch does, recursively from the current rate::

        eta_t = eta_min + (eta_{t-1} - eta_min) * (1 + cos(pi * t / T_max)) / (1 + cos(pi * (t-1) / T_max))

    (when that denominator vanishes, at ``t - 1 = T_max, 3 T_max, ...``, the rate instead steps up
    by ``(base_lr - eta_min) * (1 - cos(pi / T_max)) / 2``). Past ``T_max`` the rate therefore
    rises again, tracing a cosine of period ``2 T_max``; there are no warm restarts (see
    :class:`CosineAnnealingWarmRestarts`).

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        T_max (int): half period of the cosine, in epochs (>= 1).
        eta_min (float): the minimum learning rate (default: 0).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    _checks = {"T_max": positive_integer, "eta_min": real}

    def __init__(self, optimizer, T_max, eta_min=0.0, last_epoch=-1):
        self.T_max = positive_integer(T_max, "T_max")
        self.eta_min = real(eta_min, "eta_min")
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rates for ``last_epoch``, from the current ones by PyTorch's recursive formula."""
        groups = self.optimizer.param_groups
        if self._is_initial:
            # The constructor's step keeps the rates, whether the schedule starts or resumes.
            return [group["lr"] for group in groups]
        if self._step_count == 1 and self.last_epoch > 0:
            return self._get_closed_form_lr()
        if (self.last_epoch - 1 - self.T_max) % (2 * self.T_max) == 0:
            # Written in PyTorch's order of operations, so that the rates agree to the last bit.
            return [group["lr"] + (base_lr - self.eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
                    for base_lr, group in zip(self.base_lrs, groups)]
        ratio = ((1 + math.cos(math.pi * self.last_epoch / self.T_max))
                 / (1 + math.cos(math.pi * (self.last_epoch - 1) / self.T_max)))
        return [ratio * (group["lr"] - self.eta_min) + self.eta_min for group in groups]

    def _get_closed_form_lr(self):
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
                for base_lr in self.base_lrs]


class CosineAnnealingWarmRestarts(LRScheduler):
    """Cosine annealing from each group's initial rate to ``eta_min`` over ``T_0`` epochs, then
    a restart, each period ``T_mult`` times longer than the last (SGDR).

    ``eta = eta_min + (base_lr - eta_min) * (1 + cos(pi * T_cur / T_i)) / 2``, ``T_cur`` the
    epochs since the last restart. ``step(epoch)`` takes fractional epochs (``epoch + i /
    iters`` to anneal within an epoch), as PyTorch's.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        T_0 (int): the first period, in epochs (>= 1).
        T_mult (int): the growth of the period after each restart (>= 1).
        eta_min (float): the minimum learning rate (default: 0).
        last_epoch (int): index of the last epoch, to resume a schedule (default: -1).
    """

    _checks = {"T_0": positive_integer, "T_i": lambda value, name: real(value, name),
               "T_mult": positive_integer, "eta_min": real,
               "T_cur": lambda value, name: real(value, name)}

    def __init__(self, optimizer, T_0, T_mult=1, eta_min=0.0, last_epoch=-1):
        if isinstance(T_0, bool) or not isinstance(T_0, int) or T_0 <= 0:
            raise ValueError(f"Expected positive integer T_0, but got {T_0}")
        if isinstance(T_mult, bool) or not isinstance(T_mult, int) or T_mult < 1:
            raise ValueError(f"Expected integer T_mult >= 1, but got {T_mult}")
        self.T_0 = self.T_i = T_0
        self.T_mult = T_mult
        self.eta_min = real(eta_min, "eta_min")
        self.T_cur = last_epoch
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The cosine at ``T_cur / T_i`` between each initial rate and ``eta_min``."""
        return [self.eta_min + (base_lr - self.eta_min)
                * (1 + math.cos(math.pi * self.T_cur / self.T_i)) / 2
                for base_lr in self.base_lrs]

    def step(self, epoch=None):
        """Advance one epoch, or go to ``epoch`` (a float: fractions anneal within an epoch)."""
        self._step_count += 1
        if epoch is None and self.last_epoch < 0:
            epoch = 0
        if epoch is None:
            epoch = self.last_epoch + 1
            self.T_cur = self.T_cur + 1
            if self.T_cur >= self.T_i:
                self.T_cur = self.T_cur % self.T_i
                self.T_i = self.T_i * self.T_mult
        else:
            epoch = real(epoch, "epoch")
            if epoch < 0:
                raise ValueError(f"Expected non-negative epoch, but got {epoch}")
            if epoch >= self.T_0:
                if self.T_mult == 1:
                    self.T_cur = epoch % self.T_0
                else:
                    n = int(math.log(epoch / self.T_0 * (self.T_mult - 1) + 1, self.T_mult))
                    self.T_cur = epoch - self.T_0 * (self.T_mult ** n - 1) / (self.T_mult - 1)
                    self.T_i = self.T_0 * self.T_mult ** n
            else:
                self.T_i = self.T_0
                self.T_cur = epoch
        self.last_epoch = math.floor(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


class OneCycleLR(LRScheduler):
    """The one-cycle policy: the rate rises from ``max_lr / div_factor`` to ``max_lr`` over
    ``pct_start`` of the steps, then anneals to ``initial_lr / final_div_factor``; the momentum
    (or Adam's beta1) cycles the other way between ``max_momentum`` and ``base_momentum``.
    Step it after every batch.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        max_lr (float or list): the peak rate, for all groups or per group.
        total_steps (int): the number of steps; or give ``epochs`` and ``steps_per_epoch``.
        epochs, steps_per_epoch (int): their product is ``total_steps``.
        pct_start (float): the fraction of the steps spent rising (default: 0.3).
        anneal_strategy (str): "cos" (default) or "linear".
        cycle_momentum (bool): cycle the momentum too (default: True; needs an optimizer with
            ``momentum`` or ``betas``).
        base_momentum, max_momentum (float or list): the momentum's range (0.85, 0.95).
        div_factor (float): ``initial_lr = max_lr / div_factor`` (default: 25).
        final_div_factor (float): ``min_lr = initial_lr / final_div_factor`` (default: 1e4).
        three_phase (bool): rise, fall back to ``initial_lr``, then anneal to ``min_lr``.
        last_epoch (int): index of the last step, to resume a schedule (default: -1).
    """

    _checks = {"total_steps": positive_integer, "cycle_momentum": flag,
               "_schedule_phases": lambda value, name: _phases(value, name),
               "_anneal_func_type": lambda value, name: _strategy(value),
               "use_beta1": flag}

    def __init__(self, optimizer, max_lr, total_steps=None, epochs=None, steps_per_epoch=None,
                 pct_start=0.3, anneal_strategy="cos", cycle_momentum=True, base_momentum=0.85,
                 max_momentum=0.95, div_factor=25.0, final_div_factor=1e4, three_phase=False,
                 last_epoch=-1):
        if total_steps is not None:
            self.total_steps = positive_integer(total_steps, "total_steps")
        elif epochs is not None and steps_per_epoch is not None:
            self.total_steps = (positive_integer(epochs, "epochs")
                                * positive_integer(steps_per_epoch, "steps_per_epoch"))
        else:
            raise ValueError("You must define either total_steps OR (epochs AND steps_per_epoch)")
        pct_start = real(pct_start, "pct_start")
        if not 0 <= pct_start <= 1:
            raise ValueError(f"Expected float between 0 and 1 pct_start, but got {pct_start}")
        self._anneal_func_type = _strategy(anneal_strategy)
        phase_end = float(pct_start * self.total_steps)
        if three_phase:
            self._schedule_phases = [
                _phase(phase_end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(2 * phase_end - 2, "max_lr", "initial_lr", "base_momentum", "max_momentum"),
                _phase(self.total_steps - 1, "initial_lr", "min_lr", "max_momentum",
                       "max_momentum")]
        else:
            self._schedule_phases = [
                _phase(phase_end - 1, "initial_lr", "max_lr", "max_momentum", "base_momentum"),
                _phase(self.total_steps - 1, "max_lr", "min_lr", "base_momentum",
                       "max_momentum")]
        max_lrs = per_group(max_lr, "max_lr", optimizer)
        if integer(last_epoch, "last_epoch", minimum=-1) == -1:
            for lr, group in zip(max_lrs, optimizer.param_groups):
                group["initial_lr"] = lr / real(div_factor, "div_factor")
                group["max_lr"] = lr
                group["min_lr"] = group["initial_lr"] / real(final_div_factor, "final_div_factor")
        self.cycle_momentum = flag(cycle_momentum, "cycle_momentum")
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError("optimizer must support momentum or beta1 with `cycle_momentum` "
                                 "option enabled")
            self.use_beta1 = "betas" in optimizer.defaults
            highs = per_group(max_momentum, "max_momentum", optimizer)
            lows = per_group(base_momentum, "base_momentum", optimizer)
            if last_epoch == -1:
                for high, low, group in zip(highs, lows, optimizer.param_groups):
                    if self.use_beta1:
                        group["betas"] = (high, *group["betas"][1:])
                    else:
                        group["momentum"] = high
                    group["max_momentum"], group["base_momentum"] = high, low
        super().__init__(optimizer, last_epoch)

    def get_lr(self):
        """The rate (and momentum) of step ``last_epoch`` in its phase, annealed between the
        phase's ends."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"Tried to step {step} times. The specified number of total steps "
                             f"is {self.total_steps}")
        anneal = _anneal_cos if self._anneal_func_type == "cos" else _anneal_linear
        rates = []
        for group in self.optimizer.param_groups:
            start = 0.0
            for i, phase in enumerate(self._schedule_phases):
                end = phase["end_step"]
                if step <= end or i == len(self._schedule_phases) - 1:
                    pct = (step - start) / (end - start)
                    rate = anneal(group[phase["start_lr"]], group[phase["end_lr"]], pct)
                    if self.cycle_momentum:
                        momentum = anneal(group[phase["start_momentum"]],
                                          group[phase["end_momentum"]], pct)
                    break
                start = phase["end_step"]
            rates.append(rate)
            if self.cycle_momentum:
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum
        return rates


def _phase(end_step, start_lr, end_lr, start_momentum, end_momentum):
    return {"end_step": end_step, "start_lr": start_lr, "end_lr": end_lr,
            "start_momentum": start_momentum, "end_momentum": end_momentum}


def _phases(value, name):
    if not isinstance(value, list) or not all(isinstance(phase, dict) and set(phase) == {
            "end_step", "start_lr", "end_lr", "start_momentum", "end_momentum"} for phase in value):
        raise ValueError(f"{name}: expected OneCycleLR's list of phases, got {value!r}")
    return [dict(phase, end_step=real(phase["end_step"], name)) for phase in value]


def _strategy(value):
    if value not in ("cos", "linear"):
        raise ValueError(f"anneal_strategy must be one of 'cos' or 'linear', instead got {value}")
    return value


def _anneal_cos(start, end, pct):
    """Cosine anneal from `start` to `end` as pct goes from 0.0 to 1.0."""
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _anneal_linear(start, end, pct):
    """Linearly anneal from `start` to `end` as pct goes from 0.0 to 1.0."""
    return (end - start) * pct + start
