"""Datasets: the map-style ``Dataset`` interface and ``TensorDataset`` over in-memory arrays.

A dataset maps an integer index to one sample. Datasets that can also take an array of indices
(or a slice) and return the whole batch at once set ``supports_batch_indexing = True``;
:class:`~cnn.utils.data.DataLoader` then fetches each batch with one NumPy fancy index per array
instead of one Python call per sample.
"""
import abc

import numpy as np


class Dataset(abc.ABC):
    """A map-style dataset: ``len(dataset)`` samples, ``dataset[i]`` is the i-th one.

    Subclasses implement ``__getitem__`` and ``__len__``, as with ``torch.utils.data.Dataset``.

    Attributes:
        supports_batch_indexing (bool): True when ``dataset[indices]``, with ``indices`` a 1-d
            integer array, returns the batch already collated (a tuple of arrays whose first
            dimension is ``len(indices)``). The loader then skips per-sample calls and
            collation. False here; subclasses that honour the contract set it to True.
    """

    supports_batch_indexing = False

    @abc.abstractmethod
    def __getitem__(self, index):
        """Return the sample at ``index``."""

    @abc.abstractmethod
    def __len__(self):
        """Return the number of samples."""


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
