"""``DistributedLoader``: this rank's shard of every batch of a data-parallel job."""
from ... import distributed
from .loader import DataLoader

__all__ = ["DistributedLoader"]


class DistributedLoader(DataLoader):
    """A :class:`~cnn.utils.data.DataLoader` giving this rank its shard of every global batch.

    The global batches are exactly those of ``DataLoader(dataset, batch_size, shuffle,
    drop_last, seed)`` (epoch ``k``'s permutation drawn from ``(seed, k)``; ``set_epoch`` works
    the same); rank ``r`` of ``N`` gets the samples ``r::N`` of each. ``len(loader)`` is the
    number of global batches, the same on every rank, so the ranks step together; a rank's
    batch may be empty when a short last batch has fewer samples than ranks. With
    ``shuffle=True`` give a ``seed``: every rank must draw the same permutation.

    It is a DataLoader whose ``batch_sampler`` is that of the plain loader with each batch cut
    to this rank's shard.

    Args:
        dataset, batch_size, shuffle, drop_last, seed: As DataLoader's; ``batch_size`` is the
            global batch.
        rank (int, optional): This rank (default :func:`cnn.distributed.rank`).
        world_size (int, optional): The number of ranks (default
            :func:`cnn.distributed.world_size`).
        **options: DataLoader's other options (``num_workers``, ``collate_fn``, ``as_tensor``,
            ...), except the samplers.

    Attributes:
        rank (int), world_size (int): As given or found.

    Raises:
        ValueError: If `rank` is not in ``[0, world_size)``, or a shuffled loader on more than
            one rank has no `seed`; and as DataLoader.
    """

    def __init__(self, dataset, batch_size=1, shuffle=False, drop_last=False, seed=None, *,
                 rank=None, world_size=None, **options):
        self.world_size = distributed.world_size() if world_size is None else int(world_size)
        self.rank = distributed.rank() if rank is None else int(rank)
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"rank: expected 0 to {self.world_size - 1}, got {self.rank}")
        if shuffle and seed is None and self.world_size > 1:
            raise ValueError("seed: a shuffled DistributedLoader needs a seed, so that every "
                             "rank draws the same permutation")
        global_batches = DataLoader(dataset, batch_size, shuffle, drop_last=drop_last,
                                    seed=seed).batch_sampler
        super().__init__(dataset, batch_sampler=_Shards(global_batches, self.rank,
                                                        self.world_size), **options)


class _Shards:
    """A batch sampler of rank `rank`'s samples ``rank::world_size`` of each global batch."""

    def __init__(self, batches, rank, world_size):
        self.batches, self.rank, self.world_size = batches, rank, world_size

    def set_epoch(self, epoch):
        self.batches.set_epoch(epoch)

    def __iter__(self):
        batches = iter(self.batches)  # the order is drawn now, as the plain loader's
        return (batch[self.rank::self.world_size] for batch in batches)

    def __len__(self):
        return len(self.batches)
