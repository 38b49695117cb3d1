"""``Parameter``: a tensor that a Module registers as one of its learnable weights."""
from ..tensor import Tensor


class Parameter(Tensor):
    """A leaf Tensor that requires grad by default; Modules collect it in ``parameters()``.

    Args:
        data: An array-like or a Tensor; a NumPy array or a Tensor's data is shared, not copied.
        requires_grad: Whether the optimizer should train it.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        super().__init__(data, requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()
