"""The original library's interface (SPEC section 4): its README code runs unchanged and trains,
its checkpoints load (on request), and the seed-only pieces behave as the original's did."""
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

import cnn
import cnn.serialization
from cnn.compat import Cross_entropy, DataLoader, Sequential, state_dict_from_seed
from cnn.data import TensorDataset
from cnn.datasets import MNIST
from cnn.nn import Conv2d, Flatten, Linear, MaxPool2d, ReLU

SHARED = Path(__file__).parents[1] / ".." / "shared" / "data"
MNIST_ROOT = Path(os.environ.get("CNN_DATA") or SHARED / "mnist")
SEED_CHECKPOINT = SHARED / "seed" / "pretrained_model_5_epochs.npy"
needs_mnist = pytest.mark.skipif(not MNIST_ROOT.is_dir(), reason=f"no MNIST in {MNIST_ROOT}")
needs_seed_checkpoint = pytest.mark.skipif(not SEED_CHECKPOINT.is_file(),
                                           reason=f"no seed checkpoint at {SEED_CHECKPOINT}")

SEED_IMPORT = ("from cnn import Sequential, Conv2d, ReLU, MaxPool2d, Flatten, Linear, "
               "Cross_entropy, SGD, DataLoader\n")
# SPEC section 4, verbatim.
SEED_README = """
model = Sequential(
    Conv2d(in_channels=1, out_channels=6, kernel_size=5, stride=1, padding=2), ReLU(),
    MaxPool2d(kernel_size=2, stride=2),
    Conv2d(in_channels=6, out_channels=16, kernel_size=5, stride=1, padding=0), ReLU(),
    MaxPool2d(kernel_size=2, stride=2),
    Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))
optimizer = SGD(model, lr=1e-3)
for images, labels in DataLoader(train_images, train_labels, batch_size=10, shuffle=True):
    loss = Cross_entropy(model, images, labels)   # forward
    loss.backward()                               # backward
    optimizer.step()                              # update
    print(loss.item())
model.save_model('pretrained_model')              # writes pretrained_model.npy
model.load_model('pretrained_model.npy')
print(model)                                      # layers, then "Number of parameters : 61706"
"""


def lenet():
    """The LeNet-5 of the seed README."""
    return Sequential(
        Conv2d(1, 6, kernel_size=5, padding=2), ReLU(), MaxPool2d(2, 2),
        Conv2d(6, 16, kernel_size=5), ReLU(), MaxPool2d(2, 2),
        Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))


def small_net():
    return Sequential(Conv2d(1, 2, 3), ReLU(), Flatten(), Linear(2 * 4 * 4, 3))


def accuracy(model, images, labels, batch_size=1000):
    """Fraction classified right, on raw 0-255 float pixels as the seed trained."""
    correct = 0
    with cnn.no_grad():
        for start in range(0, len(images), batch_size):
            batch = images[start:start + batch_size, None].astype(np.float32)
            correct += (np.argmax(model(batch), axis=1) == labels[start:start + batch_size]).sum()
    return correct / len(images)


