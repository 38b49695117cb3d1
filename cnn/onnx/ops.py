"""What each op of a traced pass becomes in ONNX.

One converter per Function: ``converter(g, out, **arguments)`` receives the graph
(:class:`~cnn.onnx.graph.Graph`), the op's result Tensor (its shape and dtype) and the
arguments of the Function's ``forward`` by name, adds the nodes, and returns the name of the
value that holds the result. Shapes that depend on the batch are left to the runtime (a
reshape keeps the leading dims it does not change, and a squeeze or unsqueeze is one), so the
graph stays valid for other batch sizes.
"""
import numpy as np

from ..autograd import ops as tensor_ops
from ..nn.functional import activation, conv, normalization, pooling
from ..nn.functional.dropout import Dropout
from ..nn.functional.linear import Linear
from ..tensor import Tensor
from .errors import UnsupportedOperatorError

__all__ = ["CONVERTERS", "convert"]

CONVERTERS = {}
_INT64_MAX = np.iinfo(np.int64).max
_INT64_MIN = np.iinfo(np.int64).min


def converts(*functions):
    """Register the decorated converter for `functions`."""
    def register(converter):
        for function in functions:
            CONVERTERS[function] = converter
        return converter
    return register


def convert(g, call):
    """Add the nodes of one traced op to `g`; return the name of its result.

    Raises:
        UnsupportedOperatorError: If ONNX export does not know the op.
    """
    converter = CONVERTERS.get(call.function)
    if converter is None:
        raise UnsupportedOperatorError(
            f"cannot export op {call.name} ({call.function.__module__}.{call.name}) to ONNX: "
            f"export supports {supported()}")
    return converter(g, call.out, **call.arguments())


def supported():
    """The names of the ops export knows, for error messages."""
    return ", ".join(sorted(function.__name__ for function in CONVERTERS))


# ***** convolution and pooling *****

def _pads(padding):
    """ONNX's pads (begin of each axis, then end of each axis) for symmetric 2-d padding."""
    return list(padding) + list(padding)


def _conv(g, x, weight, bias, plan):
    inputs = [g.value(x), g.value(weight)] + ([] if bias is None else [g.value(bias)])
    return g.op("Conv", inputs, kernel_shape=weight.shape[2:], strides=plan.stride,
                pads=_pads(plan.padding), dilations=plan.dilation, group=plan.groups)


@converts(conv.Conv2d)
def conv2d(g, out, x, weight, bias, plan, batch_norm=(), relu=False):
    # A traced forward runs each op as written: only cnn.compile folds a batch norm into a
    # convolution, and export does not trace through it.
    if batch_norm:
        raise UnsupportedOperatorError("cannot export a Conv2d with a folded batch norm "
                                       "(cnn.compile's): export the model itself")
    convolved = _conv(g, x, weight, bias, plan)
    return g.op("Relu", [convolved]) if relu else convolved


@converts(conv.ConvReLUMaxPool2d)
def conv_relu_max_pool2d(g, out, x, weight, bias, plan):
    relu = g.op("Relu", [_conv(g, x, weight, bias, plan)])
    return g.op("MaxPool", [relu], kernel_shape=(2, 2), strides=(2, 2))


def _ceil_mode(x, geometry):
    """1 if the pooled size is the rounded-up one (PyTorch's ceil_mode made a difference)."""
    kernel, stride, padding, dilation, out = geometry
    floor = tuple((size + 2 * p - d * (k - 1) - 1) // s + 1 for size, k, s, p, d in
                  zip(x.shape[-2:], kernel, stride, padding, dilation))
    return int(tuple(out) != floor)


@converts(pooling.MaxPool2d)
def max_pool2d(g, out, x, geometry):
    kernel, stride, padding, dilation, _ = geometry
    return g.op("MaxPool", [g.value(x)], kernel_shape=kernel, strides=stride,
                pads=_pads(padding), dilations=dilation, ceil_mode=_ceil_mode(x, geometry))


@converts(pooling.AvgPool2d)
def avg_pool2d(g, out, x, geometry, count_include_pad):
    kernel, stride, padding, _, _ = geometry
    return g.op("AveragePool", [g.value(x)], kernel_shape=kernel, strides=stride,
                pads=_pads(padding), ceil_mode=_ceil_mode(x, geometry),
                count_include_pad=int(count_include_pad))


