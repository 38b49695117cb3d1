"""Module, Sequential, ModuleList: registration, traversal, state dicts, modes, conversions, repr.

The test network is built twice from one description, on cnn.nn and on torch.nn, so key names,
traversal order and repr strings are checked against PyTorch itself where it is installed.
"""
import copy
from collections import OrderedDict

import numpy as np
import pytest

import cnn
from cnn.nn import Module, ModuleList, Parameter, Sequential


def make_classes(nn, parameter, buffer):
    """Affine, Stats and Net written against one framework (`nn`, its Parameter, its arrays)."""

    class Affine(nn.Module):
        def __init__(self, n, bias=True):
            super().__init__()
            self.n = n
            self.weight = parameter(np.arange(1, n + 1, dtype=np.float32))
            if bias:
                self.bias = parameter(np.zeros(n, dtype=np.float32))
            else:
                self.register_parameter("bias", None)

        def forward(self, x):
            out = x * self.weight
            return out if self.bias is None else out + self.bias

        def extra_repr(self):
            return f"{self.n}, bias={self.bias is not None}"

    class Stats(nn.Module):
        def __init__(self, n):
            super().__init__()
            self.register_buffer("running_mean", buffer(np.zeros(n, dtype=np.float32)))
            self.register_buffer("scratch", buffer(np.zeros(n, dtype=np.float32)), persistent=False)
            self.register_buffer("count", buffer(np.zeros((), dtype=np.int64)))

        def forward(self, x):
            return x

        def extra_repr(self):
            return "momentum=0.1\ntrack=True"

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.features = nn.Sequential(Affine(3), Stats(3), Affine(3, bias=False))
            self.head = Affine(3)
            # Assigned after the submodules, yet listed first: a module's own entries come first.
            self.scale = parameter(np.array(2.0, dtype=np.float32))

        def forward(self, x):
            return self.head(self.features(x)) * self.scale

    return Affine, Stats, Net


Affine, Stats, Net = make_classes(cnn.nn, Parameter, lambda a: a)

PARAMETER_KEYS = ["scale", "features.0.weight", "features.0.bias", "features.2.weight",
                  "head.weight", "head.bias"]
STATE_KEYS = ["scale", "features.0.weight", "features.0.bias", "features.1.running_mean",
              "features.1.count", "features.2.weight", "head.weight", "head.bias"]
NET_REPR = """Net(
  (features): Sequential(
    (0): Affine(3, bias=True)
    (1): Stats(
      momentum=0.1
      track=True
    )
    (2): Affine(3, bias=False)
  )
  (head): Affine(3, bias=True)
)"""


def torch_net():
    torch = pytest.importorskip("torch")
    _, _, TorchNet = make_classes(torch.nn, lambda a: torch.nn.Parameter(torch.from_numpy(a)),
                                  torch.from_numpy)
    return torch, TorchNet()


def snapshot(module):
    """Every array of the module, copied, with the identity of each live array and Parameter."""
    return ({key: value.copy() for key, value in module.state_dict().items()},
            {key: id(value) for key, value in module.state_dict().items()},
            {name: id(p) for name, p in module.named_parameters()})


def assert_unchanged(module, before):
    values, array_ids, param_ids = before
    after_values, after_array_ids, after_param_ids = snapshot(module)
    assert after_array_ids == array_ids and after_param_ids == param_ids
    for key, value in values.items():
        assert after_values[key].dtype == value.dtype
        np.testing.assert_array_equal(after_values[key], value)


def perturbed_state(module):
    """A full, valid state dict whose every value differs from the module's."""
    return {key: (value + 7).astype(value.dtype) for key, value in module.state_dict().items()}


# ***** registration and traversal *****

