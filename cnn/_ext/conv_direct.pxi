# Direct 2-D convolution (groups = 1) for layers with few channels: forward (optionally fused
# with ReLU and a 2x2 max-pool) and the backward pass (weight, bias and input gradients in one
# pass over the images, from the convolution's gradient or straight from the pooled one).
# Included by conv.pyx, whose ConvPlan lays out every table and buffer these loops read. Layers
# the register tile serves badly (at most 8 output channels, or few taps and wide rows) run along
# output rows instead (conv_rows.h: _conv_relu_pool_rows, _conv_rows_forward; ConvPlan says when).
#
# Why not im2col + GEMM here: with 1 to 64 input channels the column matrix is 10-25x larger than
# the input, so a GEMM over it is limited by memory, and the GEMM itself is small and skinny.
# These loops read the padded input where it is and keep partial sums in registers: the register
# tile is in conv_tile.h (CNN_PIXELS output pixels x CNN_BLOCK output channels).
#
# Layouts. Inputs and outputs are C-contiguous NCHW. The plan repacks weights block of output
# channels by block (_forward_block's): the block from channel fb starts at wt + fb * n_taps and
# holds row `tap` of its channels' weights at tap * block, tap = (c*KH + i)*KW + j, channels
# zero-padded to whole tiles; and it gives every tap's offset from a window origin inside a
# padded image (`taps`).
#
# Backward. Behind a ReLU and a max-pool most of the convolution's gradient is zero, so the
# backward pass works on the active pixels only: it lays each image's gradient out pixel-major,
# compacts the pixels holding a non-zero value (conv_scatter.h), runs the register tile over them
# for the weight gradient, sums them for the bias, and scatters their values back through the
# weights for the input gradient. Layers with many input channels get their input gradient from
# the plan instead, as a dense forward convolution of the dilated gradient.
#
# Threads take whole images (forward) or fixed blocks of images (backward: each block sums into
# its own slot of `partial`, and the plan adds the slots in block order), so results are
# bit-identical for any thread count. Scheduling is dynamic: when another process holds a core,
# the other thread takes the remaining images instead of waiting for a slowed one. A batch
# smaller than the team (batch 1) is cut into one static share per thread instead, each with
# its own copy of the padded image and the packed weights (_share_of_image says why).
#
# Every function here trusts its arguments: only ConvPlan calls them, after checking the arrays
# against the geometry it was built for.

cdef extern from "conv_tile.h" nogil:
    # 16- and 8-channel tiles (see conv_tile.h); the f32/f64 names differ only in the type.
    void cnn_conv_tile16_f32(const float* image, const Py_ssize_t* lanes, const Py_ssize_t* taps,
                             Py_ssize_t n_taps, const float* wt, Py_ssize_t w_stride,
                             const float* init, Py_ssize_t init_stride, float* out,
                             Py_ssize_t out_stride)
    void cnn_conv_tile8_f32(const float* image, const Py_ssize_t* lanes, const Py_ssize_t* taps,
                            Py_ssize_t n_taps, const float* wt, Py_ssize_t w_stride,
                            const float* init, Py_ssize_t init_stride, float* out,
                            Py_ssize_t out_stride)
    void cnn_conv_tile16_f64(const double* image, const Py_ssize_t* lanes,
                             const Py_ssize_t* taps, Py_ssize_t n_taps, const double* wt,
                             Py_ssize_t w_stride, const double* init, Py_ssize_t init_stride,
                             double* out, Py_ssize_t out_stride)
    void cnn_conv_tile8_f64(const double* image, const Py_ssize_t* lanes,
                            const Py_ssize_t* taps, Py_ssize_t n_taps, const double* wt,
                            Py_ssize_t w_stride, const double* init, Py_ssize_t init_stride,
                            double* out, Py_ssize_t out_stride)
    # The paired tile: two blocks' sub-tiles, one after the other (CNN_PAIR_TILES builds only).
    void cnn_conv_tile32_f32(const float* image, const Py_ssize_t* lanes, const Py_ssize_t* taps,
                             Py_ssize_t n_taps, const float* wt, Py_ssize_t w_stride,
                             const float* init, Py_ssize_t init_stride, float* out,
                             Py_ssize_t out_stride)
    # The weight gradient's tile, out of line (conv_tile.h says why): sums are its init and out.
    void cnn_weight_grad_tile_f32(const float* image, const Py_ssize_t* lanes,
                                  const Py_ssize_t* pixels, Py_ssize_t n_pixels,
                                  const float* grad, Py_ssize_t stride, float* sums,
                                  Py_ssize_t block)
    void cnn_weight_grad_tile_f64(const double* image, const Py_ssize_t* lanes,
                                  const Py_ssize_t* pixels, Py_ssize_t n_pixels,
                                  const double* grad, Py_ssize_t stride, double* sums,
                                  Py_ssize_t block)
    void cnn_tile_epilogue16_f32(float* tile, Py_ssize_t lanes, const float* mean,
                                 const float* scale, const float* shift, int relu)
    void cnn_tile_epilogue8_f32(float* tile, Py_ssize_t lanes, const float* mean,
                                const float* scale, const float* shift, int relu)
    void cnn_tile_epilogue16_f64(double* tile, Py_ssize_t lanes, const double* mean,
                                 const double* scale, const double* shift, int relu)
    void cnn_tile_epilogue8_f64(double* tile, Py_ssize_t lanes, const double* mean,
                                const double* scale, const double* shift, int relu)
    void cnn_tile_store_f32(const float* tile, Py_ssize_t lanes, Py_ssize_t channels,
                            float* out, Py_ssize_t plane)
    void cnn_tile_store_f64(const double* tile, Py_ssize_t lanes, Py_ssize_t channels,
                            double* out, Py_ssize_t plane)
    void cnn_relu_max16_f32(const float* tile, float* best, int* which)
    void cnn_relu_max8_f32(const float* tile, float* best, int* which)
    void cnn_relu_max16_f64(const double* tile, double* best, long long* which)
    void cnn_relu_max8_f64(const double* tile, double* best, long long* which)


cdef extern from "conv_scatter.h" nogil:
    # See conv_scatter.h; the f32/f64 names differ only in the type.
    Py_ssize_t cnn_compact_rows_f32(float* rows, Py_ssize_t n_pixels, Py_ssize_t width,
                                    const Py_ssize_t* origins, Py_ssize_t* active)
    Py_ssize_t cnn_compact_rows_f64(double* rows, Py_ssize_t n_pixels, Py_ssize_t width,
                                    const Py_ssize_t* origins, Py_ssize_t* active)
    void cnn_scatter_segments_f32(float* window, const Py_ssize_t* offsets,
                                  Py_ssize_t n_segments, const float* weights,
                                  const float* values, const Py_ssize_t* channels, Py_ssize_t n)
    void cnn_scatter_segments_f64(double* window, const Py_ssize_t* offsets,
                                  Py_ssize_t n_segments, const double* weights,
                                  const double* values, const Py_ssize_t* channels,
                                  Py_ssize_t n)
    void cnn_gather_segments_f32(float* sums, const float* image, const Py_ssize_t* offsets,
                                 Py_ssize_t n_segments, const Py_ssize_t* origins,
                                 const float* values, Py_ssize_t n)
    void cnn_gather_segments_f64(double* sums, const double* image, const Py_ssize_t* offsets,
                                 Py_ssize_t n_segments, const Py_ssize_t* origins,
                                 const double* values, Py_ssize_t n)
    void cnn_add_rows_f32(float* sums, const float* rows, Py_ssize_t n, Py_ssize_t width)
    void cnn_add_rows_f64(double* sums, const double* rows, Py_ssize_t n, Py_ssize_t width)


cdef extern from "conv_pad.h" nogil:
    void cnn_copy_values_f32(float* to, const float* values, Py_ssize_t n)
    void cnn_copy_values_f64(double* to, const double* values, Py_ssize_t n)


