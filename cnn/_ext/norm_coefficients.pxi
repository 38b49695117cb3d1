# A batch norm's per-channel map in evaluation mode, written once for the two places that make
# it: norm.pyx (evaluation_coefficients, for the batch norm's own kernels) and conv.pyx (a
# convolution's folded batch norm), so that both give the same bits. Included by both.

from libc.math cimport sqrt

ctypedef fused coefficient:
    float
    double


cdef void _evaluation_rows(const floating[::1] running_mean, const floating[::1] running_var,
                           const floating[::1] weight, const floating[::1] bias, double eps,
                           coefficient[:, ::1] out) noexcept:
    """out[0..2, c] = the mean, the scale 1 / sqrt(var + eps) * weight (without a weight,
    1 / sqrt(var + eps)) and the shift, bias (0 without), of each of the C channels, computed
    in double precision and stored in out's type (norm.normalize rounds float64 rows to the
    data's type the same way); and out[3, c] = 1 / sqrt(var + eps) when out has a fourth
    row. Checked arrays of C channels; out has at least C columns."""
    _evaluation_rows_at(&running_mean[0] if running_mean.shape[0] > 0 else NULL,
                        &running_var[0] if running_var.shape[0] > 0 else NULL,
                        &weight[0] if weight is not None and weight.shape[0] > 0 else NULL,
                        &bias[0] if bias is not None and bias.shape[0] > 0 else NULL, eps,
                        &out[0, 0] if out.shape[1] > 0 else NULL, out.shape[1],
                        running_mean.shape[0], out.shape[0] > 3)


cdef void _evaluation_rows_at(const floating* running_mean, const floating* running_var,
                              const floating* weight, const floating* bias, double eps,
                              coefficient* out, Py_ssize_t stride, Py_ssize_t C,
                              bint with_inv_std) noexcept nogil:
    """_evaluation_rows on pointers (weight and bias NULL when absent; rows `stride` apart):
    its one formula, for callers that hold the arrays as buffers."""
    cdef Py_ssize_t c
    cdef double inv_std
    for c in range(C):
        inv_std = 1.0 / sqrt(<double> running_var[c] + eps)
        out[c] = <double> running_mean[c]
        out[stride + c] = inv_std * weight[c] if weight != NULL else inv_std
        out[2 * stride + c] = <double> bias[c] if bias != NULL else 0.0
        if with_inv_std:
            out[3 * stride + c] = inv_std
