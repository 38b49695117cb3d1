"""Functions, the graph they record, grad mode and the backward engine.

A differentiable op is a :class:`Function` subclass with two static methods on NumPy arrays::

    class Mul(Function):
        @staticmethod
        def forward(ctx, a, b):
            ctx.save_for_backward(a, b)
            return a * b

        @staticmethod
        def backward(ctx, grad_output):
            a, b = ctx.saved_tensors
            return grad_output * b, grad_output * a

``Mul.apply(x, y)`` unwraps Tensor arguments to their arrays, runs ``forward`` and wraps the
result in a Tensor. When grad mode is on and an input requires grad, the ``ctx`` object becomes
the result's graph node: it remembers the inputs, and :func:`run_backward` later calls
``Mul.backward(ctx, grad)`` on it.

Inside :func:`tracing`, every ``apply`` also reports the op, its arguments and its result to an
observer (``cnn.onnx`` records a forward pass that way).

A graph node refers to its inputs as they were when the op ran: the node of each input that
was computed, the Tensor itself for a leaf. An in-place operation (``cnn/autograd/inplace.py``)
therefore gives its tensor a new node without changing what earlier nodes read, and bumps the
tensor's version (:class:`Version`): a node whose saved arrays were overwritten since it ran
raises at backward, as PyTorch's "modified by an inplace operation" error, instead of giving a
wrong gradient. That check costs one integer comparison per node until the first in-place op.
"""
import contextlib
import threading

import numpy as np

from .grad_mode import _grad_state

# ***** the Tensor class, registered from above *****

# The engine unwraps Tensor arguments and wraps results in Tensors, yet Tensor is built on the
# engine: its methods are the Functions of ops.py. Importing cnn.tensor here would close an
# import cycle, so cnn/tensor.py hands its class over with register_tensor_class() right after
# defining it. A global read in Function.apply costs what the imported name cost before.
Tensor = None


def register_tensor_class(cls):
    """Make `cls` the Tensor class the engine unwraps and builds (called once, by cnn.tensor).

    Args:
        cls (type): ``cnn.Tensor``.
    """
    global Tensor
    Tensor = cls


# ***** versions *****

class Version:
    """How often a tensor's memory was modified in place; shared by a tensor and its views.

    It lives on the tensor that owns the memory (views reach it through their ``_base``) and is
    made by the first in-place operation. ``epoch`` is the value of the global in-place counter
    at the last modification: a node made at an earlier epoch may have saved what was
    overwritten, and is checked at backward.

    Attributes:
        value (int): The version, ``Tensor._version``.
        epoch (int): The in-place epoch of the last modification.
    """

    __slots__ = ("value", "epoch")

    def __init__(self):
        self.value = 0
        self.epoch = 0


# Bumped by every in-place operation on a tensor; each graph node records it when made. The
# lock keeps two threads' bumps from landing on one value.
_epoch = 0
_epoch_lock = threading.Lock()


def bump_version(root):
    """Record an in-place modification of the memory that the tensor `root` owns.

    Returns:
        Version: The tensor's version, now one higher, at a new epoch.
    """
    global _epoch
    version = root._counter
    if version is None:
        version = root._counter = Version()
    with _epoch_lock:
        _epoch += 1
        version.value += 1
        version.epoch = _epoch
    return version


def current_epoch():
    """The global in-place epoch (see :class:`Version`)."""
    return _epoch


# ***** functions and their graph nodes *****

class Context:
    """The ``ctx`` passed to ``forward`` and ``backward``; also the result's graph node.

    Attributes:
        saved_tensors: The arrays given to :meth:`save_for_backward`; None once the graph
            has been freed by a backward pass.
        needs_input_grad: One bool per forward argument: whether backward must return a
            gradient for it (False for non-Tensor arguments and tensors without grad).

    Any other attribute (``ctx.dim = dim``) can be set in ``forward`` and read in ``backward``.
    """

    __slots__ = ("_function", "_inputs", "_args", "_epoch", "saved_tensors", "__dict__")

    def __init__(self, function, inputs, args, epoch):
        self._function = function
        # One entry per forward argument: the node of a computed input that requires grad, the
        # Tensor itself for a leaf that requires grad, else None.
        self._inputs = inputs
        # The arguments as given, and the in-place epoch, for the version check at backward.
        self._args = args
        self._epoch = epoch
        self.saved_tensors = ()

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for ``backward`` (read them back from ``ctx.saved_tensors``)."""
        self.saved_tensors = arrays

    @property
    def needs_input_grad(self):
        """tuple: One bool per forward argument: whether backward must return its gradient."""
        return tuple([input_ is not None for input_ in self._inputs])

    def register_hook(self, hook):
        """Call ``hook(grad)`` with the gradient of this node's output before it flows on.

        ``Tensor.register_hook`` on a computed tensor lands here; the hook may return a
        replacement gradient (an array or Tensor of the same shape) or None.

        Returns:
            RemovableHandle-like object with ``remove()``.
        """
        global hooks_in_use
        hooks_in_use = True
        hooks = self.__dict__.setdefault("_hooks", {})
        handle = _HookHandle(hooks)
        hooks[handle.id] = hook
        return handle

    def name(self):
        """Return the node's name, e.g. ``"MulBackward"``."""
        return self._function.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"


