"""PyTorch training scripts (tests/clients/) run under cnn after changing only their import
lines: under PyTorch too, from the same initial weights, with the same losses (float64), and
training lowers them; a torchvision-style recipe with worker processes trains.

The scripts are written as four well-known public examples are (pytorch/examples'
mnist/main.py, the CIFAR-10 and nn_tutorial tutorials, kuangliu/pytorch-cifar's ResNet); the
data are small synthetic image classes, so that a few steps learn something.
"""
import os
import re
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from test_datasets import write_cifar10

import cnn

CLIENTS = Path(__file__).parent / "clients"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(cnn.__file__).parents[1]),
                                                   os.environ.get("PYTHONPATH", "")]))
IMPORT_LINE = re.compile(r"^(import|from)\s+torch\b.*$", re.MULTILINE)


def swap_imports(source):
    """The import swap a user makes: ``import torch`` -> ``import cnn as torch``, and ``torch``
    -> ``cnn`` in every other import line (``torch.nn`` -> ``cnn.nn``, ...). Nothing else."""
    def swap(match):
        line = match.group(0)
        if line.strip() == "import torch":
            return "import cnn as torch"
        return re.sub(r"\btorch\b", "cnn", line)
    return IMPORT_LINE.sub(swap, source)


def load(name, library):
    """The client script `name` as a module, importing `library` ("cnn" or "torch")."""
    path = CLIENTS / f"{name}.py"
    source = path.read_text()
    if library == "cnn":
        source = swap_imports(source)
        assert "import torch\n" not in source
    module = types.ModuleType(f"client_{name}_{library}")
    exec(compile(source, str(path), "exec"), module.__dict__)  # noqa: S102 (our own scripts)
    return module


class _TensorBatches:
    """cnn's DataLoader with its batches as Tensors, as PyTorch's yields them (the data
    pipeline is its own piece of work; this keeps the scripts independent of it)."""

    def __init__(self, loader):
        self.loader, self.dataset = loader, loader.dataset

    def __iter__(self):
        for batch in self.loader:
            yield tuple(cnn.as_tensor(part) for part in batch)

    def __len__(self):
        return len(self.loader)


def loader(library, images, labels, batch_size):
    lib = _library(library)
    dataset = lib.utils.data.TensorDataset(lib.tensor(images), lib.tensor(labels))
    batches = lib.utils.data.DataLoader(dataset, batch_size=batch_size)
    return _TensorBatches(batches) if library == "cnn" else batches


def _library(library):
    return cnn if library == "cnn" else pytest.importorskip("torch")


def image_classes(shape, count, seed=0, classes=10):
    """Images of `classes` random templates plus noise: learnable in a few steps."""
    rng = np.random.default_rng(seed)
    templates = rng.standard_normal((classes,) + shape)
    labels = rng.integers(0, classes, count)
    images = templates[labels] + 0.8 * rng.standard_normal((count,) + shape)
    return images.astype(cnn.get_default_dtype()), labels


def to_library(value, library):
    """NumPy arrays and cnn tensors (nested in dicts) as the library's tensors."""
    if isinstance(value, dict):
        return {key: to_library(item, library) for key, item in value.items()}
    array = np.array(value)
    return cnn.tensor(array) if library == "cnn" else _library(library).tensor(array)


@pytest.fixture
def float64_everywhere():
    """Both libraries make float64 tensors and layers, so their losses can agree closely."""
    cnn.set_default_dtype(cnn.float64)
    try:
        torch = pytest.importorskip("torch")
    except pytest.skip.Exception:
        torch = None
    if torch is not None:
        previous = torch.get_default_dtype()
        torch.set_default_dtype(torch.float64)
    yield
    cnn.set_default_dtype(cnn.float32)
    if torch is not None:
        torch.set_default_dtype(previous)


def run(name, library, weights=None, **options):
    module = load(name, library)
    if name == "nn_tutorial":
        images, labels = image_classes((784,), 192, classes=10)
        lib = _library(library)
        args = (loader(library, images[:128], labels[:128], 32),
                loader(library, images[128:], labels[128:], 32),
                lib.tensor(images[:128]), lib.tensor(labels[:128]))
    else:
        shape = {"mnist_main": (1, 28, 28), "cifar_tutorial": (3, 32, 32),
                 "resnet_cifar": (3, 16, 16)}[name]
        images, labels = image_classes(shape, 160)
        args = (loader(library, images[:128], labels[:128], 32),
                loader(library, images[128:], labels[128:], 32))
    return module.main(*args, weights=weights, **options)


def decreasing(losses):
    """Whether the last quarter of the losses is lower on average than the first quarter."""
    quarter = max(len(losses) // 4, 1)
    return np.mean(losses[-quarter:]) < np.mean(losses[:quarter])


def _torch_weights(initial):
    """The initial weights cnn drew, for the PyTorch run (cnn tensors and arrays alike)."""
    return to_library(initial, "torch")


@pytest.mark.parametrize("name, options", [
    ("mnist_main", dict(dropout=0.0)), ("cifar_tutorial", {}), ("nn_tutorial", {}),
    ("resnet_cifar", {}),
])
def test_client_trains_under_cnn_and_matches_torch(name, options, float64_everywhere):
    ours = run(name, "cnn", **options)
    for stage in ours.get("stages", [ours["losses"]]):
        assert decreasing(stage), stage
    torch = pytest.importorskip("torch")
    assert torch is not None
    theirs = run(name, "torch", weights=_torch_weights(ours["initial"]), **options)
    np.testing.assert_allclose(ours["losses"], theirs["losses"], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ours["tests"], theirs["tests"], rtol=1e-9, atol=1e-12)


def test_mnist_client_trains_with_dropout_in_float32():
    result = run("mnist_main", "cnn", dropout=0.25)
    assert decreasing(result["losses"]) and result["tests"][-1][1] > 0.2  # chance: 0.1


def test_the_import_swap_changes_only_import_lines():
    source = (CLIENTS / "mnist_main.py").read_text()
    swapped = swap_imports(source)
    changed = [(a, b) for a, b in zip(source.splitlines(), swapped.splitlines()) if a != b]
    assert changed == [
        ("import torch", "import cnn as torch"), ("import torch.nn as nn", "import cnn.nn as nn"),
        ("import torch.nn.functional as F", "import cnn.nn.functional as F"),
        ("import torch.optim as optim", "import cnn.optim as optim"),
        ("from torch.optim.lr_scheduler import StepLR",
         "from cnn.optim.lr_scheduler import StepLR")]


def test_the_cifar10_resnet_recipe_trains_with_two_workers(tmp_path):
    write_cifar10(tmp_path / "data", sizes=(20, 20, 20, 20, 20, 30))
    result = subprocess.run(
        [sys.executable, str(CLIENTS / "cifar10_resnet.py"), "--data", str(tmp_path / "data"),
         "--epochs", "2", "--batch-size", "32", "--workers", "2"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "/100)" in lines[0] and "test acc" in lines[1]
    assert "Traceback" not in result.stderr
    state = cnn.load(tmp_path / "ckpt.npz")
    assert state["epoch"] == 2 and "linear.weight" in state["net"]
