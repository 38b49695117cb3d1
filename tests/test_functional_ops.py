"""The functional ops added for PyTorch scripts: float64 gradcheck and PyTorch parity of each.

Activations (gelu, silu, elu, hardtanh, relu6, softplus), element-wise losses (l1, smooth l1,
huber, binary cross-entropy on probabilities and logits, kl_div), pad, interpolate, adaptive
pooling, transposed and 1-D convolution, 1-D pooling, layer and group norm, dropout2d and
one_hot. PyTorch parity is skipped without torch.
"""
import numpy as np
import pytest
from test_functional import check_against_torch, leaves

import cnn
import cnn.nn.functional as F
from cnn.autograd import gradcheck

DTYPES = [np.float32, np.float64]
# PyTorch's own notices (cnn gives kl_div's too, as PyTorch does).
pytestmark = [pytest.mark.filterwarnings("ignore:reduction. 'mean' divides"),
              pytest.mark.filterwarnings("ignore:Using padding='same'")]


def rng(seed=0):
    return np.random.default_rng(seed)


def away_from_kinks(shape, seed=0, kinks=(0.0,), margin=0.05):
    """Values in [-3, 3] at least `margin` from each kink, so central differences are smooth."""
    x = rng(seed).uniform(-3, 3, shape)
    for kink in kinks:
        near = np.abs(x - kink) < margin
        x[near] += 2 * margin
    return x


def torch_fn(name, **kwargs):
    torch = pytest.importorskip("torch")
    return lambda *args: getattr(torch.nn.functional, name)(*args, **kwargs)


# ***** activations *****

ACTIVATIONS = [
    ("gelu", {}, ()), ("gelu", {"approximate": "tanh"}, ()), ("silu", {}, ()),
    ("elu", {"alpha": 0.7}, (0.0,)), ("hardtanh", {"min_val": -0.5, "max_val": 1.5}, (-0.5, 1.5)),
    ("relu6", {}, (0.0, 6.0)), ("softplus", {"beta": 2.0, "threshold": 3.0}, (1.5,)),
]


