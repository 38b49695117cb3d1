/* A linear layer's forward for a few rows of input (used by cnn/_ext/linear.pyx).
 *
 * out[m][n] = relu(x[m] . w[n] + bias[n]): each value one dot product along a row of the
 * weight (N x K, row-major, as the layer holds it). The order of its sum depends on K only:
 *
 *   - value k goes to lane k % G of accumulator (k / G) % 4, where G is a 64-byte group's lanes
 *     (16 floats, 8 doubles); the last values are padded with zeros (0 * 0 adds nothing);
 *   - the four accumulators are added as (a0 + a1) + (a2 + a3), then the G lanes in a fixed
 *     tree, the upper half onto the lower one until one value is left; then + bias[n], then
 *     the ReLU.
 *
 * So the bits do not depend on the thread count, the rows computed beside a value, or the
 * build level: a group is held in the build's registers (one AVX-512 register, two AVX2 or
 * four SSE2 ones), lane for lane the same arithmetic. Four accumulators keep the FMA units
 * busy (each multiply-add waits about 4 cycles for the previous one into its accumulator);
 * several weight rows share each load of x (CNN_LINEAR_ROWS, as many as the registers hold).
 *
 * Every accumulator is indexed by constants only (loops unrolled whole, the last values
 * handled by one more iteration of the same shape with its lanes masked), so that gcc keeps
 * them in registers: with the last values in a partial register picked at run time, it kept
 * them on the stack, and read each 64-byte sum back as two 32-byte halves, which stalls on
 * store forwarding (the tree's halves are now taken from registers by shuffles). On an AMD
 * EPYC (Zen 5) a batch-1 120 -> 84 layer took 1.23 us instead of 0.59, 64 -> 84 1.03 instead
 * of 0.35; 400 -> 120 is bound by reading its 192 KB of weight from L2 (about 2 us) either way.
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
#define CNN_LINEAR_ROWS 4 /* 16 accumulators of the 32 registers */
#else
#define CNN_LINEAR_ROWS 1 /* 4 accumulators of 2 (AVX2) or 4 (SSE2) of the 16 registers */
#endif
#define CNN_LINEAR_CHAINS 4  /* accumulators per row */
#define CNN_LINEAR_GROUP_BYTES 64

/* Halves of vectors: the lanes of a register are added in the tree by halving. */
typedef float cnn_lanes16_f32 __attribute__((vector_size(16 * sizeof(float))));
typedef float cnn_lanes8_f32 __attribute__((vector_size(8 * sizeof(float))));
typedef float cnn_lanes4_f32 __attribute__((vector_size(4 * sizeof(float))));
typedef float cnn_lanes2_f32 __attribute__((vector_size(2 * sizeof(float))));
typedef double cnn_lanes8_f64 __attribute__((vector_size(8 * sizeof(double))));
typedef double cnn_lanes4_f64 __attribute__((vector_size(4 * sizeof(double))));
typedef double cnn_lanes2_f64 __attribute__((vector_size(2 * sizeof(double))));

#if defined(__has_builtin)
#if __has_builtin(__builtin_shufflevector)
#define CNN_HAS_SHUFFLEVECTOR 1
#endif
#endif

/* NAME(v): the lower half of WHOLE v plus its upper half (LOWS, HIGHS: their lanes). */
#ifdef CNN_HAS_SHUFFLEVECTOR
#define CNN_UNPARENTHESIZED(...) __VA_ARGS__
#define CNN_DEFINE_FOLD(NAME, WHOLE, HALF, LOWS, HIGHS)                                         \
    static inline HALF NAME(WHOLE v)                                                            \
    {                                                                                           \
        return __builtin_shufflevector(v, v, CNN_UNPARENTHESIZED LOWS) +                        \
               __builtin_shufflevector(v, v, CNN_UNPARENTHESIZED HIGHS);                        \
    }
#else /* older compilers: the same halves through memcpy (slower where it goes by memory) */
#define CNN_DEFINE_FOLD(NAME, WHOLE, HALF, LOWS, HIGHS)                                         \
    static inline HALF NAME(WHOLE v)                                                            \
    {                                                                                           \
        HALF low, high;                                                                         \
        memcpy(&low, &v, sizeof low);                                                           \
        memcpy(&high, (const char *)&v + sizeof low, sizeof high);                              \
        return low + high;                                                                      \
    }
#endif

/* (Only the folds of the build's register widths: a function taking or returning a vector
 * wider than the build's registers draws gcc's ABI warning.) */
#if CNN_REGISTER_BYTES == 64
CNN_DEFINE_FOLD(cnn_fold16_f32, cnn_lanes16_f32, cnn_lanes8_f32, (0, 1, 2, 3, 4, 5, 6, 7),
                (8, 9, 10, 11, 12, 13, 14, 15))
CNN_DEFINE_FOLD(cnn_fold8_f64, cnn_lanes8_f64, cnn_lanes4_f64, (0, 1, 2, 3), (4, 5, 6, 7))
#endif
#if CNN_REGISTER_BYTES >= 32
CNN_DEFINE_FOLD(cnn_fold8_f32, cnn_lanes8_f32, cnn_lanes4_f32, (0, 1, 2, 3), (4, 5, 6, 7))
CNN_DEFINE_FOLD(cnn_fold4_f64, cnn_lanes4_f64, cnn_lanes2_f64, (0, 1), (2, 3))
#endif
CNN_DEFINE_FOLD(cnn_fold4_f32, cnn_lanes4_f32, cnn_lanes2_f32, (0, 1), (2, 3))

