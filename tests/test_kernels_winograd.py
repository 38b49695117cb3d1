"""Winograd F(2x2, 3x3) convolutions (the plans of wide 3x3 layers) against NumPy references."""
import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import cnn
import kernel_calls as dc
from cnn import _ext
from kernel_calls import max_pool2d

from test_kernels_direct_conv import _input_gradient_reference, conv_reference, tolerance
from test_kernels_im2col import im2col_numpy


@st.composite
def winograd_problems(draw):
    """3x3 convolutions at stride 1 that the plans run by Winograd: 16 or more input channels,
    more than 8 output channels, odd and even sizes (tiles hanging over the output)."""
    n = draw(st.integers(0, 4))
    c = draw(st.integers(16, 40))
    # Up to 24x24 inputs and 4 images: both sides of WINOGRAD_MIN_OUTPUTS.
    f = draw(st.integers(9, 40))
    p = (draw(st.integers(0, 2)), draw(st.integers(0, 2)))
    h = draw(st.integers(max(1, 3 - 2 * p[0]), 24))
    w = draw(st.integers(max(1, 3 - 2 * p[1]), 24))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    weight = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    bias = rng.standard_normal(f).astype(dtype) if draw(st.booleans()) else None
    return x, weight, bias, p


@pytest.mark.parametrize("kernel, stride, dilation, channels, out_channels, algorithm", [
    (3, 1, 1, 16, 9, "winograd"),
    (3, 1, 1, 15, 32, "direct"),   # too few input channels
    (3, 1, 1, 32, 8, "direct"),    # the narrow tile's layers
    (3, 2, 1, 32, 32, "direct"),
    (3, 1, 2, 32, 32, "direct"),
    (5, 1, 1, 32, 32, "direct"),
])
def test_the_plan_chooses_winograd_for_wide_3x3_layers(kernel, stride, dilation, channels,
                                                        out_channels, algorithm):
    plan = _ext.conv_plan((channels, 12, 12), (out_channels, channels, kernel, kernel), stride,
                          1, dilation)
    assert plan.algorithm == algorithm


@given(winograd_problems(), st.booleans())
def test_forward_matches_the_reference(isa, problem, relu):
    x, w, b, p = problem
    assert dc.plan(x, w, padding=p).algorithm == "winograd"  # Winograd or direct by the size
    out = dc.conv2d_forward(x, w, b, padding=p, relu=relu)
    expected = conv_reference(x, w, b, (1, 1), p, (1, 1))
    if relu:
        expected = np.maximum(expected, 0)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out, expected, **tolerance(x.dtype))


@given(winograd_problems())
def test_gradients_match_the_reference(isa, problem):
    x, w, _, p = problem
    g = conv_reference(x, w, None, (1, 1), p, (1, 1))
    g = np.random.default_rng(0).standard_normal(g.shape).astype(x.dtype)
    grad_x, grad_w, grad_b = dc.conv2d_backward(x, w, g, padding=p)
    cols = im2col_numpy(x.astype(np.float64), (3, 3), (1, 1), p, (1, 1))
    pixels = g.shape[2] * g.shape[3]
    expected_w = np.einsum("nfp,nkp->fk", g.reshape(g.shape[0], g.shape[1], pixels), cols)
    np.testing.assert_allclose(grad_x, _input_gradient_reference(x, w, g, (1, 1), p, (1, 1)),
                               **tolerance(x.dtype))
    np.testing.assert_allclose(grad_w, expected_w.reshape(w.shape), **tolerance(x.dtype))
    np.testing.assert_allclose(grad_b, g.astype(np.float64).sum(axis=(0, 2, 3)),
                               **tolerance(x.dtype))


@given(winograd_problems())
def test_fused_relu_pool_equals_the_separate_kernels(isa, problem):
    x, w, b, p = problem
    out = dc.conv2d_forward(x, w, b, padding=p, relu=True)
    if out.shape[2] < 2 or out.shape[3] < 2:
        return
    pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b, padding=p)
    expected, expected_indices = max_pool2d(out, 2)
    assert pooled.tobytes() == expected.tobytes()
    assert np.array_equal(indices, expected_indices)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("relu", [True, False])
