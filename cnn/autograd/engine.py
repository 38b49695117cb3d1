"""The backward engine: gradients through the recorded graph, into ``.grad`` or returned.

:func:`backward` (``Tensor.backward``, ``torch.autograd.backward``) accumulates into the
``.grad`` of leaves; :func:`grad` (``torch.autograd.grad``) returns the gradients of chosen
tensors and leaves every ``.grad`` alone. Both walk the graph once in reverse topological
order, call each node's ``backward`` with the sum of the gradients of its output, and check
every gradient against its input's shape and dtype.

Before a node's ``backward`` runs, the engine checks that nothing it saved was overwritten by an
in-place operation since the node was made (PyTorch's "modified by an inplace operation"
error); while no in-place operation ran, that is one integer comparison per node.
"""
import weakref

import numpy as np

from cnn import _ext
from cnn._validation import FLOAT_DTYPES
from cnn.threads import kernel_threads

from . import function
from .function import Context

__all__ = ["backward", "grad", "run_backward"]


def run_backward(tensor, gradient=None, retain_graph=False, inputs=None):
    """Accumulate d(tensor)/d(leaf) into the ``.grad`` of every leaf that requires grad.

    Args:
        tensor: The Tensor to differentiate.
        gradient: d(loss)/d(tensor), of the tensor's shape; may be omitted for a
            one-element tensor (it is then 1).
        retain_graph: Keep the saved arrays so that backward can run through this graph
            again. By default they are freed.
        inputs: None, or the leaves whose ``.grad`` receives the gradient (others are left
            alone), as ``Tensor.backward(inputs=...)``.

    Raises:
        ValueError: The tensor does not require grad, ``gradient`` is missing or has the
            wrong shape, an op's backward returned a gradient of the wrong shape, or the
            graph was already freed.
        TypeError: ``gradient`` is not an array of real numbers (complex, strings, objects).
        RuntimeError: An array the graph saved was modified by an in-place operation.
    """
    if not tensor._requires_grad:
        raise ValueError("backward: the tensor does not require grad and has no grad_fn; "
                         "create its inputs with requires_grad=True")
    targets = None if inputs is None else _leaf_targets(inputs)
    _execute([tensor], [_root_gradient(tensor, gradient)], retain_graph, targets, None)


def backward(tensors, grad_tensors=None, retain_graph=None, create_graph=False, inputs=None):
    """Accumulate the gradients of several tensors (summed) into the leaves, as
    ``torch.autograd.backward``.

    Args:
        tensors (Tensor or sequence of Tensor): The roots.
        grad_tensors: One gradient per root (None for a one-element root).
        retain_graph (bool): Keep the graph for another backward (default: ``create_graph``).
        create_graph (bool): Must be False: cnn computes first-order gradients only.
        inputs: None, or the leaves that receive gradients.
    """
    _first_order(create_graph)
    tensors = _tensor_list(tensors, "tensors")
    grads = _gradient_list(grad_tensors, len(tensors), "grad_tensors")
    for tensor in tensors:
        if not tensor._requires_grad:
            raise ValueError("backward: element of tensors does not require grad and has no "
                             "grad_fn")
    targets = None if inputs is None else _leaf_targets(inputs)
    _execute(tensors, [_root_gradient(t, g) for t, g in zip(tensors, grads)],
             bool(retain_graph), targets, None)


