"""Datasets read from their standard files, downloaded on request (as ``torchvision.datasets``).

:class:`MNIST` reads the four IDX files; :mod:`cnn.datasets.download` fetches files
atomically with MD5 checks and mirror fallback.
"""
from .download import DownloadError, download_from_mirrors, download_url
from .mnist import MNIST, read_idx

__all__ = ["MNIST", "read_idx", "DownloadError", "download_url", "download_from_mirrors"]
