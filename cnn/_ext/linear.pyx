"""A linear layer's forward for a few rows (batch-1 inference): out = relu(x @ weight.T + bias)
in one pass over the weight (linear_rows.h), with the bias and the ReLU in the same call.

Larger batches go to BLAS (cnn/_ext/gemm.py): there the product's arithmetic dominates, and
BLAS's packed panels do it faster. Here a value's order of summation depends on the number of
input features only, so the bits do not depend on the thread count, or on which other rows or
output features are computed in the same call. The arrays are taken as buffers (_buffers.pxd):
at batch 1 a layer's typed memoryviews cost a third of its time.
"""
from cpython.buffer cimport PyBuffer_Release
from cython cimport floating
from cython.parallel cimport prange

from ._buffers cimport is_double, take
from ._openmp cimport serial

cdef extern from "linear_rows.h" nogil:
    const int CNN_LINEAR_ROWS
    void cnn_linear_rows_f32(const float* x, const float* w, const float* bias, float* out,
                             Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, Py_ssize_t first,
                             Py_ssize_t last, int relu)
    void cnn_linear_rows_f64(const double* x, const double* w, const double* bias,
                             double* out, Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                             Py_ssize_t first, Py_ssize_t last, int relu)

# The most rows of input the layers give this kernel (BLAS takes more): at 2 rows BLAS was
# already faster (3.0 against 3.7 us for 400 -> 120, aligned weights, on an AVX-512 Xeon;
# 1 row: 3.1 against 2.45, each with the bias and ReLU).
MAX_ROWS = 1
# Fewer multiply-adds than this run on one thread (a batch-1 layer of LeNet-5 or of the CIFAR
# net's classifier: about 50k); more share the groups of output features.
cdef Py_ssize_t MIN_PARALLEL_MACS = 1 << 18


cdef int _check(str name, Py_ssize_t expected, Py_ssize_t given, str what) except -1:
    if expected != given:
        raise ValueError(f"{name}: expected {expected} {what}, got {given}")
    return 0


def affine_rows(x,         # IN  (M, K)
                weight,    # IN  (N, K)
                bias,      # IN  (N,), or None
                out,       # OUT (M, N)
                bint relu, int num_threads):
    """out = x @ weight.T + bias (bias may be None), then ReLU's rule when `relu` (the rule of
    every kernel: pointwise.h). Each value is x[m] . weight[n] in the fixed order of
    linear_rows.h, then + bias[n]: the same bits for any thread count. C-contiguous float
    arrays of one dtype (ValueError or TypeError naming the argument otherwise)."""
    cdef Py_buffer views[4]  # x, weight, the bias when there is one, out
    cdef Py_buffer* b = NULL
    cdef int taken = 0, i
    try:
        take(x, &views[taken], 2, False, "x")
        taken += 1
        take(weight, &views[taken], 2, False, "weight")
        taken += 1
        if bias is not None:
            b = &views[taken]
            take(bias, b, 1, False, "bias")
            taken += 1
        take(out, &views[taken], 2, True, "out")
        taken += 1
        _affine(&views[0], &views[1], b, &views[taken - 1], relu, num_threads)
    finally:
        for i in range(taken):
            PyBuffer_Release(&views[i])


cdef int _affine(Py_buffer* x, Py_buffer* w, Py_buffer* b, Py_buffer* out, bint relu,
                 int num_threads) except -1:
    """affine_rows on taken buffers: their shapes and dtypes checked, then the kernel."""
    cdef Py_ssize_t M = x.shape[0], K = x.shape[1], N = w.shape[0]
    cdef bint f64 = is_double(x)
    _same_dtype(w, f64, "weight")
    _same_dtype(out, f64, "out")
    _check("weight", K, w.shape[1], "columns (x's)")
    _check("out", M, out.shape[0], "rows (x's)")
    _check("out", N, out.shape[1], "columns (weight's rows)")
    if b != NULL:
        _same_dtype(b, f64, "bias")
        _check("bias", N, b.shape[0], "elements (weight's rows)")
    if f64:
        _run[double](<const double*>x.buf, <const double*>w.buf,
                     <const double*>(b.buf if b != NULL else NULL), <double*>out.buf, M, K, N,
                     relu, num_threads)
    else:
        _run[float](<const float*>x.buf, <const float*>w.buf,
                    <const float*>(b.buf if b != NULL else NULL), <float*>out.buf, M, K, N,
                    relu, num_threads)
    return 0


cdef int _same_dtype(Py_buffer* view, bint f64, str name) except -1:
    if is_double(view) != f64:
        raise TypeError(f"{name}: expected {'float64' if f64 else 'float32'} (x's dtype), "
                        f"got {'float64' if is_double(view) else 'float32'}")
    return 0


cdef void _run(const floating* x, const floating* w, const floating* bias, floating* out,
               Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, bint relu,
               int num_threads) noexcept nogil:
    """The kernel over every row: on one thread for little work, else groups of output
    features shared by the team (each value computed by one thread, in its fixed order)."""
    cdef Py_ssize_t groups = (N + CNN_LINEAR_ROWS - 1) // CNN_LINEAR_ROWS, g
    if M == 0 or N == 0:
        return
    if serial(num_threads, groups) or M * N * K < MIN_PARALLEL_MACS:
        _rows(x, w, bias, out, M, K, N, 0, N, relu)
    else:
        for g in prange(groups, schedule="static", num_threads=num_threads):
            _rows(x, w, bias, out, M, K, N, g * CNN_LINEAR_ROWS,
                  min(N, (g + 1) * CNN_LINEAR_ROWS), relu)


cdef inline void _rows(const floating* x, const floating* w, const floating* bias,
                       floating* out, Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                       Py_ssize_t first, Py_ssize_t last, bint relu) noexcept nogil:
    if floating is float:
        cnn_linear_rows_f32(x, w, bias, out, M, K, N, first, last, relu)
    else:
        cnn_linear_rows_f64(x, w, bias, out, M, K, N, first, last, relu)