def test_registration_order_and_names():
    net = Net()
    assert [name for name, _ in net.named_parameters()] == PARAMETER_KEYS
    assert list(net.state_dict()) == STATE_KEYS
    assert [name for name, _ in net.named_buffers()] == [
        "features.1.running_mean", "features.1.scratch", "features.1.count"]
    assert [name for name, _ in net.named_modules()] == [
        "", "features", "features.0", "features.1", "features.2", "head"]
    assert [name for name, _ in net.named_children()] == ["features", "head"]
    assert list(net.parameters()) == [p for _, p in net.named_parameters()]
    assert [name for name, _ in net.named_parameters(recurse=False)] == ["scale"]
    assert [name for name, _ in net.head.named_parameters(prefix="head")] == ["head.weight",
                                                                             "head.bias"]
    assert net.features[2].bias is None
    assert net.features[1].running_mean is net.features[1]._buffers["running_mean"]


def test_names_match_torch():
    torch, reference = torch_net()
    net = Net()
    assert [n for n, _ in net.named_parameters()] == [n for n, _ in reference.named_parameters()]
    assert list(net.state_dict()) == list(reference.state_dict())
    assert [n for n, _ in net.named_buffers()] == [n for n, _ in reference.named_buffers()]
    assert [n for n, _ in net.named_modules()] == [n for n, _ in reference.named_modules()]
    assert repr(net) == repr(reference) == NET_REPR


def test_shared_parameter_listed_once_but_saved_under_each_name():
    net = Net()
    net.head.weight = net.features[0].weight
    names = [name for name, _ in net.named_parameters()]
    assert names == ["scale", "features.0.weight", "features.0.bias", "features.2.weight",
                     "head.bias"]
    assert len(list(net.parameters())) == 5
    assert len([name for name, _ in net.named_parameters(remove_duplicate=False)]) == 6
    assert list(net.state_dict()) == STATE_KEYS
    assert net.state_dict()["head.weight"] is net.state_dict()["features.0.weight"]


def test_shared_module_visited_once():
    shared = Affine(2)
    model = Sequential(shared, Stats(2), shared)
    assert [name for name, _ in model.named_modules()] == ["", "0", "1"]
    assert len(list(model.children())) == 2
    assert [name for name, _ in model.named_parameters()] == ["0.weight", "0.bias"]
    assert list(model.state_dict()) == ["0.weight", "0.bias", "1.running_mean", "1.count",
                                        "2.weight", "2.bias"]


def test_state_dict_values_are_live_arrays():
    net = Net()
    state = net.state_dict()
    assert isinstance(state, OrderedDict)
    assert state["head.weight"] is net.head.weight._data
    assert state["features.1.running_mean"] is net.features[1].running_mean
    assert net.state_dict(keep_vars=True)["head.weight"] is net.head.weight
    assert list(net.state_dict(prefix="model.")) == ["model." + key for key in STATE_KEYS]


def test_attribute_routing_and_deletion():
    net = Net()
    net.extra = Affine(1)
    assert "extra" in net._modules and "extra" not in net.__dict__
    net.extra = Parameter(np.ones(1, dtype=np.float32))  # a module slot turned parameter
    assert "extra" in net._parameters and "extra" not in net._modules
    net.plain = 3
    assert net.__dict__["plain"] == 3
    net.features[1].running_mean = np.ones(3, dtype=np.float32)
    np.testing.assert_array_equal(net.state_dict()["features.1.running_mean"], 1)
    net.head.bias = None
    assert "head.bias" not in net.state_dict()
    del net.extra, net.plain, net.features[1].running_mean, net.head
    assert "extra" not in net._parameters and not hasattr(net, "plain")
    assert "features.1.running_mean" not in net.state_dict() and not hasattr(net, "head")
    with pytest.raises(AttributeError, match="'Net' object has no attribute 'head'"):
        net.head


