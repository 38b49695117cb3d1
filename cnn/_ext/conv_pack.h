/* The weights repacked for the register tile (conv_tile.h): wt[t, f] = weight[f, t], a row of
 * P channels (F of them, then zeros up to whole tiles) per tap t, from the layer's own (F, T)
 * layout. Used by conv.pyx for the direct forward and the input gradient's phases, whenever a
 * layer's weights are not those of the packing it kept (ConvPlan._packed_weights).
 *
 * A transpose, in 8 x 8 blocks held in vector registers where the build level has 256-bit ones
 * (float32): each block is 8 loads of 8 consecutive taps and 8 stores of 8 consecutive channels,
 * where the plain loop reads a value from each of F rows for every tap (VGG's 128 -> 128 layer:
 * 87 -> 32 us a call on AVX-512, more than the layer's arithmetic at batch 1). float64 (gradient
 * checks) and SSE2 take the plain loop: an 8-lane shuffle there is slower than the loop.
 */
#ifndef CNN_CONV_PACK_H
#define CNN_CONV_PACK_H

#include <stddef.h>
#include <string.h>

#include "registers.h" /* CNN_REGISTER_BYTES */

/* Channels f_first..f_last-1 of taps first..last-1 of wt (T x P) from weight (F x T), value
 * by value (zeros from F on). */
#define CNN_DEFINE_PACK_LOOP(SUFFIX, T_)                                                       \
    static inline void cnn_pack_loop_##SUFFIX(const T_ *weight, ptrdiff_t F, ptrdiff_t T,      \
                                              T_ *wt, ptrdiff_t P, ptrdiff_t f_first,          \
                                              ptrdiff_t f_last, ptrdiff_t first,               \
                                              ptrdiff_t last)                                  \
    {                                                                                          \
        ptrdiff_t t, f, f_weights = F < f_last ? F : f_last;                                   \
        for (t = first; t < last; t++) {                                                       \
            T_ *row = wt + t * P;                                                              \
            for (f = f_first; f < f_weights; f++)                                              \
                row[f] = weight[f * T + t];                                                    \
            for (f = f_weights > f_first ? f_weights : f_first; f < f_last; f++)               \
                row[f] = 0;                                                                    \
        }                                                                                      \
    }

CNN_DEFINE_PACK_LOOP(f32, float)
CNN_DEFINE_PACK_LOOP(f64, double)

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

/* Taps first..last-1 of wt (T x P) from weight (F x T). */
static inline void cnn_pack_taps_f32(const float *weight, ptrdiff_t F, ptrdiff_t T, float *wt,
                                     ptrdiff_t P, ptrdiff_t first, ptrdiff_t last)
{
#if CNN_REGISTER_BYTES >= 32
    ptrdiff_t t0, f0, i, f_weights = F < P ? F : P;
    for (t0 = first; t0 + 8 <= last; t0 += 8) {
        for (f0 = 0; f0 + 8 <= f_weights; f0 += 8) {
            cnn_pack_v8 r[8];
            for (i = 0; i < 8; i++)
                memcpy(&r[i], weight + (f0 + i) * T + t0, sizeof r[i]);
            cnn_pack_transpose8(r);
            for (i = 0; i < 8; i++)
                memcpy(wt + (t0 + i) * P + f0, &r[i], sizeof r[i]);
        }
        /* the channels past the last whole block, and the zeros */
        cnn_pack_loop_f32(weight, F, T, wt, P, f0, P, t0, t0 + 8);
    }
    first = t0;
#endif
    cnn_pack_loop_f32(weight, F, T, wt, P, 0, P, first, last);
}

static inline void cnn_pack_taps_f64(const double *weight, ptrdiff_t F, ptrdiff_t T,
                                     double *wt, ptrdiff_t P, ptrdiff_t first, ptrdiff_t last)
{
    cnn_pack_loop_f64(weight, F, T, wt, P, 0, P, first, last);
}

#endif
