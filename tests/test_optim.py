"""cnn.optim: PyTorch parity of SGD, Adam and AdamW, state_dict round trips and failed loads, bad input."""
import copy
import itertools

import numpy as np
import pytest

from cnn.nn import Parameter
from cnn.optim import SGD, Adam, AdamW, Optimizer

# Two groups with different learning rates; shapes cover a scalar-free mix of ranks.
SHAPES = [[(3, 4), (5,), (2, 3, 2)], [(4,), (3, 3)]]
LRS = [0.05, 0.01]
STEPS = 20
TOLERANCES = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float64: dict(rtol=1e-10, atol=1e-10)}

SGD_CONFIGS = [
    dict(momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov,
         maximize=maximize)
    for momentum, dampening, weight_decay, nesterov, maximize in itertools.product(
        [0, 0.9], [0, 0.1], [0, 0.01], [False, True], [False, True])
    if not nesterov or (momentum > 0 and dampening == 0)
]
ADAM_CONFIGS = [
    dict(weight_decay=weight_decay, amsgrad=amsgrad, maximize=maximize)
    for weight_decay, amsgrad, maximize in itertools.product([0, 0.1], [False, True], [False, True])
]


def make_params(dtype, seed=0):
    """Parameters for the two groups of SHAPES, with reproducible values."""
    rng = np.random.default_rng(seed)
    return [[Parameter(rng.standard_normal(shape).astype(dtype)) for shape in shapes] for shapes in SHAPES]


def param_groups(params, **options):
    return [{"params": group, "lr": lr, **options} for group, lr in zip(params, LRS)]


def gradient_sequence(dtype, steps=STEPS, seed=1):
    """Per step, a gradient per parameter, or None (about one in five) to test skipping."""
    rng = np.random.default_rng(seed)
    return [[[None if rng.random() < 0.2 else rng.standard_normal(shape).astype(dtype) for shape in shapes]
             for shapes in SHAPES] for _ in range(steps)]


def set_grads(params, grads):
    for group, group_grads in zip(params, grads):
        for p, g in zip(group, group_grads):
            p.grad = None if g is None else g.copy()


def values(params):
    return [p._data.copy() for group in params for p in group]


def run_parity(cnn_class, torch_class, dtype, options):
    """Feed the same parameters and gradients to cnn and torch; compare the parameters after every step."""
    torch = pytest.importorskip("torch")
    params = make_params(dtype)
    torch_params = [[torch.tensor(p._data.copy(), requires_grad=True) for p in group] for group in params]
    optimizer = cnn_class(param_groups(params, **options))
    reference = torch_class(param_groups(torch_params, **options), foreach=False)
    for step, grads in enumerate(gradient_sequence(dtype)):
        set_grads(params, grads)
        set_torch_grads(torch, torch_params, grads)
        optimizer.step()
        reference.step()
        assert_close_to_torch(params, torch_params, dtype, f"step {step}")


def set_torch_grads(torch, torch_params, grads):
    for group, group_grads in zip(torch_params, grads):
        for p, g in zip(group, group_grads):
            p.grad = None if g is None else torch.from_numpy(g.copy())


def assert_close_to_torch(params, torch_params, dtype, message):
    theirs_all = [p.detach().numpy() for group in torch_params for p in group]
    for ours, theirs in zip(values(params), theirs_all):
        assert ours.dtype == dtype
        np.testing.assert_allclose(ours, theirs, **TOLERANCES[dtype], err_msg=message)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", SGD_CONFIGS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
def test_sgd_matches_torch(dtype, options):
    torch = pytest.importorskip("torch")
    run_parity(SGD, torch.optim.SGD, dtype, options)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("options", ADAM_CONFIGS, ids=lambda o: "-".join(f"{k}={v}" for k, v in o.items()))
@pytest.mark.parametrize("name", ["Adam", "AdamW"])
def test_adam_matches_torch(name, dtype, options):
    torch = pytest.importorskip("torch")
    cnn_class = {"Adam": Adam, "AdamW": AdamW}[name]
    run_parity(cnn_class, getattr(torch.optim, name), dtype, options)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("make", [
    lambda params: SGD(params, lr=0.1, momentum=0.9, weight_decay=0.01),
    lambda params: Adam(params, lr=0.01, amsgrad=True),
    lambda params: AdamW(params, lr=0.01),
], ids=["sgd", "adam", "adamw"])
def test_state_keeps_parameter_dtype_and_arrays(make, dtype):
    params = make_params(dtype)
    data = [p._data for group in params for p in group]
    optimizer = make([p for group in params for p in group])
    for grads in gradient_sequence(dtype, steps=3):
        set_grads(params, grads)
        optimizer.step()
    # Updates are in place: modules and checkpoints hold these very arrays.
    assert all(p._data is d for p, d in zip((p for group in params for p in group), data))
    for entry in optimizer.state.values():
        for name, value in entry.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == dtype, name