def test_register_errors_name_the_argument():
    module = Affine(2)
    with pytest.raises(TypeError, match="parameter 'weight'.*Parameter or None"):
        module.weight = np.ones(2, dtype=np.float32)
    with pytest.raises(TypeError, match="ndarray to parameter 'w'"):
        module.register_parameter("w", np.ones(2))
    with pytest.raises(TypeError, match="buffer 'b'.*NumPy array or None"):
        module.register_buffer("b", [1.0, 2.0])
    module.register_buffer("b", np.zeros(2))
    with pytest.raises(TypeError, match="list as buffer 'b'.*NumPy array or None"):
        module.b = [1.0, 2.0]
    holder = Sequential(Affine(1))
    with pytest.raises(TypeError, match="int as child module '0'"):
        setattr(holder, "0", 5)
    with pytest.raises(TypeError, match="cannot assign ndarray as child module 'x'"):
        holder.add_module("x", np.zeros(1))
    with pytest.raises(ValueError, match="cannot contain '.'"):
        module.register_parameter("a.b", None)
    with pytest.raises(ValueError, match="empty string"):
        module.register_buffer("", None)
    with pytest.raises(TypeError, match="expected a string"):
        module.add_module(1, Affine(1))
    with pytest.raises(ValueError, match="already has an attribute 'n'"):
        module.register_parameter("n", None)
    with pytest.raises(ValueError, match="already has an attribute 'forward'"):
        module.add_module("forward", Affine(1))


def test_assignment_before_init_is_explained():
    class Forgetful(Module):
        def __init__(self):
            self.weight = Parameter(np.zeros(1, dtype=np.float32))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Forgetful()


def test_forward_and_call():
    class Scaled(Module):
        def forward(self, x, factor=1.0):
            return x * factor

    assert Scaled()(3.0, factor=2.0) == 6.0
    with pytest.raises(NotImplementedError,
                       match=r'Module \[Module\] is missing the required "forward"'):
        Module()(1)
    with pytest.raises(NotImplementedError):
        ModuleList([Affine(1)])(1)


def test_forward_through_the_network():
    x = np.array([1.0, -2.0, 3.0], dtype=np.float32)
    out = Net()(cnn.tensor(x))
    np.testing.assert_allclose(np.asarray(out), (x * [1, 2, 3] * [1, 2, 3] * [1, 2, 3]) * 2.0)


def test_apply_visits_children_first_and_returns_self():
    net = Net()
    order = []
    assert net.apply(lambda m: order.append(type(m).__name__)) is net
    assert order == ["Affine", "Stats", "Affine", "Sequential", "Affine", "Net"]


def test_dir_lists_registered_names():
    names = dir(Net())
    assert {"features", "head", "scale", "forward"} <= set(names)
    assert not any(name[0].isdigit() for name in dir(Sequential(Affine(1))))


def test_deepcopy_is_independent():
    net = Net()
    clone = copy.deepcopy(net)
    assert list(clone.state_dict()) == STATE_KEYS
    clone.head.weight._data[...] = 0
    assert net.head.weight._data[0] == 1


# ***** load_state_dict *****

def test_load_state_dict_round_trip_copies_in_place():
    net = Net()
    arrays = {key: id(value) for key, value in net.state_dict().items()}
    params = list(net.parameters())
    source = perturbed_state(Net())
    result = net.load_state_dict(source)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert all(a is b for a, b in zip(net.parameters(), params))
    assert {key: id(value) for key, value in net.state_dict().items()} == arrays
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, source[key])
        assert value is not source[key]


def test_load_state_dict_casts_floats_and_accepts_tensors():
    net = Net()
    source = {key: value.astype(np.float64) + 1 if value.dtype.kind == "f" else value + 1
              for key, value in net.state_dict().items()}
    source["head.bias"] = cnn.tensor(np.full(3, 5, dtype=np.float32))
    source["features.0.bias"] = np.array([1, 2, 3], dtype=np.int32)  # ints cast, like copy_
    net.load_state_dict(source)
    assert net.head.weight._data.dtype == np.float32
    np.testing.assert_array_equal(net.head.bias._data, 5)
    np.testing.assert_array_equal(net.features[0].bias._data, [1, 2, 3])
    assert net.features[1].count == 1


def test_load_state_dict_non_strict_reports_keys():
    net = Net()
    source = perturbed_state(net)
    del source["head.bias"]
    source["head.extra"] = np.zeros(3)
    before = net.head.bias._data.copy()
    missing, unexpected = net.load_state_dict(source, strict=False)
    assert (missing, unexpected) == (["head.bias"], ["head.extra"])
    np.testing.assert_array_equal(net.head.bias._data, before)
    np.testing.assert_array_equal(net.head.weight._data, source["head.weight"])


