"""Direct 2-D convolution (groups = 1) for layers with few channels: forward (optionally fused
with ReLU and a 2x2 max-pool) and the weight gradient.

Why not im2col + GEMM here: with 1 to 64 input channels the column matrix is 10-25x larger than
the input, so a GEMM over it is limited by memory, and the GEMM itself is small and skinny. These
loops read the padded input where it is and keep partial sums in registers: the register tile is
in conv_tile.h (CNN_PIXELS output pixels x CNN_BLOCK output channels).

Layouts. Inputs and outputs are C-contiguous NCHW. The wrappers (cnn/_kernels/direct_conv.py)
repack weights into `wt[tap, f]` with tap = (c*KH + i)*KW + j and f zero-padded to a multiple of
BLOCK, and give every tap's offset from a window origin inside a padded image (`taps`). The input
gradient is this same forward convolution applied to the (dilated, padded) output gradient with
rotated weights, so it needs no kernel of its own.

Threads take whole images (forward) or fixed blocks of images (weight gradient: each block sums
into its own slot of `partial`, and the wrapper adds the slots in block order), so results are
bit-identical for any thread count. Scheduling is dynamic: when another process holds a core,
the other thread takes the remaining images instead of waiting for a slowed one.
"""
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.string cimport memset

DEF BLOCK = 16            # output channels per tile at most (CNN_BLOCK in conv_tile.h)
DEF PIXELS = 4            # lanes per tile (CNN_PIXELS in conv_tile.h)


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
    void cnn_relu_max16_f32(const float* tile, float* best, int* which)
    void cnn_relu_max8_f32(const float* tile, float* best, int* which)
    void cnn_relu_max16_f64(const double* tile, double* best, long long* which)
    void cnn_relu_max8_f64(const double* tile, double* best, long long* which)


cdef inline Py_ssize_t _block(Py_ssize_t f_padded) noexcept nogil:
    """Channels per tile: 8 when the layer's channels fit in 8 (f_padded == 8), else 16."""
    return 8 if f_padded == 8 else BLOCK


cdef inline void _tile(const floating* image, const Py_ssize_t* lanes, const Py_ssize_t* taps,
                       Py_ssize_t n_taps, const floating* wt, Py_ssize_t w_stride,
                       const floating* init, Py_ssize_t init_stride, floating* out,
                       Py_ssize_t out_stride, Py_ssize_t block) noexcept nogil:
    if floating is float:
        if block == 8:
            cnn_conv_tile8_f32(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                               out, out_stride)
        else:
            cnn_conv_tile16_f32(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                                out, out_stride)
    else:
        if block == 8:
            cnn_conv_tile8_f64(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                               out, out_stride)
        else:
            cnn_conv_tile16_f64(image, lanes, taps, n_taps, wt, w_stride, init, init_stride,
                                out, out_stride)


cdef inline void _relu_max(const floating* tile, floating* best, long long* which,
                           Py_ssize_t block) noexcept nogil:
    """best[f], which[f]: ReLU'd maximum over the tile's lanes and the lane holding it."""
    cdef int which32[BLOCK]
    cdef Py_ssize_t f
    if floating is float:
        if block == 8:
            cnn_relu_max8_f32(tile, best, which32)
        else:
            cnn_relu_max16_f32(tile, best, which32)
        for f in range(block):
            which[f] = which32[f]
    else:
        if block == 8:
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


cdef inline floating _relu(floating value, bint relu) noexcept nogil:
    """max(value, 0) when relu, keeping a NaN as np.maximum does."""
    if relu and not value > 0 and value == value:
        return 0
    return value


