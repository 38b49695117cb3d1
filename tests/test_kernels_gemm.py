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
    assert _gemm.blocks(256, 120, 400) == (1, 2)  # the product is shared out
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        results.append(gemm.matmul(a, b, transpose_a, transpose_b, n).tobytes())
    assert results[0] == results[1]


@pytest.mark.parametrize("transpose_a, transpose_b", [(False, True), (True, False),
                                                      (False, False), (True, True)])
@pytest.mark.parametrize("m, n, dtype", [(1000, 10, np.float32), (1025, 16, np.float32),
                                         (3, 1, np.float32), (1000, 10, np.float64)])
def test_a_product_of_few_columns_is_shared_by_rows(threads, rng, m, n, dtype, transpose_a,
                                                    transpose_b):
    # A classifier's logits for a large batch: row blocks (the last one shorter, or rows of
    # one), each against all of op(b), agreeing with the reference and across thread counts.
    k = 2048 if m > 3 else 400_000
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    row_blocks, column_blocks = _gemm.blocks(m, n, k)
    assert row_blocks >= 2 and row_blocks % 2 == 0 and column_blocks == 1
    results = []
    for count in (1, 2):
        cnn.set_num_threads(count)
        out = gemm.matmul(a, b, transpose_a, transpose_b, count)
        np.testing.assert_allclose(out, _reference(a, b, transpose_a, transpose_b), rtol=1e-4,
                                   atol=1e-2)
        results.append(out.tobytes())
    assert results[0] == results[1]


