"""Utilities below and beside the layers, at PyTorch's dotted paths.

* :mod:`cnn.utils.hooks`: :class:`~cnn.utils.hooks.RemovableHandle`, what registering a module
  hook returns (``torch.utils.hooks``).
* :mod:`cnn.utils.data`: datasets, samplers and the ``DataLoader`` (``torch.utils.data``;
  also importable as ``cnn.data``).

The data room is not imported here: ``cnn.nn`` uses the hooks, and must not pull the data
pipeline in with them.
"""
from . import hooks

__all__ = ["hooks"]