def snapshot(model):
    return {key: value.copy() for key, value in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert list(after) == list(before)
    for key in before:
        np.testing.assert_array_equal(after[key], before[key])


@pytest.fixture(scope="module")
def mnist_test():
    test = MNIST(MNIST_ROOT, train=False)
    return test.data, test.targets


def test_top_level_names_are_the_library_classes():
    assert cnn.Sequential is cnn.compat.Sequential
    assert issubclass(cnn.Sequential, cnn.nn.Sequential)
    assert cnn.Conv2d is cnn.nn.Conv2d and cnn.Linear is cnn.nn.Linear
    assert cnn.ReLU is cnn.nn.ReLU and cnn.MaxPool2d is cnn.nn.MaxPool2d
    assert cnn.Flatten is cnn.nn.Flatten
    assert cnn.SGD is cnn.optim.SGD
    assert cnn.Cross_entropy is cnn.compat.Cross_entropy
    assert cnn.DataLoader is cnn.compat.DataLoader
    assert issubclass(cnn.DataLoader, cnn.data.DataLoader)
    assert cnn.save is cnn.serialization.save and cnn.load is cnn.serialization.load


# ***** the README, verbatim *****

@needs_mnist
def test_seed_readme_runs_unchanged_and_trains(tmp_path, monkeypatch, capsys, mnist_test):
    train = MNIST(MNIST_ROOT, train=True)
    monkeypatch.chdir(tmp_path)
    cnn.manual_seed(0)
    namespace = {"train_images": train.data[:2000], "train_labels": train.targets[:2000]}
    exec(compile(SEED_IMPORT + SEED_README, "seed_readme", "exec"), namespace)

    printed = capsys.readouterr().out.splitlines()
    losses = [float(line) for line in printed[:200]]
    assert len(losses) == 200  # 2000 images in batches of 10
    assert np.mean(losses[-50:]) < 0.6 * np.mean(losses[:20])
    assert printed[-1] == "Number of parameters : 61706"
    assert "\n".join(printed[200:-1]) == repr(namespace["model"])
    assert zipfile.is_zipfile("pretrained_model.npy")  # safe content under the .npy name
    test_images, test_labels = mnist_test
    # Measured 0.81 after this one pass over 2000 images (chance is 0.1).
    assert accuracy(namespace["model"], test_images[:1000], test_labels[:1000]) > 0.6


@needs_mnist
@needs_seed_checkpoint
def test_original_checkpoint_classifies_mnist(mnist_test):
    model = lenet().load_model(SEED_CHECKPOINT, allow_pickle=True)
    images, labels = mnist_test
    # Measured 0.9858 on the 10,000 test images.
    assert accuracy(model, images, labels) >= 0.98


# ***** checkpoints *****

def test_save_model_adds_the_suffix_and_load_model_restores(tmp_path):
    cnn.manual_seed(1)
    model = small_net()
    assert model.save_model(tmp_path / "net") == str(tmp_path / "net.npy")
    assert model.save_model(str(tmp_path / "again.npy")) == str(tmp_path / "again.npy")
    assert sorted(os.listdir(tmp_path)) == ["again.npy", "net.npy"]
    with np.load(tmp_path / "net.npy") as archive:  # numpy recognises the archive
        np.testing.assert_array_equal(archive["3.weight"], model[3].weight._data)
    other = small_net()
    assert other.load_model(tmp_path / "net.npy") is other
    assert_unchanged(other, snapshot(model))


def test_load_model_reads_a_training_checkpoint(tmp_path):
    model = small_net()
    cnn.serialization.save({"model": model.state_dict(), "epoch": 3}, tmp_path / "run.npz")
    other = small_net().load_model(tmp_path / "run.npz")
    assert_unchanged(other, snapshot(model))


@needs_seed_checkpoint
def test_original_checkpoint_needs_allow_pickle():
    model = lenet()
    before = snapshot(model)
    with pytest.raises(ValueError) as error:
        model.load_model(SEED_CHECKPOINT)
    message = str(error.value)
    for words in ("pickled", "runs code", "allow_pickle=True", "trust",
                  "pretrained_model_5_epochs.npy"):
        assert words in message
    assert_unchanged(model, before)


def seed_format(model):
    """`model`'s parameters as the original library saved them."""
    params = []
    for module in model.modules():
        if isinstance(module, Conv2d):
            params += [module.weight._data, module.bias._data]
        elif isinstance(module, Linear):
            params += [module.weight._data.T, module.bias._data[None, :]]
    array = np.empty(len(params), dtype=object)
    array[:] = [p.astype(np.float64) for p in params]
    return array


def test_original_format_maps_onto_layers_in_order(tmp_path):
    cnn.manual_seed(2)
    source = lenet()
    np.save(tmp_path / "seed.npy", seed_format(source), allow_pickle=True)
    model = lenet().load_model(tmp_path / "seed.npy", allow_pickle=True)
    x = np.random.default_rng(0).uniform(0, 255, (3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(model(x)._data, source(x)._data, rtol=1e-5, atol=1e-4)
    assert list(state_dict_from_seed(source, seed_format(source))) == list(source.state_dict())


def test_failed_loads_leave_the_model_unchanged(tmp_path):
    model = small_net()
    before = snapshot(model)
    wider = Sequential(Conv2d(1, 3, 3), ReLU(), Flatten(), Linear(3 * 4 * 4, 3))
    wider.save_model(tmp_path / "wider")
    np.save(tmp_path / "seed_wrong_count.npy", seed_format(lenet()), allow_pickle=True)
    wrong_shapes = seed_format(wider)
    np.save(tmp_path / "seed_wrong_shape.npy", wrong_shapes, allow_pickle=True)
    (tmp_path / "noise.npy").write_bytes(np.random.default_rng(0).bytes(500))
    cases = [("wider.npy", False, "size mismatch"),
             ("seed_wrong_count.npy", True, "10 parameter arrays"),
             ("seed_wrong_shape.npy", True, "expected shape (2, 1, 3, 3)"),
             ("noise.npy", False, "not a cnn checkpoint")]
    for name, allow_pickle, words in cases:
        with pytest.raises(ValueError) as error:
            model.load_model(tmp_path / name, allow_pickle=allow_pickle)
        assert name in str(error.value) and words in str(error.value)
        assert_unchanged(model, before)
    with pytest.raises(FileNotFoundError):
        model.load_model(tmp_path / "absent.npy")
    assert_unchanged(model, before)


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_damaged_original_checkpoint_names_the_file_and_keeps_the_model(tmp_path, damage):
    # With allow_pickle=True a damaged pickle can fail inside pickle in many ways; every one is
    # reported as a ValueError naming the file.
    path = tmp_path / "original.npy"
    np.save(path, seed_format(small_net()), allow_pickle=True)
    raw = bytearray(path.read_bytes())
    if damage == "truncated":
        raw = raw[:len(raw) * 2 // 3]
    else:
        start = raw.index(b"\n") + 1  # just after the .npy header: the pickle's opcodes
        raw[start:start + 40] = bytes(range(200, 240))
    path.write_bytes(bytes(raw))
    model = small_net()
    before = snapshot(model)
    with pytest.raises(ValueError, match="original.npy") as error:
        model.load_model(path, allow_pickle=True)
    assert "corrupted" in str(error.value)
    assert_unchanged(model, before)


def test_print_adds_the_parameter_count_but_repr_stays_pytorchs():
    model = lenet()
    assert str(model) == repr(model) + "\nNumber of parameters : 61706"
    assert "Number of parameters" not in repr(model)
    torch = pytest.importorskip("torch")
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, kernel_size=5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Conv2d(6, 16, kernel_size=5), torch.nn.ReLU(), torch.nn.MaxPool2d(2, 2),
        torch.nn.Flatten(), torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84),
        torch.nn.ReLU(), torch.nn.Linear(84, 10))
    assert repr(model) == repr(reference)


# ***** Cross_entropy *****

def test_backward_replaces_the_previous_gradients():
    cnn.manual_seed(3)
    model = small_net()
    rng = np.random.default_rng(0)
    batches = [(rng.standard_normal((4, 1, 6, 6)).astype(np.float32), rng.integers(0, 3, 4))
               for _ in range(2)]
    for images, labels in batches:
        Cross_entropy(model, images, labels).backward()
    after_two = [p.grad._data.copy() for p in model.parameters()]
    model.zero_grad()
    Cross_entropy(model, *batches[1]).backward()
    for grad, param in zip(after_two, model.parameters()):
        np.testing.assert_array_equal(grad, param.grad._data)


def test_loss_value_and_labels_of_any_integer_dtype(capsys):
    model = small_net()
    images = np.random.default_rng(1).standard_normal((5, 1, 6, 6)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    reference = cnn.nn.functional.cross_entropy(model(images), labels).item()
    for dtype in (np.uint8, np.int16, np.int32, np.int64):
        loss = Cross_entropy(model, images, labels.astype(dtype))
        assert isinstance(loss.item(), float) and loss.item() == reference
        assert isinstance(loss.loss, cnn.Tensor) and float(loss) == reference
    print(loss)
    assert capsys.readouterr().out == f"{reference}\n"
    assert f"{loss:.3f}" == f"{reference:.3f}"
    with pytest.raises(TypeError, match="labels: expected integer class indices"):
        Cross_entropy(model, images, labels.astype(np.float32))
    with pytest.raises(ValueError, match="target"):
        Cross_entropy(model, images, np.array([0, 1, 2, 3, 4]))  # class 3 of 3


def test_sgd_takes_a_model():
    model = small_net()
    optimizer = cnn.optim.SGD(model, lr=0.1)
    assert optimizer.param_groups[0]["params"] == list(model.parameters())


# ***** DataLoader *****

def test_seed_form_batches_raw_pixels_and_drops_the_last_partial_batch():
    images = np.arange(25 * 4 * 4).reshape(25, 4, 4).astype(np.uint8)
    labels = np.arange(25, dtype=np.uint8)
    loader = DataLoader(images, labels, batch_size=10, shuffle=False)
    assert len(loader) == 2
    batches = list(loader)
    assert len(batches) == 2
    batch_images, batch_labels = batches[0]
    assert isinstance(batches[0], list)
    assert batch_images.shape == (10, 1, 4, 4) and batch_images.dtype == np.float32
    np.testing.assert_array_equal(batch_images[:, 0], images[:10])  # 0-255, not rescaled
    np.testing.assert_array_equal(batch_labels, labels[:10])
    assert images.dtype == np.uint8  # the data itself stays uint8
    four_d = DataLoader(images[:, None], labels=labels, batch_size=5, dtype=np.float64)
    assert four_d[4][0].shape == (5, 1, 4, 4) and four_d[4][0].dtype == np.float64
    assert len(DataLoader(images, labels, 10, drop_last=False)) == 3


def test_seed_form_indexing_and_reshuffling():
    images = np.zeros((40, 2, 2), np.uint8)
    labels = np.arange(40)
    cnn.manual_seed(0)
    loader = DataLoader(images, labels, batch_size=8, shuffle=True)
    first = loader[0][1]
    assert loader[0][1].tolist() == first.tolist()  # indexing alone does not reshuffle
    epochs = [np.concatenate([batch_labels for _, batch_labels in loader]) for _ in range(2)]
    np.testing.assert_array_equal(epochs[0][:8], first)  # the order loader[0] showed
    for order in epochs:
        assert sorted(order.tolist()) == list(range(40))
    assert epochs[0].tolist() != epochs[1].tolist()
    np.testing.assert_array_equal(loader[-1][1], epochs[1][-8:])  # the latest epoch's order
    assert [b[1].tolist() for b in loader[0:2]] == [epochs[1][:8].tolist(), epochs[1][8:16].tolist()]
    with pytest.raises(IndexError):
        loader[5]


def test_pytorch_form_is_cnn_data_dataloader():
    dataset = TensorDataset(np.arange(10.0), np.arange(10))
    for loader in (DataLoader(dataset, batch_size=4), DataLoader(dataset, 4, False)):
        assert len(loader) == 3
        x, y = list(loader)[-1]
        assert isinstance((x, y), tuple)
        np.testing.assert_array_equal(y, [8, 9])
        np.testing.assert_array_equal(loader[1][0], [4.0, 5.0, 6.0, 7.0])
    def epoch(loader):
        return [np.asarray(labels).tolist() for _, labels in loader]  # Tensors, as PyTorch

    first_epoch = epoch(DataLoader(dataset, batch_size=5, shuffle=True, seed=7))
    loader = DataLoader(dataset, batch_size=5, shuffle=True, seed=7)
    assert epoch(loader) == first_epoch  # reproducible with a seed
    loader[0]  # draws the next epoch's order for indexing ...
    loader.set_epoch(0)  # ... which set_epoch drops
    assert epoch(loader) == first_epoch


def test_seed_form_checks_its_arguments():
    images = np.zeros((6, 3, 3), np.uint8)
    with pytest.raises(ValueError, match="images: expected shape"):
        DataLoader(np.zeros((6, 9)), np.zeros(6, int), batch_size=2)
    with pytest.raises(ValueError, match="6 images and 5 labels"):
        DataLoader(images, np.zeros(5, int), batch_size=2)
    with pytest.raises(ValueError, match="labels: expected shape"):
        DataLoader(images, np.zeros((6, 1), int), batch_size=2)
    with pytest.raises(TypeError, match="images: expected a numeric array"):
        DataLoader(np.full((6, 3, 3), "a"), np.zeros(6, int))
    with pytest.raises(TypeError, match="dtype"):
        DataLoader(images, np.zeros(6, int), dtype=np.int32)
    with pytest.raises(ValueError, match="batch_size"):
        DataLoader(images, np.zeros(6, int), batch_size=0)
    with pytest.raises(TypeError):
        DataLoader(images, np.zeros(6, int), 2, True, no_such_option=1)
