/* The loops of Winograd F(2x2, 3x3) that conv_winograd.pxi calls: the transforms, a vector of
 * tiles (or of channels) at a time, the register tile of the products, and the pooled output.
 *
 * Written with GCC/clang vector extensions for the reason conv_tile.h gives: gcc left the
 * Cython loops scalar (sixteen output streams defeat its alias checks). Whole vectors first
 * (of a full, a half and a quarter register), then the remaining tiles one by one through the
 * same expressions: additions and subtractions only, so a tile gets the same bits whichever
 * path computes it.
 *
 * Input rows: a row of tiles of a padded image stored with each row's even columns, then its
 * odd columns (`even`, `even + half`; rows `wp` apart), so that every load runs along the
 * tiles: tile tx's 4x4 patch is columns 2tx..2tx+3 = even[tx], odd[tx], even[tx+1], odd[tx+1].
 * V's 16 matrices are `vs` apart, tile tx at o[k * vs + tx]; M's likewise, `ms` apart.
 */
#ifndef CNN_WINOGRAD_H
#define CNN_WINOGRAD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conv_layout.h" /* CNN_BLOCK, CNN_BLOCK_LANES, CNN_PAIR_BLOCK */
#include "conv_tile.h"   /* CNN_REGISTER_BYTES, CNN_PART_BYTES */
#include "pointwise.h"  /* the ReLU and affine rules */

#define CNN_LOAD_VECTOR(dst, src) memcpy(&(dst), (src), sizeof(dst))
#define CNN_STORE_VECTOR(dst, value)                                                           \
    do {                                                                                       \
        __typeof__(value) stored_ = (value);                                                   \
        memcpy((dst), &stored_, sizeof(stored_));                                              \
    } while (0)
#define CNN_LOAD_SCALAR(dst, src) ((dst) = *(src))
#define CNN_STORE_SCALAR(dst, value) (*(dst) = (value))

/* V = B^T d B, B^T = [[1,0,-1,0],[0,1,1,0],[0,-1,1,0],[0,1,0,-1]], for a vector of tiles or
 * of channels (or one value): AT(r, i) is the address of d[r][i], OUT(k) that of V[k]. */
#define CNN_WINOGRAD_INPUT(TYPE, LOAD, STORE, AT, OUT)                                         \
    do {                                                                                       \
        TYPE d_[4][4], s_[4][4];                                                               \
        int r_, i_;                                                                            \
        for (r_ = 0; r_ < 4; r_++)                                                             \
            for (i_ = 0; i_ < 4; i_++)                                                         \
                LOAD(d_[r_][i_], AT(r_, i_));                                                  \
        for (i_ = 0; i_ < 4; i_++) {                                                           \
            s_[0][i_] = d_[0][i_] - d_[2][i_];                                                 \
            s_[1][i_] = d_[1][i_] + d_[2][i_];                                                 \
            s_[2][i_] = d_[2][i_] - d_[1][i_];                                                 \
            s_[3][i_] = d_[1][i_] - d_[3][i_];                                                 \
        }                                                                                      \
        for (r_ = 0; r_ < 4; r_++) {                                                           \
            STORE(OUT(4 * r_), s_[r_][0] - s_[r_][2]);                                         \
            STORE(OUT(4 * r_ + 1), s_[r_][1] + s_[r_][2]);                                     \
            STORE(OUT(4 * r_ + 2), s_[r_][2] - s_[r_][1]);                                     \
            STORE(OUT(4 * r_ + 3), s_[r_][1] - s_[r_][3]);                                     \
        }                                                                                      \
    } while (0)
/* Tile tx of a row of tiles: columns 2tx + i of split rows (even columns, then odd ones). */
#define CNN_ROW_AT(r, i) (even + (r) * wp + ((i) % 2) * half + tx + (i) / 2)
#define CNN_ROW_OUT(k) (o + (k) * vs + tx)
/* One tile, a vector of channels: pixels `pixel` apart in a row, rows `row` apart. */
#define CNN_CHANNELS_AT(r, i) (patch + (r) * row + (i) * pixel)
#define CNN_CHANNELS_OUT(k) (o + (k) * os)

