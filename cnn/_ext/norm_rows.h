/* The per-row sums of batch norm's kernels (used by cnn/_ext/norm.pyx): the statistics' two sums
 * and the gradient's two, each pair in one pass over one contiguous row of a channel.
 *
 * Every sum runs in CNN_NORM_LANES partial sums in double precision: value i goes to lane
 * i % CNN_NORM_LANES, the lanes are added in a fixed order at the end (norm.pyx), so a sum's
 * bits depend on the row lengths only. The lanes are vectors here because Cython cannot express
 * them: written as a loop over an array of lanes, gcc kept the lanes in memory (each store might
 * alias the rows) and the sums ran three times slower than the memory could feed them. The
 * vectors are as wide as the build level's registers (conv_tile.h's CNN_PART_BYTES): one
 * AVX-512 register holds the 8 lanes, AVX2 two registers, SSE2 four.
 *
 * The gradient through a ReLU that followed the normalisation recomputes that ReLU's output
 * from the input (pointwise.h's affine map: the same bits as normalize's), so the output need
 * not be read.
 */
#ifndef CNN_NORM_ROWS_H
#define CNN_NORM_ROWS_H

#include <stddef.h>
#include <string.h>

#include "conv_tile.h" /* CNN_PART_BYTES */
#include "pointwise.h" /* cnn_affine_*, cnn_relu_grad_* */

#define CNN_NORM_LANES 8

/* The integer type as wide as T, for a vector comparison's lanes (all ones or all zeros). */
#define CNN_NORM_MASK_T(T) __typeof__(_Generic((T)0, float: (int)0, double: (long long)0))

/* pointwise.h's affine map cnn_affine(x, m, a, b) = (x - m) * a + b of every lane of X into Y,
 * with its rounding: where the build level has FMA, the fused multiply-add instruction of the
 * vector's width, as the scalar map's __builtin_fma is one (a vector expression would be fused
 * only if the compiler chose to contract it, and a ReLU mask's zeros would then depend on the
 * flags); without FMA, a multiply and an add, as the scalar map. The vectors are
 * CNN_PART_BYTES(double, CNN_NORM_LANES) / 8 lanes of T: 8 floats or doubles on AVX-512, 4 on
 * AVX2. */
#if defined(__FMA__)
#include <immintrin.h>
#if defined(__AVX512F__)
#define CNN_NORM_FMA_f32(X, A, B)                                                              \
    ((__typeof__(X))_mm256_fmadd_ps((__m256)(X), (__m256)(A), (__m256)(B)))
#define CNN_NORM_FMA_f64(X, A, B)                                                              \
    ((__typeof__(X))_mm512_fmadd_pd((__m512d)(X), (__m512d)(A), (__m512d)(B)))
#else
#define CNN_NORM_FMA_f32(X, A, B)                                                              \
    ((__typeof__(X))_mm_fmadd_ps((__m128)(X), (__m128)(A), (__m128)(B)))
#define CNN_NORM_FMA_f64(X, A, B)                                                              \
    ((__typeof__(X))_mm256_fmadd_pd((__m256d)(X), (__m256d)(A), (__m256d)(B)))
#endif
/* the scalars M, A, B broadcast to X's type by adding them to a zero vector */
#define CNN_NORM_AFFINE(SUFFIX, Y, X, M, A, B)                                                \
    ((Y) = CNN_NORM_FMA_##SUFFIX((X) - (M), (__typeof__(X)){0} + (A), (__typeof__(X)){0} + (B)))
#else
#define CNN_NORM_AFFINE(SUFFIX, Y, X, M, A, B) ((Y) = ((X) - (M)) * (A) + (B))
#endif

/* sums[l] += d and squares[l] += d * d for the values d = row[i] - centre of lane l: one pass
 * for both of the statistics' sums (the caller's centre is a value of the channel, so that the
 * variance made of them loses little to cancellation: see norm.pyx). */
#define CNN_DEFINE_NORM_ADD_MOMENTS(SUFFIX, T)                                                 \
    static inline void cnn_norm_add_moments_##SUFFIX(const T *row, ptrdiff_t n, double centre, \
                                                     double *sums, double *squares)            \
    {                                                                                          \
        typedef double D __attribute__((vector_size(CNN_PART_BYTES(double, CNN_NORM_LANES))));  \
        enum { P = sizeof(D) / sizeof(double), PARTS = CNN_NORM_LANES / P };                   \
        typedef T R __attribute__((vector_size(P * sizeof(T))));                               \
        D s[PARTS], q[PARTS], d;                                                               \
        R r;                                                                                   \
        ptrdiff_t i, k, whole = n - n % CNN_NORM_LANES;                                        \
        double tail;                                                                           \
        memcpy(s, sums, sizeof s);                                                             \
        memcpy(q, squares, sizeof q);                                                          \
        for (i = 0; i < whole; i += CNN_NORM_LANES)                                            \
            for (k = 0; k < PARTS; k++) {                                                      \
                memcpy(&r, row + i + k * P, sizeof r);                                         \
                d = __builtin_convertvector(r, D) - centre;                                    \
                s[k] += d;                                                                     \
                q[k] += d * d;                                                                 \
            }                                                                                  \
        memcpy(sums, s, sizeof s);                                                             \
        memcpy(squares, q, sizeof q);                                                          \
        for (i = whole; i < n; i++) {                                                          \
            tail = (double)row[i] - centre;                                                    \
            sums[i % CNN_NORM_LANES] += tail;                                                  \
            squares[i % CNN_NORM_LANES] += tail * tail;                                        \
        }                                                                                      \
    }

