"""Element-wise kernels (cnn/_ext/elementwise.pyx) against NumPy references."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import cnn
from cnn import _ext

VALUES = st.floats(allow_nan=True, allow_infinity=True, width=32)


@given(hnp.arrays(st.sampled_from([np.float32, np.float64]), st.integers(0, 3000),
                  elements=VALUES))
def test_relu_is_numpys_maximum_with_zero(isa, x):
    out = np.empty_like(x)
    _ext.backend.elementwise.relu(x, out, cnn.get_num_threads())
    np.testing.assert_array_equal(out, np.maximum(x, 0))


@given(hnp.arrays(np.float32, st.integers(0, 3000), elements=VALUES),
       hnp.arrays(np.float32, 3000, elements=VALUES))
def test_relu_backward_passes_the_gradient_where_the_output_is_not_at_most_zero(isa, out,
                                                                                 grad):
    grad = grad[:out.size]
    grad_input = np.empty_like(grad)
    _ext.backend.elementwise.relu_backward(grad, out, grad_input, cnn.get_num_threads())
    np.testing.assert_array_equal(grad_input, np.where(out <= 0, 0, grad))


@given(hnp.arrays(st.sampled_from([np.float32, np.float64]),
                  st.tuples(st.integers(0, 300), st.integers(0, 130)), elements=VALUES),
       st.booleans(), st.booleans(), st.integers(0, 2**31))
def test_bias_relu_is_numpys_sum_then_maximum_with_zero(isa, out, with_bias, relu, seed):
    bias = (np.random.default_rng(seed).standard_normal(out.shape[1]).astype(out.dtype)
            if with_bias else None)
    expected = out + bias if with_bias else out.copy()
    if relu:
        expected = np.maximum(expected, 0)  # NaN kept, -0 -> +0 as relu's rule
    _ext.backend.elementwise.bias_relu(out, bias, relu, cnn.get_num_threads())
    assert out.tobytes() == (expected + 0 if relu else expected).tobytes()


def test_bit_identical_at_one_and_two_threads(isa, threads, rng):
    x = rng.standard_normal(200_001).astype(np.float32)
    results = []
    for n in (1, 2):
        out, grad_input = np.empty_like(x), np.empty_like(x)
        _ext.backend.elementwise.relu(x, out, n)
        _ext.backend.elementwise.relu_backward(x, out, grad_input, n)
        rows = x.reshape(-1, 3).copy()
        _ext.backend.elementwise.bias_relu(rows, x[:3], True, n)
        results.append(out.tobytes() + grad_input.tobytes() + rows.tobytes())
    assert results[0] == results[1]


@pytest.mark.parametrize("call, words", [
    (lambda: _ext.backend.elementwise.relu(np.ones(3), np.empty(4), 1), "out"),
    (lambda: _ext.backend.elementwise.relu_backward(np.ones(3), np.ones(2), np.empty(3), 1),
     "out"),
    (lambda: _ext.backend.elementwise.relu_backward(np.ones(3), np.ones(3), np.empty(2), 1),
     "grad_input"),
    (lambda: _ext.backend.elementwise.bias_relu(np.ones((2, 3)), np.ones(2), True, 1), "bias"),
])
def test_the_kernels_refuse_arrays_that_do_not_fit(call, words):
    with pytest.raises(ValueError, match=words):
        call()
