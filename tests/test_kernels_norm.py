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


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_at_one_and_two_threads(isa, threads, rng, dtype):
    x = rng.standard_normal((8, 16, 300)).astype(dtype)
    grad = rng.standard_normal(x.shape).astype(dtype)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        mean, var = np.empty(16), np.empty(16)
        _ext.backend.norm.statistics(x, mean, var, n)
        sums = np.empty(16), np.empty(16)
        _ext.backend.norm.gradient_sums(grad, x, mean, *sums, n)
        results.append([mean.tobytes(), var.tobytes(), sums[0].tobytes(), sums[1].tobytes()])
    assert results[0] == results[1]


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
])
def test_the_kernels_refuse_arrays_that_do_not_fit(call, words):
    with pytest.raises(ValueError, match=words):
        call()
