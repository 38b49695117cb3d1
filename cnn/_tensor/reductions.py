"""The Tensor's reductions: sums and means, extremes and their indices, variance and
standard deviation, norms, truth tests, top-k and sorting."""
from collections import namedtuple

import numpy as np

from .. import _dtypes
from ..autograd import ops
from ._args import dimension, dims, integer, tensor_class

MaxResult = namedtuple("MaxResult", ["values", "indices"])
MaxResult.__doc__ = ("``(values, indices)`` from ``max(dim)``, ``min(dim)``, ``topk`` and "
                     "``sort``, as ``torch.return_types``.")


class ReductionMethods:
    """Mixin of ``cnn.Tensor``: reductions."""

    __slots__ = ()

    def sum(self, dim=None, keepdim=False, *, dtype=None):
        """Sum over ``dim`` (an int, a tuple of ints, or None for all elements).

        Bool and integer tensors sum as int64, as in PyTorch.
        """
        x = _accumulating(self, dtype)
        return ops.Sum.apply(x, dims(dim, self._data.ndim), keepdim)

    def mean(self, dim=None, keepdim=False, *, dtype=None):
        """Mean over ``dim`` (an int, a tuple of ints, or None for all elements); floating
        tensors only, as in PyTorch."""
        x = self if dtype is None else self.to(dtype)
        if x._data.dtype.kind != "f":
            raise TypeError(f"mean: could not infer output dtype: input dtype should be "
                            f"floating point, got {x._data.dtype} (pass dtype=cnn.float32)")
        return ops.Mean.apply(x, dims(dim, self._data.ndim), keepdim)

    def max(self, dim=None, keepdim=False):
        """Maximum of all elements, ``(values, indices)`` along ``dim``, or the elementwise
        maximum with another tensor (``x.max(other)``).

        Args:
            dim: None for the maximum of all elements (a 0-d tensor), an int, or a Tensor
                to compare with.
            keepdim: Keep ``dim`` with size 1 in the results.

        Returns:
            Tensor, or MaxResult(values, indices) when ``dim`` is given; ``indices`` is int64
            and points at the first maximum, which is also where the gradient goes.
        """
        return _extreme(self, ops.Max, dim, keepdim, "maximum")

    def min(self, dim=None, keepdim=False):
        """Minimum of all elements, ``(values, indices)`` along ``dim``, or the elementwise
        minimum with another tensor; see :meth:`max`."""
        return _extreme(self, ops.Min, dim, keepdim, "minimum")

    def argmax(self, dim=None, keepdim=False):
        """Index of the first maximum over all elements (flat index) or along ``dim`` (int64)."""
        return _arg_extreme(self, np.argmax, dim, keepdim, "argmax")

    def argmin(self, dim=None, keepdim=False):
        """Index of the first minimum over all elements (flat index) or along ``dim`` (int64)."""
        return _arg_extreme(self, np.argmin, dim, keepdim, "argmin")

    def var(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Variance over ``dim``, with Bessel's correction by default.

        Args:
            dim: An int, a tuple of ints, or None for all elements.
            unbiased (bool): Divide by ``n - 1`` (True, the default) or ``n``.
            keepdim (bool): Keep the reduced dims with size 1.
            correction (int): Divide by ``n - correction`` (overrides ``unbiased``).
        """
        correction = _correction(unbiased, correction)
        x = self
        if x._data.dtype.kind != "f":
            raise TypeError(f"var: expected a floating-point tensor, got dtype {x._data.dtype}")
        return ops.Var.apply(x, dims(dim, self._data.ndim), correction, keepdim)

    def std(self, dim=None, unbiased=None, keepdim=False, *, correction=None):
        """Standard deviation over ``dim`` (the square root of :meth:`var`, same arguments)."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def norm(self, p="fro", dim=None, keepdim=False):
        """The vector p-norm over ``dim`` (all elements by default): ``p`` a number, ``inf``,
        ``-inf``, or ``"fro"`` (2)."""
        if p == "fro":
            p = 2
        if isinstance(p, str) or _dtypes.scalar_category(p) is None:
            raise ValueError(f"p: expected a number, inf or 'fro', got {p!r}")
        x = self if self._data.dtype.kind == "f" else self.to(_dtypes.get_default_dtype())
        if p == 2:
            return (x * x).sum(dim, keepdim).sqrt()
        if p == 1:
            return x.abs().sum(dim, keepdim)
        if p == float("inf"):
            return x.abs().amax(dim, keepdim)
        if p == float("-inf"):
            return x.abs().amin(dim, keepdim)
        if p == 0:
            return (x != 0).sum(dim, keepdim).to(x._data.dtype)
        return (x.abs() ** p).sum(dim, keepdim) ** (1.0 / p)

    def amax(self, dim=None, keepdim=False):
        """Maximum over ``dim`` (an int, a tuple, or None for all), values only."""
        return _reduce_extreme(self, ops.Max, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        """Minimum over ``dim`` (an int, a tuple, or None for all), values only."""
        return _reduce_extreme(self, ops.Min, dim, keepdim)

    def logsumexp(self, dim, keepdim=False):
        """``log(sum(exp(self), dim))``, computed without overflow."""
        dim = dims(dim, self._data.ndim)
        shift = self.detach().amax(dim, keepdim=True)
        shift = shift.masked_fill(~shift.isfinite(), 0)
        out = (self - shift).exp().sum(dim, keepdim=True).log() + shift
        return out if keepdim else out.squeeze(dim)

    def all(self, dim=None, keepdim=False):
        """Whether every element (along ``dim``) is nonzero (bool)."""
        return tensor_class()(np.all(self._data, axis=dims(dim, self._data.ndim),
                                     keepdims=keepdim))

    def any(self, dim=None, keepdim=False):
        """Whether some element (along ``dim``) is nonzero (bool)."""
        return tensor_class()(np.any(self._data, axis=dims(dim, self._data.ndim),
                                     keepdims=keepdim))

    def count_nonzero(self, dim=None):
        """The number of nonzero elements (along ``dim``), as int64."""
        counts = np.count_nonzero(self._data, axis=dims(dim, self._data.ndim))
        return tensor_class()(np.asarray(counts, dtype=np.int64))

    def nonzero(self, *, as_tuple=False):
        """The indices of the nonzero elements: an (n, ndim) int64 tensor, or a tuple of one
        1-D tensor per dim with ``as_tuple=True``."""
        indices = np.nonzero(np.atleast_1d(self._data))
        Tensor = tensor_class()
        if as_tuple:
            return tuple(Tensor(index.astype(np.int64)) for index in indices)
        return Tensor(np.stack(indices, axis=1).astype(np.int64))

    # ***** ordering *****

    def topk(self, k, dim=-1, largest=True, sorted=True):
        """The ``k`` largest (or smallest) elements along ``dim``, as ``(values, indices)``;
        the values are differentiable."""
        dim = dimension(dim, self._data.ndim)
        size = self._data.shape[dim] if self._data.ndim else 1
        k = integer(k, "k", 0, size)
        order = _order(self._data, dim, descending=largest)
        indices = np.take(order, np.arange(k), axis=dim if self._data.ndim else 0)
        return _gathered(self, indices, dim)

    def sort(self, dim=-1, descending=False, stable=False):
        """The elements sorted along ``dim``, as ``(values, indices)``; equal elements keep
        their order (the sort is stable)."""
        dim = dimension(dim, self._data.ndim)
        return _gathered(self, _order(self._data, dim, descending), dim)

    def argsort(self, dim=-1, descending=False, stable=False):
        """The indices that sort the elements along ``dim`` (int64; stable)."""
        dim = dimension(dim, self._data.ndim)
        return tensor_class()(_order(self._data, dim, descending))


def _accumulating(tensor, dtype):
    if dtype is not None:
        return tensor.to(dtype)
    if tensor._data.dtype.kind in "biu" and tensor._data.dtype != np.int64:
        return tensor.to(np.int64)
    return tensor


def _extreme(tensor, op, dim, keepdim, name):
    Tensor = tensor_class()
    if isinstance(dim, Tensor):
        return getattr(tensor, name)(dim)
    if dim is None:
        return op.apply(tensor)
    dim = dimension(dim, tensor._data.ndim)
    pick = np.argmax if op is ops.Max else np.argmin
    if not tensor._data.ndim:  # a 0-d tensor's only dim is itself (as in PyTorch)
        return MaxResult(op.apply(tensor), Tensor(np.asarray(0, np.int64)))
    values = op.apply(tensor, dim, keepdim)
    return MaxResult(values, _arg_extreme(tensor, pick, dim, keepdim, op.name))


def _reduce_extreme(tensor, op, dim, keepdim):
    dim = dims(dim, tensor._data.ndim)
    if dim is None or isinstance(dim, int):
        out = op.apply(tensor, dim, keepdim and dim is not None)
        return out.reshape((1,) * tensor._data.ndim) if keepdim and dim is None else out
    # Several dims: move them to the end, flatten them into one, reduce that one.
    keep = [axis for axis in range(tensor._data.ndim) if axis not in dim]
    moved = tensor.permute(*keep, *dim)
    flat = moved.reshape(moved.shape[:len(keep)] + (-1,))
    out = op.apply(flat, len(keep), False)
    if keepdim:
        shape = tuple(1 if axis in dim else size for axis, size in enumerate(tensor._data.shape))
        out = out.reshape(shape)
    return out


def _arg_extreme(tensor, pick, dim, keepdim, name):
    data = tensor._data
    if dim is not None:
        dim = dimension(dim, data.ndim)
        if not data.ndim:
            dim = None
    if data.size == 0 and (dim is None or data.shape[dim] == 0):
        raise ValueError(f"{name}: cannot take the {name[3:]}imum over an empty dim of shape "
                         f"{data.shape}")
    indices = pick(data, axis=dim, keepdims=keepdim and dim is not None)
    return tensor_class()(np.asarray(indices, dtype=np.int64))


def _correction(unbiased, correction):
    if correction is not None:
        if unbiased is not None:
            raise ValueError("var: give either unbiased or correction, not both")
        return integer(correction, "correction", 0)
    if unbiased is None:
        return 1
    if not isinstance(unbiased, (bool, np.bool_)):
        raise TypeError(f"unbiased: expected True or False, got {unbiased!r}")
    return int(bool(unbiased))


def _order(data, dim, descending):
    """The stable sort order along `dim` (descending keeps equal elements in order too)."""
    if not data.ndim:
        return np.zeros((), np.int64)
    if descending:
        # Sorting the negated keys keeps equal elements in order; NaN counts as the largest,
        # as in PyTorch.
        if data.dtype.kind == "f":
            keys = np.where(np.isnan(data), -np.inf, -data)
        else:
            keys = -data.astype(np.int64)
        return np.argsort(keys, axis=dim, kind="stable").astype(np.int64)
    return np.argsort(data, axis=dim, kind="stable").astype(np.int64)


def _gathered(tensor, indices, dim):
    Tensor = tensor_class()
    if not tensor._data.ndim:
        return MaxResult(tensor.clone(), Tensor(np.zeros((), np.int64)))
    return MaxResult(ops.Gather.apply(tensor, indices, dim), Tensor(indices))
