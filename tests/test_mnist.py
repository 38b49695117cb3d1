"""cnn.datasets.MNIST: real MNIST, IDX parsing of malformed files, downloads from a local server.

The real files are read from the shared data folder next to the repository (skipped when it is
absent). Downloads go to an http.server on 127.0.0.1 started here, never to the internet.
"""
import gzip
import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn.data import DataLoader
from cnn.datasets import MNIST, DownloadError, download, download_url, read_idx

REAL = Path(__file__).parents[1] / ".." / "shared" / "data" / "mnist"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real MNIST not found in {REAL}")
STEMS = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
         "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
# MD5 of the uncompressed files (the gzipped copies may be recompressed: their MD5 can differ).
RAW_MD5 = {"train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
           "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
           "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
           "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637"}


def idx_bytes(array, magic):
    """An IDX file: big-endian magic, one 4-byte size per dimension, then the uint8 values."""
    array = np.asarray(array, np.uint8)
    dims = b"".join(d.to_bytes(4, "big") for d in array.shape)
    return magic.to_bytes(4, "big") + dims + array.tobytes()


def synthetic(n_train=12, n_test=7, seed=0):
    """The four MNIST files, small and random: {stem: uncompressed IDX bytes}."""
    rng = np.random.default_rng(seed)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        files[f"{prefix}-images-idx3-ubyte"] = idx_bytes(rng.integers(0, 256, (n, 28, 28)), 2051)
        files[f"{prefix}-labels-idx1-ubyte"] = idx_bytes(rng.integers(0, 10, n), 2049)
    return files


def write(folder, files, compress=True):
    """Write ``{stem: bytes}`` into ``folder`` (as ``stem.gz`` when ``compress``)."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, content in files.items():
        if compress:
            (folder / (stem + ".gz")).write_bytes(gzip.compress(content))
        else:
            (folder / stem).write_bytes(content)


def link_real(folder, stems=STEMS):
    """Symlink the real (gzipped) files into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem in stems:
        (folder / (stem + ".gz")).symlink_to((REAL / (stem + ".gz")).resolve())
    return folder


def listing(folder):
    return sorted(path.name for path in Path(folder).iterdir())


# ***** real MNIST *****

@pytest.fixture(scope="module")
def train_set():
    return MNIST(REAL, train=True)


@pytest.fixture(scope="module")
def test_set():
    return MNIST(REAL, train=False)


@needs_real
def test_real_shapes_labels_and_content(train_set, test_set):
    for dataset, n, counts, first in (
            (train_set, 60000, [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949], 5),
            (test_set, 10000, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], 7)):
        assert len(dataset) == n
        assert dataset.data.shape == (n, 28, 28) and dataset.data.dtype == np.uint8
        assert dataset.targets.shape == (n,) and dataset.targets.dtype == np.int64
        assert np.bincount(dataset.targets).tolist() == counts
        assert dataset.targets[0] == first
    # The parsed arrays are exactly the published files' content.
    for dataset, prefix in ((train_set, "train"), (test_set, "t10k")):
        images = idx_bytes(dataset.data, 2051)
        labels = idx_bytes(dataset.targets, 2049)
        assert hashlib.md5(images).hexdigest() == RAW_MD5[f"{prefix}-images-idx3-ubyte"]
        assert hashlib.md5(labels).hexdigest() == RAW_MD5[f"{prefix}-labels-idx1-ubyte"]


@needs_real
def test_real_getitem_gives_the_image_as_torchvision(train_set):
    image, label = train_set[0]  # torchvision's PIL image, as an array: uint8 (28, 28)
    assert image.shape == (28, 28) and image.dtype == np.uint8
    assert type(label) is int and label == 5
    np.testing.assert_array_equal(image, train_set.data[0])
    last_image, last_label = train_set[-1]
    np.testing.assert_array_equal(last_image, train_set.data[-1])
    assert last_label == train_set.targets[-1]
    with pytest.raises(IndexError, match="60000"):
        train_set[60000]
    as_tensor = MNIST(REAL, train=True, transform=cnn.transforms.ToTensor())
    tensor, _ = as_tensor[0]
    assert tensor.shape == (1, 28, 28) and tensor.dtype == np.float32
    np.testing.assert_array_equal(tensor.numpy()[0], train_set.data[0].astype(np.float32) / 255)


