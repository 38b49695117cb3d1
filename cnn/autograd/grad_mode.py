"""Grad mode: whether ops record the graph, per thread, and the ways to switch it.

``no_grad``, ``enable_grad``, ``set_grad_enabled`` and ``inference_mode`` work as context
managers and as decorators, as in PyTorch. ``Function.apply`` reads ``_grad_state.enabled``
once per op.
"""
import functools
import threading

__all__ = ["enable_grad", "inference_mode", "is_grad_enabled", "is_inference_mode_enabled",
           "no_grad", "set_grad_enabled"]


class _GradState(threading.local):
    # Class attributes, so every thread starts with grad enabled (as in PyTorch).
    enabled = True
    inference = False


_grad_state = _GradState()


def is_grad_enabled():
    """Return True unless inside :class:`no_grad` (on this thread)."""
    return _grad_state.enabled


def is_inference_mode_enabled():
    """Return True inside :class:`inference_mode` (on this thread)."""
    return _grad_state.inference


class _GradMode:
    """Set grad mode inside a ``with`` block or a decorated function, then restore it."""

    __slots__ = ("_previous",)
    _enabled = True  # the mode inside the block; set by each subclass

    def __new__(cls, func=None):
        self = super().__new__(cls)
        # Bare ``@no_grad`` (without parentheses) decorates at once, as in PyTorch 2.
        return self if func is None else self(func)

    def __enter__(self):
        self._previous = _grad_state.enabled
        _grad_state.enabled = self._enabled

    def __exit__(self, *exc_info):
        _grad_state.enabled = self._previous

    def _clone(self):
        """A fresh instance with the same setting, for one call of a decorated function."""
        return type(self)()

    def __call__(self, func):
        if not callable(func):
            raise TypeError(f"{type(self).__name__}: expected a function to decorate, got "
                            f"{type(func).__name__}")
        mode = self

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            # A fresh instance per call keeps recursive and threaded calls independent.
            with mode._clone():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Disable graph recording, as a context manager or a decorator.

    Ops run inside return tensors with ``requires_grad=False`` and save nothing for backward,
    which is what evaluation loops and optimizer updates want. In-place operations on leaves
    that require grad (``p -= lr * p.grad``) are allowed here.

    Example::

        with no_grad():
            y = x * 2          # y.requires_grad is False

        @no_grad()
        def evaluate(model, x):
            return model(x)
    """

    __slots__ = ()
    _enabled = False


class enable_grad(_GradMode):
    """Re-enable graph recording inside a :class:`no_grad` region (context manager or decorator)."""

    __slots__ = ()


class set_grad_enabled(_GradMode):
    """Set grad mode to ``mode``: at once when called, or for a ``with`` block or a decorated
    function, as ``torch.set_grad_enabled``.

    Args:
        mode (bool): True records the graph, False does not.

    Example::

        with set_grad_enabled(phase == "train"):
            loss = criterion(model(x), y)
        set_grad_enabled(False)    # from here on, on this thread
    """

    __slots__ = ("_mode",)

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected True or False, got {type(mode).__name__} {mode!r}")
        self._mode = mode
        # Calling it is enough to switch (PyTorch's function form); the block form then
        # restores the mode that was in force before the call.
        self._previous = _grad_state.enabled
        _grad_state.enabled = mode

    def __enter__(self):
        pass

    def _clone(self):
        return _SetGradMode(self._mode)

    def __call__(self, func):
        # Used as a decorator, the call above must not change the caller's mode.
        _grad_state.enabled = self._previous
        return super().__call__(func)


class _SetGradMode(_GradMode):
    """``set_grad_enabled(mode)`` for one call of a decorated function."""

    __slots__ = ("_mode",)

    def __new__(cls, mode):
        return object.__new__(cls)

    def __init__(self, mode):
        self._mode = mode

    def __enter__(self):
        self._previous = _grad_state.enabled
        _grad_state.enabled = self._mode


class inference_mode(_GradMode):
    """Disable graph recording for inference, as ``torch.inference_mode`` (context manager or
    decorator, with or without parentheses).

    cnn has no separate inference tensors: inside the block this is :class:`no_grad`, and
    :func:`is_inference_mode_enabled` is True. (PyTorch would refuse, later, to record a graph
    through a tensor made here; cnn allows it.)

    Args:
        mode (bool): False makes the block change nothing.
    """

    __slots__ = ("_mode", "_previous_inference")

    def __new__(cls, mode=True):
        self = object.__new__(cls)
        if callable(mode):  # bare @inference_mode
            self.__init__(True)
            return self(mode)
        return self

    def __init__(self, mode=True):
        if not isinstance(mode, bool):
            raise TypeError(f"mode: expected True or False, got {type(mode).__name__} {mode!r}")
        self._mode = mode

    def _clone(self):
        return type(self)(self._mode)

    def __enter__(self):
        self._previous = _grad_state.enabled
        self._previous_inference = _grad_state.inference
        if self._mode:
            _grad_state.enabled = False
            _grad_state.inference = True

    def __exit__(self, *exc_info):
        _grad_state.enabled = self._previous
        _grad_state.inference = self._previous_inference
