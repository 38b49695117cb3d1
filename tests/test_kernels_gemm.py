"""The layers' matrix products (cnn/_ext/gemm.py) against NumPy."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnn
from cnn import _blas
from cnn._ext import _gemm
from cnn._ext import gemm


@st.composite
def products(draw):
    m, n, k = (draw(st.integers(0, 70)) for _ in range(3))
    transpose_a, transpose_b = draw(st.booleans()), draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    return a, b, transpose_a, transpose_b


def _reference(a, b, transpose_a, transpose_b):
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    return (a64.T if transpose_a else a64) @ (b64.T if transpose_b else b64)


@given(products())
def test_matches_numpy(threads, product):
    a, b, transpose_a, transpose_b = product
    tolerance = dict(rtol=1e-5, atol=1e-4) if a.dtype == np.float32 else dict(rtol=1e-12,
                                                                                atol=1e-12)
    for n in (1, 2):
        cnn.set_num_threads(n)
        out = gemm.matmul(a, b, transpose_a, transpose_b, n)
        assert out.dtype == a.dtype
        np.testing.assert_allclose(out, _reference(*product), **tolerance)


@pytest.mark.parametrize("transpose_a, transpose_b", [(False, True), (True, False),
                                                      (False, False)])
def test_bit_identical_at_one_and_two_threads(threads, rng, transpose_a, transpose_b):
    # LeNet-5's first fully connected layer at batch 256: forward, weight and input gradients.
    a = rng.standard_normal((400, 256) if transpose_a else (256, 400)).astype(np.float32)
    b = rng.standard_normal((120, 400) if transpose_b else (400, 120)).astype(np.float32)
    assert _gemm.column_blocks(256, 120, 400) == 2  # the product is shared out
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        results.append(gemm.matmul(a, b, transpose_a, transpose_b, n).tobytes())
    assert results[0] == results[1]


def test_without_a_known_blas_numpy_computes_the_product(monkeypatch, rng):
    a, b = rng.standard_normal((5, 3)), rng.standard_normal((4, 3))
    monkeypatch.setattr(_blas, "gemm_address", lambda dtype: None)
    np.testing.assert_allclose(gemm.matmul(a, b, transpose_b=True), a @ b.T, rtol=1e-12)


@pytest.mark.parametrize("call, error, words", [
    (lambda: gemm.matmul(np.ones((2, 3)), np.ones((4, 2))), ValueError, "b"),
    (lambda: gemm.matmul(np.ones((2, 3)), np.ones((3, 2), np.float32)), ValueError, "dtype"),
    (lambda: gemm.matmul(np.ones(3), np.ones((3, 2))), ValueError, "a"),
    (lambda: gemm.matmul(np.ones((2, 3), np.int64), np.ones((3, 2))), TypeError, "a"),
    (lambda: gemm.matmul(np.ones((2, 3)), np.ones((3, 2)), transpose_a=1), TypeError,
     "transpose_a"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()
