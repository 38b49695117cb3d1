"""Batch normalisation over the channels of (N, C, S) arrays: statistics, the per-channel affine
map, and the gradient's sums, each one pass over the data per channel.

In NumPy a training-mode batch norm is about a dozen array operations forward and as many
backward, each a pass over memory and often a temporary; here the statistics take one pass (the
sums of the deviations from a value of the channel and of their squares: no catastrophic
E[x^2] - E[x]^2), the normalisation one (out = (x - mean) * scale + shift, ReLU optionally
fused), and the backward two (the sums, then dx = a*g + b*(x - mean) + k; with a fused ReLU its
mask is recomputed from x, so its output is never read). The passes are bound by memory
bandwidth at these sizes: fewer passes is what makes them faster. The other formulas subtract
the mean from x first, as PyTorch's do, so a large mean costs no precision. Sums are kept in
double precision. Threads take even ranges of whole channels, which they read image by image
(contiguous memory), and each channel is summed in a fixed order, so results are bit-identical
for any thread count. The callers (cnn/nn/functional/normalization.py)
compute the per-channel coefficients; shapes are checked here.
"""
import numpy as np

from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.string cimport memset

include "pointwise.pxi"
include "norm_coefficients.pxi"

# Below this many elements a thread team costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_ELEMENTS = 1 << 15
# Sums run in this many independent partial sums (lanes), added in a fixed order at the end:
# one running sum would make every addition wait for the previous one (about 4 cycles each),
# and the fixed order keeps the result the same on every run.
DEF LANES = 8  # CNN_NORM_LANES of norm_rows.h


cdef inline bint _shared(int num_threads, Py_ssize_t N, Py_ssize_t C, Py_ssize_t S) noexcept nogil:
    """Whether the team shares the channels; otherwise the calling thread runs them, outside
    any parallel region (entering one, even with one thread, cost about 0.8 us)."""
    return num_threads > 1 and C > 1 and N * C * S >= MIN_PARALLEL_ELEMENTS


cdef inline double _total(const double* partial) noexcept nogil:
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + \
        ((partial[4] + partial[5]) + (partial[6] + partial[7]))


cdef extern from "norm_rows.h" nogil:
    void cnn_norm_add_moments_f32(const float* row, Py_ssize_t n, double centre,
                                  double* sums, double* squares)
    void cnn_norm_add_moments_f64(const double* row, Py_ssize_t n, double centre,
                                  double* sums, double* squares)
    void cnn_norm_add_gradient_row_f32(const float* grad, const float* row, Py_ssize_t n,
                                       double centre, int masked, float m, float a, float b,
                                       double* sums, double* products)
    void cnn_norm_add_gradient_row_f64(const double* grad, const double* row, Py_ssize_t n,
                                       double centre, int masked, double m, double a, double b,
                                       double* sums, double* products)


cdef inline void _add_moments(double* sums, double* squares, const floating* row, Py_ssize_t n,
                              double centre) noexcept nogil:
    """sums[lane] += row[i] - centre and squares[lane] += (row[i] - centre)**2 for the values
    of each lane (i % LANES), in one pass (norm_rows.h)."""
    if floating is float:
        cnn_norm_add_moments_f32(row, n, centre, sums, squares)
    else:
        cnn_norm_add_moments_f64(row, n, centre, sums, squares)


cdef inline void _add_gradient_row(double* sums, double* products, const floating* grad,
                                   const floating* row, Py_ssize_t n, double centre,
                                   bint masked, floating m, floating a,
                                   floating b) noexcept nogil:
    """sums[lane] += g[i] and products[lane] += g[i] * (row[i] - centre) for the values of
    each lane, in one pass; g is grad, or with `masked` grad through the ReLU that followed
    normalize(row; m, a, b): zero where that output (recomputed, the same bits) is <= 0, so
    the output itself need not be kept or read (norm_rows.h)."""
    if floating is float:
        cnn_norm_add_gradient_row_f32(grad, row, n, centre, masked, m, a, b, sums, products)
    else:
        cnn_norm_add_gradient_row_f64(grad, row, n, centre, masked, m, a, b, sums, products)


cdef int _check(Py_ssize_t channels, Py_ssize_t length, str name) except -1:
    if length != channels:
        raise ValueError(f"{name}: expected {channels} values (one per channel), got {length}")
    return 0


