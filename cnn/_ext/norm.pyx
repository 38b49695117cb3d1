"""Batch normalisation over the channels of (N, C, S) arrays: statistics, the per-channel affine
map, and the gradient's sums, each one pass over the data per channel.

In NumPy a training-mode batch norm is about a dozen array operations forward and as many
backward, each a pass over memory and often a temporary; here the statistics take two passes
(the mean, then the squared deviations from it: no catastrophic E[x^2] - E[x]^2), the
normalisation one pass (out = (x - mean) * scale + shift, ReLU optionally fused), and the
backward two (the sums, then dx = a*g + b*(x - mean) + k). Every formula subtracts the mean
from x first, as PyTorch's does, so a large mean costs no precision. Sums are kept in
double precision. Threads take whole channels and each channel is summed in a fixed order, so
results are bit-identical for any thread count. The callers (cnn/nn/functional/normalization.py)
compute the per-channel coefficients; shapes are checked here.
"""
from cython cimport floating
from cython.parallel cimport prange

include "relu.pxi"

# Below this many elements a thread team costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_ELEMENTS = 1 << 15
# Sums run in this many independent partial sums (lanes), added in a fixed order at the end:
# one running sum would make every addition wait for the previous one (about 4 cycles each),
# and the fixed order keeps the result the same on every run.
DEF LANES = 8


cdef inline double _total(const double* partial) noexcept nogil:
    return ((partial[0] + partial[1]) + (partial[2] + partial[3])) + \
        ((partial[4] + partial[5]) + (partial[6] + partial[7]))


cdef inline void _add_row(double* partial, const floating* row, Py_ssize_t n,
                          double centre) noexcept nogil:
    """partial[lane] += the values row[i] - centre of its lane (i % LANES)."""
    cdef Py_ssize_t i, j
    for i in range(0, n - n % LANES, LANES):
        for j in range(LANES):
            partial[j] += <double> row[i + j] - centre
    for i in range(n - n % LANES, n):
        partial[i % LANES] += <double> row[i] - centre


cdef inline void _add_squares(double* partial, const floating* row, Py_ssize_t n,
                              double centre) noexcept nogil:
    """partial[lane] += (row[i] - centre)**2 for the values of its lane."""
    cdef Py_ssize_t i, j
    cdef double d
    for i in range(0, n - n % LANES, LANES):
        for j in range(LANES):
            d = <double> row[i + j] - centre
            partial[j] += d * d
    for i in range(n - n % LANES, n):
        d = <double> row[i] - centre
        partial[i % LANES] += d * d


cdef inline void _add_products(double* partial, const floating* grad, const floating* row,
                               Py_ssize_t n, double centre) noexcept nogil:
    """partial[lane] += grad[i] * (row[i] - centre) for the values of its lane."""
    cdef Py_ssize_t i, j
    for i in range(0, n - n % LANES, LANES):
        for j in range(LANES):
            partial[j] += <double> grad[i + j] * (<double> row[i + j] - centre)
    for i in range(n - n % LANES, n):
        partial[i % LANES] += <double> grad[i] * (<double> row[i] - centre)


cdef inline void _add_masked_row(double* partial, const floating* grad, const floating* out,
                                 Py_ssize_t n) noexcept nogil:
    """_add_row of the gradient through a ReLU (centre 0)."""
    cdef Py_ssize_t i, j
    for i in range(0, n - n % LANES, LANES):
        for j in range(LANES):
            partial[j] += <double> _relu_grad(grad[i + j], out[i + j])
    for i in range(n - n % LANES, n):
        partial[i % LANES] += <double> _relu_grad(grad[i], out[i])


cdef inline void _add_masked_products(double* partial, const floating* grad,
                                      const floating* out, const floating* row, Py_ssize_t n,
                                      double centre) noexcept nogil:
    """_add_products of the gradient through a ReLU."""
    cdef Py_ssize_t i, j
    for i in range(0, n - n % LANES, LANES):
        for j in range(LANES):
            partial[j] += <double> _relu_grad(grad[i + j], out[i + j]) * \
                (<double> row[i + j] - centre)
    for i in range(n - n % LANES, n):
        partial[i % LANES] += <double> _relu_grad(grad[i], out[i]) * (<double> row[i] - centre)


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
    """Channel c's mean, then its biased variance (the partial sums are locals of this call:
    private to the thread that runs it)."""
    cdef Py_ssize_t N = x.shape[0], S = x.shape[2], n, j
    cdef double partial[LANES]
    for j in range(LANES):
        partial[j] = 0
    for n in range(N):
        _add_row(partial, &x[n, c, 0], S, 0)
    mean[0] = _total(partial) / (N * S)
    for j in range(LANES):
        partial[j] = 0
    for n in range(N):
        _add_squares(partial, &x[n, c, 0], S, mean[0])
    var[0] = _total(partial) / (N * S)


