"""The error an op without an ONNX equivalent raises."""

__all__ = ["UnsupportedOperatorError"]


class UnsupportedOperatorError(RuntimeError):
    """An op of the traced forward pass that ONNX export cannot express; the message names it.

    A RuntimeError, as ``torch.onnx.errors.UnsupportedOperatorError``.
    """