def grad(outputs, inputs, grad_outputs=None, retain_graph=None, create_graph=False,
         allow_unused=None, materialize_grads=False):
    """Return d(outputs)/d(inputs) without touching any ``.grad``, as ``torch.autograd.grad``.

    Args:
        outputs (Tensor or sequence of Tensor): The tensors to differentiate (their
            gradients are summed).
        inputs (Tensor or sequence of Tensor): Leaves or computed tensors that require grad.
        grad_outputs: One gradient per output (None for a one-element output).
        retain_graph (bool): Keep the graph for another backward (default: ``create_graph``).
        create_graph (bool): Must be False: cnn computes first-order gradients only, so the
            results do not require grad.
        allow_unused (bool): Return None for an input the outputs do not depend on, instead
            of raising.
        materialize_grads (bool): Return zeros instead of None for such inputs.

    Returns:
        tuple of Tensor (or None): One gradient per input, of its shape.

    Raises:
        ValueError: An output or input does not require grad, or an input is unused and
            neither ``allow_unused`` nor ``materialize_grads`` is set.
        NotImplementedError: ``create_graph=True``.
    """
    _first_order(create_graph)
    outputs = _tensor_list(outputs, "outputs")
    inputs = _tensor_list(inputs, "inputs")
    grads = _gradient_list(grad_outputs, len(outputs), "grad_outputs")
    for position, tensor in enumerate(outputs):
        if not tensor._requires_grad:
            raise ValueError(f"grad: element {position} of outputs does not require grad and "
                             "has no grad_fn")
    keys = []
    for position, tensor in enumerate(inputs):
        if not tensor._requires_grad:
            raise ValueError(f"grad: element {position} of inputs does not require grad")
        keys.append(tensor._node if tensor._node is not None else id(tensor))
    captured = dict.fromkeys(keys)
    _execute(outputs, [_root_gradient(t, g) for t, g in zip(outputs, grads)],
             bool(retain_graph), {}, captured)
    results = []
    for position, (tensor, key) in enumerate(zip(inputs, keys)):
        value = captured[key]
        if value is None:
            if materialize_grads:
                value = np.zeros(tensor._data.shape, tensor._data.dtype)
            elif not allow_unused:
                raise ValueError(f"grad: element {position} of inputs was not used to compute "
                                 "outputs; pass allow_unused=True to get None for it")
        results.append(None if value is None else function.Tensor(value))
    return tuple(results)


# ***** the walk *****

def _execute(roots, root_grads, retain_graph, targets, captured):
    """Propagate `root_grads` from `roots` through the graph.

    Args:
        targets: None to accumulate into every leaf that requires grad, else a dict
            ``{id(leaf): leaf}`` of the only leaves to accumulate into.
        captured: None, or a dict whose keys (nodes, or ids of leaves) receive the summed
            gradient instead of any accumulation (``grad``).
    """
    grads = {}
    nodes = []
    for root, grad in zip(roots, root_grads):
        node = root._node
        if node is None:
            _deliver(root, grad, targets, captured)
        elif node in grads:
            grads[node] = _sum(grads[node], grad)
        else:
            grads[node] = grad
            nodes.append(node)
    if not nodes:
        return
    order = _topological_order(nodes)
    needed = None if captured is None else _needed(order, captured)
    epoch = function.current_epoch()
    # Hooks and captures are rare: one test per node covers both.
    special = function.hooks_in_use or captured is not None
    for node in reversed(order):
        grad = grads.pop(node, None)
        if grad is None:
            continue
        if node._epoch != epoch:
            _check_versions(node)
        if special:
            grad = _hooked_or_captured(node, grad, captured, needed)
            if grad is None:
                continue
        if node.saved_tensors is None:
            raise ValueError(
                f"backward: trying to backward through the graph a second time ({node.name()} "
                "was freed by the first backward); use backward(retain_graph=True) the first time")
        results = node._function.backward(node, grad)
        inputs = node._inputs
        if type(results) is not tuple:
            results = (results,)
        if len(results) != len(inputs) and not _only_nones(results[len(inputs):]):
            raise ValueError(f"{node.name()} returned {len(results)} gradients for "
                             f"{len(inputs)} inputs")
        for input_, grad, arg in zip(inputs, results, node._args):
            if input_ is None or grad is None:
                continue
            if input_.__class__ is Context:
                array = arg._data
                grad = _checked_gradient(grad, array.shape, array.dtype, node)
                if input_ in grads:
                    # Out of place: the stored gradient may be a view some op still holds.
                    grads[input_] = _sum(grads[input_], grad)
                else:
                    grads[input_] = grad
            else:
                array = input_._data
                grad = _checked_gradient(grad, array.shape, array.dtype, node)
                if special or targets is not None:
                    _deliver(input_, grad, targets, captured)
                else:
                    _accumulate(input_, grad)
    if not retain_graph:
        for node in order:
            node.saved_tensors = None
            node._inputs = ()
            node._args = ()
            node.__dict__.clear()


def _hooked_or_captured(node, grad, captured, needed):
    """Run `node`'s hooks on its gradient and capture it for ``grad()``; None when the node's
    backward is not needed (nothing captured lies below it)."""
    hooks = node.__dict__.get("_hooks")
    if hooks:
        grad = _run_hooks(hooks, grad, node.name())
    if captured is not None:
        if node in captured:
            captured[node] = grad
        if node not in needed:
            return None
    return grad


