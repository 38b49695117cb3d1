/* A linear layer's forward for a few rows of input (used by cnn/_ext/linear.pyx).
 *
 * out[m][n] = relu(x[m] . w[n] + bias[n]): each value one dot product along a row of the
 * weight (N x K, row-major, as the layer holds it). The order of its sum depends on K only:
 *
 *   - value k goes to lane k % G of accumulator (k / G) % 4, where G is a 64-byte group's lanes
 *     (16 floats, 8 doubles); a last partial register of values is padded with zeros (0 * 0
 *     adds nothing);
 *   - the four accumulators are added as (a0 + a1) + (a2 + a3), then the G lanes in a fixed
 *     tree: the two halves, their two halves, ..., one value; then + bias[n], then the ReLU.
 *
 * So the bits do not depend on the thread count, the rows computed beside a value, or the
 * build level: a group is held in the build's registers (one AVX-512 register, two AVX2 or
 * four SSE2 ones), lane for lane the same arithmetic. Four accumulators keep the FMA units
 * busy (each multiply-add waits about 4 cycles for the previous one into its accumulator); on
 * AVX-512 two weight rows share each load of x.
 *
 * At batch 1 numpy's product (BLAS gemv) took 2.3 us for a 400 -> 120 layer with 64-byte
 * aligned weights, and the bias and ReLU were a second call (0.5 us); here the whole layer is
 * one pass over the weight. Weights that are not 64-byte aligned make most loads span two
 * cache lines (2.3 -> 2.8 us for BLAS as well): layers allocate theirs aligned (cnn/_aligned.py).
 */
#ifndef CNN_LINEAR_ROWS_H
#define CNN_LINEAR_ROWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "pointwise.h" /* the ReLU rule of every kernel */
#include "registers.h" /* CNN_REGISTER_BYTES */

#if CNN_REGISTER_BYTES == 64
#define CNN_LINEAR_ROWS 2 /* 8 accumulators of the 32 registers */
#else
#define CNN_LINEAR_ROWS 1 /* 4 accumulators of 2 (AVX2) or 4 (SSE2) of the 16 registers */
#endif
#define CNN_LINEAR_CHAINS 4  /* accumulators per row */
#define CNN_LINEAR_GROUP_BYTES 64

typedef float cnn_half8_f32 __attribute__((vector_size(8 * sizeof(float))));
typedef float cnn_half4_f32 __attribute__((vector_size(4 * sizeof(float))));
typedef double cnn_half4_f64 __attribute__((vector_size(4 * sizeof(double))));
typedef double cnn_half2_f64 __attribute__((vector_size(2 * sizeof(double))));

/* The sum of the two halves of the HALF-sized vectors at v (2 * sizeof(HALF) bytes). */
#define CNN_DEFINE_HALVES(NAME, HALF)                                                           \
    static inline HALF NAME(const void *v)                                                      \
    {                                                                                           \
        HALF low, high;                                                                         \
        memcpy(&low, v, sizeof low);                                                            \
        memcpy(&high, (const char *)v + sizeof low, sizeof high);                               \
        return low + high;                                                                      \
    }

CNN_DEFINE_HALVES(cnn_halves16_f32, cnn_half8_f32)
CNN_DEFINE_HALVES(cnn_halves8_f32, cnn_half4_f32)
CNN_DEFINE_HALVES(cnn_halves8_f64, cnn_half4_f64)
CNN_DEFINE_HALVES(cnn_halves4_f64, cnn_half2_f64)

/* A group's lanes (16 floats, 8 doubles, at `lanes`) added in the fixed tree. */
static inline float cnn_group_sum_f32(const float *lanes)
{
    cnn_half8_f32 eight = cnn_halves16_f32(lanes);
    cnn_half4_f32 four = cnn_halves8_f32(&eight);
    return (four[0] + four[2]) + (four[1] + four[3]);
}

static inline double cnn_group_sum_f64(const double *lanes)
{
    cnn_half4_f64 four = cnn_halves8_f64(lanes);
    cnn_half2_f64 two = cnn_halves4_f64(&four);
    return two[0] + two[1];
}

/* Loops over the accumulators are unrolled whole, so that each is a register: an accumulator
 * picked by a variable index (the last, partial register's) kept them all in memory, and the
 * layer ran 1.5x slower. */
#define CNN_UNROLLED _Pragma("GCC unroll 16")

/* Registers 0..REGISTERS-1 of an iteration of the rows' sums: values of x from XS, of weight
 * row r from W_AT (an expression of r), into the rows' accumulators. */
#define CNN_LINEAR_STEP(REGISTERS, XS, W_AT)                                                    \
    do {                                                                                        \
        CNN_UNROLLED for (int c = 0; c < CNN_LINEAR_CHAINS * P; c++) {                          \
            if (c >= (REGISTERS))                                                               \
                break;                                                                          \
            memcpy(&xv, (XS) + c * L, sizeof xv);                                               \
            for (int r = 0; r < CNN_LINEAR_ROWS; r++) {                                         \
                memcpy(&wv, (W_AT) + c * L, sizeof wv);                                         \
                acc[r][c] += xv * wv;                                                           \
            }                                                                                   \
        }                                                                                       \
    } while (0)

