"""cnn.compile: replayed forwards and backwards give eager's numbers bit for bit, and fall back
to eager wherever a capture cannot be replayed."""
import numpy as np
import pytest

import cnn
import cnn.nn as nn
import cnn.nn.functional as F


class Block(nn.Module):
    """A residual block with BatchNorm, written the way CIFAR ResNets are."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def resnet():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         Block(8, 16, 2), nn.Dropout(0.2), nn.AvgPool2d(8), nn.Flatten(),
                         nn.Linear(16, 10))


def vgg_like():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(8 * 8 * 8, 10))


def lenet():
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                         nn.Linear(84, 10))


def twins(build, seed=0):
    cnn.manual_seed(seed)
    eager = build()
    cnn.manual_seed(seed)
    return eager, build()


def train(model, batches, seed):
    """Losses and the final state after SGD steps; the RNG seeded alike for both runs."""
    optimizer = cnn.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    cnn.manual_seed(seed)
    losses = []
    for x, y in batches:
        optimizer.zero_grad()
        loss = F.cross_entropy(model(cnn.tensor(x)), cnn.tensor(y))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses, [p.grad.numpy().copy() for p in model.parameters()]


def assert_trains_like_eager(eager, model, compiled, batches):
    """SGD steps on `compiled` (around `model`) give eager's losses, gradients and state, bit
    for bit."""
    eager_losses, eager_grads = train(eager, batches, 1)
    losses, grads = train(compiled, batches, 1)
    assert losses == eager_losses
    for a, b in zip(grads, eager_grads):
        assert a.tobytes() == b.tobytes()
    for (key, value), (key_eager, value_eager) in zip(model.state_dict().items(),
                                                      eager.state_dict().items()):
        assert key == key_eager and value.tobytes() == value_eager.tobytes(), key


@pytest.mark.parametrize("build, shape, dtype", [(lenet, (1, 28, 28), np.float32),
                                                 (vgg_like, (3, 16, 16), np.float32),
                                                 (resnet, (3, 16, 16), np.float32),
                                                 (resnet, (3, 16, 16), np.float64)])
def test_training_steps_equal_eager_bit_for_bit(build, shape, dtype, rng):
    eager, model = twins(build)
    eager.to(dtype)
    model.to(dtype)
    compiled = cnn.compile(model)
    batches = [(rng.standard_normal((6,) + shape).astype(dtype), rng.integers(0, 10, 6))
               for _ in range(4)]
    assert_trains_like_eager(eager, model, compiled, batches)
    (program,) = compiled._programs.values()
    assert program.refused is None


@pytest.mark.parametrize("build, with_relu, new", [(resnet, {"BatchNorm"}, {"AddReLU"}),
                                                   (vgg_like, {"Conv2d"}, set()),
                                                   (lenet, {"Linear"}, set())])
def test_relus_fold_into_the_ops_before_them(build, with_relu, new, rng):
    """The trainings above are bit-identical with these fusions in place."""
    model = cnn.compile(build())
    channels, size = (1, 28) if build is lenet else (3, 16)
    model(cnn.tensor(rng.standard_normal((2, channels, size, size)).astype(np.float32)))
    (program,) = model._programs.values()
    names = {step[0].__name__ for step in program.steps}
    assert "ReLU" not in names and new <= names
    assert with_relu <= {step[0].__name__ for step in program.steps
                         if step[2].get("relu")}


def test_batch_norms_and_residual_sums_fold_into_convolutions_without_gradients(rng):
    """The bit-identical inference of test_inference_and_input_gradients_equal_eager runs with
    these folds in place."""
    model = cnn.compile(resnet().eval())
    with cnn.no_grad():
        model(cnn.tensor(rng.standard_normal((2, 3, 16, 16)).astype(np.float32)))
    (program,) = model._programs.values()
    names = [step[0].__name__ for step in program.steps]
    assert "BatchNorm" not in names and "ReLU" not in names and "AddReLU" not in names
    assert sum(1 for step in program.steps if step[0].__name__ == "Conv2d"
               and len(step[1]) == 9 and step[2].get("relu")) == 2
    # The residual sum and its ReLU, in the block's second convolution (its batch norm too).
    assert [len(step[1]) for step in program.steps
            if step[0].__name__ == "Conv2dAddReLU"] == [10]


def test_a_replay_lets_each_value_go_after_its_last_use(rng):
    """Without gradients a replay holds at most a few intermediate values at once, as eager
    does (each of the six here is 16 MB), and still returns eager's numbers."""
    import tracemalloc

    model = nn.Sequential(*[nn.Tanh() for _ in range(6)])
    compiled = cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((1024, 4096)).astype(np.float32))
    size = x.numpy().nbytes
    with cnn.no_grad():
        compiled(x)
        tracemalloc.start()
        try:
            result = compiled(x)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert result.numpy().tobytes() == model(x).numpy().tobytes()
    assert peak < 3 * size


