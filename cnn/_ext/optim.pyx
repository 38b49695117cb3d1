"""Optimizer updates, one pass over a parameter and its state per call.

Written in NumPy, an SGD-momentum update is four array operations per parameter and Adam's
thirteen, each a call and a pass over memory: for LeNet-5's ten small parameters that is most
of an optimizer step. Here each update is one loop, doing per element the same operations in
the same order as the formulas in cnn/optim (scalars rounded to the parameter's dtype first, as
NumPy does with Python floats). Each element's update is independent of the others, so a large
parameter's loop is shared among the kernel threads with the same bits.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport sqrt

from cnn._ext._openmp cimport serial

# Elements from which an update shares its chunks among the threads; smaller parameters run on
# one thread, where waking the team would cost more than it saves. After a training step's
# backward an update reads its arrays from the shared cache (written by both threads, pushed
# out by the step's activations): LeNet-5's batch-64 SGD step on two threads spent 111-120 us
# in the optimizer, as long as on one; its 48k-weight layer shared, 94-107 (alternated runs).
cdef Py_ssize_t MIN_PARALLEL_ELEMENTS = 1 << 14
# An update runs over fixed chunks of this many elements, shared out whole (static schedule).
# The bits do not depend on the split: each element's arithmetic is its own, and the module is
# compiled without contracting multiplies and adds (setup.py's UNCONTRACTED), which gcc had
# done differently in the serial loop and the parallel one.
DEF CHUNK = 8192


cdef int _same_length(Py_ssize_t n, Py_ssize_t length, str name) except -1:
    """The state arrays must be as long as the parameter: the loops index them all by i < n."""
    if length != n:
        raise ValueError(f"{name}: expected {n} elements (the parameter's), got {length}")
    return 0


cdef inline bint _shared(int num_threads, Py_ssize_t n) noexcept nogil:
    """Whether an update of n elements shares its chunks among `num_threads` threads (else it
    runs on the calling thread, outside any parallel region)."""
    return not serial(num_threads, n) and n >= MIN_PARALLEL_ELEMENTS


def sgd_update(floating[::1] param,          # IN/OUT the parameter, flattened
               const floating[::1] grad,     # IN  its gradient
               floating[::1] buf,            # IN/OUT the momentum buffer (ignored without momentum)
               double lr, double momentum, double dampening, double weight_decay,
               bint nesterov, bint maximize, bint first_step, int num_threads=1):
    """One step of cnn.optim.SGD for one parameter (see its docstring for the rule), on up to
    `num_threads` threads (chunks of the elements: _sgd_range)."""
    cdef Py_ssize_t c, n = param.shape[0], chunks = (n + CHUNK - 1) // CHUNK
    _same_length(n, grad.shape[0], "grad")
    if momentum != 0:
        _same_length(n, buf.shape[0], "buf")
    if n == 0:
        return
    cdef floating* p = &param[0]
    cdef const floating* d = &grad[0]
    cdef floating* v = &buf[0] if momentum != 0 else NULL
    with nogil:
        if _shared(num_threads, n):
            for c in prange(chunks, schedule="static", num_threads=num_threads):
                _sgd_range(p, d, v, lr, momentum, dampening, weight_decay, nesterov, maximize,
                           first_step, c * CHUNK, min(n, (c + 1) * CHUNK))
        else:
            for c in range(chunks):
                _sgd_range(p, d, v, lr, momentum, dampening, weight_decay, nesterov, maximize,
                           first_step, c * CHUNK, min(n, (c + 1) * CHUNK))


cdef void _sgd_range(floating* param, const floating* grad, floating* buf, double lr,
                     double momentum, double dampening, double weight_decay, bint nesterov,
                     bint maximize, bint first_step, Py_ssize_t begin,
                     Py_ssize_t end) noexcept nogil:
    """sgd_update on elements begin..end-1 (buf NULL without momentum)."""
    cdef Py_ssize_t i
    cdef floating g, b
    cdef floating lr_ = lr, mu = momentum, keep = 1 - dampening, decay = weight_decay
    if (momentum != 0 and not first_step and dampening == 0 and weight_decay == 0
            and not nesterov and not maximize):
        # The usual case, without the branches that keep the general loop from vectorizing.
        for i in range(begin, end):
            b = buf[i] * mu + grad[i]
            buf[i] = b
            param[i] = param[i] - lr_ * b
        return
    for i in range(begin, end):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            g = g + decay * param[i]
        if momentum != 0:
            if first_step:
                b = g
            else:
                b = buf[i] * mu + (g if dampening == 0 else keep * g)
            buf[i] = b
            g = g + mu * b if nesterov else b
        param[i] = param[i] - lr_ * g


def adam_update(floating[::1] param,           # IN/OUT the parameter, flattened
                const floating[::1] grad,      # IN  its gradient
                floating[::1] exp_avg,         # IN/OUT first moment
                floating[::1] exp_avg_sq,      # IN/OUT second moment
                floating[::1] max_exp_avg_sq,  # IN/OUT running maximum (amsgrad only)
                double lr, double beta1, double beta2, double eps, double weight_decay,
                double step, bint amsgrad, bint maximize, bint decoupled,
                int num_threads=1):
    """One step of cnn.optim.Adam / AdamW for one parameter (see Adam's docstring), on up to
    `num_threads` threads (chunks of the elements: _adam_range)."""
    cdef Py_ssize_t c, n = param.shape[0], chunks = (n + CHUNK - 1) // CHUNK
    _same_length(n, grad.shape[0], "grad")
    _same_length(n, exp_avg.shape[0], "exp_avg")
    _same_length(n, exp_avg_sq.shape[0], "exp_avg_sq")
    if amsgrad:
        _same_length(n, max_exp_avg_sq.shape[0], "max_exp_avg_sq")
    if n == 0:
        return
    cdef floating* p = &param[0]
    cdef const floating* d = &grad[0]
    cdef floating* m1 = &exp_avg[0]
    cdef floating* m2 = &exp_avg_sq[0]
    cdef floating* top = &max_exp_avg_sq[0] if amsgrad else NULL
    with nogil:
        if _shared(num_threads, n):
            for c in prange(chunks, schedule="static", num_threads=num_threads):
                _adam_range(p, d, m1, m2, top, lr, beta1, beta2, eps, weight_decay, step,
                            maximize, decoupled, c * CHUNK, min(n, (c + 1) * CHUNK))
        else:
            for c in range(chunks):
                _adam_range(p, d, m1, m2, top, lr, beta1, beta2, eps, weight_decay, step,
                            maximize, decoupled, c * CHUNK, min(n, (c + 1) * CHUNK))


cdef void _adam_range(floating* param, const floating* grad, floating* exp_avg,
                      floating* exp_avg_sq, floating* max_exp_avg_sq, double lr, double beta1,
                      double beta2, double eps, double weight_decay, double step,
                      bint maximize, bint decoupled, Py_ssize_t begin,
                      Py_ssize_t end) noexcept nogil:
    """adam_update on elements begin..end-1 (max_exp_avg_sq NULL without amsgrad)."""
    cdef Py_ssize_t i
    cdef floating g, m, v, second, denom
    cdef floating shrink = 1 - lr * weight_decay, decay = weight_decay
    cdef floating keep1 = 1 - beta1, keep2 = 1 - beta2, b2 = beta2
    cdef floating root2 = (1 - beta2 ** step) ** 0.5, eps_ = eps
    cdef floating step_size = -(lr / (1 - beta1 ** step))
    if weight_decay == 0 and max_exp_avg_sq == NULL and not maximize:
        # The usual case, without the branches that keep the general loop from vectorizing.
        for i in range(begin, end):
            g = grad[i]
            m = exp_avg[i] + (g - exp_avg[i]) * keep1
            exp_avg[i] = m
            v = exp_avg_sq[i] * b2 + g * keep2 * g
            exp_avg_sq[i] = v
            denom = <floating> sqrt(v) / root2 + eps_
            param[i] = param[i] + m / denom * step_size
        return
    for i in range(begin, end):
        g = -grad[i] if maximize else grad[i]
        if weight_decay != 0:
            if decoupled:
                param[i] = param[i] * shrink
            else:
                g = g + decay * param[i]
        m = exp_avg[i] + (g - exp_avg[i]) * keep1
        exp_avg[i] = m
        v = exp_avg_sq[i] * b2 + g * keep2 * g
        exp_avg_sq[i] = v
        second = v
        if max_exp_avg_sq != NULL:
            # np.maximum's rule: the larger value, or a NaN from either side.
            second = max_exp_avg_sq[i] if max_exp_avg_sq[i] > v else v
            if max_exp_avg_sq[i] != max_exp_avg_sq[i]:
                second = max_exp_avg_sq[i]
            max_exp_avg_sq[i] = second
        denom = <floating> sqrt(second) / root2 + eps_
        param[i] = param[i] + m / denom * step_size
