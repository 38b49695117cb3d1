"""CIFAR-10 and CIFAR-100, from their binary or their Python distribution.

The binary distribution (``cifar-10-batches-bin``, ``cifar-100-binary``) is a sequence of
records: the label byte (CIFAR-100: the coarse label byte, then the fine one), then 3,072 pixel
bytes, the red plane, the green plane and the blue plane of a 32 x 32 image. The Python
distribution (``cifar-10-batches-py``, ``cifar-100-python``) holds the same as pickled dicts,
read with a restricted unpickler (cnn/datasets/safe_pickle.py) that refuses anything but plain
data. ``download=True`` fetches the Python distribution, as torchvision does.
"""
from pathlib import Path

import numpy as np

from .._validation import flag
from . import safe_pickle
from .archives import extract
from .download import DEFAULT_TIMEOUT, download_from_mirrors
from .mnist import resolve_root
from .vision import VisionDataset

_PIXELS = 3 * 32 * 32


class CIFAR10(VisionDataset):
    """CIFAR-10: 50,000 training and 10,000 test colour images of 32 x 32 pixels in 10
    classes, as ``torchvision.datasets.CIFAR10``.

    Reads ``root/cifar-10-batches-bin`` (the binary distribution) if present, else
    ``root/cifar-10-batches-py`` (the Python one).

    Args:
        root: The folder holding the distribution's folder (required).
        train (bool): The training set (the five data batches) or the test set.
        transform (callable, optional): Applied to each image, e.g. a
            ``cnn.transforms.Compose`` of ``RandomCrop(32, padding=4)``,
            ``RandomHorizontalFlip()``, ``ToTensor()`` and ``Normalize(...)``.
        target_transform (callable, optional): Applied to each label.
        download (bool): Fetch and extract the Python distribution unless a distribution is
            complete in `root` (MD5-checked, written atomically).

    Attributes:
        data (numpy.ndarray): The images, uint8 ``(N, 32, 32, 3)`` (channels last, as
            torchvision's).
        targets (numpy.ndarray): The labels, int64 ``(N,)``.
        classes (list of str): The class names, from the distribution's metadata.
        root (pathlib.Path), train (bool): As given.

    Indexing:
        ``dataset[i]`` is ``(image, label)``: a uint8 array ``(32, 32, 3)`` through
        ``transform``, and an int through ``target_transform``; a batch index gives the batch
        (see :class:`~cnn.datasets.vision.VisionDataset`).

    Raises:
        FileNotFoundError: If neither distribution is complete and ``download`` is False.
        ValueError: If a file is malformed or truncated, or a pickle names anything but plain
            data (the message names the file).
        cnn.datasets.DownloadError: If the download failed.
    """

    mirrors = ("https://www.cs.toronto.edu/~kriz/",)
    archive, archive_md5 = "cifar-10-python.tar.gz", "c58f30108f718f92721af3b95e74349a"
    download_timeout = DEFAULT_TIMEOUT
    python_folder, binary_folder = "cifar-10-batches-py", "cifar-10-batches-bin"
    train_files = [f"data_batch_{k}" for k in range(1, 6)]
    test_files = ["test_batch"]
    meta_file, meta_key = "batches.meta", "label_names"
    binary_meta_file = "batches.meta.txt"
    label_bytes = 1  # the label's position in a binary record: the last of these bytes
    label_key = "labels"
    num_classes = 10

    def __init__(self, root, train=True, transform=None, target_transform=None,
                 download=False):
        train, download = flag(train, "train"), flag(download, "download")
        super().__init__(transform, target_transform)
        if root is None:
            raise TypeError(f"root: {type(self).__name__} needs the folder of its files, got "
                            "None")
        self.root, _ = resolve_root(root)
        self.train = train
        if download:
            self.download()
        names = self.train_files if train else self.test_files
        if self._complete(self.binary_folder, self._binary_names()):
            self.data, self.targets = self._read_binary(names)
            self.classes = self._read_binary_meta()
        elif self._complete(self.python_folder, self.train_files + self.test_files
                            + [self.meta_file]):
            self.data, self.targets = self._read_python(names)
            self.classes = self._read_python_meta()
        else:
            raise FileNotFoundError(
                f"{type(self).__name__} files missing: neither {self.root / self.python_folder} "
                f"nor {self.root / self.binary_folder} holds a complete distribution. Pass "
                f"download=True to fetch it, or place it by hand: get {self.archive} from "
                f"{self.mirrors[0]} (or the binary version) and extract it into {self.root}.")

    def _binary_names(self):
        return [name + ".bin" for name in self.train_files + self.test_files] + [
            self.binary_meta_file]

    def _complete(self, folder, names):
        return all((self.root / folder / name).is_file() for name in names)

    def _read_binary(self, names):
        record = self.label_bytes + _PIXELS
        images, labels = [], []
        for name in names:
            path = self.root / self.binary_folder / (name + ".bin")
            raw = np.fromfile(path, np.uint8)
            if raw.size == 0 or raw.size % record:
                raise ValueError(f"{path}: {raw.size} bytes, not a whole number of "
                                 f"{record}-byte records (truncated file?)")
            records = raw.reshape(-1, record)
            labels.append(self._checked_labels(records[:, self.label_bytes - 1], path))
            images.append(records[:, self.label_bytes:])
        return self._images(images), np.concatenate(labels)

    def _read_binary_meta(self):
        path = self.root / self.binary_folder / self.binary_meta_file
        names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
        if len(names) != self.num_classes:
            raise ValueError(f"{path}: expected {self.num_classes} class names, found "
                             f"{len(names)}")
        return names

    def _read_python(self, names):
        images, labels = [], []
        for name in names:
            path = self.root / self.python_folder / name
            entry = self._load_dict(path, ("data", self.label_key))
            data = entry["data"]
            if not (isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 2
                    and data.shape[1] == _PIXELS):
                raise ValueError(f"{path}: 'data' must be a uint8 array (N, {_PIXELS}), got "
                                 f"{_describe(data)}")
            try:
                values = np.asarray(entry[self.label_key])
            except ValueError:
                values = None
            if values is None or values.dtype.kind not in "iu" or values.shape != (len(data),):
                raise ValueError(f"{path}: {self.label_key!r} must be {len(data)} integer "
                                 f"labels, got {_describe(entry[self.label_key])}")
            labels.append(self._checked_labels(values, path))
            images.append(data)
        return self._images(images), np.concatenate(labels)

    def _read_python_meta(self):
        path = self.root / self.python_folder / self.meta_file
        names = self._load_dict(path, (self.meta_key,))[self.meta_key]
        if not (isinstance(names, list) and len(names) == self.num_classes
                and all(isinstance(name, str) for name in names)):
            raise ValueError(f"{path}: {self.meta_key!r} must be {self.num_classes} class names, "
                             f"got {_describe(names)}")
        return names

    @staticmethod
    def _load_dict(path, keys):
        entry = safe_pickle.load(path)
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: expected a pickled dict, got {type(entry).__name__}")
        # Python 2 pickles read with bytes keys under another encoding: accept both.
        entry = {key.decode("latin1") if isinstance(key, bytes) else key: value
                 for key, value in entry.items()}
        missing = [key for key in keys if key not in entry]
        if missing:
            raise ValueError(f"{path}: the dict lacks {', '.join(map(repr, missing))} (has "
                             f"{', '.join(map(repr, sorted(map(str, entry))))})")
        return entry

    def _checked_labels(self, labels, path):
        labels = np.asarray(labels).astype(np.int64)
        if labels.size and (labels.min() < 0 or labels.max() >= self.num_classes):
            raise ValueError(f"{path}: labels must be classes 0..{self.num_classes - 1}, found "
                             f"{int(labels.min())}..{int(labels.max())}")
        return labels

    @staticmethod
    def _images(parts):
        # Planes (N, 3, 32, 32) to channels last, as torchvision's, stored contiguously so that
        # each image is one block.
        planes = np.concatenate(parts).reshape(-1, 3, 32, 32)
        return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))

    def download(self):
        """Fetch and extract the Python distribution unless a distribution is complete.

        Raises:
            cnn.datasets.DownloadError: If the download failed.
            ValueError: If the archive is corrupt.
        """
        if self._complete(self.binary_folder, self._binary_names()) or self._complete(
                self.python_folder, self.train_files + self.test_files + [self.meta_file]):
            return
        archive = download_from_mirrors(
            self.archive, self.root, self.mirrors, md5=self.archive_md5,
            timeout=self.download_timeout,
            hint=f"To place the files by hand, extract {self.archive} into {self.root}.")
        extract(archive, self.root,
                keep=lambda name: Path(name).parts[:1] == (self.python_folder,))


class CIFAR100(CIFAR10):
    """CIFAR-100: as :class:`CIFAR10` with 100 classes (the fine labels, as torchvision's).

    Reads ``root/cifar-100-binary`` (``train.bin``, ``test.bin``, ``fine_label_names.txt``)
    if present, else ``root/cifar-100-python`` (``train``, ``test``, ``meta``).
    """

    archive, archive_md5 = "cifar-100-python.tar.gz", "eb9058c3a382ffc7106e4002c42a8d85"
    python_folder, binary_folder = "cifar-100-python", "cifar-100-binary"
    train_files, test_files = ["train"], ["test"]
    meta_file, meta_key = "meta", "fine_label_names"
    binary_meta_file = "fine_label_names.txt"
    label_bytes = 2  # coarse, then fine
    label_key = "fine_labels"
    num_classes = 100


def _describe(value):
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    if isinstance(value, (list, tuple)):
        return f"a {type(value).__name__} of {len(value)} items"
    return type(value).__name__