cdef int _same_shape(Py_ssize_t* expected, Py_ssize_t* shape, str name) except -1:
    if expected[0] != shape[0] or expected[1] != shape[1] or expected[2] != shape[2]:
        raise ValueError(f"{name}: expected shape {(expected[0], expected[1], expected[2])}, "
                         f"got {(shape[0], shape[1], shape[2])}")
    return 0


cdef void _statistics_range(const floating[:, :, ::1] x, Py_ssize_t c0, Py_ssize_t c1,
                            double* work, double* mean, double* var) noexcept nogil:
    """The mean and biased variance of channels c0..c1-1, in one pass: image by image, each
    image's rows of these channels one after another (contiguous memory, which the hardware
    prefetches; a channel's rows alone, strided by a whole image, ran at a third of the speed
    once they had left the cache). `work` holds each channel's LANES partial sums and
    squares, private to the caller's range; each channel's values are added in the same
    order however the channels are split, so the bits do not depend on the thread count.
    The sums are of the deviations from the channel's first value K (0 if that is not
    finite): mean = K + sum / n and var = squares / n - (sum / n)**2. The subtraction cancels
    (K - mean)**2 / var digits at most: a mean far from 0 costs nothing (the trouble with
    E[x^2] - E[x]^2), and since K is a value of the channel the loss is about log10 of that
    ratio, at most log10(n) digits (a first value at the far end of a channel of 2000: about
    3 of double precision's 16)."""
    cdef Py_ssize_t N = x.shape[0], S = x.shape[2], n, c
    cdef double* sums
    cdef double centre, shift, variance, squares_mean
    cdef double count = <double> (N * S)
    _clear_lanes(work, c0, c1)
    for c in range(c0, c1):
        mean[c] = _centre(x, c)  # held here until the mean replaces it below
    for n in range(N):
        for c in range(c0, c1):
            sums = work + 2 * LANES * c
            _add_moments(sums, sums + LANES, &x[n, c, 0], S, mean[c])
    for c in range(c0, c1):
        centre = mean[c]
        sums = work + 2 * LANES * c
        shift = _total(sums) / count
        mean[c] = centre + shift
        squares_mean = _total(sums + LANES) / count
        if squares_mean == INFINITY and shift - shift == 0:
            # Finite values whose squares overflow: infinite, whether or not the compiler
            # fuses the subtraction below (unfused, shift * shift overflows too, and inf - inf
            # is NaN).
            var[c] = squares_mean
            continue
        variance = squares_mean - shift * shift
        # Rounding can leave a zero variance a hair below zero; a NaN (an infinity in the
        # channel) stays NaN.
        var[c] = 0.0 if variance < 0 else variance


cdef inline double _centre(const floating[:, :, ::1] x, Py_ssize_t c) noexcept nogil:
    """The value channel c's sums of deviations are taken from: its first value, or 0 when
    that is an infinity or a NaN (_statistics_range)."""
    cdef double centre = <double> x[0, c, 0]
    return centre if centre - centre == 0 else 0


cdef inline void _clear_lanes(double* work, Py_ssize_t c0, Py_ssize_t c1) noexcept nogil:
    """Zero the LANES sums and LANES squares (or products) of channels c0..c1-1 in `work`."""
    memset(work + 2 * LANES * c0, 0, (c1 - c0) * 2 * LANES * sizeof(double))


cdef inline Py_ssize_t _range_start(Py_ssize_t part, Py_ssize_t parts,
                                    Py_ssize_t C) noexcept nogil:
    """The first channel of part `part` of `parts` even ranges of C channels."""
    return C * part // parts


cdef inline Py_ssize_t _parts(int num_threads, Py_ssize_t N, Py_ssize_t C,
                              Py_ssize_t S) noexcept nogil:
    """Into how many channel ranges a pass is cut: one per thread when the team shares it
    (_shared), at most one per channel; else one, run by the calling thread."""
    return min(num_threads, C) if _shared(num_threads, N, C, S) else 1


