"""MNIST and the datasets in its format (Fashion-MNIST, Kuzushiji-MNIST), and the IDX parser.

The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero bytes, a
type code (0x08 for unsigned bytes), the number of dimensions, then one 4-byte size per
dimension, then the values in row-major order. MNIST's image files have magic number 2051
(0x00000803: unsigned bytes, 3 dimensions N x 28 x 28) and its label files 2049 (0x00000801).
"""
import gzip
import math
import os
import zlib
from pathlib import Path

import numpy as np

from .._memory import check_fits
from .._validation import flag
from .download import DEFAULT_TIMEOUT, download_from_mirrors
from .vision import VisionDataset

MIRRORS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
# MD5 sums of the gzipped files as the mirrors serve them (torchvision's list). They are checked
# on download only: a file already on disk may be a recompressed copy of the same data.
RESOURCES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
IMAGES_MAGIC = 2051
LABELS_MAGIC = 2049
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10

# IDX type code -> dtype (multi-byte values are big-endian).
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot expand data by more than about 1032 times: a larger declared size is a lie,
# and believing it would mean allocating a huge array before noticing.
_MAX_DEFLATE_RATIO = 1032


def read_idx(path, magic=None, items="values"):
    """Read an IDX file, gzipped or not (recognised by its content, not its name).

    The whole file is validated: the magic number, the header, and a body of exactly the size
    the header declares (gzipped files are also checked for a complete stream and its CRC).

    Args:
        path: The file.
        magic: The expected magic number (e.g. 2051 for MNIST images), or None for any valid
            IDX header.
        items: What the values are, for error messages ("pixels", "labels").

    Returns:
        numpy.ndarray: The values, of the header's shape, in native byte order, writable.

    Raises:
        ValueError: If the file is not a valid IDX file of that magic number, is truncated or
            has trailing data, or is a corrupt gzip stream. The message names the file and
            what is wrong.
        OSError: If the file cannot be read.
    """
    path = Path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        size = os.fstat(raw.fileno()).st_size
        if not compressed:
            return _parse_idx(raw, path, magic, items, size=size)
        try:
            with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
                return _parse_idx(stream, path, magic, items, limit=size * _MAX_DEFLATE_RATIO)
        except EOFError:
            raise ValueError(f"{path}: the compressed data ends early (truncated file?)") from None
        except (gzip.BadGzipFile, zlib.error) as error:
            raise ValueError(f"{path}: corrupt gzip data ({error})") from None


