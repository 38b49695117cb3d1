"""MNIST from its four IDX files, and the IDX file parser.

The IDX format (http://yann.lecun.com/exdb/mnist/): a big-endian header of two zero bytes, a
type code (0x08 for unsigned bytes), the number of dimensions, then one 4-byte size per
dimension, then the values in row-major order. MNIST's image files have magic number 2051
(0x00000803: unsigned bytes, 3 dimensions N x 28 x 28) and its label files 2049 (0x00000801).
"""
import gzip
import math
import operator
import os
import zlib
from pathlib import Path

import numpy as np

from .._validation import flag
from ..utils.data.dataset import Dataset
from .download import DEFAULT_TIMEOUT, download_from_mirrors

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


def load_labels(path):
    """Read an MNIST label file: ``int64`` array of shape ``(N,)`` with values in 0..9.

    Raises:
        ValueError: If the file is malformed (see :func:`read_idx`) or holds a label above 9.
    """
    labels = read_idx(path, LABELS_MAGIC, "labels")
    if labels.size and labels.max() >= NUM_CLASSES:
        raise ValueError(f"{path}: labels must be digits 0..9, found {int(labels.max())}")
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


class MNIST(Dataset):
    """The MNIST handwritten digits: 60,000 training and 10,000 test images of 28 x 28 pixels.

    Reads the four IDX files ``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
    ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``, each gzipped (``.gz``) or not,
    from ``root`` or from ``root/MNIST/raw/`` (torchvision's layout). The images stay ``uint8``
    in memory; indexing converts just the requested images to float32.

    Args:
        root: The folder holding the files; None means ``$CNN_DATA`` when that environment
            variable is set, else ``~/.cache/cnn/mnist``.
        train: The training set (True) or the test set (False).
        download: Fetch the files missing from ``root`` (all four) from :attr:`mirrors`,
            checking their MD5 sums. Files already present are not fetched again.
        transform: A callable applied to every float batch of shape ``(B, 1, 28, 28)`` and
            returning a batch (a single image is passed as a batch of one), or None.

    Attributes:
        data (numpy.ndarray): The images, ``uint8`` of shape ``(N, 28, 28)``.
        targets (numpy.ndarray): The labels, ``int64`` of shape ``(N,)``.
        root (pathlib.Path): The folder the files were looked for in.
        mirrors (tuple of str): Base URLs tried in order by ``download=True``; a class
            attribute, so a subclass can point elsewhere.
        resources (dict): File name -> MD5 of the gzipped files on the mirrors.
        download_timeout (float): Seconds to wait for a connection or a read.

    Indexing:
        ``dataset[i]`` is ``(image, label)``: a float32 array ``(1, 28, 28)`` holding the pixels
        divided by 255 (so in [0, 1], as torchvision's ``ToTensor``), and an int. With a slice
        or an integer array of indices it is the batch ``(images (B, 1, 28, 28) float32,
        labels (B,) int64)``, which :class:`~cnn.utils.data.DataLoader` uses to fetch a batch at once.

    Raises:
        FileNotFoundError: If files are missing and ``download`` is False; the message names
            the folder and the files and says how to get them.
        ValueError: If a file is malformed or truncated (the message names it), or the image
            and label counts differ.
        cnn.datasets.DownloadError: If a download failed on every mirror.

    Example::

        train = MNIST(root="data", train=True, download=True)
        loader = DataLoader(train, batch_size=64, shuffle=True, seed=0)
    """

    mirrors = MIRRORS
    resources = RESOURCES
    download_timeout = DEFAULT_TIMEOUT
    classes = ["0 - zero", "1 - one", "2 - two", "3 - three", "4 - four", "5 - five", "6 - six",
               "7 - seven", "8 - eight", "9 - nine"]
    supports_batch_indexing = True

    def __init__(self, root=None, train=True, download=False, transform=None):
        train, download = flag(train, "train"), flag(download, "download")
        if transform is not None and not callable(transform):
            raise TypeError(f"transform: expected a callable or None, got "
                            f"{type(transform).__name__}")
        self.root, self._root_source = resolve_root(root)
        self.train = bool(train)
        self.transform = transform
        if download:
            self.download()
        prefix = "train" if self.train else "t10k"
        images_path, labels_path = self._locate_all([f"{prefix}-images-idx3-ubyte",
                                                     f"{prefix}-labels-idx1-ubyte"])
        self.data = load_images(images_path)
        self.targets = load_labels(labels_path)
        if len(self.data) != len(self.targets):
            raise ValueError(f"{images_path} holds {len(self.data)} images but {labels_path} "
                             f"holds {len(self.targets)} labels")

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
            raise FileNotFoundError(
                f"MNIST files missing from {self.root} ({self._root_source}): "
                f"{', '.join(missing)} (looked for each with and without .gz, there and in "
                f"{self._folders()[1]}). Pass download=True to fetch them, or place them by "
                f"hand: {self._by_hand()}")
        return paths

    def _by_hand(self):
        return (f"get {', '.join(self.resources)} from an MNIST mirror (e.g. {self.mirrors[0]}) "
                f"or another machine and copy them, gzipped or not, into {self.root}. That "
                "folder is the root argument, else the CNN_DATA environment variable, else "
                "~/.cache/cnn/mnist.")

    def download(self):
        """Fetch every MNIST file missing from :attr:`root` from the mirrors, MD5-checked.

        Files present (gzipped or not, in ``root`` or ``root/MNIST/raw``) are left alone.

        Raises:
            cnn.datasets.DownloadError: If a file failed on every mirror; the message lists
                every URL tried with its failure and how to place the files by hand.
        """
        for filename, md5 in self.resources.items():
            if self._locate(filename[:-len(".gz")]) is None:
                download_from_mirrors(filename, self.root, self.mirrors, md5=md5,
                                      timeout=self.download_timeout,
                                      hint=f"To place the files by hand, {self._by_hand()}")

    def __len__(self):
        """Return the number of images."""
        return len(self.data)

    def __getitem__(self, index):
        """Return ``(image, label)``, or a batch of them for a slice or an array of indices.

        Args:
            index: An integer, a slice, or a 1-d integer (or boolean) array or list.

        Returns:
            tuple: For an integer, a float32 array ``(1, 28, 28)`` in [0, 1] and an int; for a
            batch index, float32 ``(B, 1, 28, 28)`` and int64 ``(B,)``. ``transform`` (if any)
            has been applied to the images.
        """
        if isinstance(index, (int, np.integer)) and not isinstance(index, (bool, np.bool_)):
            position = operator.index(index)
            if not -len(self) <= position < len(self):
                raise IndexError(f"index {position} is out of range for MNIST with {len(self)} "
                                 "images")
            # A batch of one, so that transform always sees (B, 1, 28, 28).
            return self._images(self.data[position][None])[0], int(self.targets[position])
        if not isinstance(index, (slice, list, np.ndarray)):
            raise TypeError("index: expected an integer, a slice or a 1-d array of indices, got "
                            f"{type(index).__name__}")
        if isinstance(index, np.ndarray) and index.ndim != 1:
            raise IndexError(f"index: expected a 1-d array of indices, got shape {index.shape}")
        return self._images(self.data[index]), self.targets[index]

    def _images(self, pixels):
        """uint8 (B, 28, 28) -> float32 (B, 1, 28, 28) in [0, 1], then ``transform``."""
        # A true division (not a multiplication by 1/255) gives the same float32 values as
        # torchvision's ToTensor.
        images = np.divide(pixels[:, None], np.float32(255), dtype=np.float32)
        return images if self.transform is None else self.transform(images)

    def __repr__(self):
        return (f"Dataset MNIST\n    Number of datapoints: {len(self)}\n"
                f"    Root location: {self.root}\n    Split: {'Train' if self.train else 'Test'}")