class _UnrecordedContext(Context):
    """The ``ctx`` of an op that records nothing (no_grad, or no input requires grad)."""

    __slots__ = ()

    def __init__(self, function, inputs):
        self._function = function
        self._inputs = inputs
        self.saved_tensors = ()

    def save_for_backward(self, *arrays):
        pass

    @property
    def needs_input_grad(self):
        """tuple: All False (nothing is recorded), made without looking at the inputs: a
        batch-1 layer reads it at every call."""
        return (False,) * len(self._inputs)


class Function:
    """Base class of differentiable operations.

    Subclasses define two static methods working on NumPy arrays:

    - ``forward(ctx, *args, **kwargs)`` returns the result array. Tensor arguments arrive
      as their arrays; other arguments (dims, scalars, flags) arrive unchanged.
    - ``backward(ctx, grad_output)`` returns one gradient (array or None) per positional
      forward argument, or a single gradient when there is one argument. Each gradient must
      have its input's shape; return None where ``ctx.needs_input_grad`` is False.

    A subclass may also define ``inference(threads, *args, **kwargs)``: forward without
    gradients and without a ctx, the kernels' thread count given, with forward's result bit for
    bit. ``cnn.compile`` replays a forward pass without gradients through it where it exists:
    a batch-1 layer's ctx and per-op thread lookup cost a good part of its microseconds.

    Call the op with ``MyFunction.apply(*args, **kwargs)``, never ``forward`` directly.

    Attributes:
        per_image (tuple): The positions of the forward's arguments that are batches of
            images (N, C, H, W), for an op whose result for each image depends on that
            image's values alone (the other arguments being the same for every image), with
            the same bits whatever the batch: ``cnn.compile`` may then run a large batch's
            leading steps of such ops a few images at a time (``cnn.replay``). Empty unless a
            subclass names them.
        freezable (bool): Whether ``inference`` takes ``frozen=True``: ``cnn.compile``'s
            freezing (``options={"freezing": True}``) then lets the op use the kernel layout it
            keeps of its weights (and a folded batch norm's map) without reading them again.
            Such an op also has ``frozen(shape, *fixed, **kwargs)``: its inference prepared
            once, with its arguments other than the ones each call takes (``frozen_takes``,
            in order) taken for constants (`fixed`, in order), for a first taken argument of
            this `shape` (the others' shapes fixed by it): a callable ``(threads, *taken)``
            that gives inference's result (None where there is nothing to prepare). False
            unless a subclass says so.
        frozen_takes (tuple): The positions of the arguments a frozen call takes; None (the
            default) for the per_image ones.

            A frozen call may also have ``bind(num_threads, out, *taken)``: the call bound
            to arrays it reads (`taken`) and writes (`out`, the result's shape) at every
            call, checked once, for teams of at most `num_threads`: a
            ``cnn._ext._replay.BoundStep``, whose call ``(threads)`` writes the frozen call's
            result into `out` from the values the arrays then hold, and whose shares a bound
            program runs (None where there is no bound form). A batch-1 program whose every
            step has one runs them on arrays of its own with no Python between them, in one
            parallel region (``cnn.replay``).
        views_input (bool): Whether ``inference`` returns its first argument viewed in
            another shape, as a reshape of a C-contiguous array does: a bound program gives
            the result that argument's memory, with no step of its own. False unless a
            subclass says so.
    """

    per_image = ()
    freezable = False
    frozen_takes = None
    views_input = False

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("Function subclasses must implement forward(ctx, ...)")

    @staticmethod
    def backward(ctx, grad_output):
        raise NotImplementedError("Function subclasses must implement backward(ctx, grad_output)")

    @classmethod
    def apply(cls, *args, **kwargs):
        """Run the op on tensors (and plain arguments) and record it for backward.

        Returns:
            Tensor: The result; it requires grad when grad mode is on, some Tensor argument
            requires grad and the result is floating point.
        """
        # Per-op bookkeeping runs for every layer of every step, so it is kept to two passes
        # over the arguments and one node allocation.
        arrays = [arg._data if isinstance(arg, Tensor) else arg for arg in args]
        record = False
        if _grad_state.enabled:
            # Graph edges point at what the inputs are now (see the module docstring).
            inputs = tuple([(arg._node or arg) if isinstance(arg, Tensor) and arg._requires_grad
                            else None for arg in args])
            record = inputs.count(None) != len(inputs)
        if record:
            ctx = Context(cls, inputs, args, _epoch)
        else:
            ctx = _UnrecordedContext(cls, (None,) * len(args))
        data = cls.forward(ctx, *arrays, **kwargs)
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        out = _new_tensor(Tensor)
        out._data = data
        out._grad = None
        out._base = None
        out._counter = None
        if record and data.dtype.kind == "f":
            out._requires_grad = True
            out._node = ctx
        else:
            out._requires_grad = False
            out._node = None
        if _tracer is not None:
            _tracer(cls, args, kwargs, out)
        return out


