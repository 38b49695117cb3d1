"""Per-layer forward and backward time of a :class:`~cnn.nn.Sequential` model.

The original library timed every layer on every call. Here the timing is opt-in and costs
nothing while off: it runs on module hooks (``register_forward_pre_hook`` /
``register_forward_hook``), registered on the profiled model's layers when it is enabled and
removed when it is disabled. While a layer has hooks, ``Sequential`` does not fuse it with its
neighbours (cnn/nn/fusion.py), so each layer runs, and is timed, on its own.

Rows: the Sequential's children in order, where a child that is itself a plain Sequential is
replaced by its own rows (named ``"features.0"``, ...). Other modules are one row each, timed as
a whole. A row is timed when its Sequential calls it; a module at several positions has a row
per position.

Forward time of a row: wall-clock seconds from its pre-hook to its forward hook. Backward time:
while grad is recorded, identity marker functions are inserted before and after each row (the
pre-hook replaces the row's input, the forward hook its output); in the backward pass the
marker after a row runs just before the row's gradient computations and the marker before it
just after them, and the time between the two is the row's backward time. A first row whose
input needs no gradient has no marker before it; its backward ends with the backward pass
(``Tensor.backward`` is wrapped for that while any profile is active).

Three ways to use it::

    with cnn.profiler.profile(model) as prof:       # a context manager
        train_some_steps(model)
    print(prof.table())

    model.enable_profiling()                        # the original library's style (cnn.Sequential)
    train_some_steps(model)
    model.print_profile()
    model.forward_time, model.backward_time         # seconds per row, accumulated
    model.disable_profiling()

    cnn.profiler.enable(model) / cnn.profiler.disable(model)

Timings accumulate across calls until :meth:`LayerProfile.reset` (or a new ``enable`` with
``reset=True``). Do not copy or pickle a model while it is being profiled.
"""
import contextlib
import functools
import threading
import time
import weakref

from .autograd import Function, is_grad_enabled
from .nn import Sequential
from .tensor import Tensor

__all__ = ["LayerProfile", "profile", "enable", "disable", "get_profile", "blank_profile",
           "format_table"]

_clock = time.perf_counter
# The latest profile of every model, kept after disabling so its times can still be read.
_profiles = weakref.WeakKeyDictionary()
# Profiles currently enabled; while there is one, Tensor.backward is wrapped.
_active = set()
# The Sequentials whose layers carry an active profile's hooks, to refuse profiling them twice.
_profiled = weakref.WeakSet()
_plain_backward = None
# Enabling and disabling, from any thread, one at a time: each tests the tables, then changes
# them and Tensor.backward.
_lock = threading.RLock()


class LayerProfile:
    """Seconds accumulated per row (layer) of one profiled model.

    Attributes:
        names (list of str): Row names, the layers' state_dict prefixes (``"0"``,
            ``"features.3"``).
        types (list of str): The layers' class names (``"Conv2d"``).
        forward_time (list of float): Seconds spent in each row's forward calls.
        backward_time (list of float): Seconds spent in each row's backward computations.
        calls (list of int): How many times each row ran forward.
        active (bool): Whether the profile is being recorded now.
    """

    def __init__(self, names, types):
        self.names = names
        self.types = types
        self.forward_time = [0.0] * len(names)
        self.backward_time = [0.0] * len(names)
        self.calls = [0] * len(names)
        self.active = False
        self._pending = set()  # rows whose backward has started but not yet ended
        self._handles = []  # the hooks registered while active
        self._sequentials = []  # weak references to the profiled Sequentials, while active
        # One frame per profiled Sequential whose forward is running, innermost last.
        self._frames = []

    def reset(self):
        """Set every time and count back to zero (the lists are changed in place)."""
        rows = len(self.names)
        self.forward_time[:] = [0.0] * rows
        self.backward_time[:] = [0.0] * rows
        self.calls[:] = [0] * rows
        self._pending.clear()

    def table(self, iterations=None):
        """Return the table of forward and backward time per row (see :func:`format_table`)."""
        return format_table(self.names, self.forward_time, self.backward_time, types=self.types,
                            iterations=iterations)

    def __repr__(self):
        state = "active" if self.active else "inactive"
        return (f"<LayerProfile of {len(self.names)} layers, {state}: forward "
                f"{sum(self.forward_time):.6f} s, backward {sum(self.backward_time):.6f} s>")

    # ----- recording -----

    def _install(self, plans):
        """Register the hooks that time the rows of every Sequential of `plans`."""
        hooked = set()
        for seq, entries in plans.items():
            self._hook(seq, functools.partial(self._enter, entries), self._leave)
            for module, _ in entries:
                if module not in hooked:
                    hooked.add(module)
                    self._hook(module, self._row_start, self._row_end)
        self._sequentials = [weakref.ref(seq) for seq in plans]

    def _hook(self, module, pre_hook, hook):
        self._handles.append(module.register_forward_pre_hook(pre_hook))
        self._handles.append(module.register_forward_hook(hook, always_call=True))

    def _uninstall(self):
        for handle in self._handles:
            handle.remove()
        self._handles, self._sequentials, self._frames = [], [], []

    def _enter(self, entries, seq, args):
        self._frames.append(_Frame(seq, entries))

    def _leave(self, seq, args, output):
        if self._frames and self._frames[-1].seq is seq:
            self._frames.pop()

    def _row_start(self, module, args):
        """Pre-hook of a row module: mark the input for backward, start the clock."""
        frame = self._frames[-1] if self._frames else None
        if frame is None or frame.running is not None:
            return None  # not called by a profiled Sequential itself
        row = frame.take(module)
        if row is None:
            return None
        span = None
        if is_grad_enabled() and len(args) == 1 and _needs_grad(args[0]):
            span = _Span(row)
            args = (_Marker.apply(args[0], on_backward=functools.partial(self._end, span)),)
        frame.running = (module, row, span, _clock())
        return args

    def _row_end(self, module, args, output):
        """Forward hook of a row module: stop the clock, mark the output for backward."""
        now = _clock()
        frame = self._frames[-1] if self._frames else None
        if frame is None or frame.running is None or frame.running[0] is not module:
            return None
        _, row, span, start = frame.running
        frame.running = None
        if output is None:  # the forward raised (this hook is always called)
            return None
        self.forward_time[row] += now - start
        self.calls[row] += 1
        if is_grad_enabled() and _needs_grad(output):
            span = span or _Span(row)
            return _Marker.apply(output, on_backward=functools.partial(self._begin, span))
        return None

    def _begin(self, span):
        if self.active:
            span.start = _clock()
            self._pending.add(span)

    def _end(self, span, now=None):
        if span in self._pending:
            self._pending.discard(span)
            self.backward_time[span.row] += (_clock() if now is None else now) - span.start

    def _end_all(self, now):
        for span in list(self._pending):
            self._end(span, now)


