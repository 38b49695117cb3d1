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

import numpy as np

from ._buffers cimport disjoint, is_double, release, take
from ._openmp cimport serial
from cnn._ext._replay cimport BoundStep

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
    cdef int taken = 0
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
        release(views, taken)


cdef int _affine(Py_buffer* x, Py_buffer* w, Py_buffer* b, Py_buffer* out, bint relu,
                 int num_threads) except -1:
    """affine_rows on taken buffers: their shapes and dtypes checked, then the kernel."""
    _check_affine(x, w, b, out)
    _run_buffers(x, w, b, out, relu, num_threads)
    return 0


cdef int _check_affine(Py_buffer* x, Py_buffer* w, Py_buffer* b, Py_buffer* out) except -1:
    """The checks of _affine: the buffers' shapes and dtypes (x's dtype for all)."""
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
    return 0


cdef void _run_buffers(Py_buffer* x, Py_buffer* w, Py_buffer* b, Py_buffer* out, bint relu,
                       int num_threads) noexcept:
    """The kernel on checked buffers (_check_affine)."""
    cdef Py_ssize_t M = x.shape[0], K = x.shape[1], N = w.shape[0]
    if is_double(x):
        _run[double](<const double*>x.buf, <const double*>w.buf,
                     <const double*>(b.buf if b != NULL else NULL), <double*>out.buf, M, K, N,
                     relu, num_threads)
    else:
        _run[float](<const float*>x.buf, <const float*>w.buf,
                    <const float*>(b.buf if b != NULL else NULL), <float*>out.buf, M, K, N,
                    relu, num_threads)


cdef int _check_rows(Py_buffer* x) except -1:
    """ValueError unless x has at most MAX_ROWS rows (the row kernel's; BLAS takes more)."""
    if x.shape[0] > MAX_ROWS:
        raise ValueError(f"x: expected at most {MAX_ROWS} rows, got {x.shape[0]}")
    return 0


cdef int _same_dtype(Py_buffer* view, bint f64, str name) except -1:
    if is_double(view) != f64:
        raise TypeError(f"{name}: expected {'float64' if f64 else 'float32'} (x's dtype), "
                        f"got {'float64' if is_double(view) else 'float32'}")
    return 0


cdef void _run(const floating* x, const floating* w, const floating* bias, floating* out,
               Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, bint relu,
               int num_threads) noexcept nogil:
    """The kernel over every row, on _team's threads."""
    cdef Py_ssize_t team = _team(M, K, N, num_threads), t
    if M == 0 or N == 0:
        return
    if team == 1:
        _share(x, w, bias, out, M, K, N, relu, 1, 0)
    else:
        for t in prange(team, schedule="static", num_threads=team):
            _share(x, w, bias, out, M, K, N, relu, team, t)


cdef inline Py_ssize_t _groups(Py_ssize_t N) noexcept nogil:
    """The groups of CNN_LINEAR_ROWS output features (the last one partial) of N features."""
    return (N + CNN_LINEAR_ROWS - 1) // CNN_LINEAR_ROWS


cdef inline Py_ssize_t _team(Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                             int num_threads) noexcept nogil:
    """The threads the kernel runs on: one for little work, else at most one per group of
    output features."""
    cdef Py_ssize_t groups = _groups(N)
    if serial(num_threads, groups) or M * N * K < MIN_PARALLEL_MACS:
        return 1
    return min(num_threads, groups)


