"""Optimizer updates, one pass over a parameter and its state per call.

Written in NumPy, an SGD-momentum update is four array operations per parameter and Adam's
thirteen, each a call and a pass over memory: for LeNet-5's ten small parameters that is most
of an optimizer step. Here each update is one loop, doing per element the same operations in
the same order as the formulas in cnn/optim (scalars rounded to the parameter's dtype first, as
NumPy does with Python floats). The parameters are small, so the loops are serial.
"""
from cython cimport floating
from libc.math cimport sqrt


cdef int _same_length(Py_ssize_t n, Py_ssize_t length, str name) except -1:
    """The state arrays must be as long as the parameter: the loops index them all by i < n."""
    if length != n:
        raise ValueError(f"{name}: expected {n} elements (the parameter's), got {length}")
    return 0


def sgd_update(floating[::1] param,          # IN/OUT the parameter, flattened
               const floating[::1] grad,     # IN  its gradient
               floating[::1] buf,            # IN/OUT the momentum buffer (ignored without momentum)
               double lr, double momentum, double dampening, double weight_decay,
               bint nesterov, bint maximize, bint first_step):
    """One step of cnn.optim.SGD for one parameter (see its docstring for the rule)."""
    cdef Py_ssize_t i, n = param.shape[0]
    _same_length(n, grad.shape[0], "grad")
    if momentum != 0:
        _same_length(n, buf.shape[0], "buf")
    cdef floating g, b
    cdef floating lr_ = lr, mu = momentum, keep = 1 - dampening, decay = weight_decay
    cdef floating* p = &param[0] if n else NULL
    cdef const floating* d = &grad[0] if n else NULL
    cdef floating* v = &buf[0] if n and momentum != 0 else NULL
    if (momentum != 0 and not first_step and dampening == 0 and weight_decay == 0
            and not nesterov and not maximize):
        # The usual case, without the branches that keep the general loop from vectorizing.
        with nogil:
            for i in range(n):
                b = v[i] * mu + d[i]
                v[i] = b
                p[i] = p[i] - lr_ * b
        return
    with nogil:
        for i in range(n):
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
                double step, bint amsgrad, bint maximize, bint decoupled):
    """One step of cnn.optim.Adam / AdamW for one parameter (see Adam's docstring)."""
    cdef Py_ssize_t i, n = param.shape[0]
    _same_length(n, grad.shape[0], "grad")
    _same_length(n, exp_avg.shape[0], "exp_avg")
    _same_length(n, exp_avg_sq.shape[0], "exp_avg_sq")
    if amsgrad:
        _same_length(n, max_exp_avg_sq.shape[0], "max_exp_avg_sq")
    cdef floating g, m, v, second, denom
    cdef floating shrink = 1 - lr * weight_decay, decay = weight_decay
    cdef floating keep1 = 1 - beta1, keep2 = 1 - beta2, b2 = beta2
    cdef floating root2 = (1 - beta2 ** step) ** 0.5, eps_ = eps
    cdef floating step_size = -(lr / (1 - beta1 ** step))
    cdef floating* p = &param[0] if n else NULL
    cdef const floating* d = &grad[0] if n else NULL
    cdef floating* m1 = &exp_avg[0] if n else NULL
    cdef floating* m2 = &exp_avg_sq[0] if n else NULL
    if weight_decay == 0 and not amsgrad and not maximize:
        # The usual case, without the branches that keep the general loop from vectorizing.
        with nogil:
            for i in range(n):
                g = d[i]
                m = m1[i] + (g - m1[i]) * keep1
                m1[i] = m
                v = m2[i] * b2 + g * keep2 * g
                m2[i] = v
                denom = <floating> sqrt(v) / root2 + eps_
                p[i] = p[i] + m / denom * step_size
        return
    with nogil:
        for i in range(n):
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
            if amsgrad:
                # np.maximum's rule: the larger value, or a NaN from either side.
                second = max_exp_avg_sq[i] if max_exp_avg_sq[i] > v else v
                if max_exp_avg_sq[i] != max_exp_avg_sq[i]:
                    second = max_exp_avg_sq[i]
                max_exp_avg_sq[i] = second
            denom = <floating> sqrt(second) / root2 + eps_
            param[i] = param[i] + m / denom * step_size
