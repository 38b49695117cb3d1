"""``Tensor``: a NumPy array that records the ops applied to it, and its factories.

A Tensor wraps one ``numpy.ndarray`` (``.data``). Arithmetic, reductions, reshapes and
indexing on tensors run as :mod:`cnn.autograd.ops` Functions, so when an input requires grad
the result remembers how it was made and ``loss.backward()`` fills the ``.grad`` of every leaf
tensor that requires grad.
"""
from __future__ import annotations

import builtins
from collections import namedtuple
import math
from typing import Any, Iterator, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from ._validation import dimension, integer
from .autograd import function as _function, ops as _ops
from .random import default_generator

# dtype aliases, so that user code reads like PyTorch's (``cnn.float64``).
float16 = np.float16
float32 = np.float32
float64 = np.float64
int32 = np.int32
int64 = np.int64
uint8 = np.uint8

_DEFAULT_FLOAT = np.dtype(np.float32)
_SUPPORTED_KINDS = "biuf"  # bool, signed and unsigned integers, floating point
# Dtypes the repr leaves out, as PyTorch's does.
_IMPLIED_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))
# Scalars converted to a float tensor's dtype, so that ``t * 2.0`` stays float32.
_REAL_SCALARS = (int, float, np.integer, np.floating, np.bool_)

# The types of the signatures (the arguments themselves are checked at run time): what an
# operand, a dim and a shape may be.
Operand = Union["Tensor", npt.ArrayLike]
Dims = Optional[Union[int, Sequence[int]]]
Shape = Union[int, Sequence[int]]
Number = Union[int, float, bool]

MaxResult = namedtuple("MaxResult", ["values", "indices"])
MaxResult.__doc__ = "``(values, indices)`` from ``Tensor.max(dim)``, as ``torch.return_types.max``."


