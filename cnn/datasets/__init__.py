"""Image datasets read from their standard files, downloaded on request, as
``torchvision.datasets``.

:class:`MNIST`, :class:`FashionMNIST`, :class:`KMNIST` and :class:`EMNIST` read IDX files;
:class:`CIFAR10` and :class:`CIFAR100` read the binary or the Python distribution (the latter
through a restricted unpickler). Each gives ``(image, target)`` per index, the image a uint8
array ``(H, W)`` or ``(H, W, C)`` through ``transform``, and whole batches at once for the
DataLoader (:class:`~cnn.datasets.vision.VisionDataset`). :mod:`cnn.datasets.download` fetches
files atomically with MD5 checks and mirror fallback.
"""
from .cifar import CIFAR10, CIFAR100
from .download import DownloadError, download_from_mirrors, download_url
from .emnist import EMNIST
from .mnist import KMNIST, MNIST, FashionMNIST, read_idx
from .vision import VisionDataset

__all__ = ["MNIST", "FashionMNIST", "KMNIST", "EMNIST", "CIFAR10", "CIFAR100",
           "VisionDataset", "read_idx", "DownloadError", "download_url",
           "download_from_mirrors"]
