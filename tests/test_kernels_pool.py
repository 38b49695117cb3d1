"""Max-pool and average-pool kernels against loop references (PyTorch's rules) and PyTorch."""
import math

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cnn
import cnn.nn.functional as F
from kernel_calls import avg_pool2d, avg_pool2d_backward, max_pool2d, max_pool2d_backward


def out_size(size, k, s, p, d, ceil_mode):
    numerator = size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)
    out = numerator // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def max_pool_loops(x, k, s, p, d, ceil_mode):
    """PyTorch's rule, one window at a time: first maximum wins, NaN wins, padding is skipped."""
    n, c, h, w = x.shape
    oh, ow = (out_size(size, *args, ceil_mode) for size, *args in zip((h, w), k, s, p, d))
    values = np.empty((n, c, oh, ow), x.dtype)
    indices = np.empty((n, c, oh, ow), np.int64)
    for b, ch, oy, ox in np.ndindex(n, c, oh, ow):
        best, best_index = -math.inf, None
        for i in range(k[0]):
            for j in range(k[1]):
                y, xx = oy * s[0] - p[0] + i * d[0], ox * s[1] - p[1] + j * d[1]
                if not (0 <= y < h and 0 <= xx < w):
                    continue
                value = x[b, ch, y, xx]
                if best_index is None:
                    best_index = y * w + xx
                if value > best or math.isnan(value):
                    best, best_index = value, y * w + xx
        values[b, ch, oy, ox] = best
        indices[b, ch, oy, ox] = -1 if best_index is None else best_index
    return values, indices


def avg_window(o, k, s, p, size):
    start = o * s - p
    stop = min(start + k, size + p)
    return max(start, 0), min(stop, size), stop - start


def avg_pool_loops(x, k, s, p, ceil_mode, count_include_pad):
    n, c, h, w = x.shape
    oh, ow = (out_size(size, kk, ss, pp, 1, ceil_mode) for size, kk, ss, pp in zip((h, w), k, s, p))
    out = np.zeros((n, c, oh, ow), np.float64)
    for oy, ox in np.ndindex(oh, ow):
        y0, y1, padded_h = avg_window(oy, k[0], s[0], p[0], h)
        x0, x1, padded_w = avg_window(ox, k[1], s[1], p[1], w)
        if y0 >= y1 or x0 >= x1:
            continue
        divisor = padded_h * padded_w if count_include_pad else (y1 - y0) * (x1 - x0)
        out[:, :, oy, ox] = x[:, :, y0:y1, x0:x1].astype(np.float64).sum(axis=(2, 3)) / divisor
    return out


@st.composite
def pool_cases(draw, dilation=True, specials=True, min_batch=0):
    n, c = draw(st.integers(min_batch, 2)), draw(st.integers(1, 3))
    h, w = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    p = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    d = (draw(st.integers(1, 3)), draw(st.integers(1, 3))) if dilation else (1, 1)
    ceil_mode = draw(st.booleans())
    assume(all(dd * (kk - 1) + 1 <= size + 2 * pp
               for dd, kk, size, pp in zip(d, k, (h, w), p)))
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    # Few distinct values, so that windows hold ties; sometimes NaN and -inf too.
    x = rng.integers(-3, 3, size=(n, c, h, w)).astype(dtype)
    special = draw(st.sampled_from([None, np.nan, -np.inf])) if specials else None
    if special is not None and x.size:
        x[rng.random(x.shape) < 0.2] = special
    return x, k, s, p, d, ceil_mode


@given(pool_cases())
def test_max_pool_matches_pytorchs_rule(isa, case):
    x, k, s, p, d, ceil_mode = case
    values, indices = max_pool2d(x, k, s, p, d, ceil_mode)
    ref_values, ref_indices = max_pool_loops(x, k, s, p, d, ceil_mode)
    assert values.dtype == x.dtype and indices.dtype == np.int64
    np.testing.assert_array_equal(values, ref_values)
    np.testing.assert_array_equal(indices, ref_indices)


