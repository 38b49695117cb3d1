"""EMNIST: the extended MNIST (letters and digits), in MNIST's format, six splits."""
import string

from .archives import extract
from .download import download_from_mirrors
from .mnist import MNIST


class EMNIST(MNIST):
    """EMNIST (Cohen et al., 2017): 28 x 28 handwritten letters and digits, as
    ``torchvision.datasets.EMNIST``.

    Reads ``emnist-<split>-<train|test>-<images-idx3|labels-idx1>-ubyte`` (gzipped or not)
    from ``root``, ``root/EMNIST/raw`` or ``root/EMNIST``. ``download=True`` fetches NIST's
    ``gzip.zip`` (561 MB, MD5-checked) into ``root/EMNIST/raw``, extracts every split's files
    there and deletes the archive. As in torchvision, the images are as the files store them
    (transposed with respect to MNIST's: ``image.T`` shows them upright).

    Args:
        root: The folder (required).
        split (str): ``"byclass"`` (62 classes), ``"bymerge"`` and ``"balanced"`` (47),
            ``"letters"`` (26, labelled 1 to 26), ``"digits"`` or ``"mnist"`` (10).
        train, transform, target_transform, download: As :class:`MNIST`.

    Attributes:
        classes (list of str): The split's class names (``"N/A"`` first for ``letters``).
        As :class:`MNIST` otherwise.

    Raises:
        ValueError: For an unknown `split`; as :class:`MNIST` otherwise.
    """

    mirrors = ("https://biometrics.nist.gov/cs_links/EMNIST/",)
    archive, archive_md5 = "gzip.zip", "58c8d27c78d21e728a6bc7b3cc06412e"
    splits = ("byclass", "bymerge", "balanced", "letters", "digits", "mnist")
    _merged_classes = {"c", "i", "j", "k", "l", "m", "o", "p", "s", "u", "v", "w", "x", "y",
                       "z"}
    _all_classes = set(string.digits + string.ascii_letters)
    classes_split_dict = {
        "byclass": sorted(_all_classes),
        "bymerge": sorted(_all_classes - _merged_classes),
        "balanced": sorted(_all_classes - _merged_classes),
        "letters": ["N/A"] + list(string.ascii_lowercase),
        "digits": list(string.digits),
        "mnist": list(string.digits),
    }

    def __init__(self, root, split, train=True, transform=None, target_transform=None,
                 download=False):
        if split not in self.splits:
            raise ValueError(f"split: expected one of {', '.join(self.splits)}, got {split!r}")
        self.split = split
        self.classes = self.classes_split_dict[split]
        super().__init__(root, train, transform, target_transform, download)

    @property
    def resources(self):
        """The split's four files (their MD5 is the archive's, checked on download)."""
        return {f"emnist-{self.split}-{part}.gz": None for part in (
            "train-images-idx3-ubyte", "train-labels-idx1-ubyte", "test-images-idx3-ubyte",
            "test-labels-idx1-ubyte")}

    def _resolve(self, root):
        if root is None:
            raise TypeError("root: EMNIST needs the folder of its files, got None")
        return super()._resolve(root)

    def _file_stem(self, kind):
        split = "train" if self.train else "test"
        return f"emnist-{self.split}-{split}-{kind}-idx{3 if kind == 'images' else 1}-ubyte"

    def _folders(self):
        return (self.root, self.root / "EMNIST" / "raw", self.root / "EMNIST")

    def _by_hand(self):
        return (f"get {self.archive} from {self.mirrors[0]} and extract its gzip/emnist-*.gz "
                f"files into {self._folders()[1]}.")

    def download(self):
        """Fetch and extract the archive unless the split's files are all present.

        Raises:
            cnn.datasets.DownloadError: If the download failed (the message says how to
                place the files by hand).
            ValueError: If the archive is corrupt.
        """
        if all(self._locate(name[:-len(".gz")]) is not None for name in self.resources):
            return
        folder = self._folders()[1]
        archive = download_from_mirrors(self.archive, folder, self.mirrors,
                                        md5=self.archive_md5, timeout=self.download_timeout,
                                        hint=f"To place the files by hand, {self._by_hand()}")
        extract(archive, folder, keep=lambda name: name.endswith(".gz"), strip=1)
        archive.unlink()