/* Y = A^T M A for the tiles at tx, A^T = [[1,1,1,0],[0,1,-1,-1]]: M's 16 matrices `ms` apart
 * (tile tx at a[k * ms + tx]); Y's four values per tile into rows[0..3] (row 0 column 0, row 0
 * column 1, row 1 column 0, row 1 column 1), tile tx at rows[q] + tx. */
#define CNN_WINOGRAD_OUTPUT(TYPE, LOAD, STORE)                                                 \
    do {                                                                                       \
        TYPE m_[4][4], s_[2][4];                                                               \
        int r_, i_;                                                                            \
        for (r_ = 0; r_ < 4; r_++)                                                             \
            for (i_ = 0; i_ < 4; i_++)                                                         \
                LOAD(m_[r_][i_], a + (4 * r_ + i_) * ms + tx);                                 \
        for (i_ = 0; i_ < 4; i_++) {                                                           \
            s_[0][i_] = m_[0][i_] + m_[1][i_] + m_[2][i_];                                     \
            s_[1][i_] = m_[1][i_] - m_[2][i_] - m_[3][i_];                                     \
        }                                                                                      \
        for (r_ = 0; r_ < 2; r_++) {                                                           \
            STORE(rows[2 * r_] + tx, s_[r_][0] + s_[r_][1] + s_[r_][2]);                       \
            STORE(rows[2 * r_ + 1] + tx, s_[r_][1] - s_[r_][2] - s_[r_][3]);                   \
        }                                                                                      \
    } while (0)

/* Vectors of a half and a quarter register too, for rows of few tiles (an 8x8 output has 4 per
 * row): each width computes its tiles by the same operations, so with the same bits. */
#define CNN_WIDTH_BYTES(T, DIVISOR)                                                            \
    (CNN_REGISTER_BYTES / (DIVISOR) > sizeof(T) ? CNN_REGISTER_BYTES / (DIVISOR) : sizeof(T))
#define CNN_ALONG_TILES(T, BODY)                                                               \
    do {                                                                                       \
        typedef T full_t __attribute__((vector_size(CNN_WIDTH_BYTES(T, 1))));                  \
        typedef T half_t __attribute__((vector_size(CNN_WIDTH_BYTES(T, 2))));                  \
        typedef T quarter_t __attribute__((vector_size(CNN_WIDTH_BYTES(T, 4))));               \
        for (; tx + (ptrdiff_t)(sizeof(full_t) / sizeof(T)) <= n;                              \
             tx += sizeof(full_t) / sizeof(T))                                                 \
            BODY(full_t, CNN_LOAD_VECTOR, CNN_STORE_VECTOR);                                   \
        for (; tx + (ptrdiff_t)(sizeof(half_t) / sizeof(T)) <= n;                              \
             tx += sizeof(half_t) / sizeof(T))                                                 \
            BODY(half_t, CNN_LOAD_VECTOR, CNN_STORE_VECTOR);                                   \
        for (; tx + (ptrdiff_t)(sizeof(quarter_t) / sizeof(T)) <= n;                           \
             tx += sizeof(quarter_t) / sizeof(T))                                              \
            BODY(quarter_t, CNN_LOAD_VECTOR, CNN_STORE_VECTOR);                                \
        for (; tx < n; tx++)                                                                   \
            BODY(T, CNN_LOAD_SCALAR, CNN_STORE_SCALAR);                                        \
    } while (0)
#define CNN_INPUT_ALONG_ROW(TYPE, LOAD, STORE)                                                 \
    CNN_WINOGRAD_INPUT(TYPE, LOAD, STORE, CNN_ROW_AT, CNN_ROW_OUT)

