"""Direct convolution kernels (forward, fused ReLU + pool, gradients) against NumPy references."""
import threading

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cnn
import cnn.nn as nn
import cnn.nn.functional as F
import kernel_calls as dc
from kernel_calls import im2col, max_pool2d, max_pool2d_backward

from test_kernels_im2col import col2im_numpy, im2col_numpy


def conv_reference(x, w, b, s, p, d):
    """float64 convolution through the NumPy im2col reference."""
    n = x.shape[0]
    cols = im2col_numpy(x.astype(np.float64), w.shape[2:], s, p, d)
    oh, ow = ((size + 2 * pp - dd * (kk - 1) - 1) // ss + 1
              for size, pp, dd, kk, ss in zip(x.shape[2:], p, d, w.shape[2:], s))
    out = np.matmul(w.reshape(w.shape[0], -1).astype(np.float64), cols)
    out = out.reshape(n, w.shape[0], oh, ow)
    return out if b is None else out + b.reshape(1, -1, 1, 1)


@st.composite
def problems(draw, max_channels=20):
    n = draw(st.integers(0, 5))
    # Up to 4 input channels: the input gradient's scatter; 16 and more: its dense convolution.
    c = draw(st.integers(1, 4) | st.integers(16, 18))
    f = draw(st.integers(1, max_channels))
    k = (draw(st.integers(1, 5)), draw(st.integers(1, 5)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    h, w = draw(st.integers(1, 12)), draw(st.integers(1, 12))
    assume(all(dd * (kk - 1) + 1 <= size + 2 * pp for dd, kk, size, pp in zip(d, k, (h, w), p)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((f, c) + k).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype) if draw(st.booleans()) else None
    return x, weight, bias, s, p, d


def tolerance(dtype):
    return dict(rtol=2e-5, atol=2e-4) if dtype == np.float32 else dict(rtol=1e-11, atol=1e-11)


@given(problems(), st.booleans())
def test_forward_matches_the_reference(isa, problem, relu):
    x, w, b, s, p, d = problem
    out = dc.conv2d_forward(x, w, b, s, p, d, relu=relu)
    expected = conv_reference(x, w, b, s, p, d)
    if relu:
        expected = np.maximum(expected, 0)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out, expected, **tolerance(x.dtype))


def _output_gradient(x, w, s, p, d, seed):
    shape = conv_reference(x, w, None, s, p, d).shape
    return np.random.default_rng(seed).standard_normal(shape).astype(x.dtype)


def _weight_gradient_reference(x, w, g, s, p, d):
    cols = im2col_numpy(x.astype(np.float64), w.shape[2:], s, p, d)
    pixels = g.shape[2] * g.shape[3]
    expected = np.einsum("nfp,nkp->fk", g.reshape(g.shape[0], g.shape[1], pixels), cols)
    return expected.reshape(w.shape)


@given(problems())
def test_weight_and_bias_gradients_match_the_reference(isa, problem):
    x, w, _, s, p, d = problem
    g = _output_gradient(x, w, s, p, d, 1)
    grad_x, grad_w, grad_b = dc.conv2d_backward(x, w, g, s, p, d, needs=(False, True, True))
    assert grad_x is None
    np.testing.assert_allclose(grad_w, _weight_gradient_reference(x, w, g, s, p, d),
                               **tolerance(x.dtype))
    np.testing.assert_allclose(grad_b, g.astype(np.float64).sum(axis=(0, 2, 3)),
                               **tolerance(x.dtype))


def _input_gradient_reference(x, w, g, s, p, d):
    dcols = np.matmul(w.reshape(w.shape[0], -1).T.astype(np.float64),
                      g.reshape(g.shape[0], g.shape[1], g.shape[2] * g.shape[3]))
    return col2im_numpy(dcols, x.shape, w.shape[2:], s, p, d)


@given(problems())
def test_input_gradient_matches_the_reference(isa, problem):
    x, w, _, s, p, d = problem
    g = _output_gradient(x, w, s, p, d, 2)
    grad_x, grad_w, grad_b = dc.conv2d_backward(x, w, g, s, p, d, needs=(True, False, False))
    assert grad_w is None and grad_b is None
    np.testing.assert_allclose(grad_x, _input_gradient_reference(x, w, g, s, p, d),
                               **tolerance(x.dtype))


@pytest.mark.parametrize("in_channels", [3, 16])
def test_an_infinite_gradient_reaches_only_its_window(isa, in_channels):
    # The scatter adds whole vectors past a kernel row's end (g times zero weights): it must
    # not turn an infinite g into NaNs outside the window.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, in_channels, 9, 9)).astype(np.float32)
    w = rng.uniform(0.5, 1.0, (4, in_channels, 3, 3)).astype(np.float32)
    g = _output_gradient(x, w, (1, 1), (1, 1), (1, 1), 3)
    g[1, 2, 4, 4] = np.inf
    grad_x = dc.conv2d_backward(x, w, g, 1, 1, 1)[0]
    expected = _input_gradient_reference(x, w, g, (1, 1), (1, 1), (1, 1))
    np.testing.assert_array_equal(np.isposinf(grad_x), np.isposinf(expected))
    assert np.isfinite(grad_x[0]).all() and np.isposinf(grad_x[1, :, 3:6, 3:6]).all()
    assert np.isfinite(grad_x[1]).sum() == grad_x[1].size - 9 * in_channels


@given(problems(max_channels=34), st.booleans())
def test_pooled_backward_equals_the_dense_backward_bit_for_bit(isa, problem, with_nan):
    x, w, b, s, p, d = problem
    conv = dc.conv2d_forward(x, w, b, s, p, d, relu=True)
    assume(conv.shape[2] >= 2 and conv.shape[3] >= 2)
    pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b, s, p, d)
    g = np.random.default_rng(5).standard_normal(pooled.shape).astype(x.dtype)
    if with_nan and g.size:
        g.flat[0] = np.nan
    # ReLU's mask by relu_backward's rule: 0 where the output is <= 0, even for a NaN g.
    dense = max_pool2d_backward(np.where(pooled <= 0, 0, g).astype(g.dtype), indices,
                                conv.shape)
    fused = dc.conv2d_relu_max_pool2d_backward(x, w, g, pooled, indices, s, p, d)
    for got, expected in zip(fused, dc.conv2d_backward(x, w, dense, s, p, d)):
        np.testing.assert_array_equal(got, expected)


@given(problems(max_channels=34))
def test_fused_relu_pool_equals_the_separate_kernels(isa, problem):
    x, w, b, s, p, d = problem
    conv = dc.conv2d_forward(x, w, b, s, p, d, relu=True)
    assume(conv.shape[2] >= 2 and conv.shape[3] >= 2)
    pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b, s, p, d)
    expected, expected_indices = max_pool2d(conv, 2)
    np.testing.assert_array_equal(pooled, expected)
    np.testing.assert_array_equal(indices, expected_indices)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 5])  # at batch 1, 2 threads share each image's rows
