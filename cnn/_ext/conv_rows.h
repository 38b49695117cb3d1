/* Direct convolution along output rows, for the layers the register tile of conv_tile.h serves
 * badly (used by cnn/_ext/conv_direct.pxi): few output channels (LeNet-5's first layer: 6), or
 * few taps with wide rows (3 input channels by 3x3 over 32 columns, the first layer of the CIFAR
 * net, ResNet-8 and the VGG-style net). The tile holds output channels in its vectors; with 6
 * channels a quarter of each vector is empty, and with few taps most of its time goes to
 * gathering its lanes and storing them one by one. Here a vector holds output columns instead.
 *
 * With a 2x2 max-pool (cnn_conv_pool_row): each row of the padded input holds its even columns,
 * then its odd ones (the layout of winograd.h's input, made by conv_winograd.pxi's
 * _pad_image_split), so that the convolution's even and odd output columns, in both rows of a
 * pooling window, are four sums over plain vector loads, one vector of windows at a time. The
 * window's maximum is then taken lane by lane, with the rules of max_pool2d over relu's output
 * (pointwise.h's CNN_RELU_MAX_STEP). Without (cnn_conv_rows): two output rows at a time over the
 * plainly padded input, and the epilogue (batch norm's affine map, ReLU) by pointwise.h's rules.
 *
 * Every sum starts from the bias and adds the taps in the tile's order (input channel, kernel
 * row, kernel column), one multiply-add each, so the values are the tile's, bit for bit.
 */
#ifndef CNN_CONV_ROWS_H
#define CNN_CONV_ROWS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "registers.h" /* CNN_REGISTER_BYTES */
#include "pointwise.h" /* CNN_RELU_MAX_STEP, and the unpooled rows' epilogue */

/* The first n lanes of vector VALUE (of L lanes) to DEST: a whole vector as one store; a
 * row's last, partial vector lane by lane, over all L lanes with a test (not up to n: gcc
 * turns a plain copy loop into a call of memmove, which cost more than the copy). Lane by
 * lane, whole vectors too had been 16 compares and scalar stores: a third of ResNet-8's
 * first layer. */
#define CNN_ROW_STORE(DEST, VALUE, n, L)                                                       \
    do {                                                                                       \
        if ((n) == (L)) {                                                                      \
            memcpy((DEST), &(VALUE), sizeof(VALUE));                                           \
        } else {                                                                               \
            for (ptrdiff_t lane_ = 0; lane_ < (L); lane_++)                                    \
                if (lane_ < (n))                                                               \
                    (DEST)[lane_] = (VALUE)[lane_];                                            \
        }                                                                                      \
    } while (0)

/* The most output channels summed together: four window positions each, in registers (16
 * accumulators and the loads fit AVX-512's 32 registers, 12 the 16 of the other levels).
 * A layer's channels are shared out in as few groups as that allows, of sizes as equal as
 * possible (6 channels: two groups of 3), each run by the kernel of its size, so that few
 * lanes compute channels that do not exist. */
#if defined(__AVX512F__)
#define CNN_POOL_ROW_GROUP 4
#else
#define CNN_POOL_ROW_GROUP 3
#endif

/* The unpooled rows sum two window positions (two output rows) a channel: AVX-512 holds 8
 * channels' (16 accumulators); with 4 the loop over a kernel row's 3 columns had 8
 * multiply-adds a step, too few to keep both FMA units busy (ResNet-8's and the VGG-style net's
 * first layers ran at half the core's peak). */
#if defined(__AVX512F__)
#define CNN_CONV_ROWS_GROUP 8
#else
#define CNN_CONV_ROWS_GROUP CNN_POOL_ROW_GROUP
#endif

/* Pooled row py of the output channels f0 .. f0 + count - 1 (count <= GROUP):
 * pooled[f * plane + py * pooled_w + m] = max over the window of relu(conv + bias), and when
 * indices is not NULL the argmax's position y * conv_w + x in the convolution's plane.
 * padded is the split image (C, rows, span): a row's even columns, then from span / 2 its odd
 * ones; the loads of a row's last vector run on past its end (into the next row, and past the
 * last row by up to one vector and KW / 2 values: the caller's slack), into lanes never stored.
 * weight is (F, C * KH * KW), the layer's own layout. */