CNN_DEFINE_NORM_ADD_MOMENTS(f32, float)
CNN_DEFINE_NORM_ADD_MOMENTS(f64, double)

/* sums[l] += g[i] and products[l] += g[i] * (row[i] - centre) for the values of lane l, where g
 * is grad, or when `masked` grad through the ReLU after normalize(row; m, a, b): zero where
 * that output, cnn_affine(row[i], m, a, b), is <= 0. */
#define CNN_DEFINE_NORM_ADD_GRADIENT_ROW(SUFFIX, T)                                            \
    static inline void cnn_norm_add_gradient_row_##SUFFIX(                                     \
        const T *grad, const T *row, ptrdiff_t n, double centre, int masked, T m, T a, T b,    \
        double *sums, double *products)                                                        \
    {                                                                                          \
        typedef double D __attribute__((vector_size(CNN_PART_BYTES(double, CNN_NORM_LANES))));  \
        enum { P = sizeof(D) / sizeof(double), PARTS = CNN_NORM_LANES / P };                   \
        typedef T R __attribute__((vector_size(P * sizeof(T))));                               \
        typedef CNN_NORM_MASK_T(T) I __attribute__((vector_size(P * sizeof(T))));              \
        D s[PARTS], p[PARTS], g;                                                               \
        R r, gr, y;                                                                            \
        ptrdiff_t i, k, whole = n - n % CNN_NORM_LANES;                                        \
        double tail;                                                                           \
        memcpy(s, sums, sizeof s);                                                             \
        memcpy(p, products, sizeof p);                                                         \
        for (i = 0; i < whole; i += CNN_NORM_LANES)                                            \
            for (k = 0; k < PARTS; k++) {                                                      \
                memcpy(&gr, grad + i + k * P, sizeof gr);                                      \
                memcpy(&r, row + i + k * P, sizeof r);                                         \
                if (masked) { /* cnn_relu_grad(gr, cnn_affine(r, m, a, b)), lane by lane */    \
                    CNN_NORM_AFFINE(SUFFIX, y, r, m, a, b);                                    \
                    gr = (R)((I)gr & (I)~(y <= 0));                                            \
                }                                                                              \
                g = __builtin_convertvector(gr, D);                                            \
                s[k] += g;                                                                     \
                p[k] += g * (__builtin_convertvector(r, D) - centre);                          \
            }                                                                                  \
        memcpy(sums, s, sizeof s);                                                             \
        memcpy(products, p, sizeof p);                                                         \
        for (i = whole; i < n; i++) {                                                          \
            tail = masked ? (double)cnn_relu_grad_##SUFFIX(                                    \
                                grad[i], cnn_affine_##SUFFIX(row[i], m, a, b))                 \
                          : (double)grad[i];                                                   \
            sums[i % CNN_NORM_LANES] += tail;                                                  \
            products[i % CNN_NORM_LANES] += tail * ((double)row[i] - centre);                  \
        }                                                                                      \
    }

CNN_DEFINE_NORM_ADD_GRADIENT_ROW(f32, float)
CNN_DEFINE_NORM_ADD_GRADIENT_ROW(f64, double)

#endif