def test_load_state_dict_handles_values_aliasing_other_keys():
    model = Sequential(Affine(2), Affine(2))
    model[1].weight._data[...] = [5, 6]
    state = model.state_dict()
    swapped = {"0.weight": state["1.weight"], "1.weight": state["0.weight"],
               "0.bias": state["0.bias"], "1.bias": state["1.bias"]}
    model.load_state_dict(swapped)
    np.testing.assert_array_equal(model[0].weight._data, [5, 6])
    np.testing.assert_array_equal(model[1].weight._data, [1, 2])


def failing_state_dicts():
    good = perturbed_state(Net())
    missing = dict(good)
    del missing["features.2.weight"]
    unexpected = dict(good, **{"features.2.bias": np.zeros(3, dtype=np.float32)})
    shape = dict(good, **{"head.weight": np.zeros((3, 1), dtype=np.float32)})
    strings = dict(good, **{"head.weight": np.array(["a", "b", "c"])})
    objects = dict(good, **{"head.bias": np.array([1.0, None, 2.0], dtype=object)})
    booleans = dict(good, **{"head.bias": np.ones(3, dtype=bool)})
    complex_ = dict(good, **{"scale": np.array(1 + 2j)})
    float_into_int = dict(good, **{"features.1.count": np.array(1.5)})
    not_array = dict(good, **{"head.bias": [1.0, 2.0, 3.0]})
    return [
        pytest.param(missing, True, ValueError,
                     r'Missing key\(s\) in state_dict: "features.2.weight"', id="missing"),
        pytest.param(unexpected, True, ValueError,
                     r'Unexpected key\(s\) in state_dict: "features.2.bias"', id="unexpected"),
        pytest.param(shape, False, ValueError,
                     r'size mismatch for "head.weight": expected shape \(3,\).*got \(3, 1\)',
                     id="shape"),
        pytest.param(strings, True, TypeError, r'dtype of "head.weight".*got <U1', id="strings"),
        pytest.param(objects, True, TypeError, r'dtype of "head.bias".*got object', id="objects"),
        pytest.param(booleans, True, TypeError, r'dtype of "head.bias".*got bool', id="bool"),
        pytest.param(complex_, True, TypeError, r'dtype of "scale".*got complex128', id="complex"),
        pytest.param(float_into_int, True, TypeError,
                     r'dtype of "features.1.count".*castable to int64, got float64',
                     id="float-to-int"),
        pytest.param(not_array, False, TypeError,
                     r'value of "head.bias": expected a NumPy array or Tensor, got list',
                     id="list"),
    ]


@pytest.mark.parametrize("state, strict, error, message", failing_state_dicts())
def test_failed_load_leaves_the_model_untouched(state, strict, error, message):
    net = Net()
    before = snapshot(net)
    with pytest.raises(error, match=message):
        net.load_state_dict(state, strict=strict)
    assert_unchanged(net, before)


def test_failed_load_lists_every_problem():
    net = Net()
    state = perturbed_state(net)
    del state["scale"]
    state["head.weight"] = np.zeros(4, dtype=np.float32)
    state["head.bias"] = np.array(["x"] * 3)
    state["nonsense"] = np.zeros(1)
    with pytest.raises(ValueError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert message.startswith("Error(s) in loading state_dict for Net:")
    for part in ['"scale"', '"nonsense"', 'size mismatch for "head.weight"',
                 'dtype of "head.bias"']:
        assert part in message


def test_load_state_dict_rejects_a_non_mapping():
    with pytest.raises(TypeError, match="state_dict: expected a mapping.*got list"):
        Net().load_state_dict([("scale", np.zeros(()))])


def test_torch_weights_load_and_round_trip():
    torch, reference = torch_net()
    with torch.no_grad():
        for value in reference.state_dict().values():
            value.copy_(torch.randn(value.shape).to(value.dtype))
    net = Net()
    net.load_state_dict({key: value.numpy() for key, value in reference.state_dict().items()})
    x = np.array([0.5, -1.0, 2.0], dtype=np.float32)
    expected = reference(torch.from_numpy(x)).detach().numpy()
    np.testing.assert_allclose(np.asarray(net(cnn.tensor(x))), expected, rtol=1e-6)
    back = torch_net()[1]
    back.load_state_dict({key: torch.from_numpy(value.copy())
                          for key, value in net.state_dict().items()})
    for key, value in back.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), reference.state_dict()[key].numpy())