/* The lanes of one register of the build, added in the tree. */
#if CNN_REGISTER_BYTES == 64
static inline float cnn_register_sum_f32(cnn_lanes16_f32 v)
{
    cnn_lanes2_f32 two = cnn_fold4_f32(cnn_fold8_f32(cnn_fold16_f32(v)));
    return two[0] + two[1];
}
static inline double cnn_register_sum_f64(cnn_lanes8_f64 v)
{
    cnn_lanes2_f64 two = cnn_fold4_f64(cnn_fold8_f64(v));
    return two[0] + two[1];
}
#elif CNN_REGISTER_BYTES == 32
static inline float cnn_register_sum_f32(cnn_lanes8_f32 v)
{
    cnn_lanes2_f32 two = cnn_fold4_f32(cnn_fold8_f32(v));
    return two[0] + two[1];
}
static inline double cnn_register_sum_f64(cnn_lanes4_f64 v)
{
    cnn_lanes2_f64 two = cnn_fold4_f64(v);
    return two[0] + two[1];
}
#else
static inline float cnn_register_sum_f32(cnn_lanes4_f32 v)
{
    cnn_lanes2_f32 two = cnn_fold4_f32(v);
    return two[0] + two[1];
}
static inline double cnn_register_sum_f64(cnn_lanes2_f64 v)
{
    return v[0] + v[1];
}
#endif

#define CNN_UNROLLED _Pragma("GCC unroll 16")

/* One iteration of the rows' sums: the R registers of x from XS, each with the same register
 * of every weight row (from W_AT, an expression of r, masked by MASK(wv, c)), into the rows'
 * accumulators. */
#define CNN_LINEAR_STEP(XS, W_AT, MASK)                                                         \
    do {                                                                                        \
        CNN_UNROLLED for (int c = 0; c < R; c++) {                                              \
            V xv, wv;                                                                           \
            memcpy(&xv, (XS) + c * L, sizeof xv);                                               \
            CNN_UNROLLED for (int r = 0; r < CNN_LINEAR_ROWS; r++) {                            \
                memcpy(&wv, (W_AT) + c * L, sizeof wv);                                         \
                acc[r][c] += xv * MASK(wv, c);                                                  \
            }                                                                                   \
        }                                                                                       \
    } while (0)
#define CNN_UNMASKED(WV, C) (WV)
#define CNN_MASKED(WV, C) ((V)((B)(WV) & keep[C]))

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
            R = CNN_LINEAR_CHAINS * P,                      /* registers an iteration */        \
            STEP = R * L,                                   /* values an iteration */           \
        };                                                                                      \
        const ptrdiff_t whole = K - K % STEP, rest = K - whole;                                 \
        const T *end = w + N * K;                                                               \
        B keep[R]; /* all ones in the lanes of the last iteration that hold values */           \
        for (int c = 0; c < R; c++)                                                             \
            for (int j = 0; j < L; j++)                                                         \
                keep[c][j] = c * L + j < rest ? -1 : 0;                                         \
        T x_rest[STEP], w_rest[CNN_LINEAR_ROWS][STEP];                                          \
        for (ptrdiff_t m = 0; m < M; m++) {                                                     \
            const T *xm = x + m * K;                                                            \
            memset(x_rest, 0, sizeof x_rest);                                                   \
            memcpy(x_rest, xm + whole, rest * sizeof(T));                                       \
            for (ptrdiff_t n0 = first; n0 < last; n0 += CNN_LINEAR_ROWS) {                      \
                const T *rows[CNN_LINEAR_ROWS], *rests[CNN_LINEAR_ROWS];                        \
                CNN_UNROLLED for (int r = 0; r < CNN_LINEAR_ROWS; r++) {                        \
                    rows[r] = w + (n0 + r < last ? n0 + r : last - 1) * K;                      \
                    /* a row's last values are read whole (the lanes past K masked), but    */ \
                    /* never past the weight's end: the last row's are copied               */ \
                    rests[r] = rows[r] + whole;                                                 \
                    if (rest && end - rests[r] < STEP) {                                        \
                        memset(w_rest[r], 0, sizeof w_rest[r]);                                 \
                        memcpy(w_rest[r], rests[r], rest * sizeof(T));                          \
                        rests[r] = w_rest[r];                                                   \
                    }                                                                           \
                }                                                                               \
                V acc[CNN_LINEAR_ROWS][R] = {{{0}}};                                            \
                for (ptrdiff_t k = 0; k < whole; k += STEP)                                     \
                    CNN_LINEAR_STEP(xm + k, rows[r] + k, CNN_UNMASKED);                         \
                if (rest)                                                                       \
                    CNN_LINEAR_STEP(x_rest, rests[r], CNN_MASKED);                              \
                CNN_UNROLLED for (int r = 0; r < CNN_LINEAR_ROWS; r++) {                        \
                    if (n0 + r >= last)                                                         \
                        break;                                                                  \
                    /* (a0 + a1) + (a2 + a3), a register of the group at a time, then the */   \
                    /* group's registers halved onto each other, then the register's lanes */  \
                    V sum[P];                                                                   \
                    CNN_UNROLLED for (int p = 0; p < P; p++)                                    \
                        sum[p] = (acc[r][p] + acc[r][P + p]) +                                  \
                                 (acc[r][2 * P + p] + acc[r][3 * P + p]);                       \
                    CNN_UNROLLED for (int half = P / 2; half >= 1; half /= 2)                   \
                        CNN_UNROLLED for (int p = 0; p < half; p++)                             \
                            sum[p] = sum[p] + sum[p + half];                                    \
                    T v = cnn_register_sum_##SUFFIX(sum[0]);                                    \
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