#define CNN_DEFINE_WINOGRAD(SUFFIX, T)                                                         \
    static inline void cnn_winograd_input_row_##SUFFIX(const T *even, ptrdiff_t half,          \
                                                       ptrdiff_t wp, ptrdiff_t n, T *o,        \
                                                       ptrdiff_t vs)                           \
    {                                                                                          \
        ptrdiff_t tx = 0;                                                                      \
        CNN_ALONG_TILES(T, CNN_INPUT_ALONG_ROW);                                               \
    }                                                                                          \
    /* `rows` rows of n tiles, row r's split rows from even + 2 r wp, its tiles at o + r n     \
     * (V's rows of tiles are consecutive): one call for a channel's rows, where a call per    \
     * row of 16 tiles (a 32-wide image's) set up V's 16 destinations for one vector. */       \
    static inline void cnn_winograd_input_rows_##SUFFIX(const T *even, ptrdiff_t half,         \
                                                        ptrdiff_t wp, ptrdiff_t rows,          \
                                                        ptrdiff_t n, T *o, ptrdiff_t vs)       \
    {                                                                                          \
        ptrdiff_t r;                                                                           \
        for (r = 0; r < rows; r++)                                                             \
            cnn_winograd_input_row_##SUFFIX(even + 2 * r * wp, half, wp, n, o + r * n, vs);    \
    }                                                                                          \
    static inline void cnn_winograd_output_row_##SUFFIX(const T *a, ptrdiff_t ms, ptrdiff_t n, \
                                                        T *const *rows)                        \
    {                                                                                          \
        ptrdiff_t tx = 0;                                                                      \
        CNN_ALONG_TILES(T, CNN_WINOGRAD_OUTPUT);                                               \
    }

CNN_DEFINE_WINOGRAD(f32, float)
CNN_DEFINE_WINOGRAD(f64, double)

/* The products: m[q * m_stride + k] = sum_c u[c * CNN_BLOCK_LANES + q] * v[c * v_stride + k]
 * for CNN_BLOCK_LANES output channels q and TILES tiles k (with `add`, m[...] + that sum: the
 * weight gradient sums its images a few at a time). The weights of a group of
 * channels are interleaved by input channel, so the lanes' multipliers are consecutive words
 * (one base register: the loop keeps every accumulator and pointer in registers); the tiles
 * are one vector (as many registers as it fills, as in conv_tile.h), or for the paired product
 * (TILES = CNN_PAIR_BLOCK, where CNN_PAIR_TILES) two, so that each broadcast weight feeds two
 * multiply-adds (conv_layout.h says why that pays). */
#define CNN_DEFINE_WINOGRAD_PRODUCT(NAME, T, TILES)                                            \
    static inline void NAME(const T *u, const T *v, ptrdiff_t n_c, ptrdiff_t v_stride, T *m,   \
                            ptrdiff_t m_stride, int add)                                       \
    {                                                                                          \
        typedef T part_t __attribute__((vector_size(CNN_PART_BYTES(T, TILES))));               \
        enum { PART = CNN_PART_BYTES(T, TILES) / sizeof(T), PARTS = (TILES) / PART };          \
        part_t acc[CNN_BLOCK_LANES][PARTS], w[PARTS], kept;                                    \
        ptrdiff_t c, q, k;                                                                     \
        /* acc's vectors are copied whole (through `kept`), never by address, so that they   \
         * stay in registers: with acc's address taken, gcc zeroed it in memory at every call \
         * (rep stos) and read it back (3.5% of a 64 -> 64 layer at 8 x 8, perf). */          \
        for (q = 0; q < CNN_BLOCK_LANES; q++)                                                  \
            for (k = 0; k < PARTS; k++) {                                                      \
                kept = (part_t){0};                                                            \
                if (add)                                                                       \
                    memcpy(&kept, m + q * m_stride + k * PART, sizeof(part_t));                \
                acc[q][k] = kept;                                                              \
            }                                                                                  \
        for (c = 0; c < n_c; c++) {                                                            \
            for (k = 0; k < PARTS; k++)                                                        \
                memcpy(&w[k], v + c * v_stride + k * PART, sizeof(part_t));                    \
            for (q = 0; q < CNN_BLOCK_LANES; q++) {                                            \
                T x = u[c * CNN_BLOCK_LANES + q];                                              \
                for (k = 0; k < PARTS; k++)                                                    \
                    acc[q][k] += x * w[k];                                                     \
            }                                                                                  \
        }                                                                                      \
        for (q = 0; q < CNN_BLOCK_LANES; q++)                                                  \
            for (k = 0; k < PARTS; k++) {                                                      \
                kept = acc[q][k];                                                              \
                memcpy(m + q * m_stride + k * PART, &kept, sizeof(part_t));                    \
            }                                                                                  \
    }

