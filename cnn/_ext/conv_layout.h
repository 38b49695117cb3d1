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

/* Lanes (output pixels, or taps for the weight gradient) per tile: CNN_PIXELS for the wide
 * tile, CNN_WIDE_PIXELS for the narrow one (twice the independent multiply-add chains). A 2x2
 * pooling window is CNN_PIXELS lanes, so a narrow tile holds two windows. */
#define CNN_PIXELS 4
#define CNN_WIDE_PIXELS 8

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