cdef extern from "conv_rows.h" nogil:
    # See conv_rows.h; the f32/f64 names differ only in the type.
    enum:
        CNN_REGISTER_BYTES
    Py_ssize_t cnn_pool_row_groups(Py_ssize_t channels)
    Py_ssize_t cnn_conv_rows_groups(Py_ssize_t channels)
    void cnn_conv_pool_units_f32(const float* padded, Py_ssize_t C, Py_ssize_t rows,
                                 Py_ssize_t span, Py_ssize_t KH, Py_ssize_t KW,
                                 const float* weight, const float* bias, Py_ssize_t F,
                                 Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t conv_w, float* pooled,
                                 int64_t* indices, Py_ssize_t first, Py_ssize_t last)
    void cnn_conv_pool_units_f64(const double* padded, Py_ssize_t C, Py_ssize_t rows,
                                 Py_ssize_t span, Py_ssize_t KH, Py_ssize_t KW,
                                 const double* weight, const double* bias, Py_ssize_t F,
                                 Py_ssize_t PH, Py_ssize_t PW, Py_ssize_t conv_w,
                                 double* pooled, int64_t* indices, Py_ssize_t first,
                                 Py_ssize_t last)
    void cnn_conv_rows_units_f32(const float* padded, Py_ssize_t C, Py_ssize_t rows,
                                 Py_ssize_t span, Py_ssize_t KH, Py_ssize_t KW,
                                 const float* weight, const float* bias, const float* affine,
                                 Py_ssize_t f_padded, int relu, float* out, Py_ssize_t F,
                                 Py_ssize_t OH, Py_ssize_t OW, Py_ssize_t first,
                                 Py_ssize_t last)
    void cnn_conv_rows_units_f64(const double* padded, Py_ssize_t C, Py_ssize_t rows,
                                 Py_ssize_t span, Py_ssize_t KH, Py_ssize_t KW,
                                 const double* weight, const double* bias,
                                 const double* affine, Py_ssize_t f_padded, int relu,
                                 double* out, Py_ssize_t F, Py_ssize_t OH, Py_ssize_t OW,
                                 Py_ssize_t first, Py_ssize_t last)


cdef inline Py_ssize_t _block(Py_ssize_t f_padded) noexcept nogil:
    """Channels per tile: the narrow tile's when the layer's channels fit in it, else CNN_BLOCK."""
    return CNN_NARROW_BLOCK if f_padded == CNN_NARROW_BLOCK else CNN_BLOCK


cdef inline Py_ssize_t _forward_block(Py_ssize_t f_padded, bint single) noexcept nogil:
    """Channels per tile of the forward: the paired tile's where the build has it and the
    layer's padded channels are whole pairs (float32, `single`), else _block's."""
    if CNN_PAIR_TILES and single and f_padded % CNN_PAIR_BLOCK == 0:
        return CNN_PAIR_BLOCK
    return _block(f_padded)


cdef inline Py_ssize_t _sub_block(Py_ssize_t block) noexcept nogil:
    """Channels per sub-tile of a tile of `block` channels: the paired tile is two blocks'
    tiles, one after the other (conv_tile.h's CNN_BLOCK_ROWS); the others are one."""
    return CNN_BLOCK if block == CNN_PAIR_BLOCK else block


cdef inline Py_ssize_t _lanes(Py_ssize_t block) noexcept nogil:
    """Lanes (pixels, or taps for the weight gradient) per tile of `block` channels."""
    return CNN_WIDE_PIXELS if block == CNN_NARROW_BLOCK else CNN_BLOCK_LANES


cdef inline void _tile(const floating* image, const Py_ssize_t* lanes, const Py_ssize_t* taps,
                       Py_ssize_t n_taps, const floating* wt, Py_ssize_t w_stride,
                       const floating* init, Py_ssize_t init_stride, floating* out,
                       Py_ssize_t out_stride, Py_ssize_t block) noexcept nogil:
    if floating is float:
        if block == CNN_NARROW_BLOCK:
            cnn_conv_tile8_f32(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                               out, out_stride)
        elif block == CNN_PAIR_BLOCK:
            cnn_conv_tile32_f32(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                                out, out_stride)
        else:
            cnn_conv_tile16_f32(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                                out, out_stride)
    else:
        if block == CNN_NARROW_BLOCK:
            cnn_conv_tile8_f64(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                               out, out_stride)
        else:
            cnn_conv_tile16_f64(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                                out, out_stride)


cdef inline void _epilogue(floating* tile, Py_ssize_t lanes, const floating* affine,
                           Py_ssize_t fb, Py_ssize_t f_padded, bint relu,
                           Py_ssize_t block) noexcept nogil:
    """A batch norm's affine map (affine: NULL, or the mean, scale and shift rows of f_padded
    values) and ReLU on a tile's first `lanes` lanes, whose channels start at fb."""
    cdef const floating* mean = NULL
    cdef const floating* scale = NULL
    cdef const floating* shift = NULL
    if affine == NULL and not relu:
        return
    if affine != NULL:
        mean = &affine[fb]
        scale = &affine[f_padded + fb]
        shift = &affine[2 * f_padded + fb]
    if floating is float:
        if block == CNN_NARROW_BLOCK:
            cnn_tile_epilogue8_f32(tile, lanes, mean, scale, shift, relu)
        else:
            cnn_tile_epilogue16_f32(tile, lanes, mean, scale, shift, relu)
    else:
        if block == CNN_NARROW_BLOCK:
            cnn_tile_epilogue8_f64(tile, lanes, mean, scale, shift, relu)
        else:
            cnn_tile_epilogue16_f64(tile, lanes, mean, scale, shift, relu)


cdef inline void _relu_max(const floating* tile, floating* best, long long* which,
                           Py_ssize_t block) noexcept nogil:
    """best[f], which[f]: ReLU'd maximum over the tile's lanes and the lane holding it."""
    cdef int which32[CNN_BLOCK]
    cdef Py_ssize_t f
    if floating is float:
        if block == CNN_NARROW_BLOCK:
            cnn_relu_max8_f32(tile, best, which32)
        else:
            cnn_relu_max16_f32(tile, best, which32)
        for f in range(block):
            which[f] = which32[f]
    else:
        if block == CNN_NARROW_BLOCK:
            cnn_relu_max8_f64(tile, best, which)
        else:
            cnn_relu_max16_f64(tile, best, which)


cdef void _pad_image(const floating[:, :, ::1] x, floating* padded, Py_ssize_t ph,
                     Py_ssize_t pw) noexcept nogil:
    """Copy image x (C, H, W) into `padded` (C, H + 2ph, W + 2pw) with a zero border."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t hp = H + 2 * ph, wp = W + 2 * pw, c, y, xx
    memset(padded, 0, C * hp * wp * sizeof(floating))
    for c in range(C):
        for y in range(H):
            for xx in range(W):
                padded[(c * hp + y + ph) * wp + xx + pw] = x[c, y, xx]


cdef void _pad_image_rows(const floating[:, :, ::1] x, floating* padded, Py_ssize_t ph,
                          Py_ssize_t pw, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """Rows first..last-1 of every channel of _pad_image's result, the other rows untouched:
    what one thread's share of a batch-1 layer reads (_rows_of_share). Each channel's rows
    are zeroed by one memset, then the image's rows copied over them inline (conv_pad.h):
    a memset, memcpy and memset call for each row had taken 5 of a 32 -> 64 layer's 12 us
    at 16 x 16, stride 2, two threads (Zen 5 EPYC; 9.4 us with one memset a channel)."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2]
    cdef Py_ssize_t hp = H + 2 * ph, wp = W + 2 * pw, c, r
    cdef Py_ssize_t inside_first = max(first, ph), inside_last = min(last, ph + H)
    if last <= first:
        return
    for c in range(C):
        memset(padded + (c * hp + first) * wp, 0, (last - first) * wp * sizeof(floating))
        for r in range(inside_first, inside_last):
            if floating is float:
                cnn_copy_values_f32(padded + (c * hp + r) * wp + pw, &x[c, r - ph, 0], W)
            else:
                cnn_copy_values_f64(padded + (c * hp + r) * wp + pw, &x[c, r - ph, 0], W)


