"""cnn.nn.init: PyTorch's formulas for gains, fans and bounds; in-place fills; reproducibility."""
import math

import numpy as np
import pytest

import cnn.random
from cnn.nn import Parameter, init

WEIGHT_SHAPES = [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400), (10, 84), (32, 3, 3, 3), (4, 2, 3, 1, 2)]
GAINS = [("linear", None), ("conv2d", None), ("conv_transpose3d", None), ("sigmoid", None),
         ("tanh", None), ("relu", None), ("selu", None), ("leaky_relu", None),
         ("leaky_relu", 0.2), ("leaky_relu", 0), ("leaky_relu", math.sqrt(5))]


@pytest.fixture(autouse=True)
def seeded():
    """Fixed draws, so the statistical bounds below cannot flake; the global state is restored."""
    state = cnn.random.get_rng_state()
    cnn.random.manual_seed(0)
    yield
    cnn.random.set_rng_state(state)


def weight(shape, dtype=np.float32):
    return Parameter(np.zeros(shape, dtype=dtype))


def kaiming_bound(fan, a, nonlinearity="leaky_relu"):
    """PyTorch's kaiming_uniform_ bound, written out: sqrt(3) * gain / sqrt(fan)."""
    slope = 0.01 if a is None else a
    gain = {"leaky_relu": math.sqrt(2 / (1 + slope**2)), "relu": math.sqrt(2)}[nonlinearity]
    return math.sqrt(3) * gain / math.sqrt(fan)


@pytest.mark.parametrize("shape", WEIGHT_SHAPES)
def test_fans_match_torch(shape):
    torch = pytest.importorskip("torch")
    expected = torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    assert init.calculate_fan_in_and_fan_out(weight(shape)) == expected
    assert init._calculate_fan_in_and_fan_out(np.zeros(shape)) == expected


def test_fans_by_hand():
    assert init.calculate_fan_in_and_fan_out(weight((16, 6, 5, 5))) == (150, 400)
    assert init.calculate_fan_in_and_fan_out(weight((120, 400))) == (400, 120)
    with pytest.raises(ValueError, match=r"tensor: fan in and fan out need at least 2 dimensions, "
                                         r"got shape \(5,\)"):
        init.calculate_fan_in_and_fan_out(weight((5,)))


@pytest.mark.parametrize("nonlinearity, param", GAINS)
def test_gain_matches_torch(nonlinearity, param):
    torch = pytest.importorskip("torch")
    assert init.calculate_gain(nonlinearity, param) == pytest.approx(
        torch.nn.init.calculate_gain(nonlinearity, param), rel=1e-15)


