# Winograd F(2x2, 3x3): the convolutions of wide 3x3 layers (stride 1, dilation 1, groups 1)
# in 16 multiplies per 2x2 output tile instead of 36: the forward (with the fused ReLU + 2x2
# max-pool in its output transform) and the weight gradient. Included by conv.pyx, whose
# ConvPlan chooses it (and lays out its tables) and runs the direct kernels for the rest.
#
# Why: at 32-256 channels the direct tile already runs at the FMA units' peak (one 512-bit FMA
# per cycle on the reference CPU, measured), as PyTorch's oneDNN does; the only way to be
# faster there is to do fewer multiply-adds. Per output tile and channel pair the direct
# convolution multiplies 4 pixels x 9 taps; Winograd's minimal filtering multiplies 16
# transformed values, and the transforms (additions only) cost about 1/C of that.
#
#   U[xi, f, c] = (G w[f, c] G^T)[xi]          weights, once per call (small)
#   V[xi, c, t] = (B^T d[c, t] B)[xi]          d: the 4x4 input patch of tile t, channel c
#   M[xi, f, t] = sum_c U[xi, f, c] V[xi, c, t]  16 independent products: the register tile
#   y[f, t]     = A^T M[:, f, t] A + bias[f]   the 2x2 outputs of tile t
#
# with G = [[1,0,0],[1/2,1/2,1/2],[1/2,-1/2,1/2],[0,0,1]], B^T = [[1,0,-1,0],[0,1,1,0],
# [0,-1,1,0],[0,1,0,-1]], A^T = [[1,1,1,0],[0,1,-1,-1]] (Lavin and Gray, 2016). The products
# (winograd.h) hold CNN_BLOCK_LANES output channels x one vector of CNN_BLOCK consecutive tiles
# in registers, so V and M are read and written along the tiles, in the order the transforms
# (winograd.h, vectors of tiles) visit them.
#
# Numerics: the transforms add and subtract before multiplying, so results differ from the
# direct convolution's by rounding (about 1e-7 relative in float32), and a non-finite input
# reaches every output of the tiles that read it; each value's operations are fixed by the
# plan, never by the thread count or the split, so results stay bit-identical at any thread
# count. The input gradient needs no code here: it is a forward convolution of the gradient (a
# plan of its own, which picks this algorithm when it qualifies). The weight gradient is at the
# end of this file.

cdef inline Py_ssize_t _spread(Py_ssize_t size) noexcept nogil:
    """The distance between two of the 16 matrices of V or M: their size plus one cache line,
    so that the 16 values of one tile (read or written together) never share a cache set, as
    they would at a multiple of 4 KiB."""
    return size + CNN_BLOCK


cdef inline Py_ssize_t _lane_rows(Py_ssize_t f) noexcept nogil:
    """Output channels rounded up to whole groups of the products' CNN_BLOCK_LANES lanes."""
    return (f + CNN_BLOCK_LANES - 1) // CNN_BLOCK_LANES * CNN_BLOCK_LANES


cdef inline Py_ssize_t _vector_channels(Py_ssize_t c) noexcept nogil:
    """Input channels rounded up to whole vectors of CNN_BLOCK (the weight gradient's)."""
    return (c + CNN_BLOCK - 1) // CNN_BLOCK * CNN_BLOCK


cdef inline Py_ssize_t _forward_room(Py_ssize_t C, Py_ssize_t F, Py_ssize_t hp, Py_ssize_t wp,
                                     Py_ssize_t tiles_padded) noexcept nogil:
    """Values of one thread's forward scratch (_winograd_forward): the padded image (C, hp,
    wp), then V, then M."""
    return C * hp * wp + 16 * _spread(C * tiles_padded) + 16 * _spread(_lane_rows(F)
                                                                      * tiles_padded)


# The weight gradient transforms a block's images this many values of V and dM at a time
# (or one image, if that alone is more), then adds their products to the block's sums: V and
# dM of a whole block of 4 images at 32 x 32 (2-4 MB) left the core's cache between the
# transforms and the products (ResNet-8's 16 -> 16 layer at batch 64: 2.8 -> 1.7 ms). Not
# where the sums are larger than an image's V and dM (wide layers of small images: 128 ->
# 128 at 8 x 8 ran 3.2 -> 4.1 ms reading and writing its 1 MB of sums once per chunk).
DEF WEIGHT_GRAD_CHUNK_VALUES = 1 << 17