cdef void _sums_range(const floating[:, :, ::1] grad, const floating[:, :, ::1] x,
                      Py_ssize_t c0, Py_ssize_t c1, const double* mean,
                      const double* relu_scale, const double* relu_shift, double* work,
                      double* sum_grad, double* sum_grad_x) noexcept nogil:
    """Channels c0..c1-1's sums of grad and of grad * (x - mean), image by image (as
    _statistics_range: `work` holds the lanes); of the gradient through the ReLU after
    normalize(x; mean, relu_scale[c], relu_shift[c]) unless relu_scale is NULL."""
    cdef Py_ssize_t N = x.shape[0], n, c
    cdef double* sums
    cdef bint masked = relu_scale != NULL
    cdef floating a, b
    _clear_lanes(work, c0, c1)
    for n in range(N):
        for c in range(c0, c1):
            a = <floating> relu_scale[c] if masked else 0
            b = <floating> relu_shift[c] if masked else 0
            sums = work + 2 * LANES * c
            _add_gradient_row(sums, sums + LANES, &grad[n, c, 0], &x[n, c, 0], x.shape[2],
                              mean[c], masked, <floating> mean[c], a, b)
    for c in range(c0, c1):
        sums = work + 2 * LANES * c
        sum_grad[c] = _total(sums)
        sum_grad_x[c] = _total(sums + LANES)


def statistics(const floating[:, :, ::1] x,   # IN  (N, C, S)
               double[::1] mean,               # OUT (C,)
               double[::1] var,                # OUT (C,) biased variance
               int num_threads):
    """Each channel's mean and biased variance over its N*S values (N*S > 0)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2]
    _check(C, mean.shape[0], "mean")
    _check(C, var.shape[0], "var")
    if N * S == 0:
        raise ValueError("x: expected at least one value per channel")
    cdef Py_ssize_t parts = _parts(num_threads, N, C, S), part
    if C == 0:
        return
    work_array = np.empty(C * 2 * LANES)
    cdef double[::1] work = work_array
    with nogil:
        if parts > 1:
            for part in prange(parts, schedule="static", num_threads=num_threads):
                _statistics_range(x, _range_start(part, parts, C),
                                  _range_start(part + 1, parts, C), &work[0], &mean[0], &var[0])
        else:
            _statistics_range(x, 0, C, &work[0], &mean[0], &var[0])


def evaluation_coefficients(const floating[::1] running_mean,  # IN  (C,)
                            const floating[::1] running_var,   # IN  (C,)
                            const floating[::1] weight,        # IN  (C,) or None
                            const floating[::1] bias,          # IN  (C,) or None
                            double eps,
                            double[:, ::1] out):               # OUT (4, C)
    """A batch norm's per-channel map in evaluation mode, in double precision: out[0] = the
    mean, out[1] = the scale 1 / sqrt(var + eps) * weight (without a weight, 1 / sqrt(var +
    eps)), out[2] = the shift, bias (0 without), out[3] = 1 / sqrt(var + eps).
    normalize(x, *out[:3]) is the batch norm. One call where NumPy took six operations (about
    6 us), a cost every batch-1 inference paid per layer."""
    cdef Py_ssize_t C = running_mean.shape[0]
    _check(C, running_var.shape[0], "running_var")
    if weight is not None:
        _check(C, weight.shape[0], "weight")
    if bias is not None:
        _check(C, bias.shape[0], "bias")
    if out.shape[0] != 4:
        raise ValueError(f"out: expected 4 rows (mean, scale, shift, 1 / std), got "
                         f"{out.shape[0]}")
    _check(C, out.shape[1], "out")
    _evaluation_rows(running_mean, running_var, weight, bias, eps, out)


def normalize(const floating[:, :, ::1] x,   # IN  (N, C, S)
              const double[::1] mean,          # IN  (C,)
              const double[::1] scale,         # IN  (C,)
              const double[::1] shift,         # IN  (C,)
              floating[:, :, ::1] out,         # OUT (N, C, S), may be x's memory
              bint relu, int num_threads):
    """out = (x - mean[c]) * scale[c] + shift[c] per channel, then max(., 0) (NaN kept) when
    relu."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2]
    _check(C, mean.shape[0], "mean")
    _check(C, scale.shape[0], "scale")
    _check(C, shift.shape[0], "shift")
    _same_shape(x.shape, out.shape, "out")
    cdef Py_ssize_t parts = _parts(num_threads, N, C, S), part
    if N * C * S == 0:
        return
    with nogil:
        if parts > 1:
            for part in prange(parts, schedule="static", num_threads=num_threads):
                _normalize_range(x, _range_start(part, parts, C),
                                 _range_start(part + 1, parts, C), &mean[0], &scale[0],
                                 &shift[0], out, relu)
        else:
            _normalize_range(x, 0, C, &mean[0], &scale[0], &shift[0], out, relu)


