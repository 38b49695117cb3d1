"""Batch-norm kernels (cnn/_ext/norm.pyx) against NumPy references of their formulas."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnn
from cnn import _ext


@st.composite
def channel_arrays(draw):
    n, c, s = draw(st.integers(1, 5)), draw(st.integers(1, 20)), draw(st.integers(1, 40))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    offset = draw(st.sampled_from([0.0, 100.0]))  # a large mean must cost no precision
    x = (rng.standard_normal((n, c, s)) + offset).astype(dtype)
    grad = rng.standard_normal((n, c, s)).astype(dtype)
    return x, grad, rng


def tolerance(x, *coefficients):
    """float32 rounds x - mean at x's magnitude: the absolute tolerance scales with it."""
    if x.dtype == np.float64:
        return dict(rtol=1e-12, atol=1e-12)
    scale = max([1.0] + [float(np.abs(value).max()) for value in coefficients])
    return dict(rtol=1e-5, atol=1e-5 + 1e-6 * float(np.abs(x).max()) * scale)


@given(channel_arrays())
def test_statistics_are_each_channels_mean_and_biased_variance(isa, arrays):
    x, _, _ = arrays
    mean, var = np.empty(x.shape[1]), np.empty(x.shape[1])
    _ext.backend.norm.statistics(x, mean, var, cnn.get_num_threads())
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(mean, x64.mean(axis=(0, 2)), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(var, x64.var(axis=(0, 2)), rtol=1e-10, atol=1e-12)


@given(channel_arrays(), st.booleans())
def test_normalize_is_the_affine_map_of_the_centred_values(isa, arrays, relu):
    x, _, rng = arrays
    c = x.shape[1]
    mean, scale, shift = rng.standard_normal((3, c))
    out = np.empty_like(x)
    _ext.backend.norm.normalize(x, mean, scale, shift, out, relu, cnn.get_num_threads())
    expected = (x.astype(np.float64) - mean[:, None]) * scale[:, None] + shift[:, None]
    if relu:
        expected = np.maximum(expected, 0)
    np.testing.assert_allclose(out, expected, **tolerance(x, scale))


def test_normalize_with_relu_keeps_a_nan(isa):
    x = np.array([[[np.nan, -1.0, 2.0]]], np.float32)
    out = np.empty_like(x)
    _ext.backend.norm.normalize(x, np.zeros(1), np.ones(1), np.zeros(1), out, True, 1)
    assert np.isnan(out[0, 0, 0]) and out[0, 0, 1] == 0 and out[0, 0, 2] == 2


@given(channel_arrays())
def test_gradient_sums_and_input_gradient_match_their_formulas(isa, arrays):
    x, grad, rng = arrays
    c = x.shape[1]
    mean = x.astype(np.float64).mean(axis=(0, 2))
    sum_grad, sum_grad_x = np.empty(c), np.empty(c)
    threads = cnn.get_num_threads()
    _ext.backend.norm.gradient_sums(grad, x, mean, sum_grad, sum_grad_x, threads)
    g64, centred = grad.astype(np.float64), x.astype(np.float64) - mean[:, None]
    np.testing.assert_allclose(sum_grad, g64.sum(axis=(0, 2)), rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(sum_grad_x, (g64 * centred).sum(axis=(0, 2)), rtol=1e-10,
                               atol=1e-9)
    a, b, k = rng.standard_normal((3, c))
    out = np.empty_like(x)
    _ext.backend.norm.input_gradient(grad, x, mean, a, b, k, out, threads)
    expected = a[:, None] * g64 + b[:, None] * centred + k[:, None]
    np.testing.assert_allclose(out, expected, **tolerance(x, a, b))


def test_statistics_lose_nothing_to_a_mean_far_from_zero():
    # A mean 1e8 times the spread: E[x^2] - E[x]^2 in double precision would lose the variance
    # entirely (its terms are 1e16, their rounding about 1); deviations from a value of the
    # channel keep it.
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 2, 500)) + 1e8
    naive = (x**2).mean(axis=(0, 2)) - x.mean(axis=(0, 2)) ** 2
    assert np.abs(naive / x.var(axis=(0, 2)) - 1).max() > 1e-3  # the trap is real
    mean, var = np.empty(2), np.empty(2)
    _ext.backend.norm.statistics(x, mean, var, 1)
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=1e-15)
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), rtol=1e-9)