#define CNN_DEFINE_CONV_POOL_ROW(NAME, T, I, GROUP)                                            \
    static inline void NAME(const T *padded, ptrdiff_t C, ptrdiff_t rows, ptrdiff_t span,      \
                            ptrdiff_t KH, ptrdiff_t KW, const T *weight,                       \
                            const T *bias, ptrdiff_t f0, ptrdiff_t count, ptrdiff_t py,        \
                            ptrdiff_t pooled_w, ptrdiff_t conv_w, T *pooled, ptrdiff_t plane,  \
                            int64_t *indices)                                                  \
    {                                                                                          \
        typedef T V __attribute__((vector_size(CNN_REGISTER_BYTES)));                          \
        typedef I M __attribute__((vector_size(CNN_REGISTER_BYTES)));                          \
        enum { L = CNN_REGISTER_BYTES / sizeof(T), G = GROUP };                                \
        typedef int64_t I64 __attribute__((vector_size(L * sizeof(int64_t))));                 \
        I64 columns; /* 2 l in lane l: the windows' first conv columns, from m0 = 0 */         \
        const ptrdiff_t taps = C * KH * KW;                                                    \
        const ptrdiff_t half = span / 2;                                                       \
        ptrdiff_t m0, c, i, j, k, q, l, last = count - 1;                                      \
        const V one = (V){0} + 1;                                                              \
        V b[G]; /* the bias in every lane, exactly (one x bias: zero + bias makes -0.0 +0.0) */ \
        for (k = 0; k < G; k++) /* a short group repeats its last channel: never stored */     \
            b[k] = one * bias[f0 + (k < last ? k : last)];                                     \
        for (l = 0; l < L; l++)                                                                \
            columns[l] = 2 * l;                                                                \
        for (m0 = 0; m0 < pooled_w; m0 += L) {                                                 \
            V acc[4][G], best;                                                                 \
            M which;                                                                           \
            ptrdiff_t n = pooled_w - m0 < L ? pooled_w - m0 : L;                               \
            for (q = 0; q < 4; q++)                                                            \
                for (k = 0; k < G; k++)                                                        \
                    acc[q][k] = b[k];                                                        \
            for (c = 0; c < C; c++)                                                            \
                for (i = 0; i < KH; i++) {                                                     \
                    /* the window's two conv rows read padded rows 2 py + i and one below */   \
                    const T *upper = padded + (c * rows + 2 * py + i) * span + m0;             \
                    const T *lower = upper + span;                                             \
                    const T *taps_ci = weight + f0 * taps + (c * KH + i) * KW;                 \
                    for (j = 0; j < KW; j++) {                                                 \
                        /* conv column 2m + j is even for even j: the even columns' */         \
                        /* element m + j/2; odd outputs 2m + 1 + j the other way round */      \
                        ptrdiff_t left = (j & 1) ? half + (j >> 1) : (j >> 1);                 \
                        ptrdiff_t right = (j & 1) ? (j + 1) >> 1 : half + (j >> 1);            \
                        V a0, d0, a1, d1;                                                      \
                        memcpy(&a0, upper + left, sizeof(V));                                  \
                        memcpy(&d0, upper + right, sizeof(V));                                 \
                        memcpy(&a1, lower + left, sizeof(V));                                  \
                        memcpy(&d1, lower + right, sizeof(V));                                 \
                        for (k = 0; k < G; k++) { /* vector x scalar, as the tile's */         \
                            T w = taps_ci[(k < last ? k : last) * taps + j];                   \
                            acc[0][k] += a0 * w;                                               \
                            acc[1][k] += d0 * w;                                               \
                            acc[2][k] += a1 * w;                                               \
                            acc[3][k] += d1 * w;                                               \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            for (k = 0; k < count; k++) {                                                      \
                T *out = pooled + (f0 + k) * plane + py * pooled_w + m0;                       \
                which = (M){0};                                                                \
                for (q = 0; q < 4; q++)                                                        \
                    CNN_RELU_MAX_STEP(V, M, acc[q][k], best, which, (I)q);                     \
                CNN_ROW_STORE(out, best, n, L);                                                \
                if (indices != NULL) {                                                         \
                    /* The argmax's place, a vector at a time: row 2 py + q / 2, column */     \
                    /* 2 m + q % 2 for window position q (as 64-bit indices: I64). */          \
                    int64_t *where = indices + (out - pooled);                                 \
                    I64 place = __builtin_convertvector(which >> 1, I64) + 2 * py;             \
                    place = place * conv_w + columns + 2 * m0 +                                \
                            __builtin_convertvector(which & 1, I64);                           \
                    CNN_ROW_STORE(where, place, n, L);                                         \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
    }

CNN_DEFINE_CONV_POOL_ROW(cnn_conv_pool_row2_f32, float, int32_t, 2)
CNN_DEFINE_CONV_POOL_ROW(cnn_conv_pool_row3_f32, float, int32_t, 3)
CNN_DEFINE_CONV_POOL_ROW(cnn_conv_pool_row4_f32, float, int32_t, 4)
CNN_DEFINE_CONV_POOL_ROW(cnn_conv_pool_row2_f64, double, int64_t, 2)
CNN_DEFINE_CONV_POOL_ROW(cnn_conv_pool_row3_f64, double, int64_t, 3)
CNN_DEFINE_CONV_POOL_ROW(cnn_conv_pool_row4_f64, double, int64_t, 4)

/* Conv rows y and y + 1 (the second only when `pair`) of the output channels f0 .. f0 + count
 * - 1 (count <= GROUP), without pooling, for a stride-1 layer with its ReLU and, when affine is
 * not NULL (3 rows of f_padded values: mean, scale, shift), a batch norm in evaluation mode:
 * out[f * plane + y * out_w + x], a vector of columns at a time. padded is the plainly padded
 * image (C, rows, span); loads run past a row's end as in the pooled kernel (the caller's
 * slack). The epilogue is pointwise.h's, value by value, as the tile's. */
#define CNN_DEFINE_CONV_ROWS(NAME, T, I, GROUP, SUFFIX)                                        \
    static inline void NAME(const T *padded, ptrdiff_t C, ptrdiff_t rows, ptrdiff_t span,      \
                            ptrdiff_t KH, ptrdiff_t KW, const T *weight, const T *bias,        \
                            ptrdiff_t f0, ptrdiff_t count, ptrdiff_t y, int pair,              \
                            ptrdiff_t out_w, const T *affine, ptrdiff_t f_padded, int relu,    \
                            T *out, ptrdiff_t plane)                                           \
    {                                                                                          \
        typedef T V __attribute__((vector_size(CNN_REGISTER_BYTES)));                          \
        typedef I M __attribute__((vector_size(CNN_REGISTER_BYTES)));                          \
        enum { L = CNN_REGISTER_BYTES / sizeof(T), G = GROUP };                                \
        const ptrdiff_t taps = C * KH * KW;                                                    \
        ptrdiff_t x0, c, i, j, k, r, l, last = count - 1;                                      \
        const V one = (V){0} + 1;                                                              \
        V b[G]; /* the bias in every lane, exactly (one x bias: zero + bias makes -0.0 +0.0) */ \
        for (k = 0; k < G; k++) /* a short group repeats its last channel: never stored */     \
            b[k] = one * bias[f0 + (k < last ? k : last)];                                     \
        for (x0 = 0; x0 < out_w; x0 += L) {                                                    \
            V acc[2][G];                                                                       \
            ptrdiff_t n = out_w - x0 < L ? out_w - x0 : L;                                     \
            for (r = 0; r < 2; r++)                                                            \
                for (k = 0; k < G; k++)                                                        \
                    acc[r][k] = b[k];                                                        \
            for (c = 0; c < C; c++)                                                            \
                for (i = 0; i < KH; i++) {                                                     \
                    const T *upper = padded + (c * rows + y + i) * span + x0;                  \
                    const T *lower = upper + span;                                             \
                    const T *taps_ci = weight + f0 * taps + (c * KH + i) * KW;                 \
                    for (j = 0; j < KW; j++) {                                                 \
                        V a0, a1;                                                              \
                        memcpy(&a0, upper + j, sizeof(V));                                     \
                        memcpy(&a1, lower + j, sizeof(V));                                     \
                        for (k = 0; k < G; k++) { /* vector x scalar, as the tile's */         \
                            T w = taps_ci[(k < last ? k : last) * taps + j];                   \
                            acc[0][k] += a0 * w;                                               \
                            acc[1][k] += a1 * w;                                               \
                        }                                                                      \
                    }                                                                          \
                }                                                                              \
            for (r = 0; r < 1 + (pair != 0); r++)                                              \
                for (k = 0; k < count; k++) {                                                  \
                    /* a vector at a time, without branches (see pointwise.h): the affine */   \
                    /* map lane by lane by its one rule, ReLU as a mask of the value's bits */ \
                    ptrdiff_t f = f0 + k;                                                      \
                    T *row = out + f * plane + (y + r) * out_w + x0;                           \
                    V value = acc[r][k];                                                       \
                    if (affine != NULL)                                                        \
                        for (l = 0; l < L; l++)                                                \
                            value[l] = cnn_affine_##SUFFIX(value[l], affine[f],                \
                                                           affine[f_padded + f],               \
                                                           affine[2 * f_padded + f]);          \
                    if (relu)                                                                  \
                        CNN_RELU_VECTOR(V, M, value);                                          \
                    CNN_ROW_STORE(row, value, n, L);                                           \
                }                                                                              \
        }                                                                                      \
    }

CNN_DEFINE_CONV_ROWS(cnn_conv_rows2_f32, float, int32_t, 2, f32)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows3_f32, float, int32_t, 3, f32)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows4_f32, float, int32_t, 4, f32)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows6_f32, float, int32_t, 6, f32)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows8_f32, float, int32_t, 8, f32)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows2_f64, double, int64_t, 2, f64)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows3_f64, double, int64_t, 3, f64)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows4_f64, double, int64_t, 4, f64)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows6_f64, double, int64_t, 6, f64)
CNN_DEFINE_CONV_ROWS(cnn_conv_rows8_f64, double, int64_t, 8, f64)