def test_parameters_without_grad_are_skipped():
    a, b = Parameter(np.ones(3, dtype=np.float32)), Parameter(np.ones(2, dtype=np.float32))
    optimizer = Adam([a, b], lr=0.1)
    a.grad = np.ones(3, dtype=np.float32)
    optimizer.step()
    assert b not in optimizer.state and optimizer.state[a]["step"] == 1
    np.testing.assert_array_equal(b._data, np.ones(2, dtype=np.float32))
    assert not np.array_equal(a._data, np.ones(3, dtype=np.float32))


def test_step_returns_closure_loss():
    p = Parameter(np.array([1.0, -2.0]))
    optimizer = SGD([p], lr=0.5)
    calls = []

    def closure():
        calls.append(1)
        p.grad = 2 * p._data
        return float(np.sum(p._data**2))

    assert optimizer.step(closure) == 5.0
    assert calls == [1]
    np.testing.assert_array_equal(p._data, [0.0, 0.0])
    assert optimizer.step() is None


def test_zero_grad_set_to_none_and_in_place():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    optimizer = SGD([a, b], lr=0.1)
    a.grad = np.full(3, 2.0)
    optimizer.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(a.grad._data, np.zeros(3))
    assert b.grad is None
    optimizer.zero_grad()
    assert a.grad is None and b.grad is None


def test_zero_grad_in_place_keeps_the_gradient_array():
    p = Parameter(np.ones(3, dtype=np.float32))
    grad = np.full(3, 2.0, dtype=np.float32)
    p.grad = grad
    SGD([p], lr=0.1).zero_grad(set_to_none=False)
    np.testing.assert_array_equal(grad, np.zeros(3, dtype=np.float32))


def test_param_groups_take_defaults_and_own_options():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    optimizer = SGD([{"params": [a]}, {"params": b, "lr": 0.5, "momentum": 0.9}], lr=0.1)
    assert [g["lr"] for g in optimizer.param_groups] == [0.1, 0.5]
    assert [g["momentum"] for g in optimizer.param_groups] == [0, 0.9]
    assert optimizer.param_groups[1]["params"][0] is b
    assert set(optimizer.param_groups[0]) == {"params", "lr", "momentum", "dampening", "weight_decay",
                                              "nesterov", "maximize"}
    assert optimizer.defaults["lr"] == 0.1 and optimizer.state == {}


def test_accepts_an_object_with_parameters():
    class Model:
        def __init__(self):
            self.weight = Parameter(np.ones((2, 2), dtype=np.float32))

        def parameters(self):
            yield self.weight

    model = Model()
    optimizer = SGD(model, lr=0.1)
    model.weight.grad = np.ones((2, 2), dtype=np.float32)
    optimizer.step()
    np.testing.assert_allclose(model.weight._data, np.full((2, 2), 0.9, dtype=np.float32))


def test_add_param_group():
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    optimizer = Adam([a], lr=0.1)
    optimizer.add_param_group({"params": [b], "betas": (0.5, 0.6)})
    assert optimizer.param_groups[1]["betas"] == (0.5, 0.6) and optimizer.param_groups[1]["lr"] == 0.1
    with pytest.raises(ValueError, match="more than one parameter group"):
        optimizer.add_param_group({"params": [a]})
    with pytest.raises(ValueError, match="learning rate"):
        optimizer.add_param_group({"params": [Parameter(np.ones(2))], "lr": -1.0})
    assert len(optimizer.param_groups) == 2


@pytest.mark.parametrize("params, error, match", [
    ([], ValueError, "optimizer got an empty parameter list"),
    (Parameter(np.ones(2)), TypeError, "iterable of Tensors"),
    ([np.ones(2)], TypeError, "can only optimize Tensors"),
    ({Parameter(np.ones(2))}, TypeError, "ordered collections"),
], ids=["empty", "tensor", "array", "set"])
def test_bad_params(params, error, match):
    with pytest.raises(error, match=match):
        SGD(params if not isinstance(params, set) else [{"params": params}], lr=0.1)


