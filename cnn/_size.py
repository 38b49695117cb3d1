"""``Size``: the shape of a tensor, a tuple of ints with ``numel()`` (``torch.Size``)."""
import math

__all__ = ["Size"]


class Size(tuple):
    """A tensor's shape: a tuple of ints that compares equal to plain tuples.

    Example::

        >>> cnn.zeros(2, 3).size()
        cnn.Size([2, 3])
        >>> cnn.zeros(2, 3).shape == (2, 3)
        True
    """

    __slots__ = ()

    def numel(self):
        """Return the number of elements a tensor of this shape holds."""
        return math.prod(self)

    def __getitem__(self, index):
        item = tuple.__getitem__(self, index)
        return Size(item) if isinstance(index, slice) else item

    def __add__(self, other):
        return Size(tuple.__add__(self, tuple(other)))

    def __repr__(self):
        return f"cnn.Size({list(self)})"
