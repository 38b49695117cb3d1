"""Datasets, samplers and batch loading, as ``torch.utils.data`` (also ``cnn.data``).

:class:`Dataset` is the map-style interface, :class:`TensorDataset` wraps in-memory arrays,
the samplers choose the order, :class:`DataLoader` yields (optionally shuffled) batches as NumPy
arrays or ``cnn.Tensor`` s, and :class:`DistributedLoader` gives each rank of a data-parallel
job its shard of every batch.
"""
from .dataset import Dataset, TensorDataset
from .distributed import DistributedLoader
from .loader import DataLoader, default_collate
from .sampler import BatchSampler, RandomSampler, Sampler, SequentialSampler

__all__ = ["Dataset", "TensorDataset", "DataLoader", "default_collate", "DistributedLoader",
           "Sampler", "SequentialSampler", "RandomSampler", "BatchSampler"]