class Tensor:
    """An n-dimensional array with automatic differentiation.

    Args:
        data: An array-like; a NumPy array is wrapped without copying. Python floats become
            float32, Python ints int64.
        requires_grad: Whether ops on this tensor are recorded so that ``backward()`` can
            compute its gradient. Only floating-point tensors can require grad.

    Attributes:
        data (numpy.ndarray): The values. Writing into it bypasses autograd.

    Most tensors come from :func:`tensor`, :func:`zeros`, :func:`randn` or from ops on
    other tensors, rather than from this constructor.
    """

    __slots__ = ("data", "_requires_grad", "_grad", "_node", "__weakref__")
    # Above ndarray's, so that ``array + tensor`` calls Tensor.__radd__ and gives a Tensor.
    __array_priority__ = 1000

    def __init__(self, data: Operand, requires_grad: bool = False) -> None:
        self.data = _as_array(data, copy=False)
        self._grad: Optional[np.ndarray] = None
        self._node: Any = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    # ***** autograd state *****

    @property
    def requires_grad(self) -> bool:
        """bool: Whether ops on this tensor are recorded for ``backward()``."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, flag: bool) -> None:
        flag = bool(flag)
        if self._node is not None and not flag:
            raise ValueError("requires_grad: only leaf tensors can stop requiring grad; use "
                             "detach() for a copy of a computed tensor outside the graph")
        if flag and self.data.dtype.kind != "f":
            raise TypeError("requires_grad: only floating-point tensors can require grad, "
                            f"got dtype {self.data.dtype}")
        self._requires_grad = flag

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return this tensor."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad(self) -> Optional[Tensor]:
        """Tensor or None: The gradient accumulated by ``backward()`` into this leaf.

        Set it to None to clear it, or to a Tensor or array of this tensor's shape and dtype.
        """
        return None if self._grad is None else _wrap(self._grad)

    @grad.setter
    def grad(self, value: Optional[Union[Tensor, np.ndarray]]) -> None:
        if value is None:
            self._grad = None
            return
        grad = value.data if isinstance(value, Tensor) else value
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"grad: expected a Tensor, a numpy.ndarray or None, got "
                            f"{type(value).__name__}")
        if grad.shape != self.data.shape:
            raise ValueError(f"grad: shape {grad.shape} does not match the tensor's shape "
                             f"{self.data.shape}")
        if grad.dtype != self.data.dtype:
            raise TypeError(f"grad: dtype {grad.dtype} does not match the tensor's dtype "
                            f"{self.data.dtype}")
        self._grad = grad

    @property
    def grad_fn(self) -> Any:
        """The graph node that produced this tensor (e.g. ``<MulBackward>``), None for leaves."""
        return self._node

    @property
    def is_leaf(self) -> bool:
        """bool: True unless the tensor was computed by a recorded op."""
        return self._node is None

    def backward(self, gradient: Optional[Operand] = None, retain_graph: bool = False) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf.

        Args:
            gradient: d(loss)/d(self), of this tensor's shape; optional for one element.
            retain_graph: Keep the graph so that backward can run through it again.

        Raises:
            ValueError: This tensor does not require grad, ``gradient`` is missing for a
                tensor of several elements, or the graph was freed by an earlier backward.
        """
        _function.run_backward(self, gradient, retain_graph)

    def detach(self) -> Tensor:
        """Return a tensor sharing this one's data, outside the graph (requires_grad False)."""
        return Tensor(self.data)

    # ***** array properties *****

    @property
    def shape(self) -> tuple[int, ...]:
        """tuple: The size of each dim."""
        return self.data.shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy.dtype: The element type (``cnn.float32`` by default)."""
        return self.data.dtype

    @property
    def ndim(self) -> int:
        """int: The number of dims."""
        return self.data.ndim

    def dim(self) -> int:
        """Return the number of dims."""
        return self.data.ndim

    def size(self, dim: Optional[int] = None) -> Union[tuple[int, ...], int]:
        """Return the shape, or the size of one ``dim``."""
        if dim is None:
            return self.data.shape
        if not self.data.ndim:
            raise np.exceptions.AxisError(f"dim: a 0-d tensor has no dimensions, got {dim!r}")
        return self.data.shape[dimension(dim, self.data.ndim)]

    def numel(self) -> int:
        """Return the number of elements."""
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def __iter__(self) -> Iterator[Tensor]:
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self.data)))

    # ***** conversions *****

    def numpy(self) -> np.ndarray:
        """Return the data array (shared, not copied)."""
        return self.data

    def item(self) -> Number:
        """Return the value of a one-element tensor as a Python number."""
        return self.data.item()

    def __array__(self, dtype: Optional[npt.DTypeLike] = None,
                  copy: Optional[bool] = None) -> np.ndarray:
        """The data as an array, for ``np.asarray(tensor)`` and every NumPy function.

        NumPy >= 2 passes ``copy`` with ``np.array``'s meaning (True: always copy, None: only
        if needed, False: never, raise if a copy is needed); NumPy 1.x never passes it (and its
        ``np.array`` refuses ``copy=None``), so the three cases are written out here.
        """
        if copy:
            return np.array(self.data, dtype=dtype, copy=True)
        if copy is False and dtype is not None and np.dtype(dtype) != self.data.dtype:
            raise ValueError(f"cannot convert a {self.data.dtype} tensor to {np.dtype(dtype)} "
                             "without a copy (copy=False)")
        return np.asarray(self.data, dtype=dtype)

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __bool__(self) -> bool:
        return bool(self.data)

    def __format__(self, spec: str) -> str:
        # f"{loss:.4f}" formats the value of a one-element tensor, as in PyTorch.
        if self.data.ndim == 0:
            return format(self.item(), spec)
        return super().__format__(spec)

    def to(self, dtype: npt.DTypeLike) -> Tensor:
        """Return this tensor cast to ``dtype`` (itself if it already has it); differentiable.

        ``to("cpu")`` returns the tensor itself, so that device-agnostic PyTorch code runs.
        """
        if isinstance(dtype, str) and dtype == "cpu":
            return self
        dtype = _numpy_dtype(dtype, "dtype")
        _check_dtype(dtype, "dtype")
        return self if dtype == self.data.dtype else _ops.Cast.apply(self, dtype)

    def cpu(self) -> Tensor:
        """Return this tensor (tensors always live in main memory)."""
        return self

    def float(self) -> Tensor:
        """Return this tensor as float32 (differentiable)."""
        return self.to(np.float32)

    def double(self) -> Tensor:
        """Return this tensor as float64 (differentiable)."""
        return self.to(np.float64)

    def long(self) -> Tensor:
        """Return this tensor as int64 (no gradient flows through)."""
        return self.to(np.int64)

    # ***** arithmetic *****

    def _operand(self, other: object) -> Any:
        """Return ``other`` ready to meet this tensor in a binary op."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, _REAL_SCALARS):
            dtype = self.data.dtype
            # NumPy would let a float64 scalar upcast a float32 tensor; PyTorch does not.
            return dtype.type(other) if dtype.kind == "f" else other
        other = np.asarray(other)
        _check_dtype(other.dtype, "other")
        return other

    def __add__(self, other: Operand) -> Tensor:
        return _ops.Add.apply(self, self._operand(other))

    def __radd__(self, other: Operand) -> Tensor:
        return _ops.Add.apply(self._operand(other), self)

    def __sub__(self, other: Operand) -> Tensor:
        return _ops.Sub.apply(self, self._operand(other))

    def __rsub__(self, other: Operand) -> Tensor:
        return _ops.Sub.apply(self._operand(other), self)

    def __mul__(self, other: Operand) -> Tensor:
        return _ops.Mul.apply(self, self._operand(other))

    def __rmul__(self, other: Operand) -> Tensor:
        return _ops.Mul.apply(self._operand(other), self)

    def __truediv__(self, other: Operand) -> Tensor:
        return _ops.Div.apply(self, self._operand(other))

    def __rtruediv__(self, other: Operand) -> Tensor:
        return _ops.Div.apply(self._operand(other), self)

    def __pow__(self, exponent: Operand) -> Tensor:
        return _ops.Pow.apply(self, self._operand(exponent))

    def __rpow__(self, base: Operand) -> Tensor:
        return _ops.Pow.apply(self._operand(base), self)

    def __matmul__(self, other: Operand) -> Tensor:
        return _ops.MatMul.apply(self, self._operand(other))

    def __rmatmul__(self, other: Operand) -> Tensor:
        return _ops.MatMul.apply(self._operand(other), self)

    def __neg__(self) -> Tensor:
        return _ops.Neg.apply(self)

    def exp(self) -> Tensor:
        """Return ``e ** self``, elementwise."""
        return _ops.Exp.apply(self)

    def log(self) -> Tensor:
        """Return the natural logarithm, elementwise."""
        return _ops.Log.apply(self)

    # ***** comparisons (no gradient) *****

    def _compare(self, ufunc: np.ufunc, other: object) -> Tensor:
        other = other.data if isinstance(other, Tensor) else self._operand(other)
        return Tensor(_ops._elementwise(ufunc, self.data, other))

    def __eq__(self, other: object) -> Tensor:  # type: ignore[override]
        if other is None:
            return NotImplemented
        return self._compare(np.equal, other)

    def __ne__(self, other: object) -> Tensor:  # type: ignore[override]
        if other is None:
            return NotImplemented
        return self._compare(np.not_equal, other)

    def __lt__(self, other: Operand) -> Tensor:
        return self._compare(np.less, other)

    def __le__(self, other: Operand) -> Tensor:
        return self._compare(np.less_equal, other)

    def __gt__(self, other: Operand) -> Tensor:
        return self._compare(np.greater, other)

    def __ge__(self, other: Operand) -> Tensor:
        return self._compare(np.greater_equal, other)

    # Defining __eq__ would otherwise make tensors unhashable; like PyTorch, hash by identity.
    __hash__ = object.__hash__

    # ***** reductions *****

    def sum(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Sum over ``dim`` (an int, a tuple of ints, or None for all elements)."""
        return _ops.Sum.apply(self, _dims(dim, self.data.ndim), keepdim)

    def mean(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Mean over ``dim`` (an int, a tuple of ints, or None for all elements)."""
        return _ops.Mean.apply(self, _dims(dim, self.data.ndim), keepdim)

    def max(self, dim: Optional[int] = None, keepdim: bool = False) -> Union[Tensor, MaxResult]:
        """Maximum of all elements, or ``(values, indices)`` along ``dim``.

        Args:
            dim: None for the maximum of all elements (a 0-d tensor), or an int.
            keepdim: Keep ``dim`` with size 1 in the results.

        Returns:
            Tensor, or MaxResult(values, indices) when ``dim`` is given; ``indices`` is int64
            and points at the first maximum, which is also where the gradient goes.
        """
        if dim is None:
            return _ops.Max.apply(self)
        dim = dimension(dim, self.data.ndim)
        if not self.data.ndim:  # a 0-d tensor's only dim is itself (as in PyTorch)
            return MaxResult(_ops.Max.apply(self), self.argmax())
        values = _ops.Max.apply(self, dim, keepdim)
        return MaxResult(values, self.argmax(dim, keepdim))

    def argmax(self, dim: Optional[int] = None, keepdim: bool = False) -> Tensor:
        """Index of the first maximum over all elements (flat index) or along ``dim`` (int64)."""
        data = self.data
        if dim is not None:
            dim = dimension(dim, data.ndim)
            if not data.ndim:
                dim = None
        if data.size == 0 and (dim is None or data.shape[dim] == 0):
            raise ValueError(f"argmax: cannot take the maximum over an empty dim of shape "
                             f"{data.shape}")
        indices = np.argmax(data, axis=dim, keepdims=keepdim and dim is not None)
        return Tensor(np.asarray(indices, dtype=np.int64))

    # ***** shape *****

    def reshape(self, *shape: Shape) -> Tensor:
        """Return the same elements in ``shape`` (a tuple or ints; one dim may be -1)."""
        return _ops.Reshape.apply(self, _shape_arg(shape, "shape"))

    def view(self, *shape: Shape) -> Tensor:
        """Same as :meth:`reshape` (NumPy copies when a view is impossible)."""
        return _ops.Reshape.apply(self, _shape_arg(shape, "shape"))

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims ``start_dim`` to ``end_dim`` (inclusive) into one."""
        shape = self.data.shape
        start = dimension(start_dim, len(shape), "start_dim")
        end = dimension(end_dim, len(shape), "end_dim")
        if not shape:
            return self.reshape(1)
        if start > end:
            raise ValueError(f"flatten: start_dim ({start_dim}) cannot come after end_dim "
                             f"({end_dim}) in a {len(shape)}-d tensor")
        return self.reshape(shape[:start] + (math.prod(shape[start:end + 1]),) + shape[end + 1:])

    def squeeze(self, dim: Optional[int] = None) -> Tensor:
        """Remove all dims of size 1, or ``dim`` if its size is 1."""
        shape = self.data.shape
        if dim is None:
            return self.reshape(tuple([size for size in shape if size != 1]))
        dim = dimension(dim, len(shape))
        if not shape:
            return self.reshape(())
        return self.reshape(shape[:dim] + shape[dim + 1:] if shape[dim] == 1 else shape)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a dim of size 1 at position ``dim``."""
        shape = self.data.shape
        dim = dimension(dim, len(shape) + 1)
        return self.reshape(shape[:dim] + (1,) + shape[dim:])

    def permute(self, *dims: Shape) -> Tensor:
        """Reorder the dims: dim ``i`` of the result is dim ``dims[i]`` of this tensor."""
        ndim = self.data.ndim
        dims = _shape_arg(dims, "dims")
        if sorted(dimension(d, ndim, "dims") for d in dims) != list(range(ndim)):
            raise ValueError(f"dims: expected a permutation of the {ndim} dims, got {dims}")
        return _ops.Permute.apply(self, tuple([d % ndim for d in dims]))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap dims ``dim0`` and ``dim1``."""
        ndim = self.data.ndim
        dim0, dim1 = dimension(dim0, ndim, "dim0"), dimension(dim1, ndim, "dim1")
        dims = list(range(ndim))
        if ndim:
            dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
        return _ops.Permute.apply(self, tuple(dims))

    @property
    def T(self) -> Tensor:
        """Tensor: This tensor with its dims reversed (the transpose of a matrix)."""
        return _ops.Permute.apply(self, tuple(range(self.data.ndim))[::-1])

    def __getitem__(self, index: Any) -> Tensor:
        if isinstance(index, tuple):
            index = tuple([item.data if isinstance(item, Tensor) else item for item in index])
        return _ops.GetItem.apply(self, index)

    # ***** display *****

    def __repr__(self) -> str:
        data = self.data
        body = np.array2string(data, separator=", ", prefix="tensor(", precision=4,
                               floatmode="fixed" if _has_fraction(data) else "maxprec")
        extras = [body]
        if data.size == 0 and data.ndim != 1:
            extras.append(f"size={data.shape}")
        if data.dtype not in _IMPLIED_DTYPES:
            extras.append(f"dtype=cnn.{data.dtype.name}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return f"tensor({', '.join(extras)})"


# ***** factories *****

def tensor(data: Operand, requires_grad: bool = False,
           dtype: Optional[npt.DTypeLike] = None) -> Tensor:
    """Create a tensor from a copy of ``data``.

    Args:
        data: A number, a (nested) list, a NumPy array or a Tensor.
        requires_grad: Record ops on the result for ``backward()`` (floating dtypes only).
        dtype: The element type. By default Python floats give float32, Python ints int64,
            and a NumPy array keeps its dtype.

    Returns:
        Tensor: A new leaf tensor owning its data.

    Raises:
        TypeError: The dtype is not bool, integer or floating point (e.g. complex, object).
    """
    return Tensor(_as_array(data, dtype, copy=True), requires_grad=requires_grad)


def from_numpy(array: np.ndarray) -> Tensor:
    """Wrap a NumPy array without copying: the tensor and the array share memory."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected a numpy.ndarray, got {type(array).__name__}")
    return Tensor(array)