cdef void _share(const floating* x, const floating* w, const floating* bias, floating* out,
                 Py_ssize_t M, Py_ssize_t K, Py_ssize_t N, bint relu, Py_ssize_t team,
                 Py_ssize_t t) noexcept nogil:
    """Share t of the kernel on a team of `team` threads: a range of whole groups of output
    features (each value computed by one thread, in its fixed order, whatever the team)."""
    cdef Py_ssize_t groups = _groups(N)
    cdef Py_ssize_t first = groups * t // team * CNN_LINEAR_ROWS
    cdef Py_ssize_t last = min(N, groups * (t + 1) // team * CNN_LINEAR_ROWS)
    if first < last:
        _rows(x, w, bias, out, M, K, N, first, last, relu)


cdef inline void _rows(const floating* x, const floating* w, const floating* bias,
                       floating* out, Py_ssize_t M, Py_ssize_t K, Py_ssize_t N,
                       Py_ssize_t first, Py_ssize_t last, bint relu) noexcept nogil:
    if floating is float:
        cnn_linear_rows_f32(x, w, bias, out, M, K, N, first, last, relu)
    else:
        cnn_linear_rows_f64(x, w, bias, out, M, K, N, first, last, relu)


cdef class FrozenAffine:
    """affine_rows for a layer whose weight and bias are taken for constants (cnn.compile's
    freezing), called as ``frozen(num_threads, x)`` with x (M, K), M <= MAX_ROWS (a copy is
    taken of an x that is not C-contiguous): a new (M, N) result, with affine_rows's bits.
    The weight's and bias's buffers are taken once here and held (a buffer keeps its array
    alive; the arrays are read at each call, not copied), so that a call takes only x's and
    the result's, where affine_rows takes and checks four buffers, after the layer's Python
    made the arrays contiguous: about 0.5 us of a batch-1 layer's call."""

    cdef Py_buffer views[2]  # the weight, the bias when there is one
    cdef int taken
    cdef bint relu
    cdef object dtype

    def __cinit__(self, weight, bias, bint relu):
        self.taken = 0
        take(weight, &self.views[0], 2, False, "weight")
        self.taken = 1
        self.dtype = np.dtype(np.float64 if is_double(&self.views[0]) else np.float32)
        if bias is not None:
            take(bias, &self.views[1], 1, False, "bias")
            self.taken = 2
            _same_dtype(&self.views[1], is_double(&self.views[0]), "bias")
            _check("bias", self.views[0].shape[0], self.views[1].shape[0],
                   "elements (weight's rows)")
        self.relu = relu

    def __dealloc__(self):
        release(self.views, self.taken)

    def __call__(self, int num_threads, x):
        cdef Py_buffer view, result
        try:
            take(x, &view, 2, False, "x")
        except ValueError:  # not C-contiguous (or not an array)
            x = np.ascontiguousarray(x)
            take(x, &view, 2, False, "x")
        try:
            if is_double(&view) != is_double(&self.views[0]):
                raise TypeError(f"x: expected {self.dtype} (the weight's dtype), got "
                                f"{'float64' if is_double(&view) else 'float32'}")
            _check("x", self.views[0].shape[1], view.shape[1], "columns (the weight's)")
            _check_rows(&view)
            out = np.empty((view.shape[0], self.views[0].shape[0]), dtype=self.dtype)
            take(out, &result, 2, True, "out")
            try:
                _affine(&view, &self.views[0], self._bias(), &result, self.relu, num_threads)
            finally:
                PyBuffer_Release(&result)
        finally:
            PyBuffer_Release(&view)
        return out

    cdef Py_buffer* _bias(self) noexcept:
        return &self.views[1] if self.taken == 2 else NULL

    def bind(self, num_threads, out, x):
        """This layer bound to arrays it reads and writes at every call (cnn.compile's bound
        programs): a BoundAffine, whose call ``bound(threads)`` writes into `out` what
        ``frozen(threads, x)`` would return for the values x then holds, with nothing
        checked or allocated again. x (M, K) and out (M, N), M <= MAX_ROWS: C-contiguous,
        of the weight's dtype, out writable and sharing no memory with x (ValueError or
        TypeError naming the argument otherwise); `num_threads`: the largest team of its
        calls."""
        return BoundAffine(self, num_threads, x, out)


cdef class BoundAffine(BoundStep):
    """A FrozenAffine bound to its arrays (FrozenAffine.bind): ``bound(threads)`` runs the
    kernel from x into out, their buffers taken once and checked, where a frozen call takes
    and checks x's and the result's and allocates the result; a bound program runs its
    shares (BoundStep) with its other steps'. The buffers are held, so NumPy refuses to
    resize the arrays (unless told not to check, `refcheck=False`, which frees memory the
    kernel then writes: never do that to a bound array)."""

    cdef FrozenAffine frozen
    cdef Py_buffer views[2]  # x, out
    cdef int taken
    cdef const void* bias  # the frozen layer's, or NULL
    cdef bint f64

    def __cinit__(self, FrozenAffine frozen, int num_threads, x, out):
        self.frozen, self.taken = frozen, 0
        take(x, &self.views[0], 2, False, "x")
        self.taken = 1
        take(out, &self.views[1], 2, True, "out")
        self.taken = 2
        _check_rows(&self.views[0])
        _check_affine(&self.views[0], &frozen.views[0], frozen._bias(), &self.views[1])
        disjoint(&self.views[1], &self.views[0], "x")
        self.f64 = is_double(&self.views[0])
        self.bias = NULL if frozen._bias() == NULL else frozen._bias().buf
        # Shared by the whole team, however little the work (_replay.BoundSteps says why).
        self.team = 0
        if self.views[1].len:
            self.team = min(max(1, num_threads), _groups(self.views[1].shape[1]))

    def __dealloc__(self):
        release(self.views, self.taken)

    cdef void share(self, Py_ssize_t t) noexcept nogil:
        cdef Py_ssize_t M = self.views[0].shape[0], K = self.views[0].shape[1]
        cdef Py_ssize_t N = self.views[1].shape[1]
        if self.f64:
            _share(<const double*>self.views[0].buf, <const double*>self.frozen.views[0].buf,
                   <const double*>self.bias, <double*>self.views[1].buf, M, K, N,
                   self.frozen.relu, self.team, t)
        else:
            _share(<const float*>self.views[0].buf, <const float*>self.frozen.views[0].buf,
                   <const float*>self.bias, <float*>self.views[1].buf, M, K, N,
                   self.frozen.relu, self.team, t)
