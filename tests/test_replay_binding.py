"""cnn.compile's bound programs (cnn.replay._BoundSteps): a frozen batch-1 forward whose every
step has a bound form (Function.frozen_takes's bind) runs its kernels on arrays of its own, with
no Python between them, with eager's bits; the bound forms of the convolution, the linear layer
and the global average pool check what they are bound to once."""
import threading

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cnn
import cnn.nn as nn
from cnn import _ext, replay
from cnn._ext import pooling
from cnn._ext._replay import BoundStep, BoundSteps, copy_into
from cnn._ext.geometry import pool_geometry

from test_replay import lenet, resnet
from test_replay_freezing import FROZEN_CALLS, assert_replays_eager_bits, frozen_twins, wide_net


def kept_bindings(compiled):
    """What a compiled model's programs keep per (thread ident, team size): _BoundSteps, or
    None where the program has no bound form."""
    return {key: bound for program in compiled._programs.values()
            if program.prepared is not None for key, bound in program.prepared[2].items()}


def image(rng, shape=(1, 3, 16, 16), dtype=np.float32):
    return cnn.tensor(rng.standard_normal(shape).astype(dtype))


@pytest.mark.parametrize("build, kinds", [
    (wide_net, {"BoundForward", "BoundAffine"}),
    (resnet, {"BoundForward", "BoundGlobalAvgPool", "BoundAffine"}),
    (lenet, {"BoundForward", "BoundAffine"})])
@pytest.mark.parametrize("count", [1, 2])
def test_a_batch_1_frozen_replay_runs_bound_with_eager_bits(build, kinds, count, threads,
                                                           small_layers_shared, rng):
    cnn.set_num_threads(count)
    eager, compiled = frozen_twins(build)
    x = image(rng, (1, 1, 28, 28) if build is lenet else (1, 3, 16, 16))
    assert_replays_eager_bits(eager, compiled, x)
    (key, bound), = kept_bindings(compiled).items()
    assert key == (threading.get_ident(), count)
    assert {type(step).__name__ for step in bound.steps} == kinds
    # Every step is shared by the whole team, however small (each has two units of work or
    # more: planes, groups of output features).
    assert [step.team for step in bound.steps] == [count] * len(bound.steps)
    bound.run_steps(1)  # the steps' shares on fewer threads: the same bits
    with cnn.no_grad():
        assert bound.result.tobytes() == eager(x).numpy().tobytes()


def test_bound_steps_take_the_kernel_modules_bound_forms():
    with pytest.raises(TypeError, match="a kernel module's subclass defines the shares"):
        BoundStep()
    with pytest.raises(TypeError, match="BoundStep"):
        BoundSteps([lambda threads: None])
    BoundSteps([])(2)  # no steps: nothing to run


def test_a_bound_program_reads_each_call_s_input(rng):
    eager, compiled = frozen_twins(resnet)
    inputs = [image(rng) for _ in range(3)]
    with cnn.no_grad():
        expected = [eager(x).numpy().tobytes() for x in inputs]
        for _ in range(2):
            for x, result in zip(inputs, expected):
                assert compiled(x).numpy().tobytes() == result
    assert isinstance(next(iter(kept_bindings(compiled).values())), replay._BoundSteps)


def test_a_bound_program_copies_its_input_and_its_result(rng):
    eager, compiled = frozen_twins(wide_net)
    x = rng.standard_normal((1, 3, 16, 32)).astype(np.float32)
    strided = x[..., ::2]  # not contiguous: NumPy copies it in
    with cnn.no_grad():
        expected = eager(cnn.tensor(strided)).numpy()
        first = compiled(cnn.from_numpy(strided)).numpy()
        second = compiled(cnn.from_numpy(np.ascontiguousarray(strided))).numpy()
        assert first.tobytes() == second.tobytes() == expected.tobytes()
        assert not np.shares_memory(first, second)
        first[...] = 0  # the caller's array, not the program's
        assert compiled(cnn.tensor(strided)).numpy().tobytes() == expected.tobytes()
    assert isinstance(next(iter(kept_bindings(compiled).values())), replay._BoundSteps)


