"""``cnn.onnx.export``: one traced forward pass of a model as an ONNX graph."""
import numbers
import os

import numpy as np

from ..nn.module import Module
from ..serialization.atomic import atomic_write
from ..tensor import Tensor, from_numpy
from ..version import __version__
from .trace import check_same_computation, trace

__all__ = ["export"]

DEFAULT_OPSET = 17
MIN_OPSET = 13


def export(model, args, f, export_params=True, verbose=False, input_names=None,
           output_names=None, opset_version=None, do_constant_folding=True,
           dynamic_axes=None):
    """Export `model` as an ONNX graph, by tracing one forward pass on `args`.

    As ``torch.onnx.export`` (its TorchScript exporter): the model runs once in eval mode
    (dropout off, batch norm on its running statistics; every module's mode is restored
    afterwards) and every op it runs becomes ONNX nodes, its parameters and buffers the graph's
    initializers (named by their state-dict keys). Python control flow is unrolled for these
    inputs. Exported: convolution (stride, padding, dilation, groups), max- and
    average-pooling, linear, ReLU, LeakyReLU, sigmoid, tanh, softmax, log-softmax, batch norm
    (eval), dropout (as identity), flatten and every reshape, and the Tensor ops ONNX has:
    ``+ - * / ** @``, negation, ``exp``, ``log``, casts, ``sum``/``mean``/``max`` over dims,
    ``permute``/``transpose``, indexing with integers, slices, None and ``...`` or one integer
    array. Any other op (a loss, ...) raises :class:`UnsupportedOperatorError` naming it.

    A second pass on another input checks that no value the graph would freeze depends on the
    input (a ``.numpy()`` round trip, ``argmax``, comparisons, Python control flow on values);
    such a model raises a ValueError instead of giving a graph that is right for one input only.

    Reshapes keep the leading dims they do not change (the batch) as the input's, so a batch
    dim named in `dynamic_axes` works for any size. Trace with a batch larger than 1 then, so
    that the batch dim cannot be mistaken for another dim of size 1.

    Args:
        model (Module): The model.
        args (Tensor, array or tuple of them): The example input(s) of ``model(*args)``.
        f (str, os.PathLike or binary file): Where to write the ``.onnx`` file (a path is
            written atomically).
        export_params (bool): Must be True: the weights are always stored in the graph.
        verbose (bool): Print the graph in ONNX's text form.
        input_names (list of str, optional): Names of the graph's inputs, in order (default
            ``"input"``, or ``"input_0"``, ``"input_1"``, ...; fewer names than inputs leave
            the rest to the defaults).
        output_names (list of str, optional): Names of its outputs (default ``"output"``, or
            ``"output_0"``, ...).
        opset_version (int, optional): The ONNX opset, from 13 to the newest the installed
            ``onnx`` knows (default 17).
        do_constant_folding (bool): Accepted for compatibility; the graph holds no constant
            subexpression to fold beyond the transposed weight of a Linear on 3-d or larger
            inputs, which runtimes fold.
        dynamic_axes (dict, optional): Input or output name to the axes whose size may change:
            ``{axis: "name"}`` or a list of axes (named ``"<input>_dynamic_axes_<i>"``), as
            ``{"input": {0: "batch"}, "output": {0: "batch"}}``. Other axes are fixed at the
            traced sizes.

    Returns:
        onnx.ModelProto: The exported model (also written to `f`), checked by
        ``onnx.checker`` with full shape inference.

    Raises:
        ImportError: If the ``onnx`` package is not installed.
        UnsupportedOperatorError: For an op export does not know; the message names it.
        TypeError, ValueError: For invalid arguments, naming them, or a forward pass whose
            constants change with the input.

    Example::

        cnn.onnx.export(model, cnn.randn(8, 1, 28, 28), "lenet.onnx",
                        input_names=["images"], output_names=["logits"],
                        dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})
    """
    onnx = _require_onnx()
    from .graph import Graph  # these need onnx
    from .model import build_model

    if not isinstance(model, Module):
        raise TypeError(f"model: expected a cnn.nn.Module, got {type(model).__name__}")
    inputs = _inputs(args)
    _check_target(f)
    opset = _opset(opset_version, onnx)
    _flags(export_params, verbose, do_constant_folding)
    names = _known_names(model)
    first = trace(model, inputs)
    second = trace(model, _other_inputs(inputs))
    check_same_computation(first, second, set(names))
    input_names = _names(input_names, len(inputs), "input_names", "input")
    output_names = _names(output_names, len(first.outputs), "output_names", "output")
    for name in output_names:
        if name in input_names:
            raise ValueError(f"output_names: {name!r} is also an input name")
    axes = _dynamic_axes(dynamic_axes, dict(zip(input_names, inputs)),
                         dict(zip(output_names, first.outputs)))
    model_proto = build_model(Graph(opset, names), first, input_names, output_names, axes,
                              producer=("cnn", __version__))
    if verbose:
        print(onnx.helper.printable_graph(model_proto.graph))
    data = model_proto.SerializeToString()
    if hasattr(f, "write"):
        f.write(data)
    else:
        with atomic_write(f) as file:
            file.write(data)
    return model_proto


