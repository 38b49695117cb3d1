"""ONNX export: ``cnn.onnx.export(model, args, "model.onnx", ...)``, as ``torch.onnx.export``.

The graph is built with the ``onnx`` package, an optional extra (``pip install 'cnn[onnx]'``);
``import cnn`` does not need it. See :func:`export`.
"""
from .errors import UnsupportedOperatorError
from .exporter import DEFAULT_OPSET, export

__all__ = ["export", "UnsupportedOperatorError", "DEFAULT_OPSET"]