cdef void _normalize_range(const floating[:, :, ::1] x, Py_ssize_t c0, Py_ssize_t c1,
                           const double* mean, const double* scale, const double* shift,
                           floating[:, :, ::1] out, bint relu) noexcept nogil:
    """Channels c0..c1-1 of normalize, image by image (as _statistics_range reads them), the
    coefficients rounded to the data's type."""
    cdef floating m, a, b
    cdef Py_ssize_t n, c, s
    for n in range(x.shape[0]):
        for c in range(c0, c1):
            m, a, b = <floating> mean[c], <floating> scale[c], <floating> shift[c]
            if relu:
                for s in range(x.shape[2]):
                    out[n, c, s] = _relu_value(_affine(x[n, c, s], m, a, b))
            else:
                for s in range(x.shape[2]):
                    out[n, c, s] = _affine(x[n, c, s], m, a, b)


cdef int _check_relu(relu_scale, relu_shift, Py_ssize_t channels) except -1:
    """relu_scale and relu_shift come together, one value per channel each."""
    if (relu_scale is None) != (relu_shift is None):
        raise ValueError("relu_shift: expected it with relu_scale (the ReLU's normalisation), "
                         f"got {'only relu_scale' if relu_shift is None else 'no relu_scale'}")
    if relu_scale is not None:
        _check(channels, relu_scale.shape[0], "relu_scale")
        _check(channels, relu_shift.shape[0], "relu_shift")
    return 0


cdef int _check_sums(const floating[:, :, ::1] grad, const floating[:, :, ::1] x,
                     const double[::1] mean, double[::1] sum_grad, double[::1] sum_grad_x,
                     relu_scale, relu_shift) except -1:
    """The arrays of the gradient's sums (gradient_sums, backward), checked against x."""
    cdef Py_ssize_t C = x.shape[1]
    _same_shape(x.shape, grad.shape, "grad")
    # One call per array, not a loop over a tuple of them: Cython would infer one memoryview
    # type for the loop's variable, const or not depending on its hash seed, and the generated
    # C (and a read-only `mean`'s fate) would change from build to build.
    _check(C, mean.shape[0], "mean")
    _check(C, sum_grad.shape[0], "sum_grad")
    _check(C, sum_grad_x.shape[0], "sum_grad_x")
    _check_relu(relu_scale, relu_shift, C)
    return 0


def gradient_sums(const floating[:, :, ::1] grad,      # IN  (N, C, S)
                  const floating[:, :, ::1] x,         # IN  (N, C, S)
                  const double[::1] mean,              # IN  (C,)
                  double[::1] sum_grad,                # OUT (C,) sum of grad
                  double[::1] sum_grad_x,              # OUT (C,) sum of grad * (x - mean)
                  int num_threads,
                  const double[::1] relu_scale=None,   # IN  (C,) or None
                  const double[::1] relu_shift=None):  # IN  (C,) or None
    """The two per-channel sums every batch-norm gradient is made of; with `relu_scale` and
    `relu_shift`, of the gradient through the ReLU that followed normalize(x, mean,
    relu_scale, relu_shift, relu=True): zero where that output is <= 0. The output is
    recomputed, by normalize's own rule, rather than read: one array less to stream."""
    # No input gradient: `mean` stands in for backward's coefficients, an empty array for
    # its output (nothing reads or writes them).
    cdef floating[:, :, ::1] unused = np.empty(
        (0, 1, 1), np.float64 if floating is double else np.float32)
    _sums_pass(grad, x, mean, mean, mean, False, sum_grad, sum_grad_x, unused, False,
               num_threads, relu_scale, relu_shift)


