"""``DataLoader``: batches of a dataset, in order or shuffled reproducibly, as arrays or Tensors."""
import collections.abc
import numbers
import operator

import numpy as np

from ..._validation import flag, integer
from ...tensor import Tensor, from_numpy
from .sampler import BatchSampler, RandomSampler, SequentialSampler


def default_collate(samples):
    """Merge a list of samples into one batch, as PyTorch's ``default_collate`` does.

    Arrays and Tensors are stacked along a new first dimension; Python and NumPy numbers become
    a 1-d array (ints int64, floats float64, bools bool, NumPy scalars keep their dtype);
    tuples, lists and dicts are collated element by element, keeping their structure; strings
    stay a list.

    Args:
        samples: A non-empty list of samples of the same structure.

    Returns:
        The batch: an array, or the samples' container type holding arrays.

    Raises:
        TypeError: For an element type it cannot collate.
        ValueError: If there are no samples, or tuple or list samples differ in length.
    """
    if not len(samples):
        raise ValueError("samples: expected at least one sample to collate, got none")
    first = samples[0]
    if isinstance(first, (np.ndarray, Tensor)):
        return np.stack([np.asarray(sample) for sample in samples])
    if isinstance(first, (str, bytes, np.str_, np.bytes_)):
        return list(samples)
    if isinstance(first, (np.generic, numbers.Number)):
        # Python ints/floats go through np.array's own promotion: int64 and float64.
        return np.array(samples)
    if isinstance(first, collections.abc.Mapping):
        return {key: default_collate([sample[key] for sample in samples]) for key in first}
    if isinstance(first, (tuple, list)):
        if any(len(sample) != len(first) for sample in samples):
            raise ValueError("default_collate: every sample must have the same number of "
                             f"elements, got lengths {sorted({len(s) for s in samples})}")
        fields = [default_collate(list(field)) for field in zip(*samples)]
        return fields if isinstance(first, list) else tuple(fields)
    raise TypeError("default_collate: samples must hold arrays, Tensors, numbers, strings, "
                    f"tuples, lists or dicts, got {type(first).__name__}")


def _to_tensors(batch):
    """Wrap every array of ``batch`` in a Tensor (no copy), keeping the containers."""
    if isinstance(batch, np.ndarray):
        return from_numpy(batch)
    if isinstance(batch, tuple):
        return tuple(_to_tensors(item) for item in batch)
    if isinstance(batch, list):
        return [_to_tensors(item) for item in batch]
    if isinstance(batch, dict):
        return {key: _to_tensors(item) for key, item in batch.items()}
    return batch


def _seed(seed):
    if seed is None:
        return None
    if isinstance(seed, (bool, np.bool_)):
        raise TypeError(f"seed: expected None or a non-negative integer, got {seed!r}")
    try:
        seed = operator.index(seed)
    except TypeError:
        raise TypeError("seed: expected None or a non-negative integer, got "
                        f"{type(seed).__name__} {seed!r}") from None
    if seed < 0:
        raise ValueError(f"seed: expected None or a non-negative integer, got {seed}")
    return seed


