"""All parameters as one vector and back, as ``torch.nn.utils.parameters_to_vector`` and
``vector_to_parameters``."""
import numpy as np

from ...autograd import no_grad
from ...functions import cat
from ...tensor import Tensor

__all__ = ["parameters_to_vector", "vector_to_parameters"]


def _tensors(parameters):
    if isinstance(parameters, Tensor):
        return [parameters]
    tensors = list(parameters)
    for position, param in enumerate(tensors):
        if not isinstance(param, Tensor):
            raise TypeError(f"parameters: expected Tensors, but element {position} is a "
                            f"{type(param).__name__}")
    return tensors


def parameters_to_vector(parameters):
    """Flatten and concatenate the parameters into one 1-D tensor (differentiable).

    Args:
        parameters: A Tensor or an iterable of Tensors (``model.parameters()``).

    Returns:
        Tensor: Of ``sum(p.numel())`` elements, in order.
    """
    tensors = _tensors(parameters)
    if not tensors:
        raise ValueError("parameters: expected at least one Tensor")
    return cat([param.reshape(-1) for param in tensors])


def vector_to_parameters(vec, parameters):
    """Copy consecutive slices of ``vec`` into the parameters (each its own number of
    elements), in place; the parameters keep their own memory.

    Args:
        vec (Tensor): A 1-D tensor of exactly as many elements as the parameters hold.
        parameters: A Tensor or an iterable of Tensors.

    Raises:
        TypeError: ``vec`` is not a Tensor.
        ValueError: ``vec`` is not 1-D or holds another number of elements.
    """
    if not isinstance(vec, Tensor):
        raise TypeError(f"expected torch.Tensor, but got: {type(vec).__name__}")
    tensors = _tensors(parameters)
    values = np.asarray(vec)
    total = sum(param.numel() for param in tensors)
    if values.ndim != 1 or values.size != total:
        raise ValueError(f"vec: expected a 1-D tensor of {total} elements (the parameters'), "
                         f"got shape {values.shape}")
    start = 0
    for param in tensors:
        size = param.numel()
        with no_grad():
            param.copy_(Tensor(values[start:start + size].reshape(param.shape)))
        start += size

