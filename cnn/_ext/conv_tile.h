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
#include "registers.h"    /* CNN_REGISTER_BYTES */

typedef float cnn_vec16_f32 __attribute__((vector_size(16 * sizeof(float))));
typedef double cnn_vec16_f64 __attribute__((vector_size(16 * sizeof(double))));
typedef float cnn_vec8_f32 __attribute__((vector_size(8 * sizeof(float))));
typedef double cnn_vec8_f64 __attribute__((vector_size(8 * sizeof(double))));
typedef int cnn_mask16_f32 __attribute__((vector_size(16 * sizeof(int))));
typedef long long cnn_mask16_f64 __attribute__((vector_size(16 * sizeof(long long))));
typedef int cnn_mask8_f32 __attribute__((vector_size(8 * sizeof(int))));
typedef long long cnn_mask8_f64 __attribute__((vector_size(8 * sizeof(long long))));

/* A block's channels are held in as many of the build level's widest registers as they fill
 * (one 16-float block is one AVX-512 register, or two AVX2 registers). */
#define CNN_PART_BYTES(T, CHANNELS)                                                            \
    ((CHANNELS) * sizeof(T) < CNN_REGISTER_BYTES ? (CHANNELS) * sizeof(T) : CNN_REGISTER_BYTES)

/* CHANNELS x LANES accumulators; the loops have constant bounds, so they unroll into
 * registers. Layers with at most 8 channels take twice the lanes (CNN_WIDE_PIXELS): each
 * accumulator's multiply-add waits for the previous one (about 4 cycles), so 4 accumulators
 * of one 256-bit register keep a core's two vector units half busy, and 8 keep both busy.
 * OUT_AT(q, k, PART) is where part k (PART values) of lane q's sums go, relative to out. */
#define CNN_DEFINE_CONV_TILE(NAME, T, CHANNELS, LANES, OUT_AT)                                 \
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
                memcpy(out + OUT_AT(q, k, PART), &acc[q][k], sizeof(part_t));                   \
    }

/* Lane q's channels in a row of their own, out_stride apart. */
#define CNN_LANE_ROWS(q, k, PART) ((q) * out_stride + (k) * (PART))
/* Channels c..c+PART-1 (c = k * PART) of lane q in the sub-tile of channel block c / CNN_BLOCK:
 * each sub-tile laid out as a single block's tile (lanes out_stride apart), one after another,
 * so that the epilogue and the store run on each as on a single block's tile. */
#define CNN_BLOCK_ROWS(q, k, PART)                                                             \
    ((k) * (PART) / CNN_BLOCK * CNN_BLOCK_LANES * out_stride + (q) * out_stride                \
     + (k) * (PART) % CNN_BLOCK)

CNN_DEFINE_CONV_TILE(cnn_conv_tile16_f32, float, CNN_BLOCK, CNN_BLOCK_LANES, CNN_LANE_ROWS)
CNN_DEFINE_CONV_TILE(cnn_conv_tile16_f64, double, CNN_BLOCK, CNN_BLOCK_LANES, CNN_LANE_ROWS)
CNN_DEFINE_CONV_TILE(cnn_conv_tile8_f32, float, CNN_NARROW_BLOCK, CNN_WIDE_PIXELS, CNN_LANE_ROWS)
CNN_DEFINE_CONV_TILE(cnn_conv_tile8_f64, double, CNN_NARROW_BLOCK, CNN_WIDE_PIXELS,
                     CNN_LANE_ROWS)
/* The paired tile (conv_layout.h's CNN_PAIR_BLOCK; called only where CNN_PAIR_TILES). */
CNN_DEFINE_CONV_TILE(cnn_conv_tile32_f32, float, CNN_PAIR_BLOCK, CNN_BLOCK_LANES, CNN_BLOCK_ROWS)

/* The weight gradient's paired tile: 32 channels, in plain rows (init and out alike), since
 * the weight gradient accumulates onto its sums where it reads them. */
CNN_DEFINE_CONV_TILE(cnn_conv_tile32_rows_f32, float, CNN_PAIR_BLOCK, CNN_BLOCK_LANES,
                     CNN_LANE_ROWS)

/* The weight gradient's tile (conv_direct.pxi's _backward_block, which accumulates an image
 * onto its sums: they are init and out), out of line. Inlined into that long loop, gcc ran out
 * of registers and kept the lanes' pointers on the stack, loading one before every
 * multiply-add; called, the tile has the registers to itself (alone, batch 64: ResNet-8's
 * 3 -> 16 stem's weight gradient 663-702 -> 580-592 us, 16 -> 32 at stride 2 1080-1137 -> 954
 * us). The forward's calls stay inline: out of line, its loops ran up to 30% slower. */
#define CNN_DEFINE_WEIGHT_GRAD_TILE(SUFFIX, T, PAIRED)                                         \
    __attribute__((noinline)) static void cnn_weight_grad_tile_##SUFFIX(                       \
        const T *in, const ptrdiff_t *lanes, const ptrdiff_t *pixels, ptrdiff_t n_pixels,      \
        const T *grad, ptrdiff_t stride, T *sums, ptrdiff_t block)                             \
    {                                                                                          \
        if (block == CNN_NARROW_BLOCK)                                                         \
            cnn_conv_tile8_##SUFFIX(in, lanes, pixels, n_pixels, grad, stride, sums, stride,   \
                                    sums, stride);                                             \
        else if (block == CNN_PAIR_BLOCK)                                                      \
            PAIRED(in, lanes, pixels, n_pixels, grad, stride, sums, stride, sums, stride);     \
        else                                                                                   \
            cnn_conv_tile16_##SUFFIX(in, lanes, pixels, n_pixels, grad, stride, sums, stride,  \
                                     sums, stride);                                            \
    }