@given(pool_cases())
def test_max_pool_backward_scatters_through_the_indices(isa, case):
    x, k, s, p, d, ceil_mode = case
    values, indices = max_pool2d(x, k, s, p, d, ceil_mode)
    grad = np.random.default_rng(1).standard_normal(values.shape).astype(x.dtype)
    expected = np.zeros(x.shape, x.dtype)
    n, c, h, w = x.shape
    for b, ch, oy, ox in np.ndindex(*values.shape):
        index = indices[b, ch, oy, ox]
        if index >= 0:
            expected[b, ch, index // w, index % w] += grad[b, ch, oy, ox]
    got = max_pool2d_backward(grad, indices, x.shape)
    tol = 1e-6 if x.dtype == np.float32 else 1e-14
    np.testing.assert_allclose(got, expected, rtol=tol, atol=tol)


@given(pool_cases(dilation=False, specials=False), st.booleans())
def test_avg_pool_matches_the_reference(isa, case, count_include_pad):
    x, k, s, p, _, ceil_mode = case
    out = avg_pool2d(x, k, s, p, ceil_mode, count_include_pad)
    tol = 1e-6 if x.dtype == np.float32 else 1e-13
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out, avg_pool_loops(x, k, s, p, ceil_mode, count_include_pad),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kernel, stride, padding", [(3, 2, 1), (9, 9, 0)])
def test_avg_pool_sums_each_plane_alone_whatever_its_neighbours(isa, threads, dtype, kernel,
                                                                 stride, padding):
    # The kernel sums groups of planes side by side: each plane's means must be the bits of
    # that plane pooled alone (its values added in window order), wherever it falls in a
    # group (13 channels: groups straddle the images) and at any thread count.
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((3, 13, 9, 9)) * 1e4).astype(dtype)
    alone = np.concatenate([avg_pool2d(np.ascontiguousarray(x[b:b + 1, c:c + 1]), kernel,
                                       stride, padding)
                            for b in range(3) for c in range(13)])
    for n in (1, 2):
        cnn.set_num_threads(n)
        pooled = avg_pool2d(x, kernel, stride, padding)
        assert pooled.tobytes() == alone.reshape(pooled.shape).tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("size", [(7, 7), (4, 4), (1, 3)])  # 49 values (3 x 16 + 1), 16, 3
def test_a_global_avg_pool_is_the_planes_mean_at_any_thread_count(isa, threads, dtype, size):
    # A window covering the whole plane sums it in partial sums (pool.pyx's _plane_sum): the
    # means of float64 sums within rounding, the same bits on 1 and 2 threads (2048 planes:
    # enough values to share them) and for a plane pooled alone.
    rng = np.random.default_rng(11)
    x = (rng.standard_normal((64, 32) + size) * 100).astype(dtype)
    expected = x.astype(np.float64).mean(axis=(2, 3), keepdims=True)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        results.append(avg_pool2d(x, size, size, 0))
    tol = 1e-5 if dtype == np.float32 else 1e-13
    np.testing.assert_allclose(results[0], expected, rtol=tol, atol=tol)
    assert results[0].tobytes() == results[1].tobytes()
    alone = avg_pool2d(np.ascontiguousarray(x[5:6, 7:8]), size, size, 0)
    assert alone.tobytes() == results[0][5:6, 7:8].tobytes()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(1, 64, 8, 8), (3, 5, 7, 2), (2, 600, 7, 7), (0, 4, 2, 2)])
def test_global_avg_pool_gives_avg_pool_forwards_bits(isa, threads, dtype, shape):
    # The buffer-taking entry (pooling.avg_pool's global windows) against the general
    # kernel's whole-plane window, on 1 and 2 threads (2 x 600 x 49 values: shared).
    x = (np.random.default_rng(4).standard_normal(shape) * 100).astype(dtype)
    n, c, h, w = shape
    general = np.empty((n * c, 1, 1), dtype)
    pool = cnn._ext.backend.pool
    pool.avg_pool_forward(x.reshape(n * c, h, w), general, h, w, h, w, 0, 0, True, 1)
    for count in (1, 2):
        out = np.full((n, c, 1, 1), np.nan, dtype)
        pool.global_avg_pool(x, out, count)
        assert out.tobytes() == general.tobytes()


@pytest.mark.parametrize("x, out, error, words", [
    (np.ones((2, 3, 4, 4)), np.empty((2, 3, 1, 1), np.float32), TypeError, "out: expected"),
    (np.ones((2, 3, 4, 4)), np.empty((2, 4, 1, 1)), ValueError, r"out: expected shape \(2, 3"),
    (np.ones((2, 3, 4, 4)), np.empty((2, 3, 2, 1)), ValueError, "out: expected shape"),
    (np.ones((2, 3, 0, 4)), np.empty((2, 3, 1, 1)), ValueError, "x: expected planes"),
    (np.ones((2, 3, 4)), np.empty((2, 3, 1, 1)), TypeError, "x: expected a 4-D"),
    (np.ones((2, 3, 4, 4))[:, :, ::2], np.empty((2, 3, 1, 1)), ValueError, "x: expected a C"),
    (np.ones((2, 3, 4, 4)), np.empty((2, 3, 1, 1)).view(np.int64), TypeError, "out: expected"),
])
def test_global_avg_pool_refuses_arrays_that_do_not_fit(x, out, error, words):
    with pytest.raises(error, match=words):
        cnn._ext.backend.pool.global_avg_pool(x, out, 1)