def _needs_grad(value):
    return isinstance(value, Tensor) and value.requires_grad


class _Frame:
    """A profiled Sequential's forward in progress: which of its rows ran, which is running."""

    __slots__ = ("seq", "entries", "position", "running")

    def __init__(self, seq, entries):
        self.seq = seq
        self.entries = entries  # (module, row) per timed child, in order
        self.position = 0
        self.running = None  # (module, row, span, start) of the row being called

    def take(self, module):
        """The row of `module`'s next position in this forward, or None if it has none."""
        for index in range(self.position, len(self.entries)):
            if self.entries[index][0] is module:
                self.position = index + 1
                return self.entries[index][1]
        return None


class _Span:
    """One row's backward in one forward pass: when its gradient arrived."""

    __slots__ = ("row", "start")

    def __init__(self, row):
        self.row = row
        self.start = None


class _Marker(Function):
    """Identity whose backward calls ``on_backward()``: a timestamp inside the backward pass."""

    @staticmethod
    def forward(ctx, x, on_backward):
        ctx.on_backward = on_backward
        return x

    @staticmethod
    def backward(ctx, grad):
        ctx.on_backward()
        return grad


# ***** switching it on and off *****

def enable(model, reset=True):
    """Start recording per-layer times of `model`.

    Args:
        model (Sequential): The model.
        reset (bool): Start from zero; with False, continue the model's previous profile when
            its layers are the same.

    Returns:
        LayerProfile: The profile being recorded (also ``model.forward_time`` etc.).

    Raises:
        TypeError: If `model` is not a Sequential.
        RuntimeError: If `model`, or a Sequential inside it, is already being profiled.
    """
    with _lock:
        names, types, plans = _rows(model)
        if any(seq in _profiled for seq in plans):
            raise RuntimeError("model: already being profiled (or holds a Sequential that is); "
                               "disable that profile first")
        previous = _profiles.get(model)
        same_rows = previous is not None and (previous.names, previous.types) == (names, types)
        if not reset and same_rows:
            profile_ = previous
        else:
            profile_ = LayerProfile(names, types)
        profile_._install(plans)
        _profiled.update(plans)
        profile_.active = True
        _profiles[model] = profile_
        _active.add(profile_)
        _wrap_backward()
        return profile_


def disable(model):
    """Stop recording `model`'s times and remove its hooks; the times are kept.

    Returns:
        LayerProfile or None: The profile, or None if `model` was never profiled.
    """
    with _lock:
        profile_ = _profiles.get(model)
        if profile_ is None or not profile_.active:
            return profile_
        for ref in profile_._sequentials:
            seq = ref()
            if seq is not None:
                _profiled.discard(seq)
        profile_._uninstall()
        profile_._pending.clear()
        profile_.active = False
        _active.discard(profile_)
        if not _active:
            _unwrap_backward()
        return profile_


def get_profile(model):
    """Return `model`'s latest :class:`LayerProfile` (active or not), or None."""
    return _profiles.get(model)