def test_statistics_with_an_outlier_first_value_stay_within_their_bound():
    # The deviations are from the channel's first value K: the relative error of the variance
    # is about eps * (K - mean)**2 / var, at most eps times the count.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((4, 2, 500)) * 1e-3
    x[0, :, 0] = [1.0, -1.0]
    mean, var = np.empty(2), np.empty(2)
    _ext.backend.norm.statistics(x, mean, var, 1)
    # the mean is K + (the mean deviation): rounded at K's magnitude
    np.testing.assert_allclose(mean, x.mean(axis=(0, 2)), rtol=0, atol=4 * np.finfo(float).eps)
    # (K - mean)**2 / var is about 2000 here: a relative error of a few 2000 eps
    np.testing.assert_allclose(var, x.var(axis=(0, 2)), rtol=2e4 * np.finfo(float).eps)


@pytest.mark.parametrize("bad, expected_mean", [(np.inf, np.inf), (np.nan, np.nan)])
@pytest.mark.parametrize("first", [True, False])
def test_statistics_of_a_channel_with_an_infinity_or_a_nan(bad, expected_mean, first):
    x = np.ones((2, 2, 9), np.float32)
    x[0 if first else 1, 1, 0 if first else 5] = bad
    mean, var = np.empty(2), np.empty(2)
    _ext.backend.norm.statistics(x, mean, var, 1)
    assert mean[0] == 1 and var[0] == 0  # the other channel is untouched
    np.testing.assert_equal(mean[1], expected_mean)
    assert np.isnan(var[1])  # as numpy's: inf - inf


def test_statistics_of_values_whose_squares_overflow_are_infinite(isa):
    # as numpy's, at every instruction-set level (fused or not, the subtraction is not reached)
    x = np.array([[[1e200, -1e200, 3e199]]])
    mean, var = np.empty(1), np.empty(1)
    _ext.backend.norm.statistics(x, mean, var, 1)
    assert var[0] == np.inf and np.isfinite(mean[0])


def _relu_masked(grad, out):
    """relu's backward: the gradient where the ReLU's output is > 0 or NaN, else +0."""
    return np.where((out > 0) | np.isnan(out), grad, np.zeros_like(grad))


@given(channel_arrays(), st.booleans())
def test_a_fused_relu_masks_the_sums_as_its_output_would(isa, arrays, near_zero):
    """With relu_scale and relu_shift the kernels recompute normalize's ReLU output from x: the
    sums and the input gradient are those of the gradient masked by that output, bit for bit,
    also where the affine map gives exactly zero or a value next to it."""
    x, grad, rng = arrays
    c = x.shape[1]
    mean = x.astype(np.float64).mean(axis=(0, 2))
    scale, shift = rng.standard_normal((2, c))
    if near_zero:
        # x where (x - mean) * scale + shift is 0 before rounding, and the values next to it:
        # where a fused multiply-add and a multiply then an add round differently.
        root = (mean - shift / scale).astype(x.dtype)[None, :, None]
        steps = rng.integers(-3, 4, x.shape)
        x = np.broadcast_to(root, x.shape).copy()
        for _ in range(3):
            x = np.where(steps > 0, np.nextafter(x, np.inf), np.where(steps < 0, np.nextafter(
                x, -np.inf), x)).astype(x.dtype)
            steps = steps - np.sign(steps)
        m, a, b = (v.astype(x.dtype)[None, :, None] for v in (mean, scale, shift))
        # At the boundary: within rounding of zero (a few units in the last place of x,
        # scaled; 1e-3 of the shift alone failed for x near 99 in float32).
        closest = np.abs((x - m) * a + b).min()
        assert closest < 1e-3 * np.abs(b).max() + 4 * np.spacing(np.abs(x).max()) * np.abs(a).max()
    out = np.empty_like(x)
    _ext.backend.norm.normalize(x, mean, scale, shift, out, True, 1)
    masked = _relu_masked(grad, out)
    threads = cnn.get_num_threads()
    fused, plain = (np.empty(c), np.empty(c)), (np.empty(c), np.empty(c))
    _ext.backend.norm.gradient_sums(grad, x, mean, *fused, threads, scale, shift)
    _ext.backend.norm.gradient_sums(masked, x, mean, *plain, threads)
    assert fused[0].tobytes() == plain[0].tobytes()
    assert fused[1].tobytes() == plain[1].tobytes()
    a, b, k = rng.standard_normal((3, c))
    fused_dx, plain_dx = np.empty_like(x), np.empty_like(x)
    _ext.backend.norm.input_gradient(grad, x, mean, a, b, k, fused_dx, threads, scale, shift)
    _ext.backend.norm.input_gradient(masked, x, mean, a, b, k, plain_dx, threads)
    assert fused_dx.tobytes() == plain_dx.tobytes()


