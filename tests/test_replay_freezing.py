"""cnn.compile(options={"freezing": True}): a forward without gradients takes the convolutions'
weights for constants, as Inductor's freezing does: eager's bits while they are unchanged, their
kernel layouts made once and not checked against the weights again."""
import numpy as np
import pytest

import cnn
import cnn.nn as nn
from cnn import _ext

from test_replay import assert_trains_like_eager, resnet, twins, with_trained_batch_norms

FROZEN = {"freezing": True}


def wide_net():
    """Convolutions whose plans keep their weights' layouts: 16 -> 16 with ReLU and max-pool
    fused, 16 -> 24 with a batch norm (the direct kernels at batch 1, Winograd at batch 9)."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 24, 3, padding=1), nn.BatchNorm2d(24), nn.ReLU(),
                         nn.Flatten(), nn.Linear(24 * 8 * 8, 10))


def frozen_steps(compiled):
    """The names of the Functions that a compiled model's programs run frozen."""
    return {step[0].__name__ for program in compiled._programs.values()
            for step, forward in zip(program.steps, program.forwards)
            if forward[2] is not None and forward[2].get("frozen")}


@pytest.mark.parametrize("build", [wide_net, resnet])
@pytest.mark.parametrize("count", [1, 2])
def test_a_frozen_replay_gives_eager_bits(build, count, threads, rng):
    cnn.set_num_threads(count)
    eager, model = twins(build)
    for module in (eager, model):
        with_trained_batch_norms(module.eval(), np.random.default_rng(5))
    compiled = cnn.compile(model, options=FROZEN)
    for batch in (1, 9):
        x = cnn.tensor(rng.standard_normal((batch, 3, 16, 16)).astype(np.float32))
        with cnn.no_grad():
            expected = eager(x).numpy()
            for _ in range(3):  # the capture, then replays
                assert compiled(x).numpy().tobytes() == expected.tobytes()
    assert frozen_steps(compiled) >= {"Conv2d"}
    if build is wide_net:
        assert "ConvReLUMaxPool2d" in frozen_steps(compiled)
    else:
        assert "Conv2dAddReLU" in frozen_steps(compiled)


def test_a_frozen_replay_in_chunks_of_images_gives_eager_bits(monkeypatch, rng):
    # A large batch's leading steps run a few images at a time (cnn.replay._ImageChunks),
    # frozen as the others.
    monkeypatch.setattr(cnn.replay, "CHUNK_BYTES", 16 * 16 * 16 * 4)
    eager, model = twins(wide_net)
    for module in (eager, model):
        with_trained_batch_norms(module.eval(), np.random.default_rng(5))
    compiled = cnn.compile(model, options=FROZEN)
    x = cnn.tensor(rng.standard_normal((16, 3, 16, 16)).astype(np.float32))
    with cnn.no_grad():
        expected = eager(x).numpy()
        for _ in range(3):
            assert compiled(x).numpy().tobytes() == expected.tobytes()
    (program,) = compiled._programs.values()
    assert program.chunks is not None and len(program.chunks.bounds) > 2
    assert all(forward[2]["frozen"] for forward in program.chunks.forwards
               if forward[0].__qualname__.startswith("Conv"))


@pytest.mark.parametrize("batch", [1, 9])
def test_a_frozen_replay_does_not_read_the_weights_again(batch, rng):
    # Inductor's semantics: a weight changed in place after freezing may go unseen (here it is:
    # no call between reads the weights), where an unfrozen replay sees it at once; compiling
    # again, or giving the parameter a new array, brings the new values in.
    model = wide_net().eval()
    frozen, checked = cnn.compile(model, options=FROZEN), cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((batch, 3, 16, 16)).astype(np.float32))
    with cnn.no_grad():
        before = model(x).numpy()
        for _ in range(2):  # the capture, then a replay
            assert frozen(x).numpy().tobytes() == before.tobytes()
            assert checked(x).numpy().tobytes() == before.tobytes()
        model[2].weight.data.mul_(2.0)  # in place, through a view that autograd does not see
        model[5].weight.data.mul_(2.0)
        assert frozen(x).numpy().tobytes() == before.tobytes()
        after = checked(x).numpy()
        assert after.tobytes() != before.tobytes()
        assert after.tobytes() == model(x).numpy().tobytes()
        again = cnn.compile(model, options=FROZEN)
        for _ in range(2):
            assert again(x).numpy().tobytes() == after.tobytes()
        model[5].weight.data = cnn.tensor(model[5].weight.numpy() * 0.5)  # a new array
        renewed = frozen(x).numpy()
        assert renewed.tobytes() == model(x).numpy().tobytes() != after.tobytes()


