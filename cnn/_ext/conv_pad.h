/* A row of an image copied into its padded scratch (cnn/_ext/conv_direct.pxi's padding).
 *
 * A batch-1 layer's share pads every row of every channel it reads: 544 rows of 16 values for
 * a 32-channel 16 x 16 image. A libc memcpy per row (and a memset per border) cost more than
 * the copy itself; here whole 64-byte pieces are copied inline (a memcpy of constant size is
 * a vector load and store), and only a row's last, partial piece is left to a loop. */
#ifndef CNN_CONV_PAD_H
#define CNN_CONV_PAD_H

#include <stddef.h>
#include <string.h>

#define CNN_DEFINE_COPY_VALUES(SUFFIX, T)                                                       \
    static inline void cnn_copy_values_##SUFFIX(T *to, const T *from, ptrdiff_t n)              \
    {                                                                                           \
        enum { PIECE = 64 / sizeof(T) };                                                        \
        ptrdiff_t i = 0;                                                                        \
        for (; i + PIECE <= n; i += PIECE)                                                      \
            memcpy(to + i, from + i, PIECE * sizeof(T));                                        \
        for (; i < n; i++)                                                                      \
            to[i] = from[i];                                                                    \
    }

CNN_DEFINE_COPY_VALUES(f32, float)
CNN_DEFINE_COPY_VALUES(f64, double)

#endif