# Builds results without Tensor.__init__, whose conversions and checks forward's array
# does not need.
_new_tensor = object.__new__


# ***** tracing *****

# The observer of every op, or None: one global test per op when nobody traces. While any
# thread traces it is _dispatch, which hands each op to its own thread's tracer.
_tracer = None
_tracers = {}  # thread ident -> that thread's tracer
_tracers_lock = threading.Lock()


def _dispatch(function, args, kwargs, out):
    tracer = _tracers.get(threading.get_ident())
    if tracer is not None:
        tracer(function, args, kwargs, out)


@contextlib.contextmanager
def tracing(tracer):
    """Call ``tracer(function, args, kwargs, out)`` after every op this thread runs until the
    block ends.

    ``function`` is the Function subclass that ran, ``args`` and ``kwargs`` what its ``apply``
    was given (Tensors and plain arguments, as passed), ``out`` the Tensor it returned. This is
    how ``cnn.onnx`` records a forward pass and ``cnn.compile`` captures one. An in-place
    operation that runs outside autograd (no graph: ``no_grad``, or nothing requires grad) is
    no op; the tracer hears of it through its ``inplace(tensor, name)`` method
    (:func:`note_inplace`). Each thread has
    its own trace: traces in several threads at once each see their own thread's ops only.

    Args:
        tracer (callable): The observer.

    Raises:
        RuntimeError: If this thread is already tracing (traces do not nest).

    Example::

        ops = []
        with tracing(lambda function, args, kwargs, out: ops.append(function.__name__)):
            model(x)
    """
    global _tracer
    me = threading.get_ident()
    with _tracers_lock:
        if me in _tracers:
            raise RuntimeError("tracing: this thread is already tracing; traces do not nest")
        _tracers[me] = tracer
        _tracer = _dispatch
    try:
        yield
    finally:
        with _tracers_lock:
            del _tracers[me]
            if not _tracers:
                _tracer = None


def note_inplace(tensor, name):
    """Tell this thread's tracer that `tensor`'s memory is overwritten by the in-place
    operation `name`: outside autograd no op is recorded, and a trace that kept only the ops
    it saw would replay or export the computation without that write (with autograd, the op
    it sees takes the tensor as it was, which no op of the trace made). A tracer takes it
    in its ``inplace(tensor, name)`` method (refusing the trace, or raising); a tracer without
    one cannot be right, so this raises RuntimeError."""
    if _tracer is None:
        return
    tracer = _tracers.get(threading.get_ident())
    if tracer is None:
        return
    handler = getattr(tracer, "inplace", None)
    if handler is None:
        raise RuntimeError(f"tracing: {name} modified a tensor in place outside autograd, "
                           f"which this trace cannot record")
    handler(tensor, name)


def is_tracing():
    """Whether this thread is inside a :func:`tracing` block (an ONNX export or a
    ``cnn.compile`` capture is recording its ops)."""
    return _tracer is not None and threading.get_ident() in _tracers


# ***** hooks *****

# Set once any gradient hook is registered; until then the engine does not look for hooks.
hooks_in_use = False


class _HookHandle:
    """Removes one hook from the table it was registered in (``handle.remove()``)."""

    __slots__ = ("_table", "id")
    _next_id = 0

    def __init__(self, table):
        self._table = table
        self.id = _HookHandle._next_id
        _HookHandle._next_id += 1

    def remove(self):
        """Unregister the hook; removing it again does nothing."""
        self._table.pop(self.id, None)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.remove()