/* The groups of `channels` output channels of at most `most` each: how many, and the first
 * channel of group g (the next group's first minus it is its size). */
static inline ptrdiff_t cnn_groups_of(ptrdiff_t channels, ptrdiff_t most)
{
    return (channels + most - 1) / most;
}

static inline ptrdiff_t cnn_group_start(ptrdiff_t channels, ptrdiff_t most, ptrdiff_t g)
{
    return g * channels / cnn_groups_of(channels, most);
}

/* The pooled rows' groups (CNN_POOL_ROW_GROUP) and the unpooled rows' (CNN_CONV_ROWS_GROUP). */
static inline ptrdiff_t cnn_pool_row_groups(ptrdiff_t channels)
{
    return cnn_groups_of(channels, CNN_POOL_ROW_GROUP);
}

static inline ptrdiff_t cnn_conv_rows_groups(ptrdiff_t channels)
{
    return cnn_groups_of(channels, CNN_CONV_ROWS_GROUP);
}

#define CNN_DEFINE_CONV_POOL_GROUP(SUFFIX, T)                                                  \
    static inline void cnn_conv_pool_group_##SUFFIX(                                           \
        const T *padded, ptrdiff_t C, ptrdiff_t rows, ptrdiff_t span, ptrdiff_t KH,            \
        ptrdiff_t KW, const T *weight, const T *bias, ptrdiff_t F, ptrdiff_t g, ptrdiff_t py,  \
        ptrdiff_t pooled_w, ptrdiff_t conv_w, T *pooled, ptrdiff_t plane, int64_t *indices)    \
    {                                                                                          \
        ptrdiff_t f0 = cnn_group_start(F, CNN_POOL_ROW_GROUP, g);                              \
        ptrdiff_t count = cnn_group_start(F, CNN_POOL_ROW_GROUP, g + 1) - f0;                  \
        if (count <= 2)                                                                        \
            cnn_conv_pool_row2_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0,       \
                                        count, py, pooled_w, conv_w, pooled, plane, indices);  \
        else if (count == 3)                                                                   \
            cnn_conv_pool_row3_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0,       \
                                        count, py, pooled_w, conv_w, pooled, plane, indices);  \
        else                                                                                   \
            cnn_conv_pool_row4_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0,       \
                                        count, py, pooled_w, conv_w, pooled, plane, indices);  \
    }

