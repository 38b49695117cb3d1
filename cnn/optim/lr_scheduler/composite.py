"""Schedulers made of schedulers: one after another (SequentialLR) or all at once
(ChainedScheduler)."""
from bisect import bisect_right

from ..._validation import integer
from .base import LRScheduler
from .plateau import ReduceLROnPlateau

__all__ = ["SequentialLR", "ChainedScheduler"]


def _check_schedulers(owner, schedulers, optimizer):
    """PyTorch's checks: at least one scheduler, each a scheduler of `optimizer`, none a
    ReduceLROnPlateau (its step needs a metric)."""
    name = owner.__name__
    if len(schedulers) < 1:
        raise ValueError(f"{name} expects at least one scheduler, but got no scheduler.")
    for index, scheduler in enumerate(schedulers):
        if not isinstance(scheduler, LRScheduler):
            raise TypeError(f"{name} at index {index} should be a scheduler, got "
                            f"{type(scheduler).__name__}")
        if isinstance(scheduler, ReduceLROnPlateau):
            raise ValueError(f"{name} does not support `ReduceLROnPlateau` scheduler as it "
                             "requires additional kwargs to be specified when calling `step`, "
                             f"but got one at index {index} in the given schedulers sequence.")
        if scheduler.optimizer is not optimizer:
            raise ValueError(f"{name} expects all schedulers to belong to the same optimizer, "
                             f"but got scheduler {type(scheduler).__name__} at index {index} "
                             "with another optimizer")


class _Composite(LRScheduler):
    """The state dict of a scheduler of schedulers: its own attributes and theirs, nested."""

    def state_dict(self):
        """The state, with ``_schedulers`` the list of the schedulers' own state dicts."""
        state = {key: list(value) if isinstance(value, list) else value
                 for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [scheduler.state_dict() for scheduler in self._schedulers]
        return state

    def load_state_dict(self, state_dict):
        """Load a state made by ``state_dict()``, the schedulers' states included."""
        saved = state_dict.get("_schedulers") if hasattr(state_dict, "get") else None
        if not isinstance(saved, (list, tuple)) or len(saved) != len(self._schedulers):
            raise ValueError(f"scheduler state dict: _schedulers must hold "
                             f"{len(self._schedulers)} states, got {saved!r}")
        own = dict(state_dict, _schedulers=self._schedulers)
        previous = [scheduler.state_dict() for scheduler in self._schedulers]
        try:
            for scheduler, state in zip(self._schedulers, saved):
                scheduler.load_state_dict(state)
            super().load_state_dict(own)
        except (TypeError, ValueError):
            for scheduler, state in zip(self._schedulers, previous):
                scheduler.load_state_dict(state)
            raise
        self._schedulers = own["_schedulers"]


class SequentialLR(_Composite):
    """Run ``schedulers`` one after another, switching at the ``milestones`` epochs.

    Args:
        optimizer (Optimizer): the optimizer the schedulers schedule.
        schedulers (list): the schedulers, in order (not ReduceLROnPlateau).
        milestones (list of int): the epochs where the next scheduler takes over (one fewer
            than the schedulers).
        last_epoch (int): index of the last epoch (default: -1).

    Example::

        >>> warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)
        >>> decay = ExponentialLR(optimizer, gamma=0.9)
        >>> scheduler = SequentialLR(optimizer, [warmup, decay], milestones=[5])
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch=-1):
        schedulers = list(schedulers)
        _check_schedulers(SequentialLR, schedulers, optimizer)
        milestones = [integer(m, "milestones", 0) for m in milestones]
        if len(milestones) != len(schedulers) - 1:
            raise ValueError("Sequential Schedulers expects number of schedulers provided to be "
                             "one more than the number of milestone points, but got number of "
                             f"schedulers {len(schedulers)} and the number of milestones to be "
                             f"equal to {len(milestones)}")
        self._schedulers = schedulers
        self._milestones = milestones
        self.last_epoch = integer(last_epoch, "last_epoch", -1) + 1
        self.optimizer = optimizer
        # Undo the steps the schedulers took when they were built, and start the first again.
        for group in optimizer.param_groups:
            group["lr"] = group["initial_lr"]
        for scheduler in schedulers:
            scheduler.last_epoch -= 1
        first = schedulers[bisect_right(milestones, 0)]
        first._initial_step()
        self._last_lr = first.get_last_lr()

    def step(self):
        """Advance one epoch: the current scheduler steps, or the next one starts at its epoch 0."""
        self.last_epoch += 1
        index = bisect_right(self._milestones, self.last_epoch)
        scheduler = self._schedulers[index]
        if index > 0 and self._milestones[index - 1] == self.last_epoch:
            scheduler._update_lr(0)
        else:
            scheduler.step()
        self._last_lr = scheduler.get_last_lr()


class ChainedScheduler(_Composite):
    """Step every scheduler of ``schedulers`` at each step (their factors compound).

    Args:
        schedulers (list): the schedulers, of one optimizer (not ReduceLROnPlateau).
        optimizer (Optimizer, optional): their optimizer (default: the first one's).
    """

    def __init__(self, schedulers, optimizer=None):
        schedulers = list(schedulers)
        if schedulers and optimizer is None:
            optimizer = getattr(schedulers[0], "optimizer", None)
        _check_schedulers(ChainedScheduler, schedulers, optimizer)
        self._schedulers = schedulers
        self.optimizer = optimizer
        self._last_lr = [group["lr"] for group in optimizer.param_groups]

    def step(self):
        """Step every scheduler, in order."""
        for scheduler in self._schedulers:
            scheduler.step()
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]
