"""The Tensor's conversions: dtypes (``to``, ``float``, ``long``, ``type``), devices (``to``,
``cpu``; ``cuda`` raises) and new tensors like this one (``new_zeros``, ...)."""
import numpy as np

from .. import _dtypes
from ..autograd import ops
from ..creation import full, tensor, zeros
from ..devices import DEVICE_TYPES, as_device, device, unavailable
from ._args import tensor_class


def to_arguments(args, kwargs):
    """``(dtype, copy)`` (the device checked to be the CPU) from the forms of ``Tensor.to`` and
    ``Module.to``: ``to(dtype)``, ``to(device, dtype)``, ``to(tensor)``, and their keywords;
    ``non_blocking`` is accepted."""
    Tensor = tensor_class()
    extra = set(kwargs) - {"device", "dtype", "non_blocking", "copy", "memory_format"}
    if extra:
        raise TypeError(f"to: unexpected keyword arguments {sorted(extra)}")
    target_device, dtype = kwargs.get("device"), kwargs.get("dtype")
    rest = list(args)
    if rest and isinstance(rest[0], Tensor):
        other = rest.pop(0)
        dtype = other._data.dtype
    if rest and (isinstance(rest[0], device) or _names_device(rest[0])):
        target_device = rest.pop(0)
    if rest and not isinstance(rest[0], bool):
        dtype = rest.pop(0)
    if rest and isinstance(rest[0], bool):
        rest.pop(0)  # non_blocking
    if rest and isinstance(rest[0], bool):
        kwargs = dict(kwargs, copy=rest.pop(0))
    if rest:
        raise TypeError(f"to: unexpected arguments {rest}: expected a device, a dtype or a "
                        "tensor")
    as_device(target_device)
    if dtype is not None:
        dtype = _dtypes.as_dtype(dtype, "dtype")
    return dtype, bool(kwargs.get("copy", False))


def _names_device(value):
    """Whether a positional argument of ``to`` is a device: a device name ("cpu", "cuda:0"),
    or an int (a CUDA device index); other strings are dtype names ("float64")."""
    if isinstance(value, str):
        return value.partition(":")[0] in DEVICE_TYPES
    return isinstance(value, int) and not isinstance(value, bool)


class ConversionMethods:
    """Mixin of ``cnn.Tensor``: dtype and device conversions, new tensors like this one."""

    __slots__ = ()

    def to(self, *args, **kwargs):
        """Return this tensor with another dtype (differentiable), or itself if nothing changes.

        Takes PyTorch's forms: ``to(dtype)``, ``to(device)``, ``to(device, dtype)``,
        ``to(other_tensor)``, with keywords ``device``, ``dtype``, ``non_blocking``, ``copy``.
        The device can only be the CPU.

        Raises:
            RuntimeError: A device other than the CPU (``"cuda"``, ...).
            TypeError: An unsupported dtype or argument.
        """
        dtype, copy = to_arguments(args, kwargs)
        if dtype is None or dtype == self._data.dtype:
            return self.clone() if copy else self
        return ops.Cast.apply(self, dtype)

    def type(self, dtype=None, non_blocking=False):
        """Return the type name (``"cnn.FloatTensor"``) with no argument, else this tensor cast
        to ``dtype`` (a dtype or a name such as ``"torch.DoubleTensor"``)."""
        if dtype is None:
            return "cnn." + _dtypes.TENSOR_TYPE_NAMES.get(self._data.dtype, "Tensor")
        return self.to(_dtypes.as_dtype(dtype, "dtype"))

    def type_as(self, other):
        """Return this tensor cast to ``other``'s dtype."""
        return self.to(other.dtype)

    def cpu(self, memory_format=None):
        """Return this tensor (tensors always live in main memory)."""
        return self

    def cuda(self, device=None, non_blocking=False, memory_format=None):
        """Raise: cnn runs on the CPU only."""
        raise unavailable("CUDA", "cuda()")

    def pin_memory(self, device=None):
        """Raise: pinned memory serves GPU transfers, and cnn has no GPU."""
        raise unavailable("CUDA", "pin_memory()")

    def float(self, memory_format=None):
        """Return this tensor as float32 (differentiable)."""
        return self.to(np.float32)

    def double(self, memory_format=None):
        """Return this tensor as float64 (differentiable)."""
        return self.to(np.float64)

    def half(self, memory_format=None):
        """Return this tensor as float16 (differentiable)."""
        return self.to(np.float16)

    def long(self, memory_format=None):
        """Return this tensor as int64 (no gradient flows through)."""
        return self.to(np.int64)

    def int(self, memory_format=None):
        """Return this tensor as int32 (no gradient flows through)."""
        return self.to(np.int32)

    def short(self, memory_format=None):
        """Return this tensor as int16 (no gradient flows through)."""
        return self.to(np.int16)

    def byte(self, memory_format=None):
        """Return this tensor as uint8 (no gradient flows through)."""
        return self.to(np.uint8)

    def bool(self, memory_format=None):
        """Return this tensor as bool (nonzero is True)."""
        return self.to(np.bool_)

    # ***** new tensors like this one *****

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False):
        """Return a copy of ``data`` as a tensor of this tensor's dtype (unless given)."""
        return tensor(data, dtype=self._data.dtype if dtype is None else dtype, device=device,
                      requires_grad=requires_grad)

    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False):
        """Return zeros of ``size`` in this tensor's dtype (unless given)."""
        return zeros(*size, dtype=self._data.dtype if dtype is None else dtype, device=device,
                     requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False):
        """Return ones of ``size`` in this tensor's dtype (unless given)."""
        return self.new_full(_size(size), 1, dtype=dtype, device=device,
                             requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False):
        """Return an uninitialised tensor of ``size`` in this tensor's dtype (unless given)."""
        return self.new_zeros(*size, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        """Return ``fill_value`` everywhere in ``size``, in this tensor's dtype (unless given)."""
        return full(size, fill_value, dtype=self._data.dtype if dtype is None else dtype,
                    device=device, requires_grad=requires_grad)


def _size(size):
    return tuple(size[0]) if len(size) == 1 and isinstance(size[0], (tuple, list)) else size