def test_gain_errors():
    with pytest.raises(ValueError, match="nonlinearity: expected one of .*got 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(TypeError, match="param: expected a real number, got str"):
        init.calculate_gain("leaky_relu", "0.1")


@pytest.mark.parametrize("shape", [(16, 6, 5, 5), (120, 400), (10, 84)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_kaiming_uniform_default_layer_bound(shape, dtype):
    w = weight(shape, dtype)
    data = w._data
    assert init.kaiming_uniform_(w, a=math.sqrt(5)) is w
    assert w._data is data and data.dtype == dtype
    fan_in, _ = init.calculate_fan_in_and_fan_out(w)
    bound = kaiming_bound(fan_in, math.sqrt(5))
    # With a = sqrt(5) PyTorch's layer default reduces to 1/sqrt(fan_in).
    assert bound == pytest.approx(1 / math.sqrt(fan_in), rel=1e-12)
    assert np.all(np.abs(data) <= dtype(bound))
    # n uniform draws reach within about bound/n of each end.
    assert data.max() > bound * (1 - 20 / data.size) and data.min() < -bound * (1 - 20 / data.size)
    assert abs(data.mean()) < 4 * bound / math.sqrt(3 * data.size)
    assert data.var() == pytest.approx(bound**2 / 3, rel=0.15)


@pytest.mark.parametrize("mode, nonlinearity, a", [
    ("fan_out", "relu", 0), ("fan_in", "leaky_relu", 0.2), ("FAN_IN", "relu", 0)])
def test_kaiming_uniform_modes(mode, nonlinearity, a):
    w = weight((64, 32, 3, 3))
    init.kaiming_uniform_(w, a=a, mode=mode, nonlinearity=nonlinearity)
    fan_in, fan_out = init.calculate_fan_in_and_fan_out(w)
    bound = kaiming_bound(fan_in if mode.lower() == "fan_in" else fan_out, a, nonlinearity)
    assert np.all(np.abs(w._data) <= np.float32(bound)) and np.abs(w._data).max() > 0.99 * bound


def test_kaiming_bound_matches_torch_samples():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    reference = torch.empty(64, 32, 3, 3)
    torch.nn.init.kaiming_uniform_(reference, a=math.sqrt(5))
    ours = init.kaiming_uniform_(weight((64, 32, 3, 3)), a=math.sqrt(5))._data
    # Different generators, same distribution: the observed extremes agree closely.
    assert np.abs(ours).max() == pytest.approx(reference.abs().max().item(), rel=1e-3)
    assert ours.std() == pytest.approx(reference.std().item(), rel=0.03)


def test_normal_initialisers_statistics():
    w = weight((256, 128), np.float64)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert w._data.std() == pytest.approx(math.sqrt(2 / 256), rel=0.02)
    init.xavier_normal_(w, gain=2.0)
    assert w._data.std() == pytest.approx(2.0 * math.sqrt(2 / (128 + 256)), rel=0.02)
    init.normal_(w, mean=3.0, std=0.5)
    assert w._data.mean() == pytest.approx(3.0, abs=0.02)
    assert w._data.std() == pytest.approx(0.5, rel=0.02)
    assert w._data.dtype == np.float64


def test_uniform_initialisers_bounds():
    w = weight((50, 30))
    bound = math.sqrt(6 / 80)
    init.xavier_uniform_(w)
    assert np.all(np.abs(w._data) <= np.float32(bound)) and np.abs(w._data).max() > 0.98 * bound
    init.uniform_(w, -0.5, 2.0)
    assert w._data.min() >= -0.5 and w._data.max() <= 2.0
    assert w._data.mean() == pytest.approx(0.75, abs=0.1)


def test_constant_fills_keep_dtype():
    counts = np.arange(6).reshape(2, 3)
    assert init.ones_(counts) is counts and counts.dtype == np.int64 and np.all(counts == 1)
    w = weight((2, 3))
    init.constant_(w, 0.25)
    assert np.all(w._data == np.float32(0.25))
    init.zeros_(w)
    assert not w._data.any()


def test_fills_are_in_place_on_views():
    block = np.zeros((4, 6), dtype=np.float32)
    init.ones_(block[:, ::2])
    assert block.sum() == 12 and np.all(block[:, 1::2] == 0)
    init.uniform_(block[1:3], 5.0, 6.0)
    assert np.all(block[1:3] >= 5.0) and np.all(block[0] <= 1.0)


def test_manual_seed_reproducibility():
    cnn.random.manual_seed(1234)
    first = init.kaiming_uniform_(weight((6, 1, 5, 5)), a=math.sqrt(5))._data.copy()
    noise = init.normal_(weight((3,)))._data.copy()
    cnn.random.manual_seed(1234)
    assert np.array_equal(init.kaiming_uniform_(weight((6, 1, 5, 5)), a=math.sqrt(5))._data, first)
    assert np.array_equal(init.normal_(weight((3,)))._data, noise)
    cnn.random.manual_seed(1235)
    other = init.kaiming_uniform_(weight((6, 1, 5, 5)), a=math.sqrt(5))._data
    assert not np.array_equal(other, first)


def test_explicit_generator_leaves_the_default_alone():
    cnn.random.manual_seed(7)
    expected = init.uniform_(weight((5,)))._data.copy()
    cnn.random.manual_seed(7)
    a = init.uniform_(weight((5,)), generator=np.random.default_rng(99))._data
    b = init.uniform_(weight((5,)), generator=np.random.default_rng(99))._data
    assert np.array_equal(a, b)
    assert np.array_equal(init.uniform_(weight((5,)))._data, expected)


def test_zero_element_tensor_warns_and_is_untouched():
    empty = weight((0, 3))
    with pytest.warns(UserWarning, match="zero-element"):
        assert init.kaiming_uniform_(empty) is empty


@pytest.mark.parametrize("call, error, message", [
    (lambda: init.uniform_(np.zeros(3, dtype=np.int64)), TypeError,
     "tensor: expected float32 or float64 data.*got dtype int64"),
    (lambda: init.normal_([0.0, 1.0]), TypeError,
     "tensor: expected a Tensor, Parameter or NumPy array, got list"),
    (lambda: init.uniform_(weight((2,)), 1.0, 0.0), ValueError,
     "b: expected an upper bound >= a = 1.0, got 0.0"),
    (lambda: init.normal_(weight((2,)), std=-1), ValueError,
     "std: expected a standard deviation >= 0, got -1.0"),
    (lambda: init.kaiming_uniform_(weight((2, 2)), mode="fan_avg"), ValueError,
     "mode: expected 'fan_in' or 'fan_out', got 'fan_avg'"),
    (lambda: init.kaiming_normal_(weight((2, 2)), nonlinearity="gelu"), ValueError,
     "nonlinearity: .*'gelu'"),
    (lambda: init.uniform_(weight((2,)), generator=np.random.RandomState(0)), TypeError,
     "generator: expected a numpy.random.Generator or None, got RandomState"),
    (lambda: init.constant_(weight((2,)), "1"), TypeError, "val: expected a real number, got str"),
    (lambda: init.xavier_uniform_(weight((3,))), ValueError, "at least 2 dimensions"),
])
def test_errors_name_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