@needs_real
def test_real_batch_indexing(test_set):
    images, labels = test_set[np.array([3, 0, 9999])]
    assert images.shape == (3, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and labels.tolist() == test_set.targets[[3, 0, 9999]].tolist()
    np.testing.assert_array_equal(images[1], test_set[0][0])
    as_tensor = MNIST(REAL, train=False, transform=cnn.transforms.ToTensor())
    images, labels = as_tensor[10:15]
    assert images.shape == (5, 1, 28, 28) and images.dtype == np.float32 and len(labels) == 5
    np.testing.assert_array_equal(images.numpy()[2], as_tensor[12][0].numpy())
    with pytest.raises(TypeError, match="index"):
        test_set["0"]


@needs_real
def test_real_loader_fast_path(train_set):
    train_set = MNIST(REAL, train=True, transform=cnn.transforms.ToTensor())
    loader = DataLoader(train_set, batch_size=64, shuffle=True, seed=0)
    assert len(loader) == 938
    sizes = []
    for images, labels in loader:
        sizes.append(len(labels))
    assert sum(sizes) == 60000 and sizes[-1] == 60000 % 64
    assert isinstance(images, cnn.Tensor)  # ToTensor's, computed for the whole batch at once
    assert images.shape == (32, 1, 28, 28) and images.dtype == np.float32
    assert 0.0 <= images.numpy().min() and images.numpy().max() <= 1.0
    images, labels = next(iter(DataLoader(train_set, batch_size=4, as_tensor=True)))
    assert isinstance(images, cnn.Tensor) and images.shape == (4, 1, 28, 28)
    assert labels.numpy().tolist() == [5, 0, 4, 1]


@needs_real
def test_real_uncompressed_and_torchvision_layout(tmp_path, test_set):
    for stem in STEMS[2:]:
        with gzip.open(REAL / (stem + ".gz")) as source:
            (tmp_path / stem).write_bytes(source.read())
    plain = MNIST(tmp_path, train=False)
    np.testing.assert_array_equal(plain.data, test_set.data)
    np.testing.assert_array_equal(plain.targets, test_set.targets)
    raw = link_real(tmp_path / "layout" / "MNIST" / "raw", STEMS[2:])
    assert np.array_equal(MNIST(raw.parents[1], train=False).targets, test_set.targets)


@needs_real
def test_root_resolution(tmp_path, monkeypatch, test_set):
    from_env = link_real(tmp_path / "env", STEMS[2:])
    home = tmp_path / "home"
    from_home = link_real(home / ".cache" / "cnn" / "mnist", STEMS[2:])
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)  # else the cache is there
    monkeypatch.setenv("CNN_DATA", str(from_env))
    assert MNIST(train=False).root == from_env
    assert MNIST(str(from_home), train=False).root == from_home  # root beats CNN_DATA
    monkeypatch.setenv("CNN_DATA", "")  # empty counts as unset
    assert MNIST(train=False).root == from_home
    monkeypatch.delenv("CNN_DATA")
    dataset = MNIST(train=False)
    assert dataset.root == from_home and len(dataset) == 10000
    assert MNIST("~/.cache/cnn/mnist", train=False).root == from_home


# ***** files missing or malformed (synthetic) *****

def test_synthetic_round_trip(tmp_path):
    files = synthetic()
    write(tmp_path, files)
    dataset = MNIST(tmp_path, train=True)
    assert dataset.data.shape == (12, 28, 28)
    assert idx_bytes(dataset.data, 2051) == files["train-images-idx3-ubyte"]
    assert idx_bytes(dataset.targets, 2049) == files["train-labels-idx1-ubyte"]
    assert len(MNIST(tmp_path, train=False)) == 7