@pytest.mark.parametrize("name, kwargs, kinks", ACTIVATIONS,
                         ids=[f"{n}-{k}" for n, k, _ in ACTIVATIONS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_activations(name, kwargs, kinks, dtype):
    x = away_from_kinks((3, 7), kinks=kinks) * (3 if name == "relu6" else 1)
    fn = lambda a: getattr(F, name)(a, **kwargs)  # noqa: E731
    assert gradcheck(fn, leaves(x))
    check_against_torch(fn, torch_fn(name, **kwargs), [x], dtype)


# ***** losses *****

def loss_inputs(name, seed=0, zero_target=False):
    r = rng(seed)
    if name == "binary_cross_entropy":
        return [r.uniform(0.05, 0.95, (4, 3)), r.uniform(0, 1, (4, 3))]
    if name == "kl_div":
        logp = np.log(r.dirichlet(np.ones(5), 4))
        target = r.dirichlet(np.ones(5), 4)
        if zero_target:
            target[0, 1] = 0.0  # t log t is 0 at t = 0 (not differentiable there)
        return [logp, target]
    x = away_from_kinks((4, 3), seed)
    return [x, x + r.choice([-1.7, -0.3, 0.4, 2.1], (4, 3))]  # both sides of beta and delta


LOSSES = [
    ("l1_loss", {}), ("smooth_l1_loss", {"beta": 0.5}), ("smooth_l1_loss", {"beta": 0.0}),
    ("huber_loss", {"delta": 0.8}), ("binary_cross_entropy", {}),
    ("binary_cross_entropy_with_logits", {}), ("kl_div", {}), ("kl_div", {"log_target": True}),
]


@pytest.mark.parametrize("name, kwargs", LOSSES, ids=[f"{n}-{k}" for n, k in LOSSES])
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", DTYPES)
def test_losses(name, kwargs, reduction, dtype):
    arrays = loss_inputs(name)
    if kwargs.get("log_target"):
        arrays[1] = np.log(arrays[1] + 0.1)
    fn = lambda a, b: getattr(F, name)(a, b, reduction=reduction, **kwargs)  # noqa: E731
    assert gradcheck(fn, leaves(*arrays))
    mask = None
    if name == "kl_div" and not kwargs:
        # At a zero target the target's derivative does not exist (PyTorch gives NaN).
        arrays, mask = loss_inputs(name, zero_target=True), [True, False]
    check_against_torch(fn, torch_fn(name, reduction=reduction, **kwargs), arrays, dtype, mask)


@pytest.mark.parametrize("dtype", DTYPES)
def test_binary_cross_entropy_weights_and_pos_weight(dtype):
    x, t = loss_inputs("binary_cross_entropy")
    weight, pos_weight = rng(1).uniform(0.5, 2, (3,)), rng(2).uniform(0.5, 3, (3,))
    fn = lambda a, b: F.binary_cross_entropy_with_logits(  # noqa: E731
        a, b, weight=cnn.tensor(weight.astype(a.dtype)),
        pos_weight=cnn.tensor(pos_weight.astype(a.dtype)))
    assert gradcheck(fn, leaves(x, t))
    torch = pytest.importorskip("torch")
    weight_t, pos_weight_t = torch.tensor(weight.astype(dtype)), \
        torch.tensor(pos_weight.astype(dtype))
    check_against_torch(fn, lambda a, b: torch.nn.functional.binary_cross_entropy_with_logits(
        a, b, weight=weight_t, pos_weight=pos_weight_t), [x, t], dtype)
    check_against_torch(lambda a, b: F.binary_cross_entropy(a, b, cnn.tensor(weight.astype(dtype))),
                        lambda a, b: torch.nn.functional.binary_cross_entropy(a, b, weight_t),
                        [x, t], dtype)


def test_kl_div_batchmean_divides_by_the_batch():
    logp, target = [cnn.tensor(a) for a in loss_inputs("kl_div")]
    total = F.kl_div(logp, target, reduction="sum").item()
    assert F.kl_div(logp, target, reduction="batchmean").item() == pytest.approx(total / 4)


def test_loss_errors_name_the_argument():
    x = cnn.tensor(np.full((2, 3), 0.5))
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.binary_cross_entropy(x * 3, x)
    with pytest.raises(ValueError, match="target: l1_loss expects the input's shape"):
        F.l1_loss(x, x[0])
    with pytest.raises(ValueError, match="reduction"):
        F.huber_loss(x, x, reduction="batchmean")
    with pytest.raises(ValueError, match="delta"):
        F.huber_loss(x, x, delta=0)


# ***** padding and resampling *****

PADS = [((1, 2), "constant"), ((2, 1, 0, 3), "constant"), ((-1, 2, 1, -2), "constant"),
        ((1, 2, 2, 1), "reflect"), ((2, 0, 1, 3), "replicate"), ((1, 3, 2, 2), "circular"),
        ((2, 1), "reflect")]


@pytest.mark.parametrize("pad, mode", PADS, ids=[f"{m}{p}" for p, m in PADS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_pad(pad, mode, dtype):
    # PyTorch pads the last 1 (3-D input) or 2 (4-D input) dims in the non-constant modes.
    x = rng().standard_normal((2, 2, 4, 5)[len(pad) // 2 % 2:])
    fn = lambda a: F.pad(a, pad, mode=mode, value=0.5 if mode == "constant" else None)  # noqa
    assert gradcheck(fn, leaves(x))
    kwargs = {"value": 0.5} if mode == "constant" else {}
    check_against_torch(fn, torch_fn("pad", pad=pad, mode=mode, **kwargs), [x], dtype)


def test_pad_refuses_what_torch_refuses():
    x = cnn.zeros(1, 1, 3, 3)
    with pytest.raises(ValueError, match="reflect padding of dim 3 .* too large"):
        F.pad(x, (3, 0), mode="reflect")
    with pytest.raises(ValueError, match="mode"):
        F.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(ValueError, match="pairs"):
        F.pad(x, (1, 1, 1))


INTERPOLATIONS = [
    ((2, 2, 5, 4), dict(scale_factor=2, mode="nearest")),
    ((2, 2, 5, 4), dict(size=(7, 3), mode="nearest")),
    ((2, 2, 5, 4), dict(scale_factor=1.7, mode="nearest-exact")),
    ((2, 2, 5, 4), dict(size=(8, 9), mode="bilinear")),
    ((2, 2, 5, 4), dict(size=(8, 9), mode="bilinear", align_corners=True)),
    ((2, 2, 5, 4), dict(scale_factor=(0.5, 2.5), mode="bilinear")),
    ((2, 3, 7), dict(size=11, mode="linear")),
    ((2, 3, 7), dict(scale_factor=3, mode="linear", align_corners=True)),
    ((2, 2, 6, 5), dict(size=(4, 3), mode="area")),
]


@pytest.mark.parametrize("shape, kwargs", INTERPOLATIONS, ids=[str(k) for _, k in INTERPOLATIONS])
@pytest.mark.parametrize("dtype", DTYPES)
def test_interpolate(shape, kwargs, dtype):
    x = rng().standard_normal(shape)
    fn = lambda a: F.interpolate(a, **kwargs)  # noqa: E731
    assert gradcheck(fn, leaves(x))
    check_against_torch(fn, torch_fn("interpolate", **kwargs), [x], dtype)


def test_interpolate_refuses_unsupported_modes():
    x = cnn.zeros(1, 1, 4, 4)
    with pytest.raises(ValueError, match="'bicubic' is not supported by cnn"):
        F.interpolate(x, scale_factor=2, mode="bicubic")
    with pytest.raises(ValueError, match="bilinear mode needs 4D"):
        F.interpolate(cnn.zeros(1, 1, 4), scale_factor=2, mode="bilinear")
    with pytest.raises(ValueError, match="exactly one"):
        F.interpolate(x)


@pytest.mark.parametrize("size", [1, (2, 3), (5, None), (3, 4)])
@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_pooling(size, dtype):
    x = rng().permutation(2 * 2 * 7 * 5).reshape(2, 2, 7, 5) / 9.0  # distinct: no max ties
    for name in ("adaptive_avg_pool2d", "adaptive_max_pool2d"):
        fn = lambda a: getattr(F, name)(a, size)  # noqa: E731
        assert gradcheck(fn, leaves(x))
        check_against_torch(fn, torch_fn(name, output_size=size), [x], dtype)


def test_adaptive_max_pool_indices_and_1d_forms():
    torch = pytest.importorskip("torch")
    x = rng().standard_normal((2, 3, 9))
    values, indices = F.adaptive_max_pool1d(cnn.tensor(x), 4, return_indices=True)
    ref_values, ref_indices = torch.nn.functional.adaptive_max_pool1d(torch.tensor(x), 4, True)
    np.testing.assert_array_equal(values._data, ref_values.numpy())
    np.testing.assert_array_equal(indices._data, ref_indices.numpy())
    check_against_torch(lambda a: F.adaptive_avg_pool1d(a, 4),
                        torch_fn("adaptive_avg_pool1d", output_size=4), [x], np.float64)
    image = rng().standard_normal((3, 6, 6))  # unbatched
    _, indices = F.adaptive_max_pool2d(cnn.tensor(image), 4, return_indices=True)
    _, ref_indices = torch.nn.functional.adaptive_max_pool2d(torch.tensor(image), 4, True)
    np.testing.assert_array_equal(indices._data, ref_indices.numpy())


# ***** convolutions and 1-D pooling *****

TRANSPOSED = [
    dict(stride=1, padding=0), dict(stride=2, padding=1, output_padding=1),
    dict(stride=(2, 1), padding=(0, 1), dilation=(1, 2)), dict(stride=3, groups=2),
    dict(stride=2, padding=2, output_padding=1, dilation=2),
]


@pytest.mark.parametrize("options", TRANSPOSED, ids=[str(o) for o in TRANSPOSED])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d(options, dtype):
    groups = options.get("groups", 1)
    r = rng()
    x = r.standard_normal((2, 2 * groups, 4, 3))
    weight = r.standard_normal((2 * groups, 3, 3, 2))
    bias = r.standard_normal(3 * groups)
    fn = lambda a, w, b: F.conv_transpose2d(a, w, b, **options)  # noqa: E731
    assert gradcheck(fn, leaves(x, weight, bias))
    check_against_torch(fn, torch_fn("conv_transpose2d", **options), [x, weight, bias], dtype)


CONV1D = [dict(), dict(stride=2, padding=1), dict(padding="same", dilation=2),
          dict(padding="same"), dict(padding="valid", groups=2)]


@pytest.mark.parametrize("options", CONV1D, ids=[str(o) for o in CONV1D])
@pytest.mark.parametrize("dtype", DTYPES)
def test_conv1d(options, dtype):
    r = rng()
    x, weight, bias = r.standard_normal((2, 4, 9)), r.standard_normal((6, 4 // options.get(
        "groups", 1), 4)), r.standard_normal(6)
    fn = lambda a, w, b: F.conv1d(a, w, b, **options)  # noqa: E731
    assert gradcheck(fn, leaves(x, weight, bias))
    check_against_torch(fn, torch_fn("conv1d", **options), [x, weight, bias], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_pool1d(dtype):
    x = rng().permutation(2 * 3 * 10).reshape(2, 3, 10) / 7.0
    for name, kwargs in (("max_pool1d", dict(kernel_size=3, stride=2, padding=1)),
                         ("avg_pool1d", dict(kernel_size=4, stride=3, ceil_mode=True))):
        fn = lambda a: getattr(F, name)(a, **kwargs)  # noqa: E731
        assert gradcheck(fn, leaves(x))
        check_against_torch(fn, torch_fn(name, **kwargs), [x], dtype)


# ***** normalization, dropout, one_hot *****

@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_norm(dtype):
    r = rng()
    x, weight, bias = r.standard_normal((3, 4, 5)), r.standard_normal((4, 5)), \
        r.standard_normal((4, 5))
    fn = lambda a, w, b: F.layer_norm(a, (4, 5), w, b, eps=1e-4)  # noqa: E731
    assert gradcheck(fn, leaves(x, weight, bias))
    torch = pytest.importorskip("torch")
    check_against_torch(fn, lambda a, w, b: torch.nn.functional.layer_norm(a, (4, 5), w, b, 1e-4),
                        [x, weight, bias], dtype)
    check_against_torch(lambda a: F.layer_norm(a, 5),
                        lambda a: torch.nn.functional.layer_norm(a, (5,)), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_group_norm(dtype):
    r = rng()
    x, weight, bias = r.standard_normal((2, 6, 3, 2)), r.standard_normal(6), r.standard_normal(6)
    fn = lambda a, w, b: F.group_norm(a, 3, w, b, eps=1e-4)  # noqa: E731
    assert gradcheck(fn, leaves(x, weight, bias))
    torch = pytest.importorskip("torch")
    check_against_torch(fn, lambda a, w, b: torch.nn.functional.group_norm(a, 3, w, b, 1e-4),
                        [x, weight, bias], dtype)


def test_dropout2d_drops_whole_channels_and_scales():
    cnn.manual_seed(0)
    x = cnn.ones(8, 16, 3, 3, requires_grad=True)
    out = F.dropout2d(x, 0.25)
    per_channel = out._data.reshape(8, 16, 9)
    assert np.all(per_channel == per_channel[..., :1])  # one value per channel
    assert set(np.unique(per_channel)) <= {0.0, np.float32(1 / 0.75)}
    assert 0 < (per_channel[..., 0] == 0).mean() < 0.5
    out.sum().backward()
    np.testing.assert_array_equal(x.grad._data, out._data)
    assert F.dropout2d(x, 0.25, training=False) is x


def test_one_hot_matches_torch():
    torch = pytest.importorskip("torch")
    labels = np.array([[0, 3], [2, 1]])
    np.testing.assert_array_equal(F.one_hot(cnn.tensor(labels))._data,
                                  torch.nn.functional.one_hot(torch.tensor(labels)).numpy())
    assert F.one_hot(cnn.tensor([1]), 4)._data.tolist() == [[0, 1, 0, 0]]
    with pytest.raises(ValueError, match="smaller than num_classes"):
        F.one_hot(cnn.tensor([4]), 4)
    with pytest.raises(TypeError, match="index tensors"):
        F.one_hot(cnn.tensor([1.0]))


def test_inplace_flags_are_accepted_with_the_same_values():
    x = cnn.tensor(rng().standard_normal((2, 3)))
    for name in ("relu", "leaky_relu", "silu", "elu", "hardtanh", "relu6"):
        np.testing.assert_array_equal(getattr(F, name)(x, inplace=True).numpy(),
                                      getattr(F, name)(x).numpy())
    assert F.dropout(x, 0.5, training=False, inplace=True) is x