def _deliver(leaf, grad, targets, captured):
    """Hand a leaf its gradient: accumulate into ``.grad``, or capture it for ``grad``."""
    if function.hooks_in_use:
        hooks = _leaf_hooks.get(id(leaf))
        if hooks:
            grad = _run_hooks(hooks[1], grad, "a leaf tensor")
    if captured is not None:
        key = id(leaf)
        if key in captured:
            previous = captured[key]
            captured[key] = grad.copy() if previous is None else previous + grad
        return
    if targets is None or id(leaf) in targets:
        _accumulate(leaf, grad)


def _accumulate(leaf, grad):
    """Add `grad` into the leaf's ``.grad`` (``cnn.replay`` accumulates through here too)."""
    if leaf._grad is None:
        # A copy: ``grad`` may alias an array that an op or the caller still holds.
        leaf._grad = grad.astype(leaf._data.dtype, copy=True)
    else:
        leaf._grad += grad


def _needed(order, captured):
    """The nodes whose backward leads to a captured node or leaf (``order``: inputs first).

    A captured node's own backward runs only if more captures lie below it.
    """
    needed = set()
    for node in order:
        for input_ in node._inputs:
            if input_ is None:
                continue
            if input_.__class__ is Context:
                if input_ in captured or input_ in needed:
                    needed.add(node)
                    break
            elif id(input_) in captured:
                needed.add(node)
                break
    return needed


def _topological_order(roots):
    """Return the nodes reachable from ``roots``, each after all the nodes of its inputs.

    Iterative, so that graphs deeper than Python's recursion limit work.
    """
    order = []
    visited = set()
    for root in roots:
        if root in visited:
            continue
        visited.add(root)
        stack = [(root, iter(root._inputs))]
        while stack:
            node, inputs = stack[-1]
            for input_ in inputs:
                if input_.__class__ is Context and input_ not in visited:
                    visited.add(input_)
                    stack.append((input_, iter(input_._inputs)))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


# ***** checks *****

def _only_nones(extra_results):
    # Gradients for keyword-passed arguments (which have no inputs) may come back as None.
    return bool(extra_results) and all(result is None for result in extra_results)


def _root_gradient(tensor, gradient):
    data = tensor._data
    if gradient is None:
        if data.size != 1:
            raise ValueError("grad can be implicitly created only for scalar outputs; "
                             f"pass backward(gradient=...) for a tensor of shape {data.shape}")
        return np.ones(data.shape, data.dtype)
    grad = np.asarray(gradient._data if isinstance(gradient, function.Tensor) else gradient)
    if grad.dtype.kind not in "biuf":
        raise TypeError(f"backward: gradient must be a real number array, got dtype {grad.dtype}")
    if grad.shape != data.shape:
        raise ValueError(f"backward: gradient has shape {grad.shape}, expected the "
                         f"tensor's shape {data.shape}")
    return grad.astype(data.dtype, copy=False)


# Gradients of at least this many values are summed by the kernels' team (elementwise.add);
# smaller ones by NumPy, whose call costs less.
_SHARED_SUM = 1 << 16


def _sum(a, b):
    """a + b for two gradients of one input (the same shape and dtype, checked), out of place
    (the stored one may be a view some op still holds): large float arrays on the kernels'
    threads (NumPy adds on one core), with the same bits as NumPy's +."""
    if (a.size >= _SHARED_SUM and a.dtype in FLOAT_DTYPES and a.flags.c_contiguous
            and b.flags.c_contiguous):
        out = np.empty_like(a)
        _ext.backend.elementwise.add(a.reshape(-1), b.reshape(-1), out.reshape(-1),
                                     kernel_threads())
        return out
    return a + b


def _checked_gradient(grad, shape, dtype, node):
    """`grad` as an array of the input's `shape` and `dtype` (a float gradient is cast), or an
    error naming the node that returned it."""
    if type(grad) is not np.ndarray:
        grad = np.asarray(grad)
    if grad.shape != shape:
        raise ValueError(f"{node.name()} returned a gradient of shape {grad.shape} for an "
                         f"input of shape {shape}")
    if grad.dtype != dtype:
        if grad.dtype.kind != "f":
            raise TypeError(f"{node.name()} returned a gradient of dtype {grad.dtype} for an "
                            f"input of dtype {dtype}")
        grad = grad.astype(dtype)
    return grad


