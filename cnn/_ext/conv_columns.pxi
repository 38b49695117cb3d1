# im2col and col2im over C-contiguous NCHW arrays: the column form of a convolution, which
# grouped convolutions multiply with batched GEMMs. Included by conv.pyx.
#
# Column layout: for an input x of shape (N, C, H, W), a kernel (KH, KW), stride (SH, SW),
# padding (PH, PW) and dilation (DH, DW), the columns have shape (N, C*KH*KW, OH*OW) with
#
#     cols[n, (c*KH + i)*KW + j, oy*OW + ox] = x[n, c, oy*SH - PH + i*DH, ox*SW - PW + j*DW]
#
# and zero where that position falls in the padding. `W.reshape(F, C*KH*KW) @ cols[n]` is then
# image n's output (F, OH*OW), already in NCHW order, so one batched `np.matmul(w2d, cols)`
# convolves the whole batch without a transpose. Rows are ordered channel first, so the rows of
# group g of a grouped convolution are the contiguous block [g*Cg*KH*KW, (g+1)*Cg*KH*KW).
#
# col2im is the adjoint: it sums every column entry back into the input position it was read
# from.
#
# Threads take whole images (prange over n), so no two threads ever write the same element and
# the result is bit-identical for any thread count. Scheduling is dynamic: when another process
# holds a core, the other thread takes the remaining images instead of waiting for a slowed one.
# ConvPlan checks every array against its geometry before calling these.

# Below this many column elements a thread team costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_COLUMNS = 1 << 15


cdef inline Py_ssize_t _first_inside(Py_ssize_t offset, Py_ssize_t stride,
                                     Py_ssize_t n_out) noexcept nogil:
    """The smallest o in [0, n_out] with o*stride + offset >= 0."""
    if offset >= 0:
        return 0
    return min((-offset + stride - 1) // stride, n_out)


cdef inline Py_ssize_t _end_inside(Py_ssize_t offset, Py_ssize_t stride, Py_ssize_t size,
                                   Py_ssize_t n_out) noexcept nogil:
    """The smallest o in [0, n_out] with o*stride + offset >= size."""
    if offset >= size:
        return 0
    return min((size - offset + stride - 1) // stride, n_out)


cdef void _im2col_image(const floating[:, :, ::1] img,   # IN  (C, H, W)
                        floating[:, ::1] col,             # OUT (C*KH*KW, OH*OW)
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t oh, Py_ssize_t ow) noexcept nogil:
    cdef Py_ssize_t C = img.shape[0], H = img.shape[1], W = img.shape[2]
    cdef Py_ssize_t c, i, j, row, oy, ox, y, x_offset, ox_begin, ox_end, base
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                x_offset = j * dw - pw
                # Output columns whose input column is inside the image: [ox_begin, ox_end).
                ox_begin = _first_inside(x_offset, sw, ow)
                ox_end = max(_end_inside(x_offset, sw, W, ow), ox_begin)
                for oy in range(oh):
                    y = oy * sh - ph + i * dh
                    base = oy * ow
                    if y < 0 or y >= H:
                        for ox in range(ow):
                            col[row, base + ox] = 0
                        continue
                    for ox in range(ox_begin):
                        col[row, base + ox] = 0
                    for ox in range(ox_begin, ox_end):
                        col[row, base + ox] = img[c, y, ox * sw + x_offset]
                    for ox in range(ox_end, ow):
                        col[row, base + ox] = 0


cdef void _col2im_image(const floating[:, ::1] col,    # IN  (C*KH*KW, OH*OW)
                        floating[:, :, ::1] img,        # OUT (C, H, W)
                        Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                        Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                        Py_ssize_t oh, Py_ssize_t ow) noexcept nogil:
    cdef Py_ssize_t C = img.shape[0], H = img.shape[1], W = img.shape[2]
    cdef Py_ssize_t c, i, j, row, oy, ox, y, x_offset, ox_begin, ox_end, base
    for c in range(C):
        for y in range(H):
            for ox in range(W):
                img[c, y, ox] = 0
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                x_offset = j * dw - pw
                ox_begin = _first_inside(x_offset, sw, ow)
                ox_end = max(_end_inside(x_offset, sw, W, ow), ox_begin)
                for oy in range(oh):
                    y = oy * sh - ph + i * dh
                    if y < 0 or y >= H:
                        continue
                    base = oy * ow
                    for ox in range(ox_begin, ox_end):
                        img[c, y, ox * sw + x_offset] += col[row, base + ox]


cdef void _im2col(const floating[:, :, :, ::1] x,  # IN  (N, C, H, W)
                  floating[:, :, ::1] cols,         # OUT (N, C*KH*KW, OH*OW)
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                  Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """Fill `cols` with the convolution patches of `x` (layout at the top of this file)."""
    cdef Py_ssize_t n, N = x.shape[0]
    cdef bint parallel = (num_threads > 1 and N > 1 and
                          cols.shape[0] * cols.shape[1] * cols.shape[2] >= MIN_PARALLEL_COLUMNS)
    with nogil:
        if parallel:
            for n in prange(N, schedule="dynamic", num_threads=num_threads):
                _im2col_image(x[n], cols[n], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        else:  # no parallel region (see _openmp.serial)
            for n in range(N):
                _im2col_image(x[n], cols[n], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)


cdef void _col2im(const floating[:, :, ::1] cols,  # IN  (N, C*KH*KW, OH*OW)
                  floating[:, :, :, ::1] x,         # OUT (N, C, H, W), overwritten
                  Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                  Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                  Py_ssize_t oh, Py_ssize_t ow, int num_threads):
    """Overwrite `x` with the sum of every column entry at the position it was read from."""
    cdef Py_ssize_t n, N = x.shape[0]
    cdef bint parallel = (num_threads > 1 and N > 1 and
                          cols.shape[0] * cols.shape[1] * cols.shape[2] >= MIN_PARALLEL_COLUMNS)
    with nogil:
        if parallel:
            for n in prange(N, schedule="dynamic", num_threads=num_threads):
                _col2im_image(cols[n], x[n], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
        else:  # no parallel region (see _openmp.serial)
            for n in range(N):
                _col2im_image(cols[n], x[n], kh, kw, sh, sw, ph, pw, dh, dw, oh, ow)
