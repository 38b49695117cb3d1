"""Samplers: the order in which a :class:`~cnn.utils.data.DataLoader` visits the samples.

As ``torch.utils.data``: a sampler yields sample indices, a batch sampler yields lists of them,
and the loader fetches one batch per list. One addition, for reproducible epochs: a sampler or
batch sampler may have ``set_epoch(epoch)``, which the loader calls at the start of every
iteration with its epoch counter (what PyTorch code does by hand with
``DistributedSampler.set_epoch``). :class:`RandomSampler` with a ``seed`` uses it to draw epoch
``k``'s order from ``(seed, k)``; :class:`BatchSampler` passes it on to its sampler.
"""
import itertools

import numpy as np

from ... import random as _random
from ..._validation import flag, integer

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "SubsetRandomSampler",
           "WeightedRandomSampler", "BatchSampler"]


def numpy_generator(generator, name):
    """`generator` checked to be a ``numpy.random.Generator`` or None (PyTorch's
    ``torch.Generator`` arguments take one here)."""
    if generator is not None and not isinstance(generator, np.random.Generator):
        raise TypeError(f"{name}: expected a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator


class Sampler:
    """Base class of samplers: an iterable of sample indices (or, for a batch sampler, of
    lists of them), as ``torch.utils.data.Sampler``.

    Subclasses implement ``__iter__`` and, when the count is known, ``__len__``.
    """

    def __iter__(self):
        raise NotImplementedError(f"{type(self).__name__} must implement __iter__")


class SequentialSampler(Sampler):
    """The indices ``0, 1, ..., len(data_source) - 1`` in order, every epoch.

    Args:
        data_source: Anything with ``__len__`` (a dataset).
    """

    def __init__(self, data_source):
        self.data_source = data_source

    def __iter__(self):
        return iter(range(len(self.data_source)))

    def __len__(self):
        return len(self.data_source)


class RandomSampler(Sampler):
    """The indices in a random order, as ``torch.utils.data.RandomSampler``.

    Without replacement each iteration is a fresh permutation (several, concatenated and cut,
    when `num_samples` is not the data's length); with replacement it draws `num_samples`
    indices independently. The randomness comes from, in this order of preference:

    * `seed`: epoch ``k`` draws from a generator seeded with the k-th child of
      ``numpy.random.SeedSequence(seed)``, so every epoch is reproducible on its own and
      ``set_epoch(k)`` gets it back without replaying the earlier ones; each iteration then
      moves on to the next epoch;
    * `generator`: a ``numpy.random.Generator``, drawn from in turn;
    * otherwise ``cnn``'s default generator (``cnn.manual_seed`` makes it reproducible).

    The order is drawn when iteration starts (``iter(sampler)``), not at the first index.

    Args:
        data_source: Anything with ``__len__`` (a dataset).
        replacement (bool): Draw with replacement.
        num_samples (int, optional): Indices per iteration; ``len(data_source)`` by default.
        generator (numpy.random.Generator, optional): The source of randomness.
        seed (int, optional): A non-negative seed for reproducible epochs (keyword only; not
            with `generator`).

    Attributes:
        epoch (int): The epoch the next iteration draws (used with a `seed`).

    Raises:
        TypeError: If `replacement` is not a bool, `num_samples` or `seed` not an integer, or
            `generator` not a ``numpy.random.Generator``.
        ValueError: If `num_samples` < 1, `seed` < 0, or both `seed` and `generator` are given.
    """

    def __init__(self, data_source, replacement=False, num_samples=None, generator=None, *,
                 seed=None):
        self.data_source = data_source
        self.replacement = flag(replacement, "replacement")
        if num_samples is not None:
            num_samples = integer(num_samples, "num_samples", minimum=1)
        self._num_samples = num_samples
        numpy_generator(generator, "generator")
        self.seed = None if seed is None else integer(seed, "seed", minimum=0)
        if self.seed is not None and generator is not None:
            raise ValueError("seed, generator: give one source of randomness, not both")
        self.generator = generator
        self.epoch = 0

    @property
    def num_samples(self):
        """int: Indices per iteration (the data's current length unless given)."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def set_epoch(self, epoch):
        """Make the next iteration draw epoch `epoch`'s order (with a `seed`).

        Args:
            epoch (int): A non-negative integer.
        """
        self.epoch = integer(epoch, "epoch", minimum=0)

    def __iter__(self):
        return iter(self._draw().tolist())

    def _draw(self):
        size, count = len(self.data_source), self.num_samples
        if self.seed is not None:
            generator = np.random.default_rng(
                np.random.SeedSequence(self.seed, spawn_key=(self.epoch,)))
            self.epoch += 1
        elif self.generator is not None:
            generator = self.generator
        else:
            generator = _random.default_generator()
        if size == 0:
            if count and self._num_samples is not None:
                raise ValueError("data_source: cannot draw samples from an empty data source")
            return np.arange(0)
        if self.replacement:
            return generator.integers(0, size, count)
        # Whole permutations, then part of one more: no draw is wasted when count == size.
        parts = [generator.permutation(size) for _ in range(count // size)]
        if count % size:
            parts.append(generator.permutation(size)[:count % size])
        return np.concatenate(parts) if len(parts) != 1 else parts[0]

    def __len__(self):
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices in a random order, a fresh one every iteration, as
    ``torch.utils.data.SubsetRandomSampler``.

    Args:
        indices: A sequence of indices.
        generator (numpy.random.Generator, optional): The source of randomness; ``cnn``'s
            default generator (``cnn.manual_seed``) when None.

    Raises:
        TypeError: If `generator` is not a ``numpy.random.Generator``.
    """

    def __init__(self, indices, generator=None):
        self.indices = indices
        self.generator = numpy_generator(generator, "generator")

    def __iter__(self):
        generator = self.generator or _random.default_generator()
        order = generator.permutation(len(self.indices)).tolist()
        return iter([self.indices[i] for i in order])

    def __len__(self):
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """`num_samples` indices in ``[0, len(weights))`` drawn with probabilities proportional to
    `weights`, as ``torch.utils.data.WeightedRandomSampler``.

    Without replacement, an index is drawn at most once per iteration (so `num_samples` may
    not exceed the number of non-zero weights).

    Args:
        weights: A 1-d sequence of non-negative, finite weights, not all zero (they need not
            sum to one).
        num_samples (int): Indices per iteration, positive.
        replacement (bool): Draw with replacement.
        generator (numpy.random.Generator, optional): The source of randomness; ``cnn``'s
            default generator when None.

    Raises:
        ValueError: If `weights` is not 1-d, holds a negative or non-finite value or only
            zeros, `num_samples` is not a positive integer, or without replacement exceeds the
            non-zero weights; TypeError for a `replacement` that is not a bool or a bad
            `generator`.
    """

    def __init__(self, weights, num_samples, replacement=True, generator=None):
        if (not isinstance(num_samples, (int, np.integer)) or isinstance(num_samples, bool)
                or num_samples <= 0):
            raise ValueError("num_samples should be a positive integer value, but got "
                             f"num_samples={num_samples}")
        if not isinstance(replacement, bool):
            raise ValueError("replacement should be a boolean value, but got "
                             f"replacement={replacement}")
        weights = np.asarray(weights, dtype=np.float64)
        if weights.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence but given weights have shape "
                             f"{weights.shape}")
        if not np.all(np.isfinite(weights)) or np.any(weights < 0) or not weights.sum() > 0:
            raise ValueError("weights: expected finite, non-negative weights with a positive "
                             f"sum, got {weights.tolist()[:8]}{'...' * (len(weights) > 8)}")
        if not replacement and num_samples > np.count_nonzero(weights):
            raise ValueError(f"num_samples: cannot draw {num_samples} samples without "
                             f"replacement from {np.count_nonzero(weights)} non-zero weights")
        self.weights = weights
        self.num_samples = int(num_samples)
        self.replacement = replacement
        self.generator = numpy_generator(generator, "generator")

    def __iter__(self):
        generator = self.generator or _random.default_generator()
        drawn = generator.choice(len(self.weights), size=self.num_samples,
                                 replace=self.replacement, p=self.weights / self.weights.sum())
        return iter(drawn.tolist())

    def __len__(self):
        return self.num_samples


