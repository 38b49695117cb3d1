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
    cdef Py_ssize_t c
    cdef double inv_std
    cdef bint with_inv_std = out.shape[0] > 3
    for c in range(running_mean.shape[0]):
        inv_std = 1.0 / sqrt(<double> running_var[c] + eps)
        out[0, c] = <double> running_mean[c]
        out[1, c] = inv_std * weight[c] if weight is not None else inv_std
        out[2, c] = <double> bias[c] if bias is not None else 0.0
        if with_inv_std:
            out[3, c] = inv_std
