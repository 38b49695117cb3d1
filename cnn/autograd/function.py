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
"""
import contextlib
import functools
import threading

import numpy as np

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


# ***** grad mode *****

class _GradState(threading.local):
    # A class attribute, so every thread starts with grad enabled (as in PyTorch).
    enabled = True


_grad_state = _GradState()


def is_grad_enabled():
    """Return True unless inside :class:`no_grad` (on this thread)."""
    return _grad_state.enabled


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

    def __call__(self, func):
        mode = type(self)

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            # A fresh instance per call keeps recursive and threaded calls independent.
            with mode():
                return func(*args, **kwargs)

        return wrapper


class no_grad(_GradMode):
    """Disable graph recording, as a context manager or a decorator.

    Ops run inside return tensors with ``requires_grad=False`` and save nothing for backward,
    which is what evaluation loops and optimizer updates want.

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

    __slots__ = ("_function", "_inputs", "saved_tensors", "__dict__")

    def __init__(self, function, inputs):
        self._function = function
        # One entry per forward argument: the Tensor if it requires grad, else None.
        self._inputs = inputs
        self.saved_tensors = ()

    def save_for_backward(self, *arrays):
        """Keep ``arrays`` for ``backward`` (read them back from ``ctx.saved_tensors``)."""
        self.saved_tensors = arrays

    @property
    def needs_input_grad(self):
        """tuple: One bool per forward argument: whether backward must return its gradient."""
        return tuple([tensor is not None for tensor in self._inputs])

    def name(self):
        """Return the node's name, e.g. ``"MulBackward"``."""
        return self._function.__name__ + "Backward"

    def __repr__(self):
        return f"<{self.name()}>"


class _UnrecordedContext(Context):
    """The ``ctx`` of an op that records nothing (no_grad, or no input requires grad)."""

    __slots__ = ()

    def save_for_backward(self, *arrays):
        pass


class Function:
    """Base class of differentiable operations.

    Subclasses define two static methods working on NumPy arrays:

    - ``forward(ctx, *args, **kwargs)`` returns the result array. Tensor arguments arrive
      as their ``.data`` arrays; other arguments (dims, scalars, flags) arrive unchanged.
    - ``backward(ctx, grad_output)`` returns one gradient (array or None) per positional
      forward argument, or a single gradient when there is one argument. Each gradient must
      have its input's shape; return None where ``ctx.needs_input_grad`` is False.

    Call the op with ``MyFunction.apply(*args, **kwargs)``, never ``forward`` directly.
    """

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
        arrays = [arg.data if isinstance(arg, Tensor) else arg for arg in args]
        record = False
        if _grad_state.enabled:
            inputs = tuple([arg if isinstance(arg, Tensor) and arg._requires_grad else None
                            for arg in args])
            record = inputs.count(None) != len(inputs)
        if record:
            ctx = Context(cls, inputs)
        else:
            ctx = _UnrecordedContext(cls, (None,) * len(args))
        data = cls.forward(ctx, *arrays, **kwargs)
        if type(data) is not np.ndarray:
            data = np.asarray(data)
        out = _new_tensor(Tensor)
        out.data = data
        out._grad = None
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

# The observer of every op, or None: one global test per op when nobody traces.
_tracer = None


@contextlib.contextmanager
def tracing(tracer):
    """Call ``tracer(function, args, kwargs, out)`` after every op until the block ends.

    ``function`` is the Function subclass that ran, ``args`` and ``kwargs`` what its ``apply``
    was given (Tensors and plain arguments, as passed), ``out`` the Tensor it returned. This is
    how ``cnn.onnx`` records a forward pass. Ops of every thread are reported: a tracer that
    cares filters by ``threading.get_ident()``.

    Args:
        tracer (callable): The observer.

    Raises:
        RuntimeError: If another trace is already running.

    Example::

        ops = []
        with tracing(lambda function, args, kwargs, out: ops.append(function.__name__)):
            model(x)
    """
    global _tracer
    if _tracer is not None:
        raise RuntimeError("tracing: another trace is running; traces do not nest")
    _tracer = tracer
    try:
        yield
    finally:
        _tracer = None


# ***** the backward engine *****

