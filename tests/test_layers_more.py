"""The layers added for PyTorch scripts, against torch.nn with the same weights; the
containers; Module's buffers and devices; torch.nn.utils' clipping and vectors."""
import numpy as np
import pytest

import cnn
from cnn import nn

rng = np.random.default_rng(0)
pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same'")  # PyTorch's notice

LAYERS = [
    ("Conv1d", (3, 4, 3), dict(stride=2, padding=1), (2, 3, 9)),
    ("Conv1d", (4, 4, 4), dict(padding="same", groups=2, padding_mode="circular"), (2, 4, 7)),
    ("Conv2d", (3, 4, 4), dict(padding="same"), (2, 3, 6, 5)),
    ("Conv2d", (3, 4, 3), dict(padding=(1, 2), padding_mode="reflect"), (2, 3, 6, 5)),
    ("Conv2d", (3, 4, 3), dict(padding="valid", padding_mode="replicate", dilation=2), (1, 3, 7, 7)),
    ("ConvTranspose2d", (3, 4, 3), dict(stride=2, padding=1, output_padding=1), (2, 3, 4, 5)),
    ("AdaptiveAvgPool2d", ((3, None),), {}, (2, 3, 7, 5)),
    ("AdaptiveMaxPool2d", (2,), {}, (2, 3, 7, 5)),
    ("MaxPool1d", (3,), dict(stride=2), (2, 3, 9)),
    ("AvgPool1d", (2,), {}, (2, 3, 8)),
    ("Upsample", (), dict(scale_factor=2, mode="bilinear"), (2, 3, 4, 5)),
    ("Upsample", (), dict(size=(3, 7)), (2, 3, 4, 5)),
    ("LayerNorm", ((5,),), {}, (2, 3, 5)),
    ("GroupNorm", (2, 4), {}, (2, 4, 3, 3)),
    ("GELU", (), {}, (3, 4)), ("SiLU", (), {}, (3, 4)), ("ELU", (0.5,), {}, (3, 4)),
    ("Hardtanh", (-0.5, 0.5), {}, (3, 4)), ("ReLU6", (), {}, (3, 4)), ("Softplus", (), {}, (3, 4)),
]


@pytest.mark.parametrize("name, args, kwargs, shape", LAYERS,
                         ids=[f"{n}{k}" for n, _, k, _ in LAYERS])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_matches_torch_with_the_same_weights(name, args, kwargs, shape, dtype):
    torch = pytest.importorskip("torch")
    theirs = getattr(torch.nn, name)(*args, **kwargs).to(getattr(torch, np.dtype(dtype).name))
    ours = getattr(nn, name)(*args, **kwargs).to(dtype)
    with torch.no_grad():  # non-default affine parameters, so they matter
        for p in theirs.parameters():
            p.copy_(torch.tensor(rng.standard_normal(tuple(p.shape))))
    ours.load_state_dict(theirs.state_dict())
    x = rng.standard_normal(shape).astype(dtype) * 3
    mine, reference = cnn.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, ref = ours(mine), theirs(reference)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == np.float32 else dict(rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(out.numpy(), ref.detach().numpy(), **tol)
    out.sum().backward()
    ref.sum().backward()
    np.testing.assert_allclose(mine.grad.numpy(), reference.grad.numpy(), **tol)
    for (key, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters()):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), **tol, err_msg=key)
    assert repr(ours).split("(")[0] == repr(theirs).split("(")[0]


@pytest.mark.parametrize("name, args", [
    ("L1Loss", {}), ("SmoothL1Loss", dict(beta=0.5)), ("HuberLoss", dict(delta=0.7)),
    ("BCELoss", {}), ("BCEWithLogitsLoss", dict(pos_weight=[1.0, 2.0, 0.5])),
    ("KLDivLoss", dict(reduction="batchmean")),
])
def test_loss_layers_match_torch(name, args):
    torch = pytest.importorskip("torch")
    x = rng.uniform(0.05, 0.95, (4, 3))
    target = rng.uniform(0, 1, (4, 3))
    if name == "KLDivLoss":
        x, target = np.log(x / x.sum(1, keepdims=True)), target / target.sum(1, keepdims=True)
    ours_args = dict(args, **{k: cnn.tensor(v, dtype=cnn.float64) for k, v in args.items()
                              if isinstance(v, list)})
    theirs_args = dict(args, **{k: torch.tensor(v, dtype=torch.float64)
                                for k, v in args.items() if isinstance(v, list)})
    ours = getattr(nn, name)(**ours_args)(cnn.tensor(x), cnn.tensor(target))
    theirs = getattr(torch.nn, name)(**theirs_args)(torch.tensor(x), torch.tensor(target))
    assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


def test_dropout2d_layer_is_identity_in_eval():
    layer = nn.Dropout2d(0.5)
    x = cnn.ones(2, 4, 3, 3)
    assert layer.eval()(x) is x and layer.train()(x).shape == x.shape