def zeros(*size: Shape, dtype: Optional[npt.DTypeLike] = None,
          requires_grad: bool = False) -> Tensor:
    """Return a tensor of zeros of shape ``size`` (ints or one tuple), float32 by default."""
    return Tensor(np.zeros(_size(size, "zeros"), _float_dtype(dtype)), requires_grad)


def ones(*size: Shape, dtype: Optional[npt.DTypeLike] = None,
         requires_grad: bool = False) -> Tensor:
    """Return a tensor of ones of shape ``size`` (ints or one tuple), float32 by default."""
    return Tensor(np.ones(_size(size, "ones"), _float_dtype(dtype)), requires_grad)


def zeros_like(input: Operand, dtype: Optional[npt.DTypeLike] = None,
               requires_grad: bool = False) -> Tensor:
    """Return zeros of ``input``'s shape and (unless ``dtype`` is given) dtype."""
    return Tensor(np.zeros_like(np.asarray(input), dtype=dtype), requires_grad)


def ones_like(input: Operand, dtype: Optional[npt.DTypeLike] = None,
              requires_grad: bool = False) -> Tensor:
    """Return ones of ``input``'s shape and (unless ``dtype`` is given) dtype."""
    return Tensor(np.ones_like(np.asarray(input), dtype=dtype), requires_grad)