def test_each_thread_runs_bound_steps_of_its_own(rng):
    eager, compiled = frozen_twins(resnet)
    inputs = [image(rng) for _ in range(8)]
    with cnn.no_grad():
        expected = [eager(x).numpy().tobytes() for x in inputs]
        compiled(inputs[0])
    wrong = []
    together = threading.Barrier(4)

    def work(i):
        together.wait()  # the four threads' calls overlap
        with cnn.no_grad():
            for j in range(40):
                k = (i + j) % len(inputs)  # each thread's input changes at every call
                if compiled(inputs[k]).numpy().tobytes() != expected[k]:
                    wrong.append(k)
    workers = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert wrong == []
    kept = kept_bindings(compiled)
    assert len({ident for ident, _ in kept}) >= 2
    assert all(isinstance(bound, replay._BoundSteps) for bound in kept.values())


def test_bound_steps_are_kept_for_a_few_threads_at_most(monkeypatch, threads, rng):
    # The (thread, team size) pairs after the first BOUND_COPIES run the prepared steps.
    monkeypatch.setattr(replay, "BOUND_COPIES", 1)
    eager, compiled = frozen_twins(resnet)
    x = image(rng)
    with cnn.no_grad():
        expected = eager(x).numpy().tobytes()
        compiled(x)  # the capture, run eagerly
        for count in (1, 2, 1, 2, 2):
            cnn.set_num_threads(count)
            assert compiled(x).numpy().tobytes() == expected
            assert list(kept_bindings(compiled)) == [(threading.get_ident(), 1)]


def test_a_parameter_of_another_shape_is_not_bound(rng):
    # The captured shapes no longer hold: the prepared steps run, with eager's result.
    eager, compiled = frozen_twins(resnet)
    x = image(rng)
    with cnn.no_grad():
        compiled(x)
        for model in (eager, compiled._orig_mod):
            model[-1].weight.data = cnn.tensor(model[-1].weight.numpy()[:5].copy())
            model[-1].bias.data = cnn.tensor(model[-1].bias.numpy()[:5].copy())
        expected = eager(x).numpy()
        assert expected.shape == (1, 5)
        for _ in range(2):
            assert compiled(x).numpy().tobytes() == expected.tobytes()
    assert list(kept_bindings(compiled).values()) == [None]


def test_a_program_without_a_bound_form_runs_its_prepared_steps(monkeypatch, rng):
    # float64 convolutions have no bound form; nor has a program whose arrays would take
    # more than BOUND_BYTES: both keep the prepared steps and eager's bits.
    eager, compiled = frozen_twins(wide_net)
    eager.double()
    compiled._orig_mod.double()
    assert_replays_eager_bits(eager, compiled, image(rng, dtype=np.float64))
    assert list(kept_bindings(compiled).values()) == [None]
    monkeypatch.setattr(replay, "BOUND_BYTES", 4096)
    eager, compiled = frozen_twins(resnet)
    assert_replays_eager_bits(eager, compiled, image(rng))
    assert list(kept_bindings(compiled).values()) == [None]


def test_a_bound_program_sees_new_parameter_arrays(rng):
    model = resnet().eval()
    compiled = cnn.compile(model, options={"freezing": True})
    x = image(rng)
    with cnn.no_grad():
        before = compiled(x).numpy()
        model[-1].weight.data = cnn.tensor(model[-1].weight.numpy() * 2)  # prepared and bound
        after = compiled(x).numpy()                                     # again
        assert after.tobytes() == model(x).numpy().tobytes() != before.tobytes()


