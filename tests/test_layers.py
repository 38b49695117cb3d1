"""cnn.nn layers against PyTorch: outputs, gradients, repr, state_dict keys, init, LeNet-5 training."""
import math

import numpy as np
import pytest

import cnn
import cnn.nn as nn
import cnn.nn.functional as F


def torch_or_skip():
    return pytest.importorskip("torch")


def lenet(library):
    """LeNet-5 of SPEC section 4, built from `library`'s nn (cnn.nn or torch.nn)."""
    return library.Sequential(
        library.Conv2d(1, 6, 5, padding=2), library.ReLU(), library.MaxPool2d(2, 2),
        library.Conv2d(6, 16, 5), library.ReLU(), library.MaxPool2d(2, 2),
        library.Flatten(), library.Linear(400, 120), library.ReLU(), library.Linear(120, 84),
        library.ReLU(), library.Linear(84, 10))


def copy_into_torch(model, torch_model):
    torch = torch_or_skip()
    torch_model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in
                                 model.state_dict().items()})


LAYERS = [  # (cnn constructor, torch constructor name, args, kwargs, input shape)
    ("Conv2d", (3, 4, 3), {}, (2, 3, 7, 7)),
    ("Conv2d", (4, 6, (3, 2)), dict(stride=(2, 1), padding=(1, 0), dilation=(1, 2), groups=2,
                                    bias=False), (2, 4, 9, 8)),
    ("Linear", (5, 3), {}, (4, 5)),
    ("Linear", (5, 3), dict(bias=False), (2, 6, 5)),
    ("MaxPool2d", (3,), dict(stride=2, padding=1, ceil_mode=True), (2, 3, 7, 7)),
    ("MaxPool2d", ((2, 3),), dict(dilation=(2, 1)), (1, 2, 8, 9)),
    ("AvgPool2d", (2,), dict(padding=1), (2, 3, 5, 5)),
    ("ReLU", (), {}, (3, 4)),
    ("LeakyReLU", (0.2,), {}, (3, 4)),
    ("Sigmoid", (), {}, (3, 4)),
    ("Tanh", (), {}, (3, 4)),
    ("Softmax", (1,), {}, (3, 4)),
    ("LogSoftmax", (1,), {}, (3, 4)),
    ("Flatten", (), {}, (2, 3, 4)),
    ("Identity", (), {}, (2, 3)),
    ("BatchNorm1d", (3,), {}, (5, 3)),
    ("BatchNorm1d", (3,), dict(momentum=None), (5, 3, 4)),
    ("BatchNorm2d", (3,), dict(affine=False), (4, 3, 2, 2)),
    ("BatchNorm2d", (3,), dict(bias=False), (4, 3, 2, 2)),
    ("BatchNorm2d", (3,), dict(track_running_stats=False), (4, 3, 2, 2)),
    ("Dropout", (0.3,), {}, (3, 4)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", LAYERS)
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_layer_matches_torch(name, args, kwargs, shape, mode):
    torch = torch_or_skip()
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    assert repr(ours) == repr(theirs)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    copy_into_torch(ours, theirs)
    getattr(ours, mode)(), getattr(theirs, mode)()
    if name == "Dropout" and mode == "train":
        return  # random masks differ between libraries; tested below
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    x_ours, x_theirs = cnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    for _ in range(2):  # twice: running statistics must evolve identically
        out, ref = ours(x_ours), theirs(x_theirs)
    np.testing.assert_allclose(out._data, ref.detach().numpy(), rtol=1e-4, atol=1e-5)
    g = np.random.default_rng(1).standard_normal(out.shape).astype(np.float32)
    (out * cnn.tensor(g)).sum().backward()
    (ref * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(x_ours.grad._data, x_theirs.grad.numpy(), rtol=1e-3, atol=1e-4)
    for (key, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad._data, q.grad.numpy(), rtol=1e-3, atol=1e-4,
                                   err_msg=key)
    for key, value in theirs.state_dict().items():
        np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-5, atol=1e-6,
                                   err_msg=key)


@pytest.mark.parametrize("name, torch_name", [("CrossEntropyLoss", "CrossEntropyLoss"),
                                              ("NLLLoss", "NLLLoss")])
def test_classification_loss_modules(name, torch_name):
    torch = torch_or_skip()
    weight = np.array([1.0, 2.0, 0.5], np.float32)
    ours = getattr(nn, name)(weight=weight, reduction="sum")
    theirs = getattr(torch.nn, torch_name)(weight=torch.tensor(weight), reduction="sum")
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == ["weight"]
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    target = np.array([0, 2, 1, 2])
    np.testing.assert_allclose(ours(cnn.tensor(x), target).item(),
                               theirs(torch.tensor(x), torch.tensor(target)).item(), rtol=1e-5)


def test_mse_loss_module():
    x, y = (cnn.tensor(np.array([1.0, 2.0], np.float32)),
            cnn.tensor(np.array([0.0, 0.0], np.float32)))
    assert nn.MSELoss()(x, y).item() == pytest.approx(2.5)
    assert nn.MSELoss(reduction="sum")(x, y).item() == pytest.approx(5.0)


def test_default_init_follows_pytorchs_rule_and_manual_seed():
    cnn.manual_seed(7)
    conv, linear = nn.Conv2d(6, 16, 5), nn.Linear(400, 120)
    for layer, fan_in in ((conv, 150), (linear, 400)):
        bound = 1 / math.sqrt(fan_in)
        assert layer.weight.dtype == np.float32 and layer.bias.dtype == np.float32
        assert np.abs(layer.weight._data).max() <= bound
        assert np.abs(layer.bias._data).max() <= bound
        # Uniform on [-bound, bound]: the spread fills the interval.
        assert np.abs(layer.weight._data).max() > 0.95 * bound
    cnn.manual_seed(7)
    np.testing.assert_array_equal(nn.Conv2d(6, 16, 5).weight._data, conv.weight._data)


def test_layers_in_float64():
    model = lenet(nn).to(np.float64)
    assert all(p.dtype == np.float64 for p in model.parameters())
    out = model(cnn.tensor(np.zeros((2, 1, 28, 28))))
    assert out.dtype == np.float64 and out.shape == (2, 10)
    assert nn.Linear(3, 2, dtype=np.float64).weight.dtype == np.float64


def test_seed_style_numpy_functions_work_on_outputs():
    model = lenet(nn)
    images = np.random.default_rng(0).random((5, 1, 28, 28)).astype(np.float32)
    out = model(images)  # a plain array input works too
    predictions = np.argmax(out, axis=1)
    assert predictions.shape == (5,) and np.squeeze(out).shape == (5, 10)
    assert (predictions == predictions).all()


@pytest.mark.parametrize("dtype, tol", [(np.float32, 2e-4), (np.float64, 1e-9)])
def test_lenet_follows_pytorchs_loss_curve_for_50_sgd_steps(dtype, tol):
    torch = torch_or_skip()
    torch.set_default_dtype(torch.float64 if dtype == np.float64 else torch.float32)
    try:
        cnn.manual_seed(0)
        ours, theirs = lenet(nn).to(dtype), lenet(torch.nn)
        copy_into_torch(ours, theirs)
        optimizer = cnn.optim.SGD(ours.parameters(), lr=0.02, momentum=0.9)
        torch_optimizer = torch.optim.SGD(theirs.parameters(), lr=0.02, momentum=0.9)
        rng = np.random.default_rng(0)
        images = rng.standard_normal((8, 1, 28, 28)).astype(dtype)
        labels = rng.integers(0, 10, 8)
        for step in range(50):
            optimizer.zero_grad()
            torch_optimizer.zero_grad()
            loss = F.cross_entropy(ours(cnn.tensor(images)), labels)
            ref = torch.nn.functional.cross_entropy(theirs(torch.tensor(images)),
                                                    torch.tensor(labels))
            loss.backward()
            ref.backward()
            optimizer.step()
            torch_optimizer.step()
            np.testing.assert_allclose(loss.item(), ref.item(), rtol=tol, atol=tol,
                                       err_msg=f"step {step}")
        assert loss.item() < 0.5  # it learned the batch
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=10 * tol,
                                       atol=10 * tol, err_msg=key)
    finally:
        torch.set_default_dtype(torch.float32)


def test_pytorch_weights_load_and_give_the_same_outputs():
    torch = torch_or_skip()
    theirs = lenet(torch.nn)
    ours = lenet(nn)
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})
    x = np.random.default_rng(0).random((3, 1, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(ours(x)._data, theirs(torch.tensor(x)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("call, error, words", [
    (lambda: nn.Conv2d(0, 6, 5), ValueError, "in_channels"),
    (lambda: nn.Conv2d(3, 6, 5, groups=2), ValueError, "in_channels"),
    (lambda: nn.Conv2d(4, 6, 5, groups=4), ValueError, "out_channels"),
    (lambda: nn.Conv2d(1, 6, 0), ValueError, "kernel_size"),
    (lambda: nn.Conv2d(1, 6, 3, dtype=np.int32), TypeError, "dtype"),
    (lambda: nn.Linear(-1, 3), ValueError, "in_features"),
    (lambda: nn.MaxPool2d(0), ValueError, "kernel_size"),
    (lambda: nn.Dropout(2.0), ValueError, "p"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "reduction"),
    (lambda: nn.BatchNorm2d(3)(cnn.zeros(2, 3)), ValueError, "input"),
    (lambda: nn.Conv2d(3, 6, 3)(cnn.zeros(1, 1, 8, 8)), ValueError, "channels"),
    (lambda: nn.Linear(4, 2)(cnn.zeros(3, 5)), ValueError, "input"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()