CNN_DEFINE_WINOGRAD_PRODUCT(cnn_winograd_product_f32, float, CNN_BLOCK)
CNN_DEFINE_WINOGRAD_PRODUCT(cnn_winograd_product_f64, double, CNN_BLOCK)
CNN_DEFINE_WINOGRAD_PRODUCT(cnn_winograd_product_pair_f32, float, CNN_PAIR_BLOCK)

/* One output row of n values from the output transform's even and odd columns: plus the bias,
 * then batch norm's affine map (`affine`: NULL, or its mean, scale and shift), a residual
 * connection's row (`residual`: NULL, or the values added, AddReLU's order: the convolution's
 * value first) and ReLU when asked, by pointwise.h's rules, then interleaved into the row: one
 * pass, each value computed in registers and stored once. (Three passes over the row, the
 * interleave's stores re-read at once by the affine map's vector loads, stalled on store
 * forwarding: a fifth of a 16-channel layer's time; the residual's own pass over the output
 * cost a 16 -> 16 layer at 32 x 32 about 4%.) The variants are separate loops, so that gcc
 * vectorizes each (the interleave with permutes). CNN_WINOGRAD_STORE_PAIRS is the loop, over
 * the function's own i, n, even, odd, bias, residual and out: EXPR makes the value stored at
 * out[j] from v. */
#define CNN_WINOGRAD_STORE_PAIRS(T, EXPR) /* EXPR: the value stored at out[j], made from v */  \
    do {                                                                                       \
        for (i = 0; i < n / 2; i++) {                                                          \
            ptrdiff_t j = 2 * i;                                                               \
            T v = even[i] + bias;                                                              \
            out[j] = (EXPR);                                                                   \
            j = 2 * i + 1;                                                                     \
            v = odd[i] + bias;                                                                 \
            out[j] = (EXPR);                                                                   \
        }                                                                                      \
        if (n % 2) {                                                                           \
            ptrdiff_t j = n - 1;                                                               \
            T v = even[n / 2] + bias;                                                          \
            out[j] = (EXPR);                                                                   \
        }                                                                                      \
    } while (0)