@pytest.mark.parametrize("m, k, n", [(1, 400, 120), (1, 84, 10), (3, 5, 7), (10, 120, 84)])
@pytest.mark.parametrize("transpose_a, transpose_b", [(False, True), (True, False),
                                                      (False, False), (True, True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_an_unshared_product_has_the_bits_of_numpys_matmul(rng, m, k, n, transpose_a,
                                                           transpose_b, dtype):
    # A product too small to share is one BLAS call through np.dot, the shortest path to it:
    # the bits of `a @ b` (batch-1 linear layers, the vector cases included).
    a = rng.standard_normal((k, m) if transpose_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if transpose_b else (k, n)).astype(dtype)
    assert _gemm.blocks(m, n, k) == (1, 1)
    expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    assert gemm.matmul(a, b, transpose_a, transpose_b).tobytes() == expected.tobytes()


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


@st.composite
def image_batches(draw):
    """(a (G, M, K) or its transpose, b (N, G, K, P), transpose_a): a convolution by columns."""
    n, g, m, k, p = (draw(st.integers(lo, hi)) for lo, hi in
                     ((0, 5), (1, 3), (0, 9), (0, 9), (0, 40)))
    transpose_a = draw(st.booleans())
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    a = rng.standard_normal((g, k, m) if transpose_a else (g, m, k)).astype(dtype)
    return a, rng.standard_normal((n, g, k, p)).astype(dtype), transpose_a


def _tolerance(dtype):
    return dict(rtol=1e-5, atol=1e-4) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)


@given(image_batches())
def test_image_products_are_one_product_per_image_and_group(threads, batch):
    a, b, transpose_a = batch
    a64 = a.astype(np.float64)
    expected = np.matmul(a64.transpose(0, 2, 1) if transpose_a else a64, b.astype(np.float64))
    for n in (1, 2):
        out = np.full(expected.shape, np.nan, a.dtype)
        assert _gemm.image_products(a, b, out, transpose_a, n)
        np.testing.assert_allclose(out, expected, **_tolerance(a.dtype))


@given(image_batches(), st.integers(1, 4))
def test_summed_products_sum_each_block_of_images(threads, batch, per_block):
    _, b, _ = batch
    n, g, k, p = b.shape
    a = np.random.default_rng(n * 7 + k).standard_normal((n, g, 3, p)).astype(b.dtype)
    blocks = max(1, -(-n // per_block))
    expected = np.zeros((blocks, g, 3, k))
    for i in range(n):
        expected[i // per_block] += a[i].astype(np.float64) @ b[i].astype(
            np.float64).transpose(0, 2, 1)
    out = np.full(expected.shape, np.nan, b.dtype)
    assert _gemm.summed_products(a, b, out, per_block, 2)
    np.testing.assert_allclose(out, expected, **_tolerance(b.dtype))


def test_image_and_summed_products_are_bit_identical_at_one_and_two_threads(threads, rng):
    # ResNet-8's 1x1 shortcut at batch 64: its forward and its weight gradient.
    w = rng.standard_normal((1, 32, 16)).astype(np.float32)
    x = rng.standard_normal((64, 1, 16, 256)).astype(np.float32)
    g = rng.standard_normal((64, 1, 32, 256)).astype(np.float32)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        out = np.empty((64, 1, 32, 256), np.float32)
        _gemm.image_products(w, x, out, False, n)
        sums = np.empty((16, 1, 32, 16), np.float32)
        _gemm.summed_products(g, x, sums, 4, n)
        results.append((out.tobytes(), sums.tobytes()))
    assert results[0] == results[1]


def test_the_image_products_leave_the_work_to_numpy_without_a_known_blas(monkeypatch):
    monkeypatch.setattr(_blas, "gemm_address", lambda dtype: None)
    out = np.zeros((1, 1, 2, 2))
    assert not _gemm.image_products(np.ones((1, 2, 2)), np.ones((1, 1, 2, 2)), out, False, 1)
    assert not _gemm.summed_products(np.ones((1, 1, 2, 2)), np.ones((1, 1, 2, 2)), out, 1, 1)
    assert not out.any()  # untouched


@pytest.mark.parametrize("call, words", [
    (lambda: _gemm.image_products(np.ones((1, 2, 3)), np.ones((1, 1, 2, 4)),
                                  np.empty((1, 1, 2, 4)), False, 1), "image_products"),
    (lambda: _gemm.image_products(np.ones((2, 2, 3)), np.ones((1, 1, 3, 4)),
                                  np.empty((1, 1, 2, 4)), False, 1), "image_products"),
    (lambda: _gemm.summed_products(np.ones((2, 1, 2, 4)), np.ones((2, 1, 3, 5)),
                                   np.empty((1, 1, 2, 3)), 2, 1), "summed_products"),
    (lambda: _gemm.summed_products(np.ones((5, 1, 2, 4)), np.ones((5, 1, 3, 4)),
                                   np.empty((2, 1, 2, 3)), 2, 1), "images_per_block"),
    (lambda: _gemm.summed_products(np.ones((2, 1, 2, 4)), np.ones((2, 1, 3, 4)),
                                   np.empty((3, 1, 2, 3)), 1, 1), "images_per_block"),
    (lambda: _gemm.summed_products(np.ones((2, 1, 2, 4)), np.ones((2, 1, 3, 4)),
                                   np.empty((2, 1, 2, 3)), 0, 1), "images_per_block"),
])
def test_the_image_products_refuse_shapes_that_do_not_fit(call, words):
    with pytest.raises(ValueError, match=words):
        call()


@pytest.mark.parametrize("transpose_a, transpose_b", [(True, False), (False, True)])
def test_an_outer_product_has_the_bits_of_blas(rng, transpose_a, transpose_b):
    # k = 1 (a weight gradient at batch 1) is computed as a broadcast product: each value is
    # one rounded multiplication, exactly what BLAS gives.
    a = rng.standard_normal((1, 120) if transpose_a else (120, 1)).astype(np.float32)
    b = rng.standard_normal((400, 1) if transpose_b else (1, 400)).astype(np.float32)
    a.flat[:3] = [0.0, -0.0, -1.0]  # zeros of both signs, and a negative factor for b's zeros
    b.flat[:2] = [0.0, -0.0]
    out = gemm.matmul(a, b, transpose_a, transpose_b)
    assert out.shape == (120, 400) and out.dtype == np.float32
    expected = (a.T if transpose_a else a) @ (b.T if transpose_b else b)
    assert not np.signbit(expected[expected == 0]).any()  # BLAS adds to +0
    assert out.tobytes() == np.ascontiguousarray(expected).tobytes()
