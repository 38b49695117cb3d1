"""``cnn train --dataset`` beyond MNIST: the CIFAR recipe (augmentation in worker processes)
and Fashion-MNIST, on small files in the real formats; resuming an augmented run with workers
ends with exactly the weights of an uninterrupted one."""
import pytest

import cnn
from test_cli import assert_clean_failure, run_cli, same_values
from test_datasets import write_cifar10
from test_mnist import synthetic, write

CIFAR = ("--dataset", "cifar10", "--batch-size", 16, "--limit-train", 64, "--limit-test", 20)


@pytest.fixture(scope="module")
def cifar(tmp_path_factory):
    """A small CIFAR-10 and a 2-epoch run on it: (folder, data folder, output)."""
    folder = tmp_path_factory.mktemp("cifar")
    write_cifar10(folder / "data", sizes=(20, 20, 20, 20, 20, 30))
    result = run_cli("train", *CIFAR, "--data", folder / "data", "--epochs", 2, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, folder / "data", result


def test_the_cifar_recipe_trains_with_two_workers(cifar):
    folder, _, result = cifar
    assert "the CIFAR net (60,362 parameters) on CIFAR-10" in result.stdout
    assert "64 training and 20 test images, 2 worker processes loading" in result.stdout
    assert "epoch 2/2" in result.stdout and "Traceback" not in result.stderr
    checkpoint = cnn.load(folder / "cifar-net_cifar10.npz")
    assert checkpoint["args"]["dataset"] == "cifar10" and checkpoint["args"]["workers"] == 2


def test_an_augmented_run_with_workers_resumes_exactly(cifar, tmp_path):
    folder, data, _ = cifar
    first = run_cli("train", *CIFAR, "--data", data, "--epochs", 1, "--out", "run.npz",
                    cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", "run.npz", "--data", data, "--epochs", 2,
                      cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    expected, got = cnn.load(folder / "cifar-net_cifar10.npz"), cnn.load(tmp_path / "run.npz")
    for key in ("model", "optimizer", "epoch", "rng_state"):
        assert same_values(expected[key], got[key]), key
    changed = run_cli("train", "--resume", "run.npz", "--data", data, "--workers", 1,
                      "--epochs", 3, cwd=tmp_path)
    assert_clean_failure(changed)
    assert "--workers 1 differs from the 2" in changed.stderr


def test_fashion_mnist_and_missing_folders(tmp_path):
    write(tmp_path / "data" / "fashion-mnist", synthetic(n_train=70, n_test=10))
    result = run_cli("train", "--dataset", "fashion-mnist", "--data", tmp_path / "data",
                     "--epochs", 1, "--model", "cifar-net", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "on Fashion-MNIST" in result.stdout and (tmp_path / "cifar-net_fashion-mnist.npz").exists()
    missing = run_cli("train", "--dataset", "cifar10", cwd=tmp_path)
    assert_clean_failure(missing)
    assert "--dataset cifar10 needs --data DIR" in missing.stderr
    empty = run_cli("train", "--dataset", "cifar10", "--data", tmp_path, cwd=tmp_path)
    assert_clean_failure(empty)
    assert "CIFAR10 files missing" in empty.stderr and "--download" in empty.stderr