class DataLoader:
    """Iterate over a dataset in batches, optionally shuffled, as PyTorch's ``DataLoader``.

    ``len(loader)`` is the number of batches. Each ``iter(loader)`` (each ``for`` loop) is one
    epoch and, with ``shuffle=True``, visits every sample exactly once in a fresh order.

    Shuffling draws a permutation from a ``numpy.random.Generator``:

    * with ``seed`` given, epoch ``k`` uses a generator seeded from ``(seed, k)`` (the k-th
      child of ``numpy.random.SeedSequence(seed)``), so a run is reproducible, the epochs differ
      from each other, and a resumed run gets epoch ``k``'s order back with ``set_epoch(k)``
      without replaying the earlier epochs;
    * with ``seed=None``, from ``cnn``'s default generator (``cnn.manual_seed`` makes it
      reproducible; ``cnn.get_rng_state`` saves it for a resume).

    The order can also be given, as in PyTorch, by a ``sampler`` (an iterable of sample
    indices, e.g. a :class:`~cnn.utils.data.RandomSampler`) or a ``batch_sampler`` (an iterable
    of lists of indices, one list per batch), which replaces ``batch_size``, ``shuffle``,
    ``sampler`` and ``drop_last``. Without them the loader builds its own:
    ``BatchSampler(RandomSampler(dataset, seed=seed) if shuffle else
    SequentialSampler(dataset), batch_size, drop_last)``. At the start of every iteration the
    loader calls ``batch_sampler.set_epoch(epoch)`` if it has that method (see
    cnn/utils/data/sampler.py), which is how the seeded epochs reach the sampler.

    Datasets with ``supports_batch_indexing`` (``TensorDataset``, ``cnn.datasets.MNIST``) are
    indexed once per batch with the array of its indices. Other datasets are indexed sample by
    sample and the samples merged by ``collate_fn`` (:func:`default_collate` when None); a
    ``collate_fn`` also forces that per-sample path, since it expects a list of samples.

    Args:
        dataset: A :class:`~cnn.utils.data.Dataset`, or any object with ``__len__`` and
            ``__getitem__``.
        batch_size: Samples per batch, a positive integer.
        shuffle: Visit the samples in a new random order each epoch.
        drop_last: Drop the last batch when it would be smaller than ``batch_size``.
        seed: A non-negative integer fixing the shuffle orders, or None (see above).
        collate_fn: A callable merging a list of samples into a batch, or None.
        as_tensor: Yield ``cnn.Tensor`` s (sharing memory with the batch arrays) instead of
            NumPy arrays.
        sampler: The sample indices of an epoch, in order (keyword only); not with
            ``shuffle`` or ``seed``.
        batch_sampler: The index lists of an epoch's batches (keyword only); not with
            ``batch_size``, ``shuffle``, ``sampler``, ``drop_last`` or ``seed``.

    Attributes:
        epoch (int): The epoch the next iteration runs: 0 at first, advanced by one each time
            an iteration starts, set by :meth:`set_epoch`.
        sampler, batch_sampler: The samplers in use (given or built). With a given
            ``batch_sampler``, ``batch_size`` is None, as in PyTorch.

    Raises:
        TypeError: If ``dataset`` lacks ``__len__``/``__getitem__``, a flag is not a bool,
            ``batch_size`` or ``seed`` is not an integer, or ``collate_fn`` is not callable.
        ValueError: If ``batch_size`` < 1, ``seed`` < 0, or options that exclude each other
            are combined (``sampler`` with ``shuffle``, ``batch_sampler`` with the batching
            options, ``seed`` with a given sampler).

    Example::

        loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True, seed=0)
        for epoch in range(10):
            for x, y in loader:
                ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None,
                 collate_fn=None, as_tensor=False, *, sampler=None, batch_sampler=None):
        if not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError("dataset: expected a Dataset (an object with __len__ and "
                            f"__getitem__), got {type(dataset).__name__}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError(f"collate_fn: expected a callable or None, got "
                            f"{type(collate_fn).__name__}")
        self.dataset = dataset
        self.batch_size = integer(batch_size, "batch_size", minimum=1)
        self.shuffle = flag(shuffle, "shuffle")
        self.drop_last = flag(drop_last, "drop_last")
        self.seed = _seed(seed)
        self.collate_fn = collate_fn
        self.as_tensor = flag(as_tensor, "as_tensor")
        self.epoch = 0
        # PyTorch's rules for the options a given sampler replaces.
        if sampler is not None and self.shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if self.batch_size != 1 or self.shuffle or sampler is not None or self.drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            self.batch_size = None
        if self.seed is not None and (sampler is not None or batch_sampler is not None):
            raise ValueError("seed: it seeds the loader's own shuffling; a given sampler or "
                             "batch_sampler brings its own randomness")
        if sampler is None:
            sampler = (RandomSampler(dataset, seed=self.seed) if self.shuffle
                       else SequentialSampler(dataset))
        if batch_sampler is None:
            batch_sampler = BatchSampler(sampler, self.batch_size, self.drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler

    def set_epoch(self, epoch):
        """Make the next iteration run epoch ``epoch`` (as ``DistributedSampler.set_epoch``).

        With a ``seed``, the next iteration then visits the samples in exactly the order of that
        epoch in an uninterrupted run; later iterations continue from ``epoch + 1``. Without a
        seed the order depends on the default generator, and only the counter changes.

        Args:
            epoch: A non-negative integer.
        """
        self.epoch = integer(epoch, "epoch", minimum=0)

    def __len__(self):
        """Return the number of batches per epoch."""
        return len(self.batch_sampler)

    def __iter__(self):
        # The epoch is taken and the order drawn here, not at the first next(), so that
        # iter(loader) alone fixes which epoch (and which draw from the default generator)
        # this pass uses.
        set_epoch = getattr(self.batch_sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.epoch)
        batches = iter(self.batch_sampler)
        self.epoch += 1
        return self._load(batches)

    def _load(self, batches):
        for indices in batches:
            batch = self._fetch(indices)
            yield _to_tensors(batch) if self.as_tensor else batch

    def _fetch(self, indices):
        """The batch of the samples at ``indices``, merged (arrays, not yet Tensors)."""
        if self.collate_fn is None and getattr(self.dataset, "supports_batch_indexing", False):
            return self.dataset[np.asarray(indices, dtype=np.intp)]
        collate = default_collate if self.collate_fn is None else self.collate_fn
        # Python ints, so that datasets that only accept int indices work.
        if isinstance(indices, np.ndarray):
            indices = indices.tolist()
        return collate([self.dataset[i] for i in indices])
