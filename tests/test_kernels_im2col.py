"""im2col / col2im against a brute-force loop and a NumPy reference."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import cnn
from kernel_calls import col2im, im2col


def im2col_loops(x, k, s, p, d):
    """The definition, one element at a time."""
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = k, s, p, d
    n, c, h, w = x.shape
    oh = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    ow = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    cols = np.zeros((n, c * kh * kw, oh * ow), x.dtype)
    for b in range(n):
        for ch in range(c):
            for i in range(kh):
                for j in range(kw):
                    for oy in range(oh):
                        for ox in range(ow):
                            y, xx = oy * sh - ph + i * dh, ox * sw - pw + j * dw
                            if 0 <= y < h and 0 <= xx < w:
                                cols[b, (ch * kh + i) * kw + j, oy * ow + ox] = x[b, ch, y, xx]
    return cols


def _window_slices(k, s, d, out):
    """Per kernel offset (i, j): the strided slices of the padded input it reads."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = k, s, d, out
    for i in range(kh):
        for j in range(kw):
            yield i, j, (slice(i * dh, i * dh + sh * (oh - 1) + 1, sh),
                         slice(j * dw, j * dw + sw * (ow - 1) + 1, sw))


def im2col_numpy(x, k, s, p, d):
    """Whole-array reference: pad, then one strided slice per kernel offset."""
    n, c, h, w = x.shape
    (kh, kw), (ph, pw) = k, p
    padded = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out = tuple((size + 2 * pad - dil * (kk - 1) - 1) // st_ + 1
                for size, pad, dil, kk, st_ in zip((h, w), p, d, k, s))
    cols = np.empty((n, c, kh, kw) + out, x.dtype)
    for i, j, (rows, columns) in _window_slices(k, s, d, out):
        cols[:, :, i, j] = padded[:, :, rows, columns]
    return cols.reshape(n, c * kh * kw, out[0] * out[1])


def col2im_numpy(cols, shape, k, s, p, d):
    n, c, h, w = shape
    (kh, kw), (ph, pw) = k, p
    out = tuple((size + 2 * pad - dil * (kk - 1) - 1) // st_ + 1
                for size, pad, dil, kk, st_ in zip((h, w), p, d, k, s))
    padded = np.zeros((n, c, h + 2 * ph, w + 2 * pw), cols.dtype)
    blocks = cols.reshape(n, c, kh, kw, *out)
    for i, j, (rows, columns) in _window_slices(k, s, d, out):
        padded[:, :, rows, columns] += blocks[:, :, i, j]
    return padded[:, :, ph:ph + h, pw:pw + w]


pairs = st.tuples


@st.composite
def conv_cases(draw, max_size=9):
    """A valid (x, kernel, stride, padding, dilation) with small random geometry."""
    n = draw(st.integers(0, 3))
    c = draw(st.integers(1, 3))
    h, w = draw(st.integers(1, max_size)), draw(st.integers(1, max_size))
    k = draw(pairs(st.integers(1, 4), st.integers(1, 4)))
    s = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    p = draw(pairs(st.integers(0, 2), st.integers(0, 2)))
    d = draw(pairs(st.integers(1, 3), st.integers(1, 3)))
    assume(d[0] * (k[0] - 1) + 1 <= h + 2 * p[0] and d[1] * (k[1] - 1) + 1 <= w + 2 * p[1])
    dtype = draw(st.sampled_from([np.float32, np.float64]))
    seed = draw(st.integers(0, 2**32 - 1))
    x = np.random.default_rng(seed).standard_normal((n, c, h, w)).astype(dtype)
    return x, k, s, p, d


@given(conv_cases(max_size=6))
def test_im2col_matches_the_definition(isa, case):
    x, k, s, p, d = case
    np.testing.assert_array_equal(im2col(x, k, s, p, d), im2col_loops(x, k, s, p, d))


@given(conv_cases())
def test_im2col_matches_numpy(isa, case):
    x, k, s, p, d = case
    cols = im2col(x, k, s, p, d)
    assert cols.dtype == x.dtype
    np.testing.assert_array_equal(cols, im2col_numpy(x, k, s, p, d))


@given(conv_cases())
def test_col2im_matches_numpy_and_is_the_adjoint(isa, case):
    x, k, s, p, d = case
    cols_shape = im2col(x, k, s, p, d).shape
    cols = np.random.default_rng(0).standard_normal(cols_shape).astype(x.dtype)
    back = col2im(cols, x.shape, k, s, p, d)
    assert back.dtype == x.dtype and back.shape == x.shape
    tol = 1e-5 if x.dtype == np.float32 else 1e-12
    np.testing.assert_allclose(back, col2im_numpy(cols, x.shape, k, s, p, d), rtol=tol, atol=tol)
    # <im2col(x), cols> == <x, col2im(cols)>
    lhs = np.vdot(im2col(x, k, s, p, d).astype(np.float64), cols.astype(np.float64))
    rhs = np.vdot(x.astype(np.float64), back.astype(np.float64))
    np.testing.assert_allclose(lhs, rhs, rtol=1e-4, atol=1e-4)


