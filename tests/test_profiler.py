"""cnn.profiler: per-layer forward/backward seconds, exact results, nothing left behind when off."""
import time

import numpy as np
import pytest

import cnn
from cnn import profiler
from cnn.nn import Conv2d, Flatten, Linear, MaxPool2d, Module, ReLU, Sequential
from cnn.nn import functional as F

LENET_TYPES = ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear",
               "ReLU", "Linear", "ReLU", "Linear"]


def lenet():
    return Sequential(
        Conv2d(1, 6, kernel_size=5, padding=2), ReLU(), MaxPool2d(2, 2),
        Conv2d(6, 16, kernel_size=5), ReLU(), MaxPool2d(2, 2),
        Flatten(), Linear(400, 120), ReLU(), Linear(120, 84), ReLU(), Linear(84, 10))


def batch(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, 1, 28, 28)).astype(np.float32), rng.integers(0, 10, n)


def train_step(model, images, labels):
    model.zero_grad()
    loss = F.cross_entropy(model(images), labels)
    loss.backward()
    return loss


def plain_paths():
    return (Module.__call__, Sequential.forward, cnn.Tensor.backward)


@pytest.fixture(autouse=True)
def nothing_left_behind():
    """Every test must leave the classes exactly as it found them."""
    before = plain_paths()
    yield
    assert plain_paths() == before


def test_one_row_per_layer_with_positive_times():
    cnn.manual_seed(0)
    model = lenet()
    images, labels = batch()
    with profiler.profile(model) as prof:
        for _ in range(2):
            train_step(model, images, labels)
    assert prof.names == [str(i) for i in range(12)]
    assert prof.types == LENET_TYPES
    assert prof.calls == [2] * 12
    assert all(t > 0 for t in prof.forward_time)
    # Including the first layer, whose input needs no gradient (no marker before it).
    assert all(t > 0 for t in prof.backward_time)
    lines = prof.table().splitlines()
    assert len(lines) == 1 + 12 + 1
    assert lines[0].split() == ["layer", "type", "forward", "(s)", "backward", "(s)", "total",
                                "(s)", "share"]
    for line, name, kind, forward, backward in zip(lines[1:], prof.names, LENET_TYPES,
                                                   prof.forward_time, prof.backward_time):
        cells = line.split()
        assert cells[:2] == [name, kind]
        assert float(cells[2]) == pytest.approx(forward, abs=1e-6)
        assert float(cells[3]) == pytest.approx(backward, abs=1e-6)
    assert lines[-1].split()[0] == "total"
    assert float(lines[-1].split()[1]) == pytest.approx(sum(prof.forward_time), abs=1e-5)


def test_backward_times_fit_inside_the_backward_pass():
    model = lenet()
    images, labels = batch(32)
    with profiler.profile(model) as prof:
        loss = F.cross_entropy(model(images), labels)
        start = time.perf_counter()
        loss.backward()
        elapsed = time.perf_counter() - start
    assert 0 < sum(prof.backward_time) <= elapsed


def test_results_are_the_same_with_and_without_profiling():
    cnn.manual_seed(1)
    model = lenet()
    images, labels = batch()
    loss = train_step(model, images, labels)
    grads = [p.grad._data.copy() for p in model.parameters()]
    with profiler.profile(model):
        profiled = train_step(model, images, labels)
    assert profiled.item() == loss.item()
    for grad, param in zip(grads, model.parameters()):
        np.testing.assert_array_equal(param.grad._data, grad)


def hooks_of(module):
    return len(module._forward_pre_hooks) + len(module._forward_hooks)


def test_off_leaves_no_hooks_behind():
    model = lenet()
    class_forward = Sequential.__dict__["forward"]
    prof = profiler.enable(model)
    assert all(hooks_of(layer) == 2 for layer in model)  # a pre-hook and a hook per row
    assert hooks_of(model) == 2
    assert Sequential.__dict__["forward"] is class_forward
    assert all(hooks_of(layer) == 0 for layer in lenet().modules())  # other models: none
    profiler.disable(model)
    assert all(hooks_of(module) == 0 for module in model.modules())
    assert not prof.active
    assert profiler.get_profile(model) is prof  # the times are kept


def test_profiled_layers_run_unfused_and_fuse_again_when_off():
    model = lenet()
    images, _ = batch(4)
    model(images)
    assert len(model._fused) == 2  # both Conv2d -> ReLU -> MaxPool2d chains ran fused
    with profiler.profile(model) as prof:
        model(images)
        assert model._fused == {}  # hooked layers are never fused
    assert prof.calls == [1] * 12
    model(images)
    assert len(model._fused) == 2