@given(pool_cases(dilation=False), st.booleans())
def test_avg_pool_backward_is_the_adjoint(isa, case, count_include_pad):
    x, k, s, p, _, ceil_mode = case
    x = np.random.default_rng(2).standard_normal(x.shape).astype(x.dtype)
    out = avg_pool2d(x, k, s, p, ceil_mode, count_include_pad)
    grad = np.random.default_rng(3).standard_normal(out.shape).astype(x.dtype)
    back = avg_pool2d_backward(grad, x.shape, k, s, p, ceil_mode, count_include_pad)
    # <avg_pool(x), g> == <x, avg_pool_backward(g)> for the linear map avg_pool
    lhs = np.vdot(out.astype(np.float64), grad.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), back.astype(np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-5, atol=1e-5)


def test_ties_give_the_first_maximum_and_nan_wins(isa):
    x = np.array([[[[1, 1], [1, 1]]]], np.float32)
    assert max_pool2d(x, 2)[1].item() == 0
    x = np.array([[[[1, np.nan], [5, np.nan]]]], np.float32)
    values, indices = max_pool2d(x, 2)
    assert np.isnan(values.item()) and indices.item() == 3  # the last NaN, as PyTorch
    x = np.full((1, 1, 2, 2), -np.inf, np.float64)
    assert max_pool2d(x, 2, padding=1)[1].ravel().tolist() == [0, 1, 2, 3]


def test_window_over_padding_only_is_marked_empty(isa):
    # Dilation 3 with padding 1 over a 2-wide input: the window's positions are -1 and 2.
    values, indices = max_pool2d(np.ones((1, 1, 2, 2), np.float32), (1, 2), 1, (0, 1), (1, 3))
    assert indices[0, 0, :, 0].tolist() == [-1, -1] and np.isneginf(values[0, 0, :, 0]).all()
    grad = max_pool2d_backward(np.ones_like(values), indices, (1, 1, 2, 2))
    np.testing.assert_array_equal(grad, np.zeros((1, 1, 2, 2)))


def test_forged_indices_cannot_write_outside_the_plane(isa):
    indices = np.array([[[[-5, 4, 10**12]]]], np.int64)
    grad = max_pool2d_backward(np.ones((1, 1, 1, 3), np.float32), indices, (1, 1, 2, 2))
    assert grad.sum() == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_at_one_and_two_threads(isa, threads, rng, dtype):
    x = rng.standard_normal((32, 16, 20, 20)).astype(dtype)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        values, indices = max_pool2d(x, 3, 2, 1)
        avg = avg_pool2d(x, 3, 2, 1)
        results.append((values, indices, max_pool2d_backward(values, indices, x.shape), avg,
                        avg_pool2d_backward(avg, x.shape, 3, 2, 1)))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_batch_zero_and_noncontiguous(isa, rng):
    values, indices = max_pool2d(np.zeros((0, 3, 4, 4), np.float32), 2)
    assert values.shape == indices.shape == (0, 3, 2, 2)
    assert max_pool2d_backward(values, indices, (0, 3, 4, 4)).shape == (0, 3, 4, 4)
    x = rng.standard_normal((2, 4, 6, 6))[:, ::2]  # every other channel: not contiguous
    np.testing.assert_array_equal(max_pool2d(x, 2)[0], max_pool2d(x.copy(), 2)[0])
    np.testing.assert_array_equal(avg_pool2d(x, 2), avg_pool2d(x.copy(), 2))



def _torch():
    return pytest.importorskip("torch")


@given(pool_cases(min_batch=1))
def test_max_pool_matches_pytorch(isa, case):
    torch = _torch()
    x, k, s, p, d, ceil_mode = case
    values, indices = max_pool2d(x, k, s, p, d, ceil_mode)
    ref, ref_indices = torch.nn.functional.max_pool2d(torch.from_numpy(x), k, s, p, d,
                                                      ceil_mode=ceil_mode, return_indices=True)
    valid = indices >= 0  # torch leaves an out-of-plane index for windows over padding only
    np.testing.assert_array_equal(values, ref.numpy())
    np.testing.assert_array_equal(indices[valid], ref_indices.numpy()[valid])


