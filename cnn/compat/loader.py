"""``DataLoader`` in the original library's form as well as PyTorch's, with ``len()``,
indexing and a reshuffle on every iteration, like the original's list of batches."""
import inspect
import operator

import numpy as np

from ..tensor import Tensor
from ..utils import data

__all__ = ["DataLoader"]


def _seed_form(images, labels, batch_size=1, shuffle=False, drop_last=True, seed=None,
               dtype=np.float32, as_tensor=False):
    """The signature of the original library's form of :class:`DataLoader` (bound, not run)."""


_SEED_SIGNATURE = inspect.signature(_seed_form)


class DataLoader(data.DataLoader):
    """:class:`cnn.utils.data.DataLoader`, which also accepts the original library's arguments.

    Two forms, told apart by the second argument (an array of labels, or ``labels=``):

    * ``DataLoader(dataset, batch_size=1, shuffle=False, ...)``: the batches of
      :class:`cnn.utils.data.DataLoader` with the same arguments (Tensors, by default).
    * ``DataLoader(images, labels, batch_size=1, shuffle=False, drop_last=True, seed=None,
      dtype=numpy.float32, as_tensor=False)``: the original library's form. `images` is
      ``(N, H, W)`` (or ``(N, C, H, W)``) of any real dtype, uint8 included; `labels` is
      ``(N,)``. Each batch is a list ``[images (B, 1, H, W), labels (B,)]``: images are cast to
      `dtype` without rescaling (the original trained on raw 0-255 pixels) one batch at a time,
      so uint8 data stays uint8 in memory. As in the original, a last incomplete batch is
      dropped (``drop_last=True``).

    In both forms the loader also behaves like the original's list of batches: ``len(loader)``
    is the number of batches and ``loader[i]`` is the i-th batch of the current epoch's order
    (the order of the latest iteration, or of the next one if none has started), and every new
    iteration reshuffles (with ``shuffle=True``).

    It is a plain DataLoader over the batches of the one its arguments describe, through a
    ``batch_sampler`` that remembers the latest epoch's batches for indexing (so, as in
    PyTorch, its ``batch_size`` attribute is None).

    Raises:
        TypeError: For arguments neither form accepts, images of a non-numeric dtype, or a
            `dtype` that is not floating point.
        ValueError: For images that are not 3-d or 4-d, labels that are not 1-d, or different
            numbers of images and labels.
    """

    def __init__(self, dataset, *args, **kwargs):
        if "labels" in kwargs or (args and _is_array_like(args[0])):
            bound = _SEED_SIGNATURE.bind(dataset, *args, **kwargs)
            bound.apply_defaults()
            options = bound.arguments
            dataset = _ImagesAndLabels(options["images"], options["labels"], options["dtype"])
            plain = data.DataLoader(dataset, options["batch_size"], options["shuffle"],
                                    drop_last=options["drop_last"], seed=options["seed"],
                                    as_tensor=options["as_tensor"])
        else:
            plain = data.DataLoader(dataset, *args, **kwargs)
        self._epochs = _RememberedBatches(plain.batch_sampler)
        super().__init__(dataset, batch_sampler=self._epochs, **_loading_options(plain))

    def __getitem__(self, index):
        """Return batch `index` (an int, negative counting from the end, or a slice).

        Raises:
            IndexError: If `index` is out of range.
        """
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        index = operator.index(index)
        count = len(self)
        if not -count <= index < count:
            raise IndexError(f"batch index {index} is out of range for a DataLoader of "
                             f"{count} batches")
        indices = self._epochs.current(self.epoch)[index]
        # In this process: one batch is not worth starting workers for.
        options = dict(_loading_options(self), num_workers=0, timeout=0, worker_init_fn=None,
                       multiprocessing_context=None, prefetch_factor=None,
                       persistent_workers=False)
        one_batch = data.DataLoader(self.dataset, batch_sampler=[indices], **options)
        return next(iter(one_batch))


def _loading_options(loader):
    """The options of `loader` that say how batches are loaded (not which ones)."""
    return {name: getattr(loader, name) for name in (
        "num_workers", "collate_fn", "pin_memory", "timeout", "worker_init_fn",
        "multiprocessing_context", "generator", "prefetch_factor", "persistent_workers",
        "as_tensor", "limit_kernel_threads")}


class _RememberedBatches:
    """A batch sampler that keeps the batches of its latest epoch, so that they can be indexed.

    Indexing before an epoch has started draws that epoch's batches ahead of time; the
    iteration of that epoch then runs exactly them (an unseeded shuffle is not drawn twice).
    """

    def __init__(self, batches):
        self.batches = batches  # the batch sampler of the plain loader
        self.latest = None  # the index lists of the latest epoch, once drawn
        self.ahead = None  # the epoch `latest` was drawn ahead for, until it runs
        self.epoch = 0

    def set_epoch(self, epoch):
        self.epoch = epoch
        if self.ahead is not None and self.ahead != epoch:
            self.latest = self.ahead = None

    def current(self, epoch):
        """The index lists of the latest epoch, or of `epoch`, drawn now, if none ran yet."""
        if self.latest is None:
            self.set_epoch(epoch)
            self.latest, self.ahead = self._draw(), epoch
        return self.latest

    def _draw(self):
        set_epoch = getattr(self.batches, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(self.epoch)
        return list(self.batches)

    def __iter__(self):
        if self.ahead is None:
            self.latest = self._draw()
        self.ahead = None
        return iter(self.latest)

    def __len__(self):
        return len(self.batches)


def _is_array_like(value):
    """Whether `value` can be the labels array (a batch size is an integer, not an array)."""
    if isinstance(value, (bool, np.bool_)):
        return False
    try:
        operator.index(value)
    except TypeError:
        return isinstance(value, (np.ndarray, Tensor, list, tuple))
    return False


class _ImagesAndLabels(data.Dataset):
    """Images and labels in memory; a batch is ``[images (B, C, H, W) dtype, labels (B,)]``."""

    supports_batch_indexing = True

    def __init__(self, images, labels, dtype):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype.kind not in "biuf":
            raise TypeError(f"images: expected a numeric array, got dtype {images.dtype}")
        if images.ndim not in (3, 4):
            raise ValueError(f"images: expected shape (N, H, W) or (N, C, H, W), got "
                             f"{images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"labels: expected shape (N,), got {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"images and labels: expected as many labels as images, got "
                             f"{len(images)} images and {len(labels)} labels")
        dtype = np.dtype(dtype)
        if dtype.kind != "f":
            raise TypeError(f"dtype: expected a floating-point dtype, got {dtype}")
        self.images, self.labels, self.dtype = images, labels, dtype

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        pixels = self.images[index]
        if self.images.ndim == 3:
            pixels = pixels[..., None, :, :]
        return [pixels.astype(self.dtype), self.labels[index]]
