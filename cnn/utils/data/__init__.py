"""Datasets, samplers and batch loading, as ``torch.utils.data`` (also ``cnn.data``).

:class:`Dataset` and :class:`IterableDataset` are the two dataset interfaces;
:class:`TensorDataset`, :class:`Subset`, :class:`ConcatDataset`, :class:`ChainDataset` and
:func:`random_split` build datasets from others; the samplers choose the order;
:class:`DataLoader` yields (optionally shuffled) batches of Tensors, loaded in the iterating
process or in worker processes (:func:`get_worker_info`); :class:`DistributedLoader` gives
each rank of a data-parallel job its shard of every batch.
"""
from .collate import default_collate, default_convert
from .dataset import (ChainDataset, ConcatDataset, Dataset, IterableDataset, Subset,
                      TensorDataset, random_split)
from .distributed import DistributedLoader
from .loader import DataLoader
from .sampler import (BatchSampler, RandomSampler, Sampler, SequentialSampler,
                      SubsetRandomSampler, WeightedRandomSampler)
from .worker import WorkerInfo, get_worker_info

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "ChainDataset", "random_split", "Sampler", "SequentialSampler", "RandomSampler",
           "SubsetRandomSampler", "WeightedRandomSampler", "BatchSampler", "default_collate",
           "default_convert", "DataLoader", "DistributedLoader", "get_worker_info", "WorkerInfo"]
