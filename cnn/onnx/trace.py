"""Recording one forward pass: the ops that ran, in order, with their arguments.

Every differentiable op runs through ``Function.apply``, whose tracing hook
(:func:`cnn.autograd.function.tracing`) reports the Function, its arguments and its result.
A forward pass in eval mode, without a graph, reported that way is the whole computation from
the inputs to the outputs, as ``torch.jit.trace`` sees it: Python control flow is unrolled, and
a value that does not pass through an op (a ``.numpy()`` round trip, an ``argmax``, a
comparison) is frozen as a constant. :func:`check_same_computation` runs a second pass on
another input to catch the second kind before it gets into a graph.
"""
import inspect
import threading

import numpy as np

from ..autograd import no_grad
from ..autograd.function import tracing
from ..tensor import Tensor

__all__ = ["Call", "trace", "check_same_computation"]


class Call:
    """One op of the pass: ``function.apply(*args, **kwargs)`` gave ``out``."""

    __slots__ = ("function", "args", "kwargs", "out")

    def __init__(self, function, args, kwargs, out):
        self.function, self.args, self.kwargs, self.out = function, args, kwargs, out

    @property
    def name(self):
        """str: The op's name, as errors and messages give it (``"Conv2d"``)."""
        return self.function.__name__

    def arguments(self):
        """dict: Every argument of the Function's ``forward`` by name, defaults filled in."""
        signature = _signature(self.function)
        bound = signature.bind(None, *self.args, **self.kwargs)
        bound.apply_defaults()
        arguments = dict(bound.arguments)
        arguments.pop(next(iter(signature.parameters)))  # ctx
        return arguments


_SIGNATURES = {}


def _signature(function):
    signature = _SIGNATURES.get(function)
    if signature is None:
        signature = _SIGNATURES[function] = inspect.signature(function.forward)
    return signature


class Trace:
    """The ops of one forward pass of a model, and what went in and came out."""

    def __init__(self, inputs):
        self.inputs = inputs
        self.calls = []
        self.outputs = None
        self._thread = threading.get_ident()

    def __call__(self, function, args, kwargs, out):
        # Ops that other threads run meanwhile belong to other computations.
        if threading.get_ident() == self._thread:
            self.calls.append(Call(function, args, kwargs, out))

    def inplace(self, tensor, name):
        """An in-place operation (no op in the graph would hold it): refused."""
        if threading.get_ident() == self._thread:
            raise ValueError(f"model: its forward modifies a tensor in place ({name}), which "
                             f"the exported graph would leave out; write it out of place "
                             f"(x = x + y, not x += y)")

    def produced(self):
        """set: The ids of the inputs' and the ops' result Tensors and of their arrays."""
        tensors = list(self.inputs) + [call.out for call in self.calls]
        return {id(tensor) for tensor in tensors} | {id(tensor._data) for tensor in tensors}


def trace(model, inputs):
    """Run ``model(*inputs)`` once in eval mode without a graph, recording every op.

    The training flag of every submodule is restored afterwards.

    Args:
        model (Module): The model.
        inputs (tuple of Tensor): Its inputs.

    Returns:
        Trace: The ops in the order they ran, with ``outputs`` (a tuple of Tensors).

    Raises:
        TypeError: If the model returns something else than a Tensor or a tuple or list of
            Tensors.
    """
    modes = [(module, module.training) for module in model.modules()]
    recorded = Trace(inputs)
    try:
        model.eval()
        with no_grad(), tracing(recorded):
            outputs = model(*inputs)
    finally:
        for module, training in modes:
            module.training = training
    if isinstance(outputs, Tensor):
        outputs = (outputs,)
    if not isinstance(outputs, (tuple, list)) or not all(isinstance(out, Tensor)
                                                          for out in outputs) or not outputs:
        raise TypeError(f"model: expected a forward that returns a Tensor or a tuple of "
                        f"Tensors, got {type(outputs).__name__}")
    recorded.outputs = tuple(outputs)
    return recorded


def check_same_computation(first, second, known):
    """Check that two passes on different inputs ran the same ops on the same constants.

    What is not a result of an op or an input, nor a parameter or buffer of the model, goes
    into the graph as a constant; if it changes with the input, it was computed from the input
    outside cnn's ops and the graph would be wrong for every other input.

    Args:
        first, second (Trace): The two passes.
        known (set): ids of the model's parameters and buffers (and their arrays).

    Raises:
        ValueError: Naming the first op that differs.
    """
    if [call.function for call in first.calls] != [call.function for call in second.calls]:
        raise ValueError(
            "model: the forward pass runs different ops for different inputs (Python control "
            "flow on tensor values), which one ONNX graph cannot express")
    produced = (first.produced(), second.produced())
    for index, (a, b) in enumerate(zip(first.calls, second.calls)):
        for position, (x, y) in enumerate(zip(a.args + tuple(a.kwargs.values()),
                                              b.args + tuple(b.kwargs.values()))):
            if _traced(x, produced[0], known) and _traced(y, produced[1], known):
                continue
            if not _same(x, y):
                raise ValueError(
                    f"model: argument {position} of op {index} ({a.name}) changes with the "
                    "input, yet it is not computed by cnn's ops (it went through .numpy(), "
                    ".data, argmax, a comparison or Python numbers); the graph would freeze "
                    "its value for this input only. Compute it with Tensor operations")


def _traced(value, produced, known):
    if isinstance(value, Tensor):
        return id(value) in produced or id(value._data) in produced or id(value) in known
    return isinstance(value, np.ndarray) and (id(value) in produced or id(value) in known)


def _same(x, y):
    if isinstance(x, Tensor) or isinstance(y, Tensor):
        return (isinstance(x, Tensor) and isinstance(y, Tensor)
                and _same(x._data, y._data))
    if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
        return (np.shape(x) == np.shape(y) and np.asarray(x).dtype == np.asarray(y).dtype
                and np.array_equal(x, y, equal_nan=np.asarray(x).dtype.kind in "fc"))
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)):
        return len(x) == len(y) and all(map(_same, x, y))
    if isinstance(x, _VALUES):
        return type(x) is type(y) and (x == y or (x != x and y != y))  # NaN is NaN here
    # Settings objects (a convolution plan, a profiler's callback) are made per call: what they
    # hold is the layer's configuration, not data.
    return type(x) is type(y)


_VALUES = (int, float, str, bytes, type(None), slice, type(Ellipsis), np.generic, np.dtype)