def test_a_fused_relu_passes_the_gradient_of_a_nan_output():
    # relu keeps a NaN, and its backward passes the gradient there (torch's threshold_backward)
    x = np.array([[[np.nan, -1.0, 2.0, 0.5]]], np.float32)
    grad = np.full_like(x, 3.0)
    sums = np.empty(1), np.empty(1)
    _ext.backend.norm.gradient_sums(grad, x, np.zeros(1), *sums, 1, np.ones(1), np.zeros(1))
    assert sums[0][0] == 9.0  # the NaN's, 2.0's and 0.5's; not -1.0's
    dx = np.empty_like(x)
    _ext.backend.norm.input_gradient(grad, x, np.zeros(1), np.ones(1), np.zeros(1), np.zeros(1),
                                     dx, 1, np.ones(1), np.zeros(1))
    # b = 0, but b * (x - mean) is NaN where x is: the input gradient keeps that NaN
    np.testing.assert_array_equal(dx, [[[np.nan, 0.0, 3.0, 3.0]]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("channels, size", [(16, 300), (7, 700), (1, 5000)])
def test_bit_identical_at_one_and_two_threads(isa, threads, rng, dtype, channels, size):
    # Enough values for the team to share the channels: an even split, an odd one, and one
    # channel (one range, whatever the thread count).
    x = rng.standard_normal((8, channels, size)).astype(dtype)
    grad = rng.standard_normal(x.shape).astype(dtype)
    norm = _ext.backend.norm
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        mean, var = np.empty(channels), np.empty(channels)
        norm.statistics(x, mean, var, n)
        sums = np.empty(channels), np.empty(channels)
        norm.gradient_sums(grad, x, mean, *sums, n)
        masked = np.empty(channels), np.empty(channels)
        norm.gradient_sums(grad, x, mean, *masked, n, np.ones(channels), -mean)
        out, dx = np.empty_like(x), np.empty_like(x)
        norm.normalize(x, mean, 1 / np.sqrt(var + 1e-5), np.zeros(channels), out, True, n)
        norm.input_gradient(grad, x, mean, *sums, mean, dx, n, np.ones(channels), -mean)
        results.append([a.tobytes() for a in (mean, var, *sums, *masked, out, dx)])
    assert results[0] == results[1]
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(axis=(0, 2)), rtol=1e-6,
                               atol=1e-6)
    np.testing.assert_allclose(var, x.astype(np.float64).var(axis=(0, 2)), rtol=1e-5)


def _sums_then_input_gradient(grad, x, mean, a, inv_std, batch_statistics, threads, relu):
    """norm.backward's definition: gradient_sums, the coefficients in NumPy (as BatchNorm's
    backward made them before the kernel did), then input_gradient."""
    c = x.shape[1]
    sums = np.empty(c), np.empty(c)
    _ext.backend.norm.gradient_sums(grad, x, mean, *sums, threads, *relu)
    b, k = np.zeros(c), np.zeros(c)
    count = x.shape[0] * x.shape[2]
    if batch_statistics and count:
        b = -a * inv_std * inv_std * sums[1] / count
        k = -a * sums[0] / count
    dx = np.empty_like(x)
    _ext.backend.norm.input_gradient(grad, x, mean, a, b, k, dx, threads, *relu)
    return sums[0], sums[1], dx


def _backward(grad, x, mean, a, inv_std, batch_statistics, threads, relu):
    c = x.shape[1]
    sums = np.empty(c), np.empty(c)
    dx = np.empty_like(x)
    _ext.backend.norm.backward(grad, x, mean, a, inv_std, batch_statistics, *sums, dx, threads,
                               *relu)
    return sums[0], sums[1], dx


@given(channel_arrays(), st.booleans(), st.booleans())
def test_backward_gives_the_bits_of_the_sums_then_the_input_gradient(isa, arrays, relu,
                                                                     batch_statistics):
    x, grad, rng = arrays
    c = x.shape[1]
    mean = x.astype(np.float64).mean(axis=(0, 2))
    inv_std = rng.random(c) + 0.5
    a = inv_std * rng.standard_normal(c)
    relu_map = (rng.random(c) + 0.5, rng.standard_normal(c)) if relu else ()
    threads = cnn.get_num_threads()
    expected = _sums_then_input_gradient(grad, x, mean, a, inv_std, batch_statistics, threads,
                                         relu_map)
    got = _backward(grad, x, mean, a, inv_std, batch_statistics, threads, relu_map)
    for one, two in zip(got, expected):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("dtype, shape", [(np.float32, (8, 40, 2048)),
                                          (np.float64, (8, 13, 4096)), (np.float32, (3, 5, 7))])
def test_backward_in_channel_groups_is_bit_identical_at_one_and_two_threads(isa, threads, rng,
                                                                            dtype, shape):
    # Channels of 128 KB and 512 KB of gradient and input: groups of 8 and 2 channels, so that
    # each thread's range runs several groups (and a last, partial one); a small layer, one.
    x = rng.standard_normal(shape).astype(dtype)
    grad = rng.standard_normal(shape).astype(dtype)
    c = shape[1]
    mean = x.astype(np.float64).mean(axis=(0, 2))
    inv_std = rng.random(c) + 0.5
    a = inv_std * rng.standard_normal(c)
    relu_map = (np.ones(c), -mean)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        got = _backward(grad, x, mean, a, inv_std, True, n, relu_map)
        expected = _sums_then_input_gradient(grad, x, mean, a, inv_std, True, n, relu_map)
        assert all(one.tobytes() == two.tobytes() for one, two in zip(got, expected))
        results.append([array.tobytes() for array in got])
    assert results[0] == results[1]


def test_backward_of_no_values_gives_zero_sums(isa):
    x = np.empty((0, 3, 4), np.float32)
    sums = np.full(3, 7.0), np.full(3, 7.0)
    _ext.backend.norm.backward(x, x, np.zeros(3), np.ones(3), np.ones(3), True, *sums,
                               np.empty_like(x), 2)
    assert not sums[0].any() and not sums[1].any()


@pytest.mark.parametrize("call, words", [
    (lambda: _ext.backend.norm.statistics(np.ones((2, 3, 4)), np.empty(2), np.empty(3), 1),
     "mean"),
    (lambda: _ext.backend.norm.statistics(np.ones((0, 3, 4)), np.empty(3), np.empty(3), 1),
     "at least one value"),
    (lambda: _ext.backend.norm.normalize(np.ones((2, 3, 4)), np.zeros(3), np.ones(3),
                                         np.zeros(3), np.empty((2, 3, 5)), False, 1), "out"),
    (lambda: _ext.backend.norm.gradient_sums(np.ones((2, 3, 5)), np.ones((2, 3, 4)),
                                             np.zeros(3), np.empty(3), np.empty(3), 1), "grad"),
    (lambda: _ext.backend.norm.input_gradient(np.ones((2, 3, 4)), np.ones((2, 3, 4)),
                                              np.zeros(3), np.ones(2), np.ones(3), np.ones(3),
                                              np.empty((2, 3, 4)), 1), "a"),
    (lambda: _ext.backend.norm.gradient_sums(np.ones((2, 3, 4)), np.ones((2, 3, 4)),
                                             np.zeros(3), np.empty(3), np.empty(3), 1,
                                             np.ones(3)), "relu_shift"),
    (lambda: _ext.backend.norm.input_gradient(np.ones((2, 3, 4)), np.ones((2, 3, 4)),
                                              np.zeros(3), np.ones(3), np.ones(3), np.ones(3),
                                              np.empty((2, 3, 4)), 1, np.ones(3), np.ones(2)),
     "relu_shift"),
    (lambda: _ext.backend.norm.backward(np.ones((2, 3, 4)), np.ones((2, 3, 4)), np.zeros(3),
                                        np.ones(3), np.ones(2), True, np.empty(3), np.empty(3),
                                        np.empty((2, 3, 4)), 1), "inv_std"),
    (lambda: _ext.backend.norm.backward(np.ones((2, 3, 4)), np.ones((2, 3, 4)), np.zeros(3),
                                        np.ones(3), np.ones(3), True, np.empty(3), np.empty(3),
                                        np.empty((2, 3, 5)), 1), "out"),
    (lambda: _ext.backend.norm.evaluation_coefficients(np.zeros(3), np.ones(2), None, None,
                                                       1e-5, np.empty((4, 3))), "running_var"),
    (lambda: _ext.backend.norm.evaluation_coefficients(np.zeros(3), np.ones(3), np.ones(3),
                                                       np.ones(4), 1e-5, np.empty((4, 3))),
     "bias"),
    (lambda: _ext.backend.norm.evaluation_coefficients(np.zeros(3), np.ones(3), None, None,
                                                       1e-5, np.empty((3, 3))), "4 rows"),
])
def test_the_kernels_refuse_arrays_that_do_not_fit(call, words):
    with pytest.raises(ValueError, match=words):
        call()


def test_the_kernels_take_read_only_coefficients(isa, rng):
    # The per-channel inputs are const: read-only arrays work (once a loop over a tuple of them
    # made Cython pick a writable type for some builds, depending on its hash seed).
    x = rng.standard_normal((2, 3, 5))
    grad = rng.standard_normal(x.shape)
    mean, a, b, k = (np.ascontiguousarray(v) for v in rng.standard_normal((4, 3)))
    for array in (mean, a, b, k):
        array.flags.writeable = False
    out, sums = np.empty_like(x), (np.empty(3), np.empty(3))
    _ext.backend.norm.normalize(x, mean, a, b, out, True, 1)
    _ext.backend.norm.gradient_sums(grad, x, mean, *sums, 1, a, b)
    _ext.backend.norm.input_gradient(grad, x, mean, a, b, k, out, 1, a, b)
    np.testing.assert_allclose(sums[0], _relu_masked(grad, (x - mean[:, None]) * a[:, None]
                                                     + b[:, None]).sum(axis=(0, 2)),
                               rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("with_weight, with_bias", [(True, True), (False, False), (False, True)])
def test_evaluation_coefficients_are_numpys_formula_bit_for_bit(isa, rng, dtype, with_weight,
                                                                with_bias):
    # The running statistics in double precision: mean, 1 / sqrt(var + eps) times the weight,
    # the bias, and 1 / sqrt(var + eps) itself, each rounded once as NumPy rounds it.
    c = 37
    mean, weight, bias = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    var = (rng.random(c) * 3).astype(dtype)
    var[0] = 0  # eps alone
    out = np.empty((4, c))
    _ext.backend.norm.evaluation_coefficients(mean, var, weight if with_weight else None,
                                              bias if with_bias else None, 1e-5, out)
    inv_std = 1 / np.sqrt(var.astype(np.float64) + 1e-5)
    expected = [mean.astype(np.float64), inv_std * weight if with_weight else inv_std,
                bias.astype(np.float64) if with_bias else np.zeros(c), inv_std]
    assert out.tobytes() == np.stack(expected).tobytes()
