/* The sparse steps of a convolution's backward pass (used by cnn/_ext/conv_direct.pxi).
 *
 * Behind a ReLU and a max-pool most output pixels carry no gradient. The backward pass keeps
 * the gradient pixel-major (one row of `width` channels per output pixel), moves the rows that
 * hold a non-zero value to the front (cnn_compact_rows), and sends each active pixel's values
 * back through the weights into the input gradient (cnn_scatter_segments). Both are written
 * without data-dependent branches in their inner loops: which pixels and channels are active is
 * unpredictable, and mispredicted branches cost more than the arithmetic here. */
#ifndef CNN_CONV_SCATTER_H
#define CNN_CONV_SCATTER_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "conv_layout.h" /* CNN_SEGMENT */

/* One segment of CNN_SEGMENT values, as one vector. */
typedef float cnn_seg_f32 __attribute__((vector_size(CNN_SEGMENT * sizeof(float))));
typedef double cnn_seg_f64 __attribute__((vector_size(CNN_SEGMENT * sizeof(double))));

/* Move the rows (n_pixels x width, width a multiple of CNN_SEGMENT) that hold a value other
 * than +-0 to the front, in order, and their origins[p] to active[]; return how many there are.
 * A row is active when its 64-bit words, or-ed together, have a bit set outside the sign bits
 * (so a NaN is active, -0.0 is not). Every row is copied to the next free place and the count
 * advances only for an active one: no branch on the data, and the only chain from one pixel to
 * the next is the count's addition. */
#define CNN_DEFINE_COMPACT_ROWS(NAME, T, V, NOT_SIGNS)                                         \
    static inline ptrdiff_t NAME(T *rows, ptrdiff_t n_pixels, ptrdiff_t width,                 \
                                 const ptrdiff_t *origins, ptrdiff_t *active)                  \
    {                                                                                          \
        ptrdiff_t count = 0, p, k, w;                                                          \
        for (p = 0; p < n_pixels; p++) {                                                       \
            const T *row = rows + p * width;                                                   \
            T *place = rows + count * width;                                                   \
            uint64_t bits = 0, word;                                                           \
            V v;                                                                               \
            for (k = 0; k < width; k += CNN_SEGMENT) { /* place: row, or a row before it */    \
                for (w = 0; w < (ptrdiff_t)sizeof(V) / 8; w++) {                               \
                    memcpy(&word, (const char *)(row + k) + 8 * w, 8);                         \
                    bits |= word;                                                              \
                }                                                                              \
                memcpy(&v, row + k, sizeof(V));                                                \
                memcpy(place + k, &v, sizeof(V));                                              \
            }                                                                                  \
            active[count] = origins[p];                                                        \
            count += (bits & (NOT_SIGNS)) != 0;                                                \
        }                                                                                      \
        return count;                                                                          \
    }

CNN_DEFINE_COMPACT_ROWS(cnn_compact_rows_f32, float, cnn_seg_f32, 0x7fffffff7fffffffULL)
CNN_DEFINE_COMPACT_ROWS(cnn_compact_rows_f64, double, cnn_seg_f64, 0x7fffffffffffffffULL)

/* sums[k] += rows[i * width + k] for i = 0, 1, ... n - 1 in turn (width a multiple of
 * CNN_SEGMENT): the bias gradient's running sums over the active pixels, kept in registers
 * between rows. */
#define CNN_DEFINE_ADD_ROWS(NAME, T, V)                                                        \
    static inline void NAME(T *sums, const T *rows, ptrdiff_t n, ptrdiff_t width)              \
    {                                                                                          \
        ptrdiff_t i, k;                                                                        \
        V total, row;                                                                          \
        for (k = 0; k < width; k += CNN_SEGMENT) {                                             \
            memcpy(&total, sums + k, sizeof(V));                                               \
            for (i = 0; i < n; i++) {                                                          \
                memcpy(&row, rows + i * width + k, sizeof(V));                                 \
                total += row;                                                                  \
            }                                                                                  \
            memcpy(sums + k, &total, sizeof(V));                                               \
        }                                                                                      \
    }

CNN_DEFINE_ADD_ROWS(cnn_add_rows_f32, float, cnn_seg_f32)
CNN_DEFINE_ADD_ROWS(cnn_add_rows_f64, double, cnn_seg_f64)