def test_one_by_one_image_and_batch_of_one(isa):
    x = np.array([[[[3.0]]]], np.float32)
    np.testing.assert_array_equal(im2col(x, 3, padding=1)[0, :, 0],
                                  [0, 0, 0, 0, 3, 0, 0, 0, 0])
    np.testing.assert_array_equal(col2im(np.ones((1, 9, 1), np.float32), (1, 1, 1, 1), 3,
                                         padding=1), [[[[1.0]]]])


def test_batch_zero(isa):
    cols = im2col(np.zeros((0, 2, 5, 5), np.float64), 3)
    assert cols.shape == (0, 18, 9)
    assert col2im(cols, (0, 2, 5, 5), 3).shape == (0, 2, 5, 5)


def test_noncontiguous_and_readonly_inputs(isa, rng):
    x = rng.standard_normal((2, 3, 8, 6)).astype(np.float32)
    view = x.transpose(0, 1, 3, 2)  # (2, 3, 6, 8), not C-contiguous
    readonly = x.copy()
    readonly.flags.writeable = False
    np.testing.assert_array_equal(im2col(view, 3), im2col_numpy(np.ascontiguousarray(view),
                                                                (3, 3), (1, 1), (0, 0), (1, 1)))
    np.testing.assert_array_equal(im2col(readonly, 2, 2), im2col(x, 2, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bit_identical_at_one_and_two_threads(isa, threads, rng, dtype):
    x = rng.standard_normal((16, 6, 14, 14)).astype(dtype)
    results = []
    for n in (1, 2):
        cnn.set_num_threads(n)
        cols = im2col(x, 5, 1, 2)
        results.append((cols, col2im(cols, x.shape, 5, 1, 2)))
    for a, b in zip(*results):
        assert a.tobytes() == b.tobytes()


def test_every_isa_gives_the_same_bits(rng):
    from cnn import _ext
    x = rng.standard_normal((4, 3, 11, 9)).astype(np.float32)
    previous, outputs = _ext.backend.isa, []
    for level in _ext.available_isas():
        _ext.select(level)
        cols = im2col(x, (3, 2), (2, 1), 1, (1, 2))
        outputs.append((cols.tobytes(), col2im(cols, x.shape, (3, 2), (2, 1), 1, (1, 2)).tobytes()))
    _ext.select(previous)
    assert all(out == outputs[0] for out in outputs)


def _plan(dtype=np.float32):
    return cnn._ext.conv_plan((1, 4, 4), (1, 1, 3, 3), dtype=dtype)


@pytest.mark.parametrize("call, error, words", [
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 0), ValueError, "kernel_size"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 5), ValueError, "kernel_size"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 3, dilation=2), ValueError, "kernel"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 3, stride=0), ValueError, "stride"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 3, padding=-1), ValueError, "padding"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 3, dilation=(1, 0)), ValueError,
     "dilation"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 2.5), TypeError, "kernel_size"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), True), TypeError, "kernel_size"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), (1, 2, 3)), ValueError, "kernel_size"),
    (lambda: im2col(np.zeros((1, 1, 4, 4), np.float32), 1, stride=2**40), ValueError, "stride"),
    (lambda: _plan().columns(np.zeros((1, 4, 4), np.float32)), ValueError, "input"),
    (lambda: im2col(np.zeros((1, 0, 4, 4), np.float32), 3), ValueError, "input"),
    (lambda: _plan().columns(np.zeros((1, 1, 4, 4), np.float64)), TypeError, "input"),
    (lambda: _plan(np.int64), TypeError, "dtype"),
    (lambda: _plan(np.complex64), TypeError, "dtype"),
    (lambda: _plan().columns([[[[1.0]]]]), TypeError, "input"),
    (lambda: col2im(np.zeros((1, 9, 5), np.float32), (1, 1, 4, 4), 3), ValueError, "cols"),
    (lambda: cnn._ext.conv_plan((1, 4), (1, 1, 3, 3)), ValueError, "input_shape"),
    (lambda: col2im(np.zeros((1, 9, 4), np.float32), (1, 1, -4, 4), 3), ValueError,
     "input_shape"),
])
def test_bad_arguments_raise_naming_the_argument(call, error, words):
    with pytest.raises(error, match=words):
        call()