@pytest.mark.parametrize("call", FROZEN_CALLS)
def test_a_bound_forward_gives_the_bits_of_the_frozen_call(call, small_layers_shared, rng):
    input_shape, weight_shape, stride, padding, batch, pool = call
    plan = _ext.conv_plan(input_shape, weight_shape, stride, padding, 1, 1)
    f = weight_shape[0]
    x = rng.standard_normal((batch,) + input_shape).astype(np.float32)
    w = rng.standard_normal(weight_shape).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    norm = (rng.standard_normal(f).astype(np.float32), rng.random(f).astype(np.float32) + 0.5,
            rng.standard_normal(f).astype(np.float32), rng.standard_normal(f).astype(np.float32),
            1e-5)
    residual = rng.standard_normal((batch,) + plan.output_shape).astype(np.float32)
    if pool:
        forms = [(plan.frozen_forward(batch, w, b, pool=True), (x,))]
    else:
        forms = [(plan.frozen_forward(batch, w, b, True, norm), (x,)),
                 (plan.frozen_forward(batch, w, b, True, norm, True), (x, residual))]
    for frozen, arrays in forms:
        out = np.full(frozen(1, *arrays).shape, np.nan, np.float32)
        bound = frozen.bind(2, out, *arrays)
        if bound is None:  # only the row kernels with a residual have no bound form
            assert len(arrays) == 2 and plan.frozen_forward(batch, w).bind(
                1, np.empty(out.shape, np.float32), x) is not None
            continue
        for count in (1, 2, 3):  # a larger team than the binding's gets the binding's
            bound(count)
            assert out.tobytes() == frozen(min(count, 2), *arrays).tobytes()
        x[...] = rng.standard_normal(x.shape)  # the arrays' values at each call
        bound(2)
        assert out.tobytes() == frozen(2, *arrays).tobytes()