cdef void _channel_sums(const floating[:, :, ::1] grad, const floating[:, :, ::1] x,
                        const floating* relu_out, Py_ssize_t c, double mean, double* sum_grad,
                        double* sum_grad_x) noexcept nogil:
    """Channel c's sum of grad and of grad * (x - mean) (locals of this call, as above); of the
    gradient through a ReLU whose output is relu_out (N, C, S) unless that is NULL."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], n, j
    cdef double sums[LANES]
    cdef double products[LANES]
    cdef const floating* out
    for j in range(LANES):
        sums[j] = 0
        products[j] = 0
    for n in range(N):
        if relu_out == NULL:
            _add_row(sums, &grad[n, c, 0], S, 0)
            _add_products(products, &grad[n, c, 0], &x[n, c, 0], S, mean)
        else:
            out = relu_out + (n * C + c) * S
            _add_masked_row(sums, &grad[n, c, 0], out, S)
            _add_masked_products(products, &grad[n, c, 0], out, &x[n, c, 0], S, mean)
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
        for c in prange(C, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and C > 1
                        and N * C * S >= MIN_PARALLEL_ELEMENTS):
            _channel_statistics(x, c, &mean[c], &var[c])


def normalize(const floating[:, :, ::1] x,   # IN  (N, C, S)
              const double[::1] mean,          # IN  (C,)
              const double[::1] scale,         # IN  (C,)
              const double[::1] shift,         # IN  (C,)
              floating[:, :, ::1] out,         # OUT (N, C, S), may be x's memory
              bint relu, int num_threads):
    """out = (x - mean[c]) * scale[c] + shift[c] per channel, then max(., 0) (NaN kept) when
    relu."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c, n, s
    cdef floating m, a, b
    for name, values in (("mean", mean), ("scale", scale), ("shift", shift)):
        _check(C, values.shape[0], name)
    _same_shape(x.shape, out.shape, "out")
    with nogil:
        for c in prange(C, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and C > 1
                        and N * C * S >= MIN_PARALLEL_ELEMENTS):
            m, a, b = <floating> mean[c], <floating> scale[c], <floating> shift[c]
            for n in range(N):
                if relu:
                    for s in range(S):
                        out[n, c, s] = _relu_value((x[n, c, s] - m) * a + b)
                else:
                    for s in range(S):
                        out[n, c, s] = (x[n, c, s] - m) * a + b


def gradient_sums(const floating[:, :, ::1] grad,      # IN  (N, C, S)
                  const floating[:, :, ::1] x,         # IN  (N, C, S)
                  const double[::1] mean,              # IN  (C,)
                  double[::1] sum_grad,                # OUT (C,) sum of grad
                  double[::1] sum_grad_x,              # OUT (C,) sum of grad * (x - mean)
                  int num_threads,
                  const floating[:, :, ::1] relu_out=None):  # IN  (N, C, S) or None
    """The two per-channel sums every batch-norm gradient is made of; with `relu_out`, of the
    gradient through the ReLU that followed the normalisation (zero where relu_out <= 0)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c
    cdef const floating* out = NULL
    _same_shape(x.shape, grad.shape, "grad")
    if relu_out is not None:
        _same_shape(x.shape, relu_out.shape, "relu_out")
        if N * C * S:
            out = &relu_out[0, 0, 0]
    for name, values in (("mean", mean), ("sum_grad", sum_grad), ("sum_grad_x", sum_grad_x)):
        _check(C, values.shape[0], name)
    if N * S == 0:
        sum_grad[:] = 0
        sum_grad_x[:] = 0
        return
    with nogil:
        for c in prange(C, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and C > 1
                        and N * C * S >= MIN_PARALLEL_ELEMENTS):
            _channel_sums(grad, x, out, c, mean[c], &sum_grad[c], &sum_grad_x[c])


def input_gradient(const floating[:, :, ::1] grad,  # IN  (N, C, S)
                   const floating[:, :, ::1] x,     # IN  (N, C, S)
                   const double[::1] mean,          # IN  (C,)
                   const double[::1] a,             # IN  (C,)
                   const double[::1] b,             # IN  (C,)
                   const double[::1] k,             # IN  (C,)
                   floating[:, :, ::1] out,         # OUT (N, C, S)
                   int num_threads,
                   const floating[:, :, ::1] relu_out=None):  # IN  (N, C, S) or None
    """out = a[c] * grad + b[c] * (x - mean[c]) + k[c] per channel: batch norm's input
    gradient, whose coefficients the caller makes from the sums (b = k = 0 in evaluation
    mode); with `relu_out`, grad is taken through the ReLU that followed (as gradient_sums)."""
    cdef Py_ssize_t N = x.shape[0], C = x.shape[1], S = x.shape[2], c, n, s
    cdef floating mc, ac, bc, kc
    cdef bint masked = relu_out is not None
    _same_shape(x.shape, grad.shape, "grad")
    _same_shape(x.shape, out.shape, "out")
    if masked:
        _same_shape(x.shape, relu_out.shape, "relu_out")
    for name, values in (("mean", mean), ("a", a), ("b", b), ("k", k)):
        _check(C, values.shape[0], name)
    with nogil:
        for c in prange(C, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and C > 1
                        and N * C * S >= MIN_PARALLEL_ELEMENTS):
            mc, ac, bc, kc = <floating> mean[c], <floating> a[c], <floating> b[c], <floating> k[c]
            for n in range(N):
                if masked:
                    for s in range(S):
                        out[n, c, s] = ac * _relu_grad(grad[n, c, s], relu_out[n, c, s]) + \
                            bc * (x[n, c, s] - mc) + kc
                else:
                    for s in range(S):
                        out[n, c, s] = ac * grad[n, c, s] + bc * (x[n, c, s] - mc) + kc