def test_fusion_leaves_convolutions_that_pad_first_alone():
    model = nn.Sequential(nn.Conv2d(1, 2, 4, padding="same"), nn.ReLU(), nn.MaxPool2d(2))
    plain = nn.Sequential(model[0], model[1], model[2])
    x = cnn.randn(1, 1, 8, 8)
    expected = nn.functional.max_pool2d(nn.functional.relu(model[0](x)), 2)
    np.testing.assert_allclose(model(x).numpy(), expected.numpy(), rtol=1e-6)
    np.testing.assert_allclose(plain(x).numpy(), expected.numpy(), rtol=1e-6)


# ***** containers *****

def test_module_dict_and_parameter_containers_register_their_members():
    class Heads(nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = nn.ModuleDict({"cls": nn.Linear(2, 3), "box": nn.Linear(2, 4)})
            self.scales = nn.ParameterList([nn.Parameter(cnn.ones(3)), cnn.zeros(4)])
            self.extra = nn.ParameterDict({"bias": nn.Parameter(cnn.zeros(2))})

    model = Heads()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["heads.cls.weight", "heads.cls.bias", "heads.box.weight", "heads.box.bias",
                     "scales.0", "scales.1", "extra.bias"]
    assert list(model.heads) == ["cls", "box"] and "box" in model.heads and len(model.heads) == 2
    assert isinstance(model.scales[1], nn.Parameter) and len(model.scales) == 2
    model.scales.append(cnn.ones(1))
    model.extra["scale"] = cnn.ones(2)
    assert len(list(model.parameters())) == 9
    del model.heads["box"]
    assert list(model.heads.keys()) == ["cls"]
    torch = pytest.importorskip("torch")
    assert "ModuleDict(" in repr(model) and "(0): Parameter containing:" in repr(model.scales)
    assert torch is not None


# ***** Module: buffers, traversal, devices *****

def test_register_buffer_takes_tensors():
    class Masked(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mask", cnn.tensor([1.0, 0.0]))
            self.register_buffer("scratch", cnn.zeros(2), persistent=False)

        def forward(self, x):
            return x * self.mask

    model = Masked()
    assert isinstance(model.mask, cnn.Tensor) and list(model.state_dict()) == ["mask"]
    assert model(cnn.ones(2)).tolist() == [1.0, 0.0]
    model.load_state_dict({"mask": np.array([0.0, 1.0])})
    assert model.mask.tolist() == [0.0, 1.0]
    model.double()
    assert model.mask.dtype == cnn.float64 and model.scratch.dtype == cnn.float64
    assert [name for name, _ in model.named_buffers()] == ["mask", "scratch"]
    model.mask = cnn.ones(2)
    with pytest.raises(TypeError, match="buffer 'mask'"):
        model.mask = [1, 2]


def test_traversal_apply_and_requires_grad():
    model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.ReLU(), nn.Linear(2, 1)))
    assert [name for name, _ in model.named_modules()] == ["", "0", "1", "1.0", "1.1"]
    seen = []
    model.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "ReLU", "Linear", "Sequential", "Sequential"]
    model.requires_grad_(False)
    assert not any(p.requires_grad for p in model.parameters())


# ***** torch.nn.utils *****

@pytest.mark.parametrize("norm_type", [2.0, 1.0, float("inf")])
def test_clip_grad_norm_matches_torch(norm_type):
    torch = pytest.importorskip("torch")
    grads = [rng.standard_normal((3, 2)), rng.standard_normal(4)]
    ours = [nn.Parameter(cnn.zeros(*g.shape, dtype=cnn.float64)) for g in grads]
    theirs = [torch.zeros(g.shape, dtype=torch.float64, requires_grad=True) for g in grads]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.tensor(g)
    total = nn.utils.clip_grad_norm_(ours, 0.5, norm_type)
    reference = torch.nn.utils.clip_grad_norm_(theirs, 0.5, norm_type)
    assert total.item() == pytest.approx(reference.item(), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)
    nn.utils.clip_grad_value_(ours, 0.01)
    torch.nn.utils.clip_grad_value_(theirs, 0.01)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), rtol=1e-12)
    ours[0].grad = np.full((3, 2), np.nan)
    with pytest.raises(RuntimeError, match="non-finite"):
        nn.utils.clip_grad_norm_(ours, 1.0, error_if_nonfinite=True)


def test_parameters_as_one_vector_and_back():
    model = nn.Linear(3, 2)
    vector = nn.utils.parameters_to_vector(model.parameters())
    assert vector.shape == (8,) and vector.requires_grad
    nn.utils.vector_to_parameters(cnn.arange(8.0), model.parameters())
    assert model.weight.tolist() == [[0, 1, 2], [3, 4, 5]] and model.bias.tolist() == [6, 7]
    with pytest.raises(ValueError, match="8 elements"):
        nn.utils.vector_to_parameters(cnn.zeros(7), model.parameters())