def test_same_parameter_twice():
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="same parameter twice"):
        SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="more than one parameter group"):
        SGD([{"params": [p]}, {"params": [p]}], lr=0.1)


def test_integer_parameter_refused():
    with pytest.raises(TypeError, match="float32 or float64"):
        SGD([Parameter(np.ones(2, dtype=np.float32)), Parameter(np.ones(2, dtype=np.float16))], lr=0.1)


@pytest.mark.parametrize("make, match", [
    (lambda p: SGD(p, lr=-1.0), r"Invalid learning rate: -1.0 \(lr must be >= 0\)"),
    (lambda p: SGD(p, lr=0.1, momentum=-0.5), r"Invalid momentum value: -0.5 \(momentum"),
    (lambda p: SGD(p, lr=0.1, weight_decay=-1e-4), r"Invalid weight_decay value: -0.0001 \(weight_decay"),
    (lambda p: SGD(p, lr=0.1, nesterov=True), "Nesterov momentum requires a momentum and zero dampening"),
    (lambda p: SGD(p, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True), "Nesterov"),
    (lambda p: SGD(p, lr=float("nan")), "Invalid learning rate: nan"),
    (lambda p: Adam(p, lr=-1e-3), r"Invalid learning rate: -0.001 \(lr"),
    (lambda p: Adam(p, eps=-1e-8), r"Invalid epsilon value: -1e-08 \(eps must be >= 0\)"),
    (lambda p: Adam(p, betas=(1.0, 0.999)),
     r"Invalid beta parameter at index 0: 1.0 \(betas\[0\] must be in \[0, 1\)\)"),
    (lambda p: Adam(p, betas=(0.9, -0.1)), r"Invalid beta parameter at index 1: -0.1"),
    (lambda p: Adam(p, betas=(0.9,)), "betas must be a pair"),
    (lambda p: Adam(p, weight_decay=-1.0), r"Invalid weight_decay value: -1.0"),
    (lambda p: AdamW(p, lr=-1.0), "Invalid learning rate"),
], ids=lambda x: x if isinstance(x, str) else "")
def test_invalid_hyperparameters(make, match):
    with pytest.raises(ValueError, match=match):
        make([Parameter(np.ones(2))])


def test_non_numeric_hyperparameter():
    with pytest.raises(TypeError, match="lr must be a real number"):
        SGD([Parameter(np.ones(2))], lr="0.1")


def test_repr_lists_groups():
    text = repr(SGD([Parameter(np.ones(2))], lr=0.1, momentum=0.9))
    assert text.startswith("SGD (\nParameter Group 0\n") and "    momentum: 0.9" in text


# ----- state_dict -----------------------------------------------------------------------------

OPTIMIZERS = {
    "sgd": lambda groups: SGD(groups, momentum=0.9, dampening=0.1, weight_decay=0.01),
    "sgd-nesterov": lambda groups: SGD(groups, momentum=0.9, nesterov=True),
    "adam": lambda groups: Adam(groups, weight_decay=0.01),
    "adam-amsgrad": lambda groups: Adam(groups, amsgrad=True, maximize=True),
    "adamw": lambda groups: AdamW(groups, amsgrad=True),
}


def copy_params(params):
    return [[Parameter(p._data.copy()) for p in group] for group in params]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", OPTIMIZERS)
def test_state_dict_round_trip(name, dtype):
    params = make_params(dtype)
    optimizer = OPTIMIZERS[name](param_groups(params))
    grads = gradient_sequence(dtype, steps=10)
    for step_grads in grads[:5]:
        set_grads(params, step_grads)
        optimizer.step()
    saved = optimizer.state_dict()
    assert sorted(saved) == ["param_groups", "state"]
    assert [g["params"] for g in saved["param_groups"]] == [[0, 1, 2], [3, 4]]
    assert set(saved["state"]) <= set(range(5))

    copies = copy_params(params)
    resumed = OPTIMIZERS[name](param_groups(copies))
    resumed.load_state_dict(saved)
    # The loaded arrays are copies: neither the saved dict nor later steps share memory with them.
    for entry in saved["state"].values():
        for value in entry.values():
            if isinstance(value, np.ndarray):
                value += 1000.0
    for step_grads in grads[5:]:
        set_grads(params, step_grads)
        optimizer.step()
        set_grads(copies, step_grads)
        resumed.step()
        for ours, theirs in zip(values(params), values(copies)):
            np.testing.assert_array_equal(ours, theirs)