def _parse_idx(stream, path, magic, items, size=None, limit=None):
    """Parse the IDX file open as ``stream``: ``size`` is its exact length when known,
    ``limit`` an upper bound on it otherwise."""
    header = stream.read(4)
    if len(header) < 4:
        raise ValueError(f"{path}: {len(header)} bytes, too short for an IDX header of 4 "
                         "bytes (truncated file?)")
    found_magic = int.from_bytes(header, "big")
    if magic is not None and found_magic != magic:
        raise ValueError(f"{path}: magic number {found_magic}, expected {magic} "
                         f"({_describe_magic(magic)}); {_describe_found(found_magic)}")
    ndim = header[3]
    if header[:2] != b"\0\0" or header[2] not in _IDX_DTYPES or ndim == 0:
        raise ValueError(f"{path}: not an IDX file (header {header.hex()})")
    dims_bytes = stream.read(4 * ndim)
    header_size = 4 + 4 * ndim
    if len(dims_bytes) < 4 * ndim:
        raise ValueError(f"{path}: the header declares {ndim} dimensions and so {header_size} "
                         f"bytes, found only {4 + len(dims_bytes)} (truncated file?)")
    shape = tuple(int.from_bytes(dims_bytes[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = np.dtype(_IDX_DTYPES[header[2]])
    expected = math.prod(shape) * dtype.itemsize
    shape_text = " x ".join(map(str, shape))

    def length_error(found, note):
        return ValueError(f"{path}: expected {expected} bytes of {items} ({shape_text}), "
                          f"found {found} ({note})")

    if size is not None and size - header_size != expected:
        found = size - header_size
        raise length_error(found, "truncated file?" if found < expected else
                           "trailing data, or a wrong header?")
    if limit is not None and expected > limit:
        raise length_error(f"at most {limit}", "a wrong header, or a truncated file?")
    check_fits(expected, f"{path}: the IDX header ({shape_text} {items})")
    body = np.empty(expected, np.uint8)
    filled = _read_into(stream, memoryview(body))
    if filled < expected:
        raise length_error(filled, "truncated file?")
    extra = _count_rest(stream)
    if extra:
        raise length_error(expected + extra, "trailing data, or a wrong header?")
    return body.view(dtype).reshape(shape).astype(dtype.newbyteorder("="), copy=False)


# Pieces of at most this many bytes: asked for the whole 47 MB body at once, Python's gzip
# reader builds a temporary copy of it, which raised the whole process's peak memory by half.
_READ_PIECE = 1 << 20


def _read_into(stream, view):
    """Fill ``view`` from ``stream`` until it is full or the stream ends; return bytes read."""
    filled = 0
    while filled < len(view):
        count = stream.readinto(view[filled:filled + _READ_PIECE])
        if not count:
            break
        filled += count
    return filled


def _count_rest(stream):
    """Read ``stream`` to its end (which also checks a gzip stream's CRC); return bytes read."""
    count = 0
    while True:
        chunk = stream.read(_READ_PIECE)
        if not chunk:
            return count
        count += len(chunk)


def _describe_magic(magic):
    return {IMAGES_MAGIC: "an MNIST image file", LABELS_MAGIC: "an MNIST label file"}.get(
        magic, "an IDX file")


def _describe_found(found_magic):
    if found_magic in (IMAGES_MAGIC, LABELS_MAGIC):
        return f"this is {_describe_magic(found_magic)}: are the file names swapped?"
    return "not an IDX file of that kind (corrupt, or another format?)"


def load_images(path):
    """Read an MNIST image file: ``uint8`` array of shape ``(N, 28, 28)``.

    Raises:
        ValueError: If the file is malformed (see :func:`read_idx`) or the images are not
            28 x 28.
    """
    images = read_idx(path, IMAGES_MAGIC, "pixels")
    if images.shape[1:] != IMAGE_SIZE:
        raise ValueError(f"{path}: expected images of 28 x 28 pixels, found "
                         f"{' x '.join(map(str, images.shape[1:]))}")
    return images


def load_labels(path, num_classes=NUM_CLASSES):
    """Read an MNIST label file: ``int64`` array of shape ``(N,)`` with values in
    ``0..num_classes - 1``.

    Raises:
        ValueError: If the file is malformed (see :func:`read_idx`) or holds a label out of
            range.
    """
    labels = read_idx(path, LABELS_MAGIC, "labels")
    if labels.size and labels.max() >= num_classes:
        expected = "digits 0..9" if num_classes == 10 else f"classes 0..{num_classes - 1}"
        raise ValueError(f"{path}: labels must be {expected}, found {int(labels.max())}")
    return labels.astype(np.int64)


def default_root():
    """The folder MNIST is read from when neither ``root`` nor ``$CNN_DATA`` names one.

    Returns:
        pathlib.Path: ``cnn/mnist`` in the user's cache folder: ``$XDG_CACHE_HOME`` when it is
        set to an absolute path (the XDG Base Directory rule), else ``~/.cache``.
    """
    cache = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(cache) if os.path.isabs(cache) else Path("~/.cache").expanduser()
    return base / "cnn" / "mnist"


def resolve_root(root=None):
    """The folder MNIST is read from, and where that choice came from.

    Args:
        root: A path, or None for ``$CNN_DATA`` when set and non-empty, else
            :func:`default_root` (``~/.cache/cnn/mnist``, or under ``$XDG_CACHE_HOME``).

    Returns:
        tuple: ``(pathlib.Path, str)``, the folder (``~`` expanded) and a phrase saying which
        rule chose it, for error messages.
    """
    if root is not None:
        try:
            return Path(os.fspath(root)).expanduser(), "the root argument"
        except TypeError:
            raise TypeError(f"root: expected a path or None, got {type(root).__name__}") from None
    if os.environ.get("CNN_DATA"):
        return Path(os.environ["CNN_DATA"]).expanduser(), "from $CNN_DATA"
    return default_root(), "the default, as root is None and CNN_DATA unset"


class MNIST(VisionDataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images of 28 x 28 pixels,
    as ``torchvision.datasets.MNIST``.

    Reads the four IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``) or not,
    from ``root`` or from ``root/MNIST/raw/`` (torchvision's layout). The images stay ``uint8``
    in memory.

    Args:
        root: The folder holding the files; None means ``$CNN_DATA`` when that environment
            variable is set, else ``~/.cache/cnn/mnist``.
        train: The training set (True) or the test set (False).
        transform (callable, optional): Applied to each image, e.g.
            ``cnn.transforms.ToTensor()``.
        target_transform (callable, optional): Applied to each label.
        download: Fetch the files missing from ``root`` (all four) from :attr:`mirrors`,
            checking their MD5 sums. Files already present are not fetched again.

    Attributes:
        data (numpy.ndarray): The images, ``uint8`` of shape ``(N, 28, 28)``.
        targets (numpy.ndarray): The labels, ``int64`` of shape ``(N,)``.
        root (pathlib.Path): The folder the files were looked for in.
        mirrors (tuple of str): Base URLs tried in order by ``download=True``; a class
            attribute, so a subclass can point elsewhere.
        resources (dict): File name -> MD5 of the gzipped files on the mirrors.
        download_timeout (float): Seconds to wait for a connection or a read.

    Indexing:
        ``dataset[i]`` is ``(image, label)``: the image a uint8 array ``(28, 28)`` (as
        ``numpy.asarray`` of torchvision's PIL image) through ``transform``, the label an int
        through ``target_transform``. With a slice or an array of indices it is the batch
        ``(images, labels (B,) int64)``; with ``transform=ToTensor()`` the images are float32
        ``(B, 1, 28, 28)`` in [0, 1], computed in one step (see
        :class:`~cnn.datasets.vision.VisionDataset`).

    Raises:
        FileNotFoundError: If files are missing and ``download`` is False; the message names
            the folder and the files and says how to get them.
        ValueError: If a file is malformed or truncated (the message names it), or the image
            and label counts differ.
        cnn.datasets.DownloadError: If a download failed on every mirror.

    Example::

        train = MNIST(root="data", train=True, transform=transforms.ToTensor(), download=True)
        loader = DataLoader(train, batch_size=64, shuffle=True)
    """

    mirrors = MIRRORS
    resources = RESOURCES
    download_timeout = DEFAULT_TIMEOUT
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]
    # Folders beside root's own: torchvision's root/<Name>/raw and root/<Name>, and other
    # names distributions use.
    folder_names = ()

    def __init__(self, root=None, train=True, transform=None, target_transform=None,
                 download=False):
        train, download = flag(train, "train"), flag(download, "download")
        super().__init__(transform, target_transform)
        self.root, self._root_source = self._resolve(root)
        self.train = bool(train)
        if download:
            self.download()
        images_path, labels_path = self._locate_all([self._file_stem("images"),
                                                     self._file_stem("labels")])
        self.data = load_images(images_path)
        self.targets = load_labels(labels_path, len(self.classes))
        if len(self.data) != len(self.targets):
            raise ValueError(f"{images_path} holds {len(self.data)} images but {labels_path} "
                             f"holds {len(self.targets)} labels")

    def _resolve(self, root):
        return resolve_root(root)

    def _file_stem(self, kind):
        split = "train" if self.train else "t10k"
        return f"{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"

    def _folders(self):
        return (self.root, self.root / "MNIST" / "raw")

    def _locate(self, stem):
        """The path of file ``stem`` (uncompressed or ``.gz``), or None when absent."""
        # Uncompressed first: it loads faster than the same data gzipped.
        for folder in self._folders():
            for name in (stem, stem + ".gz"):
                if (folder / name).is_file():
                    return folder / name
        return None

    def _locate_all(self, stems):
        paths = [self._locate(stem) for stem in stems]
        missing = [stem + ".gz" for stem, path in zip(stems, paths) if path is None]
        if missing:
            others = ", ".join(str(folder) for folder in self._folders()[1:])
            raise FileNotFoundError(
                f"{type(self).__name__} files missing from {self.root} ({self._root_source}): "
                f"{', '.join(missing)} (looked for each with and without .gz, there and in "
                f"{others}). Pass download=True to fetch them, or place them by "
                f"hand: {self._by_hand()}")
        return paths

    def _by_hand(self):
        return (f"get {', '.join(self.resources)} from an MNIST mirror (e.g. {self.mirrors[0]}) "
                f"or another machine and copy them, gzipped or not, into {self.root}. That "
                "folder is the root argument, else the CNN_DATA environment variable, else "
                "~/.cache/cnn/mnist.")

    def _download_folder(self):
        return self.root

    def download(self):
        """Fetch every file missing from :attr:`root` from the mirrors, MD5-checked.

        Files present (gzipped or not, in any folder looked in) are left alone.

        Raises:
            cnn.datasets.DownloadError: If a file failed on every mirror; the message lists
                every URL tried with its failure and how to place the files by hand.
        """
        for filename, md5 in self.resources.items():
            if self._locate(filename[:-len(".gz")]) is None:
                download_from_mirrors(filename, self._download_folder(), self.mirrors, md5=md5,
                                      timeout=self.download_timeout,
                                      hint=f"To place the files by hand, {self._by_hand()}")


class _NamedFolderMNIST(MNIST):
    """An MNIST-format dataset whose files share MNIST's names: so they are looked for only in
    folders named after it (``root/<Name>/raw``, ``root/<Name>``, ``root/<alias>``), never in
    ``root`` itself where MNIST's may be; downloads go to ``root/<Name>/raw``."""

    folder_alias = ""

    def _resolve(self, root):
        if root is None:
            raise TypeError(f"root: {type(self).__name__} needs the folder that holds its own "
                            "folder (torchvision's root), got None")
        return resolve_root(root)

    def _folders(self):
        name = type(self).__name__
        return (self.root / name / "raw", self.root / name, self.root / self.folder_alias)

    def _download_folder(self):
        return self._folders()[0]

    def _by_hand(self):
        return (f"get {', '.join(self.resources)} (e.g. from {self.mirrors[0]}) and copy them, "
                f"gzipped or not, into {self._folders()[0]}.")


class FashionMNIST(_NamedFolderMNIST):
    """Fashion-MNIST (Zalando): 28 x 28 grey images of 10 kinds of clothing, in MNIST's format,
    as ``torchvision.datasets.FashionMNIST``.

    Arguments, attributes and indexing as :class:`MNIST`, except that `root` is required and
    the files are looked for in ``root/FashionMNIST/raw``, ``root/FashionMNIST`` and
    ``root/fashion-mnist`` (where Debian's ``dataset-fashion-mnist`` package puts them:
    ``FashionMNIST("/usr/share/datasets")`` reads it offline).
    """

    mirrors = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)
    resources = {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    classes = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]
    folder_alias = "fashion-mnist"


class KMNIST(_NamedFolderMNIST):
    """Kuzushiji-MNIST: 28 x 28 images of 10 cursive Japanese characters, in MNIST's format, as
    ``torchvision.datasets.KMNIST``.

    Arguments, attributes and indexing as :class:`MNIST`, except that `root` is required and
    the files are looked for in ``root/KMNIST/raw``, ``root/KMNIST`` and ``root/kmnist``.
    """

    mirrors = ("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",)
    resources = {
        "train-images-idx3-ubyte.gz": "bdb82020997e1d708af4cf47b453dcf7",
        "train-labels-idx1-ubyte.gz": "e144d726b3acfaa3e44228e80efcd344",
        "t10k-images-idx3-ubyte.gz": "5c965bf0a639b31b8f53240b1b52f4d7",
        "t10k-labels-idx1-ubyte.gz": "7320c461ea6c1c855c0b718fb2a4b134",
    }
    classes = ["o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"]
    folder_alias = "kmnist"