# ***** layers *****

@converts(Linear)
def linear_(g, out, x, weight, bias, relu=False):
    if x.ndim == 2:
        inputs = [g.value(x), g.value(weight)] + ([] if bias is None else [g.value(bias)])
        result = g.op("Gemm", inputs, transB=1)
    else:
        product = g.op("MatMul", [g.value(x), g.op("Transpose", [g.value(weight)],
                                                   perm=(1, 0))])
        result = product if bias is None else g.op("Add", [product, g.value(bias)])
    return g.op("Relu", [result]) if relu else result


@converts(normalization.BatchNorm)
def batch_norm(g, out, x, running_mean, running_var, weight, bias, training, momentum, eps,
               num_batches_tracked=None, relu=False):
    if training:
        raise UnsupportedOperatorError(
            "cannot export op BatchNorm in training mode (batch statistics) to ONNX: export "
            "runs the model in eval mode; call F.batch_norm with training=False")
    channels, dtype = x.shape[1], x.dtype
    scale = g.constant(np.ones(channels), dtype) if weight is None else g.value(weight)
    shift = g.constant(np.zeros(channels), dtype) if bias is None else g.value(bias)
    normalized = g.op("BatchNormalization", [g.value(x), scale, shift, g.value(running_mean),
                                             g.value(running_var)], epsilon=eps)
    return g.op("Relu", [normalized]) if relu else normalized


@converts(Dropout)
def dropout(g, out, x, p):
    # Only F.dropout(..., training=True) runs it in eval mode: deployed, it is the identity.
    return g.op("Identity", [g.value(x)])


@converts(activation.LeakyReLU)
def leaky_relu(g, out, x, negative_slope):
    return g.op("LeakyRelu", [g.value(x)], alpha=float(negative_slope))


@converts(activation.Softmax)
def softmax(g, out, x, dim):
    return g.op("Softmax", [g.value(x)], axis=dim)


@converts(activation.LogSoftmax)
def log_softmax(g, out, x, dim):
    return g.op("LogSoftmax", [g.value(x)], axis=dim)


# ***** the Tensor's own ops *****

def _elementwise(op_type):
    """The converter of an op that is one ONNX node of the same operands."""
    def converter(g, out, **operands):
        # NumPy promotes mixed operands (a float32 tensor and an int array); ONNX wants every
        # operand of the result's type.
        return g.op(op_type, [g.value(operand, out.dtype) for operand in operands.values()])
    return converter


for _function, _op_type in (
        (activation.ReLU, "Relu"), (activation.Sigmoid, "Sigmoid"), (activation.Tanh, "Tanh"),
        (tensor_ops.Neg, "Neg"), (tensor_ops.Exp, "Exp"), (tensor_ops.Log, "Log"),
        (tensor_ops.Add, "Add"), (tensor_ops.Sub, "Sub"), (tensor_ops.Mul, "Mul"),
        (tensor_ops.Div, "Div"), (tensor_ops.Pow, "Pow"), (tensor_ops.MatMul, "MatMul")):
    CONVERTERS[_function] = _elementwise(_op_type)


@converts(activation.AddReLU)
def add_relu(g, out, a, b):
    return g.op("Relu", [g.op("Add", [g.value(a), g.value(b)])])


@converts(tensor_ops.Cast)
def cast(g, out, x, dtype):
    return g.value(x, out.dtype)


def _axes(dim, ndim):
    return list(range(ndim)) if dim is None else [dim] if isinstance(dim, int) else list(dim)


def _reduce(g, op_type, x, dim, keepdim, axes_as_input_since):
    axes = _axes(dim, x.ndim)
    if g.opset >= axes_as_input_since:
        return g.op(op_type, [g.value(x), g.constant(axes)], keepdims=int(keepdim))
    return g.op(op_type, [g.value(x)], axes=axes, keepdims=int(keepdim))


@converts(tensor_ops.Sum)
def sum_(g, out, x, dim, keepdim):
    return _reduce(g, "ReduceSum", x, dim, keepdim, 13)


@converts(tensor_ops.Mean)
def mean(g, out, x, dim, keepdim):
    return _reduce(g, "ReduceMean", x, dim, keepdim, 18)