def _check_versions(node):
    """Raise PyTorch's error if an array `node` saved was overwritten in place since it ran.

    An argument whose memory was modified after the node was made (its version's epoch is
    later) matters only if the node saved an array sharing that memory; an output the node
    saved and that was modified is marked on the node by the in-place operation itself.
    """
    modified = node.__dict__.get("_modified_output")
    if modified is not None:
        raise RuntimeError(_modified_message(modified, f"which is the output of {node.name()}"))
    saved = [array for array in (node.saved_tensors or ()) if isinstance(array, np.ndarray)]
    for position, arg in enumerate(node._args):
        if not isinstance(arg, function.Tensor):
            continue
        version = (arg if arg._base is None else arg._base)._counter
        if version is None or version.epoch <= node._epoch:
            continue
        if any(np.may_share_memory(array, arg._data) and np.shares_memory(array, arg._data)
               for array in saved):
            raise RuntimeError(_modified_message(
                (arg._data, version.value), f"which is input {position} of {node.name()}"))


def _modified_message(modified, where):
    array, version = modified
    return (f"one of the variables needed for gradient computation has been modified by an "
            f"inplace operation: [cnn.{array.dtype.name} {list(array.shape)}], {where}, is at "
            f"version {version}, newer than when it was saved. Hint: make the in-place "
            "operation out of place (x = x + y instead of x += y), or clone() the tensor "
            "before modifying it.")


# ***** hooks on tensors *****

# {id(leaf): (weak reference to the leaf, {handle id: hook})}: leaves hold no hook table of
# their own, so that making a tensor costs nothing extra.
_leaf_hooks = {}


def register_leaf_hook(leaf, hook):
    """Register ``hook(grad)`` on a leaf tensor (see ``Tensor.register_hook``).

    Returns:
        A handle whose ``remove()`` unregisters the hook.
    """
    key = id(leaf)
    entry = _leaf_hooks.get(key)
    if entry is None or entry[0]() is not leaf:
        forget = lambda _, key=key: _leaf_hooks.pop(key, None)  # noqa: E731
        entry = _leaf_hooks[key] = (weakref.ref(leaf, forget), {})
    function.hooks_in_use = True
    handle = function._HookHandle(entry[1])
    entry[1][handle.id] = hook
    return handle


def _run_hooks(hooks, grad, owner):
    for hook in list(hooks.values()):
        result = hook(function.Tensor(grad))
        if result is None:
            continue
        replaced = np.asarray(result._data if isinstance(result, function.Tensor) else result)
        if replaced.shape != grad.shape:
            raise ValueError(f"hook on {owner}: returned a gradient of shape {replaced.shape}, "
                             f"expected {grad.shape}")
        grad = replaced.astype(grad.dtype, copy=False)
    return grad


# ***** arguments *****

def _first_order(create_graph):
    if create_graph:
        raise NotImplementedError(
            "create_graph=True: cnn computes first-order gradients only (its backward "
            "functions work on NumPy arrays and are not recorded), so higher-order "
            "derivatives such as gradient penalties are not supported")


def _tensor_list(value, name):
    if isinstance(value, function.Tensor):
        return [value]
    try:
        items = list(value)
    except TypeError:
        raise TypeError(f"{name}: expected a Tensor or a sequence of Tensors, got "
                        f"{type(value).__name__}") from None
    for position, item in enumerate(items):
        if not isinstance(item, function.Tensor):
            raise TypeError(f"{name}: element {position} is a {type(item).__name__}, not a "
                            "Tensor")
    if not items:
        raise ValueError(f"{name}: expected at least one Tensor")
    return items


def _gradient_list(value, count, name):
    if value is None:
        return [None] * count
    if isinstance(value, (function.Tensor, np.ndarray)):
        value = [value]
    value = list(value)
    if len(value) != count:
        raise ValueError(f"{name}: expected {count} gradients (one per tensor), got "
                         f"{len(value)}")
    return value


def _leaf_targets(inputs):
    leaves = _tensor_list(inputs, "inputs")
    for position, leaf in enumerate(leaves):
        if leaf._node is not None or not leaf._requires_grad:
            raise ValueError(f"inputs: element {position} is not a leaf tensor that requires "
                             "grad")
    return {id(leaf): leaf for leaf in leaves}
