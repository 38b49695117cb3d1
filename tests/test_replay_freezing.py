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


def frozen_twins(build):
    """An eager model and a frozen compiled twin (the same weights and trained batch norms),
    in evaluation mode."""
    eager, model = twins(build)
    for module in (eager, model):
        with_trained_batch_norms(module.eval(), np.random.default_rng(5))
    return eager, cnn.compile(model, options=FROZEN)


def assert_replays_eager_bits(eager, compiled, x):
    """The capture of x's signature and two replays give eager's bits."""
    with cnn.no_grad():
        expected = eager(x).numpy()
        for _ in range(3):
            assert compiled(x).numpy().tobytes() == expected.tobytes()


@pytest.mark.parametrize("build", [wide_net, resnet])
@pytest.mark.parametrize("count", [1, 2])
def test_a_frozen_replay_gives_eager_bits(build, count, threads, rng):
    cnn.set_num_threads(count)
    eager, compiled = frozen_twins(build)
    for batch in (1, 9):
        x = cnn.tensor(rng.standard_normal((batch, 3, 16, 16)).astype(np.float32))
        assert_replays_eager_bits(eager, compiled, x)
    assert frozen_steps(compiled) >= {"Conv2d"}
    if build is wide_net:
        assert "ConvReLUMaxPool2d" in frozen_steps(compiled)
    else:
        assert "Conv2dAddReLU" in frozen_steps(compiled)


def test_a_frozen_replay_in_chunks_of_images_gives_eager_bits(monkeypatch, rng):
    # A large batch's leading steps run a few images at a time (cnn.replay._ImageChunks),
    # frozen as the others.
    monkeypatch.setattr(cnn.replay, "CHUNK_BYTES", 16 * 16 * 16 * 4)
    eager, compiled = frozen_twins(wide_net)
    assert_replays_eager_bits(eager, compiled,
                              cnn.tensor(rng.standard_normal((16, 3, 16, 16)).astype(np.float32)))
    (program,) = compiled._programs.values()
    assert program.chunks is not None and len(program.chunks.bounds) > 2
    assert not prepared_steps(compiled)  # prepared only for a batch run whole
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


def prepared_steps(compiled, kinds=("FrozenForward",)):
    """The names of the Functions whose steps a compiled model's programs run prepared
    (Function.frozen: by default a FrozenForward of a layer's plan)."""
    return {step[0].__name__ for program in compiled._programs.values()
            if program.prepared is not None
            for step, forward in zip(program.steps, program.prepared[1])
            if type(forward[0]).__name__ in kinds}


@pytest.mark.parametrize("build", [wide_net, resnet])
def test_a_small_batch_runs_its_frozen_convolutions_prepared(build, rng):
    # Checked and laid out once (ConvPlan.frozen_forward), with eager's bits.
    eager, compiled = frozen_twins(build)
    assert_replays_eager_bits(eager, compiled,
                              cnn.tensor(rng.standard_normal((2, 3, 16, 16)).astype(np.float32)))
    expected_steps = ({"Conv2d", "ConvReLUMaxPool2d"} if build is wide_net
                      else {"Conv2d", "Conv2dAddReLU"})
    assert prepared_steps(compiled) == expected_steps
    unfrozen = cnn.compile(compiled._orig_mod)
    assert_replays_eager_bits(eager, unfrozen,
                              cnn.tensor(rng.standard_normal((2, 3, 16, 16)).astype(np.float32)))
    assert not prepared_steps(unfrozen)


