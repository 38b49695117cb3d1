"""``DataLoader``: batches of a dataset as Tensors, in order or shuffled reproducibly, loaded in
the iterating process or in worker processes, as ``torch.utils.data.DataLoader``."""
import numbers
import operator

import numpy as np

from ... import random as _random
from ..._validation import flag, integer
from .collate import arrays_to_tensors
from .dataset import IterableDataset
from .fetch import IterableFetcher, MapFetcher
from .pool import MultiProcessIterator, start_method_context
from .sampler import BatchSampler, RandomSampler, SequentialSampler, numpy_generator

__all__ = ["DataLoader"]


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
    """Iterate over a dataset in batches of Tensors, as PyTorch's ``DataLoader``.

    ``len(loader)`` is the number of batches. Each ``iter(loader)`` (each ``for`` loop) is one
    epoch and, with ``shuffle=True``, visits every sample exactly once in a fresh order.

    **Order.** A ``sampler`` yields the sample indices of an epoch, a ``batch_sampler`` the
    index lists of its batches (it replaces ``batch_size``, ``shuffle``, ``sampler`` and
    ``drop_last``). Without them the loader builds
    ``BatchSampler(RandomSampler(dataset, ...) if shuffle else SequentialSampler(dataset),
    batch_size, drop_last)``. Shuffling draws a permutation:

    * with ``seed`` given (a ``cnn`` addition), epoch ``k`` from ``(seed, k)`` (the k-th child
      of ``numpy.random.SeedSequence(seed)``): a run is reproducible, the epochs differ, and a
      resumed run gets epoch ``k``'s order back with ``set_epoch(k)`` without replaying the
      earlier epochs;
    * else from ``generator`` (a ``numpy.random.Generator``), else from ``cnn``'s default
      generator (``cnn.manual_seed`` makes it reproducible).

    At the start of every iteration the loader calls ``set_epoch(epoch)`` on its batch sampler
    (or, without batching, its sampler) if it has that method (see cnn/utils/data/sampler.py).

    **Batches.** Datasets with ``supports_batch_indexing`` (``TensorDataset``,
    ``cnn.datasets.MNIST`` with batchable transforms) are indexed once per batch with the array
    of its indices. Other datasets are indexed sample by sample and the samples merged by
    ``collate_fn`` (:func:`~cnn.utils.data.default_collate` when None: stacked, tuples as
    lists). A ``collate_fn`` also forces that per-sample path, since it expects a list of
    samples, and its batches are yielded as it returns them. ``batch_size=None`` turns
    batching off: each sample comes alone, its arrays as Tensors (``default_convert``).

    **Workers.** With ``num_workers > 0`` the batches are loaded by that many worker processes
    (started with ``multiprocessing_context``, Python's default start method when None:
    ``fork`` on Linux), each with ``prefetch_factor`` batches in hand, and still come out in
    the sampler's order. Each worker seeds ``cnn``'s generator (which the random transforms draw
    from) and Python's ``random`` with ``base_seed + worker_id``, where ``base_seed`` is drawn
    for each epoch from ``(seed, epoch)``, else from ``generator``, else from ``cnn``'s default
    generator; then it calls ``worker_init_fn(worker_id)``, and
    :func:`~cnn.utils.data.get_worker_info` tells it who it is. The batch arrays come back
    through shared memory (nothing is pickled per sample). An exception in a worker is raised
    in the loop with the worker's number and the original traceback; a worker that dies, or
    sends nothing within ``timeout`` seconds, raises a RuntimeError naming it. Either way, and
    on Ctrl-C or when the iterator is dropped, the workers are stopped and joined. Workers run
    the kernels and numpy's BLAS on one thread each, and ignore Ctrl-C (the iterating process
    handles it). With ``persistent_workers`` they stay up between epochs (seeded once).

    **Threads.** So that the kernels' OpenMP team and the workers do not fight over the cores,
    while an epoch with workers runs the iterating process's kernels use at most
    ``max(1, cores - num_workers)`` threads (counting the workers of every loader being
    iterated), and get their thread count back when it ends (``limit_kernel_threads=False``
    leaves them alone; a count set with ``cnn.set_num_threads`` during the epoch stands).

    Args:
        dataset: A :class:`~cnn.utils.data.Dataset` (or any object with ``__len__`` and
            ``__getitem__``) or an :class:`~cnn.utils.data.IterableDataset`.
        batch_size (int or None): Samples per batch, positive; None turns batching off.
        shuffle (bool): Visit the samples in a new random order each epoch.
        sampler: The sample indices of an epoch, in order; not with ``shuffle``.
        batch_sampler: The index lists of an epoch's batches; not with ``batch_size``,
            ``shuffle``, ``sampler`` or ``drop_last``.
        num_workers (int): Worker processes; 0 loads in the iterating process.
        collate_fn (callable, optional): Merges a list of samples into a batch.
        pin_memory (bool): Accepted for PyTorch code; it has no effect (no GPU to copy to).
        drop_last (bool): Drop the last batch when it would be smaller than ``batch_size``.
        timeout (float): Seconds to wait for each batch from the workers; 0 waits forever.
            Without workers it has no effect, as in PyTorch.
        worker_init_fn (callable, optional): Called as ``worker_init_fn(worker_id)`` in each
            worker after seeding, before loading.
        multiprocessing_context: None, a start method's name (``"fork"``, ``"spawn"``,
            ``"forkserver"``) or a ``multiprocessing`` context; only with workers. With
            ``spawn`` and ``forkserver`` the dataset and functions must be picklable.
        generator (numpy.random.Generator, optional): The source of the shuffle order and of
            the workers' base seed; not with ``seed``.
        prefetch_factor (int, optional): Batches each worker loads ahead; 2 by default with
            workers, and only with workers.
        persistent_workers (bool): Keep the workers between epochs; only with workers.
        seed (int, optional): A non-negative integer fixing every epoch's shuffle order and
            worker seeds (see above); not with a given sampler or ``generator``.
        as_tensor (bool): With the default collation, yield ``cnn.Tensor`` s (sharing memory
            with the batch arrays, as PyTorch's Tensors); False yields the NumPy arrays.
        limit_kernel_threads (bool): Limit the kernel threads while workers load (see
            Threads above; a ``cnn`` addition).

    Attributes:
        epoch (int): The epoch the next iteration runs: 0 at first, advanced by one each time
            an iteration starts, set by :meth:`set_epoch`.
        sampler, batch_sampler: The samplers in use (given or built). With a given
            ``batch_sampler``, ``batch_size`` is None, as in PyTorch.

    Raises:
        TypeError: If ``dataset`` is not a dataset, a flag is not a bool, ``batch_size``,
            ``num_workers``, ``prefetch_factor`` or ``seed`` is not an integer,
            ``collate_fn`` or ``worker_init_fn`` is not callable, or ``generator`` is not a
            ``numpy.random.Generator``.
        ValueError: For a count or ``timeout`` out of range, or options that exclude each
            other (PyTorch's messages).

    Example::

        loader = DataLoader(train_set, batch_size=128, shuffle=True, num_workers=2)
        for epoch in range(10):
            for inputs, targets in loader:
                ...
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, sampler=None, batch_sampler=None,
                 num_workers=0, collate_fn=None, pin_memory=False, drop_last=False, timeout=0,
                 worker_init_fn=None, multiprocessing_context=None, generator=None, *,
                 prefetch_factor=None, persistent_workers=False, seed=None, as_tensor=True,
                 limit_kernel_threads=True):
        iterable = isinstance(dataset, IterableDataset)
        if not iterable and not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError("dataset: expected a Dataset (an object with __len__ and "
                            f"__getitem__) or an IterableDataset, got {type(dataset).__name__}")
        for name, function in (("collate_fn", collate_fn), ("worker_init_fn", worker_init_fn)):
            if function is not None and not callable(function):
                raise TypeError(f"{name}: expected a callable or None, got "
                                f"{type(function).__name__}")
        self.dataset = dataset
        self.batch_size = None if batch_size is None else integer(batch_size, "batch_size",
                                                                  minimum=1)
        self.shuffle = False if shuffle is None else flag(shuffle, "shuffle")
        self.drop_last = flag(drop_last, "drop_last")
        self.pin_memory = flag(pin_memory, "pin_memory")
        self.persistent_workers = flag(persistent_workers, "persistent_workers")
        self.as_tensor = flag(as_tensor, "as_tensor")
        self.limit_kernel_threads = flag(limit_kernel_threads, "limit_kernel_threads")
        self.seed = _seed(seed)
        self.generator = numpy_generator(generator, "generator")
        self.collate_fn = collate_fn
        self.worker_init_fn = worker_init_fn
        self._check_workers(num_workers, timeout, prefetch_factor, multiprocessing_context)
        self.epoch = 0
        self._iterator = None  # the persistent workers' iterator
        if self.seed is not None and self.generator is not None:
            raise ValueError("seed, generator: give one source of randomness, not both")
        if iterable:
            self._check_iterable_options(sampler, batch_sampler)
        self._build_samplers(sampler, batch_sampler)

    def _check_workers(self, num_workers, timeout, prefetch_factor, context):
        self.num_workers = integer(num_workers, "num_workers")
        if self.num_workers < 0:
            raise ValueError("num_workers option should be non-negative; use num_workers=0 to "
                             "disable multiprocessing.")
        if isinstance(timeout, bool) or not isinstance(timeout, numbers.Real):
            raise TypeError(f"timeout: expected a number of seconds, got "
                            f"{type(timeout).__name__}")
        if not timeout >= 0:
            raise ValueError("timeout option should be non-negative")
        self.timeout = timeout
        if self.num_workers == 0:
            if prefetch_factor is not None:
                raise ValueError("prefetch_factor option could only be specified in "
                                 "multiprocessing.let num_workers > 0 to enable "
                                 "multiprocessing, otherwise set prefetch_factor to None.")
            if self.persistent_workers:
                raise ValueError("persistent_workers option needs num_workers > 0")
            if context is not None:
                raise ValueError("multiprocessing_context can only be used with multi-process "
                                 "loading (num_workers > 0), but got num_workers=0")
        elif prefetch_factor is None:
            prefetch_factor = 2
        else:
            prefetch_factor = integer(prefetch_factor, "prefetch_factor", minimum=1)
        self.prefetch_factor = prefetch_factor
        if context is not None and not isinstance(context, str) \
                and not hasattr(context, "Process"):
            raise TypeError("multiprocessing_context: expected a start method's name or a "
                            f"multiprocessing context, got {type(context).__name__}")
        # Resolved now, so that a start method this system lacks fails here, not mid-epoch.
        self.multiprocessing_context = context
        self._context = start_method_context(context) if self.num_workers else None

    def _check_iterable_options(self, sampler, batch_sampler):
        # PyTorch's rules: an iterable dataset decides its own order.
        for name, value, default in (("shuffle", self.shuffle, False),
                                     ("sampler", sampler, None),
                                     ("batch_sampler", batch_sampler, None)):
            if value is not default:
                raise ValueError(f"DataLoader with IterableDataset: expected unspecified {name} "
                                 f"option, but got {name}={value!r}")

    def _build_samplers(self, sampler, batch_sampler):
        # PyTorch's rules for the options a given sampler replaces.
        if sampler is not None and self.shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if self.batch_size != 1 or self.shuffle or sampler is not None or self.drop_last:
                raise ValueError("batch_sampler option is mutually exclusive with batch_size, "
                                 "shuffle, sampler, and drop_last")
            self.batch_size = None
        elif self.batch_size is None and self.drop_last:
            raise ValueError("batch_size=None option disables auto-batching and is mutually "
                             "exclusive with drop_last")
        if self.seed is not None and (sampler is not None or batch_sampler is not None):
            raise ValueError("seed: it seeds the loader's own shuffling; a given sampler or "
                             "batch_sampler brings its own randomness")
        iterable = isinstance(self.dataset, IterableDataset)
        if sampler is None and not iterable:
            sampler = (RandomSampler(self.dataset, generator=self.generator, seed=self.seed)
                       if self.shuffle else SequentialSampler(self.dataset))
        if batch_sampler is None and self.batch_size is not None and not iterable:
            batch_sampler = BatchSampler(sampler, self.batch_size, self.drop_last)
        self.sampler = sampler
        self.batch_sampler = batch_sampler

    @property
    def _auto_collation(self):
        return self.batch_sampler is not None or (
            isinstance(self.dataset, IterableDataset) and self.batch_size is not None)

    @property
    def _index_sampler(self):
        return self.batch_sampler if self.batch_sampler is not None else self.sampler

    def set_epoch(self, epoch):
        """Make the next iteration run epoch ``epoch`` (as ``DistributedSampler.set_epoch``).

        With a ``seed``, the next iteration then visits the samples in exactly the order of that
        epoch in an uninterrupted run (and its workers get that epoch's seeds); later iterations
        continue from ``epoch + 1``. Without a seed the order depends on the generator, and only
        the counter changes.

        Args:
            epoch: A non-negative integer.
        """
        self.epoch = integer(epoch, "epoch", minimum=0)

    def __len__(self):
        """Return the number of batches per epoch (of samples, without batching).

        For an iterable dataset it is computed from ``len(dataset)``, which must exist.
        """
        if isinstance(self.dataset, IterableDataset):
            count = len(self.dataset)
            if self.batch_size is None:
                return count
            whole, rest = divmod(count, self.batch_size)
            return whole + (1 if rest and not self.drop_last else 0)
        return len(self._index_sampler)

    def __iter__(self):
        # The epoch is taken and the order drawn here, not at the first next(), so that
        # iter(loader) alone fixes which epoch (and which draw from the generator) this pass
        # uses.
        epoch, self.epoch = self.epoch, self.epoch + 1
        index_sampler = None
        if not isinstance(self.dataset, IterableDataset):
            index_sampler = self._index_sampler
            set_epoch = getattr(index_sampler, "set_epoch", None)
            if set_epoch is not None:
                set_epoch(epoch)
            index_sampler = iter(index_sampler)
        length = self._length_or_none()
        if self.num_workers == 0:
            return _SingleProcessIterator(self._fetcher(), index_sampler, self._finish(),
                                          length)
        if self._iterator is not None and self._iterator.pool is not None:
            self._iterator.reset(index_sampler, length)
            return self._iterator
        iterator = MultiProcessIterator(self._worker_spec(), self._context,
                                        self._base_seed(epoch), self.prefetch_factor,
                                        self.timeout, self._finish(), self.persistent_workers,
                                        index_sampler, length, self.limit_kernel_threads)
        if self.persistent_workers:
            self._iterator = iterator
        return iterator

    def _length_or_none(self):
        try:
            return len(self)
        except TypeError:  # an iterable dataset without __len__
            return None

    def _fetcher(self):
        if isinstance(self.dataset, IterableDataset):
            return IterableFetcher(self.dataset, self._auto_collation, self.collate_fn,
                                   self.batch_size, self.drop_last)
        return MapFetcher(self.dataset, self._auto_collation, self.collate_fn)

    def _finish(self):
        """What each batch goes through last: the default collation's arrays become Tensors."""
        return arrays_to_tensors if self.collate_fn is None and self.as_tensor else _unchanged

    def _worker_spec(self):
        return {"dataset": self.dataset,
                "kind": "iterable" if isinstance(self.dataset, IterableDataset) else "map",
                "auto_collation": self._auto_collation, "collate_fn": self.collate_fn,
                "batch_size": self.batch_size, "drop_last": self.drop_last,
                "num_workers": self.num_workers, "worker_init_fn": self.worker_init_fn}

    def _base_seed(self, epoch):
        """The workers' base seed for `epoch`: from ``(seed, epoch)``, else drawn from the
        generator. Drawn only with workers, so that loading without them leaves the default
        generator alone."""
        if self.seed is not None:
            state = np.random.SeedSequence(self.seed, spawn_key=(epoch, 1)).generate_state(
                1, np.uint64)
            return int(state[0] >> np.uint64(1))
        generator = self.generator if self.generator is not None else _random.default_generator()
        return int(generator.integers(0, 2**63 - 1))


def _unchanged(batch):
    return batch


class _SingleProcessIterator:
    """An epoch of batches loaded in this process (``num_workers=0``)."""

    def __init__(self, fetcher, index_iterator, finish, length):
        self.fetcher, self.indices, self.finish, self.length = (fetcher, index_iterator,
                                                                finish, length)

    def __iter__(self):
        return self

    def __len__(self):
        return self.length

    def __next__(self):
        task = None if self.indices is None else next(self.indices)
        return self.finish(self.fetcher.fetch(task))