@pytest.mark.parametrize("channels, kernel, padding, size", [
    ((1, 6), 5, 2, 28),  # LeNet-5's first layer
    ((3, 8), 3, 1, 37),  # more pooled columns than one vector holds
    ((2, 1), 2, 0, 25), ((2, 4), 1, 0, 24), ((1, 5), 3, 1, 27), ((4, 7), 4, 2, 27),
    ((2, 5), 3, 1, 9),  # rows of 4 windows: the register tile, the same bits
    ((3, 32), 3, 1, 32),  # the CIFAR net's first layer: few taps, a row of 16 windows
    ((2, 13), 3, 0, 35)])  # channel groups of unequal sizes
def test_pooling_along_rows_gives_the_separate_kernels_bits(isa, threads, small_layers_shared,
                                                            dtype, batch, channels, kernel,
                                                            padding, size):
    # Stride-1 layers with at most 8 output channels and rows of at least 12 windows, or with
    # at most 64 taps and rows of at least 16, take conv_rows.h's kernel: the same values and
    # argmax indices, bit for bit, for any thread count; NaNs included.
    (c, f) = channels
    rng = np.random.default_rng(size)
    x = rng.standard_normal((batch, c, size, size)).astype(dtype)
    x[0, 0, 1, 2] = np.nan
    w = rng.standard_normal((f, c, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    conv = dc.conv2d_forward(x, w, b, 1, padding, relu=True)
    expected, expected_indices = max_pool2d(conv, 2)
    for n in (1, 2):
        cnn.set_num_threads(n)
        pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b, 1, padding)
        assert pooled.tobytes() == expected.tobytes()
        assert indices.tobytes() == expected_indices.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels, kernel", [((3, 16), 3), ((3, 32), 3), ((1, 6), 5),
                                              ((2, 5), 3), ((7, 9), 3), ((2, 7), 3),
                                              ((4, 3), 3)])  # groups of 2 to 8 channels