cdef inline void _rows_of_share(const Py_ssize_t* origins, const Py_ssize_t* taps,
                                Py_ssize_t n_taps, Py_ssize_t n_pixels, Py_ssize_t per_block,
                                Py_ssize_t L, Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t first,
                                Py_ssize_t last, Py_ssize_t* row_first,
                                Py_ssize_t* row_last) noexcept nogil:
    """The rows of the padded image that tiles first..last-1 (_forward_image's count) read:
    from the row of their first pixel's window origin to the last row of their last pixel's
    window, where the tiles lie in one block of channels; all hp rows otherwise. (Counting
    the tiles pixel by pixel, each share's rows of a layer of two blocks or more, measured
    slower: each thread then read every block's weights, ResNet-8's 64 -> 64 layer 31 -> 34
    us.)"""
    cdef Py_ssize_t p_first, p_last
    row_first[0], row_last[0] = 0, hp
    if n_taps == 0 or first // per_block != (last - 1) // per_block:
        return
    p_first = first % per_block * L
    p_last = min(n_pixels, ((last - 1) % per_block + 1) * L) - 1
    row_first[0] = origins[p_first] // wp
    # taps are (c * hp + i * dh) * wp + j * dw: the last one's row in its channel is the
    # window's last row
    row_last[0] = min(hp, origins[p_last] // wp + taps[n_taps - 1] // wp % hp + 1)


cdef inline const floating* _tile_input(const floating[:, :, :, ::1] x, Py_ssize_t n,
                                       floating* padded, Py_ssize_t ph,
                                       Py_ssize_t pw) noexcept nogil:
    """Image n of x as the register tile reads it: padded into `padded`, or without padding
    the image itself (the tile reads no value past it; copying it cost ResNet-8's strided 1x1
    shortcut, which reads a quarter of its input, more than its arithmetic)."""
    if ph == 0 and pw == 0:
        return &x[n, 0, 0, 0]
    _pad_image(x[n], padded, ph, pw)
    return padded


cdef inline bint _share_of_image(Py_ssize_t t, Py_ssize_t threads, Py_ssize_t N, Py_ssize_t n,
                                 Py_ssize_t parts, Py_ssize_t work, Py_ssize_t* first,
                                 Py_ssize_t* last) noexcept nogil:
    """A batch smaller than the team (parts > 1: see ConvPlan) is cut into N * parts items,
    each image's `work` units in `parts` ranges, and share t of `threads` is a run of them:
    whether that share holds any of image n's units, and which (first..last-1, the union of
    its consecutive ranges, so each value is still one unit's and the bits do not depend on
    the cut). Each share pads its images into its own scratch row: when one thread padded
    an image that the others read, its rows were in their caches at the next call, and
    writing them again (invalidations across cores) took longer than a batch-1 layer's
    arithmetic (a 74 KB image: 14 us, the layer 29 us)."""
    cdef Py_ssize_t items = N * parts
    cdef Py_ssize_t begin = max(items * t // threads, n * parts) - n * parts
    cdef Py_ssize_t end = min(items * (t + 1) // threads, (n + 1) * parts) - n * parts
    if begin >= end:
        return False
    first[0] = work * begin // parts
    last[0] = work * end // parts
    return True


cdef void _forward_image(const floating* padded, const Py_ssize_t* origins,
                         const Py_ssize_t* taps, Py_ssize_t n_taps, const floating* wt,
                         Py_ssize_t f_padded, const floating* bias, const floating* affine,
                         const floating* residual, floating* out, Py_ssize_t F,
                         Py_ssize_t n_pixels, const Py_ssize_t* placements, Py_ssize_t plane,
                         bint relu, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """One image's output channels, a tile of L pixels at a time: its tiles first..last-1,
    counted block of channels by block (_forward_block). Pixel p of channel f goes to
    out[f * plane + p], or with `placements` (not NULL) to out[f * plane + placements[p]] (an
    input gradient's phase written straight into its strided places).
    Tiles run on across the ends of output rows (each lane is any pixel's window origin), so
    only a block's last tile is partial. `affine` (NULL, or 3 rows of f_padded: mean, scale,
    shift) applies a batch norm in evaluation mode to each value, then `residual` (NULL, or
    an image laid out as out; not with placements) is added, before the ReLU."""
    cdef Py_ssize_t k, fb, i, t, p0, q, f, n_pix, s, fs
    cdef Py_ssize_t block = _forward_block(f_padded, floating is float), L = _lanes(block)
    cdef Py_ssize_t sub = _sub_block(block), per_block = (n_pixels + L - 1) // L
    cdef Py_ssize_t lanes[CNN_MAX_LANES]
    cdef floating tile[CNN_MAX_LANES * CNN_PAIR_BLOCK]
    cdef floating* part
    for t in range(first, last):
        k, i = t // per_block, t % per_block
        fb = k * block
        p0 = i * L
        n_pix = min(L, n_pixels - p0)
        for q in range(L):
            # Lanes past the last pixel repeat pixel p0: computed, never stored.
            lanes[q] = origins[p0 + (q if q < n_pix else 0)]
        _tile(padded, lanes, taps, n_taps, wt + fb * n_taps, block, bias + fb, 0, tile,
              CNN_BLOCK, block)
        for s in range(block // sub):  # each sub-tile: `sub` channels from fs
            fs = fb + s * sub  # below F: a pair's padding is less than one block
            part = tile + s * L * CNN_BLOCK
            _epilogue(part, n_pix, affine, fs, f_padded, relu and residual == NULL, sub)
            if placements != NULL:
                for f in range(min(sub, F - fs)):
                    for q in range(n_pix):
                        out[(fs + f) * plane + placements[p0 + q]] = part[q * CNN_BLOCK + f]
                continue
            if floating is float:
                cnn_tile_store_f32(part, n_pix, min(sub, F - fs), out + fs * plane + p0, plane)
            else:
                cnn_tile_store_f64(part, n_pix, min(sub, F - fs), out + fs * plane + p0, plane)
            if residual != NULL:
                for f in range(fs, min(fs + sub, F)):
                    _add_residual(out + f * plane + p0, residual + f * plane + p0, n_pix, relu)


cdef void _forward_pool_image(const floating* padded, const Py_ssize_t* origins,
                              const Py_ssize_t* taps, Py_ssize_t n_taps, const floating* wt,
                              Py_ssize_t f_padded, const floating* bias,
                              floating[:, :, ::1] pooled, int64_t* indices_flat,
                              Py_ssize_t conv_w, Py_ssize_t first,
                              Py_ssize_t last) noexcept nogil:
    """Conv + bias + ReLU + 2x2/2 max-pool, the image's tiles first..last-1 (counted block of
    channels by block, _forward_block): every CNN_PIXELS lanes of a tile are one pooling
    window, in row-major order, so the first maximum (or a NaN) wins exactly as in
    max_pool2d. A tile of 8 lanes holds two windows, running on across the ends of pooled rows
    (a last window that would be alone repeats: computed, not stored)."""
    cdef Py_ssize_t F = pooled.shape[0], pw_out = pooled.shape[2]
    cdef Py_ssize_t n_windows = pooled.shape[1] * pw_out
    cdef Py_ssize_t k, fb, i, t, w0, q, f, w, y0, x0, window_count, s, fs
    cdef Py_ssize_t block = _forward_block(f_padded, floating is float), sub = _sub_block(block)
    cdef Py_ssize_t L = _lanes(block), per_tile = L // CNN_PIXELS
    cdef Py_ssize_t per_block = (n_windows + per_tile - 1) // per_tile
    cdef Py_ssize_t lanes[CNN_MAX_LANES]
    cdef Py_ssize_t window[CNN_MAX_LANES]
    cdef floating tile[CNN_MAX_LANES * CNN_PAIR_BLOCK]
    cdef floating best[CNN_BLOCK]
    cdef long long which[CNN_BLOCK]
    cdef floating* pooled_flat = &pooled[0, 0, 0]  # the caller skips empty planes
    for t in range(first, last):
        k, i = t // per_block, t % per_block
        fb = k * block
        w0 = i * per_tile
        window_count = min(per_tile, n_windows - w0)
        for w in range(per_tile):
            # Window w0 + w is pooled pixel (y0 / 2, x0 / 2): conv pixels (y0 + a, x0 + b).
            y0 = 2 * ((w0 + (w if w < window_count else 0)) // pw_out)
            x0 = 2 * ((w0 + (w if w < window_count else 0)) % pw_out)
            for q in range(CNN_PIXELS):
                window[w * CNN_PIXELS + q] = (y0 + q // 2) * conv_w + x0 + q % 2
                lanes[w * CNN_PIXELS + q] = origins[window[w * CNN_PIXELS + q]]
        _tile(padded, lanes, taps, n_taps, wt + fb * n_taps, block, bias + fb, 0, tile,
              CNN_BLOCK, block)
        for s in range(block // sub):  # each sub-tile: `sub` channels from fs
            fs = fb + s * sub
            for w in range(window_count):
                _relu_max(tile + (s * L + w * CNN_PIXELS) * CNN_BLOCK, best, which, sub)
                for f in range(min(sub, F - fs)):
                    pooled_flat[(fs + f) * n_windows + w0 + w] = best[f]
                    if indices_flat != NULL:
                        indices_flat[(fs + f) * n_windows + w0 + w] = (
                            window[w * CNN_PIXELS + which[f]])


cdef inline void _pad_forward_image(const floating[:, :, :, ::1] x, Py_ssize_t n,
                                    floating* padded, const floating[:, ::1] wt,
                                    const floating[::1] bias, const Py_ssize_t[::1] taps,
                                    const Py_ssize_t[::1] origins,
                                    const floating* coefficients,
                                    const floating[:, :, :, ::1] residual,
                                    floating[:, :, :, ::1] out, Py_ssize_t ph, Py_ssize_t pw,
                                    const Py_ssize_t* places, bint relu,
                                    Py_ssize_t tiles) noexcept nogil:
    """Image n of _conv_forward (parts = 1): padded into `padded` (_tile_input), then all its
    tiles."""
    _forward_image(_tile_input(x, n, padded, ph, pw), &origins[0], &taps[0], taps.shape[0],
                   &wt[0, 0], wt.shape[1], &bias[0], coefficients, _image_of(residual, n),
                   &out[n, 0, 0, 0], out.shape[1], origins.shape[0], places,
                   out.shape[2] * out.shape[3], relu, 0, tiles)


cdef inline const floating* _image_of(const floating[:, :, :, ::1] images,
                                      Py_ssize_t n) noexcept nogil:
    """Image n of `images`, or NULL when there are none (None)."""
    cdef const floating* image = NULL
    if images is not None:
        image = &images[n, 0, 0, 0]
    return image


cdef void _conv_forward(const floating[:, :, :, ::1] x,  # IN  (N, C, H, W)
                        const floating[:, ::1] wt,      # IN  (C*KH*KW, F_padded), the weight
                                                        # repacked (_pack: block by block)
                        const floating[::1] bias,       # IN  (F_padded,), zeros where no bias
                        const Py_ssize_t[::1] taps,     # IN  (C*KH*KW,) tap offsets, padded image
                        const Py_ssize_t[::1] origins,  # IN  (OH*OW,) window origins
                        const floating[:, ::1] affine,  # IN  (3, F_padded) or None
                        floating[:, :, :, ::1] out,     # OUT (N, F, OH, OW)
                        floating[:, ::1] scratch,       # (threads, C*(H+2PH)*(W+2PW))
                        Py_ssize_t ph, Py_ssize_t pw, bint relu, Py_ssize_t parts,
                        int num_threads,
                        const Py_ssize_t[::1] placements=None,  # IN (len(origins),) or None
                        const floating[:, :, :, ::1] residual=None):  # IN like out, or None
    """out = conv(x, w) + bias, then a batch norm's affine map (`affine`: mean, scale, shift by
    channel), a residual (added, as AddReLU adds) and max(., 0) when asked. With
    `placements`, out is a larger plane (an input gradient, N, F, H, W) and output pixel p
    goes to its place placements[p] in it (and no residual is given). With
    `parts` > 1 (a batch smaller than the team: see ConvPlan), each image's tiles are cut
    into `parts` ranges that the threads share (_share_of_image); either way each value is
    one tile's, so the bits do not depend on the split."""
    cdef Py_ssize_t n, t, N = x.shape[0], F = out.shape[1]
    cdef Py_ssize_t block = _forward_block(wt.shape[1], floating is float)
    cdef const Py_ssize_t* places = NULL
    cdef Py_ssize_t L = _lanes(block), per_block = (origins.shape[0] + L - 1) // L
    cdef Py_ssize_t tiles = wt.shape[1] // block * per_block
    cdef const floating* coefficients = NULL if affine is None else &affine[0, 0]
    if F == 0 or N == 0:
        return
    if placements is not None:
        places = &placements[0]
    if parts == 1:
        with nogil:
            if _serial(num_threads, N):
                _conv_forward_share(x, wt, bias, taps, origins, coefficients, out, scratch, ph,
                                    pw, relu, 1, 1, 0, places, residual)
            else:
                for n in prange(N, schedule="dynamic", num_threads=num_threads):
                    _pad_forward_image(x, n, &scratch[threadid(), 0], wt, bias, taps, origins,
                                       coefficients, residual, out, ph, pw, places, relu,
                                       tiles)
        return
    with nogil:
        for t in prange(num_threads, schedule="static", num_threads=num_threads):
            _conv_forward_share(x, wt, bias, taps, origins, coefficients, out, scratch, ph, pw,
                                relu, parts, num_threads, t, places, residual)


cdef void _conv_forward_share(const floating[:, :, :, ::1] x, const floating[:, ::1] wt,
                              const floating[::1] bias, const Py_ssize_t[::1] taps,
                              const Py_ssize_t[::1] origins, const floating* coefficients,
                              floating[:, :, :, ::1] out, floating[:, ::1] scratch,
                              Py_ssize_t ph, Py_ssize_t pw, bint relu, Py_ssize_t parts,
                              Py_ssize_t team, Py_ssize_t t, const Py_ssize_t* places,
                              const floating[:, :, :, ::1] residual) noexcept nogil:
    """Share t of _conv_forward's work on a team of `team` threads, in scratch row t: with
    `parts` > 1 its ranges of each image's tiles (_share_of_image), else the images t,
    t + team, ... (which the kernel hands out as the threads come, the same values)."""
    cdef Py_ssize_t n, first, last, N = x.shape[0], F = out.shape[1]
    cdef Py_ssize_t n_pixels = origins.shape[0], n_taps = taps.shape[0]
    cdef Py_ssize_t block = _forward_block(wt.shape[1], floating is float)
    cdef Py_ssize_t plane = out.shape[2] * out.shape[3]
    cdef Py_ssize_t L = _lanes(block), per_block = (n_pixels + L - 1) // L
    cdef Py_ssize_t tiles = wt.shape[1] // block * per_block
    cdef Py_ssize_t hp = x.shape[2] + 2 * ph, wp = x.shape[3] + 2 * pw, row_first, row_last
    cdef const floating* image
    if parts == 1:
        n = t
        while n < N:
            _pad_forward_image(x, n, &scratch[t, 0], wt, bias, taps, origins, coefficients,
                               residual, out, ph, pw, places, relu, tiles)
            n += team
        return
    for n in range(N):
        first, last = 0, 0
        if _share_of_image(t, team, N, n, parts, tiles, &first, &last):
            image = &x[n, 0, 0, 0]
            row_first, row_last = 0, hp
            if ph != 0 or pw != 0:  # only the rows the share reads (_tile_input)
                _rows_of_share(&origins[0], &taps[0], n_taps, n_pixels, per_block, L, hp, wp,
                               first, last, &row_first, &row_last)
                if row_first == 0 and row_last == hp:
                    _pad_image(x[n], &scratch[t, 0], ph, pw)
                else:
                    _pad_image_rows(x[n], &scratch[t, 0], ph, pw, row_first, row_last)
                image = &scratch[t, 0]
            _forward_image(image, &origins[0], &taps[0], n_taps, &wt[0, 0], wt.shape[1],
                           &bias[0], coefficients, _image_of(residual, n), &out[n, 0, 0, 0], F,
                           n_pixels, places, plane, relu, first, last)


cdef inline void _pad_forward_pool_image(const floating[:, :, :, ::1] x, Py_ssize_t n,
                                         floating* padded, const floating[:, ::1] wt,
                                         const floating[::1] bias, const Py_ssize_t[::1] taps,
                                         const Py_ssize_t[::1] origins,
                                         floating[:, :, :, ::1] pooled,
                                         int64_t[:, :, :, ::1] indices, Py_ssize_t conv_w,
                                         Py_ssize_t ph, Py_ssize_t pw,
                                         Py_ssize_t tiles) noexcept nogil:
    """Image n of _conv_relu_pool_forward (parts = 1): padded into `padded` (_tile_input),
    then all its tiles."""
    _forward_pool_image(_tile_input(x, n, padded, ph, pw), &origins[0], &taps[0],
                        taps.shape[0], &wt[0, 0], wt.shape[1], &bias[0], pooled[n],
                        &indices[n, 0, 0, 0] if indices is not None else NULL, conv_w, 0, tiles)


cdef void _conv_relu_pool_forward(const floating[:, :, :, ::1] x,  # IN  (N, C, H, W)
                                  const floating[:, ::1] wt,      # as _conv_forward's
                                  const floating[::1] bias,       # IN  (F_padded,)
                                  const Py_ssize_t[::1] taps,     # IN  (C*KH*KW,)
                                  floating[:, :, :, ::1] pooled,  # OUT (N, F, OH // 2, OW // 2)
                                  int64_t[:, :, :, ::1] indices,  # OUT (N, F, OH // 2, OW // 2)
                                  const Py_ssize_t[::1] origins,  # IN  (OH*OW,) window origins
                                  floating[:, ::1] scratch,       # (threads, C*Hp*Wp)
                                  Py_ssize_t conv_w, Py_ssize_t ph, Py_ssize_t pw,
                                  Py_ssize_t parts, int num_threads):
    """max_pool2d(relu(conv(x, w) + bias), 2) and (unless `indices` is None) the argmax index
    y*OW + x of every maximum in its conv-output plane, without storing the convolution's
    output (`parts` as in _conv_forward)."""
    cdef Py_ssize_t n, t, N = x.shape[0]
    cdef Py_ssize_t block = _forward_block(wt.shape[1], floating is float)
    cdef Py_ssize_t per_tile = _lanes(block) // CNN_PIXELS
    cdef Py_ssize_t per_block = (pooled.shape[2] * pooled.shape[3] + per_tile - 1) // per_tile
    cdef Py_ssize_t tiles = wt.shape[1] // block * per_block
    if pooled.shape[1] == 0 or N == 0:
        return
    if parts == 1:
        with nogil:
            if _serial(num_threads, N):
                _conv_relu_pool_share(x, wt, bias, taps, pooled, indices, origins, scratch,
                                      conv_w, ph, pw, 1, 1, 0)
            else:
                for n in prange(N, schedule="dynamic", num_threads=num_threads):
                    _pad_forward_pool_image(x, n, &scratch[threadid(), 0], wt, bias, taps,
                                            origins, pooled, indices, conv_w, ph, pw, tiles)
        return
    with nogil:
        for t in prange(num_threads, schedule="static", num_threads=num_threads):
            _conv_relu_pool_share(x, wt, bias, taps, pooled, indices, origins, scratch, conv_w,
                                  ph, pw, parts, num_threads, t)


cdef void _conv_relu_pool_share(const floating[:, :, :, ::1] x, const floating[:, ::1] wt,
                                const floating[::1] bias, const Py_ssize_t[::1] taps,
                                floating[:, :, :, ::1] pooled, int64_t[:, :, :, ::1] indices,
                                const Py_ssize_t[::1] origins, floating[:, ::1] scratch,
                                Py_ssize_t conv_w, Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t parts, Py_ssize_t team,
                                Py_ssize_t t) noexcept nogil:
    """Share t of _conv_relu_pool_forward's work on a team of `team` threads
    (_conv_forward_share's shares)."""
    cdef Py_ssize_t n, first, last, N = x.shape[0]
    cdef Py_ssize_t block = _forward_block(wt.shape[1], floating is float)
    cdef Py_ssize_t per_tile = _lanes(block) // CNN_PIXELS
    cdef Py_ssize_t per_block = (pooled.shape[2] * pooled.shape[3] + per_tile - 1) // per_tile
    cdef Py_ssize_t tiles = wt.shape[1] // block * per_block
    if parts == 1:
        n = t
        while n < N:
            _pad_forward_pool_image(x, n, &scratch[t, 0], wt, bias, taps, origins, pooled,
                                    indices, conv_w, ph, pw, tiles)
            n += team
        return
    for n in range(N):
        first, last = 0, 0
        if _share_of_image(t, team, N, n, parts, tiles, &first, &last):
            _forward_pool_image(_tile_input(x, n, &scratch[t, 0], ph, pw), &origins[0],
                                &taps[0], taps.shape[0], &wt[0, 0], wt.shape[1], &bias[0],
                                pooled[n], &indices[n, 0, 0, 0] if indices is not None else NULL,
                                conv_w, first, last)


cdef inline Py_ssize_t _row_slack(Py_ssize_t kw, Py_ssize_t itemsize) noexcept nogil:
    """Values past a row's end that the row kernels' vector loads may read (conv_rows.h)."""
    return CNN_REGISTER_BYTES // itemsize + kw


cdef void _pool_rows_image(const floating* padded, Py_ssize_t C, Py_ssize_t rows,
                           Py_ssize_t span, Py_ssize_t KH, Py_ssize_t KW,
                           const floating* weight, const floating* bias, floating* pooled,
                           int64_t* indices, Py_ssize_t F, Py_ssize_t PH, Py_ssize_t PW,
                           Py_ssize_t conv_w, Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """One image's pooled rows, units first..last-1: unit u is pooled row u % PH of the u // PH-th
    group of output channels (conv_rows.h)."""
    if floating is float:
        cnn_conv_pool_units_f32(padded, C, rows, span, KH, KW, weight, bias, F, PH, PW, conv_w,
                                pooled, indices, first, last)
    else:
        cnn_conv_pool_units_f64(padded, C, rows, span, KH, KW, weight, bias, F, PH, PW, conv_w,
                                pooled, indices, first, last)


cdef inline void _pad_pool_rows_image(const floating[:, :, :, ::1] x, Py_ssize_t n,
                                      floating* padded, const floating[:, ::1] weight,
                                      const floating[::1] bias, floating[:, :, :, ::1] pooled,
                                      int64_t[:, :, :, ::1] indices, Py_ssize_t KH,
                                      Py_ssize_t KW, Py_ssize_t conv_w, Py_ssize_t ph,
                                      Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp,
                                      Py_ssize_t units) noexcept nogil:
    """Image n of _conv_relu_pool_rows (parts = 1): padded and split into `padded`, then all
    its units."""
    _pad_image_split(x[n], padded, ph, pw, hp, wp)
    _pool_rows_image(padded, x.shape[1], hp, wp, KH, KW, &weight[0, 0], &bias[0],
                     &pooled[n, 0, 0, 0], &indices[n, 0, 0, 0] if indices is not None else NULL,
                     pooled.shape[1], pooled.shape[2], pooled.shape[3], conv_w, 0, units)


cdef void _conv_relu_pool_rows(const floating[:, :, :, ::1] x,  # IN  (N, C, H, W)
                               const floating[:, ::1] weight,  # IN  (F, C*KH*KW), as given
                               const floating[::1] bias,       # IN  (F,), zeros where no bias
                               floating[:, :, :, ::1] pooled,  # OUT (N, F, OH // 2, OW // 2)
                               int64_t[:, :, :, ::1] indices,  # OUT like pooled, or None
                               floating[:, ::1] scratch,       # (threads, see ConvPlan)
                               Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t conv_w, Py_ssize_t ph,
                               Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t parts,
                               int num_threads):
    """_conv_relu_pool_forward's results for a stride-1 layer with few output channels, by
    pooled rows (conv_rows.h) over the image padded to (hp, wp) (wp even) and split
    (_pad_image_split): the same values and indices, bit for bit. Threads take whole images,
    or with `parts` > 1 (a batch smaller than the team) share each image's units (pooled rows
    of channel groups) in `parts` ranges."""
    cdef Py_ssize_t n, t, N = x.shape[0]
    cdef Py_ssize_t F = pooled.shape[1], PH = pooled.shape[2], PW = pooled.shape[3]
    cdef Py_ssize_t units = cnn_pool_row_groups(F) * PH
    if F == 0 or N == 0 or PH == 0 or PW == 0:
        return
    if parts == 1:
        with nogil:
            if _serial(num_threads, N):
                _conv_relu_pool_rows_share(x, weight, bias, pooled, indices, scratch, KH, KW,
                                           conv_w, ph, pw, hp, wp, 1, 1, 0)
            else:
                for n in prange(N, schedule="dynamic", num_threads=num_threads):
                    _pad_pool_rows_image(x, n, &scratch[threadid(), 0], weight, bias, pooled,
                                         indices, KH, KW, conv_w, ph, pw, hp, wp, units)
        return
    with nogil:
        for t in prange(num_threads, schedule="static", num_threads=num_threads):
            _conv_relu_pool_rows_share(x, weight, bias, pooled, indices, scratch, KH, KW,
                                       conv_w, ph, pw, hp, wp, parts, num_threads, t)


cdef void _conv_relu_pool_rows_share(const floating[:, :, :, ::1] x,
                                     const floating[:, ::1] weight, const floating[::1] bias,
                                     floating[:, :, :, ::1] pooled,
                                     int64_t[:, :, :, ::1] indices, floating[:, ::1] scratch,
                                     Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t conv_w,
                                     Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp,
                                     Py_ssize_t parts, Py_ssize_t team,
                                     Py_ssize_t t) noexcept nogil:
    """Share t of _conv_relu_pool_rows's work on a team of `team` threads
    (_conv_forward_share's shares)."""
    cdef Py_ssize_t n, first, last, N = x.shape[0]
    cdef Py_ssize_t F = pooled.shape[1], PH = pooled.shape[2], PW = pooled.shape[3]
    cdef Py_ssize_t units = cnn_pool_row_groups(F) * PH
    if parts == 1:
        n = t
        while n < N:
            _pad_pool_rows_image(x, n, &scratch[t, 0], weight, bias, pooled, indices, KH, KW,
                                 conv_w, ph, pw, hp, wp, units)
            n += team
        return
    for n in range(N):
        first, last = 0, 0
        if _share_of_image(t, team, N, n, parts, units, &first, &last):
            _pad_image_split(x[n], &scratch[t, 0], ph, pw, hp, wp)
            _pool_rows_image(&scratch[t, 0], x.shape[1], hp, wp, KH, KW, &weight[0, 0],
                             &bias[0], &pooled[n, 0, 0, 0],
                             &indices[n, 0, 0, 0] if indices is not None else NULL, F, PH, PW,
                             conv_w, first, last)


cdef void _rows_image(const floating* padded, Py_ssize_t C, Py_ssize_t hp, Py_ssize_t wp,
                      Py_ssize_t KH, Py_ssize_t KW, const floating* weight,
                      const floating* bias, const floating* affine, Py_ssize_t f_padded,
                      bint relu, floating* out, Py_ssize_t F, Py_ssize_t OH, Py_ssize_t OW,
                      Py_ssize_t first, Py_ssize_t last) noexcept nogil:
    """One image's output, units first..last-1: unit u is the pair of rows 2 (u % pairs), + 1
    of the u // pairs-th group of output channels (conv_rows.h)."""
    if floating is float:
        cnn_conv_rows_units_f32(padded, C, hp, wp, KH, KW, weight, bias, affine, f_padded, relu,
                                out, F, OH, OW, first, last)
    else:
        cnn_conv_rows_units_f64(padded, C, hp, wp, KH, KW, weight, bias, affine, f_padded, relu,
                                out, F, OH, OW, first, last)


cdef inline void _pad_rows_image(const floating[:, :, :, ::1] x, Py_ssize_t n,
                                 floating* padded, const floating[:, ::1] weight,
                                 const floating[::1] bias, const floating* coefficients,
                                 Py_ssize_t f_padded, bint relu, floating[:, :, :, ::1] out,
                                 Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t ph, Py_ssize_t pw,
                                 Py_ssize_t units) noexcept nogil:
    """Image n of _conv_rows_forward (parts = 1): padded into `padded`, then all its units."""
    _pad_image(x[n], padded, ph, pw)
    _rows_image(padded, x.shape[1], x.shape[2] + 2 * ph, x.shape[3] + 2 * pw, KH, KW,
                &weight[0, 0], &bias[0], coefficients, f_padded, relu, &out[n, 0, 0, 0],
                out.shape[1], out.shape[2], out.shape[3], 0, units)


cdef void _conv_rows_forward(const floating[:, :, :, ::1] x,  # IN  (N, C, H, W)
                             const floating[:, ::1] weight,  # IN  (F, C*KH*KW), as given
                             const floating[::1] bias,       # IN  (F,), zeros where no bias
                             const floating[:, ::1] affine,  # IN  (3, F_padded) or None
                             floating[:, :, :, ::1] out,     # OUT (N, F, OH, OW)
                             floating[:, ::1] scratch,       # (threads, see ConvPlan)
                             Py_ssize_t KH, Py_ssize_t KW, Py_ssize_t ph, Py_ssize_t pw,
                             bint relu, Py_ssize_t parts, int num_threads):
    """_conv_forward's results for a stride-1 layer with few taps and wide rows, by pairs of
    output rows (conv_rows.h): the same values, bit for bit. Threads take whole images, or
    with `parts` > 1 share each image's units in `parts` ranges."""
    cdef Py_ssize_t n, t, N = x.shape[0]
    cdef Py_ssize_t F = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t units = cnn_conv_rows_groups(F) * ((OH + 1) // 2)
    cdef Py_ssize_t f_padded = 0 if affine is None else affine.shape[1]
    cdef const floating* coefficients = NULL
    if F == 0 or N == 0 or OH == 0 or OW == 0:
        return
    if affine is not None:
        coefficients = &affine[0, 0]
    if parts == 1:
        with nogil:
            if _serial(num_threads, N):
                _conv_rows_share(x, weight, bias, coefficients, f_padded, out, scratch, KH, KW,
                                 ph, pw, relu, 1, 1, 0)
            else:
                for n in prange(N, schedule="dynamic", num_threads=num_threads):
                    _pad_rows_image(x, n, &scratch[threadid(), 0], weight, bias, coefficients,
                                    f_padded, relu, out, KH, KW, ph, pw, units)
        return
    with nogil:
        for t in prange(num_threads, schedule="static", num_threads=num_threads):
            _conv_rows_share(x, weight, bias, coefficients, f_padded, out, scratch, KH, KW, ph,
                             pw, relu, parts, num_threads, t)


cdef void _conv_rows_share(const floating[:, :, :, ::1] x, const floating[:, ::1] weight,
                           const floating[::1] bias, const floating* coefficients,
                           Py_ssize_t f_padded, floating[:, :, :, ::1] out,
                           floating[:, ::1] scratch, Py_ssize_t KH, Py_ssize_t KW,
                           Py_ssize_t ph, Py_ssize_t pw, bint relu, Py_ssize_t parts,
                           Py_ssize_t team, Py_ssize_t t) noexcept nogil:
    """Share t of _conv_rows_forward's work on a team of `team` threads
    (_conv_forward_share's shares); `coefficients`: the affine map's, or NULL."""
    cdef Py_ssize_t n, first, last, N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t hp = x.shape[2] + 2 * ph, wp = x.shape[3] + 2 * pw
    cdef Py_ssize_t F = out.shape[1], OH = out.shape[2], OW = out.shape[3]
    cdef Py_ssize_t units = cnn_conv_rows_groups(F) * ((OH + 1) // 2)
    if parts == 1:
        n = t
        while n < N:
            _pad_rows_image(x, n, &scratch[t, 0], weight, bias, coefficients, f_padded, relu,
                            out, KH, KW, ph, pw, units)
            n += team
        return
    for n in range(N):
        first, last = 0, 0
        if _share_of_image(t, team, N, n, parts, units, &first, &last):
            _pad_image(x[n], &scratch[t, 0], ph, pw)
            _rows_image(&scratch[t, 0], C, hp, wp, KH, KW, &weight[0, 0], &bias[0],
                        coefficients, f_padded, relu, &out[n, 0, 0, 0], F, OH, OW, first, last)


cdef void _pixel_rows_dense(const floating[:, :, ::1] grad, floating* rows,
                            Py_ssize_t f_padded) noexcept nogil:
    """rows (OH*OW, f_padded): grad (F, OH, OW) pixel-major, zeros in the padding channels.
    A transpose in blocks of registers (conv_pack.h): value by value, reading a value from each
    of F planes for every pixel, it took a third of a 3 -> 16 layer's weight gradient."""
    cdef Py_ssize_t F = grad.shape[0], pixels = grad.shape[1] * grad.shape[2], p
    if F == 0 or pixels == 0:
        return
    _transpose(&grad[0, 0, 0], pixels, rows, f_padded, F, pixels)
    if F < f_padded:
        for p in range(pixels):
            memset(rows + p * f_padded + F, 0, (f_padded - F) * sizeof(floating))


cdef void _pixel_rows_pooled(const floating[:, :, ::1] grad, const floating[:, :, ::1] pooled,
                             const int64_t[:, :, ::1] indices, floating* rows,
                             Py_ssize_t n_pixels, Py_ssize_t f_padded) noexcept nogil:
    """rows (n_pixels, f_padded): the gradient of the convolution under ReLU and max-pool,
    from the pooled gradient: each pooled gradient through ReLU's mask (pointwise.h's rule,
    with the pooled value as ReLU's output), added at its window's argmax pixel (the
    arithmetic of relu and max_pool2d's backward)."""
    cdef Py_ssize_t F = grad.shape[0], ph = grad.shape[1], pw = grad.shape[2]
    cdef Py_ssize_t f, y, xx, index
    memset(rows, 0, n_pixels * f_padded * sizeof(floating))
    for f in range(F):
        for y in range(ph):
            for xx in range(pw):
                index = indices[f, y, xx]
                # Indices come from the fused forward; the range test keeps a forged one harmless.
                if 0 <= index < n_pixels:
                    rows[index * f_padded + f] += _relu_grad(grad[f, y, xx], pooled[f, y, xx])


cdef inline Py_ssize_t _compact(floating* rows, Py_ssize_t n_pixels, Py_ssize_t f_padded,
                                const Py_ssize_t* origins,
                                Py_ssize_t* active_origins) noexcept nogil:
    """Move the pixel rows holding a non-zero gradient to the front of rows (in pixel order) and
    their window origins into active_origins; return their count. Behind a max-pool and a ReLU
    most pixels carry no gradient, and they add nothing to any of the three gradients."""
    if floating is float:
        return cnn_compact_rows_f32(rows, n_pixels, f_padded, origins, active_origins)
    else:
        return cnn_compact_rows_f64(rows, n_pixels, f_padded, origins, active_origins)


cdef void _scatter_input_grad(const floating* rows, Py_ssize_t n_active, Py_ssize_t F,
                              Py_ssize_t f_padded, const Py_ssize_t* active_origins,
                              const floating* segments, const Py_ssize_t* segment_offsets,
                              Py_ssize_t n_segments, const floating* weight, Py_ssize_t T,
                              const Py_ssize_t* taps, floating* values, Py_ssize_t* channels,
                              floating* padded_dx) noexcept nogil:
    """Add every active pixel's gradient back through the weights into the padded input
    gradient (see cnn_scatter_segments). A non-finite value takes a tap-by-tap path through
    weight (F, T), which touches only real taps, as the dense formula does."""
    cdef Py_ssize_t k, f, t, n
    cdef floating g
    cdef floating* window
    for k in range(n_active):
        window = padded_dx + active_origins[k]
        n = 0
        for f in range(F):
            # Branch-free: every channel is written, the count grows for the finite non-zeros.
            g = rows[k * f_padded + f]
            values[n] = g
            channels[n] = f
            n += (g != 0) & (g - g == 0)
        if floating is float:
            cnn_scatter_segments_f32(window, segment_offsets, n_segments, segments, values,
                                     channels, n)
        else:
            cnn_scatter_segments_f64(window, segment_offsets, n_segments, segments, values,
                                     channels, n)
        for f in range(F):
            g = rows[k * f_padded + f]
            if not g - g == 0:  # inf or NaN
                for t in range(T):
                    window[taps[t]] += g * weight[f * T + t]


cdef void _channel_lists_dense(const floating[:, :, ::1] grad, const Py_ssize_t* origins,
                               floating* values, Py_ssize_t* places, Py_ssize_t* counts,
                               Py_ssize_t n_pixels) noexcept nogil:
    """For each channel f, its non-zero gradient values (values[f * n_pixels + i]) and their
    pixels' window origins (places), in pixel order; counts[f] of them. Branch-free: every
    pixel is written, the count grows for the non-zero ones."""
    cdef Py_ssize_t F = grad.shape[0], oh = grad.shape[1], ow = grad.shape[2]
    cdef Py_ssize_t f, y, xx, base, count
    cdef floating v
    for f in range(F):
        base, count = f * n_pixels, 0
        for y in range(oh):
            for xx in range(ow):
                v = grad[f, y, xx]
                values[base + count] = v
                places[base + count] = origins[y * ow + xx]
                count += v != 0
        counts[f] = count


cdef void _channel_lists_pooled(const floating[:, :, ::1] grad,
                                const floating[:, :, ::1] pooled,
                                const int64_t[:, :, ::1] indices, const Py_ssize_t* origins,
                                floating* values, Py_ssize_t* places, Py_ssize_t* counts,
                                Py_ssize_t n_pixels, Py_ssize_t conv_w, floating* lower_values,
                                Py_ssize_t* lower_places) noexcept nogil:
    """_channel_lists_dense of the convolution's gradient under ReLU and a 2x2 max-pool, from
    the pooled gradient: a channel has one value per window (through ReLU's mask, at the
    window's argmax). Within a row of windows, those whose argmax is in the upper pixel row go
    to the list at once and the others wait in lower_* (room for one row of windows) until the
    row ends: so the list follows the dense form's pixel order, and both forms sum the same
    values in the same order."""
    cdef Py_ssize_t F = grad.shape[0], ph = grad.shape[1], pw = grad.shape[2]
    cdef Py_ssize_t f, py, px, k, q, index, safe, base, count, lower, row_start
    cdef bint keep, upper
    cdef floating v
    cdef const floating* g
    cdef const floating* best
    cdef const int64_t* where
    for f in range(F):
        base, count = f * n_pixels, 0
        g, best, where = &grad[f, 0, 0], &pooled[f, 0, 0], &indices[f, 0, 0]
        for py in range(ph):
            row_start = 2 * py * conv_w
            lower = 0
            for px in range(pw):
                q = py * pw + px
                index = where[q]
                # A forged index, out of the plane or out of its window's two rows, counts as
                # no value (the dense form would place it; only real indices keep the forms equal).
                safe = index if 0 <= index < n_pixels else 0
                v = _relu_grad(g[q], best[q])  # through ReLU's mask
                keep = (v != 0) & (index == safe) & (index >= row_start)
                upper = index < row_start + conv_w
                values[base + count] = v
                places[base + count] = origins[safe]
                count += keep & upper
                lower_values[lower] = v
                lower_places[lower] = origins[safe]
                lower += keep & (not upper) & (index < row_start + 2 * conv_w)
            for k in range(lower):
                values[base + count + k] = lower_values[k]
                places[base + count + k] = lower_places[k]
            count += lower
        counts[f] = count


cdef void _crop(const floating* padded, floating[:, :, ::1] dx, Py_ssize_t ph,
                Py_ssize_t pw) noexcept nogil:
    cdef Py_ssize_t C = dx.shape[0], H = dx.shape[1], W = dx.shape[2], c, y, xx
    cdef Py_ssize_t hp = H + 2 * ph, wp = W + 2 * pw
    for c in range(C):
        for y in range(H):
            for xx in range(W):
                dx[c, y, xx] = padded[(c * hp + y + ph) * wp + xx + pw]


cdef struct _Backward:
    # What one call of conv_backward computes, and the geometry every image shares.
    bint pooled_form, need_w, need_b, need_x, by_channel
    Py_ssize_t F, f_padded, n_pixels, T, rows, image_size, n_segments, slack, ph, pw, conv_w
    Py_ssize_t sums_size


cdef void _backward_block(const _Backward* a, const floating[:, :, :, ::1] x,
                          const floating[:, :, :, ::1] grad,
                          const floating[:, :, :, ::1] pooled,
                          const int64_t[:, :, :, ::1] indices, floating[:, :, :, ::1] dx,
                          Py_ssize_t first, Py_ssize_t last, const Py_ssize_t* taps,
                          const Py_ssize_t* origins, const floating* segments,
                          const Py_ssize_t* segment_offsets, const floating* weight,
                          floating* sums, floating* scratch, Py_ssize_t* active) noexcept nogil:
    """Images first..last-1: add their weight and bias gradients onto sums, and write their
    input gradients into dx. Sums: by pixel (the register tile), rows + 1 rows of f_padded,
    the last row the bias; by channel (few channels), F + 1 rows of n_segments * CNN_SEGMENT, each
    channel's weights in segments, the last row the bias."""
    cdef Py_ssize_t n, i, t, q, k, f, fb, n_active
    # The forward's blocks: paired where the build and the channels allow (conv_tile.h).
    cdef Py_ssize_t block = _forward_block(a.f_padded, floating is float)
    cdef Py_ssize_t L = _lanes(block), S8 = a.n_segments * CNN_SEGMENT
    cdef Py_ssize_t lanes[CNN_MAX_LANES]  # a local of this call: private to the calling thread
    cdef floating* padded = scratch
    cdef floating* padded_dx = padded + a.image_size + a.slack
    cdef floating* pixel_rows = padded_dx + a.image_size + a.slack
    cdef floating* values = pixel_rows + a.n_pixels * a.f_padded
    cdef floating* channel_values = values + a.F
    cdef Py_ssize_t* channels = active + a.n_pixels
    cdef Py_ssize_t* channel_places = channels + a.F
    cdef Py_ssize_t* counts = channel_places + a.F * a.n_pixels
    cdef floating* bias_sums
    cdef floating total
    memset(sums, 0, a.sums_size * sizeof(floating))
    for n in range(first, last):
        if a.need_x or not a.by_channel:
            if a.pooled_form:
                _pixel_rows_pooled(grad[n], pooled[n], indices[n], pixel_rows, a.n_pixels,
                                   a.f_padded)
            else:
                _pixel_rows_dense(grad[n], pixel_rows, a.f_padded)
            n_active = _compact(pixel_rows, a.n_pixels, a.f_padded, origins, active)
        if a.need_x:
            memset(padded_dx, 0, (a.image_size + a.slack) * sizeof(floating))
            _scatter_input_grad(pixel_rows, n_active, a.F, a.f_padded, active, segments,
                                segment_offsets, a.n_segments, weight, a.T, taps, values,
                                channels, padded_dx)
            _crop(padded_dx, dx[n], a.ph, a.pw)
        if a.by_channel:
            if not (a.need_w or a.need_b):
                continue
            if a.pooled_form:
                _channel_lists_pooled(grad[n], pooled[n], indices[n], origins, channel_values,
                                      channel_places, counts, a.n_pixels, a.conv_w,
                                      channel_values + a.F * a.n_pixels,
                                      counts + a.F)
            else:
                _channel_lists_dense(grad[n], origins, channel_values, channel_places, counts,
                                     a.n_pixels)
            if a.need_b:
                bias_sums = sums + a.F * S8
                for f in range(a.F):
                    # A local running sum: through memory, each addition would wait for the
                    # previous one's store (the same additions, in the same order).
                    total = bias_sums[f]
                    for i in range(counts[f]):
                        total = total + channel_values[f * a.n_pixels + i]
                    bias_sums[f] = total
            if a.need_w:
                _pad_image(x[n], padded, a.ph, a.pw)
                memset(padded + a.image_size, 0, a.slack * sizeof(floating))
                for f in range(a.F):
                    _gather_segments(sums + f * S8, padded, segment_offsets, a.n_segments,
                                     channel_places + f * a.n_pixels,
                                     channel_values + f * a.n_pixels, counts[f])
            continue
        if n_active == 0:
            continue
        if a.need_b:
            bias_sums = sums + a.rows * a.f_padded
            if floating is float:
                cnn_add_rows_f32(bias_sums, pixel_rows, n_active, a.f_padded)
            else:
                cnn_add_rows_f64(bias_sums, pixel_rows, n_active, a.f_padded)
        if not a.need_w:
            continue
        _pad_image(x[n], padded, a.ph, a.pw)
        for i in range(a.rows // L):
            t = i * L
            for q in range(L):
                lanes[q] = taps[t + q] if t + q < a.T else taps[0]
            for k in range(a.f_padded // block):
                fb = k * block
                # The tile reads its starting sums from, and writes them back to, the same
                # rows: it accumulates this image onto the block's sums.
                if floating is float:
                    cnn_weight_grad_tile_f32(padded, lanes, active, n_active, pixel_rows + fb,
                                             a.f_padded, sums + t * a.f_padded + fb, block)
                else:
                    cnn_weight_grad_tile_f64(padded, lanes, active, n_active, pixel_rows + fb,
                                             a.f_padded, sums + t * a.f_padded + fb, block)


cdef inline void _gather_segments(floating* sums, const floating* image,
                                  const Py_ssize_t* offsets, Py_ssize_t n_segments,
                                  const Py_ssize_t* origins, const floating* values,
                                  Py_ssize_t n) noexcept nogil:
    if floating is float:
        cnn_gather_segments_f32(sums, image, offsets, n_segments, origins, values, n)
    else:
        cnn_gather_segments_f64(sums, image, offsets, n_segments, origins, values, n)


cdef void _conv_backward(const floating[:, :, :, ::1] x,          # IN  (N, C, H, W)
                         const floating[:, :, :, ::1] grad,      # IN  (N, F, OH, OW), or pooled
                         const floating[:, :, :, ::1] pooled,    # IN  pooled form: (N, F, PH, PW)
                         const int64_t[:, :, :, ::1] indices,    # IN  pooled form: (N, F, PH, PW)
                         const floating[:, ::1] weight,          # IN  (F, T) weights, T = C*KH*KW
                         const floating[:, :, ::1] segments,     # IN  (F, S, CNN_SEGMENT) segments
                         const Py_ssize_t[::1] taps,             # IN  (T,) tap offsets
                         const Py_ssize_t[::1] origins,          # IN  (OH*OW,) window origins
                         const Py_ssize_t[::1] segment_offsets,  # IN  (S,) segments' offsets
                         floating[:, :, ::1] partial,            # OUT see _backward_block
                         floating[:, :, :, ::1] dx,              # OUT (N, C, H, W) when need_x
                         floating[:, ::1] scratch,               # (threads, see ConvPlan)
                         Py_ssize_t[:, ::1] active,              # (threads, OH*OW + F) scratch
                         Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t images_per_block, bint pooled_form, bint by_channel,
                         Py_ssize_t f_padded, Py_ssize_t conv_w, bint need_w, bint need_b,
                         bint need_x, int num_threads):
    """The weight, bias and input gradients of a convolution in one pass over the images.

    `grad` is the gradient of the convolution's output (N, F, OH, OW) or, in the pooled form,
    the gradient of max_pool2d(relu(conv), 2) (N, F, OH // 2, OW // 2), with that op's output
    `pooled` and argmax `indices` (y*OW + x in the conv plane).
    Block b's images sum into partial[b], in one of two layouts. By pixel (the register tile
    over the active pixels): partial[b, t, f] = sum over the images and output pixels p of
    grad[n, f, p] * padded x[n] at origins[p] + taps[t]; rows t >= T hold junk (their lanes
    repeat tap 0), so every tile is a full group of taps (CNN_BLOCK_LANES, or CNN_WIDE_PIXELS for
    the narrow tile; see _lanes); row `rows` holds the bias gradient's sums. By channel
    (`by_channel`, for layers with few output channels): partial[b, f] holds channel f's
    weight gradient in segments
    (cnn_gather_segments in conv_scatter.h, lanes that are not taps hold junk), and
    partial[b, F, f] the bias gradient's sum. dx[n] (when need_x) is the input gradient,
    scattered through the weights cut in segments of CNN_SEGMENT positions
    (cnn_scatter_segments): segment s of channel f starts segment_offsets[s] after a window
    origin, S is a multiple of CNN_SEGMENT_GROUP, and padded images keep CNN_SEGMENT spare
    elements past their end for the last row's lanes.
    """
    cdef _Backward a
    cdef Py_ssize_t blocks = partial.shape[0], N = x.shape[0], b
    a.pooled_form, a.need_w, a.need_b, a.need_x = pooled_form, need_w, need_b, need_x
    a.by_channel, a.conv_w = by_channel, conv_w
    a.F, a.f_padded, a.T = grad.shape[1], f_padded, taps.shape[0]
    a.n_pixels, a.rows = origins.shape[0], partial.shape[1] - 1
    a.sums_size = partial.shape[1] * partial.shape[2]
    a.image_size = x.shape[1] * (x.shape[2] + 2 * ph) * (x.shape[3] + 2 * pw)
    a.n_segments, a.slack, a.ph, a.pw = segment_offsets.shape[0], CNN_SEGMENT, ph, pw
    if N == 0:
        return
    with nogil:
        if _serial(num_threads, blocks):
            for b in range(blocks):
                _backward_block(&a, x, grad, pooled, indices, dx, b * images_per_block,
                                min((b + 1) * images_per_block, N), &taps[0], &origins[0],
                                &segments[0, 0, 0], &segment_offsets[0], &weight[0, 0],
                                &partial[b, 0, 0], &scratch[0, 0], &active[0, 0])
        else:
            for b in prange(blocks, schedule="dynamic", num_threads=num_threads):
                _backward_block(&a, x, grad, pooled, indices, dx, b * images_per_block,
                                min((b + 1) * images_per_block, N), &taps[0], &origins[0],
                                &segments[0, 0, 0], &segment_offsets[0], &weight[0, 0],
                                &partial[b, 0, 0], &scratch[threadid(), 0],
                                &active[threadid(), 0])
