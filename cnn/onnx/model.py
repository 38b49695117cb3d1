"""A traced pass as an ONNX model: the nodes, then the inputs, outputs and their shapes."""
import onnx
from onnx import helper

from .graph import onnx_type
from .ops import convert

__all__ = ["build_model"]


def build_model(g, trace, input_names, output_names, dynamic_axes, producer):
    """The ONNX model of `trace` (a :class:`~cnn.onnx.trace.Trace`), built in `g`.

    Args:
        g (Graph): An empty graph of the chosen opset, knowing the model's parameter names.
        trace (Trace): The pass.
        input_names, output_names (list of str): One per input and output.
        dynamic_axes (dict): Name to ``{axis: dim name}`` for the dims that may change.
        producer (tuple): ``(name, version)`` of the exporter.

    Returns:
        onnx.ModelProto: Checked by ``onnx.checker`` with full shape inference.

    Raises:
        UnsupportedOperatorError: For an op without a converter.
        ValueError: If an output does not come from the inputs through traced ops.
    """
    for tensor, name in zip(trace.inputs, input_names):
        g.bind(tensor, name)
    for call in trace.calls:
        g.bind(call.out, convert(g, call))
    produced = set(trace.produced())
    for tensor, name in zip(trace.outputs, output_names):
        if id(tensor) not in produced and id(tensor._data) not in produced:
            raise ValueError(f"model: output {name!r} is not computed from the inputs by cnn's "
                             "ops (it went through .numpy(), argmax, a comparison or a new "
                             "Tensor), so the graph cannot compute it")
        value = g.value(tensor)
        if g.produces(value) and value not in output_names and value not in input_names:
            g.rename(value, name)
            g.bind(tensor, name)
        else:  # an input, or a value that is already another output
            g.rename(g.op("Identity", [value]), name)
    inputs = [_value_info(name, tensor, dynamic_axes.get(name, {}))
              for tensor, name in zip(trace.inputs, input_names)]
    # Output shapes come from ONNX's shape inference, which follows the dynamic dims through.
    outputs = [helper.make_tensor_value_info(name, onnx_type(tensor.dtype), None)
               for tensor, name in zip(trace.outputs, output_names)]
    graph = helper.make_graph(g.nodes, "cnn", inputs, outputs, g.initializers)
    opsets = [helper.make_opsetid("", g.opset)]
    model = helper.make_model(graph, opset_imports=opsets, producer_name=producer[0],
                              producer_version=producer[1])
    model.ir_version = helper.find_min_ir_version_for(opsets)
    model = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    for output, tensor in zip(model.graph.output, trace.outputs):
        _name_dims(output, tensor, dynamic_axes.get(output.name, {}))
    onnx.checker.check_model(model, full_check=True)
    return model


def _value_info(name, tensor, dynamic):
    shape = [dynamic.get(axis, size) for axis, size in enumerate(tensor.shape)]
    return helper.make_tensor_value_info(name, onnx_type(tensor.dtype), shape)


def _name_dims(output, tensor, dynamic):
    """Fill the dims inference left unknown with the traced sizes, and name the dynamic ones."""
    shape = output.type.tensor_type.shape
    if len(shape.dim) != tensor.ndim:
        output.type.tensor_type.ClearField("shape")
        shape = output.type.tensor_type.shape
        shape.dim.extend(onnx.TensorShapeProto.Dimension() for _ in range(tensor.ndim))
    for axis, dim in enumerate(shape.dim):
        if axis in dynamic:
            dim.dim_param = dynamic[axis]
        elif not dim.HasField("dim_value") and not dim.HasField("dim_param"):
            dim.dim_value = tensor.shape[axis]