def randn(*size: Shape, dtype: Optional[npt.DTypeLike] = None, requires_grad: bool = False,
          generator: Optional[np.random.Generator] = None) -> Tensor:
    """Return standard normal samples of shape ``size``, float32 by default.

    Args:
        *size: Ints or one tuple.
        dtype: A floating dtype.
        requires_grad: Record ops on the result for ``backward()``.
        generator: A ``numpy.random.Generator``; by default the one ``cnn.manual_seed`` seeds.
    """
    dtype = _float_dtype(dtype)
    if dtype.kind != "f":
        raise TypeError(f"randn: dtype must be floating point, got {dtype}")
    generator = default_generator() if generator is None else generator
    # Generator draws float32 and float64 natively; other floats are drawn as float64.
    draw_dtype = dtype if dtype in (np.float32, np.float64) else np.float64
    data = generator.standard_normal(_size(size, "randn"), dtype=draw_dtype)
    return Tensor(data.astype(dtype, copy=False), requires_grad)


# ***** helpers *****

def _wrap(array: np.ndarray) -> Tensor:
    """A Tensor around `array`, an ndarray already known to be valid: no conversion, no checks
    (optimizers read every gradient on every step through `Tensor.grad`)."""
    tensor = object.__new__(Tensor)
    tensor.data = array
    tensor._grad = None
    tensor._node = None
    tensor._requires_grad = False
    return tensor


