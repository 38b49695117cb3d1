"""``Tensor``: a NumPy array that records the ops applied to it.

A Tensor wraps one ``numpy.ndarray`` (``._data`` inside the package; ``.numpy()`` and
``np.asarray(t)`` outside it; ``.data`` is PyTorch's: a Tensor sharing the memory, outside the
graph). Arithmetic, reductions, reshapes and
indexing on tensors run as :mod:`cnn.autograd.ops` Functions, so when an input requires grad
the result remembers how it was made and ``loss.backward()`` fills the ``.grad`` of every leaf
tensor that requires grad. In-place operations (``add_``, ``+=``, ``x[i] = v``) write into the
array itself, with PyTorch's rules (:mod:`cnn.autograd.inplace`).

This file holds the class's state, operators and display; its other methods come by family
from ``cnn/_tensor/`` (shapes, math, reductions, in-place operations, conversions), and the
factories (``tensor``, ``zeros``, ``randn``, ...) from :mod:`cnn.creation`, re-exported here.
"""
from __future__ import annotations

import builtins
from typing import Any, Callable, Iterator, Optional, Sequence, Union

import numpy as np
import numpy.typing as npt

from . import _dtypes
from ._dtypes import float16, float32, float64, int32, int64, uint8
from ._size import Size
from ._tensor.conversion import ConversionMethods
from ._tensor.inplace import InPlaceMethods
from ._tensor.math import MathMethods, binary_operands
from ._tensor.reductions import MaxResult, ReductionMethods
from ._tensor.shaping import ShapeMethods
from .autograd import engine as _engine
from .autograd import function as _function
from .autograd import ops as _ops
from .creation import (arange, as_tensor, empty, empty_like, eye, from_numpy, full, full_like,
                       linspace, ones, ones_like, rand, rand_like, randint, randint_like, randn,
                       randn_like, randperm, tensor, zeros, zeros_like)
from .devices import cpu_device

__all__ = ["Tensor", "Size", "MaxResult", "tensor", "as_tensor", "from_numpy", "zeros", "ones",
           "empty", "full", "zeros_like", "ones_like", "empty_like", "full_like", "rand", "randn",
           "randint", "randperm", "rand_like", "randn_like", "randint_like", "arange",
           "linspace", "eye", "float16", "float32", "float64", "int32", "int64", "uint8"]

# The types of the signatures (the arguments themselves are checked at run time): what an
# operand may be, and what item() gives.
Operand = Union["Tensor", npt.ArrayLike]
Number = Union[builtins.int, builtins.float, builtins.bool]

# Dtypes the repr leaves out, as PyTorch's does.
_IMPLIED_DTYPES = (np.dtype(np.float32), np.dtype(np.int64), np.dtype(np.bool_))