def input_gradient(const floating[:, :, ::1] grad,  # IN  (N, C, S)
                   const floating[:, :, ::1] x,     # IN  (N, C, S)
                   const double[::1] mean,          # IN  (C,)
                   const double[::1] a,             # IN  (C,)
                   const double[::1] b,             # IN  (C,)
                   const double[::1] k,             # IN  (C,)
                   floating[:, :, ::1] out,         # OUT (N, C, S)
                   int num_threads,
                   const double[::1] relu_scale=None,   # IN  (C,) or None
                   const double[::1] relu_shift=None):  # IN  (C,) or None
    """out = a[c] * grad + b[c] * (x - mean[c]) + k[c] per channel: batch norm's input
    gradient, whose coefficients the caller makes from the sums (b = k = 0 in evaluation
    mode); with `relu_scale` and `relu_shift`, grad is taken through the ReLU that followed
    (as gradient_sums)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2]
    cdef const double* scale = NULL
    cdef const double* shift = NULL
    _same_shape(x.shape, grad.shape, "grad")
    _same_shape(x.shape, out.shape, "out")
    _check(C, mean.shape[0], "mean")
    _check(C, a.shape[0], "a")
    _check(C, b.shape[0], "b")
    _check(C, k.shape[0], "k")
    _check_relu(relu_scale, relu_shift, C)
    if relu_scale is not None and C > 0:
        scale, shift = &relu_scale[0], &relu_shift[0]
    cdef Py_ssize_t parts = _parts(num_threads, N, C, S), part
    if N * C * S == 0:
        return
    with nogil:
        if parts > 1:
            for part in prange(parts, schedule="static", num_threads=num_threads):
                _input_gradient_range(grad, x, _range_start(part, parts, C),
                                      _range_start(part + 1, parts, C), &mean[0], &a[0], &b[0],
                                      &k[0], scale, shift, out)
        else:
            _input_gradient_range(grad, x, 0, C, &mean[0], &a[0], &b[0], &k[0], scale, shift,
                                  out)


# The input gradient's pass follows the sums' pass channel group by channel group, each group's
# gradient and input (both passes read them) at most this many bytes, so that the second pass
# reads them from the core's cache rather than from memory.
cdef Py_ssize_t GROUP_BYTES = 1 << 20


def backward(const floating[:, :, ::1] grad,      # IN  (N, C, S)
             const floating[:, :, ::1] x,         # IN  (N, C, S)
             const double[::1] mean,              # IN  (C,)
             const double[::1] a,                 # IN  (C,) inv_std, times the weight if any
             const double[::1] inv_std,           # IN  (C,)
             bint batch_statistics,
             double[::1] sum_grad,                # OUT (C,) sum of grad
             double[::1] sum_grad_x,              # OUT (C,) sum of grad * (x - mean)
             floating[:, :, ::1] out,             # OUT (N, C, S) the input gradient
             int num_threads,
             const double[::1] relu_scale=None,   # IN  (C,) or None
             const double[::1] relu_shift=None):  # IN  (C,) or None
    """gradient_sums, then input_gradient with its coefficients made from those sums, channel
    group by channel group (GROUP_BYTES): out = a * grad + b * (x - mean) + k, where, with
    `batch_statistics` (training, whose statistics depend on x), b = -a * inv_std * inv_std
    * sum_grad_x / count and k = -a * sum_grad / count (count = N * S), else b = k = 0. The
    same bits as the two kernels called one after the other with those coefficients made in
    NumPy (the same operations, in the same order)."""
    cdef Py_ssize_t C = x.shape[1]
    _same_shape(x.shape, out.shape, "out")
    _check(C, a.shape[0], "a")
    _check(C, inv_std.shape[0], "inv_std")
    _sums_pass(grad, x, mean, a, inv_std, batch_statistics, sum_grad, sum_grad_x, out, True,
               num_threads, relu_scale, relu_shift)


cdef int _sums_pass(const floating[:, :, ::1] grad, const floating[:, :, ::1] x,
                    const double[::1] mean, const double[::1] a, const double[::1] inv_std,
                    bint batch_statistics, double[::1] sum_grad, double[::1] sum_grad_x,
                    floating[:, :, ::1] out, bint input_gradient, int num_threads,
                    const double[::1] relu_scale, const double[::1] relu_shift) except -1:
    """gradient_sums, and with `input_gradient` backward's input gradient into `out`: the
    team's channel ranges, each run by _backward_range."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], part
    cdef const double* scale = NULL
    cdef const double* shift = NULL
    _check_sums(grad, x, mean, sum_grad, sum_grad_x, relu_scale, relu_shift)
    if N * S == 0:
        sum_grad[:] = 0
        sum_grad_x[:] = 0
        return 0
    if relu_scale is not None and C > 0:
        scale, shift = &relu_scale[0], &relu_shift[0]
    cdef Py_ssize_t parts = _parts(num_threads, N, C, S)
    if C == 0:
        return 0
    # The sums alone make one pass over a range: nothing reads the values again.
    cdef Py_ssize_t group = (max(1, GROUP_BYTES // (2 * N * S * sizeof(floating)))
                             if input_gradient else C)
    work_array = np.empty(C * 2 * LANES)
    coefficients_array = np.zeros(2 * C)  # b, then k
    cdef double[::1] work = work_array, coefficients = coefficients_array
    with nogil:
        if parts > 1:
            for part in prange(parts, schedule="static", num_threads=num_threads):
                _backward_range(grad, x, _range_start(part, parts, C),
                                _range_start(part + 1, parts, C), group, &mean[0], &a[0],
                                &inv_std[0], batch_statistics, input_gradient, scale, shift,
                                &work[0], &coefficients[0], &sum_grad[0], &sum_grad_x[0], out)
        else:
            _backward_range(grad, x, 0, C, group, &mean[0], &a[0], &inv_std[0],
                            batch_statistics, input_gradient, scale, shift, &work[0],
                            &coefficients[0], &sum_grad[0], &sum_grad_x[0], out)
    return 0


cdef void _backward_range(const floating[:, :, ::1] grad, const floating[:, :, ::1] x,
                          Py_ssize_t c0, Py_ssize_t c1, Py_ssize_t group, const double* mean,
                          const double* a, const double* inv_std, bint batch_statistics,
                          bint input_gradient, const double* relu_scale,
                          const double* relu_shift, double* work, double* coefficients,
                          double* sum_grad, double* sum_grad_x,
                          floating[:, :, ::1] out) noexcept nogil:
    """Channels c0..c1-1 of backward, `group` channels at a time: their sums and, with
    `input_gradient`, their coefficients (b in coefficients[:C], k in coefficients[C:]) and
    their input gradient."""
    cdef Py_ssize_t C = x.shape[1], g0, g1, c
    cdef double count = <double> (x.shape[0] * x.shape[2])
    cdef double* b = coefficients
    cdef double* k = coefficients + C
    g0 = c0
    while g0 < c1:
        g1 = min(g0 + group, c1)
        _sums_range(grad, x, g0, g1, mean, relu_scale, relu_shift, work, sum_grad, sum_grad_x)
        if not input_gradient:
            g0 = g1
            continue
        if batch_statistics:
            for c in range(g0, g1):
                b[c] = -a[c] * inv_std[c] * inv_std[c] * sum_grad_x[c] / count
                k[c] = -a[c] * sum_grad[c] / count
        _input_gradient_range(grad, x, g0, g1, mean, a, b, k, relu_scale, relu_shift, out)
        g0 = g1


cdef void _input_gradient_range(const floating[:, :, ::1] grad,
                                const floating[:, :, ::1] x, Py_ssize_t c0, Py_ssize_t c1,
                                const double* mean, const double* a, const double* b,
                                const double* k, const double* relu_scale,
                                const double* relu_shift,
                                floating[:, :, ::1] out) noexcept nogil:
    """Channels c0..c1-1 of input_gradient, image by image (relu_scale and relu_shift: NULL,
    or every channel's), the coefficients rounded to the data's type."""
    cdef floating mc, ac, bc, kc, sc, hc
    cdef Py_ssize_t n, c, s
    for n in range(x.shape[0]):
        for c in range(c0, c1):
            mc, ac = <floating> mean[c], <floating> a[c]
            bc, kc = <floating> b[c], <floating> k[c]
            if relu_scale != NULL:
                sc, hc = <floating> relu_scale[c], <floating> relu_shift[c]
                for s in range(x.shape[2]):
                    out[n, c, s] = ac * _relu_grad(grad[n, c, s],
                                                   _affine(x[n, c, s], mc, sc, hc)) + \
                        bc * (x[n, c, s] - mc) + kc
            else:
                for s in range(x.shape[2]):
                    out[n, c, s] = ac * grad[n, c, s] + bc * (x[n, c, s] - mc) + kc