def test_transforms_see_each_image_and_label(tmp_path):
    write(tmp_path, synthetic())
    shapes = []

    def transform(image):
        shapes.append(image.shape)
        return image.astype(np.float32) / 255 * 2 - 1

    dataset = MNIST(tmp_path, transform=transform, target_transform=lambda y: -y)
    image, label = dataset[3]
    assert image.shape == (28, 28) and -1 <= image.min() and image.max() <= 1
    assert label == -dataset.targets[3]
    assert not dataset.supports_batch_indexing  # a plain function maps one image at a time
    images, labels = dataset[[0, 1]]
    assert shapes == [(28, 28)] * 3 and images.shape == (2, 28, 28)
    np.testing.assert_allclose(images[0], dataset.data[0] / 255 * 2 - 1, atol=1e-6)
    assert labels.tolist() == (-dataset.targets[:2]).tolist()


def test_missing_files_message(tmp_path, monkeypatch):
    write(tmp_path, {"train-images-idx3-ubyte": synthetic()["train-images-idx3-ubyte"]})
    with pytest.raises(FileNotFoundError) as raised:
        MNIST(tmp_path, train=True)
    message = str(raised.value)
    assert str(tmp_path) in message and "train-labels-idx1-ubyte.gz" in message
    assert "train-images" not in message.split("):")[1].split("(")[0]  # present, so not listed
    for needed in ("download=True", "by hand", "CNN_DATA", "MNIST/raw"):
        assert needed in message
    monkeypatch.setenv("CNN_DATA", str(tmp_path / "nowhere"))
    with pytest.raises(FileNotFoundError, match="CNN_DATA.*t10k-images-idx3-ubyte.gz"):
        MNIST(train=False)


def malformed_cases():
    files = synthetic(n_train=5)
    images, labels = files["train-images-idx3-ubyte"], files["train-labels-idx1-ubyte"]
    return {
        "wrong magic": (images[:3] + b"\x99" + images[4:], "images",
                        "magic number 2201, expected 2051"),
        "swapped": (labels, "images", "magic number 2049.*swapped"),
        "truncated body": (images[:1000], "images", "expected 3920 bytes of pixels.* found 984 "
                                                    r"\(truncated file\?\)"),
        "trailing data": (images + b"\0" * 7, "images", "found 3927.*trailing"),
        "short header": (images[:10], "images", "declares 3 dimensions.*16 bytes, found only 10"),
        "tiny file": (b"\0\0", "images", "2 bytes, too short"),
        "empty file": (b"", "labels", "0 bytes, too short"),
        "random bytes": (np.random.default_rng(1).bytes(5000), "images", "magic number"),
        "huge count": (images[:4] + (4_000_000_000).to_bytes(4, "big") + images[8:], "images",
                       "expected 3136000000000 bytes of pixels"),
        "not 28x28": (idx_bytes(np.zeros((5, 28, 27)), 2051), "images", "28 x 28.*28 x 27"),
        "label above 9": (idx_bytes([1, 2, 12, 3, 4], 2049), "labels", "0..9, found 12"),
        "bad type code": (b"\0\0\x07\x03" + images[4:], None, "not an IDX file"),
    }