# ***** modes, gradients, conversions *****

def test_train_and_eval_recurse_and_return_self():
    net = Net()
    assert net.training and all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    assert net.train() is net and all(m.training for m in net.modules())
    net.train(False)
    assert not net.features[1].training
    with pytest.raises(TypeError, match="mode: expected a bool, got str 'no'"):
        net.train("no")


def test_zero_grad_both_modes():
    net = Net()
    for param in net.parameters():
        param.grad = np.ones_like(param._data)
    kept = net.head.weight.grad._data
    net.zero_grad(set_to_none=False)
    assert net.head.weight.grad._data is kept
    assert all(np.all(p.grad._data == 0) for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_requires_grad_flag():
    net = Net()
    assert net.requires_grad_(False) is net
    assert not any(p.requires_grad for p in net.parameters())
    net.head.requires_grad_()
    assert net.head.weight.requires_grad and not net.scale.requires_grad


@pytest.mark.parametrize("convert, dtype", [
    (lambda m: m.to(np.float64), np.float64),
    (lambda m: m.to("float64"), np.float64),
    (lambda m: m.double(), np.float64),
    (lambda m: m.double().float(), np.float32),
])
def test_to_converts_in_place_keeping_parameter_identity(convert, dtype):
    net = Net()
    params = list(net.parameters())
    for param in params:
        param.grad = np.ones_like(param._data)
    values = {key: value.copy() for key, value in net.state_dict().items()}
    assert convert(net) is net
    assert all(a is b for a, b in zip(net.parameters(), params))
    for param in params:
        assert param._data.dtype == dtype
        assert param.grad is None
    stats = net.features[1]
    assert stats.running_mean.dtype == dtype and stats.scratch.dtype == dtype
    assert stats.count.dtype == np.int64
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, values[key])


def test_to_same_dtype_keeps_arrays_and_grads():
    net = Net()
    net.scale.grad = np.ones((), dtype=np.float32)
    weight = net.head.weight._data
    assert net.to(np.float32) is net and net.to("cpu") is net and net.cpu() is net
    assert net.head.weight._data is weight and net.scale.grad is not None


@pytest.mark.parametrize("dtype", [np.int32, np.float16, "nonsense", bool])
def test_to_rejects_non_float_dtypes(dtype):
    net = Net()
    before = snapshot(net)
    with pytest.raises(TypeError, match="dtype: expected numpy.float32 or numpy.float64"):
        net.to(dtype)
    assert_unchanged(net, before)


def test_to_rejects_other_devices():
    with pytest.raises(ValueError, match="device 'cuda': cnn runs on the CPU only"):
        Net().to(device="cuda")


# ***** containers *****

def test_sequential_indexing_len_iter():
    layers = [Affine(1), Stats(1), Affine(2)]
    model = Sequential(*layers)
    assert len(model) == 3 and list(model) == layers
    assert model[0] is layers[0] and model[-1] is layers[2] and model[-3] is layers[0]
    assert model[np.int64(1)] is layers[1]
    head = model[1:]
    assert isinstance(head, Sequential) and list(head) == layers[1:]
    assert [name for name, _ in head.named_children()] == ["1", "2"]  # names kept, as PyTorch
    assert list(model[::-1]) == layers[::-1]
    with pytest.raises(IndexError, match="index 3 is out of range for Sequential of length 3"):
        model[3]
    with pytest.raises(IndexError, match="index -4"):
        model[-4]
    with pytest.raises(TypeError, match="index: expected an integer or a slice, got str"):
        model["0"]


