# The per-element rules of pointwise.h (ReLU, batch norm's affine map), typed for the fused
# float types. Included by the kernel modules that apply them.

cdef extern from "pointwise.h" nogil:
    float cnn_relu_f32(float v)
    double cnn_relu_f64(double v)
    float cnn_relu_grad_f32(float grad, float out)
    double cnn_relu_grad_f64(double grad, double out)
    float cnn_affine_f32(float x, float m, float a, float b)
    double cnn_affine_f64(double x, double m, double a, double b)
    void cnn_add_residual_f32(float* out, const float* residual, Py_ssize_t n, int relu)
    void cnn_add_residual_f64(double* out, const double* residual, Py_ssize_t n, int relu)


cdef inline void _add_residual(floating* out, const floating* residual, Py_ssize_t n,
                               bint relu) noexcept nogil:
    """out = out + residual, then ReLU's rule when relu (a fused residual connection)."""
    if floating is float:
        cnn_add_residual_f32(out, residual, n, relu)
    else:
        cnn_add_residual_f64(out, residual, n, relu)


cdef inline floating _affine(floating x, floating m, floating a, floating b) noexcept nogil:
    """(x - m) * a + b, by one rule everywhere (pointwise.h)."""
    if floating is float:
        return cnn_affine_f32(x, m, a, b)
    else:
        return cnn_affine_f64(x, m, a, b)


cdef inline floating _relu_value(floating v) noexcept nogil:
    """v where v > 0 or NaN, else +0."""
    if floating is float:
        return cnn_relu_f32(v)
    else:
        return cnn_relu_f64(v)


cdef inline floating _relu_grad(floating grad, floating out) noexcept nogil:
    """The gradient through a ReLU whose output is `out`: 0 where out <= 0, else grad."""
    if floating is float:
        return cnn_relu_grad_f32(grad, out)
    else:
        return cnn_relu_grad_f64(grad, out)
