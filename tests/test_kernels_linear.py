"""The single-row linear kernel (cnn/_ext/linear.pyx, linear_rows.h) against a NumPy reference,
its fixed order of summation, its checks, and the layers' aligned parameters."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnn
import cnn.nn.functional as F
from cnn import _aligned, _ext
from cnn.nn.functional.linear import Linear


def affine_rows(x, weight, bias, relu, threads=None):
    out = np.full((x.shape[0], weight.shape[0]), np.nan,
                  dtype=x.dtype if x.dtype.kind == "f" else np.float64)
    _ext.backend.linear.affine_rows(x, weight, bias, out, relu,
                                    cnn.get_num_threads() if threads is None else threads)
    return out


def reference(x, weight, bias, relu):
    """The same values in float64, then the ReLU rule of every kernel (NaN kept, -0 -> +0)."""
    out = x.astype(np.float64) @ weight.T.astype(np.float64)
    if bias is not None:
        out = out + bias
    return np.where(out > 0, out, 0) + 0 if relu else out


def arrays(rng, m, k, n, dtype, with_bias=True):
    x = rng.standard_normal((m, k)).astype(dtype)
    weight = rng.standard_normal((n, k)).astype(dtype)
    bias = rng.standard_normal(n).astype(dtype) if with_bias else None
    return x, weight, bias


@given(st.integers(1, 5), st.integers(0, 300), st.integers(0, 40), st.booleans(), st.booleans(),
       st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31))
def test_affine_rows_is_the_product_plus_bias_through_relu(isa, m, k, n, with_bias, relu, dtype,
                                                          seed):
    # Every K modulo the 64-value iteration and the register width: whole iterations, whole
    # registers after them, and a last partial register (zero-padded lanes).
    x, weight, bias = arrays(np.random.default_rng(seed), m, k, n, dtype, with_bias)
    out = affine_rows(x, weight, bias, relu)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(out, reference(x, weight, bias, relu), rtol=tolerance,
                               atol=tolerance * max(1, k) ** 0.5)
    if relu:
        assert not np.signbit(out).any()


def test_no_input_features_give_the_bias(isa):
    bias = np.array([1.5, -2.0, -0.0, np.nan], np.float32)
    out = affine_rows(np.empty((1, 0), np.float32), np.empty((4, 0), np.float32), bias, False)
    np.testing.assert_array_equal(out, [[1.5, -2.0, 0.0, np.nan]])
    relu = affine_rows(np.empty((1, 0), np.float32), np.empty((4, 0), np.float32), bias, True)
    np.testing.assert_array_equal(relu, [[1.5, 0.0, 0.0, np.nan]])
    assert not np.signbit(relu[0, 2])
    np.testing.assert_array_equal(
        affine_rows(np.empty((2, 0)), np.empty((3, 0)), None, False), np.zeros((2, 3)))


def test_the_relu_rule_keeps_nan_and_makes_negative_zero_positive(isa):
    x = np.array([[1.0, np.nan]], np.float32)
    weight = np.array([[-0.0, 0.0], [1.0, 0.0], [-1.0, 0.0]], np.float32)
    out = affine_rows(x, weight, None, True)
    assert np.isnan(out[0, 0]) and np.isnan(out[0, 1]) and np.isnan(out[0, 2])
    out = affine_rows(np.array([[1.0, 0.0]], np.float32), weight, None, True)
    np.testing.assert_array_equal(out, [[0.0, 1.0, 0.0]])
    assert not np.signbit(out).any()


def test_a_value_does_not_depend_on_threads_neighbours_or_addresses(isa, rng):
    # 3 x 1000 x 700: above the work that runs on one thread, so the teams share the rows.
    x, weight, bias = arrays(rng, 3, 1000, 700, np.float32)
    first = affine_rows(x, weight, bias, True, threads=1)
    for threads in (2, 3, 4):
        assert affine_rows(x, weight, bias, True, threads).tobytes() == first.tobytes()
    # Each row alone, any run of output features alone, and arrays at other addresses.
    for m in range(3):
        assert affine_rows(x[m:m + 1], weight, bias, True).tobytes() == first[m].tobytes()
    assert affine_rows(x, weight[5:12], bias[5:12], True).tobytes() == \
        np.ascontiguousarray(first[:, 5:12]).tobytes()
    for shift in (1, 3, 8):
        moved = np.empty(weight.size + shift, np.float32)[shift:].reshape(weight.shape)
        moved[...] = weight
        moved_x = np.empty(x.size + shift, np.float32)[shift:].reshape(x.shape)
        moved_x[...] = x
        assert affine_rows(moved_x, moved, bias, True, 2).tobytes() == first.tobytes()


@pytest.mark.parametrize("k", [1, 7, 20, 63, 65, 100])
def test_a_rows_last_values_read_whole_never_take_in_the_next_rows(isa, rng, k):
    # A row's last (fewer than 64) values are loaded in whole registers, the lanes past the
    # row masked: the next row's infinities and NaNs, times the zeros padding x, must not
    # turn the row's value into NaN.
    x, weight, bias = arrays(rng, 1, k, 9, np.float32)
    weight[1::2] = np.inf
    weight[2::4] = np.nan
    out = affine_rows(x, weight, bias, False)
    for n in range(0, 9, 4):
        alone = affine_rows(x, np.ascontiguousarray(weight[n:n + 1]), bias[n:n + 1], False)
        assert np.isfinite(out[0, n]) and out[0, n] == alone[0, 0]


def test_the_bits_are_those_of_a_fixed_order_of_summation(isa):
    # Values whose sum depends on the order: 1e8 + 1 is 1e8 in float32, so the 1.0 survives
    # only when 1e8 and -1e8 cancel before it joins them. Value k goes to lane k % 16 of
    # accumulator (k // 16) % 4: k = 0 and k = 16 (lane 0 of accumulators 0 and 1) meet in
    # (a0 + a1), before the lanes are added, so the 1.0 at k = 1 (lane 1) survives; one running
    # sum over k (BLAS's dot, for example) would lose it.
    x = np.zeros((1, 64), np.float32)
    x[0, [0, 16, 1]] = [1e8, -1e8, 1.0]
    weight = np.ones((1, 64), np.float32)
    assert affine_rows(x, weight, None, False)[0, 0] == 1.0
    # Lane 0 and lane 8 of one accumulator meet in the halves' first sum; the 1.0 in lane 1
    # joins later.
    x = np.zeros((1, 64), np.float32)
    x[0, [0, 8, 1]] = [1e8, -1e8, 1.0]
    assert affine_rows(x, weight, None, False)[0, 0] == 1.0
    # Lane 0 of accumulators 0 and 2 meet only after (a0 + a1) and (a2 + a3): a 1.0 in
    # accumulator 1's lane 0 is added to 1e8 first and lost (1e8 + 1 == 1e8 in float32).
    x = np.zeros((1, 64), np.float32)
    x[0, [0, 32, 16]] = [1e8, -1e8, 1.0]
    assert affine_rows(x, weight, None, False)[0, 0] == 0.0


@pytest.mark.parametrize("call, error, words", [
    (lambda: affine_rows(np.ones((1, 3)), np.ones((2, 4)), None, False), ValueError, "weight"),
    (lambda: affine_rows(np.ones((1, 3)), np.ones((2, 3)), np.ones(3), False), ValueError,
     "bias"),
    (lambda: _ext.backend.linear.affine_rows(np.ones((1, 3)), np.ones((2, 3)), None,
                                             np.empty((1, 3)), False, 1), ValueError, "out"),
    (lambda: _ext.backend.linear.affine_rows(np.ones((1, 3)), np.ones((2, 3)), None,
                                             np.empty((2, 2)), False, 1), ValueError, "out"),
    (lambda: affine_rows(np.ones((4, 3))[::2], np.ones((2, 3)), None, False), ValueError, "x"),
    (lambda: affine_rows(np.ones((1, 3)), np.ones((3, 2)).T, None, False), ValueError,
     "weight"),
    (lambda: affine_rows(np.ones(3), np.ones((2, 3)), None, False), TypeError, "x"),
    (lambda: affine_rows(np.ones((1, 3), np.int64), np.ones((2, 3)), None, False), TypeError,
     "x"),
    (lambda: affine_rows(np.ones((1, 3)), np.ones((2, 3), np.float32), None, False), TypeError,
     "weight"),
    (lambda: affine_rows(np.ones((1, 3)), np.ones((2, 3)), np.ones(2, np.float32), False),
     TypeError, "bias"),
    (lambda: affine_rows(np.ones((1, 3)), np.ones((2, 3)).astype(">f8"), None, False),
     TypeError, "weight"),
    (lambda: _ext.backend.linear.affine_rows([[1.0, 2.0]], np.ones((2, 2)), None,
                                             np.empty((1, 2)), False, 1), ValueError, "x"),
])
def test_the_kernel_refuses_arrays_that_do_not_fit(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_read_only_inputs_work_and_a_read_only_out_is_refused(rng):
    x, weight, bias = arrays(rng, 1, 20, 7, np.float32)
    for array in (x, weight, bias):
        array.flags.writeable = False
    expected = reference(x, weight, bias, False)
    np.testing.assert_allclose(affine_rows(x, weight, bias, False), expected, rtol=1e-5,
                               atol=1e-5)
    out = np.empty((1, 7), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out"):
        _ext.backend.linear.affine_rows(x, weight, bias, out, False, 1)


def test_a_batch_1_linear_layer_runs_the_kernel_in_eager_and_compiled_forwards(rng):
    # F.linear at batch 1 gives the kernel's bits (a mutation that sends one row to BLAS
    # instead makes this differ in the last bits for most shapes); its folded ReLU (compiled)
    # and a separate ReLU (eager) give the same bits.
    layer = cnn.nn.Linear(300, 50)
    x = rng.standard_normal((1, 300)).astype(np.float32)
    kernel = affine_rows(x, layer.weight.data.numpy(), layer.bias.data.numpy(), False)
    with cnn.no_grad():
        eager = F.linear(cnn.from_numpy(x), layer.weight, layer.bias).numpy()
        model = cnn.nn.Sequential(layer, cnn.nn.ReLU())
        compiled = cnn.compile(model)
        compiled(cnn.from_numpy(x))
        replayed = compiled(cnn.from_numpy(x)).numpy()
    assert eager.tobytes() == kernel.tobytes()
    assert replayed.tobytes() == np.maximum(kernel, 0).tobytes()
    folded = Linear.inference(1, x, layer.weight.data.numpy(), layer.bias.data.numpy(), True)
    assert folded.tobytes() == np.maximum(kernel, 0).tobytes()


def test_a_batch_1_linear_layer_agrees_with_torch_and_its_gradients_with_finite_differences():
    torch = pytest.importorskip("torch")
    cnn.manual_seed(3)
    layer = cnn.nn.Linear(130, 20)
    x = np.random.default_rng(3).standard_normal((1, 130)).astype(np.float32)
    expected = torch.nn.functional.linear(torch.from_numpy(x),
                                          torch.from_numpy(layer.weight.data.numpy()),
                                          torch.from_numpy(layer.bias.data.numpy())).numpy()
    with cnn.no_grad():
        np.testing.assert_allclose(layer(cnn.from_numpy(x)).numpy(), expected, rtol=1e-4,
                                   atol=1e-5)
    layer.double()
    inputs = cnn.tensor(x.astype(np.float64), requires_grad=True)
    assert cnn.autograd.gradcheck(lambda t: F.relu(layer(t)), (inputs,), eps=1e-6, atol=1e-7,
                                  rtol=1e-5)


@pytest.mark.parametrize("shape", [(0,), (3,), (7, 5), (120, 400), (16, 6, 5, 5), (2, 0, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_aligned_arrays_start_on_a_64_byte_boundary(shape, dtype):
    for _ in range(5):  # fresh blocks land at various addresses
        array = _aligned.empty(shape, dtype)
        assert array.shape == shape and array.dtype == dtype and array.flags.c_contiguous
        assert array.ctypes.data % 64 == 0 or array.size == 0
        array[...] = 1
    source = np.arange(35, dtype=np.float32).reshape(7, 5)
    converted = _aligned.converted(source, dtype)
    assert converted.ctypes.data % 64 == 0 and converted.dtype == dtype
    np.testing.assert_array_equal(converted, source)


def test_layers_allocate_their_parameters_aligned_and_keep_them_so_through_to():
    model = cnn.nn.Sequential(cnn.nn.Conv2d(3, 5, 3), cnn.nn.Flatten(), cnn.nn.Linear(7, 9))
    for convert, dtype in ((model.float, np.float32), (model.double, np.float64),
                           (model.float, np.float32)):
        convert()
        for name, param in model.named_parameters():
            assert param.dtype == dtype and param.data.numpy().ctypes.data % 64 == 0, name