cdef inline Py_ssize_t _weight_grad_chunk(Py_ssize_t C, Py_ssize_t F, Py_ssize_t tiles_padded,
                                          Py_ssize_t images_per_block) noexcept nogil:
    """How many images of a block the weight gradient transforms at a time (decided by the
    shapes alone: the sums' order, hence their bits, never depends on the thread count)."""
    cdef Py_ssize_t per_image = 16 * tiles_padded * (_vector_channels(C) + _lane_rows(F))
    if 16 * _lane_rows(F) * _vector_channels(C) > per_image:
        return images_per_block
    return max(1, min(images_per_block, WEIGHT_GRAD_CHUNK_VALUES // per_image))


cdef inline Py_ssize_t _weight_grad_room(Py_ssize_t C, Py_ssize_t F, Py_ssize_t hp,
                                         Py_ssize_t wp, Py_ssize_t tiles_padded,
                                         Py_ssize_t images) noexcept nogil:
    """Values of one thread's weight-gradient scratch (_weight_grad_block, transforming
    `images` images at a time: _weight_grad_chunk): the image (hp, wp) and the gradient
    (hp - 2, wp - 2) pixel-major, then the chunk's V and dM."""
    cdef Py_ssize_t depth = images * tiles_padded
    return (hp * wp * _vector_channels(C) + (hp - 2) * (wp - 2) * _lane_rows(F)
            + 16 * (_spread(depth * _vector_channels(C)) + _spread(depth * _lane_rows(F))))


cdef void _winograd_weights(const floating[:, :, :, ::1] weight,  # IN  (F, C, 3, 3)
                            floating[:, :, :, ::1] u,                # OUT (16, groups, C, lanes)
                            int num_threads) noexcept nogil:
    """u[xi, g, c, q] = (G weight[f, c] G^T)[xi] for output channel f = g * lanes + q (u is
    (16, groups, C, lanes), lanes = CNN_BLOCK_LANES: winograd.h's product reads a group's
    weights interleaved by input channel); zeros for the channels past F. Group by group, the
    team sharing the groups: a group's lanes are written side by side (output channel by
    output channel, each value was a cache line of its own, and the transform took a tenth of
    a training step's Winograd forwards)."""
    cdef Py_ssize_t groups = u.shape[1], g
    # Shared from as many values written as the direct kernels' packing (16 per filter).
    if _serial(num_threads, groups) or 16 * weight.shape[0] * weight.shape[1] < MIN_PARALLEL_PACK:
        for g in range(groups):
            _winograd_weight_group(weight, u, g)
    else:
        for g in prange(groups, schedule="static", num_threads=num_threads):
            _winograd_weight_group(weight, u, g)


cdef void _winograd_weight_group(const floating[:, :, :, ::1] weight,
                                 floating[:, :, :, ::1] u, Py_ssize_t g) noexcept nogil:
    """Group g of _winograd_weights: its lanes' output channels, input channel by input
    channel. Each input channel's 9 taps are first gathered lane by lane (zeros in the lanes
    past F), so that every step of the transform is one loop over the lanes, which gcc makes
    one vector operation, and each of the 16 values is one store of the group's lanes: value
    by value, indexing u and the weight through their memoryviews, the transform was a
    twentieth of a VGG-style training step. The arithmetic of every value is the same."""
    cdef Py_ssize_t F = weight.shape[0], C = weight.shape[1]
    cdef Py_ssize_t lanes = min(<Py_ssize_t> CNN_BLOCK_LANES, F - g * CNN_BLOCK_LANES)
    cdef Py_ssize_t plane = u.shape[1] * C * CNN_BLOCK_LANES  # between values xi and xi + 1
    cdef Py_ssize_t c, q, j, r
    cdef const floating* filters = &weight[g * CNN_BLOCK_LANES, 0, 0, 0]
    cdef floating* out
    cdef floating k[9][CNN_BLOCK_LANES]
    cdef floating t[4][3][CNN_BLOCK_LANES]
    for c in range(C):
        for q in range(CNN_BLOCK_LANES):
            for j in range(9):
                k[j][q] = filters[(q * C + c) * 9 + j] if q < lanes else 0
        for j in range(3):  # t = G k, column j
            for q in range(CNN_BLOCK_LANES):
                t[0][j][q] = k[j][q]
                t[1][j][q] = (k[j][q] + k[3 + j][q] + k[6 + j][q]) * <floating> 0.5
                t[2][j][q] = (k[j][q] - k[3 + j][q] + k[6 + j][q]) * <floating> 0.5
                t[3][j][q] = k[6 + j][q]
        out = &u[0, g, c, 0]
        for r in range(4):  # u = t G^T, row r
            for q in range(CNN_BLOCK_LANES):
                out[4 * r * plane + q] = t[r][0][q]
                out[(4 * r + 1) * plane + q] = (t[r][0][q] + t[r][1][q] + t[r][2][q]) * \
                    <floating> 0.5
                out[(4 * r + 2) * plane + q] = (t[r][0][q] - t[r][1][q] + t[r][2][q]) * \
                    <floating> 0.5
                out[(4 * r + 3) * plane + q] = t[r][2][q]


cdef extern from "winograd.h" nogil:
    void cnn_winograd_input_row_f32(const float* even, Py_ssize_t half, Py_ssize_t wp,
                                    Py_ssize_t n, float* o, Py_ssize_t vs)
    void cnn_winograd_input_row_f64(const double* even, Py_ssize_t half, Py_ssize_t wp,
                                    Py_ssize_t n, double* o, Py_ssize_t vs)
    void cnn_winograd_input_rows_f32(const float* even, Py_ssize_t half, Py_ssize_t wp,
                                     Py_ssize_t rows, Py_ssize_t n, float* o, Py_ssize_t vs)
    void cnn_winograd_input_rows_f64(const double* even, Py_ssize_t half, Py_ssize_t wp,
                                     Py_ssize_t rows, Py_ssize_t n, double* o, Py_ssize_t vs)
    void cnn_winograd_output_row_f32(const float* a, Py_ssize_t ms, Py_ssize_t n,
                                     float* const* rows)
    void cnn_winograd_output_row_f64(const double* a, Py_ssize_t ms, Py_ssize_t n,
                                     double* const* rows)
    void cnn_winograd_store_row_f32(const float* even, const float* odd, Py_ssize_t n,
                                    float bias, const float* affine, int relu,
                                    const float* residual, float* out)
    void cnn_winograd_store_row_f64(const double* even, const double* odd, Py_ssize_t n,
                                    double bias, const double* affine, int relu,
                                    const double* residual, double* out)
    void cnn_winograd_pool_row_f32(float* const* rows, Py_ssize_t n, float bias,
                                   Py_ssize_t first, Py_ssize_t tiles_w, Py_ssize_t ow,
                                   float* pooled, int64_t* indices)
    void cnn_winograd_pool_row_f64(double* const* rows, Py_ssize_t n, double bias,
                                   Py_ssize_t first, Py_ssize_t tiles_w, Py_ssize_t ow,
                                   double* pooled, int64_t* indices)
    void cnn_split_columns_f32(const float* row, Py_ssize_t n, float* first, float* second)
    void cnn_split_columns_f64(const double* row, Py_ssize_t n, double* first, double* second)
    void cnn_winograd_input_channels_f32(const float* patch, Py_ssize_t pixel, Py_ssize_t row,
                                         float* o, Py_ssize_t os)
    void cnn_winograd_input_channels_f64(const double* patch, Py_ssize_t pixel,
                                         Py_ssize_t row, double* o, Py_ssize_t os)
    void cnn_winograd_gradient_channels_f32(const float* patch, Py_ssize_t pixel,
                                            Py_ssize_t row, float* o, Py_ssize_t os)
    void cnn_winograd_gradient_channels_f64(const double* patch, Py_ssize_t pixel,
                                            Py_ssize_t row, double* o, Py_ssize_t os)
    void cnn_winograd_product_f32(const float* u, const float* v, Py_ssize_t n_c,
                                  Py_ssize_t v_stride, float* m, Py_ssize_t m_stride, int add)
    void cnn_winograd_product_f64(const double* u, const double* v, Py_ssize_t n_c,
                                  Py_ssize_t v_stride, double* m, Py_ssize_t m_stride,
                                  int add)
    void cnn_winograd_product_pair_f32(const float* u, const float* v, Py_ssize_t n_c,
                                       Py_ssize_t v_stride, float* m, Py_ssize_t m_stride,
                                       int add)

# Tiles per call of the output transform: its four rows of results live on the stack.
DEF OUTPUT_CHUNK = 64


cdef void _pad_image_split(const floating[:, :, ::1] x, floating* padded, Py_ssize_t ph,
                           Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp,
                           Py_ssize_t first_row=0, Py_ssize_t last_row=-1) noexcept nogil:
    """Image x (C, H, W) placed at (ph, pw) in a zero image (C, hp, wp) whose rows hold their
    even columns, then their odd ones (winograd.h's input layout; wp is even): its rows
    first_row..last_row-1 (every row by default: last_row -1) of each channel, the others
    left as they were. Its callers (and _pixel_major's) pass a memoryview slice from inside
    the team's loop, against ARCHITECTURE's rule (a reference counter the threads share),
    because by pointer, with the same bits, both measured slower, alternating: the VGG-style
    net's batch-1000 forward 175-190 -> 192-199 ms, its b32 training step 26.4-27.1 ->
    27.3-27.7 ms (medians)."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2], half = wp // 2
    cdef Py_ssize_t c, y
    cdef floating* row
    # Input column 0 lands in column pw: among the even columns when pw is even.
    cdef Py_ssize_t first = (pw % 2) * half + pw // 2
    cdef Py_ssize_t second = (1 - pw % 2) * half + (pw + 1) // 2
    if last_row < 0:
        last_row = hp
    # Zeros first, then the image over them: one memset of the rows (a memset of the rows'
    # zeros alone, a few values each, cost the CIFAR net's batch-1 forward 56 -> 61 us).
    if first_row == 0 and last_row == hp:
        memset(padded, 0, C * hp * wp * sizeof(floating))
    else:
        for c in range(C):
            memset(padded + (c * hp + first_row) * wp, 0,
                   (last_row - first_row) * wp * sizeof(floating))
    for c in range(C):
        for y in range(max(0, first_row - ph), min(H, last_row - ph)):
            row = padded + (c * hp + y + ph) * wp
            if floating is float:
                cnn_split_columns_f32(&x[c, y, 0], W, row + first, row + second)
            else:
                cnn_split_columns_f64(&x[c, y, 0], W, row + first, row + second)


cdef void _winograd_input(const floating* padded, Py_ssize_t hp, Py_ssize_t wp,
                          Py_ssize_t tiles_h, Py_ssize_t tiles_w, Py_ssize_t tiles_padded,
                          floating* v, Py_ssize_t C, Py_ssize_t first,
                          Py_ssize_t last) noexcept nogil:
    """v[xi, c, t] = (B^T d B)[xi] for the channels first..last-1 of one padded image (split
    rows, see _pad_image_split); tile t = ty * tiles_w + tx reads the 4x4 patch at (2 ty, 2 tx)."""
    cdef Py_ssize_t c, ty, vs = _spread(C * tiles_padded)
    # A channel's rows in one call where a row fills a vector (16 tiles: 16 -> 16 at 32 x 32 ran
    # 1078-1094 -> 952-992 us at batch 64), else a call a row (8 tiles, 64 -> 64 at 16 x 16: in
    # one call, its half vectors compiled in that loop, 4712-5076 -> 5489-5958 us on 1 thread).
    for c in range(first, last):
        if tiles_w >= CNN_BLOCK:
            if floating is float:
                cnn_winograd_input_rows_f32(padded + c * hp * wp, wp // 2, wp, tiles_h, tiles_w,
                                            v + c * tiles_padded, vs)
            else:
                cnn_winograd_input_rows_f64(padded + c * hp * wp, wp // 2, wp, tiles_h, tiles_w,
                                            v + c * tiles_padded, vs)
            continue
        for ty in range(tiles_h):
            if floating is float:
                cnn_winograd_input_row_f32(padded + (c * hp + 2 * ty) * wp, wp // 2, wp,
                                           tiles_w, v + c * tiles_padded + ty * tiles_w, vs)
            else:
                cnn_winograd_input_row_f64(padded + (c * hp + 2 * ty) * wp, wp // 2, wp,
                                           tiles_w, v + c * tiles_padded + ty * tiles_w, vs)


cdef inline Py_ssize_t _product_width(Py_ssize_t done, Py_ssize_t size,
                                      bint single) noexcept nogil:
    """Values per vector of the next product along a row of `size` (a multiple of CNN_BLOCK)
    from `done`: the paired product's two blocks where the build has it (float32, `single`)
    and two are left, else one block. Either gives each value the same bits."""
    if CNN_PAIR_TILES and single and done + CNN_PAIR_BLOCK <= size:
        return CNN_PAIR_BLOCK
    return CNN_BLOCK


cdef inline void _product(const floating* u, const floating* v, Py_ssize_t n_c,
                          Py_ssize_t v_stride, floating* m, Py_ssize_t m_stride,
                          Py_ssize_t width, bint add=False) noexcept nogil:
    """winograd.h's product of `width` (a _product_width) values per vector (added to m's
    values with `add`)."""
    if floating is float:
        if width == CNN_PAIR_BLOCK:
            cnn_winograd_product_pair_f32(u, v, n_c, v_stride, m, m_stride, add)
        else:
            cnn_winograd_product_f32(u, v, n_c, v_stride, m, m_stride, add)
    else:
        cnn_winograd_product_f64(u, v, n_c, v_stride, m, m_stride, add)


cdef void _winograd_multiply(const floating* v, const floating* u, floating* m,
                             Py_ssize_t C, Py_ssize_t f_rows, Py_ssize_t tiles_padded,
                             Py_ssize_t first_group, Py_ssize_t last_group) noexcept nogil:
    """m[xi, f, t] = sum_c u[xi, f, c] v[xi, c, t] for the 16 xi and the output channels of
    groups first_group..last_group-1 (CNN_BLOCK_LANES channels each, f_rows: the channels
    rounded up to whole groups; the spare rows of m receive zeros), a vector of tiles (or
    two: _product_width) x one group at a time."""
    cdef Py_ssize_t xi, t, g, width, vs = _spread(C * tiles_padded)
    cdef Py_ssize_t ms = _spread(f_rows * tiles_padded)
    for xi in range(16):
        t = 0
        while t < tiles_padded:
            width = _product_width(t, tiles_padded, floating is float)
            for g in range(first_group, last_group):
                _product(u + (xi * f_rows + g * CNN_BLOCK_LANES) * C, v + xi * vs + t, C,
                         tiles_padded, m + xi * ms + g * CNN_BLOCK_LANES * tiles_padded + t,
                         tiles_padded, width)
            t += width


cdef inline void _store_tile_row(const floating* results, Py_ssize_t at, Py_ssize_t n,
                                 floating bias, const floating* affine, bint relu,
                                 const floating* residual, Py_ssize_t oh, Py_ssize_t ow,
                                 Py_ssize_t ty, floating* plane) noexcept nogil:
    """Output rows 2 ty and 2 ty + 1 (those inside the plane, `oh` rows of `ow`) from the
    output transform's results (4 rows of OUTPUT_CHUNK values: a tile's 4 values, the tiles
    from `at`): n values a row, from column 0 of `plane`'s rows (winograd.h's store_row; the
    `residual` plane's rows added, unless it is NULL)."""
    cdef Py_ssize_t r, y
    cdef const floating* added = NULL
    for r in range(2):
        y = 2 * ty + r
        if y >= oh:
            return
        if residual != NULL:
            added = residual + y * ow
        if floating is float:
            cnn_winograd_store_row_f32(results + 2 * r * OUTPUT_CHUNK + at,
                                       results + (2 * r + 1) * OUTPUT_CHUNK + at, n, bias,
                                       affine, relu, added, plane + y * ow)
        else:
            cnn_winograd_store_row_f64(results + 2 * r * OUTPUT_CHUNK + at,
                                       results + (2 * r + 1) * OUTPUT_CHUNK + at, n, bias,
                                       affine, relu, added, plane + y * ow)


