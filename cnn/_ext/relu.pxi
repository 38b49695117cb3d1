# The ReLU rule of every kernel (relu.h), typed for the fused float types. Included by the
# kernel modules that apply a ReLU.

cdef extern from "relu.h" nogil:
    float cnn_relu_f32(float v)
    double cnn_relu_f64(double v)
    float cnn_relu_grad_f32(float grad, float out)
    double cnn_relu_grad_f64(double grad, double out)


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
