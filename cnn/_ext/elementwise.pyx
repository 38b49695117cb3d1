"""Element-wise activations (and a sum) over flat arrays: one pass each, on the kernels' threads.

NumPy runs ``np.maximum(x, 0)`` and ``grad * (out > 0)`` on one core, in two passes for the
gradient (a mask, then the product). Here each is one pass, split into fixed chunks that the
OpenMP team shares (each element is computed by itself, so any split gives the same bits).
"""
from cython cimport floating
from cython.parallel cimport prange

include "pointwise.pxi"

# Elements per chunk a thread takes; smaller arrays run serially.
cdef Py_ssize_t CHUNK = 1 << 15


cdef int _same_length(Py_ssize_t n, Py_ssize_t length, str name) except -1:
    if length != n:
        raise ValueError(f"{name}: expected {n} elements, got {length}")
    return 0


cdef enum _Op:
    RELU            # out = relu(a)
    ADD             # out = a + b
    ADD_RELU        # out = relu(a + b)
    RELU_BACKWARD   # out = the gradient a through a ReLU whose output is b


cdef void _run(_Op op, const floating* a, const floating* b, floating* out, Py_ssize_t n,
               int num_threads) noexcept nogil:
    """Apply `op` to elements [0, n), in chunks the OpenMP team shares (without entering a
    parallel region for one chunk: that alone cost about 0.8 us a call)."""
    cdef Py_ssize_t chunk
    if num_threads > 1 and n > CHUNK:
        for chunk in prange((n + CHUNK - 1) // CHUNK, schedule="static",
                            num_threads=num_threads):
            _run_chunk(op, a, b, out, chunk * CHUNK, min(n, (chunk + 1) * CHUNK))
    else:
        _run_chunk(op, a, b, out, 0, n)


cdef void _run_chunk(_Op op, const floating* a, const floating* b, floating* out,
                     Py_ssize_t start, Py_ssize_t end) noexcept nogil:
    cdef Py_ssize_t i
    if op == RELU:
        for i in range(start, end):
            out[i] = _relu_value(a[i])
    elif op == ADD:
        for i in range(start, end):
            out[i] = a[i] + b[i]
    elif op == ADD_RELU:
        for i in range(start, end):
            out[i] = _relu_value(a[i] + b[i])
    else:
        for i in range(start, end):
            out[i] = _relu_grad(a[i], b[i])


def relu(const floating[::1] x,   # IN  (n,)
         floating[::1] out,       # OUT (n,), may be x's memory
         int num_threads):
    """out = max(x, 0), keeping a NaN (as np.maximum and torch.relu do); -0.0 gives +0.0, the
    rule of every ReLU in cnn's kernels (the fused ones too, so fused and separate layers give
    the same bits)."""
    cdef Py_ssize_t n = x.shape[0]
    _same_length(n, out.shape[0], "out")
    if n:
        with nogil:
            _run(RELU, &x[0], NULL, &out[0], n, num_threads)


cdef int _binary(_Op op, const floating[::1] a, const floating[::1] b, floating[::1] out,
                 int num_threads, str b_name="b", str out_name="out") except -1:
    """out = op(a, b) for arrays of one length (checked here; errors name b and out so)."""
    cdef Py_ssize_t n = a.shape[0]
    _same_length(n, b.shape[0], b_name)
    _same_length(n, out.shape[0], out_name)
    if n:
        with nogil:
            _run(op, &a[0], &b[0], &out[0], n, num_threads)
    return 0


def add(const floating[::1] a,   # IN  (n,)
        const floating[::1] b,   # IN  (n,)
        floating[::1] out,       # OUT (n,), may be a's or b's memory
        int num_threads):
    """out = a + b (NumPy's + on one core: a gradient's sum where two ops took one tensor, the
    same bits)."""
    _binary(ADD, a, b, out, num_threads)


def add_relu(const floating[::1] a,   # IN  (n,)
             const floating[::1] b,   # IN  (n,)
             floating[::1] out,       # OUT (n,), may be a's or b's memory
             int num_threads):
    """out = relu(a + b) in one pass (a residual connection's sum and its ReLU), by relu's
    rule."""
    _binary(ADD_RELU, a, b, out, num_threads)


def bias_relu(floating[:, ::1] out,        # IN/OUT (M, N)
              const floating[::1] bias,    # IN  (N,), or None
              bint relu, int num_threads):
    """out[m] = out[m] + bias, then relu's rule when `relu`: a linear layer's epilogue in one
    pass and one call (NumPy's `out += bias` and the ReLU took two of each, a few
    microseconds that a batch-1 forward paid per layer). The same bits as the two steps."""
    cdef Py_ssize_t M = out.shape[0], N = out.shape[1], m
    cdef floating* rows
    cdef const floating* b = NULL
    if bias is not None:
        _same_length(N, bias.shape[0], "bias")
    if M * N == 0:
        return
    if bias is not None:
        b = &bias[0]
    rows = &out[0, 0]
    with nogil:
        if num_threads > 1 and M * N > CHUNK:
            for m in prange(M, schedule="static", num_threads=num_threads):
                _bias_relu_row(rows + m * N, b, N, relu)
        else:  # no parallel region (see _run)
            for m in range(M):
                _bias_relu_row(rows + m * N, b, N, relu)


cdef void _bias_relu_row(floating* row, const floating* bias, Py_ssize_t n,
                         bint relu) noexcept nogil:
    """One row of bias_relu."""
    cdef Py_ssize_t i
    if bias != NULL:
        for i in range(n):
            row[i] = row[i] + bias[i]
    if relu:
        for i in range(n):
            row[i] = _relu_value(row[i])


def relu_backward(const floating[::1] grad,   # IN  (n,) gradient of relu's output
                  const floating[::1] out,    # IN  (n,) relu's output
                  floating[::1] grad_input,   # OUT (n,), may be grad's memory
                  int num_threads):
    """grad_input = 0 where out <= 0, else grad (torch's threshold_backward: a NaN output
    passes its gradient; a masked gradient is 0 even when it is inf or NaN)."""
    _binary(RELU_BACKWARD, grad, out, grad_input, num_threads, "out", "grad_input")
