"""The Tensor's shape methods: sizes, views and reshapes, indexing, splits and gathers.

Results that share the tensor's memory (``view``, ``reshape`` when possible, ``permute``,
``transpose``, ``squeeze``, ``unsqueeze``, ``expand``, basic indexing, ``chunk``, ``split``,
``narrow``, ``unbind``) are views, as in PyTorch: writing into them in place writes into the
tensor, and they share its version counter.
"""
import math

import numpy as np

from .._size import Size
from ..autograd import inplace, ops
from ..autograd.grad_mode import _grad_state
from ._args import dimension, integer, shape_arg, tensor_class, view_of


class ShapeMethods:
    """Mixin of ``cnn.Tensor``: shapes, views, indexing."""

    __slots__ = ()

    # ***** sizes *****

    def size(self, dim=None):
        """Return the shape (a :class:`cnn.Size`), or the size of one ``dim``."""
        if dim is None:
            return Size(self._data.shape)
        if not self._data.ndim:
            raise np.exceptions.AxisError(f"dim: a 0-d tensor has no dimensions, got {dim!r}")
        return self._data.shape[dimension(dim, self._data.ndim)]

    def dim(self):
        """Return the number of dims."""
        return self._data.ndim

    ndimension = dim

    def numel(self):
        """Return the number of elements."""
        return self._data.size

    nelement = numel

    def element_size(self):
        """Return the size of one element in bytes."""
        return self._data.itemsize

    @property
    def itemsize(self):
        """int: The size of one element in bytes."""
        return self._data.itemsize

    @property
    def nbytes(self):
        """int: The size of the elements in bytes."""
        return self._data.nbytes

    def stride(self, dim=None):
        """Return the strides in elements (a tuple), or the stride of one ``dim``."""
        array = self._data
        strides = tuple([step // array.itemsize for step in array.strides])
        return strides if dim is None else strides[dimension(dim, array.ndim)]

    def is_contiguous(self, memory_format=None):
        """Return True if the elements lie in C order without gaps."""
        return self._data.flags.c_contiguous

    # ***** reshapes and views *****

    def reshape(self, *shape):
        """Return the same elements in ``shape`` (a tuple or ints; one dim may be -1); a view
        when the memory allows it, else a copy."""
        return view_of(self, ops.Reshape.apply(self, shape_arg(shape, "shape")))

    def view(self, *shape):
        """Return a view of the same memory in ``shape`` (a tuple or ints; one dim may be -1).

        Raises:
            RuntimeError: The memory cannot be viewed in that shape (a transposed tensor,
                say); :meth:`reshape` copies then.
        """
        if len(shape) == 1 and not isinstance(shape[0], (tuple, list, int, np.integer)):
            raise TypeError("view(dtype) is not supported: cnn cannot reinterpret a tensor's "
                            "bytes as another dtype; use .to(dtype) for a converted copy")
        out = ops.Reshape.apply(self, shape_arg(shape, "shape"))
        if out._data.size and not np.may_share_memory(out._data, self._data):
            raise RuntimeError("view size is not compatible with input tensor's size and stride "
                               "(at least one dimension spans across two contiguous subspaces). "
                               "Use .reshape(...) instead.")
        return view_of(self, out)

    def view_as(self, other):
        """Return ``self.view(other.shape)``."""
        return self.view(other.shape)

    def reshape_as(self, other):
        """Return ``self.reshape(other.shape)``."""
        return self.reshape(other.shape)

    def flatten(self, start_dim=0, end_dim=-1):
        """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one."""
        shape = self._data.shape
        start = dimension(start_dim, len(shape), "start_dim")
        end = dimension(end_dim, len(shape), "end_dim")
        if not shape:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim "
                             f"({end_dim}) in a {len(shape)}-d tensor")
        return self.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def unflatten(self, dim, sizes):
        """Split dim ``dim`` into ``sizes`` (one may be -1)."""
        shape = self._data.shape
        dim = dimension(dim, len(shape))
        sizes = shape_arg((sizes,), "sizes")
        known = math.prod(size for size in sizes if size != -1)
        if -1 in sizes and known:
            sizes = tuple(shape[dim] // known if size == -1 else size for size in sizes)
        if math.prod(sizes) != shape[dim]:
            raise ValueError(f"sizes: {sizes} do not multiply to the size {shape[dim]} of dim "
                             f"{dim}")
        return self.reshape(shape[:dim] + sizes + shape[dim + 1:])

    def squeeze(self, dim=None):
        """Remove all dims of size 1, or those of ``dim`` (an int or a tuple) of size 1."""
        shape = self._data.shape
        if dim is None:
            return self.reshape(tuple([size for size in shape if size != 1]))
        if not shape:
            return self.reshape(())
        chosen = {dimension(d, len(shape)) for d in (dim if isinstance(dim, (tuple, list))
                                                     else (dim,))}
        return self.reshape(tuple([size for axis, size in enumerate(shape)
                                   if not (axis in chosen and size == 1)]))

    def unsqueeze(self, dim):
        """Insert a dim of size 1 at position ``dim``."""
        shape = self._data.shape
        dim = dimension(dim, len(shape) + 1)
        return self.reshape(shape[:dim] + (1,) + shape[dim:])

    def permute(self, *dims):
        """Reorder the dims: dim ``i`` of the result is dim ``dims[i]`` of this tensor."""
        ndim = self._data.ndim
        dims = shape_arg(dims, "dims")
        if sorted(dimension(d, ndim, "dims") for d in dims) != list(range(ndim)):
            raise ValueError(f"dims: expected a permutation of the {ndim} dims, got {dims}")
        return view_of(self, ops.Permute.apply(self, tuple([d % max(ndim, 1) for d in dims])))

    def transpose(self, dim0, dim1):
        """Swap dims ``dim0`` and ``dim1``."""
        ndim = self._data.ndim
        dim0, dim1 = dimension(dim0, ndim, "dim0"), dimension(dim1, ndim, "dim1")
        dims = list(range(ndim))
        if ndim:
            dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return view_of(self, ops.Permute.apply(self, tuple(dims)))

    swapaxes = transpose

    def t(self):
        """Transpose a matrix (a tensor of at most 2 dims)."""
        if self._data.ndim > 2:
            raise ValueError(f"t: expects a tensor with <= 2 dimensions, got "
                             f"{self._data.ndim}; use transpose(dim0, dim1) or permute")
        return self.transpose(0, -1) if self._data.ndim == 2 else self

    @property
    def T(self):
        """Tensor: This tensor with its dims reversed (the transpose of a matrix)."""
        return view_of(self, ops.Permute.apply(self, tuple(range(self._data.ndim))[::-1]))

    @property
    def mT(self):
        """Tensor: The transpose of the last two dims (a batch of matrices)."""
        return self.transpose(-2, -1)

    def expand(self, *sizes):
        """Broadcast to ``sizes`` without copying (-1 keeps a dim; new dims go in front).

        The result is read-only: in-place operations on it raise, as PyTorch refuses to write
        several elements through one memory location.
        """
        sizes = shape_arg(sizes, "sizes")
        shape = self._data.shape
        if len(sizes) < len(shape):
            raise ValueError(f"expand: the number of sizes ({len(sizes)}) must be at least the "
                             f"number of dims ({len(shape)})")
        offset = len(sizes) - len(shape)
        target = tuple([shape[i - offset] if size == -1 and i >= offset else size
                        for i, size in enumerate(sizes)])
        if any(size < 0 for size in target):
            raise ValueError(f"expand: -1 is not allowed for a new leading dim, got {sizes}")
        return view_of(self, ops.Expand.apply(self, target))

    def expand_as(self, other):
        """Return ``self.expand(other.shape)``."""
        return self.expand(other.shape)

    def repeat(self, *sizes):
        """Tile the tensor ``sizes[i]`` times along each dim (a copy); at least one size per dim."""
        sizes = shape_arg(sizes, "sizes")
        if len(sizes) < self._data.ndim:
            raise ValueError(f"repeat: the number of repeats ({len(sizes)}) can not be smaller "
                             f"than the number of dims ({self._data.ndim})")
        if any(size < 0 for size in sizes):
            raise ValueError(f"repeat: repeats must be non-negative, got {sizes}")
        return ops.Repeat.apply(self, sizes)

    def flip(self, *dims):
        """Reverse the order of elements along ``dims`` (a copy)."""
        dims = shape_arg(dims, "dims")
        return ops.Flip.apply(self, tuple([dimension(d, self._data.ndim) for d in dims]))

    def clone(self, memory_format=None):
        """Return a copy in new memory; gradients flow back to this tensor."""
        return ops.Clone.apply(self)

    def contiguous(self, memory_format=None):
        """Return this tensor if its memory is C-contiguous, else a contiguous copy."""
        return self if self._data.flags.c_contiguous else ops.Clone.apply(self)

    # ***** splitting *****

    def narrow(self, dim, start, length):
        """Return the view of ``length`` elements from ``start`` along ``dim``."""
        dim = dimension(dim, self._data.ndim)
        size = self._data.shape[dim]
        start = integer(start, "start", -size, size)
        start %= max(size, 1)
        length = integer(length, "length", 0, size - start)
        return self[(slice(None),) * dim + (slice(start, start + length),)]

    def select(self, dim, index):
        """Return the slice at ``index`` along ``dim``, without that dim."""
        dim = dimension(dim, self._data.ndim)
        size = self._data.shape[dim]
        index = integer(index, "index", -size, size - 1)
        return self[(slice(None),) * dim + (index,)]

    def chunk(self, chunks, dim=0):
        """Split into ``chunks`` views of ``ceil(size / chunks)`` elements along ``dim`` (the last
        may be smaller, and there may be fewer chunks, as in PyTorch)."""
        chunks = integer(chunks, "chunks", 1)
        dim = dimension(dim, self._data.ndim)
        size = self._data.shape[dim]
        step = max(-(-size // chunks), 1)
        return self.split(step, dim)

    def split(self, split_size_or_sections, dim=0):
        """Split along ``dim`` into views of ``split_size`` elements (the last may be smaller),
        or of the sizes listed."""
        dim = dimension(dim, self._data.ndim)
        size = self._data.shape[dim]
        if isinstance(split_size_or_sections, (list, tuple)):
            sections = [integer(n, "split_size_or_sections", 0) for n in split_size_or_sections]
            if sum(sections) != size:
                raise ValueError(f"split_size_or_sections: the sizes {sections} must sum to the "
                                 f"size {size} of dim {dim}")
        else:
            step = integer(split_size_or_sections, "split_size_or_sections", 1)
            sections = [min(step, size - start) for start in range(0, size, step)] or [0]
        pieces, start = [], 0
        for length in sections:
            pieces.append(self[(slice(None),) * dim + (slice(start, start + length),)])
            start += length
        return tuple(pieces)

    def unbind(self, dim=0):
        """Return the slices along ``dim`` (each without that dim), as a tuple."""
        dim = dimension(dim, self._data.ndim)
        return tuple([self[(slice(None),) * dim + (i,)] for i in range(self._data.shape[dim])])

    # ***** indexing *****

    def __getitem__(self, index):
        out = ops.GetItem.apply(self, as_index(index))
        return view_of(self, out)

    def __setitem__(self, index, value):
        Tensor = tensor_class()
        index = as_index(index)
        if isinstance(value, Tensor) and not (_grad_state.enabled and value._requires_grad
                                              or self._requires_grad):
            value = value._data
        elif not isinstance(value, Tensor):
            value = np.asarray(value)
        inplace.assign(self, index, value)

    def gather(self, dim, index):
        """Pick values along ``dim`` at ``index`` (an int64 tensor of this tensor's ndim):
        ``out[i][j] = self[index[i][j]][j]`` for dim 0."""
        dim = dimension(dim, self._data.ndim)
        index = _index_array(index, "index")
        if index.ndim != self._data.ndim:
            raise ValueError(f"index: expected {self._data.ndim} dims (the tensor's), got shape "
                             f"{index.shape}")
        _check_bounds(index, self._data.shape[dim], "index")
        return ops.Gather.apply(self, index, dim)

    def index_select(self, dim, index):
        """Pick the slices at ``index`` (a 1-D int tensor) along ``dim`` (a copy)."""
        dim = dimension(dim, self._data.ndim)
        index = _index_array(index, "index")
        if index.ndim > 1:
            raise ValueError(f"index: expected a 1-D tensor, got shape {index.shape}")
        _check_bounds(index, self._data.shape[dim], "index")
        return self[(slice(None),) * dim + (index.reshape(-1),)]

    def masked_select(self, mask):
        """Return the elements where ``mask`` (a bool tensor broadcastable to this one) holds,
        as a 1-D tensor."""
        mask = _index_array(mask, "mask", kinds="b")
        shape = np.broadcast_shapes(self._data.shape, mask.shape)
        return self.expand(shape)[np.broadcast_to(mask, shape)]


def as_index(index):
    """An index with Tensors replaced by their arrays (0-d integer tensors by ints)."""
    Tensor = tensor_class()
    if isinstance(index, Tensor):
        return _index_item(index)
    if isinstance(index, tuple):
        return tuple([_index_item(item) if isinstance(item, Tensor) else item
                      for item in index])
    if isinstance(index, list) and any(isinstance(item, Tensor) for item in index):
        return [item._data if isinstance(item, Tensor) else item for item in index]
    return index


def _index_item(tensor):
    array = tensor._data
    if array.ndim == 0 and array.dtype.kind in "iu":
        return int(array)
    return array


def _index_array(value, name, kinds="iu"):
    array = value._data if isinstance(value, tensor_class()) else np.asarray(value)
    if array.dtype.kind not in kinds:
        expected = "bool" if kinds == "b" else "integer"
        raise TypeError(f"{name}: expected an {expected} tensor, got dtype {array.dtype}")
    return array


def _check_bounds(index, size, name):
    if index.size and (index.min() < 0 or index.max() >= size):
        raise IndexError(f"{name}: index out of range for a dim of size {size} (got values in "
                         f"[{index.min()}, {index.max()}])")