def test_a_prepared_replay_takes_biases_for_constants_and_sees_new_arrays(rng):
    model = wide_net().eval()
    frozen = cnn.compile(model, options=FROZEN)
    x = cnn.tensor(rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    with cnn.no_grad():
        before = model(x).numpy()
        for _ in range(2):
            assert frozen(x).numpy().tobytes() == before.tobytes()
        model[0].bias.data.add_(1.0)  # in place: unseen
        assert frozen(x).numpy().tobytes() == before.tobytes()
        model[0].bias.data = cnn.tensor(model[0].bias.numpy() + 1.0)  # a new array: seen
        after = frozen(x).numpy()
        assert after.tobytes() == model(x).numpy().tobytes() != before.tobytes()


class ScaledWeight(nn.Module):
    """A convolution whose weight the forward computes (so not a parameter's array)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)

    def forward(self, x):
        return nn.functional.conv2d(x, self.conv.weight * 0.5, self.conv.bias, padding=1)


def test_a_weight_computed_in_forward_is_not_prepared(rng):
    model = ScaledWeight().eval()
    frozen = cnn.compile(model, options=FROZEN)
    x = cnn.tensor(rng.standard_normal((1, 3, 16, 16)).astype(np.float32))
    with cnn.no_grad():
        for _ in range(2):
            assert frozen(x).numpy().tobytes() == model(x).numpy().tobytes()
        model.conv.weight.data.mul_(2.0)  # a value of the forward, not a constant
        assert frozen(x).numpy().tobytes() == model(x).numpy().tobytes()
    assert frozen._programs and not prepared_steps(frozen)


# (input, weight, stride, padding, batch, pool): the kernels a frozen forward prepares for.
FROZEN_CALLS = [
    ((16, 8, 8), (16, 16, 3, 3), 1, 1, 1, False),    # direct (a small call)
    ((16, 8, 8), (16, 16, 3, 3), 1, 1, 9, False),    # Winograd
    ((3, 20, 20), (16, 3, 3, 3), 1, 1, 2, False),    # rows (conv_rows)
    ((16, 8, 8), (32, 16, 1, 1), 2, 0, 1, False),    # a strided 1x1: direct
    ((16, 8, 8), (16, 16, 3, 3), 1, 1, 1, True),     # direct, pooled
    ((16, 8, 8), (16, 16, 3, 3), 1, 1, 9, True),     # Winograd, pooled
    ((3, 32, 32), (16, 3, 3, 3), 1, 1, 1, True),     # rows (pool_rows)
    # Whole images to the threads (a batch of at least two per thread), and one image cut by
    # Winograd's two ways (by rows of tiles, by output channels) and its split of three.
    ((16, 8, 8), (16, 16, 3, 3), 1, 1, 5, False),    # direct
    ((16, 8, 8), (16, 16, 3, 3), 1, 1, 5, True),     # direct, pooled
    ((3, 20, 20), (16, 3, 3, 3), 1, 1, 5, False),    # rows (conv_rows)
    ((3, 32, 32), (16, 3, 3, 3), 1, 1, 4, True),     # rows (pool_rows)
    ((16, 32, 32), (16, 16, 3, 3), 1, 1, 1, False),  # Winograd by rows of tiles
    ((64, 8, 8), (64, 64, 3, 3), 1, 1, 1, False),    # Winograd by output channels
    ((32, 16, 16), (32, 32, 3, 3), 1, 1, 3, True),   # Winograd, pooled, 3 images split
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("call", FROZEN_CALLS)
def test_a_frozen_forward_gives_the_bits_of_forward(call, dtype, rng):
    input_shape, weight_shape, stride, padding, batch, pool = call
    plan = _ext.conv_plan(input_shape, weight_shape, stride, padding, 1, 1, dtype)
    f = weight_shape[0]
    x = rng.standard_normal((batch,) + input_shape).astype(dtype)
    w, b = rng.standard_normal(weight_shape).astype(dtype), rng.standard_normal(f).astype(dtype)
    norm = (rng.standard_normal(f).astype(dtype), rng.random(f).astype(dtype) + 0.5,
            rng.standard_normal(f).astype(dtype), rng.standard_normal(f).astype(dtype), 1e-5)
    residual = rng.standard_normal((batch,) + plan.output_shape).astype(dtype)
    if pool:
        frozen = plan.frozen_forward(batch, w, b, pool=True)
        images = (x,)
        reference = lambda count, x: plan.forward_relu_pool(x, w, b, count, False)[0]  # noqa
    else:
        frozen = plan.frozen_forward(batch, w, b, True, norm, True)
        images = (x, residual)
        reference = lambda count, x: plan.forward(x, w, b, True, False, count, norm,  # noqa
                                                  residual)[0]
    first = frozen(1, *images)
    for count in (1, 2):
        assert frozen(count, *images).tobytes() == reference(count, x).tobytes()
        strided = np.repeat(x, 2, axis=3)[..., ::2]  # not contiguous: copied
        assert frozen(count, strided, *images[1:]).tobytes() == first.tobytes()
    plain = plan.frozen_forward(batch, w, None)
    assert plain(2, x).tobytes() == plan.forward(x, w, None, False, False, 2)[0].tobytes()
    w *= 2  # the weights, bias and batch norm taken for constants
    b += 1
    norm[0][...] += 1
    assert frozen(2, *images).tobytes() == first.tobytes() != reference(2, x).tobytes()


def test_a_frozen_forward_checks_its_arguments(rng):
    plan = _ext.conv_plan((16, 8, 8), (16, 16, 3, 3), 1, 1, 1)
    x = rng.standard_normal((1, 16, 8, 8)).astype(np.float32)
    w = rng.standard_normal((16, 16, 3, 3)).astype(np.float32)
    frozen = plan.frozen_forward(1, w)
    with pytest.raises(ValueError, match=r"input: expected shape \(1, 16, 8, 8\)"):
        frozen(1, np.zeros((2, 16, 8, 8), np.float32))
    with pytest.raises(TypeError, match="input: expected dtype float32"):
        frozen(1, x.astype(np.float64))
    with pytest.raises(ValueError, match="residual: this frozen forward was prepared without"):
        frozen(1, x, np.zeros((1, 16, 8, 8), np.float32))
    with pytest.raises(TypeError, match="residual: expected a NumPy array"):
        plan.frozen_forward(1, w, residual=True)(1, x)
    with pytest.raises(ValueError, match="pool: the fused ReLU and max-pool takes no"):
        plan.frozen_forward(1, w, relu=True, pool=True)
    with pytest.raises(ValueError, match="weight: expected shape"):
        plan.frozen_forward(1, w[:8])
    with pytest.raises(ValueError, match="batch: expected"):
        plan.frozen_forward(-1, w)
    with pytest.raises(ValueError, match="num_threads"):
        frozen(0, x)
    pointwise = _ext.conv_plan((16, 8, 8), (8, 16, 1, 1), 1, 0, 1)  # BLAS products
    assert pointwise.frozen_forward(1, w[:8, :, :1, :1]) is None


class Rows(nn.Module):
    """A classifier whose first linear layer takes (1, 5, 8): five rows of one image (BLAS's
    product), its second one row."""

    def __init__(self):
        super().__init__()
        self.first, self.second = nn.Linear(8, 6), nn.Linear(30, 3, bias=False)

    def forward(self, x):
        return self.second(nn.functional.relu(self.first(x)).flatten(1))


def test_a_batch_1_linear_layer_runs_prepared(rng):
    # LeNet-5's classifier (with its ReLUs fused) takes its weights once (FrozenAffine), with
    # eager's bits; a layer of more rows than the row kernel's (BLAS's product) is left as
    # it was.
    eager, compiled = frozen_twins(lambda: nn.Sequential(
        nn.Flatten(), nn.Linear(48, 20), nn.ReLU(), nn.Linear(20, 7)))
    x = cnn.tensor(rng.standard_normal((1, 3, 4, 4)).astype(np.float32))
    assert_replays_eager_bits(eager, compiled, x)
    assert prepared_steps(compiled, ("FrozenAffine",)) == {"Linear"}
    for model in (eager, compiled._orig_mod):  # a new array: prepared again
        model[3].weight.data = cnn.tensor(model[3].weight.numpy() * 2)
    assert_replays_eager_bits(eager, compiled, x)
    model = Rows().eval()
    rows = cnn.compile(model, options=FROZEN)
    assert_replays_eager_bits(model, rows,
                              cnn.tensor(rng.standard_normal((1, 5, 8)).astype(np.float32)))
    (program,) = rows._programs.values()
    assert [(step[0].__name__, type(forward[0]).__name__)
            for step, forward in zip(program.steps, program.prepared[1])] == [
        ("Linear", "function"), ("Reshape", "function"), ("Linear", "FrozenAffine")]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("relu", [True, False])
def test_a_frozen_affine_gives_the_bits_of_affine_rows(dtype, with_bias, relu, rng):
    kernels = _ext.backend.linear
    x = rng.standard_normal((1, 100)).astype(dtype)
    w = rng.standard_normal((30, 100)).astype(dtype)
    b = rng.standard_normal(30).astype(dtype) if with_bias else None
    expected = np.empty((1, 30), dtype)
    kernels.affine_rows(x, w, b, expected, relu, 1)
    frozen = kernels.FrozenAffine(w, b, relu)
    for count in (1, 2):
        assert frozen(count, x).tobytes() == expected.tobytes()
    strided = np.repeat(x, 2, axis=1)[:, ::2]  # not contiguous: copied
    assert frozen(2, strided).tobytes() == expected.tobytes()
    assert frozen(1, x[:0]).shape == (0, 30)


def test_a_frozen_affine_checks_its_arguments(rng):
    kernels = _ext.backend.linear
    w = rng.standard_normal((4, 3)).astype(np.float32)
    frozen = kernels.FrozenAffine(w, None, False)
    with pytest.raises(ValueError, match="x: expected 3 columns"):
        frozen(1, np.ones((1, 4), np.float32))
    with pytest.raises(ValueError, match="x: expected at most 1 rows"):
        frozen(1, np.ones((kernels.MAX_ROWS + 1, 3), np.float32))
    with pytest.raises(TypeError, match="x: expected float32"):
        frozen(1, np.ones((1, 3)))
    with pytest.raises(TypeError, match="x: expected a 2-D"):
        frozen(1, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="bias: expected 4 elements"):
        kernels.FrozenAffine(w, np.ones(3, np.float32), False)
    with pytest.raises(TypeError, match="bias: expected float32"):
        kernels.FrozenAffine(w, np.ones(4), False)
    with pytest.raises(ValueError, match="weight: expected a C-contiguous"):
        kernels.FrozenAffine(w.T, None, False)
