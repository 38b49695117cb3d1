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
double precision. Threads take whole channels and each channel is summed in a fixed order, so
results are bit-identical for any thread count. The callers (cnn/nn/functional/normalization.py)
compute the per-channel coefficients; shapes are checked here.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY

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


cdef void _channel_statistics(const floating[:, :, ::1] x, Py_ssize_t c, double* mean,
                              double* var) noexcept nogil:
    """Channel c's mean and biased variance, in one pass (the partial sums are locals of this
    call: private to the thread that runs it). The sums are of the deviations from the
    channel's first value K (0 if that is not finite): mean = K + sum / n and var = squares / n
    - (sum / n)**2. The subtraction cancels (K - mean)**2 / var digits at most: a mean far from
    0 costs nothing (the trouble with E[x^2] - E[x]^2), and since K is a value of the channel
    the loss is about log10 of that ratio, at most log10(n) digits (a first value at the far
    end of a channel of 2000: about 3 of double precision's 16)."""
    cdef Py_ssize_t N = x.shape[0], S = x.shape[2], n, j
    cdef double sums[LANES]
    cdef double squares[LANES]
    cdef double centre = <double> x[0, c, 0], count = <double> (N * S), shift, variance
    cdef double squares_mean
    if not (centre - centre == 0):  # an infinity or a NaN
        centre = 0
    for j in range(LANES):
        sums[j] = 0
        squares[j] = 0
    for n in range(N):
        _add_moments(sums, squares, &x[n, c, 0], S, centre)
    shift = _total(sums) / count
    mean[0] = centre + shift
    squares_mean = _total(squares) / count
    if squares_mean == INFINITY and shift - shift == 0:
        # Finite values whose squares overflow: infinite, whether or not the compiler fuses
        # the subtraction below (unfused, shift * shift overflows too, and inf - inf is NaN).
        var[0] = squares_mean
        return
    variance = squares_mean - shift * shift
    # Rounding can leave a zero variance a hair below zero; a NaN (an infinity in the
    # channel) stays NaN.
    var[0] = 0.0 if variance < 0 else variance


cdef void _channel_sums(const floating[:, :, ::1] grad, const floating[:, :, ::1] x,
                        Py_ssize_t c, double mean, const double* relu_scale,
                        const double* relu_shift, double* sum_grad,
                        double* sum_grad_x) noexcept nogil:
    """Channel c's sum of grad and of grad * (x - mean) (locals of this call, as above); of the
    gradient through the ReLU after normalize(x; mean, relu_scale[c], relu_shift[c]) unless
    relu_scale is NULL."""
    cdef Py_ssize_t N = x.shape[0], n, j
    cdef double sums[LANES]
    cdef double products[LANES]
    cdef bint masked = relu_scale != NULL
    cdef floating m = <floating> mean
    cdef floating a = <floating> relu_scale[c] if masked else 0
    cdef floating b = <floating> relu_shift[c] if masked else 0
    for j in range(LANES):
        sums[j] = 0
        products[j] = 0
    for n in range(N):
        _add_gradient_row(sums, products, &grad[n, c, 0], &x[n, c, 0], x.shape[2], mean,
                          masked, m, a, b)
    sum_grad[0] = _total(sums)
    sum_grad_x[0] = _total(products)