cdef void _winograd_output(const floating* m, Py_ssize_t f_rows, Py_ssize_t tiles_padded,
                           const floating* bias, const floating* affine,
                           Py_ssize_t f_padded, bint relu, floating* out,
                           const floating* residual, floating* pooled, int64_t* indices,
                           Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t tiles_w,
                           Py_ssize_t ty_first, Py_ssize_t ty_last, Py_ssize_t first,
                           Py_ssize_t last) noexcept nogil:
    """For the channels first..last-1: out[f] (oh, ow) = A^T m[:, f, t] A + bias[f] over the
    tiles of rows ty_first..ty_last-1 (m holds those, tile (ty, tx) at (ty - ty_first) *
    tiles_w + tx), then batch norm's affine map (`affine`: NULL or 3 rows of f_padded: mean,
    scale, shift), the `residual` (NULL, or an image like out's, added) and ReLU as in the
    direct kernel (a last tile's row or column past the output is dropped); or, when `pooled`
    is not NULL, ReLU and the 2x2 max-pool of each tile (a tile is a pooling window) into
    pooled[f] and indices[f] (oh // 2, ow // 2), and no `out`."""
    cdef Py_ssize_t f, ty, t0, n, y, r, j, count, ms = _spread(f_rows * tiles_padded)
    # Pooling an even-sized output, the tiles are the windows in the same order: a channel's
    # tiles run as one row (vectors of them). Otherwise as many rows of tiles as fit in
    # OUTPUT_CHUNK at a time (`stack` rows: a row of 16 tiles alone, a 32-wide output's, was one
    # vector per call, and the call's setup of M's 16 rows cost as much as its arithmetic), or a
    # row in parts where one is longer.
    cdef bint whole = pooled != NULL and oh % 2 == 0 and ow % 2 == 0
    cdef Py_ssize_t row_first = 0 if whole else ty_first
    cdef Py_ssize_t row_last = 1 if whole else (
        min(ty_last, oh // 2) if pooled != NULL else ty_last)
    cdef Py_ssize_t row_tiles = (ty_last - ty_first) * tiles_w if whole else (
        ow // 2 if pooled != NULL else tiles_w)
    cdef Py_ssize_t stack = max(1, OUTPUT_CHUNK // tiles_w) if pooled == NULL else 1
    # The first tile of a row of row_tiles in m, and in the image (the pooled plane's order).
    cdef Py_ssize_t in_m, in_image
    cdef Py_ssize_t pooled_size = (oh // 2) * (ow // 2)
    cdef floating results[4][OUTPUT_CHUNK]
    cdef floating* rows[4]
    cdef floating coefficients[3]
    cdef const floating* channel_affine = NULL
    for r in range(4):
        rows[r] = results[r]
    for f in range(first, last):
        if affine != NULL:
            coefficients[0] = affine[f]
            coefficients[1] = affine[f_padded + f]
            coefficients[2] = affine[2 * f_padded + f]
            channel_affine = coefficients
        if pooled == NULL:
            ty = ty_first
            while ty < ty_last:
                count = min(stack, ty_last - ty)  # rows of tiles in this call (or one in parts)
                for t0 in range(0, tiles_w, OUTPUT_CHUNK):
                    n = count * tiles_w if stack > 1 else min(OUTPUT_CHUNK, tiles_w - t0)
                    in_m = (ty - ty_first) * tiles_w + t0
                    if floating is float:
                        cnn_winograd_output_row_f32(m + f * tiles_padded + in_m, ms, n, rows)
                    else:
                        cnn_winograd_output_row_f64(m + f * tiles_padded + in_m, ms, n, rows)
                    for j in range(count):
                        _store_tile_row(&results[0][0], j * tiles_w,
                                        min(ow - 2 * t0, 2 * n // count), bias[f],
                                        channel_affine, relu,
                                        NULL if residual == NULL
                                        else residual + f * oh * ow + 2 * t0,
                                        oh, ow, ty + j, out + f * oh * ow + 2 * t0)
                ty += count
            continue
        for ty in range(row_first, row_last):
            in_m = ((ty - ty_first) * tiles_w) if not whole else 0
            in_image = ty * tiles_w if not whole else ty_first * tiles_w
            for t0 in range(0, row_tiles, OUTPUT_CHUNK):
                n = min(OUTPUT_CHUNK, row_tiles - t0)
                if floating is float:
                    cnn_winograd_output_row_f32(m + f * tiles_padded + in_m + t0, ms, n, rows)
                else:
                    cnn_winograd_output_row_f64(m + f * tiles_padded + in_m + t0, ms, n, rows)
                # (whole: the tiles are the windows, tiles_w = ow // 2)
                y = f * pooled_size + (ty * (ow // 2) if not whole else in_image) + t0
                if floating is float:
                    cnn_winograd_pool_row_f32(rows, n, bias[f], in_image + t0, tiles_w, ow,
                                              pooled + y, NULL if indices == NULL else indices + y)
                else:
                    cnn_winograd_pool_row_f64(rows, n, bias[f], in_image + t0, tiles_w, ow,
                                              pooled + y, NULL if indices == NULL else indices + y)


cdef void _winograd_forward(const floating[:, :, :, ::1] x,  # IN  (N, C, H, W)
                            const floating[:, :, :, ::1] u,  # IN  (16, groups, C, lanes)
                            const floating[::1] bias,        # IN  (F_padded,)
                            const floating[:, ::1] affine,   # IN  (3, F_padded) or None
                            floating[:, :, :, ::1] out,      # OUT (N, F, OH, OW), or
                            floating[:, :, :, ::1] pooled,   # OUT (N, F, OH/2, OW/2) and
                            int64_t[:, :, :, ::1] indices,   # OUT (N, F, OH/2, OW/2) or None
                            floating[::1] scratch,           # threads x room values
                            Py_ssize_t room,                 # >= _forward_room
                            Py_ssize_t F, Py_ssize_t oh, Py_ssize_t ow,
                            Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp,
                            Py_ssize_t tiles_padded, Py_ssize_t images, bint relu,
                            bint split, int num_threads,
                            const floating[:, :, :, ::1] residual=None):  # IN like out, or None
    """out = conv(x, w) + bias (then affine, the residual and ReLU) by F(2x2, 3x3), or with
    `pooled` (not None; `out` is then unused) max_pool2d(relu(that), 2) and its argmax.
    Threads take items of `images` consecutive images, their tiles side by side in V and M
    (tiles_padded: the item's tiles rounded up to whole vectors), or with `split` (a batch
    that whole images would share out unevenly, such as 1; then `images` is 1) parts of each
    image. Where the layer has no more output than input channels and every part then holds
    at least WINOGRAD_ROW_PART_TILES tiles, each part is a range of rows of tiles (all output
    channels): it transforms, multiplies and transforms back its own tiles. Otherwise the
    image is cut by output channels: each part transforms the whole image into its thread's
    own scratch, then multiplies and transforms back its channels only (the input transform
    repeated, the smaller side where the output channels are more). Either way nothing is
    exchanged between the threads (sharing V and M between the stages, with a barrier each,
    ran slower than one thread). Each value's arithmetic is the same whatever the item or the
    part."""
    cdef Py_ssize_t item, N = x.shape[0]
    cdef bint by_rows, pool = pooled is not None
    cdef Py_ssize_t parts = _winograd_parts(x.shape[1], F, oh, ow, split, num_threads, &by_rows)
    cdef Py_ssize_t items = (N + images - 1) // images
    cdef const floating* coefficients = NULL if affine is None else &affine[0, 0]
    cdef floating[:, :, :, ::1] result = pooled if pool else out
    if F == 0 or N == 0:
        return
    # One loop, a parallel region even for one thread (unlike the other kernels' serial
    # paths: about 0.8 us a call, but with a serial twin of this body gcc compiled the
    # transforms and products out of line, and a batch-1000 layer ran 6-10% slower).
    with nogil:
        for item in prange(items * parts, schedule="dynamic", num_threads=num_threads,
                           use_threads_if=num_threads > 1 and items * parts > 1):
            _winograd_item(x, u, bias, coefficients, result, pool, indices,
                           &scratch[threadid() * room], F, oh, ow, ph, pw, hp, wp,
                           tiles_padded, images, relu, by_rows, parts, item, residual)


cdef Py_ssize_t _winograd_parts(Py_ssize_t C, Py_ssize_t F, Py_ssize_t oh, Py_ssize_t ow,
                                bint split, Py_ssize_t num_threads,
                                bint* by_rows) noexcept:
    """The parts _winograd_forward cuts each item into on a team of `num_threads` (1 unless
    `split`), and whether by rows of tiles (`by_rows`) or by groups of output channels."""
    cdef Py_ssize_t tiles_h = (oh + 1) // 2, tiles_w = (ow + 1) // 2
    cdef Py_ssize_t groups = _lane_rows(F) // CNN_BLOCK_LANES
    by_rows[0] = (split and F <= C
                  and tiles_h // num_threads * tiles_w >= WINOGRAD_ROW_PART_TILES)
    if not split:
        return 1
    return num_threads if by_rows[0] else min(num_threads, groups)


cdef void _winograd_item(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] u,
                         const floating[::1] bias, const floating* coefficients,
                         floating[:, :, :, ::1] out, bint pool, int64_t[:, :, :, ::1] indices,
                         floating* s, Py_ssize_t F,
                         Py_ssize_t oh, Py_ssize_t ow, Py_ssize_t ph, Py_ssize_t pw,
                         Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t tiles_padded,
                         Py_ssize_t images, bint relu, bint by_rows, Py_ssize_t parts,
                         Py_ssize_t item, const floating[:, :, :, ::1] residual) noexcept nogil:
    """Item `item` of _winograd_forward (its arguments, but `out`: the pooled result where
    `pool`; `parts` and `by_rows`: _winograd_parts'), in the scratch `s` of the thread that
    runs it."""
    cdef Py_ssize_t k, N = x.shape[0], C = x.shape[1]
    cdef Py_ssize_t f_padded = bias.shape[0]
    cdef Py_ssize_t tiles_h = (oh + 1) // 2, tiles_w = (ow + 1) // 2, T = tiles_h * tiles_w
    cdef Py_ssize_t f_rows = _lane_rows(F), groups = f_rows // CNN_BLOCK_LANES
    cdef Py_ssize_t image = C * hp * wp, v_size = 16 * _spread(C * tiles_padded)
    cdef Py_ssize_t part = item % parts
    cdef Py_ssize_t n = item // parts * images  # the item's first image
    cdef Py_ssize_t count = min(images, N - n)
    # A part's rows of tiles (all output channels), or its groups of output channels
    # (all tiles); its tiles rounded up to whole vectors.
    cdef Py_ssize_t ty0 = 0, ty1 = tiles_h, first = 0, last = groups, f0, f1
    cdef Py_ssize_t part_padded = tiles_padded
    if by_rows:
        ty0, ty1 = tiles_h * part // parts, tiles_h * (part + 1) // parts
        part_padded = _round_up((ty1 - ty0) * tiles_w, CNN_BLOCK)
    elif parts > 1:
        first, last = groups * part // parts, groups * (part + 1) // parts
    for k in range(count):  # the rows of the part's tiles' 4x4 patches
        _pad_image_split(x[n + k], s, ph, pw, hp, wp, 2 * ty0, min(hp, 2 * ty1 + 2))
        _winograd_input(s + 2 * ty0 * wp, hp, wp, ty1 - ty0, tiles_w, part_padded,
                        s + image + k * T, C, 0, C)
    if count < images:  # a last, short item: zeros for its missing images' tiles
        _clear_tiles(s + image, C, tiles_padded, count * T, images * T)
    _winograd_multiply(s + image, &u[0, 0, 0, 0], s + image + v_size, C, f_rows, part_padded,
                       first, last)
    f0, f1 = min(F, first * CNN_BLOCK_LANES), min(F, last * CNN_BLOCK_LANES)
    for k in range(count):
        _winograd_output(s + image + v_size + k * T, f_rows, part_padded, &bias[0],
                         coefficients, f_padded, relu, NULL if pool else &out[n + k, 0, 0, 0],
                         _image_of(residual, n + k), &out[n + k, 0, 0, 0] if pool else NULL,
                         &indices[n + k, 0, 0, 0] if pool and indices is not None else NULL,
                         oh, ow, tiles_w, ty0, ty1, f0, f1)


cdef void _winograd_share(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] u,
                          const floating[::1] bias, const floating* coefficients,
                          floating[:, :, :, ::1] out, bint pool,
                          int64_t[:, :, :, ::1] no_indices,
                          floating[::1] scratch, Py_ssize_t room, Py_ssize_t F, Py_ssize_t oh,
                          Py_ssize_t ow, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t hp,
                          Py_ssize_t wp, Py_ssize_t tiles_padded, Py_ssize_t images, bint relu,
                          bint by_rows, Py_ssize_t parts, Py_ssize_t team, Py_ssize_t t,
                          const floating[:, :, :, ::1] residual) noexcept nogil:
    """Share t of _winograd_forward's work on a team of `team` threads, in scratch row t: its
    items t, t + team, ... (which the kernel hands out as the threads come, the same
    values). `out` as _winograd_item's; `no_indices`: None (a pooled forward's argmax is not
    kept)."""
    cdef Py_ssize_t items = (x.shape[0] + images - 1) // images * parts, item = t
    while item < items:
        _winograd_item(x, u, bias, coefficients, out, pool, no_indices, &scratch[t * room], F,
                       oh, ow, ph, pw, hp, wp, tiles_padded, images, relu, by_rows, parts, item,
                       residual)
        item += team


cdef void _clear_tiles(floating* v, Py_ssize_t C, Py_ssize_t tiles_padded, Py_ssize_t begin,
                       Py_ssize_t end) noexcept nogil:
    """Zero tiles begin..end-1 of every row of V (16 x C rows of tiles_padded): a short item's
    missing images, whose lanes the products compute and nothing stores, hold zeros rather
    than the previous item's values."""
    cdef Py_ssize_t xi, c, vs = _spread(C * tiles_padded)
    for xi in range(16):
        for c in range(C):
            memset(v + xi * vs + c * tiles_padded + begin, 0, (end - begin) * sizeof(floating))


# ***** the weight gradient *****
#
#   dM[xi, f, t] = (A dY[f, t] A^T)[xi]              the adjoint of the output transform
#   dU[xi, f, c] = sum_n sum_t dM[xi, f, t] V[xi, c, t]   the forward's register tile again
#   dW[f, c]     = G^T dU[:, f, c] G                   the adjoint of the weight transform
#
# the exact gradient of the forward above (the same linear maps, transposed). Images are summed
# in fixed blocks (each into its own slot of `partial`, added in block order by the plan), so the
# bits depend on the batch size only, never on the thread count.

cdef void _pixel_major(const floating[:, :, ::1] x, floating* out, Py_ssize_t ph,
                       Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp,
                       Py_ssize_t channels) noexcept nogil:
    """out (hp, wp, channels): image x (C, H, W) at (ph, pw), channels innermost, zeros
    around it and in the channels past C. Each row of the image is a transpose of its (C, W)
    values into W pixels of `channels` (conv_pack.h's, 8 x 8 blocks in registers: value by
    value, the stores had been a twentieth of a VGG-style training step)."""
    cdef Py_ssize_t C = x.shape[0], H = x.shape[1], W = x.shape[2], y
    memset(out, 0, hp * wp * channels * sizeof(floating))
    if C == 0 or W == 0:
        return
    for y in range(H):
        _transpose(&x[0, y, 0], H * W, out + ((y + ph) * wp + pw) * channels, channels, C, W)


cdef void _weight_grad_block(const floating[:, :, :, ::1] x,
                             const floating[:, :, :, ::1] grad, floating* s,
                             floating* partial, Py_ssize_t first, Py_ssize_t last,
                             Py_ssize_t chunk, Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t hp,
                             Py_ssize_t wp, Py_ssize_t tiles_padded) noexcept nogil:
    """partial[xi, f, c] (16, f_rows, c_padded) = dU over the images first..last-1, `chunk`
    images at a time (_weight_grad_chunk), each chunk's products added to the earlier ones'.

    A chunk's arrays run their reduction axis over every tile of every image of the chunk,
    channels innermost: vt[xi, (k, t), c] (c_padded channels) and dmt[xi, group, (k, t), q]
    (output channel group * lanes + q), transformed a vector of channels at a time from the
    images laid out pixel-major, so that the forward's register tile (winograd.h's product)
    computes dU 8 x 16 at a time and stores it once per chunk. Tiles past the last (up to
    tiles_padded) stay zero. s: this thread's scratch, _weight_grad_room values for `chunk`
    images (its layout is this function's)."""
    cdef Py_ssize_t C = x.shape[1], F = grad.shape[1], oh = grad.shape[2], ow = grad.shape[3]
    cdef Py_ssize_t L = CNN_BLOCK_LANES, f_rows = _lane_rows(F), groups = f_rows // L
    cdef Py_ssize_t c_padded = _vector_channels(C)
    cdef Py_ssize_t tiles_h = (oh + 1) // 2, tiles_w = (ow + 1) // 2
    cdef Py_ssize_t n_tiles = tiles_h * tiles_w
    cdef Py_ssize_t depth = chunk * tiles_padded
    cdef Py_ssize_t vts = _spread(depth * c_padded), dms = _spread(depth * f_rows)
    cdef Py_ssize_t start, count, k, xi, g
    cdef floating* vt = s + hp * wp * c_padded + (2 * tiles_h) * (2 * tiles_w) * f_rows
    cdef floating* dmt = vt + 16 * vts
    if n_tiles < tiles_padded:
        # Only the tiles past the last are read without being written: zero them alone (the
        # whole arrays are megabytes, the padding a few rows).
        for xi in range(16):
            for k in range(chunk):
                memset(vt + xi * vts + (k * tiles_padded + n_tiles) * c_padded, 0,
                       (tiles_padded - n_tiles) * c_padded * sizeof(floating))
                for g in range(groups):
                    memset(dmt + xi * dms + g * depth * L + (k * tiles_padded + n_tiles) * L, 0,
                           (tiles_padded - n_tiles) * L * sizeof(floating))
    start = first
    while start < last:
        count = min(chunk, last - start)
        _transform_chunk(x, grad, s, vt, dmt, start, count, depth, vts, dms, ph, pw, hp, wp,
                         tiles_padded)
        _add_chunk_products(vt, dmt, partial, count * tiles_padded, depth, vts, dms, c_padded,
                            f_rows, start > first)
        start += count


cdef void _transform_chunk(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] grad,
                           floating* s, floating* vt, floating* dmt, Py_ssize_t first,
                           Py_ssize_t count, Py_ssize_t depth, Py_ssize_t vts, Py_ssize_t dms,
                           Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t hp, Py_ssize_t wp,
                           Py_ssize_t tiles_padded) noexcept nogil:
    """V and dM of images first..first+count-1 (_weight_grad_block's layout)."""
    cdef Py_ssize_t C = x.shape[1], F = grad.shape[1], oh = grad.shape[2], ow = grad.shape[3]
    cdef Py_ssize_t L = CNN_BLOCK_LANES, f_rows = _lane_rows(F), groups = f_rows // L
    cdef Py_ssize_t c_padded = _vector_channels(C)
    cdef Py_ssize_t tiles_h = (oh + 1) // 2, tiles_w = (ow + 1) // 2
    cdef Py_ssize_t gh = 2 * tiles_h, gw = 2 * tiles_w, n_tiles = tiles_h * tiles_w
    cdef Py_ssize_t k, g, cb, t, ty, tx
    cdef floating* image = s
    cdef floating* gradient = s + hp * wp * c_padded
    cdef const floating* patch
    for k in range(count):
        _pixel_major(x[first + k], image, ph, pw, hp, wp, c_padded)
        _pixel_major(grad[first + k], gradient, 0, 0, gh, gw, f_rows)
        for t in range(n_tiles):
            ty, tx = t // tiles_w, t % tiles_w
            for cb in range(c_padded // CNN_BLOCK):
                patch = image + ((2 * ty) * wp + 2 * tx) * c_padded + cb * CNN_BLOCK
                if floating is float:
                    cnn_winograd_input_channels_f32(
                        patch, c_padded, wp * c_padded,
                        vt + (k * tiles_padded + t) * c_padded + cb * CNN_BLOCK, vts)
                else:
                    cnn_winograd_input_channels_f64(
                        patch, c_padded, wp * c_padded,
                        vt + (k * tiles_padded + t) * c_padded + cb * CNN_BLOCK, vts)
            for g in range(groups):
                patch = gradient + ((2 * ty) * gw + 2 * tx) * f_rows + g * L
                if floating is float:
                    cnn_winograd_gradient_channels_f32(
                        patch, f_rows, gw * f_rows,
                        dmt + g * depth * L + (k * tiles_padded + t) * L, dms)
                else:
                    cnn_winograd_gradient_channels_f64(
                        patch, f_rows, gw * f_rows,
                        dmt + g * depth * L + (k * tiles_padded + t) * L, dms)


cdef void _add_chunk_products(const floating* vt, const floating* dmt, floating* partial,
                              Py_ssize_t used, Py_ssize_t depth, Py_ssize_t vts,
                              Py_ssize_t dms, Py_ssize_t c_padded, Py_ssize_t f_rows,
                              bint add) noexcept nogil:
    """partial[xi, f, c] (+)= the sums over the chunk's first `used` tiles (of `depth` laid
    out) of dmt x vt, for every xi, group and vector of input channels."""
    cdef Py_ssize_t L = CNN_BLOCK_LANES, xi, g, c, width
    for xi in range(16):
        for g in range(f_rows // L):
            c = 0
            while c < c_padded:  # a vector of input channels (or two: _product_width)
                width = _product_width(c, c_padded, floating is float)
                _product(dmt + xi * dms + g * depth * L, vt + xi * vts + c, used, c_padded,
                         partial + (xi * f_rows + g * L) * c_padded + c, c_padded, width, add)
                c += width


cdef void _winograd_weight_grad(const floating[:, :, :, ::1] x,     # IN  (N, C, H, W)
                                const floating[:, :, :, ::1] grad,  # IN  (N, F, OH, OW)
                                floating[:, :, :, ::1] partial,     # OUT (blocks, 16, Fr, Cp)
                                floating[:, ::1] scratch,           # (threads, _weight_grad_room)
                                Py_ssize_t images_per_block, Py_ssize_t ph, Py_ssize_t pw,
                                Py_ssize_t hp, Py_ssize_t wp, Py_ssize_t tiles_padded,
                                int num_threads):
    """partial[b] = dU summed over block b's images (output channels rounded up to whole
    groups of lanes, input channels to whole vectors: _weight_grad_block)."""
    cdef Py_ssize_t b, blocks = partial.shape[0], N = x.shape[0]
    cdef Py_ssize_t chunk = _weight_grad_chunk(x.shape[1], grad.shape[1], tiles_padded,
                                               images_per_block)
    with nogil:
        if _serial(num_threads, blocks):
            for b in range(blocks):
                _weight_grad_block(x, grad, &scratch[0, 0], &partial[b, 0, 0, 0],
                                   b * images_per_block, min(N, (b + 1) * images_per_block),
                                   chunk, ph, pw, hp, wp, tiles_padded)
        else:
            for b in prange(blocks, schedule="dynamic", num_threads=num_threads):
                _weight_grad_block(x, grad, &scratch[threadid(), 0], &partial[b, 0, 0, 0],
                                   b * images_per_block, min(N, (b + 1) * images_per_block),
                                   chunk, ph, pw, hp, wp, tiles_padded)


# The weight gradient's adjoint adds the blocks' partial sums this many input channels at a time.
DEF ADJOINT_CHANNELS = 64


cdef void _winograd_weight_adjoint(const floating[:, :, :, ::1] partial,  # IN  (B, 16, Fr, Cp)
                                   floating[:, :, :, ::1] dw,             # OUT (F, C, 3, 3)
                                   int num_threads) noexcept nogil:
    """dw[f, c] = G^T du[:, f, c] G, G^T = [[1,1/2,1/2,0],[0,1/2,-1/2,0],[0,1/2,1/2,1]], du
    being the blocks' partial sums added in block order (the bits of NumPy's sum over the
    first axis): one pass over the partial sums, the team sharing the output channels (NumPy
    summed the blocks' megabytes on one thread, then copied the result's valid channels)."""
    cdef Py_ssize_t F = dw.shape[0], f
    if _serial(num_threads, F) or partial.shape[0] * 16 * F * dw.shape[1] < MIN_PARALLEL_PACK:
        for f in range(F):
            _adjoint_channel(partial, dw, f)
    else:
        for f in prange(F, schedule="static", num_threads=num_threads):
            _adjoint_channel(partial, dw, f)


cdef void _adjoint_channel(const floating[:, :, :, ::1] partial, floating[:, :, :, ::1] dw,
                           Py_ssize_t f) noexcept nogil:
    """dw[f] of _winograd_weight_adjoint, ADJOINT_CHANNELS input channels at a time: the
    blocks' rows of them are added whole (reading each (f, c) across the blocks' sixteen
    planes touched 256 pages a value and ran 3 times slower than NumPy's sum)."""
    cdef Py_ssize_t C = dw.shape[1], B = partial.shape[0], c0, j, width, r, i, b, xi
    cdef floating total[16][ADJOINT_CHANNELS]
    cdef floating t[3][4]
    cdef const floating* row
    for c0 in range(0, C, ADJOINT_CHANNELS):
        width = min(ADJOINT_CHANNELS, C - c0)
        for xi in range(16):
            row = &partial[0, xi, f, c0]
            for j in range(width):
                total[xi][j] = row[j]
        for b in range(1, B):
            for xi in range(16):
                row = &partial[b, xi, f, c0]
                for j in range(width):
                    total[xi][j] = total[xi][j] + row[j]
        for j in range(width):
            for i in range(4):  # t = G^T u, u[r][i] = total[4 * r + i][j]
                t[0][i] = total[i][j] + (total[4 + i][j] + total[8 + i][j]) * <floating> 0.5
                t[1][i] = (total[4 + i][j] - total[8 + i][j]) * <floating> 0.5
                t[2][i] = (total[4 + i][j] + total[8 + i][j]) * <floating> 0.5 + total[12 + i][j]
            for r in range(3):  # t G
                dw[f, c0 + j, r, 0] = t[r][0] + (t[r][1] + t[r][2]) * <floating> 0.5
                dw[f, c0 + j, r, 1] = (t[r][1] - t[r][2]) * <floating> 0.5
                dw[f, c0 + j, r, 2] = (t[r][1] + t[r][2]) * <floating> 0.5 + t[r][3]