/* The value, then the residual's when there is one (a loop each, so that gcc vectorizes each). */
#define CNN_WINOGRAD_STORE_SUM(T, VALUE, SUFFIX)                                               \
    do {                                                                                       \
        if (residual == NULL && relu)                                                          \
            CNN_WINOGRAD_STORE_PAIRS(T, cnn_relu_##SUFFIX(VALUE));                             \
        else if (residual == NULL)                                                             \
            CNN_WINOGRAD_STORE_PAIRS(T, VALUE);                                                \
        else if (relu)                                                                         \
            CNN_WINOGRAD_STORE_PAIRS(T, cnn_relu_##SUFFIX((VALUE) + residual[j]));             \
        else                                                                                   \
            CNN_WINOGRAD_STORE_PAIRS(T, (VALUE) + residual[j]);                                \
    } while (0)

#define CNN_DEFINE_WINOGRAD_STORE(SUFFIX, T)                                                   \
    static inline void cnn_winograd_store_row_##SUFFIX(const T *restrict even,                 \
                                                       const T *restrict odd, ptrdiff_t n,     \
                                                       T bias, const T *affine, int relu,      \
                                                       const T *restrict residual,             \
                                                       T *restrict out)                        \
    {                                                                                          \
        ptrdiff_t i;                                                                           \
        if (affine) {                                                                          \
            T m = affine[0], a = affine[1], b = affine[2];                                     \
            CNN_WINOGRAD_STORE_SUM(T, cnn_affine_##SUFFIX(v, m, a, b), SUFFIX);                \
        } else {                                                                               \
            CNN_WINOGRAD_STORE_SUM(T, v, SUFFIX);                                              \
        }                                                                                      \
    }

CNN_DEFINE_WINOGRAD_STORE(f32, float)
CNN_DEFINE_WINOGRAD_STORE(f64, double)
#undef CNN_WINOGRAD_STORE_PAIRS
#undef CNN_WINOGRAD_STORE_SUM

/* ReLU and the 2x2 max-pool of n output tiles (each tile is one pooling window): rows[q][i] is
 * value q (row-major in the window) of tile first + i, before the bias. pooled[i] is the ReLU'd
 * maximum and indices[i] (unless indices is NULL) its position in the convolution's output
 * plane (tile t's top-left value at row 2 (t / tiles_w), column 2 (t % tiles_w); rows `ow`
 * apart), by max_pool2d's rule: a later value wins only if greater, or NaN. */
#define CNN_DEFINE_WINOGRAD_POOL(SUFFIX, T, I)                                                 \
    static inline ptrdiff_t cnn_pool_index_##SUFFIX(ptrdiff_t t, ptrdiff_t tiles_w,           \
                                                    ptrdiff_t ow, int which)                   \
    {                                                                                          \
        return (2 * (t / tiles_w) + which / 2) * ow + 2 * (t % tiles_w) + which % 2;           \
    }                                                                                          \
    static inline void cnn_winograd_pool_row_##SUFFIX(T *const *rows, ptrdiff_t n, T bias,     \
                                                      ptrdiff_t first, ptrdiff_t tiles_w,      \
                                                      ptrdiff_t ow, T *pooled,                 \
                                                      int64_t *indices)                        \
    {                                                                                          \
        typedef T vec_t __attribute__((vector_size(CNN_REGISTER_BYTES)));                      \
        typedef I mask_t __attribute__((vector_size(CNN_REGISTER_BYTES)));                     \
        enum { LANES = CNN_REGISTER_BYTES / sizeof(T) };                                       \
        ptrdiff_t i = 0, k;                                                                    \
        int q, which;                                                                          \
        T best, value;                                                                         \
        /* Vectors of windows: compares give all-ones/all-zeros lanes, each choice a bitwise \
         * select (no branch: the winner is unpredictable on real data). */                   \
        for (; i + LANES <= n; i += LANES) {                                                   \
            vec_t best_v, value_v;                                                             \
            mask_t which_v = {0};                                                              \
            for (q = 0; q < 4; q++) {                                                          \
                memcpy(&value_v, rows[q] + i, sizeof(value_v));                                \
                CNN_RELU_MAX_STEP(vec_t, mask_t, value_v + bias, best_v, which_v, q);          \
            }                                                                                  \
            memcpy(pooled + i, &best_v, sizeof(best_v));                                       \
            for (k = 0; k < LANES; k++)                                                        \
                if (indices)                                                                   \
                    indices[i + k] = cnn_pool_index_##SUFFIX(first + i + k, tiles_w, ow,       \
                                                             which_v[k]);                      \
        }                                                                                      \
        for (; i < n; i++) {                                                                   \
            best = cnn_relu_##SUFFIX(rows[0][i] + bias);                                       \
            which = 0;                                                                         \
            for (q = 1; q < 4; q++) {                                                          \
                value = cnn_relu_##SUFFIX(rows[q][i] + bias);                                  \
                if ((value > best) | (value != value)) {                                       \
                    best = value;                                                              \
                    which = q;                                                                 \
                }                                                                              \
            }                                                                                  \
            pooled[i] = best;                                                                  \
            if (indices)                                                                       \
                indices[i] = cnn_pool_index_##SUFFIX(first + i, tiles_w, ow, which);           \
        }                                                                                      \
    }

CNN_DEFINE_WINOGRAD_POOL(f32, float, int32_t)
CNN_DEFINE_WINOGRAD_POOL(f64, double, int64_t)

