/* The register tile of direct convolution (used by cnn/_ext/conv_direct.pxi).
 *
 * One call computes CNN_BLOCK_LANES output pixels x a block of 16 output channels (or CNN_WIDE_PIXELS
 * pixels x 8 channels, for layers with at most 8), summed over
 * every tap (input channel, kernel row, kernel column). It is written with GCC/clang vector
 * extensions because Cython cannot express SIMD registers: left to itself, gcc vectorised the
 * Cython loop over the 4 pixels instead of the 16 channels (a quarter of the width). A block of
 * channels is held in the build level's registers: 16 floats are one AVX-512 register, two AVX2
 * registers or four SSE2 registers. Layers with at most 8 output channels use the 8-channel
 * tile: each instruction half as wide (on CPUs that split 512-bit work in two, half the cost).
 *
 *   in           the padded input image; in + lanes[q] is pixel q's window origin
 *   taps         offsets of the n_taps window positions from a window origin
 *   wt           repacked weights: wt + t * w_stride holds the block's channels of tap t
 *   init         initial sums: init + q * init_stride holds lane q's block of values (a stride
 *                of 0 starts every lane from the same row, e.g. the bias)
 *   out          results: out + q * out_stride receives lane q's block of sums (out may be
 *                init, to accumulate in place)
 *
 * The weight gradient uses the same tile with the roles swapped: its lanes are taps, its "taps"
 * are the output pixels, and its "weights" are the output gradient, pixel-major.
 */
#ifndef CNN_CONV_TILE_H
#define CNN_CONV_TILE_H

#include <stddef.h>
#include <string.h>

#include "conv_layout.h" /* CNN_BLOCK (also the row stride tiles are stored with), CNN_PIXELS */
#include "pointwise.h"    /* CNN_RELU_MAX_STEP, the ReLU and affine rules */

typedef float cnn_vec16_f32 __attribute__((vector_size(16 * sizeof(float))));
typedef double cnn_vec16_f64 __attribute__((vector_size(16 * sizeof(double))));
typedef float cnn_vec8_f32 __attribute__((vector_size(8 * sizeof(float))));
typedef double cnn_vec8_f64 __attribute__((vector_size(8 * sizeof(double))));
typedef int cnn_mask16_f32 __attribute__((vector_size(16 * sizeof(int))));
typedef long long cnn_mask16_f64 __attribute__((vector_size(16 * sizeof(long long))));
typedef int cnn_mask8_f32 __attribute__((vector_size(8 * sizeof(int))));
typedef long long cnn_mask8_f64 __attribute__((vector_size(8 * sizeof(long long))));

/* The widest vector register of the build level: a block's channels are held in as many of
 * these as they fill (one 16-float block is one AVX-512 register, or two AVX2 registers). Wider
 * vector types than the registers are legal, but gcc then keeps such accumulators in memory. */
#if defined(__AVX512F__)
#define CNN_REGISTER_BYTES 64
#elif defined(__AVX__)
#define CNN_REGISTER_BYTES 32
#else
#define CNN_REGISTER_BYTES 16
#endif
#define CNN_PART_BYTES(T, CHANNELS)                                                            \
    ((CHANNELS) * sizeof(T) < CNN_REGISTER_BYTES ? (CHANNELS) * sizeof(T) : CNN_REGISTER_BYTES)

/* CHANNELS x LANES accumulators; the loops have constant bounds, so they unroll into
 * registers. Layers with at most 8 channels take twice the lanes (CNN_WIDE_PIXELS): each
 * accumulator's multiply-add waits for the previous one (about 4 cycles), so 4 accumulators
 * of one 256-bit register keep a core's two vector units half busy, and 8 keep both busy. */
#define CNN_DEFINE_CONV_TILE(NAME, T, CHANNELS, LANES)                                         \
    static inline void NAME(const T *in, const ptrdiff_t *lanes, const ptrdiff_t *taps,        \
                            ptrdiff_t n_taps, const T *wt, ptrdiff_t w_stride, const T *init,  \
                            ptrdiff_t init_stride, T *out, ptrdiff_t out_stride)               \
    {                                                                                          \
        typedef T part_t __attribute__((vector_size(CNN_PART_BYTES(T, CHANNELS))));            \
        enum { PART = CNN_PART_BYTES(T, CHANNELS) / sizeof(T), PARTS = (CHANNELS) / PART };    \
        part_t acc[LANES][PARTS], w[PARTS];                                                    \
        const T *p[LANES];                                                                     \
        ptrdiff_t t, q, k;                                                                     \
        /* memcpy: unaligned vector loads and stores, which compilers emit as single moves */  \
        for (q = 0; q < (LANES); q++) {                                                        \
            p[q] = in + lanes[q];                                                              \
            for (k = 0; k < PARTS; k++)                                                        \
                memcpy(&acc[q][k], init + q * init_stride + k * PART, sizeof(part_t));         \
        }                                                                                      \
        for (t = 0; t < n_taps; t++) {                                                         \
            ptrdiff_t offset = taps[t];                                                        \
            for (k = 0; k < PARTS; k++)                                                        \
                memcpy(&w[k], wt + t * w_stride + k * PART, sizeof(part_t));                   \
            for (q = 0; q < (LANES); q++) {                                                    \
                T x = p[q][offset];                                                            \
                for (k = 0; k < PARTS; k++)                                                    \
                    acc[q][k] += x * w[k];                                                     \
            }                                                                                  \
        }                                                                                      \
        for (q = 0; q < (LANES); q++)                                                          \
            for (k = 0; k < PARTS; k++)                                                        \
                memcpy(out + q * out_stride + k * PART, &acc[q][k], sizeof(part_t));           \
    }