def test_the_replay_loop_passes_each_step_its_values_and_lets_them_go():
    """cnn/_ext/_replay.pyx's run_forwards: the thread count and each step's sources as
    arguments (keywords when given), its result in its slot, its released slots emptied; a
    slot outside the list raises IndexError (no crash)."""
    from cnn._ext._replay import run_forwards

    def record(threads, *args, **kwargs):
        return (threads, args, kwargs)

    values = ["a", "b", None, None]
    run_forwards([(record, (0, 1), None, 2, (0,)),
                  (record, (2,), {"scale": 3}, 3, None)], values, 7)
    assert values == [None, "b", (7, ("a", "b"), {}), (7, ((7, ("a", "b"), {}),),
                                                         {"scale": 3})]
    for bad in ((record, (4,), None, 2, None), (record, (0,), None, 4, None),
                (record, (0,), None, 2, (5,))):
        with pytest.raises(IndexError):
            run_forwards([bad], ["a", "b", None, None], 1)


def test_replays_skip_the_modules(monkeypatch, rng):
    model = cnn.compile(lenet().eval())
    x = cnn.tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
    with cnn.no_grad():
        first = model(x)
        calls = []
        monkeypatch.setattr(nn.Linear, "forward", lambda self, v: calls.append(v))
        second = model(x)
    assert not calls
    assert second.numpy().tobytes() == first.numpy().tobytes()


def test_inference_and_input_gradients_equal_eager(rng):
    eager, model = twins(resnet)
    compiled = cnn.compile(model)
    for module in (eager, compiled):
        module.eval()
    # Batch 9: the residual block's second convolution runs by Winograd (with the sum and
    # ReLU folded into it), at 1 and 4 by the direct tile.
    for batch in (4, 1, 9):
        x = rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)
        with cnn.no_grad():
            assert compiled(cnn.tensor(x)).numpy().tobytes() == \
                eager(cnn.tensor(x)).numpy().tobytes()
        inputs = [cnn.tensor(x, requires_grad=True) for _ in range(2)]
        for module, x_ in zip((eager, compiled), inputs):
            module(x_).sum().backward()
        assert inputs[0].grad.numpy().tobytes() == inputs[1].grad.numpy().tobytes()


@pytest.mark.parametrize("build, shape", [(lenet, (1, 28, 28)), (vgg_like, (3, 16, 16)),
                                          (resnet, (3, 16, 16))])
