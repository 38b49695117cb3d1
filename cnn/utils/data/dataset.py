"""Datasets, as ``torch.utils.data``: the map-style and iterable interfaces, in-memory arrays,
subsets, concatenations and random splits.

A map-style dataset maps an integer index to one sample. Datasets that can also take an array
of indices (or a slice) and return the whole batch at once set ``supports_batch_indexing =
True``; :class:`~cnn.utils.data.DataLoader` then fetches each batch with one NumPy fancy index
per array instead of one Python call per sample (the batch must equal what collating the
samples one by one would give).
"""
import bisect
import math
import numbers
import operator
import warnings

import numpy as np

from ... import random as _random
from .sampler import numpy_generator

__all__ = ["Dataset", "IterableDataset", "TensorDataset", "Subset", "ConcatDataset",
           "ChainDataset", "random_split"]


class Dataset:
    """A map-style dataset: ``dataset[i]`` is the i-th sample, as ``torch.utils.data.Dataset``.

    Subclasses implement ``__getitem__`` and usually ``__len__`` (the default samplers need
    it). ``dataset_a + dataset_b`` is their :class:`ConcatDataset`.

    Attributes:
        supports_batch_indexing (bool): True when ``dataset[indices]``, with ``indices`` a 1-d
            integer array, returns the batch already collated: a tuple (or list) of arrays whose
            first dimension is ``len(indices)``, equal to collating the samples one by one
            (before they become Tensors). The loader then skips per-sample calls and
            collation. False here; subclasses that honour the contract set it to True.
    """

    supports_batch_indexing = False

    def __getitem__(self, index):
        raise NotImplementedError(f"{type(self).__name__} must implement __getitem__")

    def __add__(self, other):
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: ``iter(dataset)`` yields the samples, as
    ``torch.utils.data.IterableDataset``.

    With ``num_workers > 0`` every worker process iterates its own copy of the dataset; to
    split the stream rather than repeat it, read :func:`~cnn.utils.data.get_worker_info` in
    ``__iter__`` (its ``id`` and ``num_workers``). ``a + b`` is their :class:`ChainDataset`.
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")

    def __add__(self, other):
        return ChainDataset([self, other])


