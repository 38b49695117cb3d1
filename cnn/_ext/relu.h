/* The ReLU rule every kernel follows (elementwise.pyx, norm.pyx, the convolution's epilogue),
 * so that fused and separate layers give the same bits: x where x > 0 or x is NaN, else +0
 * (-0.0 becomes +0.0); and its gradient: 0 where the output is <= 0, else the gradient (a NaN
 * output passes its gradient, as torch's threshold_backward).
 *
 * Branch-free on purpose: written in Cython with `or` and conditional expressions these became
 * branches that gcc neither vectorized nor predicted (on random data a batch norm with its ReLU
 * ran 50x slower than without). The gradient masks the value's bits with an all-ones or
 * all-zeros word, which gcc vectorizes.
 */
#ifndef CNN_RELU_H
#define CNN_RELU_H

#include <stdint.h>
#include <string.h>

#define CNN_DEFINE_RELU(SUFFIX, T, BITS)                                                       \
    static inline T cnn_relu_##SUFFIX(T v) { return ((v > 0) | (v != v)) ? v : (T)0; }        \
    static inline T cnn_relu_grad_##SUFFIX(T grad, T out)                                      \
    {                                                                                          \
        BITS bits;                                                                             \
        memcpy(&bits, &grad, sizeof bits);                                                     \
        bits &= -(BITS)!(out <= 0);                                                            \
        memcpy(&grad, &bits, sizeof bits);                                                     \
        return grad;                                                                           \
    }

CNN_DEFINE_RELU(f32, float, uint32_t)
CNN_DEFINE_RELU(f64, double, uint64_t)

#endif