def test_inference_forms_replay_eager_bit_for_bit(build, shape, rng):
    """Without gradients a replay runs each op's inference form where it has one (no ctx, the
    thread count read once), else its forward: eager's bits either way."""
    eager, model = twins(build)
    eager.eval()
    compiled = cnn.compile(model.eval())
    for batch in (1, 3):
        x = rng.standard_normal((batch,) + shape).astype(np.float32)
        with cnn.no_grad():
            for _ in range(2):  # the capture, then a replay
                assert compiled(cnn.tensor(x)).numpy().tobytes() == \
                    eager(cnn.tensor(x)).numpy().tobytes()
    program = next(iter(compiled._programs.values()))
    forms = {step[0].__name__: run for step, (run, *_) in zip(program.steps, program.forwards)}
    assert forms["Linear"] is F.linear.__globals__["Linear"].inference
    if build is resnet:
        assert forms["AvgPool2d"] is F.avg_pool2d.__globals__["AvgPool2d"].inference
    else:
        assert "ConvReLUMaxPool2d" in forms


def test_ops_without_an_inference_form_replay_their_forward(rng):
    eager, model = twins(lambda: nn.Sequential(nn.Linear(5, 4), nn.Tanh(), nn.Linear(4, 3)))
    compiled = cnn.compile(model.eval())
    x = rng.standard_normal((2, 5)).astype(np.float32)
    with cnn.no_grad():
        for _ in range(2):
            assert compiled(cnn.tensor(x)).numpy().tobytes() == \
                eager.eval()(cnn.tensor(x)).numpy().tobytes()
    program = next(iter(compiled._programs.values()))
    forms = {step[0].__name__: run for step, (run, *_) in zip(program.steps, program.forwards)}
    assert forms["Tanh"].__qualname__.startswith("_without_ctx")


def with_trained_batch_norms(model, rng):
    """`model` with random running statistics and affine parameters in its batch norms (a
    fresh one's mean 0 and variance 1 would hide a fold that drops them)."""
    state = model.state_dict()
    for key, value in state.items():
        if key.rsplit(".", 1)[-1] in ("running_mean", "weight", "bias") and value.ndim == 1:
            state[key] = rng.standard_normal(value.shape).astype(value.dtype)
        elif key.endswith("running_var"):
            state[key] = (rng.random(value.shape) + 0.5).astype(value.dtype)
    model.load_state_dict(state)
    return model


class NormWithoutAffine(nn.Module):
    """A convolution whose batch norm has no weight and bias (affine=False)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 20, 3, padding=1)
        self.bn = nn.BatchNorm2d(20, affine=False)

    def forward(self, x):
        return F.relu(self.bn(self.conv(x)))


@pytest.mark.parametrize("build", [resnet, NormWithoutAffine])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_folded_batch_norms_use_the_trained_statistics_bit_for_bit(build, dtype, rng):
    eager, model = twins(build)
    for module in (eager, model):
        with_trained_batch_norms(module.to(dtype).eval(), np.random.default_rng(5))
    compiled = cnn.compile(model)
    for batch in (1, 4, 9):
        x = cnn.tensor(rng.standard_normal((batch, 3, 16, 16)).astype(dtype))
        with cnn.no_grad():
            expected = eager(x).numpy()
            compiled(x)  # a signature's first call runs eagerly, recording the program
            assert compiled(x).numpy().tobytes() == expected.tobytes()
    for program in compiled._programs.values():
        assert "BatchNorm" not in [step[0].__name__ for step in program.steps]


def test_a_change_to_the_model_is_captured_again(rng):
    model = lenet()
    compiled = cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
    with cnn.no_grad():
        compiled(x)
        model[11] = nn.Linear(84, 3)
        assert compiled(x).shape == (2, 3)
        model.eval()
        model[11].weight.requires_grad_(False)
        assert compiled(x).numpy().tobytes() == model(x).numpy().tobytes()


class ReturnsTwo(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x), x


class MakesAConstant(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x) + cnn.ones(4)


class AddsInPlace(nn.Module):
    """torchvision's BasicBlock writes its residual sum in place: out += identity."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        out = self.fc(x)
        out += x
        out[0] = 1.0
        return out.relu_()


@pytest.mark.parametrize("module, words", [(ReturnsTwo, "tuple"),
                                           (MakesAConstant, "constant"),
                                           (AddsInPlace, "in place")])