CNN_DEFINE_CONV_POOL_GROUP(f32, float)
CNN_DEFINE_CONV_POOL_GROUP(f64, double)

#define CNN_DEFINE_CONV_ROWS_GROUP(SUFFIX, T)                                                  \
    static inline void cnn_conv_rows_group_##SUFFIX(                                           \
        const T *padded, ptrdiff_t C, ptrdiff_t rows, ptrdiff_t span, ptrdiff_t KH,            \
        ptrdiff_t KW, const T *weight, const T *bias, ptrdiff_t F, ptrdiff_t g, ptrdiff_t y,   \
        int pair, ptrdiff_t out_w, const T *affine, ptrdiff_t f_padded, int relu, T *out,      \
        ptrdiff_t plane)                                                                       \
    {                                                                                          \
        ptrdiff_t f0 = cnn_group_start(F, CNN_CONV_ROWS_GROUP, g);                             \
        ptrdiff_t count = cnn_group_start(F, CNN_CONV_ROWS_GROUP, g + 1) - f0;                 \
        if (count <= 2)                                                                        \
            cnn_conv_rows2_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0, count, y, \
                                    pair, out_w, affine, f_padded, relu, out, plane);          \
        else if (count == 3)                                                                   \
            cnn_conv_rows3_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0, count, y, \
                                    pair, out_w, affine, f_padded, relu, out, plane);          \
        else if (count == 4)                                                                   \
            cnn_conv_rows4_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0, count, y, \
                                    pair, out_w, affine, f_padded, relu, out, plane);          \
        else if (count <= 6)                                                                   \
            cnn_conv_rows6_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0, count, y, \
                                    pair, out_w, affine, f_padded, relu, out, plane);          \
        else                                                                                   \
            cnn_conv_rows8_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, f0, count, y, \
                                    pair, out_w, affine, f_padded, relu, out, plane);          \
    }