CNN_DEFINE_WEIGHT_GRAD_TILE(f32, float, cnn_conv_tile32_rows_f32)
/* float64 has no paired tile: its blocks are never CNN_PAIR_BLOCK (conv_direct.pxi's
 * _forward_block). */
CNN_DEFINE_WEIGHT_GRAD_TILE(f64, double, cnn_conv_tile16_f64)

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

/* Store a forward tile (lanes x channels, row stride CNN_BLOCK) channel-major: channel f's
 * values of the lanes go to out + f * plane, one after another (the tile's pixels are
 * consecutive in the output plane). A full float tile of 8 lanes on AVX-512 is transposed in
 * registers, three rounds of shuffles, and each channel's 8 values are one store: a value at a
 * time, the store took 54 ns a tile, a sixth of a 144-tap layer's time and most of a 1x1
 * layer's. Elsewhere (other widths, partial tiles, float64), a value at a time. */
#define CNN_DEFINE_TILE_STORE(NAME, T)                                                         \
    static inline void NAME##_values(const T *restrict tile, ptrdiff_t lanes,                  \
                                     ptrdiff_t channels, T *restrict out, ptrdiff_t plane)     \
    {                                                                                          \
        ptrdiff_t f, q;                                                                        \
        for (f = 0; f < channels; f++)                                                         \
            for (q = 0; q < lanes; q++)                                                        \
                out[f * plane + q] = tile[q * CNN_BLOCK + f];                                  \
    }

CNN_DEFINE_TILE_STORE(cnn_tile_store_f32, float)
CNN_DEFINE_TILE_STORE(cnn_tile_store_f64, double)

static inline void cnn_tile_store_f32(const float *restrict tile, ptrdiff_t lanes,
                                      ptrdiff_t channels, float *restrict out, ptrdiff_t plane)
{
#if defined(__AVX512F__) && CNN_BLOCK == 16
    typedef int index16 __attribute__((vector_size(16 * sizeof(int))));
    /* Within each 128-bit lane (channels 4l..4l+3): round 1 interleaves lanes 2k and 2k+1,
     * round 2 pairs of those, so that each lane holds 4 lanes of one channel; round 3 joins
     * lanes 0-3 and 4-7 of a channel into 8 values. Channel offsets within a 128-bit lane of
     * the round-2 vectors: 0, 2, 1, 3. */
    static const int offset[4] = {0, 2, 1, 3};
    cnn_vec16_f32 row[8], pair[8], quad[8], eight[8];
    int k, j, m, half;
    if (lanes != 8) {
        cnn_tile_store_f32_values(tile, lanes, channels, out, plane);
        return;
    }
    for (k = 0; k < 8; k++)
        memcpy(&row[k], tile + k * CNN_BLOCK, sizeof row[k]);
    for (k = 0; k < 4; k++) {
        pair[2 * k] = __builtin_shuffle(row[2 * k], row[2 * k + 1],
                                        (index16){0, 16, 1, 17, 4, 20, 5, 21, 8, 24, 9, 25, 12,
                                                  28, 13, 29});
        pair[2 * k + 1] = __builtin_shuffle(row[2 * k], row[2 * k + 1],
                                            (index16){2, 18, 3, 19, 6, 22, 7, 23, 10, 26, 11,
                                                      27, 14, 30, 15, 31});
    }
    for (k = 0; k < 2; k++)
        for (j = 0; j < 2; j++) {
            quad[4 * k + j] = __builtin_shuffle(pair[4 * k + j], pair[4 * k + 2 + j],
                                                (index16){0, 1, 16, 17, 4, 5, 20, 21, 8, 9, 24,
                                                          25, 12, 13, 28, 29});
            quad[4 * k + 2 + j] = __builtin_shuffle(pair[4 * k + j], pair[4 * k + 2 + j],
                                                    (index16){2, 3, 18, 19, 6, 7, 22, 23, 10,
                                                              11, 26, 27, 14, 15, 30, 31});
        }
    for (m = 0; m < 4; m++) {
        eight[m] = __builtin_shuffle(quad[m], quad[m + 4],
                                     (index16){0, 1, 2, 3, 16, 17, 18, 19, 4, 5, 6, 7, 20, 21,
                                               22, 23});
        eight[m + 4] = __builtin_shuffle(quad[m], quad[m + 4],
                                         (index16){8, 9, 10, 11, 24, 25, 26, 27, 12, 13, 14, 15,
                                                   28, 29, 30, 31});
    }
    /* eight[m] holds channels offset[m] (values 0-7) and 4 + offset[m] (8-15); eight[m + 4]
     * channels 8 + offset[m] and 12 + offset[m]. */
    for (m = 0; m < 8; m++)
        for (half = 0; half < 2; half++) {
            ptrdiff_t f = offset[m % 4] + 4 * half + 8 * (m / 4);
            if (f < channels)
                memcpy(out + f * plane, (const float *)&eight[m] + 8 * half, 8 * sizeof(float));
        }
#else
    cnn_tile_store_f32_values(tile, lanes, channels, out, plane);
#endif
}

static inline void cnn_tile_store_f64(const double *restrict tile, ptrdiff_t lanes,
                                      ptrdiff_t channels, double *restrict out, ptrdiff_t plane)
{
    cnn_tile_store_f64_values(tile, lanes, channels, out, plane);
}

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