def test_what_cannot_be_replayed_runs_eagerly(module, words, rng):
    cnn.manual_seed(0)
    model = module()
    compiled = cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    for _ in range(2):
        result = compiled(x)
        expected = model(x)
        if isinstance(expected, tuple):
            result, expected = result[0], expected[0]
        assert result.numpy().tobytes() == expected.numpy().tobytes()
    (program,) = compiled._programs.values()
    assert words in program.refused
    with pytest.raises(RuntimeError, match="fullgraph"):
        cnn.compile(model, fullgraph=True)(x)


def test_in_place_operations_without_autograd_are_not_dropped(rng):
    # Under no_grad an in-place operation records no op: a replay of the others alone gave
    # other numbers than eager (the sum and the ReLU missing), so such a forward runs eagerly.
    cnn.manual_seed(0)
    model = AddsInPlace()
    compiled = cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    with cnn.no_grad():
        for _ in range(3):
            assert compiled(x).numpy().tobytes() == model(x).numpy().tobytes()
    (program,) = compiled._programs.values()
    assert "in place (add_)" in program.refused


def test_hooks_run_because_a_hooked_model_is_not_replayed(rng):
    model = lenet()
    compiled = cnn.compile(model)
    x = cnn.tensor(rng.standard_normal((2, 1, 28, 28)).astype(np.float32))
    compiled(x)
    seen = []
    model[0].register_forward_hook(lambda module, args, out: seen.append(out.shape))
    compiled(x)
    compiled(x)
    assert seen == [(2, 6, 28, 28)] * 2


def test_compile_follows_torch_compile(rng):
    model = lenet()
    compiled = cnn.compile(model, mode="reduce-overhead", dynamic=False)
    assert compiled._orig_mod is model
    assert list(compiled.state_dict()) == ["_orig_mod." + k for k in model.state_dict()]
    assert list(compiled.parameters()) == list(model.parameters())
    assert cnn.compile(model, disable=True) is model
    assert isinstance(cnn.compile()(model), cnn.replay.CompiledModule)
    with pytest.raises(ValueError, match="backend"):
        cnn.compile(model, backend="cudagraphs")
    with pytest.raises(TypeError, match="Module"):
        cnn.compile(lambda x: x)


def test_a_forward_that_makes_arrays_from_its_inputs_runs_eagerly():
    # cross_entropy turns the targets into arrays before its op runs: a replay would keep the
    # first call's targets, so the capture is refused and every call runs eagerly.
    class WithLoss(nn.Module):
        def __init__(self):
            super().__init__()
            self.linear = nn.Linear(4, 3)

        def forward(self, x, target):
            return F.cross_entropy(self.linear(x), target)

    cnn.manual_seed(0)
    model = WithLoss()
    compiled = cnn.compile(model)
    rng = np.random.default_rng(0)
    x = cnn.tensor(rng.standard_normal((5, 4)).astype(np.float32))
    for _ in range(3):
        target = cnn.tensor(rng.integers(0, 3, 5))
        assert compiled(x, target).item() == model(x, target).item()
    with pytest.raises(RuntimeError, match="an array made in forward"):
        cnn.compile(model, fullgraph=True)(x, target)


def test_a_compiled_part_of_a_compiled_model_is_captured_by_the_outer_one(rng):
    # The inner module runs eagerly inside the outer capture (traces do not nest), so the
    # outer program holds its ops and replays them.
    def build():
        return nn.Sequential(cnn.compile(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU())),
                             nn.Flatten(), nn.Linear(4 * 6 * 6, 5))
    eager, inner = twins(build)
    outer = cnn.compile(inner)
    for _ in range(3):
        x = cnn.tensor(rng.standard_normal((2, 3, 8, 8)).astype(np.float32))
        np.testing.assert_array_equal(outer(x).numpy(), eager(x).numpy())
    (program,) = outer._programs.values()
    assert program.refused is None
    assert [step[0].__name__ for step in program.steps] == ["Conv2d", "Reshape", "Linear"]