def test_sequential_append_extend_set_delete():
    model = Sequential(Affine(1))
    assert model.append(Stats(1)) is model
    model.extend([Affine(2), Affine(3)])
    assert [name for name, _ in model.named_children()] == ["0", "1", "2", "3"]
    replacement = Affine(4)
    model[-1] = replacement
    assert model[3] is replacement
    del model[1]
    assert [name for name, _ in model.named_children()] == ["0", "1", "2"]
    assert model[1].n == 2
    del model[:2]
    assert len(model) == 1 and model[0] is replacement
    with pytest.raises(TypeError, match="cannot assign list as child module 'x'"):
        model.add_module("x", [1])


def test_sequential_from_mapping_and_forward():
    model = Sequential(OrderedDict([("scale", Affine(2)), ("stats", Stats(2))]))
    assert list(model.state_dict()) == ["scale.weight", "scale.bias", "stats.running_mean",
                                        "stats.count"]
    assert model.scale is model[0]
    x = np.array([3.0, 4.0], dtype=np.float32)
    np.testing.assert_array_equal(np.asarray(model(cnn.tensor(x))), x * [1, 2])
    assert Sequential()(x) is x
    with pytest.raises(TypeError, match="cannot assign int as child module '1'"):
        Sequential(Affine(1), 2)


def test_sequential_matches_torch():
    torch = pytest.importorskip("torch")
    model = Sequential(Affine(2), Sequential(Stats(2), Affine(1, bias=False)), Affine(3))
    reference = make_classes(torch.nn, lambda a: torch.nn.Parameter(torch.from_numpy(a)),
                             torch.from_numpy)
    TAffine, TStats, _ = reference
    torch_model = torch.nn.Sequential(
        TAffine(2), torch.nn.Sequential(TStats(2), TAffine(1, bias=False)), TAffine(3))
    assert list(model.state_dict()) == list(torch_model.state_dict())
    assert repr(model) == repr(torch_model)
    assert repr(model[1:]) == repr(torch_model[1:])
    assert repr(Sequential()) == repr(torch.nn.Sequential()) == "Sequential()"


def test_module_list():
    blocks = ModuleList([Affine(1), Affine(2)])
    blocks.append(Stats(1))
    blocks += [Affine(3)]
    assert len(blocks) == 4 and blocks[-1].n == 3
    assert [name for name, _ in blocks.named_parameters()] == [
        "0.weight", "0.bias", "1.weight", "1.bias", "3.weight", "3.bias"]
    tail = blocks[2:]
    assert isinstance(tail, ModuleList)
    assert [name for name, _ in tail.named_children()] == ["0", "1"]  # renumbered, as PyTorch
    del blocks[0]
    assert [name for name, _ in blocks.named_children()] == ["0", "1", "2"]

    class Tower(Module):
        def __init__(self):
            super().__init__()
            self.layers = ModuleList(Affine(2) for _ in range(2))

        def forward(self, x):
            for layer in self.layers:
                x = layer(x)
            return x

    assert list(Tower().state_dict()) == ["layers.0.weight", "layers.0.bias", "layers.1.weight",
                                          "layers.1.bias"]
    assert repr(ModuleList()) == "ModuleList()"


def test_nn_sequential_is_pytorchs_and_cnn_sequential_adds_the_original_methods():
    layers = [cnn.nn.Linear(3, 4), cnn.nn.ReLU(), cnn.nn.Linear(4, 2)]
    plain, original = Sequential(*layers), cnn.Sequential(*layers)
    assert str(plain) == repr(plain)  # print(model) as PyTorch prints it
    assert str(original) == repr(original) + "\nNumber of parameters : 26"
    assert repr(original) == repr(plain)
    for name in ("save_model", "load_model", "enable_profiling", "disable_profiling",
                 "forward_time", "backward_time", "print_profile"):
        assert not hasattr(plain, name) and hasattr(original, name), name
    x = cnn.randn(5, 3)
    np.testing.assert_array_equal(plain(x)._data, original(x)._data)
    assert type(original[0:2]) is cnn.Sequential
