"""``Cross_entropy``: the original library's loss object."""
import numpy as np

from ..nn import functional as F
from ..tensor import Tensor

__all__ = ["Cross_entropy"]


class Cross_entropy:  # noqa: N801 (the original library's name)
    """The original library's loss: runs the model and holds the mean cross-entropy.

    ``loss.backward()`` first sets every parameter's gradient to None, so each step's
    gradients replace the previous step's, as in the original library. That makes a training
    loop without ``optimizer.zero_grad()`` correct. (PyTorch's ``loss.backward()`` adds to the
    gradients instead; use ``F.cross_entropy`` or ``nn.CrossEntropyLoss`` for that behaviour.)

    Args:
        model (Module): The network; called once on `images` here.
        images: Its input, e.g. ``(N, 1, 28, 28)`` float32 (a NumPy array or Tensor).
        labels: The class indices ``(N,)``, an array (or Tensor) of any integer dtype.

    Attributes:
        loss (Tensor): The loss, a 0-d Tensor recorded for backward.
        model (Module): The model whose parameters ``backward()`` fills.

    Raises:
        TypeError: If `model` is not a Module, or `labels` are not integers (the message names
            the dtype).
        ValueError: If `labels` have the wrong shape or a class out of range.

    Example::

        loss = Cross_entropy(model, images, labels)
        loss.backward()
        optimizer.step()
        print(loss)          # 2.3012...
    """

    def __init__(self, model, images, labels):
        if not callable(model) or not hasattr(model, "parameters"):
            raise TypeError(f"model: expected a cnn.nn.Module, got {type(model).__name__}")
        self.model = model
        self.loss = F.cross_entropy(model(images), _class_indices(labels))

    def backward(self):
        """Compute the gradients of the loss, replacing the parameters' previous gradients."""
        for param in self.model.parameters():
            param.grad = None
        self.loss.backward()

    def item(self):
        """Return the loss as a Python float."""
        return self.loss.item()

    def __float__(self):
        return self.item()

    def __format__(self, spec):
        return format(self.item(), spec)

    def __str__(self):
        return str(self.item())

    def __repr__(self):
        return f"Cross_entropy({self.item()})"


def _class_indices(labels):
    """Integer labels as int64 (the original accepted any integer array, e.g. MNIST's uint8)."""
    array = labels._data if isinstance(labels, Tensor) else np.asarray(labels)
    if array.dtype.kind not in "iu":
        raise TypeError(f"labels: expected integer class indices, got dtype {array.dtype}")
    return array.astype(np.int64, copy=False)
