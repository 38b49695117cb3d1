"""The ONNX graph under construction: names of values, initializers and nodes.

Values are named as they appear: the graph's inputs by the names the caller gives, the model's
parameters and buffers by their state-dict keys (``"features.0.weight"``), other constants
``"constant_<n>"``, and each node and its output ``"<OpType>_<n>"`` (``"Conv_0"``).
"""
import numpy as np
from onnx import helper, numpy_helper

from ..tensor import Tensor

__all__ = ["Graph", "onnx_type"]


def onnx_type(dtype):
    """The ONNX element type (``TensorProto.FLOAT``, ...) of a NumPy dtype."""
    return helper.np_dtype_to_tensor_dtype(np.dtype(dtype))


class Graph:
    """Nodes and initializers, and the name of every value a traced pass made.

    Args:
        opset (int): The opset version the nodes follow.
        names (dict): ``id`` of each parameter, its array and each buffer array, to its
            state-dict key.
    """

    def __init__(self, opset, names):
        self.opset = opset
        self.nodes = []
        self.initializers = []
        self._names = names
        self._values = {}  # id(Tensor or its array) -> name
        self._initialized = {}  # id(array) -> initializer name
        self._counts = {}
        self._alive = []  # what the ids above refer to, kept alive so that no id is reused

    # ----- values -----

    def bind(self, tensor, name):
        """Make `name` the value of `tensor` (an input, or a result of an op)."""
        self._values[id(tensor)] = name
        self._values.setdefault(id(tensor._data), name)  # Tensor(x._data), x.detach()
        self._alive.append(tensor)

    def value(self, obj, dtype=None):
        """The name of the value `obj` (a Tensor, an array or a number), of `dtype` if given.

        A Tensor or array that is neither bound nor a parameter or buffer becomes a constant
        (of `dtype`, converted now); a bound value or a parameter of another dtype is cast by a
        node.
        """
        if isinstance(obj, Tensor):
            name = self._values.get(id(obj)) or self._values.get(id(obj._data))
            if name is not None:
                return self._cast(name, obj._data.dtype, dtype)
            array = obj._data
        else:
            array = np.asarray(obj)
        key = self._names.get(id(obj)) or self._names.get(id(array))
        if key is None and dtype is not None:
            array = array.astype(dtype, copy=False)
        return self._cast(self._initializer(key, array), array.dtype, dtype)

    def _cast(self, name, have, want):
        if want is None or np.dtype(want) == have:
            return name
        return self.op("Cast", [name], to=onnx_type(want))

    def _initializer(self, name, array):
        known = self._initialized.get(id(array))
        if known is not None:
            return known
        name = name or self._fresh("constant")
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        self._initialized[id(array)] = name
        self._alive.append(array)
        return name

    def constant(self, values, dtype=np.int64):
        """A new constant (shapes, axes and the like)."""
        return self._initializer(None, np.asarray(values, dtype=dtype))

    # ----- nodes -----

    def op(self, op_type, inputs, outputs=1, **attributes):
        """Add a node; return its output's name (a tuple of names if `outputs` > 1)."""
        name = self._fresh(op_type)
        names = [name] if outputs == 1 else [f"{name}:{i}" for i in range(outputs)]
        attributes = {key: _plain(value) for key, value in attributes.items()
                      if value is not None}
        self.nodes.append(helper.make_node(op_type, list(inputs), names, name=name,
                                           **attributes))
        return names[0] if outputs == 1 else tuple(names)

    def _fresh(self, stem):
        count = self._counts.get(stem, 0)
        self._counts[stem] = count + 1
        return f"{stem}_{count}"

    def rename(self, old, new):
        """Give the value `old` (a node's output) the name `new` everywhere."""
        for node in self.nodes:
            for names in (node.input, node.output):
                for i, name in enumerate(names):
                    if name == old:
                        names[i] = new

    def produces(self, name):
        """Whether a node of the graph computes `name` (rather than an input or initializer)."""
        return any(name in node.output for node in self.nodes)


def _plain(value):
    # helper.make_node wants Python ints and floats, not NumPy scalars.
    if isinstance(value, (tuple, list)):
        return [_plain(item) for item in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value