CNN_DEFINE_CONV_TILE(cnn_conv_tile16_f32, float, CNN_BLOCK, CNN_BLOCK_LANES)
CNN_DEFINE_CONV_TILE(cnn_conv_tile16_f64, double, CNN_BLOCK, CNN_BLOCK_LANES)
CNN_DEFINE_CONV_TILE(cnn_conv_tile8_f32, float, CNN_NARROW_BLOCK, CNN_WIDE_PIXELS)
CNN_DEFINE_CONV_TILE(cnn_conv_tile8_f64, double, CNN_NARROW_BLOCK, CNN_WIDE_PIXELS)

/* The forward tile's epilogue, in place: a batch norm's affine map (unless mean is NULL; mean,
 * scale and shift hold the block's channels) and then ReLU (when relu) on each of the first
 * `lanes` lanes of a tile stored with row stride CNN_BLOCK. By pointwise.h's rules, value by
 * value, so the bits are the separate layers'; over a whole block of channels in vector
 * registers: written per value in the loop that stores the tile, the same arithmetic took a
 * third of a 144-tap layer's time. */
#define CNN_DEFINE_TILE_EPILOGUE(NAME, T, SUFFIX, M, CHANNELS)                                 \
    static inline void NAME(T *restrict tile, ptrdiff_t lanes, const T *restrict mean,         \
                            const T *restrict scale, const T *restrict shift, int relu)        \
    {                                                                                          \
        typedef T part_t __attribute__((vector_size(CNN_PART_BYTES(T, CHANNELS))));            \
        typedef M mask_t __attribute__((vector_size(CNN_PART_BYTES(T, CHANNELS))));            \
        enum { PART = CNN_PART_BYTES(T, CHANNELS) / sizeof(T), PARTS = (CHANNELS) / PART };    \
        ptrdiff_t q, f, k;                                                                     \
        for (q = 0; q < lanes; q++) {                                                          \
            T *row = tile + q * CNN_BLOCK;                                                     \
            if (mean != NULL) /* gcc vectorizes the explicit fused multiply-adds */            \
                for (f = 0; f < (CHANNELS); f++)                                               \
                    row[f] = cnn_affine_##SUFFIX(row[f], mean[f], scale[f], shift[f]);         \
            if (relu)                                                                          \
                for (k = 0; k < PARTS; k++) {                                                  \
                    part_t value;                                                              \
                    memcpy(&value, row + k * PART, sizeof value);                              \
                    CNN_RELU_VECTOR(part_t, mask_t, value);                                    \
                    memcpy(row + k * PART, &value, sizeof value);                              \
                }                                                                              \
        }                                                                                      \
    }

CNN_DEFINE_TILE_EPILOGUE(cnn_tile_epilogue16_f32, float, f32, int, CNN_BLOCK)
CNN_DEFINE_TILE_EPILOGUE(cnn_tile_epilogue16_f64, double, f64, long long, CNN_BLOCK)
CNN_DEFINE_TILE_EPILOGUE(cnn_tile_epilogue8_f32, float, f32, int, CNN_NARROW_BLOCK)
CNN_DEFINE_TILE_EPILOGUE(cnn_tile_epilogue8_f64, double, f64, long long, CNN_NARROW_BLOCK)

/* ReLU, then the maximum over a tile's CNN_PIXELS lanes (one 2x2 pooling window, row-major;
 * lane q at tile + q * CNN_BLOCK) for a block of channels at once: best[f] and which[f], the
 * lane holding it (pointwise.h's CNN_RELU_MAX_STEP: max_pool2d's rules over relu's output).
 */
#define CNN_DEFINE_RELU_MAX(NAME, T, V, I, IT)                                                 \
    static inline void NAME(const T *tile, T *best_out, IT *which_out)                         \
    {                                                                                          \
        V best, value;                                                                         \
        I which = {0};                                                                         \
        int q;                                                                                 \
        for (q = 0; q < CNN_PIXELS; q++) {                                                     \
            memcpy(&value, tile + q * CNN_BLOCK, sizeof(V));                                   \
            CNN_RELU_MAX_STEP(V, I, value, best, which, q);                                    \
        }                                                                                      \
        memcpy(best_out, &best, sizeof(V));                                                    \
        memcpy(which_out, &which, sizeof(I));                                                  \
    }

CNN_DEFINE_RELU_MAX(cnn_relu_max16_f32, float, cnn_vec16_f32, cnn_mask16_f32, int)
CNN_DEFINE_RELU_MAX(cnn_relu_max16_f64, double, cnn_vec16_f64, cnn_mask16_f64, long long)
CNN_DEFINE_RELU_MAX(cnn_relu_max8_f32, float, cnn_vec8_f32, cnn_mask8_f32, int)
CNN_DEFINE_RELU_MAX(cnn_relu_max8_f64, double, cnn_vec8_f64, cnn_mask8_f64, long long)

#endif