class TensorDataset(Dataset):
    """Samples are the rows of arrays that share their first dimension.

    ``TensorDataset(images, labels)[i]`` is ``(images[i], labels[i])``. Integer arrays, slices
    and boolean masks index every array at once, so ``dataset[[3, 1, 4]]`` is
    ``(images[[3, 1, 4]], labels[[3, 1, 4]])``: a whole batch in one fancy index per array.

    Args:
        *tensors: NumPy arrays, ``cnn.Tensor`` s (their arrays are used, not copied) or
            array-likes, each with at least one dimension and all of the same length.

    Attributes:
        tensors (tuple of numpy.ndarray): The arrays, as given (no copies).

    Raises:
        ValueError: If no array is given, an array is 0-dimensional, or the first dimensions
            differ (the message lists every size).
    """

    supports_batch_indexing = True

    def __init__(self, *tensors):
        if not tensors:
            raise ValueError("tensors: expected at least one array, got none")
        # np.asarray reads a cnn.Tensor through __array__ without copying its data.
        arrays = tuple(np.asarray(t) for t in tensors)
        for position, array in enumerate(arrays):
            if array.ndim == 0:
                raise ValueError(f"tensors: argument {position} is 0-dimensional; every array "
                                 "needs a first dimension to index samples along")
        sizes = [len(array) for array in arrays]
        if len(set(sizes)) > 1:
            raise ValueError("tensors: all arrays must have the same first dimension, got sizes "
                             + ", ".join(map(str, sizes)))
        self.tensors = arrays

    def __getitem__(self, index):
        """Return ``tuple(array[index] for array in self.tensors)``.

        Args:
            index: An integer, a slice, or an integer/boolean array of indices.

        Returns:
            tuple: One item (or batch, for array and slice indices) per array.
        """
        return tuple(array[index] for array in self.tensors)

    def __len__(self):
        """Return the common first dimension of the arrays."""
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples of `dataset` at `indices`, in that order, as ``torch.utils.data.Subset``.

    ``subset[i]`` is ``dataset[indices[i]]``; a batch index (an array or list) is mapped as a
    whole, so a subset of a batch-indexable dataset is batch-indexable too.

    Args:
        dataset: A map-style dataset.
        indices: A sequence of integer indices into `dataset`.

    Attributes:
        dataset, indices: As given (`indices` as a list of ints).

    Raises:
        TypeError: If `indices` is not a sequence of integers.
    """

    def __init__(self, dataset, indices):
        self.dataset = dataset
        try:
            self.indices = [operator.index(i) for i in indices]
        except TypeError:
            raise TypeError("indices: expected a sequence of integers, got "
                            f"{type(indices).__name__}") from None

    @property
    def supports_batch_indexing(self):
        return getattr(self.dataset, "supports_batch_indexing", False)

    def __getitem__(self, index):
        if isinstance(index, (list, np.ndarray)):
            return self.dataset[np.asarray(self.indices, dtype=np.intp)[np.asarray(index)]]
        return self.dataset[self.indices[index]]

    def __len__(self):
        return len(self.indices)


class ConcatDataset(Dataset):
    """Map-style datasets one after the other, as ``torch.utils.data.ConcatDataset``.

    Args:
        datasets: A non-empty iterable of map-style datasets (with ``__len__``).

    Attributes:
        datasets (list), cumulative_sizes (list of int): The datasets, and the running totals
            of their lengths.

    Raises:
        ValueError: If `datasets` is empty.
        TypeError: If one of them is an :class:`IterableDataset`.
    """

    def __init__(self, datasets):
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets: expected at least one dataset, got none")
        for dataset in self.datasets:
            if isinstance(dataset, IterableDataset):
                raise TypeError("datasets: ConcatDataset does not support IterableDataset "
                                "(use ChainDataset)")
        self.cumulative_sizes = np.cumsum([len(d) for d in self.datasets]).tolist()

    def __len__(self):
        return self.cumulative_sizes[-1]

    def __getitem__(self, index):
        index = operator.index(index)
        if index < 0:
            if -index > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            index += len(self)
        which = bisect.bisect_right(self.cumulative_sizes, index)
        if which == len(self.datasets):
            raise IndexError(f"index {index} is out of range for a ConcatDataset of "
                             f"{len(self)} samples")
        start = self.cumulative_sizes[which - 1] if which else 0
        return self.datasets[which][index - start]


class ChainDataset(IterableDataset):
    """Iterable datasets read one after the other, as ``torch.utils.data.ChainDataset``.

    Args:
        datasets: An iterable of iterable datasets.
    """

    def __init__(self, datasets):
        self.datasets = datasets

    def __iter__(self):
        for dataset in self.datasets:
            yield from dataset

    def __len__(self):
        return sum(len(dataset) for dataset in self.datasets)


def random_split(dataset, lengths, generator=None):
    """Split `dataset` into non-overlapping random :class:`Subset` s, as
    ``torch.utils.data.random_split``.

    `lengths` are either the subsets' sizes (summing to ``len(dataset)``) or fractions summing
    to 1: then each size is ``floor(len(dataset) * fraction)`` and the samples left over are
    given one each to the first subsets, round-robin (PyTorch's rule).

    Args:
        dataset: A map-style dataset with ``__len__``.
        lengths: A sequence of non-negative integers, or of fractions in [0, 1].
        generator (numpy.random.Generator, optional): The source of the permutation; ``cnn``'s
            default generator (``cnn.manual_seed``) when None.

    Returns:
        list of Subset: One per length.

    Raises:
        ValueError: If the sizes do not sum to the dataset's length, or the fractions to 1.
        TypeError: If `lengths` holds something else than numbers.
    """
    total = len(dataset)
    lengths = list(lengths)
    if any(isinstance(x, bool) or not isinstance(x, numbers.Real) for x in lengths):
        raise TypeError(f"lengths: expected integers or fractions, got {lengths!r}")
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        sizes = []
        for position, fraction in enumerate(lengths):
            if not 0 <= fraction <= 1:
                raise ValueError(f"lengths: fraction at index {position} is not between 0 and "
                                 f"1, got {fraction}")
            sizes.append(int(math.floor(total * fraction)))
        for position in range(total - sum(sizes)):
            sizes[position % len(sizes)] += 1
        for position, size in enumerate(sizes):
            if size == 0:
                warnings.warn(f"Length of split at index {position} is 0. This might result in "
                              "an empty dataset.")
        lengths = sizes
    if any(not isinstance(x, numbers.Integral) or x < 0 for x in lengths):
        raise ValueError(f"lengths: expected non-negative integers or fractions summing to 1, "
                         f"got {lengths!r}")
    if sum(lengths) != total:
        raise ValueError("Sum of input lengths does not equal the length of the input dataset! "
                         f"(lengths {lengths} sum to {sum(lengths)}, the dataset has {total})")
    generator = numpy_generator(generator, "generator") or _random.default_generator()
    order = generator.permutation(total).tolist()
    subsets, start = [], 0
    for length in lengths:
        subsets.append(Subset(dataset, order[start:start + int(length)]))
        start += int(length)
    return subsets
