"""cnn.datasets beyond MNIST (test_mnist.py): Fashion-MNIST, KMNIST, EMNIST, CIFAR-10 and
CIFAR-100 from small files in their real formats made here, damaged files, the malicious pickle
refused, downloads from a local HTTP server, and the batch path the DataLoader uses."""
import hashlib
import io
import pickle
import tarfile
import zipfile

import numpy as np
import pytest

import cnn
import cnn.transforms as T
from cnn.datasets import CIFAR10, CIFAR100, EMNIST, KMNIST, MNIST, DownloadError, FashionMNIST
from cnn.datasets.archives import extract
from cnn.utils.data import DataLoader
from test_mnist import Server, idx_bytes, synthetic, write


def cifar_arrays(n, classes, seed=0):
    """Random CIFAR images as the files hold them, ``(n, 3072)`` planes, and labels."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (n, 3072)).astype(np.uint8), rng.integers(0, classes, n)


def write_cifar10(root, binary=False, sizes=(3, 2, 4, 1, 2, 5)):
    """A CIFAR-10 distribution of five small training batches and a test batch; returns the
    training images ``(N, 32, 32, 3)`` and labels, and the test ones."""
    parts = [cifar_arrays(n, 10, seed) for seed, n in enumerate(sizes)]
    names = [f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]
    label_names = [f"class{k}" for k in range(10)]
    folder = root / ("cifar-10-batches-bin" if binary else "cifar-10-batches-py")
    folder.mkdir(parents=True)
    for name, (data, labels) in zip(names, parts):
        if binary:
            records = np.concatenate([labels[:, None].astype(np.uint8), data], axis=1)
            (folder / (name + ".bin")).write_bytes(records.tobytes())
        else:
            entry = {"batch_label": name, "labels": labels.tolist(), "data": data,
                     "filenames": [f"{i}.png" for i in range(len(data))]}
            (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    if binary:
        (folder / "batches.meta.txt").write_text("\n".join(label_names) + "\n\n")
    else:
        (folder / "batches.meta").write_bytes(pickle.dumps(
            {"label_names": label_names, "num_vis": 3072}, protocol=2))
    hwc = [data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1) for data, _ in parts]
    labels = [labels for _, labels in parts]
    return (np.concatenate(hwc[:5]), np.concatenate(labels[:5])), (hwc[5], labels[5])


def write_cifar100(root, binary=False):
    data_train, fine_train = cifar_arrays(6, 100, 1)
    data_test, fine_test = cifar_arrays(3, 100, 2)
    folder = root / ("cifar-100-binary" if binary else "cifar-100-python")
    folder.mkdir(parents=True)
    for name, data, fine in (("train", data_train, fine_train), ("test", data_test, fine_test)):
        coarse = fine // 5
        if binary:
            records = np.concatenate([coarse[:, None], fine[:, None], data], axis=1)
            (folder / (name + ".bin")).write_bytes(records.astype(np.uint8).tobytes())
        else:
            entry = {"data": data, "fine_labels": fine.tolist(), "coarse_labels": coarse.tolist()}
            (folder / name).write_bytes(pickle.dumps(entry, protocol=2))
    names = [f"fine{k}" for k in range(100)]
    if binary:
        (folder / "fine_label_names.txt").write_text("\n".join(names))
        (folder / "coarse_label_names.txt").write_text("\n".join(f"c{k}" for k in range(20)))
    else:
        (folder / "meta").write_bytes(pickle.dumps({"fine_label_names": names}, protocol=2))
    return data_train.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), fine_train


# ***** CIFAR *****

@pytest.mark.parametrize("binary", [False, True])
def test_cifar10_reads_both_distributions(tmp_path, binary):
    (train_images, train_labels), (test_images, test_labels) = write_cifar10(tmp_path, binary)
    train = CIFAR10(tmp_path, train=True)
    assert train.data.shape == (12, 32, 32, 3) and train.data.dtype == np.uint8
    np.testing.assert_array_equal(train.data, train_images)
    assert train.targets.dtype == np.int64 and train.targets.tolist() == train_labels.tolist()
    assert train.classes[3] == "class3"
    image, label = train[4]
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8 and type(label) is int
    np.testing.assert_array_equal(image, train_images[4])
    test = CIFAR10(tmp_path, train=False)
    np.testing.assert_array_equal(test.data, test_images)
    assert "Split: Test" in repr(test)


@pytest.mark.parametrize("binary", [False, True])
def test_cifar100_reads_the_fine_labels(tmp_path, binary):
    images, fine = write_cifar100(tmp_path, binary)
    dataset = CIFAR100(tmp_path)
    np.testing.assert_array_equal(dataset.data, images)
    assert dataset.targets.tolist() == fine.tolist() and len(dataset.classes) == 100


def test_cifar_matches_torchvision(tmp_path, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    write_cifar10(tmp_path)
    # torchvision checks the real files' MD5 sums, which these small files cannot have.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    theirs = torchvision.datasets.CIFAR10(str(tmp_path), train=True)
    ours = CIFAR10(tmp_path, train=True)
    np.testing.assert_array_equal(ours.data, theirs.data)
    assert ours.targets.tolist() == theirs.targets and ours.classes == theirs.classes
    np.testing.assert_array_equal(ours[3][0], np.asarray(theirs[3][0]))  # its PIL image


def test_batch_path_equals_the_samples_and_feeds_the_loader(tmp_path):
    write_cifar10(tmp_path)
    recipe = T.Compose([T.ToTensor(), T.Normalize((0.5, 0.4, 0.3), (0.2, 0.25, 0.3))])
    dataset = CIFAR10(tmp_path, transform=recipe)
    assert dataset.supports_batch_indexing
    images, labels = dataset[[5, 0, 7]]
    assert isinstance(images, cnn.Tensor) and images.shape == (3, 3, 32, 32)
    for row, index in enumerate([5, 0, 7]):
        np.testing.assert_allclose(images.numpy()[row], dataset[index][0].numpy(), rtol=1e-6)
    assert labels.tolist() == dataset.targets[[5, 0, 7]].tolist()
    augmented = CIFAR10(tmp_path, transform=T.Compose([T.RandomCrop(32, padding=4),
                                                       T.RandomHorizontalFlip(), recipe]))
    assert not augmented.supports_batch_indexing  # per image: each gets its own draw
    batches = list(DataLoader(augmented, batch_size=5, shuffle=True, num_workers=0))
    assert [len(y) for _, y in batches] == [5, 5, 2]
    assert batches[0][0].shape == (5, 3, 32, 32) and batches[0][0].dtype == np.float32


def test_damaged_cifar_files_are_named(tmp_path):
    write_cifar10(tmp_path / "a", binary=True)
    path = tmp_path / "a" / "cifar-10-batches-bin" / "data_batch_2.bin"
    path.write_bytes(path.read_bytes()[:-5])
    with pytest.raises(ValueError, match="data_batch_2.bin: .* not a whole number .*truncated"):
        CIFAR10(tmp_path / "a")
    write_cifar10(tmp_path / "b")
    path = tmp_path / "b" / "cifar-10-batches-py" / "data_batch_1"
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 5), np.uint8), "labels": [0, 1]}))
    with pytest.raises(ValueError, match="data_batch_1: 'data' must be a uint8 array"):
        CIFAR10(tmp_path / "b")
    path.write_bytes(pickle.dumps({"data": np.zeros((2, 3072), np.uint8), "labels": [0, 10]}))
    with pytest.raises(ValueError, match="data_batch_1: labels must be classes 0..9"):
        CIFAR10(tmp_path / "b")
    path.write_bytes(b"\x80\x02}q\x00(X\x04")  # a pickle cut short
    with pytest.raises(ValueError, match="data_batch_1: not a valid pickle"):
        CIFAR10(tmp_path / "b")
    with pytest.raises(FileNotFoundError, match="download=True"):
        CIFAR10(tmp_path / "empty")


class Payload:
    """What a malicious pickle would run: here it only leaves a file behind."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_a_malicious_pickle_is_refused_without_running_it(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "pwned"
    path = tmp_path / "cifar-10-batches-py" / "data_batch_3"
    path.write_bytes(pickle.dumps({"data": Payload(marker), "labels": [1]}, protocol=2))
    with pytest.raises(ValueError, match=r"data_batch_3: refused to unpickle the global "
                                         r"(io|builtins)\.open"):
        CIFAR10(tmp_path)
    assert not marker.exists()
    path.write_bytes(pickle.dumps({"data": np.zeros((1, 3072), object), "labels": [1]}))
    with pytest.raises(ValueError, match="data_batch_3"):  # object arrays hold code too
        CIFAR10(tmp_path)


