/* Fingerprints of an array's bytes, by which a layer tells whether its weights changed since it
 * laid them out for its kernels (conv.pyx's ConvPlan._kept_weights) while reading them once: a
 * copy compared byte for byte read them twice, and at batch 1 both came from the shared cache
 * (VGG-style net, AVX-512 Xeon: the comparisons were an eighth of its batch-1 forward).
 *
 * The bytes are cut into chunks of CNN_FINGERPRINT_CHUNK; a chunk's fingerprint is
 * CNN_FINGERPRINT_LANES 64-bit states, lane l mixing the chunk's 8-byte words l, l + LANES,
 * l + 2 LANES, ... in order (the last step's padded with zero bytes) from a start that holds
 * the chunk's length, two words a step: state -> rotl(state ^ word, 29) * odd constant +
 * next word. A step is a bijection of the state for given words, and of either word for a
 * given state and other word, so a chunk whose words differ in at most one word per lane
 * always has another fingerprint; for more changes in one lane the states meet again only
 * by a 64-bit coincidence (2^-64 for changes unrelated to the mixing). The lanes are
 * independent chains, which the compiler vectorizes (64-bit products: vpmullq on AVX-512):
 * one core fingerprints 80 GB/s from its L2 on AVX-512, 33 GB/s with AVX2 (the AVX-512
 * Xeon), about the speed at which the weights come from the shared cache.
 */
#ifndef CNN_FINGERPRINT_H
#define CNN_FINGERPRINT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define CNN_FINGERPRINT_LANES 64
#define CNN_FINGERPRINT_CHUNK 32768 /* bytes */

static inline uint64_t cnn_fingerprint_mix(uint64_t state, uint64_t word, uint64_t next)
{
    uint64_t x = state ^ word;
    return ((x << 29) | (x >> 35)) * UINT64_C(0x9E3779B97F4A7C15) + next;
}

/* state[0, LANES) = the fingerprint of bytes[0, n), n <= CNN_FINGERPRINT_CHUNK. */
static inline void cnn_fingerprint_chunk(const char *bytes, ptrdiff_t n, uint64_t *state)
{
    enum { STEP = CNN_FINGERPRINT_LANES * 16 };
    uint64_t s[CNN_FINGERPRINT_LANES], words[2 * CNN_FINGERPRINT_LANES];
    ptrdiff_t i = 0;
    int l;
    for (l = 0; l < CNN_FINGERPRINT_LANES; l++)
        s[l] = (uint64_t)n * CNN_FINGERPRINT_LANES + (uint64_t)l;
    for (; i + STEP <= n; i += STEP) {
        memcpy(words, bytes + i, STEP);
        for (l = 0; l < CNN_FINGERPRINT_LANES; l++)
            s[l] = cnn_fingerprint_mix(s[l], words[l], words[CNN_FINGERPRINT_LANES + l]);
    }
    if (i < n) {
        memset(words, 0, STEP);
        memcpy(words, bytes + i, (size_t)(n - i));
        for (l = 0; l < CNN_FINGERPRINT_LANES; l++)
            s[l] = cnn_fingerprint_mix(s[l], words[l], words[CNN_FINGERPRINT_LANES + l]);
    }
    memcpy(state, s, sizeof s);
}

/* For the chunks [first, last) of bytes[0, size): with `compare` zero, writes their
 * fingerprints to kept (LANES states a chunk, chunk c at kept + c * LANES) and returns 0; else
 * returns how many of them differ from those in kept. */
static inline ptrdiff_t cnn_fingerprint_chunks(const char *bytes, ptrdiff_t size, uint64_t *kept,
                                               int compare, ptrdiff_t first, ptrdiff_t last)
{
    uint64_t state[CNN_FINGERPRINT_LANES];
    ptrdiff_t c, begin, differing = 0;
    for (c = first; c < last; c++) {
        begin = c * CNN_FINGERPRINT_CHUNK;
        cnn_fingerprint_chunk(bytes + begin,
                              size - begin < CNN_FINGERPRINT_CHUNK ? size - begin
                                                                   : CNN_FINGERPRINT_CHUNK,
                              compare ? state : kept + c * CNN_FINGERPRINT_LANES);
        if (compare)
            differing += memcmp(state, kept + c * CNN_FINGERPRINT_LANES, sizeof state) != 0;
    }
    return differing;
}

#endif
