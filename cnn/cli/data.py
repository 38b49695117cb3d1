"""Where the command line finds MNIST on a user's first run: fetched into the cache by itself.

``--data DIR``, else ``$CNN_DATA``, else the cache folder (``~/.cache/cnn/mnist``, or under
``$XDG_CACHE_HOME``). When the cache is the folder to read and it lacks files, they are fetched
from the public mirrors with a progress bar (on a terminal) and MD5 checks, saying so; without a
connection the command stops with one line that says where to put the files. A folder named by
``--data`` or ``$CNN_DATA`` is never written to unless ``--download`` asks for it (a mistyped
path should get an error, not 11 MB of downloads).
"""
import os
import sys

from ..datasets import MNIST, DownloadError, download_from_mirrors
from ..datasets.mnist import default_root
from .errors import CommandError


def fetch_mnist_into_cache(args):
    """Fetch the MNIST files missing from the cache when the cache is where MNIST is read from.

    Args:
        args: The parsed arguments: ``data`` (a folder or None).

    Raises:
        CommandError: If a file could not be downloaded; one line naming the folder, the four
            files and the options that point elsewhere.
    """
    if args.data is not None or os.environ.get("CNN_DATA"):
        return
    root = default_root()
    missing = [name for name in MNIST.resources
               if not (root / name).is_file() and not (root / name[:-len(".gz")]).is_file()]
    if not missing:
        return
    print(f"MNIST is not in {root} yet: fetching {', '.join(missing)} from the public mirrors "
          "(11 MB for all four; each file MD5-checked)", file=sys.stderr, flush=True)
    for name in missing:
        try:
            with _ByteBar(name) as bar:
                download_from_mirrors(name, root, MNIST.mirrors, md5=MNIST.resources[name],
                                      timeout=MNIST.download_timeout, progress=bar.update)
        except DownloadError as error:
            raise CommandError(
                f"MNIST is not in {root} and could not be downloaded ({_first_failure(error)}). "
                f"Offline, copy {', '.join(MNIST.resources)} into that folder, or point --data "
                "(or CNN_DATA) at a folder that holds them.") from None


def _first_failure(error):
    """The first mirror's failure from a DownloadError's message (its second line)."""
    lines = str(error).splitlines()
    return lines[1].strip() if len(lines) > 1 else lines[0]


class _ByteBar:
    """A tqdm bar of bytes received for one file, on a terminal only (nothing without tqdm)."""

    def __init__(self, name):
        try:
            from tqdm import tqdm
        except ImportError:  # tqdm is a dependency of the package, but a user may remove it
            self._bar = None
            return
        self._bar = tqdm(desc=name, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                         disable=None, file=sys.stderr)

    def update(self, received, total):
        """``progress(received, total)`` of :func:`cnn.datasets.download_url`."""
        if self._bar is not None:
            self._bar.total = total
            self._bar.n = received
            self._bar.refresh()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        if self._bar is not None:
            self._bar.close()
