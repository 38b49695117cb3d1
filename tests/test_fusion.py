"""Fusion: the Sequential pass (cnn/nn/fusion.py), the fused modules and fuse_modules."""
import copy

import numpy as np
import pytest

import cnn
from cnn import nn
from cnn.nn import fusion
from cnn.nn import functional as F
from cnn.nn.utils.fusion import fuse_conv_bn_eval, fuse_conv_bn_weights, fuse_modules


def images(n=3, channels=1, size=12, seed=0):
    rng = np.random.default_rng(seed)
    return cnn.tensor(rng.standard_normal((n, channels, size, size)).astype(np.float32))


def conv_relu_pool(seed=0):
    cnn.manual_seed(seed)
    return nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2)


def values_and_grads(model, x, labels):
    model.zero_grad()
    loss = F.cross_entropy(model(x), labels)
    loss.backward()
    return loss.item(), [p.grad._data.copy() for p in model.parameters()]


def run_one_by_one(model, x):
    for layer in model:
        x = layer(x)
    return x


def test_fused_module_is_bit_identical_to_the_three_layers():
    conv, relu, pool = conv_relu_pool()
    fused = nn.ConvReLUMaxPool2d(conv, relu, pool)
    x = images()
    x.requires_grad = True
    out = fused(x)
    out.backward(np.ones(out.shape, np.float32))
    grads = [x.grad._data.copy()] + [p.grad._data.copy() for p in conv.parameters()]
    x.grad = None
    conv.zero_grad()
    separate = pool(relu(conv(x)))
    separate.backward(np.ones(separate.shape, np.float32))
    np.testing.assert_array_equal(out._data, separate._data)
    for got, expected in zip(grads, [x.grad._data] + [p.grad._data for p in conv.parameters()]):
        np.testing.assert_array_equal(got, expected)
    assert list(fused.state_dict()) == ["0.weight", "0.bias"]
    assert fused[0] is conv and fused.parameters().__next__() is conv.weight


