"""A user's first commands on a fresh machine: MNIST fetched into the cache (or one line saying
where to put it), the checkpoint of ``train`` found by ``evaluate`` and ``classify``, and the
grid of mistakes. Downloads go to the local HTTP server of test_mnist.py, never elsewhere."""
import hashlib
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn.cli import main
from cnn.cli.classify import choose
from cnn.cli.lenet import lenet5
from cnn.datasets import MNIST, download_url
from cnn.datasets.mnist import default_root, resolve_root

from test_mnist import Server, refused_url, synthetic


@pytest.fixture
def fresh(tmp_path, monkeypatch):
    """A fresh machine: an empty cache ($XDG_CACHE_HOME), no $CNN_DATA, an empty folder; the
    MNIST folder it should end up in."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("CNN_DATA", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path / "cache" / "cnn" / "mnist"


@pytest.fixture
def mirror(monkeypatch):
    """MNIST's mirrors replaced by one local server of small synthetic files."""
    server = Server(synthetic())
    md5 = {name: hashlib.md5(body).hexdigest() for name, body in server.files.items()}
    monkeypatch.setattr(MNIST, "mirrors", (server.url("good"),))
    monkeypatch.setattr(MNIST, "resources", md5)
    monkeypatch.setattr(MNIST, "download_timeout", 5.0)
    yield server
    server.close()


def untrained_checkpoint(path="lenet_mnist.npz"):
    cnn.manual_seed(0)
    cnn.save(lenet5().state_dict(), path)


def test_the_default_folder_is_in_the_xdg_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("CNN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_root() == tmp_path / "cnn" / "mnist"
    assert resolve_root() == (tmp_path / "cnn" / "mnist",
                              "the default, as root is None and CNN_DATA unset")
    home_cache = Path("~/.cache").expanduser() / "cnn" / "mnist"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/path")  # not absolute: ignored, as XDG says
    assert default_root() == home_cache
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_root() == home_cache
    monkeypatch.setenv("CNN_DATA", str(tmp_path / "elsewhere"))
    assert resolve_root()[0] == tmp_path / "elsewhere"


def test_the_first_run_fetches_mnist_into_the_cache_and_the_next_reads_it(fresh, mirror,
                                                                           capsys):
    untrained_checkpoint()
    assert main(["evaluate"]) == 0
    out, err = capsys.readouterr()
    assert f"MNIST is not in {fresh} yet: fetching" in err
    assert sorted(path.name for path in fresh.iterdir()) == sorted(MNIST.resources)
    assert "LeNet-5 from lenet_mnist.npz, on 7 MNIST test images" in out
    fetched = len(mirror.requests)
    assert fetched == 4
    assert main(["evaluate"]) == 0
    assert len(mirror.requests) == fetched and "fetching" not in capsys.readouterr().err


def test_offline_the_first_run_says_in_one_line_where_the_files_go(fresh, monkeypatch, capsys):
    monkeypatch.setattr(MNIST, "mirrors", (refused_url(),))
    assert main(["train", "--epochs", "1"]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert len(errors) == 1
    assert errors[0].startswith(f"cnn train: error: MNIST is not in {fresh} and could not be "
                                "downloaded (")
    for needed in ("train-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz", "--data",
                   "CNN_DATA"):
        assert needed in errors[0]
    assert not list(fresh.glob("*"))  # nothing partial left behind
    assert not Path("lenet_mnist.npz").exists()


def test_a_folder_the_user_named_is_not_downloaded_into(fresh, mirror, tmp_path, capsys):
    untrained_checkpoint()
    assert main(["evaluate", "--data", str(tmp_path / "mine")]) == 1
    assert "--download" in capsys.readouterr().err
    assert mirror.requests == [] and not (tmp_path / "mine").exists()
    assert main(["evaluate", "--data", str(tmp_path / "mine"), "--download"]) == 0
    assert len(list((tmp_path / "mine").iterdir())) == 4


def test_evaluate_without_a_model_says_to_train_first(fresh, capsys):
    assert main(["evaluate"]) == 1
    error = capsys.readouterr().err
    assert "no model lenet_mnist.npz in" in error and "train one first" in error


def test_download_reports_progress(tmp_path, mirror):
    seen = []
    name = "t10k-labels-idx1-ubyte.gz"
    download_url(mirror.url("good") + name, tmp_path / name, progress=lambda *p: seen.append(p))
    size = len(mirror.files[name])
    assert seen[0] == (0, size) and seen[-1] == (size, size)


def test_the_grid_shows_mistakes_first():
    predictions = np.array([1, 2, 3, 4, 5, 6])
    labels = np.array([1, 0, 3, 0, 5, 0])
    assert choose(predictions, labels, 4, errors_only=False).tolist() == [1, 3, 5, 0]
    assert choose(predictions, labels, 4, errors_only=True).tolist() == [1, 3, 5]
    assert choose(predictions, labels, 2, errors_only=True).tolist() == [1, 3]
    assert choose(labels, labels, 4, errors_only=True).tolist() == []


def test_classify_errors_draws_the_misclassified_digits(fresh, mirror, capsys):
    pytest.importorskip("matplotlib")
    untrained_checkpoint()
    assert main(["classify", "--errors", "--out", "mistakes.png"]) == 0
    out = capsys.readouterr().out
    wrong = int(out.split(" of 7 test digits misclassified")[0])
    assert wrong > 0  # an untrained model: about 9 in 10 wrong
    assert out.endswith(f"the grid of {wrong} (misclassified) is in mistakes.png\n")
    assert Path("mistakes.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_classify_errors_without_mistakes_draws_nothing(fresh, mirror, monkeypatch, capsys):
    pytest.importorskip("matplotlib")
    untrained_checkpoint()
    monkeypatch.setattr("cnn.cli.classify.predict", lambda model, digits: digits.targets)
    assert main(["classify", "--errors"]) == 0
    assert capsys.readouterr().out == ("0 of 7 test digits misclassified: no grid to draw\n")
    assert not Path("classify_results.png").exists()