@pytest.mark.parametrize("name, options", [("SGD", dict(momentum=0.9, nesterov=True)),
                                           ("Adam", dict(amsgrad=True)), ("AdamW", dict(weight_decay=0.1))])
def test_loads_a_torch_state_dict(name, options):
    torch = pytest.importorskip("torch")
    dtype = np.float64
    torch_params = [[torch.tensor(p._data, requires_grad=True) for p in group] for group in make_params(dtype)]
    reference = getattr(torch.optim, name)(param_groups(torch_params, **options), foreach=False)
    grads = gradient_sequence(dtype, steps=10)
    for step_grads in grads[:5]:
        set_torch_grads(torch, torch_params, step_grads)
        reference.step()

    def to_numpy(value):
        if isinstance(value, torch.Tensor):
            return value.numpy().copy()
        if isinstance(value, dict):
            return {k: to_numpy(v) for k, v in value.items()}
        return [to_numpy(v) for v in value] if isinstance(value, list) else value

    params = [[Parameter(p.detach().numpy().copy()) for p in group] for group in torch_params]
    optimizer = {"SGD": SGD, "Adam": Adam, "AdamW": AdamW}[name](param_groups(params, **options))
    optimizer.load_state_dict(to_numpy(reference.state_dict()))
    for step, step_grads in enumerate(grads[5:]):
        set_grads(params, step_grads)
        set_torch_grads(torch, torch_params, step_grads)
        optimizer.step()
        reference.step()
        assert_close_to_torch(params, torch_params, dtype, f"step {step + 5}")


def test_state_dict_is_a_snapshot():
    p = Parameter(np.ones(3))
    optimizer = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(3)
    optimizer.step()
    saved = optimizer.state_dict()
    buffer = saved["state"][0]["momentum_buffer"].copy()
    optimizer.step()
    np.testing.assert_array_equal(saved["state"][0]["momentum_buffer"], buffer)
    assert saved["param_groups"] == [dict(lr=0.1, momentum=0.9, dampening=0, weight_decay=0, nesterov=False,
                                          maximize=False, params=[0])]


def test_load_state_dict_replaces_options_and_accepts_file_round_trip_types():
    a = Parameter(np.ones((2, 2), dtype=np.float32))
    source = Adam([a], lr=0.01)
    a.grad = np.ones((2, 2), dtype=np.float32)
    source.step()
    saved = source.state_dict()
    # What a trip through an .npz file may give back: string indices, 0-d arrays, lists, float64 state.
    saved = {
        "state": {"0": {"step": np.array(1.0), "exp_avg": saved["state"][0]["exp_avg"].astype(np.float64),
                        "exp_avg_sq": saved["state"][0]["exp_avg_sq"]}},
        "param_groups": [dict(saved["param_groups"][0], lr=np.float64(0.5), betas=[0.8, 0.99],
                              params=np.array([0]))],
    }
    b = Parameter(np.ones((2, 2), dtype=np.float32))
    target = Adam([b], lr=0.1)
    target.load_state_dict(saved)
    group = target.param_groups[0]
    assert group["lr"] == 0.5 and type(group["lr"]) is float and group["betas"] == (0.8, 0.99)
    assert group["params"][0] is b
    assert target.state[b]["step"] == 1.0
    assert target.state[b]["exp_avg"].dtype == np.float32


def test_adamw_stays_decoupled_after_loading_adam_state():
    p = Parameter(np.ones(2))
    saved = Adam([Parameter(np.ones(2))], weight_decay=0.1).state_dict()
    optimizer = AdamW([p])
    optimizer.load_state_dict(saved)
    assert optimizer.param_groups[0]["decoupled_weight_decay"] is True


def snapshot(optimizer):
    """A deep copy of the optimizer's groups and state, with parameters replaced by their ids."""
    groups = [{k: (list(map(id, v)) if k == "params" else copy.deepcopy(v)) for k, v in g.items()}
              for g in optimizer.param_groups]
    state = {id(p): copy.deepcopy(entry) for p, entry in optimizer.state.items()}
    return groups, state


def assert_same_snapshot(before, after):
    (groups_before, state_before), (groups_after, state_after) = before, after
    assert groups_before == groups_after
    assert state_before.keys() == state_after.keys()
    for key, entry in state_before.items():
        assert entry.keys() == state_after[key].keys()
        for name, value in entry.items():
            np.testing.assert_array_equal(value, state_after[key][name])


def corrupt(change):
    """A state_dict transformation for the failed-load tests."""
    def apply(saved):
        saved = copy.deepcopy(saved)
        change(saved)
        return saved
    return apply