@converts(tensor_ops.Max)
def max_(g, out, x, dim, keepdim):
    return _reduce(g, "ReduceMax", x, dim, keepdim, 18)


@converts(tensor_ops.Permute)
def permute(g, out, x, dims):
    return g.op("Transpose", [g.value(x)], perm=dims)


# ***** shapes *****

@converts(tensor_ops.Reshape)
def reshape(g, out, x, shape):
    before, after = x.shape, out.shape
    inserted = _inserted_ones(before, after)
    if inserted is not None:
        return g.op("Unsqueeze", [g.value(x), g.constant(inserted)])
    removed = _inserted_ones(after, before)
    if removed is not None:
        return g.op("Squeeze", [g.value(x), g.constant(removed)])
    # Dims the reshape keeps at the front (the batch) are copied from the input at run time
    # (0 in ONNX); when it changes the first dim, the first dim is inferred (-1).
    kept = 0
    while kept < min(len(before), len(after)) and before[kept] == after[kept]:
        kept += 1
    target = [0] * kept + list(after[kept:])
    if kept == 0 and target:
        target[0] = -1
    return g.op("Reshape", [g.value(x), g.constant(target)])


def _inserted_ones(short, long):
    """The positions of the 1s that inserted into `short` give `long`, or None."""
    if len(long) <= len(short):
        return None
    positions, i = [], 0
    for position, size in enumerate(long):
        if i < len(short) and short[i] == size:
            i += 1
        elif size == 1:
            positions.append(position)
        else:
            return None
    return positions if i == len(short) else None


@converts(tensor_ops.GetItem)
def get_item(g, out, x, index):
    items = index if isinstance(index, tuple) else (index,)
    source = g.value(x)
    if len(items) == 1 and _is_array(items[0]):
        # t[indices]: rows picked by an integer array or Tensor, which may be computed.
        return g.op("Gather", [source, g.value(_integer_array(items[0]), np.int64)], axis=0)
    sliced, squeezed, inserted = [], [], []  # (axis, start, end, step); input axes; outputs
    axis = position = 0
    for item in _expand_ellipsis(items, x.ndim):
        if item is None:
            inserted.append(position)
            position += 1
            continue
        if isinstance(item, slice):
            bounds = _slice_bounds(item)
            if bounds != (0, _INT64_MAX, 1):
                sliced.append((axis, *bounds))
            position += 1
        else:
            item = int(item)
            sliced.append((axis, item, item + 1 if item != -1 else _INT64_MAX, 1))
            squeezed.append(axis)
        axis += 1
    value = source
    if sliced:
        axes, starts, ends, steps = zip(*sliced)
        value = g.op("Slice", [value, g.constant(starts), g.constant(ends), g.constant(axes),
                               g.constant(steps)])
    if squeezed:
        value = g.op("Squeeze", [value, g.constant(squeezed)])
    if inserted:
        value = g.op("Unsqueeze", [value, g.constant(inserted)])
    return value if value != source else g.op("Identity", [value])


def _is_array(item):
    return not isinstance(item, (int, np.integer, slice, type(None), type(Ellipsis)))


def _integer_array(item):
    array = item._data if isinstance(item, Tensor) else np.asarray(item)
    if array.dtype.kind not in "iu":
        raise UnsupportedOperatorError(
            f"cannot export op GetItem with an index of dtype {array.dtype} to ONNX: export "
            "supports integers, slices, None and ..., or one integer array alone")
    return item


def _expand_ellipsis(items, ndim):
    if any(_is_array(item) or isinstance(item, (bool, np.bool_)) for item in items):
        raise UnsupportedOperatorError(
            f"cannot export op GetItem with the index {items!r} to ONNX: export supports "
            "integers, slices, None and ..., or one integer array alone")
    if Ellipsis not in items:
        return items
    at = items.index(Ellipsis)
    used = sum(item is not None for item in items if item is not Ellipsis)
    return items[:at] + (slice(None),) * (ndim - used) + items[at + 1:]


def _slice_bounds(item):
    step = 1 if item.step is None else int(item.step)
    start = item.start if item.start is not None else (0 if step > 0 else _INT64_MAX)
    end = item.stop if item.stop is not None else (_INT64_MAX if step > 0 else _INT64_MIN)
    return int(start), int(end), step