def _as_array(data: Operand, dtype: Optional[npt.DTypeLike] = None,
              copy: bool = False) -> np.ndarray:
    """Convert ``data`` to an ndarray of a supported dtype, with the default float dtype."""
    if isinstance(data, Tensor):
        data = data.data
    if dtype is not None:
        dtype = _numpy_dtype(dtype, "dtype")
    try:
        if dtype is None and not isinstance(data, (np.ndarray, np.generic)):
            array = np.array(data)
            if array.dtype == np.float64:
                array = array.astype(_DEFAULT_FLOAT)
        else:
            array = np.array(data, dtype=dtype) if copy else np.asarray(data, dtype=dtype)
    except (TypeError, ValueError) as error:
        raise type(error)(f"data: cannot make an array of the given {type(data).__name__}: "
                          f"{error}") from None
    _check_dtype(array.dtype, "dtype" if dtype is not None else "data")
    return array


def _check_dtype(dtype: np.dtype[Any], name: str) -> None:
    if dtype.kind not in _SUPPORTED_KINDS:
        raise TypeError(f"{name}: unsupported dtype {dtype}; expected bool, integer or "
                        "floating point")


def _numpy_dtype(dtype: Optional[npt.DTypeLike], name: str) -> np.dtype[Any]:
    try:
        return np.dtype(dtype)
    except TypeError as error:
        raise TypeError(f"{name}: expected a NumPy dtype, got {dtype!r} ({error})") from None