@st.composite
def bound_calls(draw):
    """A convolution's frozen call, its arrays and a fresh result array: any shape, or (one
    time in two) a 3 x 3 layer of 16 channels or more, the shapes Winograd takes."""
    if draw(st.booleans()):
        c, f = draw(st.integers(1, 4) | st.integers(16, 20)), draw(st.integers(1, 40))
        k, stride = draw(st.sampled_from([1, 3, 5])), draw(st.integers(1, 2))
        padding = draw(st.integers(0, k // 2))
        h, w = draw(st.integers(1, 14)), draw(st.integers(1, 14))
        assume(k <= min(h, w) + 2 * padding)
    else:
        c, f = draw(st.integers(16, 40)), draw(st.integers(8, 72))
        k, stride, padding = 3, 1, 1
        h = w = draw(st.integers(4, 20))
    batch = draw(st.integers(1, 5))
    pool, norm = draw(st.booleans()), draw(st.booleans())
    residual = not pool and draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    plan = _ext.conv_plan((c, h, w), (f, c, k, k), stride, padding)
    x = rng.standard_normal((batch, c, h, w)).astype(np.float32)
    weight = rng.standard_normal((f, c, k, k)).astype(np.float32)
    bias = rng.standard_normal(f).astype(np.float32)
    statistics = (rng.standard_normal(f).astype(np.float32),
                  rng.random(f).astype(np.float32) + 0.5, rng.standard_normal(f).astype(np.float32),
                  rng.standard_normal(f).astype(np.float32), 1e-5)
    oh, ow = plan.output_shape[1:]
    assume(not pool or (oh >= 2 and ow >= 2))
    if pool:
        frozen = plan.frozen_forward(batch, weight, bias, pool=True)
    else:
        frozen = plan.frozen_forward(batch, weight, bias, draw(st.booleans()),
                                     statistics if norm else None, residual)
    assume(frozen is not None)  # a layer the kernels run through BLAS has no frozen form
    arrays = (x,)
    if residual:
        arrays += (rng.standard_normal((batch,) + plan.output_shape).astype(np.float32),)
    return frozen, arrays


@given(bound_calls())
def test_a_bound_forward_shares_any_convolution_as_the_frozen_call_does(small_layers_shared,
                                                                        call):
    frozen, arrays = call
    expected = {count: frozen(count, *arrays).tobytes() for count in (1, 2)}
    out = np.full(frozen(1, *arrays).shape, np.nan, np.float32)
    bound = frozen.bind(2, out, *arrays)
    assume(bound is not None)  # the row kernels with a residual keep the frozen call
    assert 1 <= bound.team <= 2 or (bound.team == 0 and out.size == 0)
    for count in (1, 2, 3):  # at most the binding's team: the shares on fewer threads
        out[...] = np.nan
        bound(count)
        assert out.tobytes() == expected[min(count, 2)] == expected[1]


def test_a_frozen_forward_checks_what_it_is_bound_to(rng):
    plan = _ext.conv_plan((16, 8, 8), (16, 16, 3, 3), 1, 1, 1)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    frozen = plan.frozen_forward(1, w)
    x, out = np.zeros((1, 16, 8, 8), np.float32), np.zeros((1, 16, 8, 8), np.float32)
    with pytest.raises(ValueError, match=r"input: expected a C-contiguous float32 array of "
                                         r"shape \(1, 16, 8, 8\), got float32 array of shape "
                                         r"\(2, 16, 8, 8\)"):
        frozen.bind(1, out, np.zeros((2, 16, 8, 8), np.float32))
    with pytest.raises(ValueError, match=r"input: .* got float32 array of shape \(1, 16, 8, 8\) "
                                         r"\(not C-contiguous\)"):
        frozen.bind(1, out, np.zeros((1, 16, 8, 16), np.float32)[..., ::2])
    with pytest.raises(ValueError, match="out: .* got float64 array"):
        frozen.bind(1, out.astype(np.float64), x)
    with pytest.raises(ValueError, match="out: .* got list"):
        frozen.bind(1, out.tolist(), x)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: expected a writable array"):
        frozen.bind(1, out, x)
    out = np.zeros_like(x)
    with pytest.raises(ValueError, match="residual: expected one exactly when"):
        frozen.bind(1, out, x, x)
    with pytest.raises(ValueError, match="residual: expected one exactly when"):
        plan.frozen_forward(1, w, residual=True).bind(1, out, x)
    with pytest.raises(ValueError, match="num_threads"):
        frozen.bind(0, out, x)
    with pytest.raises(ValueError, match="out: expected an array that shares no memory "
                                         "with input"):
        frozen.bind(1, x, x)
    residual_frozen = plan.frozen_forward(1, w, residual=True)
    with pytest.raises(ValueError, match="shares no memory with residual"):
        residual_frozen.bind(1, out, x, out)
    bound_forward = _ext.backend.conv.BoundForward
    with pytest.raises(TypeError):
        bound_forward.__new__(bound_forward)  # made by bind, with its checks
    with pytest.raises(ValueError, match="input: expected a C-contiguous"):
        bound_forward(frozen, 1, out, np.zeros((1, 1, 1, 1), np.float32))
    double = _ext.conv_plan((16, 8, 8), (16, 16, 3, 3), 1, 1, 1, 1, np.float64)
    assert double.frozen_forward(1, w.astype(np.float64)).bind(
        1, out.astype(np.float64), x.astype(np.float64)) is None


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("features, team", [(1000, 2), (10, 2), (1, 1)])
def test_a_bound_affine_gives_the_bits_of_the_frozen_call(dtype, with_bias, features, team,
                                                          rng):
    # Groups of output features are shared by the team, however few (one feature: one group).
    kernels = _ext.backend.linear
    x = rng.standard_normal((1, 300)).astype(dtype)
    w = rng.standard_normal((features, 300)).astype(dtype)
    frozen = kernels.FrozenAffine(w, rng.standard_normal(features).astype(dtype) if with_bias
                                  else None, True)
    out = np.full((1, features), np.nan, dtype)
    bound = frozen.bind(2, out, x)
    assert bound.team == team
    for count in (1, 2):
        bound(count)
        assert out.tobytes() == frozen(count, x).tobytes()
    x[...] = rng.standard_normal(x.shape)
    bound(2)
    assert out.tobytes() == frozen(2, x).tobytes()


def test_a_frozen_affine_checks_what_it_is_bound_to():
    kernels = _ext.backend.linear
    frozen = kernels.FrozenAffine(np.ones((4, 3), np.float32), None, False)
    x, out = np.ones((1, 3), np.float32), np.ones((1, 4), np.float32)
    with pytest.raises(ValueError, match="x: expected at most 1 rows"):
        frozen.bind(1, np.ones((kernels.MAX_ROWS + 1, 4), np.float32),
                    np.ones((kernels.MAX_ROWS + 1, 3), np.float32))
    with pytest.raises(ValueError, match="weight: expected 2 columns"):
        frozen.bind(1, out, np.ones((1, 2), np.float32))
    with pytest.raises(ValueError, match="out: expected 4 columns"):
        frozen.bind(1, np.ones((1, 5), np.float32), x)
    with pytest.raises(TypeError, match="out: expected float32"):
        frozen.bind(1, out.astype(np.float64), x)
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        frozen.bind(1, out, np.ones((1, 6), np.float32)[:, ::2])
    square = kernels.FrozenAffine(np.ones((3, 3), np.float32), None, False)
    with pytest.raises(ValueError, match="out: expected an array that shares no memory with x"):
        square.bind(1, x, x)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out: expected a C-contiguous writable"):
        frozen.bind(1, out, x)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_bound_global_pool_gives_the_bits_of_avg_pool(dtype, rng):
    x = rng.standard_normal((2, 5, 3, 4)).astype(dtype)
    geometry = pool_geometry(x.shape, (3, 4))
    frozen = pooling.frozen_avg_pool(x.shape, geometry)
    expected = pooling.avg_pool(x, geometry, True, 1)
    assert frozen(2, x).tobytes() == expected.tobytes()
    assert frozen(1, np.repeat(x, 2, axis=3)[..., ::2]).tobytes() == expected.tobytes()
    out = np.full((2, 5, 1, 1), np.nan, dtype)
    bound = frozen.bind(2, out, x)
    assert bound.team == 2  # ten planes, shared however small
    for count in (1, 2):
        bound(count)
        assert out.tobytes() == expected.tobytes()
    one = np.full((1, 1, 1, 1), np.nan, dtype)
    bound_one = pooling.frozen_avg_pool((1, 1, 3, 4), geometry).bind(2, one, x[:1, :1].copy())
    assert bound_one.team == 1  # a single plane
    bound_one(2)
    assert one.tobytes() == expected[:1, :1].tobytes()
    x += 1
    bound(2)
    assert out.tobytes() == pooling.avg_pool(x, geometry, True, 1).tobytes()
    with pytest.raises(ValueError, match=r"x: expected shape \(2, 5, 3, 4\)"):
        frozen(1, x[:1])
    with pytest.raises(ValueError, match=r"x: expected shape \(2, 5, 3, 4\)"):
        frozen.bind(1, out[:, :2], np.ascontiguousarray(x[:, :2]))
    assert pooling.frozen_avg_pool(x.shape, pool_geometry(x.shape, 2)) is None  # not global
    assert pooling.frozen_avg_pool(x.shape, pool_geometry(x.shape, (3, 4), 1, 1)) is None


def test_a_bound_global_pool_checks_its_arrays():
    pool = _ext.backend.pool
    x = np.ones((2, 5, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"out: expected shape \(2, 5, 1, 1\)"):
        pool.BoundGlobalAvgPool(1, x, np.ones((2, 4, 1, 1), np.float32))
    with pytest.raises(TypeError, match="out: expected the dtype of x"):
        pool.BoundGlobalAvgPool(1, x, np.ones((2, 5, 1, 1)))
    with pytest.raises(ValueError, match="x: expected a C-contiguous"):
        pool.BoundGlobalAvgPool(1, x[..., ::2], np.ones((2, 5, 1, 1), np.float32))
    with pytest.raises(ValueError, match="x: expected planes of at least one value"):
        pool.BoundGlobalAvgPool(1, x[:, :, :0], np.ones((2, 5, 1, 1), np.float32))
    with pytest.raises(ValueError, match="out: expected an array that shares no memory with x"):
        pool.BoundGlobalAvgPool(1, x, x.reshape(-1)[:10].reshape(2, 5, 1, 1))


def test_copy_into_copies_arrays_of_one_shape_and_dtype(rng):
    destination = np.zeros((2, 3), np.float32)
    source = rng.standard_normal((2, 6)).astype(np.float32)
    copy_into(destination, source[:, ::2])  # not contiguous: NumPy's copy
    assert destination.tobytes() == np.ascontiguousarray(source[:, ::2]).tobytes()
    copy_into(destination, source[:, :3].copy())
    assert destination.tobytes() == source[:, :3].tobytes()
    with pytest.raises(ValueError, match=r"source: expected a float32 array of shape \(2, 3\), "
                                         r"got float64 \(2, 3\)"):
        copy_into(destination, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="source: expected"):
        copy_into(destination, np.zeros((3, 2), np.float32))


def test_a_reshape_is_bound_to_its_input_memory(rng):
    # Flatten's Reshape is no step of a bound program: the linear layer reads the last
    # convolution's array.
    eager, compiled = frozen_twins(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(),
                                                          nn.Linear(4 * 14 * 14, 5)))
    assert_replays_eager_bits(eager, compiled, image(rng))
    (bound,) = kept_bindings(compiled).values()
    assert [type(step).__name__ for step in bound.steps] == ["BoundForward", "BoundAffine"]
