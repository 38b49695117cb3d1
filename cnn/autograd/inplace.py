"""In-place operations with PyTorch's rules: ``add_``, ``x += y``, ``fill_``, ``x[i] = v``, ...

An in-place operation runs an ordinary Function and stores its result into the tensor's own
array, so every view, module and optimizer holding that array sees the new values.

- Under ``no_grad()``, or when nothing involved requires grad, it is a plain write (a ufunc with
  ``out=`` for arithmetic): what an optimizer's ``p -= lr * p.grad`` needs.
- When grad mode is on and the tensor or an operand requires grad, the op is recorded: the
  tensor gets a new graph node whose input is the tensor as it was (earlier nodes keep pointing
  at the old one). A leaf that requires grad refuses this, as in PyTorch: its ``.grad`` would
  describe values that no longer exist.
- Either way the tensor's version is bumped, and a graph node that saved the overwritten
  memory is refused at backward (PyTorch's "modified by an inplace operation" error).

A recorded in-place operation on a view (``x[0].add_(y)`` with ``y`` requiring grad) would
need PyTorch's rewriting of the base's history; cnn refuses it with an error that says so.
"""
import numpy as np

from . import function
from .function import _UnrecordedContext, bump_version
from .grad_mode import _grad_state
from .ops import Copy, SetItem

__all__ = ["apply_inplace", "assign", "write_inplace"]


def apply_inplace(op, target, *args, name="in-place operation", **kwargs):
    """Store ``op(target, *args, **kwargs)`` into `target`'s array and return `target`.

    Args:
        op (type): A Function whose first argument is the tensor modified; its result must
            have the tensor's shape and a dtype castable to the tensor's (same kind).
        target (Tensor): The tensor modified.
        *args, **kwargs: The op's other arguments (Tensors or plain values).
        name (str): The operation's name for error messages (``"add_"``).

    Returns:
        Tensor: `target`.

    Raises:
        RuntimeError: `target` is a leaf that requires grad (or a view of one) and grad mode
            is on, the op would have to be recorded on a view, or `target`'s memory is
            read-only.
        ValueError: The result's shape is not the tensor's (an operand broadcasts it larger).
        TypeError: The result's dtype cannot be cast to the tensor's (float into int).
    """
    Tensor = function.Tensor
    array = target._data
    _check_writeable(array, name)
    if _grad_state.enabled and (target._requires_grad or any(
            isinstance(arg, Tensor) and arg._requires_grad for arg in args)):
        return _recorded(op, target, array, args, kwargs, name)
    arrays = [arg._data if isinstance(arg, Tensor) else arg for arg in args]
    ufunc = getattr(op, "ufunc", None)
    if ufunc is not None and not kwargs:
        _ufunc_into(ufunc, array, arrays[0], name)
    else:
        ctx = _UnrecordedContext(op, (None,) * (1 + len(args)))
        _store(array, np.asarray(op.forward(ctx, array, *arrays, **kwargs)), name)
    _modified(target, array)
    function.note_inplace(target, name)
    return target


def assign(target, index, value):
    """``target[index] = value`` with the rules of in-place operations (recorded when grad
    mode is on and `target` or `value` requires grad).

    Args:
        target (Tensor): The tensor written into.
        index: A NumPy index (ints, slices, arrays, masks, tuples of them).
        value: A Tensor, or an array or number broadcastable to ``target[index]``.
    """
    Tensor = function.Tensor
    if _grad_state.enabled and (target._requires_grad or (isinstance(value, Tensor)
                                                          and value._requires_grad)):
        return apply_inplace(SetItem, target, index, value, name="__setitem__")
    array = target._data
    _check_writeable(array, "__setitem__")
    array[index] = value._data if isinstance(value, Tensor) else value
    _modified(target, array)
    function.note_inplace(target, "__setitem__")
    return target