/* sums[s * CNN_SEGMENT + l] += sum over i < n of values[i] * image[origins[i] + offsets[s] +
 * l], for every segment s < n_segments (a multiple of CNN_SEGMENT_GROUP) and lane l <
 * CNN_SEGMENT, in the order i = 0, 1, ...
 *
 * The weight gradient of one output channel, from that channel's non-zero gradient values and
 * their pixels' window origins: the transpose of cnn_scatter_segments. Lanes that are not taps
 * of the kernel (past a row's end, or between dilated taps) collect junk the caller ignores;
 * the image needs CNN_SEGMENT readable elements past its end. CNN_SEGMENT_GROUP segments are
 * summed in registers. */
#define CNN_DEFINE_GATHER_SEGMENTS(NAME, T, V)                                                 \
    static inline void NAME(T *sums, const T *image, const ptrdiff_t *offsets,                 \
                            ptrdiff_t n_segments, const ptrdiff_t *origins, const T *values,   \
                            ptrdiff_t n)                                                       \
    {                                                                                          \
        ptrdiff_t s, i, k;                                                                     \
        for (s = 0; s < n_segments; s += CNN_SEGMENT_GROUP) {                                  \
            V acc[CNN_SEGMENT_GROUP], x;                                                       \
            for (k = 0; k < CNN_SEGMENT_GROUP; k++)                                            \
                memcpy(&acc[k], sums + (s + k) * CNN_SEGMENT, sizeof(V));                      \
            for (i = 0; i < n; i++) {                                                          \
                const T *window = image + origins[i];                                          \
                T g = values[i];                                                               \
                for (k = 0; k < CNN_SEGMENT_GROUP; k++) {                                      \
                    memcpy(&x, window + offsets[s + k], sizeof(V));                            \
                    acc[k] += g * x;                                                           \
                }                                                                              \
            }                                                                                  \
            for (k = 0; k < CNN_SEGMENT_GROUP; k++)                                            \
                memcpy(sums + (s + k) * CNN_SEGMENT, &acc[k], sizeof(V));                      \
        }                                                                                      \
    }

CNN_DEFINE_GATHER_SEGMENTS(cnn_gather_segments_f32, float, cnn_seg_f32)
CNN_DEFINE_GATHER_SEGMENTS(cnn_gather_segments_f64, double, cnn_seg_f64)

/* window[offsets[s] + l] += sum over i < n of values[i] * weights[(channels[i] * n_segments +
 * s) * CNN_SEGMENT + l], for every segment s < n_segments (a multiple of CNN_SEGMENT_GROUP) and
 * lane l < CNN_SEGMENT.
 *
 * The input gradient's scatter of one output pixel: `values` are its non-zero, finite gradient
 * values and `channels` their output channels; a segment is CNN_SEGMENT consecutive input
 * positions of one (input channel, kernel row) of the window, and `weights` holds each output
 * channel's kernel laid out in segments, zeros where a segment passes the kernel row's end
 * (adding values * 0, exactly nothing for finite values). CNN_SEGMENT_GROUP segments are summed
 * in registers over all the channels, then added to the window one after another, so segments
 * that overlap (a narrow image) still add up correctly. */
#define CNN_DEFINE_SCATTER_SEGMENTS(NAME, T, V)                                                \
    static inline void NAME(T *window, const ptrdiff_t *offsets, ptrdiff_t n_segments,         \
                            const T *weights, const T *values, const ptrdiff_t *channels,      \
                            ptrdiff_t n)                                                       \
    {                                                                                          \
        ptrdiff_t s, i, k;                                                                     \
        for (s = 0; s < n_segments; s += CNN_SEGMENT_GROUP) {                                  \
            V sums[CNN_SEGMENT_GROUP], w, old;                                                 \
            for (k = 0; k < CNN_SEGMENT_GROUP; k++)                                            \
                sums[k] = (V){0};                                                              \
            for (i = 0; i < n; i++) {                                                          \
                const T *segment = weights + (channels[i] * n_segments + s) * CNN_SEGMENT;     \
                T g = values[i];                                                               \
                for (k = 0; k < CNN_SEGMENT_GROUP; k++) {                                      \
                    memcpy(&w, segment + CNN_SEGMENT * k, sizeof(V));                          \
                    sums[k] += g * w;                                                          \
                }                                                                              \
            }                                                                                  \
            for (k = 0; k < CNN_SEGMENT_GROUP; k++) {                                          \
                T *d = window + offsets[s + k];                                                \
                memcpy(&old, d, sizeof(V));                                                    \
                old += sums[k];                                                                \
                memcpy(d, &old, sizeof(V));                                                    \
            }                                                                                  \
        }                                                                                      \
    }

CNN_DEFINE_SCATTER_SEGMENTS(cnn_scatter_segments_f32, float, cnn_seg_f32)
CNN_DEFINE_SCATTER_SEGMENTS(cnn_scatter_segments_f64, double, cnn_seg_f64)

#endif