cdef void _forward_image(const floating* padded, Py_ssize_t wp, const Py_ssize_t* taps,
                         Py_ssize_t n_taps, const floating* wt, Py_ssize_t f_padded,
                         const floating* bias, floating[:, :, ::1] out, Py_ssize_t sh,
                         Py_ssize_t sw, bint relu) noexcept nogil:
    cdef Py_ssize_t F = out.shape[0], oh = out.shape[1], ow = out.shape[2]
    cdef Py_ssize_t k, fb, oy, ox, q, f, n_pix, block = _block(f_padded)
    cdef Py_ssize_t lanes[PIXELS]
    cdef floating tile[PIXELS * BLOCK]
    for k in range(f_padded // block):
        fb = k * block
        for oy in range(oh):
            for ox in range(0, ow, PIXELS):
                n_pix = min(PIXELS, ow - ox)
                for q in range(PIXELS):
                    # Lanes past the row's end repeat pixel ox: computed, never stored.
                    lanes[q] = oy * sh * wp + (ox + (q if q < n_pix else 0)) * sw
                _tile(padded, lanes, taps, n_taps, wt + fb, f_padded, bias + fb, 0, tile,
                      BLOCK, block)
                for f in range(min(block, F - fb)):
                    for q in range(n_pix):
                        out[fb + f, oy, ox + q] = _relu(tile[q * BLOCK + f], relu)


cdef void _forward_pool_image(const floating* padded, Py_ssize_t wp, const Py_ssize_t* taps,
                              Py_ssize_t n_taps, const floating* wt, Py_ssize_t f_padded,
                              const floating* bias, floating[:, :, ::1] pooled,
                              int64_t[:, :, ::1] indices, Py_ssize_t conv_w, Py_ssize_t sh,
                              Py_ssize_t sw) noexcept nogil:
    """Conv + bias + ReLU + 2x2/2 max-pool: each tile's 4 lanes are one pooling window, in
    row-major order, so the first maximum (or a NaN) wins exactly as in max_pool2d."""
    cdef Py_ssize_t F = pooled.shape[0], ph_out = pooled.shape[1], pw_out = pooled.shape[2]
    cdef Py_ssize_t k, fb, py, px, q, f, block = _block(f_padded)
    cdef Py_ssize_t lanes[PIXELS]
    cdef Py_ssize_t window[PIXELS]
    cdef floating tile[PIXELS * BLOCK]
    cdef floating best[BLOCK]
    cdef long long which[BLOCK]
    for k in range(f_padded // block):
        fb = k * block
        for py in range(ph_out):
            for px in range(pw_out):
                for q in range(PIXELS):
                    # Window position q = (a, b): conv output pixel (2py + a, 2px + b).
                    window[q] = (2 * py + q // 2) * conv_w + 2 * px + q % 2
                    lanes[q] = (2 * py + q // 2) * sh * wp + (2 * px + q % 2) * sw
                _tile(padded, lanes, taps, n_taps, wt + fb, f_padded, bias + fb, 0, tile,
                      BLOCK, block)
                _relu_max(tile, best, which, block)
                for f in range(min(block, F - fb)):
                    pooled[fb + f, py, px] = best[f]
                    indices[fb + f, py, px] = window[which[f]]


def conv_forward(const floating[:, :, :, ::1] x,      # IN  (N, C, H, W)
                 const floating[:, ::1] wt,            # IN  (C*KH*KW, F_padded), repacked weights
                 const floating[::1] bias,             # IN  (F_padded,), zeros where no bias
                 const Py_ssize_t[::1] taps,           # IN  (C*KH*KW,) tap offsets, padded image
                 floating[:, :, :, ::1] out,           # OUT (N, F, OH, OW)
                 floating[:, ::1] scratch,             # (threads, C*(H+2PH)*(W+2PW))
                 Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                 bint relu, int num_threads):
    """out = conv(x, w) + bias, then max(., 0) when `relu`."""
    cdef Py_ssize_t n, N = x.shape[0], wp = x.shape[3] + 2 * pw
    cdef floating* padded
    with nogil:
        for n in prange(N, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and N > 1):
            padded = &scratch[threadid(), 0]
            _pad_image(x[n], padded, ph, pw)
            _forward_image(padded, wp, &taps[0], taps.shape[0], &wt[0, 0], wt.shape[1],
                           &bias[0], out[n], sh, sw, relu)


def conv_relu_pool_forward(const floating[:, :, :, ::1] x,   # IN  (N, C, H, W)
                           const floating[:, ::1] wt,         # IN  (C*KH*KW, F_padded)
                           const floating[::1] bias,          # IN  (F_padded,)
                           const Py_ssize_t[::1] taps,        # IN  (C*KH*KW,)
                           floating[:, :, :, ::1] pooled,     # OUT (N, F, OH // 2, OW // 2)
                           int64_t[:, :, :, ::1] indices,     # OUT (N, F, OH // 2, OW // 2)
                           floating[:, ::1] scratch,          # (threads, C*(H+2PH)*(W+2PW))
                           Py_ssize_t conv_w, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                           Py_ssize_t pw, int num_threads):
    """max_pool2d(relu(conv(x, w) + bias), 2) and the argmax index y*OW + x of every maximum in
    its conv-output plane, without storing the convolution's output."""
    cdef Py_ssize_t n, N = x.shape[0], wp = x.shape[3] + 2 * pw
    cdef floating* padded
    with nogil:
        for n in prange(N, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and N > 1):
            padded = &scratch[threadid(), 0]
            _pad_image(x[n], padded, ph, pw)
            _forward_pool_image(padded, wp, &taps[0], taps.shape[0], &wt[0, 0], wt.shape[1],
                                &bias[0], pooled[n], indices[n], conv_w, sh, sw)


cdef Py_ssize_t _compact_gradient(const floating[:, :, ::1] grad, floating* pixel_major,
                                  Py_ssize_t f_padded, const Py_ssize_t* origins,
                                  Py_ssize_t* active_origins) noexcept nogil:
    """Copy the output pixels whose gradient is not all zero into pixel_major (count, F_padded),
    zeros in the padding channels, and their window origins into active_origins; return count.
    Behind a max-pool and a ReLU most pixels carry no gradient, and they add nothing."""
    cdef Py_ssize_t F = grad.shape[0], oh = grad.shape[1], ow = grad.shape[2]
    cdef Py_ssize_t count = 0, f, y, xx
    cdef bint active
    cdef floating* row
    for y in range(oh):
        for xx in range(ow):
            active = False
            for f in range(F):
                if grad[f, y, xx] != 0:
                    active = True
                    break
            if not active:
                continue
            row = pixel_major + count * f_padded
            for f in range(f_padded):
                row[f] = grad[f, y, xx] if f < F else 0
            active_origins[count] = origins[y * ow + xx]
            count += 1
    return count


cdef void _weight_grad_block(const floating[:, :, :, ::1] x, const floating[:, :, :, ::1] grad,
                             Py_ssize_t first, Py_ssize_t last, const Py_ssize_t* taps,
                             Py_ssize_t T, const Py_ssize_t* origins, Py_ssize_t* active,
                             floating* sums, Py_ssize_t rows, Py_ssize_t f_padded,
                             floating* padded, floating* pixel_major, Py_ssize_t ph,
                             Py_ssize_t pw) noexcept nogil:
    """Add images first..last-1's weight gradient onto sums (rows, f_padded)."""
    cdef Py_ssize_t n, t, q, k, fb, n_active, block = _block(f_padded)
    cdef Py_ssize_t lanes[PIXELS]  # a local of this call: private to the calling thread
    memset(sums, 0, rows * f_padded * sizeof(floating))
    for n in range(first, last):
        n_active = _compact_gradient(grad[n], pixel_major, f_padded, origins, active)
        if n_active == 0:
            continue
        _pad_image(x[n], padded, ph, pw)
        for t in range(0, rows, PIXELS):
            for q in range(PIXELS):
                lanes[q] = taps[t + q] if t + q < T else taps[0]
            for k in range(f_padded // block):
                fb = k * block
                # The tile reads its starting sums from, and writes them back to, the same
                # rows: it accumulates this image onto the block's sums.
                _tile(padded, lanes, active, n_active, pixel_major + fb, f_padded,
                      sums + t * f_padded + fb, f_padded, sums + t * f_padded + fb, f_padded,
                      block)


def conv_weight_grad(const floating[:, :, :, ::1] x,      # IN  (N, C, H, W)
                     const floating[:, :, :, ::1] grad,   # IN  (N, F, OH, OW)
                     const Py_ssize_t[::1] taps,          # IN  (T,) tap offsets, T = C*KH*KW
                     const Py_ssize_t[::1] origins,       # IN  (OH*OW,) window origins
                     floating[:, :, ::1] partial,         # OUT (blocks, T rounded up to 4, F_padded)
                     floating[:, ::1] scratch,            # (threads, C*Hp*Wp + OH*OW*F_padded)
                     Py_ssize_t[:, ::1] active,           # (threads, OH*OW) scratch
                     Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t images_per_block,
                     int num_threads):
    """partial[b, t, f] = sum over the images of block b and the output pixels p of
    grad[n, f, p] * padded x[n] at origins[p] + taps[t]. Rows t >= T hold junk (their lanes
    repeat tap 0), so every tile is a full group of PIXELS taps."""
    cdef Py_ssize_t blocks = partial.shape[0], rows = partial.shape[1]
    cdef Py_ssize_t f_padded = partial.shape[2], N = x.shape[0], b
    cdef Py_ssize_t image_size = x.shape[1] * (x.shape[2] + 2 * ph) * (x.shape[3] + 2 * pw)
    cdef floating* padded
    with nogil:
        for b in prange(blocks, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and blocks > 1):
            padded = &scratch[threadid(), 0]
            _weight_grad_block(x, grad, b * images_per_block,
                               min((b + 1) * images_per_block, N), &taps[0], taps.shape[0],
                               &origins[0], &active[threadid(), 0], &partial[b, 0, 0], rows,
                               f_padded, padded, padded + image_size, ph, pw)


cdef void _input_grad_image(const floating* grad, Py_ssize_t F, Py_ssize_t n_pixels,
                            const floating* weight, Py_ssize_t T, const Py_ssize_t* taps,
                            const Py_ssize_t* origins, floating* padded, floating* column,
                            floating[:, :, ::1] dx, Py_ssize_t ph,
                            Py_ssize_t pw) noexcept nogil:
    """dx of one image: for every output pixel p, column = sum over f of grad[f, p] * weight[f]
    (an axpy over the T taps, skipped where grad[f, p] is 0: behind a max-pool most are), then
    add the column back at the pixel's window in a padded image, and crop it."""
    cdef Py_ssize_t C = dx.shape[0], H = dx.shape[1], W = dx.shape[2]
    cdef Py_ssize_t hp = H + 2 * ph, wp = W + 2 * pw
    cdef Py_ssize_t p, f, t, c, y, xx, base
    cdef floating g
    cdef bint touched
    memset(padded, 0, C * hp * wp * sizeof(floating))
    for p in range(n_pixels):
        touched = False
        for f in range(F):
            g = grad[f * n_pixels + p]
            if g == 0:
                continue
            if not touched:
                memset(column, 0, T * sizeof(floating))
                touched = True
            for t in range(T):
                column[t] += g * weight[f * T + t]
        if touched:
            base = origins[p]
            for t in range(T):
                padded[base + taps[t]] += column[t]
    for c in range(C):
        for y in range(H):
            for xx in range(W):
                dx[c, y, xx] = padded[(c * hp + y + ph) * wp + xx + pw]


def conv_input_grad(const floating[:, :, :, ::1] grad,   # IN  (N, F, OH, OW)
                    const floating[:, ::1] weight,        # IN  (F, T), T = C*KH*KW taps
                    const Py_ssize_t[::1] taps,           # IN  (T,) tap offsets, padded image
                    const Py_ssize_t[::1] origins,        # IN  (OH*OW,) window origins
                    floating[:, :, :, ::1] dx,            # OUT (N, C, H, W)
                    floating[:, ::1] scratch,             # (threads, C*Hp*Wp + T)
                    Py_ssize_t ph, Py_ssize_t pw, int num_threads):
    """The input gradient of a convolution by scattering each output pixel's column gradient."""
    cdef Py_ssize_t n, N = grad.shape[0], F = grad.shape[1], T = weight.shape[1]
    cdef Py_ssize_t n_pixels = origins.shape[0]
    cdef Py_ssize_t image_size = dx.shape[1] * (dx.shape[2] + 2 * ph) * (dx.shape[3] + 2 * pw)
    cdef floating* padded
    if N == 0 or T == 0:
        return
    with nogil:
        for n in prange(N, schedule="dynamic", num_threads=num_threads,
                        use_threads_if=num_threads > 1 and N > 1):
            padded = &scratch[threadid(), 0]
            _input_grad_image(&grad[n, 0, 0, 0], F, n_pixels, &weight[0, 0], T, &taps[0],
                              &origins[0], padded, padded + image_size, dx[n], ph, pw)