@given(pool_cases(dilation=False, specials=False, min_batch=1), st.booleans())
def test_avg_pool_matches_pytorch(isa, case, count_include_pad):
    torch = _torch()
    x, k, s, p, _, ceil_mode = case
    out = avg_pool2d(x, k, s, p, ceil_mode, count_include_pad)
    ref = torch.nn.functional.avg_pool2d(torch.from_numpy(x), k, s, p, ceil_mode,
                                         count_include_pad)
    np.testing.assert_allclose(out, ref.numpy(), rtol=1e-6, atol=1e-6)


def _x():
    return cnn.tensor(np.zeros((1, 1, 4, 4), np.float32))


@pytest.mark.parametrize("call, error, words", [
    (lambda: F.max_pool2d(_x(), 0), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 5), ValueError, "kernel_size"),
    (lambda: F.max_pool2d(_x(), 2, stride=0), ValueError, "stride"),
    (lambda: F.max_pool2d(_x(), 2, padding=2), ValueError, "padding"),
    (lambda: F.max_pool2d(_x(), 2, padding=-1), ValueError, "padding"),
    (lambda: F.max_pool2d(_x(), 2, dilation=0), ValueError, "dilation"),
    (lambda: F.max_pool2d(_x(), 2, ceil_mode="yes"), TypeError, "ceil_mode"),
    (lambda: F.max_pool2d(_x()[0, 0], 2), ValueError, "input"),
    (lambda: F.max_pool2d(_x().long(), 2), TypeError, "input"),
    (lambda: F.avg_pool2d(_x(), 2, count_include_pad=None), TypeError, "count_include_pad"),
    (lambda: F.avg_pool2d(_x(), 2, padding=(1, 2)), ValueError, "padding"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, words):
    """The geometry is checked where the public functions take it (cnn/_ext/geometry.py)."""
    with pytest.raises(error, match=words):
        call()


@pytest.mark.parametrize("call, words", [
    (lambda: max_pool2d_backward(np.zeros((1, 1, 2, 2), np.float32),
                                 np.zeros((1, 1, 2, 2), np.int32), (1, 1, 4, 4)), "dtype"),
    (lambda: max_pool2d_backward(np.zeros((1, 1, 2, 2), np.float32),
                                 np.zeros((1, 1, 2, 3), np.int64), (1, 1, 4, 4)), "reshape"),
    (lambda: max_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32),
                                 np.zeros((1, 2, 2, 2), np.int64), (1, 1, 4, 4)), "reshape"),
    (lambda: cnn._ext.backend.pool.max_pool_backward(
        np.zeros((2, 4), np.float32), np.zeros((2, 3), np.int64), np.zeros((2, 16), np.float32),
        1), "indices"),
    (lambda: cnn._ext.backend.pool.max_pool_forward(
        np.zeros((2, 4, 4), np.float32), np.zeros((2, 2, 2), np.float32),
        np.zeros((2, 2, 2), np.int64), 2, 2, 0, 2, 0, 0, 1, 1, 1), "stride"),
    (lambda: cnn._ext.backend.pool.avg_pool_forward(
        np.zeros((2, 4, 4), np.float32), np.zeros((3, 2, 2), np.float32), 2, 2, 2, 2, 0, 0,
        True, 1), "planes"),
])
def test_the_kernels_refuse_arrays_that_do_not_fit(call, words):
    """Below the public functions nothing re-checks the geometry, but the kernels' entry points
    still refuse arrays that would take them outside memory (an error, never a crash)."""
    with pytest.raises((ValueError, TypeError), match=words):
        call()


def test_the_kernels_stay_inside_their_arrays_for_any_output_size(isa):
    """An output larger or smaller than the geometry gives reads and writes nothing outside the
    planes: every window is clipped to its plane."""
    x = np.arange(32, dtype=np.float32).reshape(2, 4, 4)
    for out_size in ((1, 1), (2, 2), (7, 9)):
        out = np.full((2,) + out_size, np.nan, np.float32)
        cnn._ext.backend.pool.avg_pool_forward(x, out, 2, 2, 2, 2, 1, 1, True, 1)
        assert np.isfinite(out).all()
        indices = np.empty((2,) + out_size, np.int64)
        cnn._ext.backend.pool.max_pool_forward(x, out, indices, 2, 2, 2, 2, 1, 1, 1, 1, 1)
        assert ((indices == -1) | ((indices >= 0) & (indices < 16))).all()
        grad = np.zeros((2, 16), np.float32)
        cnn._ext.backend.pool.max_pool_backward(np.ones((2, indices[0].size), np.float32),
                                                indices.reshape(2, -1), grad, 1)
        assert grad.sum() == (indices >= 0).sum()