class Tensor(ShapeMethods, MathMethods, ReductionMethods, InPlaceMethods, ConversionMethods):
    """An n-dimensional array with automatic differentiation.

    Args:
        data: An array-like; a NumPy array is wrapped without copying. Python floats become
            the default float dtype (float32), Python ints int64.
        requires_grad: Whether ops on this tensor are recorded so that ``backward()`` can
            compute its gradient. Only floating-point tensors can require grad.

    Attributes:
        data (Tensor): The values as a tensor sharing this one's memory, outside the graph
            (PyTorch's ``.data``): writing into it bypasses autograd. ``t.data = other``
            replaces the memory, as in PyTorch. ``.numpy()`` gives the array.

    Most tensors come from :func:`tensor`, :func:`zeros`, :func:`randn` or from ops on
    other tensors, rather than from this constructor.
    """

    # _data: the array, read directly by the whole package (``.data`` is PyTorch's);
    # _base: the tensor whose memory this one views (None if it owns its memory);
    # _counter: the Version of the memory this tensor owns, made by the first in-place op.
    __slots__ = ("_data", "_requires_grad", "_grad", "_node", "_base", "_counter", "__weakref__")
    # Above ndarray's, so that ``array + tensor`` calls Tensor.__radd__ and gives a Tensor.
    __array_priority__ = 1000

    def __init__(self, data: Operand, requires_grad: bool = False) -> None:
        self._data = _as_array(data)
        self._grad: Optional[np.ndarray] = None
        self._node: Any = None
        self._base: Optional[Tensor] = None
        self._counter: Any = None
        self._requires_grad = False
        self.requires_grad = requires_grad

    # ***** the values *****

    @property
    def data(self) -> Tensor:
        """Tensor: The values as a new tensor sharing this one's memory, outside the graph and
        with its own version counter (PyTorch's ``.data``): in-place writes through it are not
        seen by autograd. Setting it (``p.data = t``) replaces the tensor's memory by ``t``'s."""
        return _wrap(self._data)

    @data.setter
    def data(self, value: Union[Tensor, np.ndarray]) -> None:
        array = value._data if isinstance(value, Tensor) else value
        if not isinstance(array, np.ndarray):
            raise TypeError(f"data: expected a Tensor, got {type(value).__name__}")
        _dtypes.check(array.dtype, "data")
        if self._requires_grad and array.dtype.kind != "f":
            raise TypeError(f"data: a tensor that requires grad needs floating-point data, got "
                            f"dtype {array.dtype}")
        self._data = array

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
        if flag and self._data.dtype.kind != "f":
            raise TypeError("requires_grad: only floating-point tensors can require grad, "
                            f"got dtype {self._data.dtype}")
        self._requires_grad = flag

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return this tensor."""
        self.requires_grad = requires_grad
        return self

    @property
    def grad(self) -> Optional[Tensor]:
        """Tensor or None: The gradient accumulated by ``backward()`` into this leaf.

        Set it to None to clear it, or to a Tensor or array of this tensor's shape and dtype.
        The Tensor shares the gradient's memory: ``p.grad.zero_()`` clears it in place.
        """
        return None if self._grad is None else _wrap(self._grad)

    @grad.setter
    def grad(self, value: Optional[Union[Tensor, np.ndarray]]) -> None:
        if value is None:
            self._grad = None
            return
        grad = value._data if isinstance(value, Tensor) else value
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"grad: expected a Tensor, a numpy.ndarray or None, got "
                            f"{type(value).__name__}")
        if grad.shape != self._data.shape:
            raise ValueError(f"grad: shape {grad.shape} does not match the tensor's shape "
                             f"{self._data.shape}")
        if grad.dtype != self._data.dtype:
            raise TypeError(f"grad: dtype {grad.dtype} does not match the tensor's dtype "
                            f"{self._data.dtype}")
        self._grad = grad

    @property
    def grad_fn(self) -> Any:
        """The graph node that produced this tensor (e.g. ``<MulBackward>``), None for leaves."""
        return self._node

    @property
    def is_leaf(self) -> bool:
        """bool: True unless the tensor was computed by a recorded op."""
        return self._node is None

    @property
    def _version(self) -> int:
        """int: How many in-place operations modified this tensor's memory (shared by views)."""
        counter = (self if self._base is None else self._base)._counter
        return 0 if counter is None else counter.value

    def backward(self, gradient: Optional[Operand] = None, retain_graph: Optional[bool] = None,
                 create_graph: bool = False, inputs: Optional[Sequence[Tensor]] = None) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of every leaf.

        Args:
            gradient: d(loss)/d(self), of this tensor's shape; optional for one element.
            retain_graph: Keep the graph so that backward can run through it again.
            create_graph: Must be False (cnn computes first-order gradients only).
            inputs: Only these leaves receive gradients (default: every leaf).

        Raises:
            ValueError: This tensor does not require grad, ``gradient`` is missing for a
                tensor of several elements, or the graph was freed by an earlier backward.
            RuntimeError: An array the graph saved was modified in place since.
            NotImplementedError: ``create_graph=True``.
        """
        _engine._first_order(create_graph)
        _engine.run_backward(self, gradient, bool(retain_graph), inputs)

    def register_hook(self, hook: Callable[[Tensor], Optional[Tensor]]) -> Any:
        """Call ``hook(grad)`` whenever the gradient with respect to this tensor is computed.

        The hook may return a replacement gradient (a Tensor of the same shape) or None. On a
        leaf it runs before the gradient is accumulated into ``.grad``.

        Returns:
            A handle whose ``remove()`` unregisters the hook.

        Raises:
            RuntimeError: The tensor does not require grad.
        """
        if not callable(hook):
            raise TypeError(f"hook: expected a callable, got {type(hook).__name__}")
        if not self._requires_grad:
            raise RuntimeError("cannot register a hook on a tensor that doesn't require "
                               "gradient")
        if self._node is None:
            return _engine.register_leaf_hook(self, hook)
        return self._node.register_hook(hook)

    def retain_grad(self) -> None:
        """Keep the gradient of this computed tensor in its ``.grad`` at backward (a leaf
        keeps it anyway)."""
        if not self._requires_grad:
            raise RuntimeError("can't retain_grad on Tensor that has requires_grad=False")
        if self._node is None or getattr(self._node, "_retains", None) is not None:
            return
        import weakref  # noqa: PLC0415 (standard library, only for retained gradients)
        tensor = weakref.ref(self)

        def keep(grad: Tensor) -> None:
            owner = tensor()
            if owner is not None:
                array = grad._data
                owner._grad = array.copy() if owner._grad is None else owner._grad + array

        self._node._retains = self._node.register_hook(keep)

    def detach(self) -> Tensor:
        """Return a tensor sharing this one's data (and version), outside the graph."""
        out = Tensor(self._data)
        out._base = self if self._base is None else self._base
        return out

    def detach_(self) -> Tensor:
        """Detach this tensor from the graph in place (it becomes a leaf that does not
        require grad)."""
        if self._base is not None and self._node is not None:
            raise RuntimeError("Can't detach views in-place. Use detach() instead.")
        self._node = None
        self._requires_grad = False
        return self

    # ***** array properties *****

    @property
    def shape(self) -> Size:
        """Size: The size of each dim."""
        return Size(self._data.shape)

    @property
    def dtype(self) -> np.dtype[Any]:
        """numpy.dtype: The element type (``cnn.float32`` by default)."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """int: The number of dims."""
        return self._data.ndim

    @property
    def device(self) -> Any:
        """device: Where the tensor lives: always the CPU."""
        return cpu_device()

    is_cuda = False
    is_sparse = False
    is_quantized = False

    def __len__(self) -> int:
        if not self._data.ndim:
            raise TypeError("len() of a 0-d tensor")
        return len(self._data)

    def __iter__(self) -> Iterator[Tensor]:
        if self._data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (self[i] for i in range(len(self._data)))

    # ***** conversions to Python *****

    def numpy(self, force: bool = False) -> np.ndarray:
        """Return the data array (shared, not copied).

        Args:
            force (bool): Accepted for PyTorch's signature (a tensor that requires grad is
                converted either way).
        """
        return self._data

    def item(self) -> Number:
        """Return the value of a one-element tensor as a Python number."""
        if self._data.size != 1:
            raise ValueError(f"item: a Tensor with {self._data.size} elements cannot be converted "
                             "to a Python number")
        return self._data.item()

    def tolist(self) -> Any:
        """Return the values as (nested) Python lists of numbers; a number for a 0-d tensor."""
        return self._data.tolist()

    def __array__(self, dtype: Optional[npt.DTypeLike] = None,
                  copy: Optional[builtins.bool] = None) -> np.ndarray:
        """The data as an array, for ``np.asarray(tensor)`` and every NumPy function.

        NumPy >= 2 passes ``copy`` with ``np.array``'s meaning (True: always copy, None: only
        if needed, False: never, raise if a copy is needed); NumPy 1.x never passes it (and its
        ``np.array`` refuses ``copy=None``), so the three cases are written out here.
        """
        if copy:
            return np.array(self._data, dtype=dtype, copy=True)
        if copy is False and dtype is not None and np.dtype(dtype) != self._data.dtype:
            raise ValueError(f"cannot convert a {self._data.dtype} tensor to {np.dtype(dtype)} "
                             "without a copy (copy=False)")
        return np.asarray(self._data, dtype=dtype)

    def __float__(self) -> builtins.float:
        return float(self.item())

    def __int__(self) -> builtins.int:
        return int(self.item())

    def __index__(self) -> builtins.int:
        # A 0-d integer tensor indexes Python sequences (range(t), lst[t]), as in PyTorch.
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be converted to an "
                            "index")
        return int(self._data.item())

    def __bool__(self) -> builtins.bool:
        return bool(self._data)

    def __format__(self, spec: str) -> str:
        # f"{loss:.4f}" formats the value of a one-element tensor, as in PyTorch.
        if self._data.ndim == 0:
            return format(self.item(), spec)
        return super().__format__(spec)

    # ***** arithmetic operators *****

    def __add__(self, other: Operand) -> Tensor:
        a, b = binary_operands(self, other)
        return _ops.Add.apply(a, b)

    def __radd__(self, other: Operand) -> Tensor:
        b, a = binary_operands(self, other)
        return _ops.Add.apply(a, b)

    def __sub__(self, other: Operand) -> Tensor:
        _check_subtraction(self, other)
        a, b = binary_operands(self, other)
        return _ops.Sub.apply(a, b)

    def __rsub__(self, other: Operand) -> Tensor:
        _check_subtraction(self, other)
        b, a = binary_operands(self, other)
        return _ops.Sub.apply(a, b)

    def __mul__(self, other: Operand) -> Tensor:
        a, b = binary_operands(self, other)
        return _ops.Mul.apply(a, b)

    def __rmul__(self, other: Operand) -> Tensor:
        b, a = binary_operands(self, other)
        return _ops.Mul.apply(a, b)

    def __truediv__(self, other: Operand) -> Tensor:
        a, b = binary_operands(self, other, true_division=True)
        return _ops.Div.apply(a, b)

    def __rtruediv__(self, other: Operand) -> Tensor:
        b, a = binary_operands(self, other, true_division=True)
        return _ops.Div.apply(a, b)

    def __floordiv__(self, other: Operand) -> Tensor:
        return self.div(other, rounding_mode="floor")

    def __rfloordiv__(self, other: Operand) -> Tensor:
        return as_tensor(other, dtype=None).div(self, rounding_mode="floor")

    def __mod__(self, other: Operand) -> Tensor:
        return self.remainder(other)

    def __pow__(self, exponent: Operand) -> Tensor:
        a, b = binary_operands(self, exponent)
        return _ops.Pow.apply(a, b)

    def __rpow__(self, base: Operand) -> Tensor:
        b, a = binary_operands(self, base)
        return _ops.Pow.apply(a, b)

    def __matmul__(self, other: Operand) -> Tensor:
        return self.matmul(other)

    def __rmatmul__(self, other: Operand) -> Tensor:
        return _ops.MatMul.apply(_constant(other, "other"), self)

    def __neg__(self) -> Tensor:
        return _ops.Neg.apply(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return self.abs()

    def __invert__(self) -> Tensor:
        if self._data.dtype.kind not in "biu":
            raise TypeError(f"~: bitwise not needs a bool or integer tensor, got dtype "
                            f"{self._data.dtype}")
        return Tensor(np.invert(self._data))

    def __and__(self, other: Operand) -> Tensor:
        return self._bitwise(np.bitwise_and, other, "&")

    __rand__ = __and__

    def __or__(self, other: Operand) -> Tensor:
        return self._bitwise(np.bitwise_or, other, "|")

    __ror__ = __or__

    def __xor__(self, other: Operand) -> Tensor:
        return self._bitwise(np.bitwise_xor, other, "^")

    __rxor__ = __xor__

    def _bitwise(self, ufunc: np.ufunc, other: Operand, symbol: str) -> Tensor:
        other = other._data if isinstance(other, Tensor) else other
        if self._data.dtype.kind not in "biu" or np.asarray(other).dtype.kind not in "biu":
            raise TypeError(f"{symbol}: bitwise operations need bool or integer tensors, got "
                            f"{self._data.dtype} and {np.asarray(other).dtype}")
        return Tensor(_ops.elementwise(ufunc, self._data, other))

    # ***** comparisons (no gradient) *****

    def _compare(self, ufunc: np.ufunc, other: Any) -> Tensor:
        other = other._data if isinstance(other, Tensor) else other
        if not isinstance(other, (np.ndarray, np.generic, float, int)):
            other = np.asarray(other)
            _dtypes.check(other.dtype, "other")
        return Tensor(_ops.elementwise(ufunc, self._data, other))

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

    # ***** copies *****

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        if self._node is not None:
            raise RuntimeError("Only Tensors created explicitly by the user (graph leaves) "
                               "support the deepcopy protocol at the moment; detach() first")
        new = object.__new__(type(self))
        memo[id(self)] = new
        new._data = self._data.copy()
        new._grad = None if self._grad is None else self._grad.copy()
        new._node = None
        new._base = None
        new._counter = None
        new._requires_grad = self._requires_grad
        return new

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        return (_rebuild, (type(self), self._data, self._requires_grad))

    # ***** display *****

    def __repr__(self) -> str:
        data = self._data
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


# ***** helpers *****

def _wrap(array: np.ndarray) -> Tensor:
    """A Tensor around `array`, an ndarray already known to be valid: no conversion, no checks
    (optimizers read every gradient on every step through `Tensor.grad`)."""
    tensor = object.__new__(Tensor)
    tensor._data = array
    tensor._grad = None
    tensor._node = None
    tensor._base = None
    tensor._counter = None
    tensor._requires_grad = False
    return tensor


def _rebuild(cls: type[Tensor], data: np.ndarray, requires_grad: bool) -> Tensor:
    """Unpickle a tensor (a leaf: the graph is not pickled)."""
    out = cls.__new__(cls)
    Tensor.__init__(out, data, requires_grad)
    return out


def _as_array(data: Operand) -> np.ndarray:
    """``data`` as an ndarray of a supported dtype (shared when it is one already)."""
    if isinstance(data, Tensor):
        return data._data
    if isinstance(data, np.ndarray):
        _dtypes.check(data.dtype, "data")
        return data
    return tensor(data)._data


def _check_subtraction(tensor: Tensor, other: Operand) -> None:
    """PyTorch refuses to subtract bools (NumPy too, for arrays): it is never what was meant."""
    other_dtype = other._data.dtype if isinstance(other, Tensor) else np.asarray(other).dtype
    if tensor._data.dtype.kind == "b" or other_dtype.kind == "b":
        raise TypeError("Subtraction, the `-` operator, with a bool tensor is not supported. If "
                        "you are trying to invert a mask, use the `~` or `logical_not()` "
                        "operator instead.")


def _constant(value: Operand, name: str) -> Any:
    if isinstance(value, Tensor):
        return value
    array = np.asarray(value)
    _dtypes.check(array.dtype, name)
    return array


def _has_fraction(data: np.ndarray) -> bool:
    """Whether a float array has a finite non-integral value (PyTorch then prints 4 decimals)."""
    if data.dtype.kind != "f":
        return False
    finite = data[np.isfinite(data)]
    return bool(np.any(finite != np.round(finite)))


_function.register_tensor_class(Tensor)