def blank_profile(model):
    """Return a :class:`LayerProfile` of `model`'s rows with all times zero, not recording.

    What ``model.forward_time`` shows before profiling is ever enabled, and what a caller can
    fill itself (the rows are those :func:`enable` would time).
    """
    names, types, _ = _rows(model)
    return LayerProfile(names, types)


@contextlib.contextmanager
def profile(model, reset=True):
    """Record per-layer times of `model` inside a ``with`` block.

    Args:
        model (Sequential): The model.
        reset (bool): As in :func:`enable`.

    Yields:
        LayerProfile: The times, readable during and after the block.

    Example::

        with cnn.profiler.profile(model) as prof:
            loss = F.cross_entropy(model(x), y)
            loss.backward()
        print(prof.table())
    """
    profile_ = enable(model, reset=reset)
    try:
        yield profile_
    finally:
        disable(model)


def _rows(model):
    """The row names and types of `model`, and the plan of every Sequential in it."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model: expected a cnn.nn.Sequential, got {type(model).__name__}")
    names, types, plans = [], [], {}
    _plan(model, "", names, types, plans)
    return names, types, plans


def _plan(seq, prefix, names, types, plans):
    """Number the rows below `seq`; `plans` maps each Sequential to its [(module, row)]."""
    entries = plans[seq] = []
    for name, module in seq._modules.items():
        if module is None:
            continue
        if isinstance(module, Sequential) and type(module).forward is Sequential.forward:
            # A nested Sequential is not a row of its own: its children are (a shared one
            # keeps the rows of its first position). One with a forward of its own (a fused
            # module) is a row.
            if module not in plans:
                _plan(module, f"{prefix}{name}.", names, types, plans)
            continue
        entries.append((module, len(names)))
        names.append(prefix + name)
        types.append(type(module).__name__)


def _wrap_backward():
    """Have Tensor.backward end the pending rows' backward when the whole pass ends."""
    global _plain_backward
    if _plain_backward is not None:
        return
    plain = _plain_backward = Tensor.backward

    @functools.wraps(plain)
    def backward(self, *args, **kwargs):
        try:
            plain(self, *args, **kwargs)
        finally:
            now = _clock()
            for profile_ in list(_active):
                profile_._end_all(now)

    Tensor.backward = backward


def _unwrap_backward():
    global _plain_backward
    if _plain_backward is not None:
        Tensor.backward = _plain_backward
        _plain_backward = None


# ***** the table *****

def format_table(names, forward_time, backward_time, types=None, iterations=None):
    """Format per-layer times as a text table with a total row.

    Args:
        names (list of str): Row names.
        forward_time, backward_time (list of float): Seconds per row.
        types (list of str, optional): A type column (``"Conv2d"``).
        iterations (int, optional): Show milliseconds per iteration (the times divided by
            `iterations`) instead of total seconds.

    Returns:
        str: The table, without a final newline, e.g.::

            layer  type      forward (s)  backward (s)  total (s)  share
            0      Conv2d       0.012345      0.023456   0.035801  31.2%
            ...
            total               0.045000      0.069700   0.114700   100%
    """
    if not len(names) == len(forward_time) == len(backward_time):
        raise ValueError(f"names, forward_time, backward_time: expected equal lengths, got "
                         f"{len(names)}, {len(forward_time)}, {len(backward_time)}")
    if iterations is not None and iterations <= 0:
        raise ValueError(f"iterations: expected a positive number, got {iterations}")
    if iterations is None:
        scale, unit, digits = 1.0, "s", 6
    else:
        scale, unit, digits = 1000.0 / iterations, "ms", 3
    totals = [f + b for f, b in zip(forward_time, backward_time)]
    grand = sum(totals)

    def numbers(forward, backward, total):
        return [f"{value * scale:.{digits}f}" for value in (forward, backward, total)] + [
            _share(total, grand)]

    rows = [[str(name)] + ([str(types[i])] if types is not None else [])
            + numbers(forward_time[i], backward_time[i], totals[i])
            for i, name in enumerate(names)]
    rows.append(["total"] + ([""] if types is not None else [])
                + numbers(sum(forward_time), sum(backward_time), grand))
    header = (["layer"] + (["type"] if types is not None else [])
              + [f"forward ({unit})", f"backward ({unit})", f"total ({unit})", "share"])
    widths = [max(len(row[col]) for row in [header] + rows) for col in range(len(header))]
    labels = 2 if types is not None else 1  # left-aligned text columns, then numbers

    def line(cells):
        return "  ".join(cell.ljust(width) if col < labels else cell.rjust(width)
                         for col, (cell, width) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(header)] + [line(row) for row in rows]
    if iterations is not None:
        lines.append(f"(milliseconds per iteration, mean of {iterations})")
    return "\n".join(lines)


def _share(value, total):
    return f"{100 * value / total:.1f}%" if total > 0 else "-"