def _require_onnx():
    try:
        import onnx
    except ImportError as error:
        raise ImportError("cnn.onnx.export needs the onnx package: pip install 'cnn[onnx]' "
                          "(or pip install onnx)") from error
    return onnx


def _inputs(args):
    items = args if isinstance(args, tuple) else (args,)
    if not items:
        raise ValueError("args: expected at least one example input, got an empty tuple")
    inputs = []
    for i, item in enumerate(items):
        if isinstance(item, np.ndarray):
            item = from_numpy(item)
        if not isinstance(item, Tensor):
            raise TypeError(f"args: expected Tensors or NumPy arrays as example inputs, got "
                            f"{type(item).__name__} at position {i}")
        inputs.append(item)
    return tuple(inputs)


def _opset(opset_version, onnx):
    newest = onnx.defs.onnx_opset_version()
    if opset_version is None:
        return DEFAULT_OPSET
    if not isinstance(opset_version, numbers.Integral) or isinstance(opset_version, bool):
        raise TypeError(f"opset_version: expected an integer, got {opset_version!r}")
    if not MIN_OPSET <= opset_version <= newest:
        raise ValueError(f"opset_version: expected {MIN_OPSET} to {newest} (the newest the "
                         f"installed onnx knows), got {opset_version}")
    return int(opset_version)


def _flags(export_params, verbose, do_constant_folding):
    for name, value in (("export_params", export_params), ("verbose", verbose),
                        ("do_constant_folding", do_constant_folding)):
        if not isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name}: expected True or False, got {value!r}")
    if not export_params:
        raise ValueError("export_params: cnn always stores the parameters in the graph; "
                         "export_params=False is not supported")


def _known_names(model):
    """id of every parameter (and its array) and buffer array -> its state-dict key."""
    names = {}
    for name, parameter in model.named_parameters():
        names[id(parameter)] = names[id(parameter._data)] = name
    for name, buffer in model.named_buffers():
        names[id(buffer)] = name
    return names


def _other_inputs(inputs):
    """The inputs moved by noise (floats only), for the second pass of the constants check."""
    rng = np.random.default_rng(0)
    return tuple(Tensor(x._data + rng.standard_normal(x.shape).astype(x.dtype))
                 if x._data.dtype.kind == "f" else x for x in inputs)


def _names(names, count, argument, stem):
    defaults = [stem] if count == 1 else [f"{stem}_{i}" for i in range(count)]
    if names is None:
        return defaults
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) and n
                                                       for n in names):
        raise TypeError(f"{argument}: expected a list of non-empty strings, got {names!r}")
    if len(names) > count:
        raise ValueError(f"{argument}: {len(names)} names for {count} {stem}s")
    result = list(names) + defaults[len(names):]
    if len(set(result)) != len(result):
        raise ValueError(f"{argument}: names must be unique, got {result}")
    return result


def _dynamic_axes(dynamic_axes, inputs, outputs):
    """{name: {axis: dim name}} for the inputs and outputs that have dynamic axes."""
    if dynamic_axes is None:
        return {}
    if not isinstance(dynamic_axes, dict):
        raise TypeError(f"dynamic_axes: expected a dict of input or output names to axes, got "
                        f"{type(dynamic_axes).__name__}")
    shapes = {name: tensor.shape for name, tensor in {**inputs, **outputs}.items()}
    result = {}
    for name, axes in dynamic_axes.items():
        if name not in shapes:
            raise ValueError(f"dynamic_axes: {name!r} is neither an input nor an output name "
                             f"(they are {list(shapes)})")
        if isinstance(axes, (list, tuple)):
            axes = {axis: f"{name}_dynamic_axes_{i + 1}" for i, axis in enumerate(axes)}
        if not isinstance(axes, dict):
            raise TypeError(f"dynamic_axes[{name!r}]: expected a dict of axes to names or a "
                            f"list of axes, got {type(axes).__name__}")
        ndim = len(shapes[name])
        for axis, dim in axes.items():
            if isinstance(axis, bool) or not isinstance(axis, numbers.Integral) or not (
                    -ndim <= axis < ndim):
                raise ValueError(f"dynamic_axes[{name!r}]: axis {axis!r} is not an axis of a "
                                 f"{ndim}-d value")
            if not isinstance(dim, str) or not dim:
                raise TypeError(f"dynamic_axes[{name!r}][{axis}]: expected a dim name, got "
                                f"{dim!r}")
        result[name] = {int(axis) % ndim: dim for axis, dim in axes.items()}
    return result


def _check_target(f):
    if hasattr(f, "write"):
        return
    try:
        os.fspath(f)
    except TypeError:
        raise TypeError(f"f: expected a path or a binary file, got {type(f).__name__}") from None