def _set_state(saved, index, name, value):
    saved["state"][index][name] = value


BAD_STATE_DICTS = {
    "wrong shape": (corrupt(lambda s: _set_state(s, 0, "exp_avg", np.zeros((4, 3)))), "shape"),
    "integer array": (corrupt(lambda s: _set_state(s, 0, "exp_avg", np.zeros((3, 4), np.int64))), "dtype"),
    "number for array": (corrupt(lambda s: _set_state(s, 0, "exp_avg", 0.0)), "expected an array"),
    "negative step": (corrupt(lambda s: _set_state(s, 1, "step", -1.0)), "step"),
    "unknown state name": (corrupt(lambda s: _set_state(s, 1, "momentum_buffer", np.zeros(5))), "unknown"),
    "missing state name": (corrupt(lambda s: s["state"][1].pop("exp_avg_sq")), "lacks"),
    "missing amsgrad state": (corrupt(lambda s: s["param_groups"][0].update(amsgrad=True)), "max_exp_avg_sq"),
    "unknown index": (corrupt(lambda s: s["state"].update({7: s["state"][0]})), "index 7"),
    "missing index": (corrupt(lambda s: s["param_groups"][1]["params"].pop()), "has 1 parameters"),
    "repeated index": (corrupt(lambda s: s["param_groups"][1].update(params=[3, 3])), "repeats"),
    "bad index": (corrupt(lambda s: s["param_groups"][1].update(params=[3, -4])), "not a parameter index"),
    "wrong group count": (corrupt(lambda s: s["param_groups"].pop()), "1 parameter groups, the optimizer has"),
    "missing option": (corrupt(lambda s: s["param_groups"][0].pop("eps")), r"lacks the options \['eps'\]"),
    "invalid option": (corrupt(lambda s: s["param_groups"][1].update(lr=-0.1)), "Invalid learning rate"),
    "no state entry": (corrupt(lambda s: s.pop("state")), "'state'"),
    "group not a dict": (corrupt(lambda s: s["param_groups"].__setitem__(0, [1])), "not a dict"),
}


@pytest.mark.parametrize("case", BAD_STATE_DICTS)
def test_failed_load_changes_nothing(case):
    make_bad, match = BAD_STATE_DICTS[case]
    params = make_params(np.float32)
    source = Adam(param_groups(params))
    for grads in gradient_sequence(np.float32, steps=3):
        set_grads(params, grads)
        source.step()
    saved = source.state_dict()
    assert 0 in saved["state"] and 1 in saved["state"]

    target_params = copy_params(params)
    target = Adam(param_groups(target_params), weight_decay=0.5)
    set_grads(target_params, gradient_sequence(np.float32, steps=1, seed=7)[0])
    target.step()
    before = snapshot(target)
    groups_list = target.param_groups
    with pytest.raises(ValueError, match=match):
        target.load_state_dict(make_bad(saved))
    assert_same_snapshot(before, snapshot(target))
    assert target.param_groups is groups_list


def test_load_sgd_state_into_adam_fails():
    p = Parameter(np.ones(2))
    sgd = SGD([p], lr=0.1, momentum=0.9)
    p.grad = np.ones(2)
    sgd.step()
    adam = Adam([Parameter(np.ones(2))])
    with pytest.raises(ValueError, match="lacks the options"):
        adam.load_state_dict(sgd.state_dict())


def test_base_class_step_is_abstract():
    with pytest.raises(NotImplementedError):
        Optimizer([Parameter(np.ones(2))], {}).step()


def test_gradient_not_matching_its_parameter_is_refused():
    p = Parameter(np.ones(3, dtype=np.float32))
    p.grad = np.ones(3, dtype=np.float32)
    p._data = np.ones(4, dtype=np.float32)  # rebinding data behind the gradient's back
    with pytest.raises(ValueError, match=r"gradient of shape \(3,\)"):
        SGD([p], lr=0.1).step()


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, lr=0.1, momentum=0.9),
                                  lambda ps: Adam(ps, lr=0.1)])
def test_an_update_that_fails_leaves_the_state_as_it_was(make):
    p = Parameter(np.ones(3))
    p._data.flags.writeable = False
    p.grad = np.ones(3)
    optimizer = make([p])
    with pytest.raises(ValueError, match="read-only"):
        optimizer.step()
    state = optimizer.state.get(p, {})
    assert "momentum_buffer" not in state and state.get("step", 0) == 0