def statistics(const floating[:, :, ::1] x,   # IN  (N, C, S)
               double[::1] mean,               # OUT (C,)
               double[::1] var,                # OUT (C,) biased variance
               int num_threads):
    """Each channel's mean and biased variance over its N*S values (N*S > 0)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    _check(C, mean.shape[0], "mean")
    _check(C, var.shape[0], "var")
    if N * S == 0:
        raise ValueError("x: expected at least one value per channel")
    with nogil:
        if _shared(num_threads, N, C, S):
            for c in prange(C, schedule="dynamic", num_threads=num_threads):
                _channel_statistics(x, c, &mean[c], &var[c])
        else:
            for c in range(C):
                _channel_statistics(x, c, &mean[c], &var[c])


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
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    _check(C, mean.shape[0], "mean")
    _check(C, scale.shape[0], "scale")
    _check(C, shift.shape[0], "shift")
    _same_shape(x.shape, out.shape, "out")
    with nogil:
        if _shared(num_threads, N, C, S):
            for c in prange(C, schedule="dynamic", num_threads=num_threads):
                _normalize_channel(x, c, mean[c], scale[c], shift[c], out, relu)
        else:
            for c in range(C):
                _normalize_channel(x, c, mean[c], scale[c], shift[c], out, relu)


cdef void _normalize_channel(const floating[:, :, ::1] x, Py_ssize_t c, double mean,
                             double scale, double shift, floating[:, :, ::1] out,
                             bint relu) noexcept nogil:
    """Channel c of normalize, the coefficients rounded to the data's type."""
    cdef floating m = <floating> mean, a = <floating> scale, b = <floating> shift
    cdef Py_ssize_t n, s
    for n in range(x.shape[0]):
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
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef const double* scale = NULL
    cdef const double* shift = NULL
    _same_shape(x.shape, grad.shape, "grad")
    # One call per array, not a loop over a tuple of them: Cython would infer one memoryview
    # type for the loop's variable, const or not depending on its hash seed, and the generated
    # C (and a read-only `mean`'s fate) would change from build to build.
    _check(C, mean.shape[0], "mean")
    _check(C, sum_grad.shape[0], "sum_grad")
    _check(C, sum_grad_x.shape[0], "sum_grad_x")
    _check_relu(relu_scale, relu_shift, C)
    if N * S == 0:
        sum_grad[:] = 0
        sum_grad_x[:] = 0
        return
    if relu_scale is not None and C > 0:
        scale, shift = &relu_scale[0], &relu_shift[0]
    with nogil:
        if _shared(num_threads, N, C, S):
            for c in prange(C, schedule="dynamic", num_threads=num_threads):
                _channel_sums(grad, x, c, mean[c], scale, shift, &sum_grad[c], &sum_grad_x[c])
        else:
            for c in range(C):
                _channel_sums(grad, x, c, mean[c], scale, shift, &sum_grad[c], &sum_grad_x[c])


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
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
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
    with nogil:
        if _shared(num_threads, N, C, S):
            for c in prange(C, schedule="dynamic", num_threads=num_threads):
                _input_gradient_channel(grad, x, c, mean[c], a[c], b[c], k[c], scale, shift, out)
        else:
            for c in range(C):
                _input_gradient_channel(grad, x, c, mean[c], a[c], b[c], k[c], scale, shift, out)


cdef void _input_gradient_channel(const floating[:, :, ::1] grad,
                                  const floating[:, :, ::1] x, Py_ssize_t c, double mean,
                                  double a, double b, double k, const double* relu_scale,
                                  const double* relu_shift,
                                  floating[:, :, ::1] out) noexcept nogil:
    """Channel c of input_gradient (relu_scale and relu_shift: NULL, or every channel's), the
    coefficients rounded to the data's type."""
    cdef floating mc = <floating> mean, ac = <floating> a, bc = <floating> b, kc = <floating> k
    cdef floating sc, hc
    cdef Py_ssize_t n, s
    for n in range(x.shape[0]):
        if relu_scale != NULL:
            sc, hc = <floating> relu_scale[c], <floating> relu_shift[c]
            for s in range(x.shape[2]):
                out[n, c, s] = ac * _relu_grad(grad[n, c, s],
                                               _affine(x[n, c, s], mc, sc, hc)) + \
                    bc * (x[n, c, s] - mc) + kc
        else:
            for s in range(x.shape[2]):
                out[n, c, s] = ac * grad[n, c, s] + bc * (x[n, c, s] - mc) + kc
