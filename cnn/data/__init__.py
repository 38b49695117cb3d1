"""Datasets and batch loading, as ``torch.utils.data``.

:class:`Dataset` is the map-style interface, :class:`TensorDataset` wraps in-memory arrays and
:class:`DataLoader` yields (optionally shuffled) batches as NumPy arrays or ``cnn.Tensor`` s.
"""
from .dataset import Dataset, TensorDataset
from .loader import DataLoader, default_collate

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate"]
