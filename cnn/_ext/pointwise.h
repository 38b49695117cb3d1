/* The per-element rules that several kernels apply, and fused epilogues apply again, written once
 * so that fused and separate layers give the same bits:
 *
 * - ReLU (elementwise.pyx, norm.pyx, the convolution's epilogue): x where x > 0 or x is NaN,
 *   else +0 (-0.0 becomes +0.0); its gradient: 0 where the output is <= 0, else the gradient (a
 *   NaN output passes its gradient, as torch's threshold_backward).
 * - A residual sum and its ReLU (elementwise.add_relu's arithmetic, in a convolution's epilogue).
 * - Batch norm's affine map (norm.pyx, and the convolution's epilogue for a batch norm in
 *   evaluation mode): (x - mean) * scale + shift, as one fused multiply-add where the build
 *   level has FMA (an explicit one: left to the compiler, contraction could differ between two
 *   loops and so would the bits), as a multiply and an add where it has none.
 *
 * Branch-free on purpose: written in Cython with `or` and conditional expressions these became
 * branches that gcc neither vectorized nor predicted (on random data a batch norm with its ReLU
 * ran 50x slower than without). ReLU and its gradient mask the value's bits with an all-ones or
 * all-zeros word, which gcc vectorizes and which stays branch-free where a loop is not
 * vectorized: as a conditional expression, ReLU became a branch in the scalar loops of short
 * rows (an 8 x 8 Winograd layer's rows of 8 values: 64 -> 64 at batch 64 ran 1402 us with its
 * ReLU, 739 without).
 */
#ifndef CNN_POINTWISE_H
#define CNN_POINTWISE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CNN_DEFINE_RELU(SUFFIX, T, BITS)                                                       \
    static inline T cnn_relu_##SUFFIX(T v)                                                     \
    {                                                                                          \
        BITS bits;                                                                             \
        memcpy(&bits, &v, sizeof bits);                                                        \
        bits &= -(BITS)((v > 0) | (v != v));                                                   \
        memcpy(&v, &bits, sizeof bits);                                                        \
        return v;                                                                              \
    }                                                                                          \
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

#if defined(__FMA__)
static inline float cnn_affine_f32(float x, float m, float a, float b)
{
    return __builtin_fmaf(x - m, a, b);
}
static inline double cnn_affine_f64(double x, double m, double a, double b)
{
    return __builtin_fma(x - m, a, b);
}
#else
static inline float cnn_affine_f32(float x, float m, float a, float b) { return (x - m) * a + b; }
static inline double cnn_affine_f64(double x, double m, double a, double b)
{
    return (x - m) * a + b;
}
#endif

/* A residual connection's sum in a convolution's epilogue, in place: out[i] + residual[i] (the
 * convolution's value first, as Add's operands), then ReLU when relu: AddReLU's arithmetic. */
#define CNN_DEFINE_ADD_RESIDUAL(SUFFIX, T)                                                     \
    static inline void cnn_add_residual_##SUFFIX(T *restrict out, const T *restrict residual,  \
                                                 ptrdiff_t n, int relu)                        \
    {                                                                                          \
        ptrdiff_t i;                                                                           \
        for (i = 0; i < n; i++)                                                                \
            out[i] = out[i] + residual[i];                                                     \
        if (relu)                                                                              \
            for (i = 0; i < n; i++)                                                            \
                out[i] = cnn_relu_##SUFFIX(out[i]);                                            \
    }

CNN_DEFINE_ADD_RESIDUAL(f32, float)
CNN_DEFINE_ADD_RESIDUAL(f64, double)

/* ReLU's rule on a vector VALUE of type V (masks of type M, integers as wide as its elements),
 * in place: compares give all-ones/all-zeros lanes, so a bitwise and keeps v or makes +0, with
 * no branch (gcc turned the scalar rule's select into branches). */
#define CNN_RELU_VECTOR(V, M, VALUE)                                                           \
    do {                                                                                       \
        M keep_relu_ = ((VALUE) > (V){0}) | ((VALUE) != (VALUE));                              \
        (VALUE) = (V)((M)(VALUE) & keep_relu_);                                                \
    } while (0)

/* One position q (0, 1, ...) of a ReLU + max-pool window, for a vector of windows (or of
 * channels) at once: VALUE (a vector of type V, masks of type M) through ReLU, then into BEST
 * (and q into WHICH, the position holding it) when it is the first or is strictly greater or
 * NaN: max_pool2d's rules over relu's output. Compares give all-ones/all-zeros lanes, so each
 * choice is a bitwise select: no branch (the winner is unpredictable on real data). */
#define CNN_RELU_MAX_STEP(V, M, VALUE, BEST, WHICH, Q)                                         \
    do {                                                                                       \
        V relu_value_ = (VALUE);                                                               \
        CNN_RELU_VECTOR(V, M, relu_value_);                                                    \
        if ((Q) == 0) {                                                                        \
            (BEST) = relu_value_;                                                              \
        } else {                                                                               \
            M keep_ = (relu_value_ > (BEST)) | (relu_value_ != relu_value_);                   \
            (BEST) = (V)(((M)relu_value_ & keep_) | ((M)(BEST) & ~keep_));                     \
            (WHICH) = (((M){0} + (Q)) & keep_) | ((WHICH) & ~keep_);                           \
        }                                                                                      \
    } while (0)

#endif