@pytest.mark.parametrize("relu, affine", [(False, False), (True, False), (True, True)])
def test_rows_of_few_tap_layers_give_the_tiles_bits(isa, threads, small_layers_shared, dtype,
                                                    batch, channels, kernel, relu, affine):
    # Stride-1 layers with at most 64 taps and output rows of 16 or more take conv_rows.h's
    # unpooled kernel; narrower rows take the register tile. Without padding, the narrow
    # layer's output is the left part of the wide one's: the same values, bit for bit, signed
    # zeros included (a channel whose weights and bias are -0.0 sums to -0.0).
    (c, f) = channels
    rng = np.random.default_rng(c * f)
    x = np.abs(rng.standard_normal((batch, c, 9, 22))).astype(dtype)  # x * -0.0 is -0.0
    x[0, 0, 2, 3] = np.nan
    w = rng.standard_normal((f, c, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    w[-1], b[-1] = -0.0, -0.0
    batch_norm = dc.random_batch_norm(rng, f, dtype) if affine else None
    narrow_width = 15 - 1 + kernel  # 15 output columns: the tile
    for n in (1, 2):
        cnn.set_num_threads(n)
        wide = dc.plan(x, w, 1, 0, 1).forward(x, w, b, relu=relu, num_threads=n,
                                              batch_norm=batch_norm)[0]
        narrow_x = np.ascontiguousarray(x[..., :narrow_width])
        narrow = dc.plan(narrow_x, w, 1, 0, 1).forward(narrow_x, w, b, relu=relu,
                                                       num_threads=n, batch_norm=batch_norm)[0]
        assert wide.shape[3] >= 16 and narrow.shape[3] == 15
        assert np.ascontiguousarray(wide[..., :15]).tobytes() == narrow.tobytes()
    expected = conv_reference(x, w, b, (1, 1), (0, 0), (1, 1))
    if affine:
        mean, scale, shift = (v.reshape(1, -1, 1, 1) for v in dc.batch_norm_rows(batch_norm))
        expected = (expected - mean) * scale + shift
    if relu:
        expected = np.where(np.isnan(expected), expected, np.maximum(expected, 0))
    np.testing.assert_allclose(wide, expected, **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [1, 3])
@pytest.mark.parametrize("channels", [6, 20])  # the 8-channel tile; two 16-channel blocks
@pytest.mark.parametrize("relu", [False, True])
def test_the_tiles_batch_norm_epilogue_gives_the_bits_of_the_separate_kernels(
        isa, threads, small_layers_shared, dtype, batch, channels, relu):
    # A stride-2 layer runs the register tile, whose epilogue applies a folded batch norm and
    # the ReLU to a block of channels at once: the same bits as norm.normalize after the plain
    # convolution, with NaN, inf and values the affine map sends to zero (signed) included.
    rng = np.random.default_rng(channels + batch)
    x = rng.standard_normal((batch, 16, 64, 63)).astype(dtype)
    x[0, 1, 3, 4], x[-1, 0, 5, 5] = np.nan, np.inf
    w = rng.standard_normal((channels, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(channels).astype(dtype)
    batch_norm = dc.random_batch_norm(rng, channels, dtype)
    _, _, weight, bias, _ = batch_norm
    weight[1], bias[1] = 0.0, -0.0  # every value of channel 1 becomes a signed zero
    plan = dc.plan(x, w, stride=2, padding=1)
    assert plan.algorithm == "direct"
    out = plan.forward(x, w, b)[0]
    planes = out.reshape(batch, channels, -1)
    cnn._ext.backend.norm.normalize(planes, *dc.batch_norm_rows(batch_norm), planes, relu, 1)
    for n in (1, 2):
        fused = plan.forward(x, w, b, relu=relu, batch_norm=batch_norm, num_threads=n)[0]
        assert fused.tobytes() == out.tobytes()
    zeros = out[:, 1][out[:, 1] == 0]  # -0 without ReLU, which makes them +0
    assert np.isnan(out).any() and zeros.size and np.signbit(zeros).any() != relu


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu, affine", [(True, True), (True, False), (False, True),
                                         (False, False)])
@pytest.mark.parametrize("batch, c, f, size, kernel, stride, algorithm", [
    (3, 16, 20, 36, 3, 2, "direct"),    # the register tile
    (1, 32, 32, 8, 3, 1, "direct"),     # a Winograd plan's small call: the tile
    (2, 16, 24, 33, 3, 1, "winograd"),
    (2, 3, 16, 18, 3, 1, "rows"),       # few taps, wide rows: conv_rows.h
    (2, 8, 12, 9, 1, 2, "columns"),     # a strided 1x1 layer: the tile
    (2, 8, 12, 9, 1, 1, "columns"),     # a 1x1 layer: BLAS, then the batch norm's kernel
])
def test_a_residual_in_the_epilogue_gives_add_relus_bits(isa, threads, small_layers_shared,
                                                         dtype, relu, affine, batch, c, f,
                                                         size, kernel, stride, algorithm):
    # cnn.compile folds a residual connection (AddReLU) into the convolution that makes its
    # first operand: the sum after the batch norm, then ReLU, as the separate ops compute
    # them, NaN and inf included, on every algorithm and thread count.
    rng = np.random.default_rng(batch * 100 + c)
    x = rng.standard_normal((batch, c, size, size)).astype(dtype)
    x[0, 0, 1, 1] = np.nan
    w = rng.standard_normal((f, c, kernel, kernel)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    batch_norm = dc.random_batch_norm(rng, f, dtype) if affine else None
    plan = dc.plan(x, w, stride=stride, padding=kernel // 2)
    residual = rng.standard_normal((batch,) + plan.output_shape).astype(dtype)
    residual[-1, 1, 0, :2] = [np.inf, -np.inf]
    out = plan.forward(x, w, b)[0]
    if affine:  # the batch norm's own kernel, after the plain convolution
        planes = out.reshape(batch, f, -1)
        cnn._ext.backend.norm.normalize(planes, *dc.batch_norm_rows(batch_norm), planes, False,
                                        1)
    expected = np.empty_like(out)
    if relu:
        cnn._ext.backend.elementwise.add_relu(out.reshape(-1), residual.reshape(-1),
                                              expected.reshape(-1), 1)
    else:
        np.add(out, residual, out=expected)
    for n in (1, 2):
        fused = plan.forward(x, w, b, relu=relu, batch_norm=batch_norm, residual=residual,
                             num_threads=n)[0]
        assert fused.tobytes() == expected.tobytes()
    used = {"rows": "direct"}.get(algorithm, algorithm)
    assert plan.algorithm == used or (algorithm == "direct" and plan.algorithm == "winograd")


def test_a_residual_of_another_shape_is_refused():
    x = np.zeros((2, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    with pytest.raises(ValueError, match="residual"):
        dc.plan(x, w).forward(x, w, residual=np.zeros((2, 4, 6, 5), np.float32))
    with pytest.raises(TypeError, match="residual"):
        dc.plan(x, w).forward(x, w, residual=np.zeros((2, 4, 6, 6), np.float64))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel", [1, 3])  # the columns algorithm's path, the tile's
def test_a_folded_batch_norm_takes_strided_and_read_only_arrays(isa, rng, dtype, kernel):
    # The folded batch norm's arrays are read as buffers where they are contiguous, else
    # through a contiguous copy: the same bits either way, with or without its affine
    # parameters, and a plan's kept coefficients never leak from one call into the next.
    x = rng.standard_normal((2, 3, 8, 8)).astype(dtype)
    w = rng.standard_normal((20, 3, kernel, kernel)).astype(dtype)
    plan = dc.plan(x, w, padding=kernel // 2)
    batch_norm = dc.random_batch_norm(rng, 20, dtype)
    expected = plan.forward(x, w, batch_norm=batch_norm)[0]
    strided = tuple(np.repeat(a, 2)[::2] for a in batch_norm[:4]) + (batch_norm[4],)
    assert not strided[0].flags.c_contiguous
    read_only = tuple(a.copy() for a in batch_norm[:4]) + (batch_norm[4],)
    for a in read_only[:4]:
        a.flags.writeable = False
    for given in (strided, read_only, batch_norm):
        assert plan.forward(x, w, batch_norm=given)[0].tobytes() == expected.tobytes()
    plain = plan.forward(x, w, batch_norm=batch_norm[:2] + (None, None, 1e-5))[0]
    mean, scale, _ = (r.reshape(1, -1, 1, 1) for r in dc.batch_norm_rows(
        batch_norm[:2] + (None, None, 1e-5)))
    unfolded = plan.forward(x, w)[0]
    np.testing.assert_allclose(plain, (unfolded - mean) * scale, rtol=1e-4, atol=1e-4)
    assert plan.forward(x, w, batch_norm=batch_norm)[0].tobytes() == expected.tobytes()


@pytest.mark.parametrize("batch_norm, error, match", [
    ((np.zeros(4, np.float32),) * 2, ValueError, "batch_norm"),
    ([np.zeros(4, np.float32)] * 4 + [1e-5], ValueError, "batch_norm"),
    ((np.zeros(3, np.float32), np.ones(4, np.float32), None, None, 1e-5), ValueError,
     "running_mean"),
    ((np.zeros(4, np.float32), np.ones(4), None, None, 1e-5), TypeError, "running_var"),
    ((np.zeros(4, np.float32), np.ones(4, np.float32), [1.0] * 4, None, 1e-5), TypeError,
     "batch_norm weight"),
    ((np.zeros(4, np.float32), np.ones(4, np.float32), None, np.ones(5, np.float32), 1e-5),
     ValueError, "batch_norm bias"),
    ((np.zeros(4, np.float32), np.ones(4, np.float32), None, None, "1e-5"), TypeError, "eps"),
    ((np.zeros(4, np.float32), np.ones(4, np.float32), None, None, float("nan")), ValueError,
     "eps"),
    ((np.zeros(4, np.float32), np.ones(4, np.float32), None, None, -1e-5), ValueError, "eps"),
])
@pytest.mark.parametrize("kernel", [1, 3])  # the columns algorithm's path, the tile's
def test_a_malformed_batch_norm_is_refused(batch_norm, error, match, kernel):
    x = np.zeros((2, 3, 8, 8), np.float32)
    w = np.zeros((4, 3, kernel, kernel), np.float32)
    with pytest.raises(error, match=match):
        dc.plan(x, w).forward(x, w, batch_norm=batch_norm)


def test_sequential_fuses_and_matches_the_layers_bit_for_bit():
    cnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
                          nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                          nn.Linear(400, 10))
    x = cnn.tensor(np.random.default_rng(0).standard_normal((5, 1, 28, 28)).astype(np.float32))
    labels = np.arange(5)
    fused = F.cross_entropy(model(x), labels)
    assert type(fused._node).__name__ == "Context"  # a recorded graph
    fused.backward()
    fused_grads = [p.grad._data.copy() for p in model.parameters()]
    model.zero_grad()
    layers = x
    for layer in model:
        layers = layer(layers)
    separate = F.cross_entropy(layers, labels)
    separate.backward()
    assert fused.item() == separate.item()
    for fused_grad, p in zip(fused_grads, model.parameters()):
        np.testing.assert_array_equal(fused_grad, p.grad._data)


def test_fused_op_gradcheck():
    rng = np.random.default_rng(0)
    args = [cnn.tensor(rng.standard_normal(shape), requires_grad=True)
            for shape in ((2, 3, 9, 8), (5, 3, 3, 3), (5,))]
    assert cnn.autograd.gradcheck(lambda a, w, b: F.conv2d_relu_max_pool2d(a, w, b, 1, 1), args)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch", [13, 1, 3])  # below 4, 2 threads split the images' tiles
def test_bit_identical_at_one_and_two_threads(isa, threads, small_layers_shared, rng, dtype,
                                              batch):
    x = rng.standard_normal((batch, 6, 14, 14)).astype(dtype)
    w = rng.standard_normal((16, 6, 5, 5)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        out = dc.conv2d_forward(x, w, b)
        pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b)
        results.append((out, pooled, indices, *dc.conv2d_backward(x, w, out),
                        *dc.conv2d_relu_max_pool2d_backward(x, w, pooled, pooled, indices)))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("stride, kernel", [(2, 3), (3, 2), (2, 5)])  # (3, 2): some phases
@pytest.mark.parametrize("batch", [13, 1])                           # get no tap; (2, 5): 3x3
def test_strided_input_gradient_is_bit_identical_at_one_and_two_threads(isa, threads,
                                                                        small_layers_shared,
                                                                        rng, stride, kernel,
                                                                        batch):
    # 16 input channels: the input gradient is the dense one, a convolution per phase written
    # straight into its strided places (or, for a phase Winograd serves, copied there).
    x = rng.standard_normal((batch, 16, 15, 15)).astype(np.float32)
    w = rng.standard_normal((24, 16, kernel, kernel)).astype(np.float32)
    g = _output_gradient(x, w, (stride,) * 2, (1, 1), (1, 1), 3)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        results.append(dc.conv2d_backward(x, w, g, stride, 1, needs=(True, False, False))[0])
    assert results[0].tobytes() == results[1].tobytes()
    np.testing.assert_allclose(results[0], _input_gradient_reference(x, w, g, (stride,) * 2,
                                                                     (1, 1), (1, 1)),
                               **tolerance(x.dtype))


@pytest.mark.parametrize("batch", [1, 3])  # batch 1: 2 threads split each image's tiles
@pytest.mark.parametrize("f", [32, 50, 64])  # whole pairs of 16-channel blocks; a partial pair
def test_wide_layers_agree_with_the_reference_on_every_direct_path(isa, threads,
                                                                   small_layers_shared, batch,
                                                                   f):
    # float32 layers whose padded channels are whole pairs of 16-channel blocks run AVX-512's
    # paired tile (two blocks' sub-tiles at once): the plain forward, its epilogue (batch norm,
    # residual, ReLU), the fused ReLU + max-pool, the input gradient's phases (32 input
    # channels: each phase is a forward of 32 outputs written into strided places) and the
    # weight gradient (its own paired tile, in plain rows); the same values as the NumPy
    # reference, the same bits at 1 and 2 threads.
    rng = np.random.default_rng(f + batch)
    x = rng.standard_normal((batch, 32, 10, 11)).astype(np.float32)
    w = rng.standard_normal((f, 32, 3, 3)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    batch_norm = dc.random_batch_norm(rng, f, np.float32)
    plan = dc.plan(x, w, stride=2, padding=1)
    assert plan.algorithm == "direct"
    residual = rng.standard_normal((batch,) + plan.output_shape).astype(np.float32)
    g = _output_gradient(x, w, (2, 2), (1, 1), (1, 1), 3)
    expected = conv_reference(x, w, b, (2, 2), (1, 1), (1, 1))
    mean, scale, shift = (v.reshape(1, -1, 1, 1) for v in dc.batch_norm_rows(batch_norm))
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        out = plan.forward(x, w, b, num_threads=n)[0]
        fused = plan.forward(x, w, b, relu=True, batch_norm=batch_norm, residual=residual,
                             num_threads=n)[0]
        pooled, indices = plan.forward_relu_pool(x, w, b, num_threads=n)
        dx = dc.conv2d_backward(x, w, g, 2, 1, needs=(True, False, False))[0]
        dw, db = dc.conv2d_backward(x, w, g, 2, 1, needs=(False, True, True))[1:]
        results.append((out, fused, pooled, indices, dx, dw, db))
    out, fused, pooled, indices, dx, dw, db = results[0]
    np.testing.assert_allclose(out, expected, **tolerance(np.float32))
    np.testing.assert_allclose(fused, np.maximum((expected - mean) * scale + shift + residual,
                                                 0), rtol=1e-4, atol=1e-3)
    expected_pooled, expected_indices = max_pool2d(np.maximum(out, 0), 2)
    assert pooled.tobytes() == expected_pooled.tobytes()
    assert indices.tobytes() == expected_indices.tobytes()
    np.testing.assert_allclose(dx, _input_gradient_reference(x, w, g, (2, 2), (1, 1), (1, 1)),
                               **tolerance(np.float32))
    np.testing.assert_allclose(dw, _weight_gradient_reference(x, w, g, (2, 2), (1, 1), (1, 1)),
                               **tolerance(np.float32))
    np.testing.assert_allclose(db, g.astype(np.float64).sum(axis=(0, 2, 3)),
                               **tolerance(np.float32))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("threads_used", [1, 2])
@pytest.mark.parametrize("channels", [32, 64])  # direct packing; Winograd's transform
def test_kept_packings_follow_every_change_of_the_weights(isa, threads, small_layers_shared,
                                                          threads_used, channels):
    # A plan keeps each layer's weights in its kernels' layout between calls and uses them
    # again only while the array's values are unchanged: a change in place (the first value,
    # the last one) is seen, and two layers sharing one plan (one geometry) each get their
    # own weights.
    rng = np.random.default_rng(threads_used)
    x = rng.standard_normal((1, channels, 8, 8)).astype(np.float32)
    if channels == 64:  # two 16x16 images: enough outputs for Winograd
        x = rng.standard_normal((2, channels, 16, 16)).astype(np.float32)
    w = rng.standard_normal((64, channels, 3, 3)).astype(np.float32)
    other = rng.standard_normal((64, channels, 3, 3)).astype(np.float32)
    plan = dc.plan(x, w, 1, 1)
    outputs = x.shape[0] * x.shape[2] * x.shape[3]
    assert (outputs >= cnn._ext.backend.conv.WINOGRAD_MIN_OUTPUTS) == (channels == 64)

    def check(weight):
        out = plan.forward(x, weight, num_threads=threads_used)[0]
        expected = conv_reference(x, weight, None, (1, 1), (1, 1), (1, 1))
        np.testing.assert_allclose(out, expected, **tolerance(np.float32))

    for where in [(0, 0, 0, 0), (63, channels - 1, 2, 2), (31, channels // 2, 1, 0)]:
        check(w)  # laid out, and kept
        check(other)
        w[where] += 100.0
        check(w)
        check(other)
    # Two values of one fingerprint lane (8-byte words 64 apart) swapped, and +0.0 -> -0.0:
    # changes of the bytes the fingerprint (read in place of a copy) must see too.
    flat = w.reshape(-1)
    flat[[3, 3 + 128]] = flat[[3 + 128, 3]]
    check(w)
    flat[5] = 0.0
    check(w)
    flat[5] = -0.0
    out = plan.forward(x, w, num_threads=threads_used)[0]
    assert out.tobytes() == plan.forward(x, w.copy(), num_threads=threads_used)[0].tobytes()


def fingerprint_reference(data):
    """fingerprint.h's definition in NumPy: chunks of 32768 bytes, each 64 lanes of 64-bit
    states mixing the chunk's 8-byte words two by two, the last step padded with zeros."""
    lanes, chunk, mixer = 64, 32768, np.uint64(0x9E3779B97F4A7C15)
    prints = []
    for begin in range(0, len(data), chunk):
        part = data[begin:begin + chunk]
        steps = np.frombuffer(part + bytes(-len(part) % (16 * lanes)), dtype="<u8")
        state = np.uint64(len(part) * lanes) + np.arange(lanes, dtype=np.uint64)
        for words, following in steps.reshape(-1, 2, lanes):
            x = state ^ words
            state = ((x << np.uint64(29)) | (x >> np.uint64(35))) * mixer + following
        prints.append(state)
    return np.array(prints, dtype=np.uint64).reshape(-1, lanes)


@pytest.mark.parametrize("size", [0, 1, 8, 1023, 1024, 1025, 32768, 40000, 100000])
def test_a_fingerprint_follows_its_definition_and_sees_any_one_changed_word(isa, size):
    # What a plan keeps of laid-out weights in place of a copy (_kept_weights): the same
    # states as the NumPy definition at one and two threads (chunks split among the team),
    # and a change of any one byte anywhere, the padded tail included, changes them.
    rng = np.random.default_rng(size)
    data = rng.integers(0, 256, size, dtype=np.uint8)
    conv = cnn._ext.backend.conv
    expected = fingerprint_reference(data.tobytes())
    for threads_used in (1, 2):
        assert conv.fingerprint(data, threads_used).tobytes() == expected.tobytes()
    for where in {0, size // 3, (size // 2 + 5) % size, size - 1} if size else ():
        changed = data.copy()
        changed[where] ^= 1 << int(rng.integers(8))
        assert (conv.fingerprint(changed, 2) != expected).any()
    with pytest.raises(TypeError, match="C-contiguous"):
        conv.fingerprint(np.zeros((4, 4))[:, ::2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("layer", [(1, 28, 6, 5, 2),    # the rows of pooled windows
                                   (3, 18, 8, 3, 1),    # the pairs of output rows
                                   (6, 14, 16, 5, 0),   # the register tile
                                   (16, 48, 8, 3, 1)])  # ... its padded rows cut by thread
def test_scratch_kept_between_calls_never_leaks_into_a_result(isa, layer, dtype):
    # A plan keeps each Python thread's scratch (padded images, padded bias) for its next
    # call: a call after another on NaN inputs, at another batch size and thread count, and
    # calls from two threads at once give the bits of the first call.
    c, size, f, k, padding = layer
    rng = np.random.default_rng(size)
    x = rng.standard_normal((1, c, size, size)).astype(dtype)
    nan = np.full((3, c, size, size), np.nan, dtype)
    w = rng.standard_normal((f, c, k, k)).astype(dtype)
    b = rng.standard_normal(f).astype(dtype)
    plan = dc.plan(x, w, 1, padding)

    def results(images, weight, bias, threads):
        return (plan.forward(images, weight, bias, num_threads=threads)[0],
                plan.forward(images, weight, bias, relu=True, num_threads=threads)[0],
                plan.forward_relu_pool(images, weight, bias, num_threads=threads)[0])

    first = results(x, w, b, 2)
    np.testing.assert_allclose(first[0], conv_reference(x, w, b, (1, 1), (padding,) * 2,
                                                        (1, 1)), **tolerance(dtype))
    for n in (1, 2):
        assert np.isnan(results(nan, w, None, n)[0]).all()
        again = results(x, w, b, 2 if n == 1 else 1)
        for one, two in zip(first, again):
            assert one.tobytes() == two.tobytes()
    failures = []

    def hammer(images, expected):
        for _ in range(30):
            if any(one.tobytes() != two.tobytes()
                   for one, two in zip(results(images, w, b, 1), expected)):
                failures.append(images.shape)
    other = rng.standard_normal((1, c, size, size)).astype(dtype)
    workers = [threading.Thread(target=hammer, args=(images, results(images, w, b, 1)))
               for images in (x, other)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert not failures


@pytest.mark.parametrize("shape", [(0, 2, 6, 6), (3, 2, 6, 6)])
def test_no_images_or_no_output_channels_give_zero_gradients(isa, shape):
    x = np.ones(shape, np.float32)
    w = np.ones((0 if shape[0] else 3, 2, 3, 3), np.float32)
    grad_x, grad_w, grad_b = dc.conv2d_backward(x, w, np.ones((shape[0], w.shape[0], 4, 4),
                                                               np.float32))
    assert grad_x.shape == shape and not grad_x.any()
    assert grad_w.shape == w.shape and grad_b.shape == (w.shape[0],)
    assert not grad_w.any() and not grad_b.any()


def _x():
    return np.zeros((1, 2, 6, 6), np.float32)


@pytest.mark.parametrize("call, error, words", [
    (lambda: dc.conv2d_forward(_x(), np.zeros((3, 1, 3, 3), np.float32)), ValueError, "weight"),
    (lambda: dc.conv2d_forward(_x(), np.zeros((3, 2, 3, 3), np.float64)), TypeError, "weight"),
    (lambda: dc.conv2d_forward(_x(), np.zeros((3, 2, 3, 3), np.float32), np.zeros(2, np.float32)),
     ValueError, "bias"),
    (lambda: dc.conv2d_forward(_x(), np.zeros((3, 2, 7, 7), np.float32)), ValueError, "kernel"),
    (lambda: dc.conv2d_relu_max_pool2d(_x(), np.zeros((3, 2, 6, 6), np.float32)), ValueError,
     "pooling"),
    (lambda: dc.conv2d_backward(_x(), np.zeros((3, 2, 3, 3), np.float32),
                                np.zeros((1, 3, 3, 3), np.float32)), ValueError, "grad_output"),
    (lambda: dc.conv2d_backward(_x(), np.zeros((3, 2, 3, 3), np.float32),
                                np.zeros((1, 3, 4, 4), np.float32), needs=(True, True)),
     ValueError, "needs"),
    (lambda: dc.conv2d_relu_max_pool2d_backward(
        _x(), np.zeros((3, 2, 3, 3), np.float32), np.zeros((1, 3, 2, 2), np.float32),
        np.zeros((1, 3, 2, 2), np.float32), np.zeros((1, 3, 2, 2), np.int32)), TypeError,
     "indices"),
    (lambda: dc.conv2d_relu_max_pool2d_backward(
        _x(), np.zeros((3, 2, 3, 3), np.float32), np.zeros((1, 3, 2, 2), np.float32),
        np.zeros((1, 3, 2, 1), np.float32), np.zeros((1, 3, 2, 2), np.int64)), ValueError,
     "pooled"),
    (lambda: dc.plan(_x(), np.zeros((3, 2, 3, 3), np.float32)).forward(
        _x(), np.zeros((3, 2, 3, 3), np.float32), keep_packing="yes"), TypeError, "keep_packing"),
    (lambda: dc.plan(_x(), np.zeros((3, 2, 3, 3), np.float32)).forward_relu_pool(
        _x(), np.zeros((3, 2, 3, 3), np.float32), keep_packing=2), TypeError, "keep_packing"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_im2col_reference_still_agrees():
    # The references above build on im2col_numpy; tie it to the compiled im2col once more here.
    x = np.random.default_rng(3).standard_normal((2, 3, 7, 6)).astype(np.float32)
    np.testing.assert_array_equal(im2col(x, 3, 2, 1), im2col_numpy(x, (3, 3), (2, 2), (1, 1),
                                                                  (1, 1)))