/* A row of n values split into its even positions (to `first`) and its odd ones (to
 * `second`): the input layout above, written by a loop gcc vectorizes. */
#define CNN_DEFINE_SPLIT_COLUMNS(SUFFIX, T)                                                    \
    static inline void cnn_split_columns_##SUFFIX(const T *restrict row, ptrdiff_t n,          \
                                                  T *restrict first, T *restrict second)       \
    {                                                                                          \
        ptrdiff_t i;                                                                           \
        for (i = 0; i < n / 2; i++) {                                                          \
            first[i] = row[2 * i];                                                             \
            second[i] = row[2 * i + 1];                                                        \
        }                                                                                      \
        if (n % 2)                                                                             \
            first[n / 2] = row[n - 1];                                                         \
    }

CNN_DEFINE_SPLIT_COLUMNS(f32, float)
CNN_DEFINE_SPLIT_COLUMNS(f64, double)

/* The weight gradient (conv_winograd.pxi) transforms one tile at a time, a vector of channels
 * at a time, from images stored pixel-major (channels innermost): V = B^T d B above, with
 * CNN_BLOCK channels per vector, and dM = A dY A^T (A = [[1,0],[1,1],[1,-1],[0,-1]], the adjoint
 * of the output transform) with CNN_BLOCK_LANES output channels per vector, so both land in the
 * layouts the product reads (channels innermost). */
#define CNN_DEFINE_WINOGRAD_CHANNELS(SUFFIX, T)                                                \
    static inline void cnn_winograd_input_channels_##SUFFIX(const T *patch, ptrdiff_t pixel,   \
                                                            ptrdiff_t row, T *o, ptrdiff_t os) \
    {                                                                                          \
        typedef T vec_t __attribute__((vector_size(CNN_BLOCK * sizeof(T))));                   \
        CNN_WINOGRAD_INPUT(vec_t, CNN_LOAD_VECTOR, CNN_STORE_VECTOR, CNN_CHANNELS_AT,          \
                           CNN_CHANNELS_OUT);                                                  \
    }                                                                                          \
    static inline void cnn_winograd_gradient_channels_##SUFFIX(const T *patch, ptrdiff_t pixel,\
                                                               ptrdiff_t row, T *o,            \
                                                               ptrdiff_t os)                   \
    {                                                                                          \
        typedef T vec_t __attribute__((vector_size(CNN_BLOCK_LANES * sizeof(T))));             \
        vec_t g_[2][2], t_[4][2];                                                              \
        int r_;                                                                                \
        for (r_ = 0; r_ < 2; r_++) {                                                           \
            memcpy(&g_[r_][0], patch + r_ * row, sizeof(vec_t));                               \
            memcpy(&g_[r_][1], patch + r_ * row + pixel, sizeof(vec_t));                       \
        }                                                                                      \
        for (r_ = 0; r_ < 2; r_++) { /* t = A g */                                             \
            t_[0][r_] = g_[0][r_];                                                             \
            t_[1][r_] = g_[0][r_] + g_[1][r_];                                                 \
            t_[2][r_] = g_[0][r_] - g_[1][r_];                                                 \
            t_[3][r_] = -g_[1][r_];                                                            \
        }                                                                                      \
        for (r_ = 0; r_ < 4; r_++) { /* t A^T */                                               \
            CNN_STORE_VECTOR(o + (4 * r_) * os, t_[r_][0]);                                    \
            CNN_STORE_VECTOR(o + (4 * r_ + 1) * os, t_[r_][0] + t_[r_][1]);                    \
            CNN_STORE_VECTOR(o + (4 * r_ + 2) * os, t_[r_][0] - t_[r_][1]);                    \
            CNN_STORE_VECTOR(o + (4 * r_ + 3) * os, -t_[r_][1]);                               \
        }                                                                                      \
    }

CNN_DEFINE_WINOGRAD_CHANNELS(f32, float)
CNN_DEFINE_WINOGRAD_CHANNELS(f64, double)

#endif