def test_batch_norm_epilogue_gives_the_bits_of_the_separate_kernel(isa, rng, dtype, relu):
    # 3 images of 17 x 15 outputs: enough for Winograd (WINOGRAD_MIN_OUTPUTS), with an odd
    # row width (the output rows' last, unpaired value).
    x = rng.standard_normal((3, 16, 17, 15)).astype(dtype)
    w = rng.standard_normal((20, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(20).astype(dtype)
    batch_norm = dc.random_batch_norm(rng, 20, dtype)
    plan = dc.plan(x, w, padding=1)
    assert plan.algorithm == "winograd" and 3 * 17 * 15 >= _ext.backend.conv.WINOGRAD_MIN_OUTPUTS
    fused = plan.forward(x, w, b, relu=relu, batch_norm=batch_norm)[0]
    out = plan.forward(x, w, b)[0]
    planes = out.reshape(3, 20, -1)
    _ext.backend.norm.normalize(planes, *dc.batch_norm_rows(batch_norm), planes, relu, 1)
    assert fused.tobytes() == out.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("width", [
    13,    # 7 tiles a row: the output transform takes 9 rows of tiles at a time
    70,    # 35 tiles: one row at a time
    150])  # 75 tiles: a row in two parts (64 tiles, then 11)
def test_rows_of_tiles_of_any_length_reach_the_reference(isa, rng, dtype, width):
    # 5 rows of output (3 rows of tiles, the last one half outside), each form of the plain
    # output: bias, batch norm's map, ReLU, the residual.
    x = rng.standard_normal((2, 16, 5, width)).astype(dtype)
    w = rng.standard_normal((16, 16, 3, 3)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    residual = rng.standard_normal((2, 16, 5, width)).astype(dtype)
    batch_norm = dc.random_batch_norm(rng, 16, dtype)
    plan = dc.plan(x, w, padding=1)
    assert plan.algorithm == "winograd"
    out = plan.forward(x, w, b)[0]
    expected = conv_reference(x, w, b, (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(out, expected, **tolerance(dtype))
    mean, scale, shift = dc.batch_norm_rows(batch_norm)
    expected = (expected - mean[:, None, None]) * scale[:, None, None] + shift[:, None, None]
    fused = plan.forward(x, w, b, relu=True, batch_norm=batch_norm, residual=residual)[0]
    np.testing.assert_allclose(fused, np.maximum(expected + residual, 0), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("batch, channels", [
    (5, 24),
    (1, 64),  # batch 1 with work enough for 2 threads to share each image's channels
])
def test_bit_identical_at_one_and_two_threads(isa, threads, small_layers_shared, rng, dtype,
                                              batch, channels):
    x = rng.standard_normal((batch, channels, 32, 31)).astype(dtype)
    w = rng.standard_normal((channels, channels, 3, 3)).astype(dtype)
    b = rng.standard_normal(channels).astype(dtype)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        out = dc.conv2d_forward(x, w, b, padding=1)
        pooled, indices = dc.conv2d_relu_max_pool2d(x, w, b, padding=1)
        results.append((out, pooled, indices, *dc.conv2d_backward(x, w, out, padding=1)))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n, c, f, size", [
    # 96 input channels and 24 outputs (a group and a half of lanes): the team shares the
    # weights' transform group by group, and the blocks' partial weight gradients are added
    # 64 input channels at a time, then the last 32; 20 images: 10 blocks of 2.
    (20, 96, 24, (9, 10)),
    # 40 images of 20 x 20: blocks of 3 images, each transformed 2 images at a time
    # (_weight_grad_chunk), the second chunk's products added to the first's; the last block
    # has one image.
    (40, 16, 16, (20, 20)),
])
def test_many_channels_and_blocks(isa, threads, small_layers_shared, rng, dtype, n, c, f, size):
    # The reference's values, the same bits at 1 and 2 threads.
    x = rng.standard_normal((n, c) + size).astype(dtype)
    w = rng.standard_normal((f, c, 3, 3)).astype(dtype)
    g = rng.standard_normal((n, f) + size).astype(dtype)
    assert dc.plan(x, w, padding=1).algorithm == "winograd"
    results = []
    for team in (1, 2):
        cnn.set_num_threads(team)
        results.append((dc.conv2d_forward(x, w, padding=1),
                        dc.conv2d_backward(x, w, g, padding=1, needs=(False, True, False))[1]))
    out, grad_w = results[0]
    cols = im2col_numpy(x.astype(np.float64), (3, 3), (1, 1), (1, 1), (1, 1))
    expected = np.einsum("nfp,nkp->fk", g.reshape(n, f, -1), cols).reshape(w.shape)
    np.testing.assert_allclose(out, conv_reference(x, w, None, (1, 1), (1, 1), (1, 1)),
                               **tolerance(dtype))
    np.testing.assert_allclose(grad_w, expected, **tolerance(dtype))
    for one, two in zip(*results):
        assert one.tobytes() == two.tobytes()


@pytest.mark.parametrize("c, f, size", [
    (64, 64, 16),   # 9.4M multiply-adds, 18 a byte of transformed values (cut by rows)
    (32, 64, 16),   # 4.7M, 12 a byte: the CIFAR net's second layer
    (16, 16, 32),   # 2.4M, 4.5 a byte: ResNet-8's first stage
    (64, 64, 8),    # 2.4M in 16 tiles: ResNet-8's last stage
    (128, 128, 8)])  # 9.4M in 16 tiles
def test_an_image_gives_the_same_bits_alone_and_in_a_batch(isa, threads, rng, c, f, size):
    # Layers with enough arithmetic run by Winograd at batch 1 too (WINOGRAD_MIN_MACS_ALONE,
    # WINOGRAD_MIN_MACS_PER_BYTE_ALONE): the bits of an image alone are its bits in a batch.
    x = rng.standard_normal((6, c, size, size)).astype(np.float32)
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    cnn.set_num_threads(2)
    batch = dc.conv2d_forward(x, w, padding=1)
    alone = dc.conv2d_forward(x[2:3], w, padding=1)
    assert alone.tobytes() == batch[2:3].tobytes()
    np.testing.assert_allclose(alone, conv_reference(x[2:3], w, None, (1, 1), (1, 1), (1, 1)),
                               **tolerance(np.float32))


@pytest.mark.parametrize("shape", [(16, 16), (17, 15)])  # even, and odd with a partial tile
def test_an_image_cut_by_rows_of_tiles_gives_the_bits_of_one_thread(isa, rng, shape):
    # On two threads a single image of enough tiles is cut into rows of tiles, each thread
    # computing all the output channels of its rows (the pooled, batch norm, residual and
    # ReLU forms included): the bits of one thread and of the image in a batch.
    c = f = 64
    x = rng.standard_normal((2, c) + shape).astype(np.float32)
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    b = rng.standard_normal(f).astype(np.float32)
    residual = rng.standard_normal((2, f) + shape).astype(np.float32)
    batch_norm = dc.random_batch_norm(rng, f, np.float32)
    plan = dc.plan(x, w, padding=1)
    assert ((shape[0] + 1) // 2) // 2 * ((shape[1] + 1) // 2) >= 32  # rows of tiles

    def forms(images, threads):
        return (plan.forward(images, w, b, num_threads=threads)[0],
                plan.forward(images, w, b, relu=True, batch_norm=batch_norm,
                             residual=residual[:images.shape[0]], num_threads=threads)[0],
                *plan.forward_relu_pool(images, w, b, threads))

    batch = forms(x, 2)
    for threads in (2, 1):
        for alone, in_batch in zip(forms(x[:1], threads), batch):
            assert alone.tobytes() == in_batch[:1].tobytes()
    expected = conv_reference(x, w, b, (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(batch[0], expected, **tolerance(np.float32))
    mean, scale, shift = (v.reshape(1, -1, 1, 1) for v in dc.batch_norm_rows(batch_norm))
    np.testing.assert_allclose(batch[1], np.maximum((expected - mean) * scale + shift
                                                    + residual, 0), rtol=1e-4, atol=1e-3)
    pooled, indices = max_pool2d(np.maximum(batch[0], 0), 2)
    assert batch[2].tobytes() == pooled.tobytes() and batch[3].tobytes() == indices.tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layers_sharing_the_scratch_never_see_each_others_values(isa, threads, rng, dtype):
    # Every plan of a Python thread runs its Winograd forward in one kept scratch
    # (_winograd_scratch): a layer gives the same bits after a larger layer left NaNs there,
    # after calls on one thread then two (the scratch regrown for the second row), and in a
    # fresh thread's new scratch.
    small = [rng.standard_normal((1, 64, 16, 16)).astype(dtype),
             rng.standard_normal((64, 64, 3, 3)).astype(dtype)]
    large = np.full((2, 48, 24, 24), np.nan, dtype)
    large_w = rng.standard_normal((32, 48, 3, 3)).astype(dtype)
    plan, large_plan = dc.plan(*small, padding=1), dc.plan(large, large_w, padding=1)
    assert plan.algorithm == large_plan.algorithm == "winograd"

    def forms(threads_used):
        return (plan.forward(*small, num_threads=threads_used)[0],
                *plan.forward_relu_pool(*small, num_threads=threads_used))

    results = {}
    thread = threading.Thread(target=lambda: results.setdefault("fresh", forms(2)))
    thread.start()
    thread.join()
    for threads_used in (1, 2, 1):
        assert np.isnan(large_plan.forward(large, large_w, num_threads=threads_used)[0]).all()
        for value, expected in zip(forms(threads_used), results["fresh"]):
            assert value.tobytes() == expected.tobytes()
    np.testing.assert_allclose(results["fresh"][0], conv_reference(*small, None, (1, 1), (1, 1),
                                                                   (1, 1)), **tolerance(dtype))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_scratch_rows_start_on_cache_lines(isa, rng, dtype):
    # The products load V and M a vector of tiles at a time, at multiples of 16 values from
    # each thread's row of the scratch (_winograd_scratch): a row starting inside a cache line
    # split most of those loads in two (cnn/_aligned.py). Kept rows, and rows regrown for a
    # larger layer or team, start on 64-byte boundaries, a whole number of lines apart.
    module = _ext.backend.conv
    key = "double" if dtype == np.float64 else "float"
    for c, size, threads_used in ((32, 16, 1), (64, 16, 2), (48, 24, 2)):
        x = rng.standard_normal((1, c, size, size)).astype(dtype)
        w = rng.standard_normal((c, c, 3, 3)).astype(dtype)
        plan = dc.plan(x, w, padding=1)
        assert plan.runs_winograd(1)
        plan.forward(x, w, num_threads=threads_used)
        view, room, rows = getattr(module._WINOGRAD_SCRATCH, key)
        assert np.asarray(view).ctypes.data % 64 == 0
        assert room * np.dtype(dtype).itemsize % 64 == 0 and rows >= threads_used


@pytest.mark.parametrize("c, f, size", [
    (16, 16, 8),    # 8x8 outputs: at batch 8, 512 pixels (WINOGRAD_MIN_OUTPUTS)
    (16, 16, 24),   # a single image of 1.3M multiply-adds, below WINOGRAD_MIN_MACS_ALONE
    (32, 64, 8),    # 1.2M in 16 tiles: the same
    (16, 12, 48)])  # 3.6M, but 3.9 a byte of its transformed values
def test_small_calls_run_the_direct_kernels(isa, rng, c, f, size):
    x = rng.standard_normal((8, c, size, size)).astype(np.float32)
    w = rng.standard_normal((f, c, 3, 3)).astype(np.float32)
    direct = _ext.backend.conv.ConvPlan(x.shape[1:], w.shape, 1, 1)
    assert direct.algorithm == "winograd"
    alone = dc.conv2d_forward(x[:1], w, padding=1)
    batch = dc.conv2d_forward(x, w, padding=1)
    expected = conv_reference(x, w, None, (1, 1), (1, 1), (1, 1))
    np.testing.assert_allclose(alone, expected[:1], **tolerance(np.float32))
    np.testing.assert_allclose(batch, expected, **tolerance(np.float32))
    assert alone.tobytes() != batch[:1].tobytes()  # two algorithms: different rounding


def test_non_finite_inputs_stay_in_their_tiles(isa):
    x = np.zeros((1, 16, 8, 8), np.float32)
    x[0, 3, 0, 0] = np.inf
    w = np.ones((16, 16, 3, 3), np.float32)
    out = dc.conv2d_forward(x, w, padding=1)
    # The tile holding (0, 0) reads the infinity (inf - inf in its transform may give NaN);
    # every other tile is exact.
    assert np.all(out[:, :, 2:, :] == 0) and np.all(out[:, :, :, 2:] == 0)
    assert not np.isfinite(out[0, :, :2, :2]).all()


@pytest.mark.parametrize("shape", [
    (3, 16, 12, 12),  # Winograd
    (3, 3, 12, 11),   # direct
])
def test_pooling_without_indices_gives_the_same_values(isa, rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((20, shape[1], 3, 3)).astype(np.float32)
    plan = dc.plan(x, w, padding=1)
    pooled, indices = plan.forward_relu_pool(x, w, None, 2)
    alone, none = plan.forward_relu_pool(x, w, None, 2, with_indices=False)
    assert none is None and indices is not None
    assert alone.tobytes() == pooled.tobytes()


def test_the_fused_layer_without_gradients_gives_the_values_with_them(isa, rng):
    x = cnn.tensor(rng.standard_normal((2, 16, 10, 10)).astype(np.float32))
    w = cnn.tensor(rng.standard_normal((24, 16, 3, 3)).astype(np.float32), requires_grad=True)
    with cnn.no_grad():
        inference = cnn.nn.functional.conv2d_relu_max_pool2d(x, w, None, 1, 1)
    training = cnn.nn.functional.conv2d_relu_max_pool2d(x, w, None, 1, 1)
    training.sum().backward()
    assert inference.numpy().tobytes() == training.numpy().tobytes()
    assert w.grad is not None and np.isfinite(np.asarray(w.grad)).all()


@pytest.mark.parametrize("size, batch", [(8, 9), (7, 11), (4, 33), (3, 57)])
def test_small_images_share_the_products_with_the_same_bits(isa, threads, rng, size, batch):
    """Images of fewer tiles than the paired product's two vectors (8x8 outputs: 16 tiles,
    4x4: 4) go through the forward several at a time, their tiles side by side, and each
    batch here ends with a short item; it is large enough for Winograd (at least 512 output
    pixels). Thread counts that would leave a thread fewer than two items take one image at a
    time: the same bits either way, the reference's values, the pooled and residual forms
    included."""
    assert batch * size * size >= 512
    x = rng.standard_normal((batch, 16, size, size)).astype(np.float32)
    w = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)
    b = rng.standard_normal(24).astype(np.float32)
    residual = rng.standard_normal((batch, 24, size, size)).astype(np.float32)
    batch_norm = dc.random_batch_norm(rng, 24, np.float32)
    plan = dc.plan(x, w, padding=1)
    tiles = ((size + 1) // 2) ** 2
    assert plan.winograd_images == (32 // tiles if isa == "avx512" else 1)
    results = []
    for count in (1, 2, 3, 4):
        cnn.set_num_threads(count)
        out = plan.forward(x, w, b, relu=True, num_threads=count)[0]
        fused = plan.forward(x, w, None, True, False, count, batch_norm, residual)[0]
        pooled, indices = plan.forward_relu_pool(x, w, b, count)
        results.append([a.tobytes() for a in (out, fused, pooled, indices)])
    assert all(result == results[0] for result in results)
    expected = np.maximum(conv_reference(x, w, b, (1, 1), (1, 1), (1, 1)), 0)
    np.testing.assert_allclose(out, expected, **tolerance(x.dtype))
    np.testing.assert_allclose(pooled, max_pool2d(expected, 2)[0], **tolerance(x.dtype))