/* Weight rows first..last-1 against rows 0..M-1 of x (K values each), into out (M x N,
 * row-major), CNN_LINEAR_ROWS weight rows at a time (a short last group computes its last row
 * again in the missing places, and stores it once). bias may be NULL. */
#define CNN_DEFINE_LINEAR_ROWS(SUFFIX, T, I)                                                    \
    static void cnn_linear_rows_##SUFFIX(const T *x, const T *w, const T *bias, T *out,         \
                                         ptrdiff_t M, ptrdiff_t K, ptrdiff_t N,                 \
                                         ptrdiff_t first, ptrdiff_t last, int relu)             \
    {                                                                                           \
        typedef T V __attribute__((vector_size(CNN_REGISTER_BYTES)));                           \
        typedef I B __attribute__((vector_size(CNN_REGISTER_BYTES)));                           \
        enum {                                                                                  \
            G = CNN_LINEAR_GROUP_BYTES / sizeof(T),         /* a group's lanes */               \
            P = CNN_LINEAR_GROUP_BYTES / CNN_REGISTER_BYTES, /* registers a group */            \
            L = CNN_REGISTER_BYTES / sizeof(T),             /* lanes a register */              \
            STEP = CNN_LINEAR_CHAINS * G,                   /* values an iteration */           \
        };                                                                                      \
        const ptrdiff_t whole = K - K % STEP, rest = K - whole;                                 \
        const ptrdiff_t tail_registers = rest / L, tail = rest % L; /* then a partial one */    \
        const ptrdiff_t at = whole + tail_registers * L; /* where the partial one starts */     \
        const T *end = w + N * K;                                                               \
        B keep; /* all ones in the partial register's lanes that hold values */                 \
        for (int j = 0; j < L; j++)                                                             \
            keep[j] = j < tail ? -1 : 0;                                                        \
        for (ptrdiff_t n0 = first; n0 < last; n0 += CNN_LINEAR_ROWS) {                          \
            const T *rows[CNN_LINEAR_ROWS];                                                     \
            for (int r = 0; r < CNN_LINEAR_ROWS; r++)                                           \
                rows[r] = w + (n0 + r < last ? n0 + r : last - 1) * K;                          \
            for (ptrdiff_t m = 0; m < M; m++) {                                                 \
                const T *xm = x + m * K;                                                        \
                V x_tail;                                                                       \
                for (int j = 0; j < L; j++)                                                     \
                    x_tail[j] = j < tail ? xm[at + j] : 0;                                      \
                V acc[CNN_LINEAR_ROWS][CNN_LINEAR_CHAINS * P] = {{{0}}};                        \
                V xv, wv;                                                                       \
                for (ptrdiff_t k = 0; k < whole; k += STEP)                                     \
                    CNN_LINEAR_STEP(CNN_LINEAR_CHAINS * P, xm + k, rows[r] + k);                \
                CNN_LINEAR_STEP(tail_registers, xm + whole, rows[r] + whole);                   \
                if (tail) { /* the last values, the other lanes adding 0 * 0 */                 \
                    CNN_UNROLLED for (int c = 0; c < CNN_LINEAR_CHAINS * P; c++) {              \
                        if (c != tail_registers)                                                \
                            continue;                                                           \
                        for (int r = 0; r < CNN_LINEAR_ROWS; r++) {                             \
                            const T *from = rows[r] + at;                                       \
                            if (from + L <= end) { /* whole load; the lanes past masked */      \
                                memcpy(&wv, from, sizeof wv);                                   \
                                wv = (V)((B)wv & keep);                                         \
                            } else { /* the weight's last row: never past its end */            \
                                memset(&wv, 0, sizeof wv);                                      \
                                for (int j = 0; j < tail; j++)                                  \
                                    wv[j] = from[j];                                            \
                            }                                                                   \
                            acc[r][c] += x_tail * wv;                                           \
                        }                                                                       \
                    }                                                                           \
                }                                                                               \
                for (int r = 0; r < CNN_LINEAR_ROWS && n0 + r < last; r++) {                    \
                    /* (a0 + a1) + (a2 + a3), a register of the group at a time */              \
                    T lanes[G];                                                                 \
                    for (int p = 0; p < P; p++) {                                               \
                        V sum = (acc[r][p] + acc[r][P + p]) +                                   \
                                (acc[r][2 * P + p] + acc[r][3 * P + p]);                        \
                        memcpy(lanes + p * L, &sum, sizeof sum);                                \
                    }                                                                           \
                    T v = cnn_group_sum_##SUFFIX(lanes);                                        \
                    if (bias)                                                                   \
                        v = v + bias[n0 + r];                                                   \
                    out[m * N + n0 + r] = relu ? cnn_relu_##SUFFIX(v) : v;                      \
                }                                                                               \
            }                                                                                   \
        }                                                                                       \
    }

CNN_DEFINE_LINEAR_ROWS(f32, float, int32_t)
CNN_DEFINE_LINEAR_ROWS(f64, double, int64_t)

#endif
