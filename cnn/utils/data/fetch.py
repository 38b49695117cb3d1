"""Fetching one batch from a dataset: the same code in the iterating process and in workers.

A fetcher's ``fetch(task)`` returns a batch as NumPy arrays (or whatever a custom
``collate_fn`` returns); the loader turns the default collation's arrays into Tensors last.
"""
import numpy as np

from .collate import collate_arrays


def collate_function(collate_fn, auto_collation):
    """What merges the fetched samples: `collate_fn`, else the array form of the default
    (``default_collate`` with batching, nothing but a tuple-to-list change without)."""
    if collate_fn is not None:
        return collate_fn
    return collate_arrays if auto_collation else _as_converted


def _as_converted(sample):
    # default_convert's container rule (tuples become lists); its Tensors come at the end.
    if isinstance(sample, tuple) and not hasattr(sample, "_fields"):
        return list(sample)
    return sample


class MapFetcher:
    """Batches of a map-style dataset, from a list of indices (or one index without batching).

    Args:
        dataset: A map-style dataset.
        auto_collation (bool): Tasks are lists of indices to collate (a batch sampler), rather
            than single indices (``batch_size=None``).
        collate_fn: The user's collate function, or None for the default.
    """

    def __init__(self, dataset, auto_collation, collate_fn):
        self.dataset = dataset
        self.auto_collation = auto_collation
        self.collate = collate_function(collate_fn, auto_collation)
        # The whole batch in one index, when the dataset can and no user collate_fn expects
        # a list of samples.
        self.batch_indexing = (auto_collation and collate_fn is None
                               and getattr(dataset, "supports_batch_indexing", False))

    def fetch(self, indices):
        """The batch of the samples at `indices` (a list of ints, or one index)."""
        if not self.auto_collation:
            return self.collate(self.dataset[indices])
        if self.batch_indexing:
            batch = self.dataset[np.asarray(indices, dtype=np.intp)]
            # The container default_collate would give for tuple samples.
            return list(batch) if type(batch) is tuple else batch
        # Python ints, so that datasets that only accept int indices work.
        if isinstance(indices, np.ndarray):
            indices = indices.tolist()
        return self.collate([self.dataset[i] for i in indices])


class IterableFetcher:
    """Batches read from an iterable dataset's iterator.

    Args:
        dataset: An iterable dataset (``iter(dataset)`` is taken now).
        auto_collation (bool): Collate `batch_size` samples per batch (else one sample each).
        collate_fn: The user's collate function, or None for the default.
        batch_size (int or None), drop_last (bool): As the loader's.
    """

    def __init__(self, dataset, auto_collation, collate_fn, batch_size, drop_last):
        self.samples = iter(dataset)
        self.auto_collation = auto_collation
        self.collate = collate_function(collate_fn, auto_collation)
        self.batch_size, self.drop_last = batch_size, drop_last
        self.ended = False

    def fetch(self, _task=None):
        """The next batch.

        Raises:
            StopIteration: When the stream has no (complete, with ``drop_last``) batch left.
        """
        if self.ended:
            raise StopIteration
        if not self.auto_collation:
            return self.collate(next(self.samples))
        batch = []
        for sample in self.samples:
            batch.append(sample)
            if len(batch) == self.batch_size:
                return self.collate(batch)
        self.ended = True
        if not batch or (self.drop_last and len(batch) < self.batch_size):
            raise StopIteration
        return self.collate(batch)
