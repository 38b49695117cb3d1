/* The weights repacked for the register tile (conv_tile.h), block of B channels by block: the
 * block from channel b holds, tap by tap, its B channels' weights (wt[b * T + t * B + f - b] =
 * weight[f, t]; zeros for the channels from F on, up to whole tiles), from the layer's own
 * (F, T) layout. A tile thus reads its block's weights as one contiguous stream: with rows of
 * all P channels per tap it read B of every P values, and a 128 -> 128 layer's tile ran
 * 73 -> 83 GMAC/s a core in a C model of its loop (AVX-512 Xeon). Used by conv.pyx for the
 * direct forward and the input gradient's phases, whenever a layer's weights are not those of
 * the packing it kept (ConvPlan._packed_weights).
 *
 * A transpose, in 8 x 8 blocks held in vector registers where the build level has 256-bit ones
 * (float32): each block is 8 loads of 8 consecutive taps and 8 stores of 8 consecutive channels,
 * where the plain loop reads a value from each of F rows for every tap (VGG's 128 -> 128 layer:
 * 87 -> 32 us a call on AVX-512, more than the layer's arithmetic at batch 1). float64 (gradient
 * checks) and SSE2 take the plain loop: an 8-lane shuffle there is slower than the loop.
 * Winograd's weight gradient lays its images out pixel-major by the same transpose.
 */
#ifndef CNN_CONV_PACK_H
#define CNN_CONV_PACK_H

#include <stddef.h>
#include <string.h>

#include "registers.h" /* CNN_REGISTER_BYTES */

/* dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols, value by value. */
#define CNN_DEFINE_TRANSPOSE_LOOP(SUFFIX, T_)                                                  \
    static inline void cnn_transpose_loop_##SUFFIX(const T_ *src, ptrdiff_t src_stride,        \
                                                   T_ *dst, ptrdiff_t dst_stride,              \
                                                   ptrdiff_t rows, ptrdiff_t cols)             \
    {                                                                                          \
        for (ptrdiff_t j = 0; j < cols; j++)                                                   \
            for (ptrdiff_t i = 0; i < rows; i++)                                               \
                dst[j * dst_stride + i] = src[i * src_stride + j];                             \
    }

CNN_DEFINE_TRANSPOSE_LOOP(f32, float)
CNN_DEFINE_TRANSPOSE_LOOP(f64, double)

#if CNN_REGISTER_BYTES >= 32
typedef float cnn_pack_v8 __attribute__((vector_size(8 * sizeof(float))));
typedef int cnn_pack_i8 __attribute__((vector_size(8 * sizeof(int))));

/* r[i] (row i of an 8 x 8 block) becomes column i: three rounds of pairing halves, quarters and
 * single lanes of two rows. */
static inline void cnn_pack_transpose8(cnn_pack_v8 r[8])
{
    cnn_pack_v8 x[8], y[8];
    int i;
    for (i = 0; i < 4; i++) {
        x[i] = __builtin_shuffle(r[i], r[i + 4], (cnn_pack_i8){0, 1, 2, 3, 8, 9, 10, 11});
        x[i + 4] = __builtin_shuffle(r[i], r[i + 4], (cnn_pack_i8){4, 5, 6, 7, 12, 13, 14, 15});
    }
    for (i = 0; i < 8; i += (i % 4 == 1) ? 3 : 1) { /* i = 0, 1, 4, 5 */
        y[i] = __builtin_shuffle(x[i], x[i + 2], (cnn_pack_i8){0, 1, 8, 9, 4, 5, 12, 13});
        y[i + 2] = __builtin_shuffle(x[i], x[i + 2], (cnn_pack_i8){2, 3, 10, 11, 6, 7, 14, 15});
    }
    for (i = 0; i < 8; i += 2) {
        r[i] = __builtin_shuffle(y[i], y[i + 1], (cnn_pack_i8){0, 8, 2, 10, 4, 12, 6, 14});
        r[i + 1] = __builtin_shuffle(y[i], y[i + 1], (cnn_pack_i8){1, 9, 3, 11, 5, 13, 7, 15});
    }
}
#endif

/* dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols: 8 x 8 blocks in
 * vector registers (8 loads of 8 consecutive values of src, 8 stores of 8 consecutive values
 * of dst), the edges value by value. Columns outer, rows inner: a block of 8 columns of dst
 * is written whole while it stays in L1. */
static inline void cnn_transpose_f32(const float *src, ptrdiff_t src_stride, float *dst,
                                     ptrdiff_t dst_stride, ptrdiff_t rows, ptrdiff_t cols)
{
    ptrdiff_t j0 = 0;
#if CNN_REGISTER_BYTES >= 32
    for (; j0 + 8 <= cols; j0 += 8) {
        ptrdiff_t i0 = 0, i;
        for (; i0 + 8 <= rows; i0 += 8) {
            cnn_pack_v8 r[8];
            for (i = 0; i < 8; i++)
                memcpy(&r[i], src + (i0 + i) * src_stride + j0, sizeof r[i]);
            cnn_pack_transpose8(r);
            for (i = 0; i < 8; i++)
                memcpy(dst + (j0 + i) * dst_stride + i0, &r[i], sizeof r[i]);
        }
        cnn_transpose_loop_f32(src + i0 * src_stride + j0, src_stride, dst + j0 * dst_stride + i0,
                               dst_stride, rows - i0, 8);
    }
#endif
    cnn_transpose_loop_f32(src + j0, src_stride, dst + j0 * dst_stride, dst_stride, rows,
                           cols - j0);
}

/* float64 (gradient checks) and SSE2 take the plain loop. */
static inline void cnn_transpose_f64(const double *src, ptrdiff_t src_stride, double *dst,
                                     ptrdiff_t dst_stride, ptrdiff_t rows, ptrdiff_t cols)
{
    cnn_transpose_loop_f64(src, src_stride, dst, dst_stride, rows, cols);
}

/* Taps first..last-1 of every block of wt (P channels in blocks of B, P a multiple of B)
 * from weight (F x T): each block's transpose, then zeros in its channels from F on. */
#define CNN_DEFINE_PACK_TAPS(SUFFIX, T_)                                                       \
    static inline void cnn_pack_taps_##SUFFIX(const T_ *weight, ptrdiff_t F, ptrdiff_t T,      \
                                              T_ *wt, ptrdiff_t P, ptrdiff_t B,                \
                                              ptrdiff_t first, ptrdiff_t last)                 \
    {                                                                                          \
        for (ptrdiff_t b = 0; b < P; b += B) {                                                 \
            T_ *block = wt + b * T;                                                            \
            ptrdiff_t f_weights = F - b < 0 ? 0 : (F - b < B ? F - b : B);                     \
            cnn_transpose_##SUFFIX(weight + b * T + first, T, block + first * B, B, f_weights, \
                                   last - first);                                              \
            for (ptrdiff_t t = first; t < last; t++)                                           \
                for (ptrdiff_t f = f_weights; f < B; f++)                                      \
                    block[t * B + f] = 0;                                                      \
        }                                                                                      \
    }

CNN_DEFINE_PACK_TAPS(f32, float)
CNN_DEFINE_PACK_TAPS(f64, double)

#endif