def _float_dtype(dtype: Optional[npt.DTypeLike]) -> np.dtype[Any]:
    dtype = _DEFAULT_FLOAT if dtype is None else _numpy_dtype(dtype, "dtype")
    _check_dtype(dtype, "dtype")
    return dtype


def _size(size: tuple[Any, ...], name: str) -> tuple[Any, ...]:
    """Normalise ``f(2, 3)`` / ``f((2, 3))`` / ``f([2, 3])`` to a shape tuple."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for n in size:
        if not isinstance(n, (int, np.integer)) or isinstance(n, bool):
            raise TypeError(f"{name}: size must be ints, got {size}")
        if n < 0:
            raise ValueError(f"{name}: size must be non-negative, got {size}")
    return size


def _shape_arg(shape: Sequence[Any], name: str) -> tuple[int, ...]:
    """Accept ``reshape(2, 3)`` as well as ``reshape((2, 3))``; every entry an integer."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        shape = shape[0]
    return tuple([integer(size, name) for size in shape])


def _dims(dim: Dims, ndim: int) -> Optional[Union[int, tuple[int, ...]]]:
    """A reduction's ``dim`` (None, an int, or a tuple or list of ints) checked against ``ndim``
    dims: None, an int or a tuple of distinct non-negative ints."""
    if dim is None:
        return None
    if isinstance(dim, (tuple, list)):
        dims = tuple([dimension(d, ndim) for d in dim])
        if len(set(dims)) != len(dims):
            raise ValueError(f"dim: each dimension may appear once, got {tuple(dim)}")
    else:
        dims = dimension(dim, ndim)
    # A 0-d tensor's only dim is itself: reducing over it reduces over everything.
    return None if not ndim else dims


def _has_fraction(data: np.ndarray) -> bool:
    """Whether a float array has a finite non-integral value (PyTorch then prints 4 decimals)."""
    if data.dtype.kind != "f":
        return False
    finite = data[np.isfinite(data)]
    return bool(np.any(finite != np.round(finite)))


_function.register_tensor_class(Tensor)
