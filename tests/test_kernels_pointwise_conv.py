"""1x1 convolutions without padding: matrix products per image (the columns algorithm, run by
cnn/_ext/_gemm.pyx's team-shared BLAS calls), against the NumPy references."""
import numpy as np
import pytest

import cnn
import kernel_calls as dc
from kernel_calls import max_pool2d, max_pool2d_backward
from test_kernels_direct_conv import _input_gradient_reference, conv_reference, tolerance
from test_kernels_im2col import im2col_numpy

# (batch, in channels, out channels, size, stride): ResNet shortcuts, odd sizes and strides
# that leave a last row or column out, a single image, no images.
GEOMETRIES = [(5, 16, 32, 12, 2), (3, 6, 5, 9, 1), (2, 4, 7, 11, 3), (1, 32, 64, 8, 2),
              (0, 3, 4, 6, 1), (4, 1, 1, 5, 2)]


def _problem(rng, batch, c, f, size, dtype):
    x = rng.standard_normal((batch, c, size, size)).astype(dtype)
    w = rng.standard_normal((f, c, 1, 1)).astype(dtype)
    return x, w, rng.standard_normal(f).astype(dtype)


@pytest.mark.parametrize("padding, algorithm", [(0, "columns"), (1, "direct")])
def test_a_1x1_layer_without_padding_runs_by_columns(padding, algorithm):
    x = np.zeros((2, 16, 8, 8), np.float32)
    assert dc.plan(x, np.zeros((32, 16, 1, 1), np.float32), 2, padding).algorithm == algorithm


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, c, f, size", [(5, 16, 32, 12), (1, 3, 20, 9)])
def test_a_strided_layer_runs_the_product_on_the_columns_it_keeps(isa, rng, dtype, batch, c, f,
                                                                  size):
    # Without columns to keep, a strided 1x1 layer's forward runs the direct tile on the input
    # where it is; keeping them for backward, it multiplies them by the weights: the bits of
    # the stride-1 layer on the subsampled input (the same products), both within rounding of
    # the float64 reference.
    x, w, b = _problem(rng, batch, c, f, size, dtype)
    plan = dc.plan(x, w, 2, 0)
    assert plan.algorithm == "columns"
    kept, columns = plan.forward(x, w, b, keep_columns=True)
    plain, none = plan.forward(x, w, b)
    assert none is None
    np.testing.assert_array_equal(columns.reshape(batch, c, -1),
                                  plan.columns(x).reshape(batch, c, -1))
    subsampled = np.ascontiguousarray(x[:, :, ::2, ::2])
    by_product = dc.plan(subsampled, w, 1, 0).forward(subsampled, w, b)[0]
    assert kept.tobytes() == by_product.tobytes()
    expected = conv_reference(x, w, b, (2, 2), (0, 0), (1, 1))
    np.testing.assert_allclose(plain, expected, **tolerance(dtype))
    np.testing.assert_allclose(kept, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, c, f, size, stride", GEOMETRIES)
def test_values_and_gradients_match_the_references(isa, rng, dtype, batch, c, f, size, stride):
    x, w, b = _problem(rng, batch, c, f, size, dtype)
    s, p, d = (stride, stride), (0, 0), (1, 1)
    for relu in (False, True):
        expected = conv_reference(x, w, b, s, p, d)
        np.testing.assert_allclose(dc.conv2d_forward(x, w, b, stride, relu=relu),
                                   np.maximum(expected, 0) if relu else expected,
                                   **tolerance(dtype))
    g = np.random.default_rng(2).standard_normal(expected.shape).astype(dtype)
    grad_x, grad_w, grad_b = dc.conv2d_backward(x, w, g, stride)
    cols = im2col_numpy(x.astype(np.float64), (1, 1), s, p, d)
    pixels = g.shape[2] * g.shape[3]  # explicit: -1 is ambiguous for no images
    expected_w = np.einsum("nfp,nkp->fk", g.reshape(batch, f, pixels).astype(np.float64), cols)
    np.testing.assert_allclose(grad_w, expected_w.reshape(w.shape), **tolerance(dtype))
    np.testing.assert_allclose(grad_b, g.astype(np.float64).sum(axis=(0, 2, 3)),
                               **tolerance(dtype))
    np.testing.assert_allclose(grad_x, _input_gradient_reference(x, w, g, s, p, d),
                               **tolerance(dtype))


@pytest.mark.parametrize("batch, c, f, size, stride", [(3, 6, 5, 9, 1), (2, 16, 8, 12, 2)])
def test_the_fused_relu_pool_gives_the_bits_of_the_separate_kernels(isa, rng, batch, c, f,
                                                                    size, stride):
    x, w, b = _problem(rng, batch, c, f, size, np.float32)
    conv = dc.conv2d_forward(x, w, b, stride, relu=True)
    pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b, stride)
    expected, expected_indices = max_pool2d(conv, 2)
    np.testing.assert_array_equal(pooled, expected)
    np.testing.assert_array_equal(indices, expected_indices)
    g = rng.standard_normal(pooled.shape).astype(np.float32)
    dense = max_pool2d_backward(np.where(pooled <= 0, 0, g).astype(g.dtype), indices,
                                conv.shape)
    fused = dc.conv2d_relu_max_pool2d_backward(x, w, g, pooled, indices, stride)
    for got, want in zip(fused, dc.conv2d_backward(x, w, dense, stride)):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("batch", [64, 1])
def test_bit_identical_at_one_and_two_threads(isa, threads, rng, batch):
    x, w, b = _problem(rng, batch, 16, 32, 16, np.float32)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        out = dc.conv2d_forward(x, w, b, 2)
        results.append((out, *dc.conv2d_backward(x, w, out, 2)))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


def test_the_columns_of_a_1x1_layer_and_their_adjoint_are_copies(rng):
    # Without stride the columns are the input itself inside the plan; the public method
    # must not hand out a view of the caller's array.
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    cols = dc.plan(x, np.zeros((5, 3, 1, 1), np.float32)).columns(x)
    np.testing.assert_array_equal(cols, x.reshape(2, 3, 16))
    cols[...] = 0
    assert x.any()
    # ... nor a view of the caller's columns from the adjoint
    cols = rng.standard_normal((2, 3, 16)).astype(np.float32)
    back = dc.plan(x, np.zeros((5, 3, 1, 1), np.float32)).columns_adjoint(cols)
    np.testing.assert_array_equal(back, cols.reshape(x.shape))
    assert not np.shares_memory(back, cols)


def test_without_a_known_blas_numpy_multiplies(monkeypatch, rng):
    from cnn import _blas
    x, w, b = _problem(rng, 3, 6, 5, 9, np.float64)
    g = rng.standard_normal((3, 5, 5, 5))
    expected = [dc.conv2d_forward(x, w, b, 2), *dc.conv2d_backward(x, w, g, 2)]
    monkeypatch.setattr(_blas, "gemm_address", lambda dtype: None)
    got = [dc.conv2d_forward(x, w, b, 2), *dc.conv2d_backward(x, w, g, 2)]
    for one, other in zip(got, expected):
        np.testing.assert_allclose(one, other, rtol=1e-12, atol=1e-12)