def run_backward(tensor, gradient=None, retain_graph=False):
    """Accumulate d(tensor)/d(leaf) into the ``.grad`` of every leaf that requires grad.

    Args:
        tensor: The Tensor to differentiate.
        gradient: d(loss)/d(tensor), of the tensor's shape; may be omitted for a
            one-element tensor (it is then 1).
        retain_graph: Keep the saved arrays so that backward can run through this graph
            again. By default they are freed.

    Raises:
        ValueError: The tensor does not require grad, ``gradient`` is missing or has the
            wrong shape, an op's backward returned a gradient of the wrong shape, or the
            graph was already freed.
        TypeError: ``gradient`` is not an array of real numbers (complex, strings, objects).
    """
    if not tensor._requires_grad:
        raise ValueError("backward: the tensor does not require grad and has no grad_fn; "
                         "create its inputs with requires_grad=True")
    grad = _root_gradient(tensor, gradient)
    root = tensor._node
    if root is None:
        _accumulate(tensor, grad)
        return
    order = _topological_order(root)
    grads = {root: grad}
    for node in reversed(order):
        grad = grads.pop(node, None)
        if grad is None:
            continue
        if node.saved_tensors is None:
            raise ValueError(
                f"backward: trying to backward through the graph a second time ({node.name()} "
                "was freed by the first backward); use backward(retain_graph=True) the first time")
        results = node._function.backward(node, grad)
        inputs = node._inputs
        if type(results) is not tuple:
            results = (results,)
        if len(results) != len(inputs) and not _only_nones(results[len(inputs):]):
            raise ValueError(f"{node.name()} returned {len(results)} gradients for "
                             f"{len(inputs)} inputs")
        for input_, grad in zip(inputs, results):
            if input_ is None or grad is None:
                continue
            grad = _checked_gradient(grad, input_.data.shape, input_.data.dtype, node)
            parent = input_._node
            if parent is None:
                _accumulate(input_, grad)
            elif parent in grads:
                # Out of place: the stored gradient may be a view some op still holds.
                grads[parent] = grads[parent] + grad
            else:
                grads[parent] = grad
    if not retain_graph:
        for node in order:
            node.saved_tensors = None
            node._inputs = ()
            node.__dict__.clear()


def _only_nones(extra_results):
    # Gradients for keyword-passed arguments (which have no inputs) may come back as None.
    return bool(extra_results) and all(result is None for result in extra_results)


def _root_gradient(tensor, gradient):
    data = tensor.data
    if gradient is None:
        if data.size != 1:
            raise ValueError("grad can be implicitly created only for scalar outputs; "
                             f"pass backward(gradient=...) for a tensor of shape {data.shape}")
        return np.ones(data.shape, data.dtype)
    grad = np.asarray(gradient.data if isinstance(gradient, Tensor) else gradient)
    if grad.dtype.kind not in "biuf":
        raise TypeError(f"backward: gradient must be a real number array, got dtype {grad.dtype}")
    if grad.shape != data.shape:
        raise ValueError(f"backward: gradient has shape {grad.shape}, expected the "
                         f"tensor's shape {data.shape}")
    return grad.astype(data.dtype, copy=False)


def _checked_gradient(grad, shape, dtype, node):
    """`grad` as an array of the input's `shape` and `dtype` (a float gradient is cast), or an
    error naming the node that returned it."""
    if type(grad) is not np.ndarray:
        grad = np.asarray(grad)
    if grad.shape != shape:
        raise ValueError(f"{node.name()} returned a gradient of shape {grad.shape} for an "
                         f"input of shape {shape}")
    if grad.dtype != dtype:
        if grad.dtype.kind != "f":
            raise TypeError(f"{node.name()} returned a gradient of dtype {grad.dtype} for an "
                            f"input of dtype {dtype}")
        grad = grad.astype(dtype)
    return grad


def _accumulate(leaf, grad):
    if leaf._grad is None:
        # A copy: ``grad`` may alias an array that an op or the caller still holds.
        leaf._grad = grad.astype(leaf.data.dtype, copy=True)
    else:
        leaf._grad += grad


def _topological_order(root):
    """Return the nodes reachable from ``root``, each after all the nodes of its inputs.

    Iterative, so that graphs deeper than Python's recursion limit work.
    """
    order = []
    visited = {root}
    stack = [(root, iter(root._inputs))]
    while stack:
        node, inputs = stack[-1]
        for input_ in inputs:
            child = None if input_ is None else input_._node
            if child is not None and child not in visited:
                visited.add(child)
                stack.append((child, iter(child._inputs)))
                break
        else:
            stack.pop()
            order.append(node)
    return order


