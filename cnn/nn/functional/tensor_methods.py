"""The Tensor methods whose home is ``cnn.nn.functional``: ``x.relu()``, ``x.sigmoid()``,
``x.tanh()``, ``x.softmax(dim)``, ``x.log_softmax(dim)`` and the in-place ``relu_()``.

The Tensor sits below this floor and cannot import it; this module attaches them when
``cnn.nn.functional`` is imported (which ``import cnn`` always does), as the engine is handed
the Tensor class from above.
"""
from cnn.autograd.inplace import apply_inplace
from cnn.tensor import Tensor

from ._inputs import float_array_of
from .activation import ReLU, Sigmoid, Tanh, log_softmax, relu, sigmoid, softmax, tanh


def _relu(self):
    """Return ``max(self, 0)`` (``F.relu``)."""
    return relu(self)


def _relu_(self):
    """``max(self, 0)`` in place; returns self."""
    float_array_of(self, "input")
    return apply_inplace(ReLU, self, name="relu_")


def _sigmoid(self):
    """Return ``1 / (1 + exp(-self))`` (``F.sigmoid``)."""
    return sigmoid(self)


def _sigmoid_(self):
    """The logistic function in place; returns self."""
    float_array_of(self, "input")
    return apply_inplace(Sigmoid, self, name="sigmoid_")


def _tanh(self):
    """Return the hyperbolic tangent (``F.tanh``)."""
    return tanh(self)


def _tanh_(self):
    """The hyperbolic tangent in place; returns self."""
    float_array_of(self, "input")
    return apply_inplace(Tanh, self, name="tanh_")


def _softmax(self, dim):
    """Return ``softmax(self, dim)`` (``F.softmax``)."""
    return softmax(self, dim)


def _log_softmax(self, dim):
    """Return ``log_softmax(self, dim)`` (``F.log_softmax``)."""
    return log_softmax(self, dim)


def attach():
    """Make these functions methods of ``cnn.Tensor`` (idempotent)."""
    for name, method in (("relu", _relu), ("relu_", _relu_), ("sigmoid", _sigmoid),
                         ("sigmoid_", _sigmoid_), ("tanh", _tanh), ("tanh_", _tanh_),
                         ("softmax", _softmax), ("log_softmax", _log_softmax)):
        method.__name__ = method.__qualname__ = name
        setattr(Tensor, name, method)