# ***** the MNIST family *****

def test_fashion_and_kmnist_read_their_own_folders_only(tmp_path):
    write(tmp_path, synthetic(seed=1))  # MNIST's files, in root itself
    fashion = synthetic(n_train=5, n_test=3, seed=2)
    write(tmp_path / "FashionMNIST" / "raw", fashion)
    dataset = FashionMNIST(tmp_path, train=True)
    assert idx_bytes(dataset.data, 2051) == fashion["train-images-idx3-ubyte"]
    assert dataset.classes[9] == "Ankle boot" and dataset[0][0].shape == (28, 28)
    write(tmp_path / "debian" / "fashion-mnist", fashion, compress=False)  # Debian's layout
    assert len(FashionMNIST(tmp_path / "debian", train=False)) == 3
    with pytest.raises(FileNotFoundError, match=r"KMNIST files missing.*KMNIST/raw"):
        KMNIST(tmp_path)  # MNIST's files in root are not Kuzushiji's
    write(tmp_path / "kmnist", fashion)
    assert KMNIST(tmp_path).classes[0] == "o"
    with pytest.raises(TypeError, match="root"):
        FashionMNIST(None)
    assert len(MNIST(tmp_path)) == 12


def emnist_files(split, n_train=6, n_test=4, classes=47, seed=0):
    rng = np.random.default_rng(seed)
    files = {}
    for part, n in (("train", n_train), ("test", n_test)):
        files[f"emnist-{split}-{part}-images-idx3-ubyte"] = idx_bytes(
            rng.integers(0, 256, (n, 28, 28)), 2051)
        files[f"emnist-{split}-{part}-labels-idx1-ubyte"] = idx_bytes(
            rng.integers(1 if split == "letters" else 0, classes, n), 2049)
    return files