class BatchSampler(Sampler):
    """Group another sampler's indices into lists of `batch_size`, as
    ``torch.utils.data.BatchSampler``.

    Example::

        >>> list(BatchSampler(SequentialSampler(range(10)), batch_size=3, drop_last=False))
        [[0, 1, 2], [3, 4, 5], [6, 7, 8], [9]]

    Args:
        sampler: A sampler, or any iterable of indices.
        batch_size (int): Indices per batch, positive.
        drop_last (bool): Drop the last batch when it is shorter than `batch_size`.

    Raises:
        ValueError: If `batch_size` is not a positive integer or `drop_last` not a bool (as
            PyTorch's).
    """

    def __init__(self, sampler, batch_size, drop_last):
        if (not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool)
                or batch_size <= 0):
            raise ValueError(f"batch_size should be a positive integer value, but got "
                             f"batch_size={batch_size}")
        if not isinstance(drop_last, bool):
            raise ValueError(f"drop_last should be a boolean value, but got "
                             f"drop_last={drop_last}")
        self.sampler = sampler
        self.batch_size = int(batch_size)
        self.drop_last = drop_last

    def set_epoch(self, epoch):
        """Pass `epoch` on to the sampler, if it has ``set_epoch``."""
        set_epoch = getattr(self.sampler, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(epoch)

    def __iter__(self):
        # iter() of the sampler here, not at the first batch: the order is drawn now.
        return self._batches(iter(self.sampler))

    def _batches(self, indices):
        batch = list(itertools.islice(indices, self.batch_size))
        while batch:
            if len(batch) < self.batch_size and self.drop_last:
                return
            yield batch
            batch = list(itertools.islice(indices, self.batch_size))

    def __len__(self):
        if self.drop_last:
            return len(self.sampler) // self.batch_size
        return (len(self.sampler) + self.batch_size - 1) // self.batch_size

