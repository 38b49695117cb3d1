"""ReduceLROnPlateau: lower the learning rates when a metric stops improving."""
import math

from ..._validation import integer
from ..optimizer import Optimizer
from .base import LRScheduler, real

__all__ = ["ReduceLROnPlateau"]


def _mode(value, name):
    if value not in ("min", "max"):
        raise ValueError(f"mode {value} is unknown!")
    return value


def _threshold_mode(value, name):
    if value not in ("rel", "abs"):
        raise ValueError(f"threshold mode {value} is unknown!")
    return value


def _best(value, name):
    """The best metric so far: a number, possibly infinite (before the first step)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise TypeError(f"{name}: expected a number, got {value!r}")
    return float(value)


class ReduceLROnPlateau(LRScheduler):
    """Multiply the rates by ``factor`` when a metric has not improved for ``patience`` epochs,
    as ``torch.optim.lr_scheduler.ReduceLROnPlateau``. Call ``step(metric)`` after validating.

    Args:
        optimizer (Optimizer): the optimizer whose learning rates are scheduled.
        mode (str): "min" (the metric should fall, as a loss) or "max" (rise, as an accuracy).
        factor (float): the reduction, new_lr = lr * factor (< 1; default: 0.1).
        patience (int): epochs without improvement tolerated (default: 10).
        threshold (float): the least change that counts as an improvement (default: 1e-4).
        threshold_mode (str): "rel" (relative to the best) or "abs".
        cooldown (int): epochs to wait after a reduction before counting again (default: 0).
        min_lr (float or list): the lowest rate, for all groups or per group (default: 0).
        eps (float): reductions smaller than this are skipped (default: 1e-8).
    """

    _checks = {"factor": real, "patience": lambda v, n: integer(v, n, 0),
               "cooldown": lambda v, n: integer(v, n, 0), "eps": real, "threshold": real,
               "mode": _mode, "threshold_mode": _threshold_mode, "mode_worse": _best,
               "best": _best, "cooldown_counter": lambda v, n: integer(v, n, 0),
               "num_bad_epochs": lambda v, n: integer(v, n, 0)}

    def __init__(self, optimizer, mode="min", factor=0.1, patience=10, threshold=1e-4,
                 threshold_mode="rel", cooldown=0, min_lr=0, eps=1e-8):
        self.factor = real(factor, "factor")
        if self.factor >= 1.0:
            raise ValueError("Factor should be < 1.0.")
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(optimizer).__name__} is not an Optimizer")
        self.optimizer = optimizer
        groups = len(optimizer.param_groups)
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != groups:
                raise ValueError(f"expected {groups} min_lrs, got {len(min_lr)}")
            self.default_min_lr = None
            self.min_lrs = [real(lr, "min_lr") for lr in min_lr]
        else:
            self.default_min_lr = real(min_lr, "min_lr")
            self.min_lrs = [self.default_min_lr] * groups
        self.patience = integer(patience, "patience", 0)
        self.cooldown = integer(cooldown, "cooldown", 0)
        self.eps = real(eps, "eps")
        self.last_epoch = 0
        self._last_lr = [group["lr"] for group in optimizer.param_groups]
        self.mode = _mode(mode, "mode")
        self.threshold = real(threshold, "threshold")
        self.threshold_mode = _threshold_mode(threshold_mode, "threshold_mode")
        self.mode_worse = math.inf if mode == "min" else -math.inf
        self.best = self.mode_worse
        self.cooldown_counter = 0
        self.num_bad_epochs = 0

    def step(self, metrics, epoch=None):
        """Record this epoch's metric and lower the rates if it has stalled.

        Args:
            metrics: the metric (a number or a one-element tensor).
            epoch: deprecated; the epoch's index.
        """
        current = float(metrics)
        self.last_epoch = self.last_epoch + 1 if epoch is None else integer(epoch, "epoch")
        if self._is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0  # bad epochs in cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    @property
    def in_cooldown(self):
        """bool: Whether the scheduler is waiting after a reduction."""
        return self.cooldown_counter > 0

    def _reduce_lr(self):
        groups = self.optimizer.param_groups
        if len(groups) != len(self.min_lrs):
            if self.default_min_lr is None:
                raise RuntimeError(f"The number of param groups in the `optimizer` ({len(groups)}) "
                                   f"differs from when `ReduceLROnPlateau` was initialized "
                                   f"({len(self.min_lrs)}); set `min_lrs` to match")
            self.min_lrs = [self.default_min_lr] * len(groups)
        for group, min_lr in zip(groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    def _is_better(self, a, best):
        if self.mode == "min" and self.threshold_mode == "rel":
            return a < best * (1.0 - self.threshold)
        if self.mode == "min":
            return a < best - self.threshold
        if self.threshold_mode == "rel":
            return a > best * (self.threshold + 1.0)
        return a > best + self.threshold

    def _check_state(self, state):
        super()._check_state(state)
        groups = len(self.optimizer.param_groups)
        min_lrs = state["min_lrs"]
        if not isinstance(min_lrs, (list, tuple)) or len(min_lrs) != groups:
            raise ValueError(f"min_lrs must be a list of {groups} rates, got {min_lrs!r}")
        state["min_lrs"] = [real(lr, "min_lrs") for lr in min_lrs]
        if state["default_min_lr"] is not None:
            state["default_min_lr"] = real(state["default_min_lr"], "default_min_lr")