def write_inplace(target, values, name):
    """Overwrite `target`'s array with `values` (an array of its shape) outside autograd, as
    random fills do; bumps the version like any in-place operation.

    Raises:
        RuntimeError: As :func:`apply_inplace`, when grad mode is on and `target` is a leaf
            that requires grad.
    """
    array = target._data
    _check_writeable(array, name)
    if _grad_state.enabled and target._requires_grad:
        return _recorded(Copy, target, array, (values,), {}, name)
    _store(array, values, name)
    _modified(target, array)
    function.note_inplace(target, name)
    return target


def _recorded(op, target, array, args, kwargs, name):
    _check_recordable(target)
    # A tracer would see the op take the tensor as it was, which no op of its trace made.
    function.note_inplace(target, name)
    # The tensor as it was: its node and the values the op reads (a copy unless the op's
    # backward reads none of them, since they are about to be overwritten).
    old = function._new_tensor(function.Tensor)
    old._data = array if getattr(op, "inplace_safe", False) else array.copy()
    old._grad = None
    old._node = target._node
    old._requires_grad = target._requires_grad
    old._base = None
    old._counter = None
    out = op.apply(old, *args, **kwargs)
    _store(array, out._data, name)
    _modified(target, array)
    out._data = array  # the op's result is the tensor's memory (as a tracer sees it)
    target._node = out._node
    target._requires_grad = out._requires_grad
    return target


def _check_recordable(target):
    base = target._base
    if target._node is None and target._requires_grad and base is None:
        raise RuntimeError("a leaf Variable that requires grad is being used in an in-place "
                           "operation. (Modify it under `with torch.no_grad():`, as optimizers "
                           "do, or work on a clone.)")
    if base is not None:
        if base._node is None and base._requires_grad:
            raise RuntimeError("a view of a leaf Variable that requires grad is being used in "
                               "an in-place operation.")
        raise RuntimeError(
            "cnn cannot record an in-place operation on a view (a slice, view() or "
            "transpose of another tensor) when grad mode is on and a tensor involved requires "
            "grad: PyTorch rewrites the base tensor's history there, cnn does not. Write it "
            "out of place (torch.cat, torch.where, or a new tensor), or run it under no_grad()")


def _check_writeable(array, name):
    if not array.flags.writeable:
        raise RuntimeError(f"{name}: the tensor's memory is read-only (an expand()ed tensor, "
                           "or a read-only NumPy array); clone() it first")


def _ufunc_into(ufunc, array, other, name):
    try:
        ufunc(array, other, out=array, casting="same_kind")
    except TypeError:  # numpy's UFuncTypeError: the result's kind is not the array's
        raise TypeError(f"{name}: result type {np.result_type(array, other)} can't be cast to "
                        f"the desired output type {array.dtype}") from None
    except ValueError:
        raise ValueError(f"{name}: output with shape {list(array.shape)} doesn't match the "
                         f"shape {list(np.shape(other))} of the other operand, broadcast "
                         "with it") from None


def _store(array, result, name):
    if result.shape != array.shape:
        raise ValueError(f"{name}: output with shape {list(array.shape)} doesn't match the "
                         f"broadcast shape {list(result.shape)}")
    if not np.can_cast(result.dtype, array.dtype, "same_kind"):
        raise TypeError(f"{name}: result type {result.dtype} can't be cast to the desired "
                        f"output type {array.dtype}")
    if result is not array:
        np.copyto(array, result, casting="same_kind")


def _modified(target, array):
    """Bump the version of the memory's owner, and mark its graph node if it saved that memory
    (its backward would read the new values)."""
    root = target if target._base is None else target._base
    version = bump_version(root)
    node = root._node
    if node is not None and node.saved_tensors:
        for saved in node.saved_tensors:
            if (isinstance(saved, np.ndarray) and np.may_share_memory(saved, array)
                    and np.shares_memory(saved, array)):
                node.__dict__["_modified_output"] = (array, version.value)
                break