@pytest.mark.parametrize("channels, kernel, size", [
    ((1, 4), 3, 12),    # the direct kernels (ReLU's mask in the pooled rows and channel lists)
    ((16, 16), 3, 32),  # Winograd
    ((4, 8), 1, 12),    # 1x1: by columns
])
def test_fused_gradients_equal_the_three_layers_with_nan_and_inf(channels, kernel, size):
    # ReLU's backward passes the gradient of a NaN output and gives 0 where the output is
    # <= 0, even for an inf or NaN gradient: the fused backward follows the same rule.
    cnn.manual_seed(1)
    conv = nn.Conv2d(*channels, kernel, padding=kernel // 2)
    fused = nn.ConvReLUMaxPool2d(conv, nn.ReLU(), nn.MaxPool2d(2))
    x = images(1, channels[0], size)
    x._data[0, 0, 2, 3] = np.nan
    x.requires_grad = True
    grad = np.ones((1, channels[1], size // 2, size // 2), np.float32)
    grad[0, :, 0, 0], grad[0, :, 1, 2] = np.inf, np.nan
    results = []
    for model in (fused, lambda t: F.max_pool2d(F.relu(conv(t)), 2)):
        x.grad = None
        conv.zero_grad()
        out = model(x)
        out.backward(grad)
        results.append([out._data.copy(), x.grad._data.copy()]
                       + [p.grad._data.copy() for p in conv.parameters()])
    assert np.isnan(results[1][0]).any() and (results[1][0] <= 0).any()
    for got, expected in zip(*results):
        assert got.tobytes() == expected.tobytes()


def test_sequential_fuses_without_touching_its_children_or_keys():
    model = nn.Sequential(*conv_relu_pool(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))
    keys = list(model.state_dict())
    children = list(model.named_children())
    x, labels = images(), np.array([0, 1, 2])
    fused_loss, fused_grads = values_and_grads(model, x, labels)
    (chain, fused), = model._fused.items()
    assert type(fused) is nn.ConvReLUMaxPool2d and chain == tuple(model)[:3]
    assert fused[0] is model[0]  # built over the very same modules
    assert list(model.state_dict()) == keys == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert list(model.named_children()) == children
    assert fused not in list(model.modules())
    model.zero_grad()
    loss = F.cross_entropy(run_one_by_one(model, x), labels)
    loss.backward()
    assert loss.item() == fused_loss
    for got, param in zip(fused_grads, model.parameters()):
        np.testing.assert_array_equal(got, param.grad._data)


def test_the_pass_returns_segments():
    conv, relu, pool = conv_relu_pool()
    flatten = nn.Flatten()
    built = {}
    segments = fusion.segments((relu, conv, relu, pool, flatten), built)
    assert [type(s).__name__ for s in segments] == ["ReLU", "ConvReLUMaxPool2d", "Flatten"]
    assert fusion.segments((relu, conv, relu, pool, flatten), built)[1] is segments[1]  # reused
    assert fusion.segments((conv, relu), built) == [conv, relu]  # too short
    assert built == {}  # the chain that no longer fuses is forgotten


@pytest.mark.parametrize("change", ["conv subclass", "relu subclass", "pool 3x3", "stride 1",
                                    "padding", "ceil_mode", "indices", "groups", "dilation"])
def test_only_exact_classes_with_supported_settings_fuse(change):
    class MyConv(nn.Conv2d):
        pass

    class MyReLU(nn.ReLU):
        pass

    cnn.manual_seed(0)
    conv, relu, pool = (nn.Conv2d(2, 4, 3), nn.ReLU(), nn.MaxPool2d(2))
    if change == "conv subclass":
        conv = MyConv(2, 4, 3)
    elif change == "relu subclass":
        relu = MyReLU()
    elif change == "pool 3x3":
        pool = nn.MaxPool2d(3, 2)
    elif change == "stride 1":
        pool = nn.MaxPool2d(2, 1)
    elif change == "padding":
        pool = nn.MaxPool2d(2, padding=1)
    elif change == "ceil_mode":
        pool = nn.MaxPool2d(2, ceil_mode=True)
    elif change == "indices":
        pool = nn.MaxPool2d(2, return_indices=True)
    elif change == "groups":
        conv = nn.Conv2d(2, 4, 3, groups=2)
    else:
        conv = nn.Conv2d(2, 4, 3, dilation=2)
    chain = (conv, relu, pool)
    expected = change == "dilation"  # the fused op supports dilation
    assert nn.ConvReLUMaxPool2d.accepts(chain) is expected
    model = nn.Sequential(*chain)
    model(images(channels=2))
    assert bool(model._fused) is expected
    if not expected:
        with pytest.raises(ValueError, match="ConvReLUMaxPool2d fuses Conv2d, ReLU, MaxPool2d"):
            nn.ConvReLUMaxPool2d(*chain)


def test_a_module_with_hooks_is_never_fused():
    model = nn.Sequential(*conv_relu_pool())
    x = images()
    plain = model(x)._data.copy()
    seen = []
    handle = model[1].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    assert np.array_equal(model(x)._data, plain)
    assert seen == [(3, 4, 12, 12)]  # the ReLU ran on its own, so its hook fired
    assert model._fused == {}
    handle.remove()
    pre = model[2].register_forward_pre_hook(lambda m, args: seen.append("pool"))
    model(x)
    assert seen[-1] == "pool"
    pre.remove()
    model(x)
    assert len(model._fused) == 1


def test_changed_settings_are_seen_at_the_next_forward():
    model = nn.Sequential(*conv_relu_pool())
    x = images()
    model(x)
    assert model._fused
    model[2].stride = (1, 1)
    assert model(x).shape == (3, 4, 11, 11)
    assert model._fused == {}


def test_deepcopy_and_slices_of_fused_models():
    model = nn.Sequential(*conv_relu_pool(), nn.Flatten())
    x = images()
    out = model(x)._data
    clone = copy.deepcopy(model)
    np.testing.assert_array_equal(clone(x)._data, out)
    (fused,) = clone._fused.values()
    assert fused[0] is clone[0]  # the copy's fused module holds the copy's layers
    part = nn.ConvReLUMaxPool2d(*model[:3])[0:2]
    assert type(part) is nn.Sequential and list(part) == [model[0], model[1]]


# ***** fuse_modules *****

class UserNet(nn.Module):
    """A model with its own forward: the ReLU is a function call, as users often write it."""

    def __init__(self, functional_relu):
        super().__init__()
        self.functional_relu = functional_relu
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.MaxPool2d(2, 2)
        self.fc = nn.Linear(4 * 6 * 6, 3)

    def forward(self, x):
        if self.functional_relu:
            x = self.pool(F.relu(self.conv(x)))
        else:
            x = self.pool(self.relu(self.conv(x)))
        return self.fc(x.flatten(1))


@pytest.mark.parametrize("functional_relu", [True, False])
def test_fuse_modules_in_a_user_model(functional_relu):
    cnn.manual_seed(0)
    model = UserNet(functional_relu)
    x, labels = images(), np.array([0, 1, 2])
    loss, grads = values_and_grads(model, x, labels)
    fused = fuse_modules(model, ["conv", "relu", "pool"])
    assert fused is not model and type(model.conv) is nn.Conv2d  # a copy was fused
    assert type(fused.conv) is nn.ConvReLUMaxPool2d
    assert type(fused.relu) is nn.Identity and type(fused.pool) is nn.Identity
    assert list(fused.state_dict()) == ["conv.0.weight", "conv.0.bias", "fc.weight", "fc.bias"]
    fused_loss, fused_grads = values_and_grads(fused, x, labels)
    assert fused_loss == loss
    for got, expected in zip(fused_grads, grads):
        np.testing.assert_array_equal(got, expected)


def batch_norm_net(seed=0):
    cnn.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(2, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(),
                          nn.Conv2d(4, 3, 3), nn.BatchNorm2d(3))
    rng = np.random.default_rng(seed)
    for bn in (model[1], model[4]):
        bn.running_mean[...] = rng.standard_normal(bn.num_features)
        bn.running_var[...] = rng.uniform(0.5, 2.0, bn.num_features)
        bn.weight._data[...] = rng.uniform(0.5, 1.5, bn.num_features)
        bn.bias._data[...] = rng.standard_normal(bn.num_features)
    return model.eval()


def test_fuse_conv_bn_in_eval_mode_folds_the_batch_norm():
    model = batch_norm_net()
    x = images(channels=2)
    expected = model(x)._data
    fused = fuse_modules(model, [["0", "1", "2"], ["3", "4"]])
    assert type(fused[0]) is nn.ConvReLU2d and type(fused[0][0]) is nn.Conv2d
    assert type(fused[3]) is nn.Conv2d
    assert [type(fused[i]) for i in (1, 2, 4)] == [nn.Identity] * 3
    assert fused[0][0].bias is not None and not fused[0][0].bias.requires_grad
    np.testing.assert_allclose(fused(x)._data, expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(model(x)._data, expected)  # the original is unchanged
    assert list(fused.state_dict()) == ["0.0.weight", "0.0.bias", "3.weight", "3.bias"]


def test_fusing_batch_norm_needs_eval_mode():
    model = batch_norm_net().train()
    with pytest.raises(ValueError, match="eval"):
        fuse_modules(model, ["0", "1"])
    model[0].eval()
    with pytest.raises(ValueError, match="same mode"):
        fuse_modules(model, ["0", "1"])
    training = nn.Sequential(*conv_relu_pool()).train()
    assert type(fuse_modules(training, ["0", "1", "2"])[0]) is nn.ConvReLUMaxPool2d  # any mode


def test_unsupported_chains_name_the_classes():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Conv2d(1, 1, 1), nn.MaxPool2d(2))
    with pytest.raises(ValueError, match=r"Cannot fuse modules: \(Linear, ReLU\)"):
        fuse_modules(model, ["0", "1"])
    with pytest.raises(ValueError, match=r"Cannot fuse modules: \(Conv2d, MaxPool2d\)"):
        fuse_modules(model, ["2", "3"])
    with pytest.raises(AttributeError):
        fuse_modules(model, ["0", "9"])


def test_fuse_modules_inplace_moves_the_hooks():
    model = nn.Sequential(*conv_relu_pool())
    seen = []
    model[0].register_forward_pre_hook(lambda m, args: seen.append(type(m).__name__))
    model[2].register_forward_hook(lambda m, args, out: seen.append(out.shape))
    assert fuse_modules(model, ["0", "1", "2"], inplace=True) is model
    model(images())
    assert seen == ["ConvReLUMaxPool2d", (3, 4, 6, 6)]


def test_custom_fuser_methods():
    model = nn.Sequential(nn.Linear(3, 3), nn.ReLU())
    config = {"additional_fuser_method_mapping": {
        (nn.Linear, nn.ReLU): lambda is_qat, linear, relu: nn.Sequential(linear, relu)}}
    fused = fuse_modules(model, ["0", "1"], fuse_custom_config_dict=config)
    assert type(fused[0]) is nn.Sequential and type(fused[1]) is nn.Identity


def test_fuse_conv_bn_weights_formula():
    rng = np.random.default_rng(1)
    w, b = rng.standard_normal((4, 2, 3, 3)), rng.standard_normal(4)
    mean, var = rng.standard_normal(4), rng.uniform(0.5, 2, 4)
    gamma, beta = rng.standard_normal(4), rng.standard_normal(4)
    fused_w, fused_b = fuse_conv_bn_weights(w, b, mean, var, 1e-3, gamma, beta)
    scale = gamma / np.sqrt(var + 1e-3)
    np.testing.assert_allclose(fused_w._data, w * scale[:, None, None, None])
    np.testing.assert_allclose(fused_b._data, (b - mean) * scale + beta)
    transposed, _ = fuse_conv_bn_weights(w.transpose(1, 0, 2, 3), None, mean, var, 1e-3, None,
                                         None, transpose=True)
    np.testing.assert_allclose(transposed._data,
                               w.transpose(1, 0, 2, 3) / np.sqrt(var + 1e-3)[None, :, None, None])
    with pytest.raises(ValueError, match="bn_rm: expected shape \\(4,\\)"):
        fuse_conv_bn_weights(w, b, mean[:3], var, 1e-3, gamma, beta)


def test_fusion_matches_torch():
    torch = pytest.importorskip("torch")
    from torch.ao.quantization import fuse_modules as torch_fuse_modules
    from torch.nn.utils.fusion import fuse_conv_bn_eval as torch_fuse_conv_bn_eval

    model = batch_norm_net()
    reference = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, bias=False),
                                    torch.nn.BatchNorm2d(4), torch.nn.ReLU(),
                                    torch.nn.Conv2d(4, 3, 3), torch.nn.BatchNorm2d(3))
    reference.load_state_dict({k: torch.from_numpy(np.array(v))
                               for k, v in model.state_dict().items()})
    reference.eval()
    folded = fuse_conv_bn_eval(model[3], model[4])
    torch_folded = torch_fuse_conv_bn_eval(reference[3], reference[4])
    np.testing.assert_allclose(folded.weight._data, torch_folded.weight.detach().numpy(),
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(folded.bias._data, torch_folded.bias.detach().numpy(),
                               rtol=1e-6, atol=1e-7)
    chains = [["0", "1", "2"], ["3", "4"]]
    fused, torch_fused = fuse_modules(model, chains), torch_fuse_modules(reference, chains)
    assert list(fused.state_dict()) == list(torch_fused.state_dict())
    assert ([type(m).__name__ for m in fused] == [type(m).__name__ for m in torch_fused])
    x = images(channels=2)
    np.testing.assert_allclose(fused(x)._data,
                               torch_fused(torch.from_numpy(x._data)).detach().numpy(),
                               rtol=1e-4, atol=1e-5)