def test_emnist_splits(tmp_path):
    write(tmp_path / "EMNIST" / "raw", emnist_files("balanced"))
    write(tmp_path, emnist_files("letters", classes=27), compress=False)
    balanced = EMNIST(tmp_path, split="balanced", train=False)
    assert len(balanced) == 4 and len(balanced.classes) == 47 and balanced.classes[:3] == [
        "0", "1", "2"]
    letters = EMNIST(tmp_path, "letters")
    assert letters.classes[0] == "N/A" and letters.targets.min() >= 1
    with pytest.raises(ValueError, match="split: expected one of byclass"):
        EMNIST(tmp_path, split="greek")
    with pytest.raises(FileNotFoundError, match="emnist-digits-train-images"):
        EMNIST(tmp_path, split="digits")
    bad = emnist_files("digits", classes=47)  # labels beyond the 10 digits
    write(tmp_path, bad)
    with pytest.raises(ValueError, match="labels must be digits 0..9"):
        EMNIST(tmp_path, split="digits")


# ***** downloads from a local HTTP server *****

def serve(files):
    server = Server({})
    server.files = dict(files)
    return server


def test_cifar_download_extracts_the_python_distribution(tmp_path):
    source = tmp_path / "source"
    write_cifar10(source)
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        tar.add(source / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    body = archive.getvalue()
    server = serve({"cifar-10-python.tar.gz": body})
    try:
        Local = type("LocalCIFAR10", (CIFAR10,), {
            "mirrors": (server.url("good"),), "archive_md5": hashlib.md5(body).hexdigest(),
            "download_timeout": 2.0})
        dataset = Local(tmp_path / "root", download=True)
        assert len(dataset) == 12
        Local(tmp_path / "root", train=False, download=True)  # complete: not fetched again
        assert len(server.requests) == 1
        Bad = type("BadCIFAR10", (Local,), {"archive_md5": "0" * 32})
        with pytest.raises(DownloadError, match="MD5 mismatch"):
            Bad(tmp_path / "other", download=True)
        assert not (tmp_path / "other" / "cifar-10-batches-py").exists()
    finally:
        server.close()


def test_emnist_download_extracts_the_zip(tmp_path):
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        for split in ("mnist", "digits"):
            for stem, content in emnist_files(split, classes=10).items():
                zipped.writestr(f"gzip/{stem}.gz", __import__("gzip").compress(content))
        zipped.writestr("gzip/emnist-mnist-mapping.txt", "0 48\n")
    body = archive.getvalue()
    server = serve({"gzip.zip": body})
    try:
        Local = type("LocalEMNIST", (EMNIST,), {"mirrors": (server.url("good"),),
                                                "archive_md5": hashlib.md5(body).hexdigest(),
                                                "download_timeout": 2.0})
        dataset = Local(tmp_path, split="digits", download=True)
        assert len(dataset) == 6
        raw = sorted(path.name for path in (tmp_path / "EMNIST" / "raw").iterdir())
        assert raw == sorted(f"emnist-{s}-{p}-{k}-ubyte.gz" for s in ("digits", "mnist")
                             for p in ("test", "train") for k in ("images-idx3", "labels-idx1"))
        Local(tmp_path, split="mnist", download=True)
        assert len(server.requests) == 1
    finally:
        server.close()


def test_archives_refuse_paths_that_leave_the_destination(tmp_path):
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 3
        tar.addfile(info, io.BytesIO(b"bad"))
    with pytest.raises(ValueError, match="refusing the member '../escaped.txt'"):
        extract(archive, tmp_path / "out")
    assert not (tmp_path / "escaped.txt").exists()
    (tmp_path / "plain.txt").write_text("not an archive")
    with pytest.raises(ValueError, match="not a zip or tar archive"):
        extract(tmp_path / "plain.txt", tmp_path / "out")
