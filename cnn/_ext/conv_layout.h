/* The constants of the convolution kernels' data layout, in one place.
 *
 * The register tiles (conv_tile.h), the sparse backward steps (conv_scatter.h) and the plan that
 * sizes every buffer (conv.pyx, which reads these names through `cdef extern`) all follow them;
 * nothing else repeats their values.
 */
#ifndef CNN_CONV_LAYOUT_H
#define CNN_CONV_LAYOUT_H

/* Output channels per register tile: a layer's channels are zero-padded to whole tiles. Layers
 * with at most CNN_NARROW_BLOCK channels use the narrow tile, the others CNN_BLOCK-wide tiles. */
#define CNN_BLOCK 16
#define CNN_NARROW_BLOCK 8

/* Lanes (output pixels, or taps for the weight gradient) per tile. Each lane is one chain of
 * multiply-adds per register of channels, and a core keeps its two vector units busy only with
 * about 8 independent chains (each waits ~4 cycles for the previous one). The narrow tile has
 * CNN_WIDE_PIXELS lanes of one register; the wide tile has CNN_BLOCK_LANES: where a block is
 * one register (AVX-512) that is 8 lanes, where it takes two or more (AVX2, SSE2) 4 lanes
 * already make 8 chains or more, and 16 registers would not hold more. A 2x2 pooling window
 * is CNN_PIXELS lanes, so a tile of 8 lanes holds two windows. */
#define CNN_PIXELS 4
#define CNN_WIDE_PIXELS 8
#if defined(__AVX512F__)
#define CNN_BLOCK_LANES 8
#else
#define CNN_BLOCK_LANES 4
#endif
#define CNN_MAX_LANES 8 /* the most lanes of any tile: the size of lane buffers */

/* The forward's paired tile: two CNN_BLOCK blocks of output channels at once, for float32
 * layers whose padded channels are a multiple of CNN_PAIR_BLOCK, where a block is one register
 * (AVX-512). Each tap's input value, one broadcast load, then feeds two multiply-adds instead
 * of one: the single-block tile issues a load for every multiply-add and, on a core with two
 * 512-bit FMA units, waits for its loads (its inner loop measured at 53 GMAC/s a core, the
 * paired one at 73, of a peak of 106; 64 -> 64 channels, 3x3, 8x8 pixels). With two or more
 * registers a block (AVX2, SSE2, float64) the pair would not fit in the registers. */
#define CNN_PAIR_BLOCK 32
#if defined(__AVX512F__)
#define CNN_PAIR_TILES 1
#else
#define CNN_PAIR_TILES 0
#endif

/* Width of a weight segment: 8 consecutive input positions of one (channel, kernel row), the
 * unit of the input gradient's scatter and the few-channel weight gradient's gather. Every
 * padded image keeps this many readable elements past its end, for a last segment that runs
 * over. */
#define CNN_SEGMENT 8
/* Segments are summed CNN_SEGMENT_GROUP at a time in registers, so a layer's segment count is
 * rounded up to a multiple of it (with all-zero segments). */
#define CNN_SEGMENT_GROUP 8

/* The weight gradient sums the images in about this many fixed blocks, each into its own
 * buffer, then adds the buffers in order: the split depends on the batch size only, never on
 * the thread count (bit-identical results at any thread count), and is fine enough for two
 * threads to share even a batch of 10 evenly. */
#define CNN_WEIGHT_GRAD_BLOCKS 16

#endif