@pytest.mark.parametrize("batch", [1, 9])
def test_a_frozen_replay_takes_folded_batch_norms_for_constants(batch, rng):
    # Their map (statistics and affine parameters) is made once for the arrays: a change in
    # place goes unseen as a weight's does, a new array is seen.
    model = with_trained_batch_norms(wide_net().eval(), np.random.default_rng(5))
    frozen, checked = cnn.compile(model, options=FROZEN), cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((batch, 3, 16, 16)).astype(np.float32))
    norm = model[6]
    with cnn.no_grad():
        before = model(x).numpy()
        for _ in range(2):
            assert frozen(x).numpy().tobytes() == before.tobytes()
            assert checked(x).numpy().tobytes() == before.tobytes()
        norm.running_mean[...] += 1.0  # a buffer is an array
        norm.weight.data.mul_(2.0)
        assert frozen(x).numpy().tobytes() == before.tobytes()
        after = model(x).numpy()
        assert after.tobytes() != before.tobytes()
        assert checked(x).numpy().tobytes() == after.tobytes()
        norm.running_var = norm.running_var * 2  # a new array
        renewed = frozen(x).numpy()
        assert renewed.tobytes() == model(x).numpy().tobytes() != after.tobytes()


def test_freezing_leaves_training_steps_as_they_were(rng):
    eager, model = twins(wide_net)
    compiled = cnn.compile(model, options=FROZEN)
    batches = [(rng.standard_normal((4, 3, 16, 16)).astype(np.float32), rng.integers(0, 10, 4))
               for _ in range(3)]
    assert_trains_like_eager(eager, model, compiled, batches)
    assert not frozen_steps(compiled)


def test_compile_checks_its_options():
    model = wide_net()
    assert not cnn.compile(model, options={"max_autotune": True})._freezing
    assert cnn.compile(options=FROZEN)(model)._freezing
    with pytest.raises(TypeError, match="options: expected a dict"):
        cnn.compile(model, options=[("freezing", True)])
    with pytest.raises(TypeError, match=r"options\['freezing'\]: expected True or False"):
        cnn.compile(model, options={"freezing": "yes"})


def test_a_plan_freezes_only_a_kept_layout(rng):
    plan = _ext.conv_plan((16, 8, 8), (16, 16, 3, 3), 1, 1, 1)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    before = plan.forward(x, w, frozen=True)[0]
    w *= 2
    assert plan.forward(x, w, frozen=True)[0].tobytes() == before.tobytes()
    assert plan.forward(x, w)[0].tobytes() != before.tobytes()
    with pytest.raises(ValueError, match="frozen: a frozen call uses a kept layout"):
        plan.forward(x, w, keep_packing=False, frozen=True)
    with pytest.raises(TypeError, match="frozen: expected True or False"):
        plan.forward(x, w, frozen=1)
    with pytest.raises(ValueError, match="frozen: a frozen call"):
        plan.forward_relu_pool(x, w, keep_packing=False, frozen=True)
    mean, var = np.zeros(16, np.float32), np.ones(16, np.float32)
    with pytest.raises(ValueError, match="batch_norm: expected"):
        plan.forward(x, w, batch_norm=(mean, var), frozen=True)
    normed = plan.forward(x, w, batch_norm=(mean, var, None, None, 1e-5), frozen=True)[0]
    mean += 1
    assert plan.forward(x, w, batch_norm=(mean, var, None, None, 1e-5),
                        frozen=True)[0].tobytes() == normed.tobytes()
    assert plan.forward(x, w, batch_norm=(mean, var, None, None, 1e-3),
                        frozen=True)[0].tobytes() != normed.tobytes()  # another eps
    assert plan.forward(x, w, batch_norm=(mean.copy(), var, None, None, 1e-5),
                        frozen=True)[0].tobytes() != normed.tobytes()  # another array
