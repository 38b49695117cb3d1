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

/* pointwise.h's affine map (x - m) * a + b for a vector x, with its rounding: one fused
 * multiply-add where the build level has FMA (the vector form contracts to one, as the scalar
 * __builtin_fma is one; tests/test_kernels_norm.py checks that the masks agree), a multiply
 * and an add where it has none. */
#define CNN_NORM_AFFINE(X, M, A, B) (((X) - (M)) * (A) + (B))

/* sums[l] += d and squares[l] += d * d for the values d = row[i] - centre of lane l: one pass
 * for both of the statistics' sums (the caller's centre is a value of the channel, so that the
 * squares of the deviations from it lose nothing to cancellation; see norm.pyx). */
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
        R r, gr;                                                                               \
        ptrdiff_t i, k, whole = n - n % CNN_NORM_LANES;                                        \
        double tail;                                                                           \
        memcpy(s, sums, sizeof s);                                                             \
        memcpy(p, products, sizeof p);                                                         \
        for (i = 0; i < whole; i += CNN_NORM_LANES)                                            \
            for (k = 0; k < PARTS; k++) {                                                      \
                memcpy(&gr, grad + i + k * P, sizeof gr);                                      \
                memcpy(&r, row + i + k * P, sizeof r);                                         \
                if (masked) /* cnn_relu_grad(gr, cnn_affine(r, m, a, b)), lane by lane */      \
                    gr = (R)((I)gr & (I)~(CNN_NORM_AFFINE(r, m, a, b) <= 0));                  \
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