@pytest.mark.parametrize("compress", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("case", sorted(malformed_cases()))
def test_malformed_file_names_file_and_problem(tmp_path, case, compress):
    content, kind, pattern = malformed_cases()[case]
    files = synthetic(n_train=5)
    if kind is None:  # the raw IDX parser, with no expected magic number
        path = tmp_path / ("file.gz" if compress else "file")
        path.write_bytes(gzip.compress(content) if compress else content)
        with pytest.raises(ValueError, match=pattern) as raised:
            read_idx(path)
    else:
        files[f"train-{kind}-idx{3 if kind == 'images' else 1}-ubyte"] = content
        write(tmp_path, files, compress)
        with pytest.raises(ValueError, match=pattern) as raised:
            MNIST(tmp_path)
        path = next(tmp_path.glob(f"train-{kind}-*"))
    assert str(path) in str(raised.value)


@pytest.mark.parametrize("damage, pattern", [
    (lambda gz: gz[:len(gz) // 2], "compressed data ends early"),
    (lambda gz: gz[:10] + b"\xff" * (len(gz) - 10), "corrupt gzip data"),
    (lambda gz: gz[:-8] + b"\0\0\0\0" + gz[-4:], "corrupt gzip data.*CRC"),
])
def test_damaged_gzip(tmp_path, damage, pattern):
    files = synthetic()
    write(tmp_path, files)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(ValueError, match=pattern) as raised:
        MNIST(tmp_path)
    assert str(path) in str(raised.value)


def test_image_and_label_counts_must_agree(tmp_path):
    files = synthetic(n_train=12)
    files["train-labels-idx1-ubyte"] = synthetic(n_train=11)["train-labels-idx1-ubyte"]
    write(tmp_path, files)
    with pytest.raises(ValueError, match="12 images but .*train-labels-idx1-ubyte.gz holds 11"):
        MNIST(tmp_path)


def test_bad_arguments(tmp_path):
    write(tmp_path, synthetic())
    with pytest.raises(TypeError, match="train"):
        MNIST(tmp_path, train="yes")
    with pytest.raises(TypeError, match="download"):
        MNIST(tmp_path, download=1)
    with pytest.raises(TypeError, match="transform"):
        MNIST(tmp_path, transform=3)
    with pytest.raises(TypeError, match="root"):
        MNIST(3.5)


# ***** downloads from a local HTTP server *****

class Server:
    """An HTTP server on 127.0.0.1 in a thread, answering by the first path component:
    ``/good/<file>`` the file, ``/corrupt/<file>`` altered bytes, ``/e404/`` and ``/e500/``
    those statuses, ``/short/<file>`` half the file then a closed connection, ``/slow/<file>``
    nothing for three seconds, ``/trickle/<file>`` a byte every 0.05 s. ``requests`` records every path asked for."""

    def __init__(self, files):
        self.files = {stem + ".gz": gzip.compress(content) for stem, content in files.items()}
        self.requests = []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                _, mode, name = self.path.split("/", 2)
                body = server.files.get(name)
                try:
                    if mode in ("e404", "e500") or body is None:
                        self.send_error(500 if mode == "e500" else 404)
                        return
                    if mode == "slow":
                        time.sleep(3.0)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if mode == "corrupt":
                        body = body[:-1] + bytes([body[-1] ^ 1])
                    if mode == "trickle":
                        for i in range(len(body)):
                            self.wfile.write(body[i:i + 1])
                            self.wfile.flush()
                            time.sleep(0.05)
                        return
                    self.wfile.write(body[:len(body) // 2] if mode == "short" else body)
                except OSError:  # the client gave up (time-out test)
                    pass

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        # A short poll interval, so that shutdown() returns quickly.
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.02,), daemon=True)
        self.thread.start()

    def url(self, mode):
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{mode}/"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server():
    running = Server(synthetic())
    yield running
    running.close()


def refused_url():
    """A URL on a local port nobody listens on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def local_mnist(server, *mirrors):
    """MNIST fetching from ``mirrors``, expecting the MD5 sums of the server's files."""
    md5 = {name: hashlib.md5(body).hexdigest() for name, body in server.files.items()}
    return type("LocalMNIST", (MNIST,), {"mirrors": mirrors, "resources": md5,
                                         "download_timeout": 1.0})


def test_a_trickling_download_ends_at_its_deadline(tmp_path, server):
    # Every read gets a byte well within the 1 s timeout; only the overall deadline ends it.
    with pytest.raises(DownloadError, match="not complete after 0.3 s"):
        download_url(server.url("trickle") + "train-labels-idx1-ubyte.gz",
                     tmp_path / "labels.gz", timeout=1.0, deadline=0.3)
    assert listing(tmp_path) == []  # no partial file


def test_download(tmp_path, server):
    Local = local_mnist(server, server.url("good"))
    root = tmp_path / "new" / "folder"
    dataset = Local(root, download=True)
    assert listing(root) == sorted(server.files)  # the four files, nothing else
    assert len(dataset) == 12 and len(Local(root, train=False)) == 7
    umask = os.umask(0o022)
    os.umask(umask)
    assert (root / "t10k-labels-idx1-ubyte.gz").stat().st_mode & 0o777 == 0o666 & ~umask
    assert idx_bytes(dataset.data, 2051) == synthetic()["train-images-idx3-ubyte"]
    asked = len(server.requests)
    Local(root, train=False, download=True)
    assert len(server.requests) == asked  # present files are not fetched again


def test_download_skips_files_present(tmp_path, server):
    stem = "train-images-idx3-ubyte"
    write(tmp_path / "MNIST" / "raw", {stem: synthetic()[stem]}, compress=False)
    local_mnist(server, server.url("good"))(tmp_path, download=True)
    assert sorted(path.rsplit("/", 1)[1] for path in server.requests) == sorted(
        name for name in server.files if not name.startswith("train-images"))


def test_download_falls_back_to_the_next_mirror(tmp_path, server):
    dataset = local_mnist(server, server.url("e404"), server.url("good"))(tmp_path, download=True)
    assert len(dataset) == 12
    assert server.requests[:2] == ["/e404/train-images-idx3-ubyte.gz",
                                   "/good/train-images-idx3-ubyte.gz"]


def test_md5_mismatch_leaves_nothing(tmp_path, server):
    Local = local_mnist(server, server.url("corrupt"))
    with pytest.raises(DownloadError) as raised:
        Local(tmp_path, download=True)
    message = str(raised.value)
    assert server.url("corrupt") + "train-images-idx3-ubyte.gz: MD5 mismatch" in message
    assert "by hand" in message
    assert listing(tmp_path) == []


def test_every_mirror_failing_lists_every_url(tmp_path, server):
    mirrors = (server.url("e404"), server.url("e500"), refused_url(), server.url("short"),
               server.url("slow"))
    with pytest.raises(DownloadError) as raised:
        local_mnist(server, *mirrors)(tmp_path, download=True)
    lines = [line.strip() for line in str(raised.value).splitlines()]
    name = "train-images-idx3-ubyte.gz"
    assert name in lines[0]
    assert lines[1].startswith(mirrors[0] + name) and "404" in lines[1]
    assert lines[2].startswith(mirrors[1] + name) and "500" in lines[2]
    assert lines[3].startswith(mirrors[2] + name) and "refused" in lines[3].lower()
    assert lines[4].startswith(mirrors[3] + name) and "closed after" in lines[4]
    assert lines[5].startswith(mirrors[4] + name) and "timed out" in lines[5]
    assert "by hand" in lines[6] and "CNN_DATA" in lines[6]
    assert isinstance(raised.value, OSError)
    assert listing(tmp_path) == []


def test_interrupted_download_leaves_nothing(tmp_path, server, monkeypatch):
    def interrupt(fd):
        raise KeyboardInterrupt

    # The worst moment: all bytes written, not yet renamed. Ctrl-C is not a mirror failure.
    monkeypatch.setattr(download.os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        local_mnist(server, server.url("good"), server.url("good"))(tmp_path, download=True)
    assert listing(tmp_path) == []
    assert len(server.requests) == 1


def test_download_url(tmp_path, server):
    name = "t10k-labels-idx1-ubyte.gz"
    path = download_url(server.url("good") + name, tmp_path / "labels.gz")
    assert path.read_bytes() == server.files[name]
    with pytest.raises(DownloadError, match="unknown url type"):
        download_url("nonsense", tmp_path / "x")
    assert listing(tmp_path) == ["labels.gz"]