def test_a_failing_layer_leaves_the_profile_usable():
    model = Sequential(Linear(3, 3), ReLU(), Linear(4, 2))  # the last layer does not fit
    with profiler.profile(model) as prof:
        with pytest.raises(ValueError):
            model(cnn.randn(2, 3))
        model[2] = Linear(3, 2)  # a child added later runs untimed
        model(cnn.randn(2, 3))
    assert prof.calls == [2, 2, 0]
    assert prof._frames == []


def test_nested_sequentials_are_flattened_into_rows():
    inner = Sequential(Linear(4, 3), ReLU())
    model = Sequential(inner, Sequential(Linear(3, 3), Sequential(ReLU())), Linear(3, 2))
    x = cnn.randn(5, 4)
    with profiler.profile(model) as prof:
        model(x).sum().backward()
    assert prof.names == ["0.0", "0.1", "1.0", "1.1.0", "2"]
    assert prof.types == ["Linear", "ReLU", "Linear", "ReLU", "Linear"]
    assert prof.calls == [1] * 5
    assert all(t > 0 for t in prof.backward_time)
    assert all(hooks_of(module) == 0 for module in model.modules())


def test_a_module_used_twice_gets_a_row_per_position():
    relu = ReLU()
    model = Sequential(Linear(3, 3), relu, Linear(3, 3), relu)
    with profiler.profile(model) as prof:
        model(cnn.randn(2, 3))
    assert prof.names == ["0", "1", "2", "3"]
    assert prof.calls == [1, 1, 1, 1]


def test_seed_style_switch_and_lists(capsys):
    model = cnn.Sequential(*lenet())  # the original library's Sequential has these methods
    assert model.forward_time == model.backward_time == [0.0] * 12
    with pytest.raises(RuntimeError, match="enable_profiling"):
        model.print_profile()
    model.enable_profiling()
    images, labels = batch()
    train_step(model, images, labels)
    model.disable_profiling()
    assert len(model.forward_time) == len(model.backward_time) == 12
    forward = list(model.forward_time)
    train_step(model, images, labels)  # not recorded any more
    assert model.forward_time == forward
    model.print_profile()
    printed = capsys.readouterr().out
    assert printed == profiler.get_profile(model).table() + "\n"
    model.enable_profiling(reset=False)
    train_step(model, images, labels)
    model.disable_profiling()
    assert all(after > before for after, before in zip(model.forward_time, forward))


def test_no_grad_records_forward_only():
    model = lenet()
    images, _ = batch()
    with profiler.profile(model) as prof, cnn.no_grad():
        model(images)
    assert all(t > 0 for t in prof.forward_time)
    assert prof.backward_time == [0.0] * 12


def test_reset_zeroes_in_place():
    model = lenet()
    with profiler.profile(model) as prof:
        train_step(model, *batch())
    forward_time = prof.forward_time
    prof.reset()
    assert forward_time is prof.forward_time and forward_time == [0.0] * 12
    assert prof.calls == [0] * 12


def test_refuses_double_profiling_and_other_modules():
    model = Sequential(Sequential(Linear(2, 2)), ReLU())
    with profiler.profile(model):
        with pytest.raises(RuntimeError, match="already being profiled"):
            profiler.enable(model)
        with pytest.raises(RuntimeError, match="already being profiled"):
            profiler.enable(model[0])
    with pytest.raises(TypeError, match="Sequential"):
        profiler.enable(Linear(2, 2))
    assert profiler.disable(Sequential()) is None


def test_format_table_options():
    table = profiler.format_table(["a", "b"], [0.5, 1.5], [1.0, 1.0], iterations=4)
    lines = table.splitlines()
    assert lines[0].split() == ["layer", "forward", "(ms)", "backward", "(ms)", "total", "(ms)",
                                "share"]
    assert lines[1].split() == ["a", "125.000", "250.000", "375.000", "37.5%"]
    assert lines[3].split() == ["total", "500.000", "500.000", "1000.000", "100.0%"]
    assert lines[4] == "(milliseconds per iteration, mean of 4)"
    assert profiler.format_table(["a"], [0.0], [0.0]).splitlines()[1].split()[-1] == "-"
    with pytest.raises(ValueError, match="equal lengths"):
        profiler.format_table(["a"], [1.0, 2.0], [1.0])