CNN_DEFINE_CONV_ROWS_GROUP(f32, float)
CNN_DEFINE_CONV_ROWS_GROUP(f64, double)

/* Units first..last-1 of one image (unit u: pooled row u % PH of group u / PH; or the pair of
 * output rows 2 (u % pairs), + 1 of group u / pairs), in a function of its own that is never
 * inlined: inlined into the function gcc outlines for an OpenMP parallel region, the row
 * kernels kept their loaded vectors on the stack instead of in registers, and a batch-1 layer
 * shared by two threads ran no faster than on one (the CIFAR net's first layer: 26 us either
 * way). The serial loops call the same functions. */
#if defined(_MSC_VER)
#define CNN_NOINLINE __declspec(noinline)
#else
#define CNN_NOINLINE __attribute__((noinline))
#endif

#define CNN_DEFINE_CONV_ROW_UNITS(SUFFIX, T)                                                   \
    CNN_NOINLINE static void cnn_conv_pool_units_##SUFFIX(                                     \
        const T *padded, ptrdiff_t C, ptrdiff_t rows, ptrdiff_t span, ptrdiff_t KH,            \
        ptrdiff_t KW, const T *weight, const T *bias, ptrdiff_t F, ptrdiff_t PH, ptrdiff_t PW, \
        ptrdiff_t conv_w, T *pooled, int64_t *indices, ptrdiff_t first, ptrdiff_t last)        \
    {                                                                                          \
        ptrdiff_t u;                                                                           \
        for (u = first; u < last; u++)                                                         \
            cnn_conv_pool_group_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, F,       \
                                         u / PH, u % PH, PW, conv_w, pooled, PH * PW,          \
                                         indices);                                             \
    }                                                                                          \
                                                                                               \
    CNN_NOINLINE static void cnn_conv_rows_units_##SUFFIX(                                     \
        const T *padded, ptrdiff_t C, ptrdiff_t rows, ptrdiff_t span, ptrdiff_t KH,            \
        ptrdiff_t KW, const T *weight, const T *bias, const T *affine, ptrdiff_t f_padded,     \
        int relu, T *out, ptrdiff_t F, ptrdiff_t OH, ptrdiff_t OW, ptrdiff_t first,            \
        ptrdiff_t last)                                                                        \
    {                                                                                          \
        ptrdiff_t u, y, pairs = (OH + 1) / 2;                                                  \
        for (u = first; u < last; u++) {                                                       \
            y = 2 * (u % pairs);                                                               \
            cnn_conv_rows_group_##SUFFIX(padded, C, rows, span, KH, KW, weight, bias, F,       \
                                         u / pairs, y, y + 1 < OH, OW, affine, f_padded, relu, \
                                         out, OH * OW);                                        \
        }                                                                                      \
    }

CNN_DEFINE_CONV_ROW_UNITS(f32, float)
CNN_DEFINE_CONV_ROW_UNITS(f64, double)

#endif
