"""``VisionDataset``: images in memory with integer targets, indexed as torchvision's datasets.

``dataset[i]`` is ``(image, target)``: the image as a uint8 array ``(H, W)`` or ``(H, W, C)``
(what ``numpy.asarray`` of torchvision's PIL image gives) passed through ``transform``, the
target an int passed through ``target_transform``. A batch index (a slice, a list or an array
of indices) gives the whole batch at once: ``(images, targets)`` equal to collating the samples
one by one. When ``transform`` is None or has ``batch_transform`` (``ToTensor``, ``Normalize``,
``Compose`` of such, ...) and there is no ``target_transform``, that batch is computed in one
step, which is how a :class:`~cnn.utils.data.DataLoader` reads these datasets fastest.
"""
import operator

import numpy as np

from ..utils.data.collate import collate_arrays
from ..utils.data.dataset import Dataset


def _callable_or_none(value, name):
    if value is not None and not callable(value):
        raise TypeError(f"{name}: expected a callable or None, got {type(value).__name__}")
    return value


class VisionDataset(Dataset):
    """The base of the image datasets: subclasses load ``data`` and ``targets``.

    Args:
        transform (callable, optional): Applied to each image.
        target_transform (callable, optional): Applied to each target.

    Attributes:
        data (numpy.ndarray): The images, uint8 ``(N, H, W)`` or ``(N, H, W, C)``.
        targets (numpy.ndarray): The targets, int64 ``(N,)``.
        transform, target_transform: As given.
    """

    def __init__(self, transform=None, target_transform=None):
        self.transform = _callable_or_none(transform, "transform")
        self.target_transform = _callable_or_none(target_transform, "target_transform")

    @property
    def supports_batch_indexing(self):
        """True when a batch can be transformed in one step (see the module's docstring)."""
        return self.target_transform is None and (
            self.transform is None or hasattr(self.transform, "batch_transform"))

    def __len__(self):
        """Return the number of images."""
        return len(self.data)

    def __getitem__(self, index):
        """Return ``(image, target)``, or the batch of them for a batch index.

        Args:
            index: An integer, a slice, or a 1-d integer (or boolean) array or list.

        Returns:
            tuple: For an integer, the transformed image and target; for a batch index, the
            images stacked (as the transform returns them) and the targets as int64 ``(B,)``
            (or as collated from ``target_transform``'s results).

        Raises:
            IndexError: If an index is out of range.
            TypeError: For another kind of index.
        """
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            position = operator.index(index)
            if not -len(self) <= position < len(self):
                raise IndexError(f"index {position} is out of range for {type(self).__name__} "
                                 f"with {len(self)} images")
            # A copy: a transform that writes into its input must not change the dataset.
            image = self.data[position].copy()
            target = int(self.targets[position])
            if self.transform is not None:
                image = self.transform(image)
            if self.target_transform is not None:
                target = self.target_transform(target)
            return image, target
        if not isinstance(index, (slice, list, np.ndarray)):
            raise TypeError("index: expected an integer, a slice or a 1-d array of indices, got "
                            f"{type(index).__name__}")
        if isinstance(index, np.ndarray) and index.ndim != 1:
            raise IndexError(f"index: expected a 1-d array of indices, got shape {index.shape}")
        if not self.supports_batch_indexing:
            positions = np.arange(len(self))[index].tolist()
            if not positions:
                return self.data[:0], self.targets[:0]
            return tuple(collate_arrays([self[i] for i in positions]))
        images = self.data[index]
        if self.transform is not None:
            images = self.transform.batch_transform(images)
        return images, self.targets[index]

    def _split_name(self):
        return "Train" if self.train else "Test"

    def __repr__(self):
        lines = [f"Dataset {type(self).__name__}", f"    Number of datapoints: {len(self)}",
                 f"    Root location: {self.root}", f"    Split: {self._split_name()}"]
        for name in ("transform", "target_transform"):
            value = getattr(self, name)
            if value is not None:
                text = repr(value).replace("\n", "\n    ")
                lines.append(f"    {name.replace('_', ' ').capitalize()}: {text}")
        return "\n".join(lines)