class TwoReads(nn.Module):
    """Per-image steps whose first value the classifier reads too (gathered whole besides the
    last), and a 16-channel layer that runs by Winograd at any batch of two or more."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.head1, self.head2 = nn.Linear(16 * 16 * 16, 10), nn.Linear(16 * 8 * 8, 10)

    def forward(self, x):
        a = F.relu(self.conv1(x))
        b = F.max_pool2d(F.relu(self.conv2(a)), 2)
        return self.head1(a.flatten(1)) + self.head2(b.flatten(1))


class AddsAParameter(nn.Module):
    """A sum with a parameter of the batch's shape: not a per-image step, where the chunks end."""

    def __init__(self, batch):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.shift = nn.Parameter(cnn.randn(batch, 8, 16, 16))

    def forward(self, x):
        return F.relu(self.conv(x) + self.shift)


def features():
    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1),
                         nn.ReLU(), nn.MaxPool2d(2))


@pytest.mark.parametrize("build, steps", [(resnet, 5), (vgg_like, 2), (TwoReads, 3),
                                          (features, 2), (lambda: AddsAParameter(23), 0)])
def test_a_large_batch_runs_its_leading_per_image_steps_in_chunks_with_eager_bits(
        build, steps, rng, monkeypatch):
    # Without gradients a batch's leading convolutions, pools and ReLUs run a few images at a
    # time (cnn.replay.CHUNK_BYTES of their largest value: 5 images of these 16x16 layers
    # here), chunks of sizes differing by one (23 images): eager's bits, the values that
    # later steps read gathered whole. A parameter in an image's place ends the chunks.
    monkeypatch.setattr(cnn.replay, "CHUNK_BYTES", 5 * 16 * 16 * 16 * 4)
    eager, model = twins(build)
    eager.eval()
    compiled = cnn.compile(model.eval())
    x = rng.standard_normal((23, 3, 16, 16)).astype(np.float32)
    with cnn.no_grad():
        expected = eager(cnn.tensor(x)).numpy()
        for _ in range(2):  # the capture, then a replay
            assert compiled(cnn.tensor(x)).numpy().tobytes() == expected.tobytes()
    chunks = next(iter(compiled._programs.values())).chunks
    assert (chunks.steps if chunks is not None else 0) == steps
    if chunks is not None:  # the fewest chunks of at most 5 images (10 for 8 channels) ...
        expected = [0, 4, 9, 13, 18, 23] if build is TwoReads else [0, 7, 15, 23]
        if build is resnet:  # ... but its 16 -> 16 layer needs 8 images for Winograd
            expected = [0, 11, 23]
        assert chunks.bounds == expected


@pytest.mark.parametrize("batch, bounds", [(8, [0, 2, 4, 6, 8]), (3, None)])
def test_chunks_where_every_convolution_chooses_the_batchs_algorithm(batch, bounds, rng,
                                                                      monkeypatch):
    # One image alone runs TwoReads' 16 -> 16 layer by the direct kernels, a batch by
    # Winograd (other bits): instead of chunks of one image (the byte budget's), fewer and
    # larger ones; none where every split leaves a chunk of one. Eager's bits either way.
    monkeypatch.setattr(cnn.replay, "CHUNK_BYTES", 16 * 16 * 16 * 4)
    eager, model = twins(TwoReads)
    compiled = cnn.compile(model.eval())
    x = rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)
    plan = cnn._ext.conv_plan((16, 16, 16), (16, 16, 3, 3), 1, 1, 1)
    assert plan.runs_winograd(2) and not plan.runs_winograd(1)
    with cnn.no_grad():
        expected = eager.eval()(cnn.tensor(x)).numpy()
        for _ in range(2):
            assert compiled(cnn.tensor(x)).numpy().tobytes() == expected.tobytes()
    chunks = next(iter(compiled._programs.values())).chunks
    assert (chunks.bounds if chunks is not None else None) == bounds
