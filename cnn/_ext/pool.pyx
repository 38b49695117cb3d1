"""Max-pooling (with argmax) and average-pooling over planes, forward and backward.

Every function works on a stack of independent planes: the entry points in cnn/_ext/pooling.py
view an (N, C, H, W) array as (N*C, H, W). Threads take whole planes (prange over planes), so no two
threads write one element and results are bit-identical for any thread count. Work too small to
share runs serially, outside any parallel region: entering one, even with one thread, cost about
0.8 us (two futex calls among them), a good part of a batch-1 layer's time.

Max-pool follows PyTorch's CPU kernel exactly: padding counts as minus infinity (padded positions
are never candidates), the first maximum in row-major window order wins, and a NaN wins over any
number (a later NaN over an earlier one). The index stored for each output is the flat position
y*W + x inside its plane; -1 marks a window that covers no input position (possible with dilation).

Average-pool follows PyTorch too: with count_include_pad the divisor is the window size clipped to
the padded input; without it, the number of input positions the window covers.

The geometry comes checked from cnn/_ext/geometry.py; these functions check only what keeps them
safe whatever they are given: positive window sizes, strides and dilations, non-negative padding
and arrays whose plane counts agree. Every window is clipped to its plane, so an output of any
size reads and writes nothing outside the arrays.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.math cimport INFINITY
from libc.stdint cimport int64_t
from libc.stdlib cimport free, malloc

from ._buffers cimport disjoint, is_double, release, take
from cnn._ext._replay cimport BoundStep

# Below this many output elements a thread team costs more than it saves.
cdef Py_ssize_t MIN_PARALLEL_WORK = 1 << 14
# Average-pooling sums this many planes side by side (see _avg_pool_planes).
DEF PLANE_GROUP = 8
# A global average pool sums each plane in this many partial sums (_plane_sum).
DEF SUM_LANES = 16
# A global average pool shares its planes among the threads from this many input values on
# (ResNet-8's batch-1000 forward pools chunks of 31 images, 127k values: 2.1 -> 1.1 ms shared;
# 8 images alone 12.4 -> 9.4 us).
cdef Py_ssize_t MIN_PARALLEL_SUM = 1 << 15


cdef inline Py_ssize_t _chunk(Py_ssize_t planes, int num_threads) noexcept nogil:
    """Planes per grab of the dynamic schedule: about 8 grabs per thread. One plane per grab
    made the threads queue on the schedule's counter for small planes (a global average pool's
    backward at 2 threads took 5 times as long as at 1)."""
    return max(1, planes // (8 * num_threads))


cdef int _check(Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph,
                Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw, Py_ssize_t planes,
                Py_ssize_t out_planes) except -1:
    if min(kh, kw, sh, sw, dh, dw) < 1 or min(ph, pw) < 0:
        raise ValueError(f"pool: expected kernel, stride and dilation >= 1 and padding >= 0, got "
                         f"kernel {(kh, kw)}, stride {(sh, sw)}, padding {(ph, pw)}, dilation "
                         f"{(dh, dw)}")
    if planes != out_planes:
        raise ValueError(f"pool: expected as many output planes as input planes ({planes}), "
                         f"got {out_planes}")
    return 0


cdef inline Py_ssize_t _first_inside(Py_ssize_t start, Py_ssize_t step) noexcept nogil:
    """The first of start, start+step, ... that is >= 0."""
    if start >= 0:
        return start
    return start + ((-start + step - 1) // step) * step


cdef inline Py_ssize_t _count(Py_ssize_t begin, Py_ssize_t end, Py_ssize_t step) noexcept nogil:
    """How many of begin, begin+step, ... are < end."""
    if begin >= end:
        return 0
    return (end - begin + step - 1) // step


cdef void _window_bounds(Py_ssize_t n_out, Py_ssize_t size, Py_ssize_t k, Py_ssize_t s,
                         Py_ssize_t p, Py_ssize_t d, Py_ssize_t* first,
                         Py_ssize_t* count) noexcept nogil:
    """For each output o: the first input position of its window inside [0, size), and how many
    of its positions (first, first + d, ...) are inside."""
    cdef Py_ssize_t o, start
    for o in range(n_out):
        start = o * s - p
        first[o] = _first_inside(start, d)
        count[o] = _count(first[o], min(start + (k - 1) * d + 1, size), d)


cdef void _max_pool_plane(const floating* x, Py_ssize_t W, floating* out, int64_t* indices,
                          Py_ssize_t oh, Py_ssize_t ow,
                          const Py_ssize_t* y_first, const Py_ssize_t* y_count,
                          const Py_ssize_t* x_first, const Py_ssize_t* x_count,
                          Py_ssize_t dh, Py_ssize_t dw) noexcept nogil:
    """One plane: x (H, W) row-major, out and indices (oh, ow)."""
    cdef Py_ssize_t oy, ox, y0, x0, ny, nx, a, b, y, xx
    cdef int64_t best_index
    cdef floating best, value
    cdef bint take
    for oy in range(oh):
        y0, ny = y_first[oy], y_count[oy]
        for ox in range(ow):
            x0, nx = x_first[ox], x_count[ox]
            if ny == 0 or nx == 0:
                out[oy * ow + ox] = -INFINITY
                indices[oy * ow + ox] = -1
                continue
            best = -INFINITY
            best_index = y0 * W + x0
            for a in range(ny):
                y = y0 + a * dh
                for b in range(nx):
                    xx = x0 + b * dw
                    value = x[y * W + xx]
                    # `value != value` is the NaN test: NaN wins, as in PyTorch. Selects, not
                    # branches: on real data the winner's position is unpredictable.
                    take = (value > best) | (value != value)
                    best = value if take else best
                    best_index = y * W + xx if take else best_index
            out[oy * ow + ox] = best
            indices[oy * ow + ox] = best_index


cdef void _max_pool_backward_plane(const floating* grad_out, const int64_t* indices,
                                   Py_ssize_t n_out, floating* grad_in,
                                   Py_ssize_t size) noexcept nogil:
    """One plane: grad_in (size,) = the values of grad_out (n_out,) at their indices."""
    cdef Py_ssize_t k, index
    for k in range(size):
        grad_in[k] = 0
    for k in range(n_out):
        index = indices[k]
        # Indices come from max_pool_forward; the range test keeps a forged one harmless.
        if 0 <= index < size:
            grad_in[index] += grad_out[k]


cdef inline Py_ssize_t _avg_window(Py_ssize_t o, Py_ssize_t k, Py_ssize_t s, Py_ssize_t p,
                                   Py_ssize_t size, Py_ssize_t* begin,
                                   Py_ssize_t* end) noexcept nogil:
    """Clip output o's window to the input in [begin, end); return its size clipped to the padding."""
    cdef Py_ssize_t start = o * s - p
    cdef Py_ssize_t stop = min(start + k, size + p)
    cdef Py_ssize_t padded = stop - start
    begin[0] = max(start, 0)
    end[0] = min(stop, size)
    return padded


cdef void _avg_pool_planes(const floating[:, :, ::1] x, floating[:, :, ::1] out,
                           Py_ssize_t first, Py_ssize_t count, Py_ssize_t kh, Py_ssize_t kw,
                           Py_ssize_t sh, Py_ssize_t sw, Py_ssize_t ph, Py_ssize_t pw,
                           bint count_include_pad) noexcept nogil:
    """Planes first, ..., first + count - 1 (count <= PLANE_GROUP): their windows are the same,
    so their sums run side by side, independent chains of additions (one plane's chain waits
    about 4 cycles for each addition: a global 8x8 pool ran at 6 GB/s). Each plane's values
    are added in the same order as alone, so the grouping does not change the bits."""
    cdef Py_ssize_t H = x.shape[1], W = x.shape[2], g
    cdef Py_ssize_t oy, ox, y, xx, y_begin, y_end, x_begin, x_end, padded_h, padded_w, divisor
    cdef floating total[PLANE_GROUP]
    for oy in range(out.shape[1]):
        padded_h = _avg_window(oy, kh, sh, ph, H, &y_begin, &y_end)
        for ox in range(out.shape[2]):
            padded_w = _avg_window(ox, kw, sw, pw, W, &x_begin, &x_end)
            if y_begin >= y_end or x_begin >= x_end:
                for g in range(count):
                    out[first + g, oy, ox] = 0
                continue
            if count_include_pad:
                divisor = padded_h * padded_w
            else:
                divisor = (y_end - y_begin) * (x_end - x_begin)
            for g in range(PLANE_GROUP):
                total[g] = 0
            for y in range(y_begin, y_end):
                for xx in range(x_begin, x_end):
                    for g in range(count):
                        total[g] = total[g] + x[first + g, y, xx]
            for g in range(count):
                out[first + g, oy, ox] = total[g] / divisor


cdef floating _plane_sum(const floating* values, Py_ssize_t n) noexcept nogil:
    """The sum of n contiguous values in one fixed order: SUM_LANES partial sums side by side
    (lane j adds values j, j + SUM_LANES, ... in turn: gcc vectorizes the lanes), then lane
    j + half added to lane j, halving half from SUM_LANES / 2 to 1. A global average pool
    (ResNet-8's last 8 x 8 planes) summed each plane value by value, as _avg_pool_planes' windows
    do: 2.2 ms of a batch-1000 forward of about 100."""
    cdef floating lanes[SUM_LANES]
    cdef Py_ssize_t i, j, half = SUM_LANES // 2, whole = n - n % SUM_LANES
    for j in range(SUM_LANES):
        lanes[j] = 0
    for i in range(0, whole, SUM_LANES):
        for j in range(SUM_LANES):
            lanes[j] = lanes[j] + values[i + j]
    for j in range(n - whole):
        lanes[j] = lanes[j] + values[whole + j]
    while half > 0:
        for j in range(half):
            lanes[j] = lanes[j] + lanes[j + half]
        half = half // 2
    return lanes[0]


cdef void _global_avg_pool(const floating* first, floating* out, Py_ssize_t planes,
                           Py_ssize_t size, int num_threads) noexcept nogil:
    """out[p] = the mean of plane p of `planes` planes of `size` values at `first` (a window
    covering the whole plane, no padding), on _global_pool_team's threads."""
    cdef Py_ssize_t team = _global_pool_team(planes, size, num_threads), t
    if team == 1:
        _global_pool_share(first, out, planes, size, 1, 0)
    else:
        for t in prange(team, schedule="static", num_threads=team):
            _global_pool_share(first, out, planes, size, team, t)


cdef inline Py_ssize_t _global_pool_team(Py_ssize_t planes, Py_ssize_t size,
                                         int num_threads) noexcept nogil:
    """The threads _global_avg_pool runs on: one for little work."""
    if planes > 1 and num_threads > 1 and planes * size >= MIN_PARALLEL_SUM:
        return min(num_threads, planes)
    return 1


cdef void _global_pool_share(const floating* first, floating* out, Py_ssize_t planes,
                             Py_ssize_t size, Py_ssize_t team, Py_ssize_t t) noexcept nogil:
    """Share t of _global_avg_pool on a team of `team` threads: a range of planes, each
    summed in _plane_sum's order, the same for any team."""
    cdef Py_ssize_t p
    for p in range(planes * t // team, planes * (t + 1) // team):
        out[p] = _plane_sum(first + p * size, size) / size


def global_avg_pool(x,    # IN  (N, C, H, W)
                    out,  # OUT (N, C, 1, 1)
                    int num_threads):
    """out[n, c, 0, 0] = the mean of plane (n, c): avg_pool_forward's values for a window
    covering the whole plane without padding, with C-contiguous float arrays of one dtype
    taken as buffers (ValueError or TypeError naming the argument otherwise). A batch-1
    network's pool (64 planes of 8 x 8) spent 1 us of its 1.2 in avg_pool_forward's typed
    memoryviews, fused dispatch and planes' reshapes."""
    cdef Py_buffer views[2]  # x, out
    cdef int taken = 0
    try:
        taken = _take_global_pool(x, out, views)
        _run_global_pool(views, num_threads)
    finally:
        release(views, taken)


cdef int _take_global_pool(x, out, Py_buffer* views) except -1:
    """Take x's and out's buffers into views[0] and views[1] and check them (global_avg_pool's
    rules); returns how many were taken (2), or raises having released any it took."""
    take(x, &views[0], 4, False, "x")
    try:
        take(out, &views[1], 4, True, "out")
    except BaseException:
        release(views, 1)
        raise
    try:
        if is_double(&views[0]) != is_double(&views[1]):
            raise TypeError("out: expected the dtype of x")
        shape = (views[1].shape[0], views[1].shape[1], views[1].shape[2], views[1].shape[3])
        if shape != (views[0].shape[0], views[0].shape[1], 1, 1):
            raise ValueError(f"out: expected shape ({views[0].shape[0]}, "
                             f"{views[0].shape[1]}, 1, 1), got {shape}")
        if views[0].shape[2] * views[0].shape[3] == 0 and views[0].shape[0] * views[0].shape[1]:
            raise ValueError("x: expected planes of at least one value")
    except BaseException:
        release(views, 2)
        raise
    return 2


cdef void _run_global_pool(Py_buffer* views, int num_threads) noexcept:
    """The global pool's kernel on checked buffers (_take_global_pool)."""
    cdef Py_ssize_t planes = views[0].shape[0] * views[0].shape[1]
    cdef Py_ssize_t size = views[0].shape[2] * views[0].shape[3]
    cdef bint f64 = is_double(&views[0])
    with nogil:
        if f64:
            _global_avg_pool(<const double*>views[0].buf, <double*>views[1].buf, planes, size,
                             num_threads)
        else:
            _global_avg_pool(<const float*>views[0].buf, <float*>views[1].buf, planes, size,
                             num_threads)


cdef class BoundGlobalAvgPool(BoundStep):
    """global_avg_pool bound to its arrays (cnn.compile's bound programs): ``bound(threads)``
    writes into `out` the means of x's planes as they then are, the buffers taken and checked
    once here (global_avg_pool's rules, and out sharing no memory with x), on a team of at most
    `num_threads`; a bound program runs its shares (BoundStep) with its other steps'. The
    buffers are held, so NumPy refuses to resize the arrays (unless told not to check,
    `refcheck=False`, which frees memory the kernel then writes: never do that to a bound
    array)."""

    cdef Py_buffer views[2]  # x, out
    cdef int taken
    cdef Py_ssize_t planes, size
    cdef bint f64

    def __cinit__(self, int num_threads, x, out):
        self.taken = 0
        self.taken = _take_global_pool(x, out, self.views)
        disjoint(&self.views[1], &self.views[0], "x")
        self.planes = self.views[0].shape[0] * self.views[0].shape[1]
        self.size = self.views[0].shape[2] * self.views[0].shape[3]
        self.f64 = is_double(&self.views[0])
        # Shared by the whole team, however little the work (_replay.BoundSteps says why).
        self.team = min(max(1, num_threads), self.planes)

    def __dealloc__(self):
        release(self.views, self.taken)

    cdef void share(self, Py_ssize_t t) noexcept nogil:
        if self.f64:
            _global_pool_share(<const double*>self.views[0].buf, <double*>self.views[1].buf,
                               self.planes, self.size, self.team, t)
        else:
            _global_pool_share(<const float*>self.views[0].buf, <float*>self.views[1].buf,
                               self.planes, self.size, self.team, t)


cdef void _avg_pool_backward_plane(const floating* grad_out, Py_ssize_t oh, Py_ssize_t ow,
                                   floating* grad_in, Py_ssize_t H, Py_ssize_t W,
                                   Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                                   Py_ssize_t ph, Py_ssize_t pw,
                                   bint count_include_pad) noexcept nogil:
    """One plane: grad_out (oh, ow) spread over grad_in (H, W), both row-major."""
    cdef Py_ssize_t oy, ox, y, xx, y_begin, y_end, x_begin, x_end, padded_h, padded_w, divisor
    cdef floating share
    for y in range(H * W):
        grad_in[y] = 0
    for oy in range(oh):
        padded_h = _avg_window(oy, kh, sh, ph, H, &y_begin, &y_end)
        for ox in range(ow):
            padded_w = _avg_window(ox, kw, sw, pw, W, &x_begin, &x_end)
            if y_begin >= y_end or x_begin >= x_end:
                continue
            if count_include_pad:
                divisor = padded_h * padded_w
            else:
                divisor = (y_end - y_begin) * (x_end - x_begin)
            share = grad_out[oy * ow + ox] / divisor
            for y in range(y_begin, y_end):
                for xx in range(x_begin, x_end):
                    grad_in[y * W + xx] += share


def max_pool_forward(const floating[:, :, ::1] x,     # IN  (P, H, W)
                     floating[:, :, ::1] out,          # OUT (P, OH, OW)
                     int64_t[:, :, ::1] indices,       # OUT (P, OH, OW)
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                     Py_ssize_t ph, Py_ssize_t pw, Py_ssize_t dh, Py_ssize_t dw,
                     int num_threads):
    """Window maxima of every plane and the flat in-plane index of each maximum."""
    cdef Py_ssize_t p, planes = x.shape[0], oh = out.shape[1], ow = out.shape[2]
    cdef Py_ssize_t W = x.shape[2], x_plane = x.shape[1] * x.shape[2], out_plane = oh * ow
    cdef const floating* x_data
    cdef floating* out_data
    cdef int64_t* index_data
    cdef bint parallel = (num_threads > 1 and planes > 1
                          and planes * oh * ow >= MIN_PARALLEL_WORK)
    _check(kh, kw, sh, sw, ph, pw, dh, dw, planes, out.shape[0])
    if indices.shape[0] != planes or indices.shape[1] != oh or indices.shape[2] != ow:
        raise ValueError(f"indices: expected the shape of out {(planes, oh, ow)}, got "
                         f"{(indices.shape[0], indices.shape[1], indices.shape[2])}")
    # Window bounds are the same for every plane: computed once, no division in the loops.
    cdef Py_ssize_t* bounds = <Py_ssize_t*> malloc(2 * (oh + ow) * sizeof(Py_ssize_t) + 1)
    if bounds == NULL:
        raise MemoryError()
    try:
        _window_bounds(oh, x.shape[1], kh, sh, ph, dh, bounds, bounds + oh)
        _window_bounds(ow, x.shape[2], kw, sw, pw, dw, bounds + 2 * oh, bounds + 2 * oh + ow)
        if planes * oh * ow == 0:
            return
        # Planes by pointer: slicing a memoryview per plane (x[p]) counts references
        # atomically on one shared counter, which two threads fought over (2 threads ran
        # 4096 planes of 16 values 19 times slower than one).
        x_data, out_data, index_data = &x[0, 0, 0], &out[0, 0, 0], &indices[0, 0, 0]
        with nogil:
            if parallel:
                for p in prange(planes, schedule="dynamic",
                                chunksize=_chunk(planes, num_threads), num_threads=num_threads):
                    _max_pool_plane(x_data + p * x_plane, W, out_data + p * out_plane,
                                    index_data + p * out_plane, oh, ow, bounds, bounds + oh,
                                    bounds + 2 * oh, bounds + 2 * oh + ow, dh, dw)
            else:
                for p in range(planes):
                    _max_pool_plane(x_data + p * x_plane, W, out_data + p * out_plane,
                                    index_data + p * out_plane, oh, ow, bounds, bounds + oh,
                                    bounds + 2 * oh, bounds + 2 * oh + ow, dh, dw)
    finally:
        free(bounds)


def max_pool_backward(const floating[:, ::1] grad_out,   # IN  (P, OH*OW)
                      const int64_t[:, ::1] indices,      # IN  (P, OH*OW)
                      floating[:, ::1] grad_in,           # OUT (P, H*W), overwritten
                      int num_threads):
    """Route each output gradient to the input position that held its window's maximum."""
    cdef Py_ssize_t p, planes = grad_in.shape[0], size = grad_in.shape[1]
    cdef Py_ssize_t n_out = grad_out.shape[1]
    cdef const floating* grad_data
    cdef const int64_t* index_data
    cdef floating* in_data
    cdef bint parallel = (num_threads > 1 and planes > 1
                          and planes * grad_in.shape[1] >= MIN_PARALLEL_WORK)
    if (grad_out.shape[0] != planes or indices.shape[0] != planes
            or indices.shape[1] != grad_out.shape[1]):
        raise ValueError(f"indices: expected the shape of grad_out "
                         f"{(grad_out.shape[0], grad_out.shape[1])} and {planes} planes, got "
                         f"{(indices.shape[0], indices.shape[1])}")
    if planes * size == 0:
        return
    if n_out == 0:
        grad_in[:, :] = 0
        return
    # Planes by pointer, as max_pool_forward's.
    grad_data, index_data, in_data = &grad_out[0, 0], &indices[0, 0], &grad_in[0, 0]
    with nogil:
        if parallel:
            for p in prange(planes, schedule="dynamic", chunksize=_chunk(planes, num_threads),
                            num_threads=num_threads):
                _max_pool_backward_plane(grad_data + p * n_out, index_data + p * n_out, n_out,
                                         in_data + p * size, size)
        else:
            for p in range(planes):
                _max_pool_backward_plane(grad_data + p * n_out, index_data + p * n_out, n_out,
                                         in_data + p * size, size)


def avg_pool_forward(const floating[:, :, ::1] x,     # IN  (P, H, W)
                     floating[:, :, ::1] out,          # OUT (P, OH, OW)
                     Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                     Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad, int num_threads):
    """Window means of every plane (zero padding)."""
    cdef Py_ssize_t group, planes = x.shape[0]
    cdef Py_ssize_t groups = (planes + PLANE_GROUP - 1) // PLANE_GROUP
    cdef bint parallel = (num_threads > 1 and groups > 1
                          and planes * out.shape[1] * out.shape[2] >= MIN_PARALLEL_WORK)
    _check(kh, kw, sh, sw, ph, pw, 1, 1, planes, out.shape[0])
    # (_check has made sure the window is not empty.)
    if (out.shape[1] == 1 and out.shape[2] == 1 and kh == x.shape[1] and kw == x.shape[2]
            and ph == 0 and pw == 0 and planes > 0):
        with nogil:
            _global_avg_pool(&x[0, 0, 0], &out[0, 0, 0], planes, x.shape[1] * x.shape[2],
                             num_threads)
        return
    with nogil:
        if parallel:
            for group in prange(groups, schedule="dynamic",
                                chunksize=_chunk(groups, num_threads), num_threads=num_threads):
                _avg_pool_planes(x, out, group * PLANE_GROUP,
                                 min(PLANE_GROUP, planes - group * PLANE_GROUP), kh, kw, sh, sw,
                                 ph, pw, count_include_pad)
        else:
            for group in range(groups):
                _avg_pool_planes(x, out, group * PLANE_GROUP,
                                 min(PLANE_GROUP, planes - group * PLANE_GROUP), kh, kw, sh, sw,
                                 ph, pw, count_include_pad)


def avg_pool_backward(const floating[:, :, ::1] grad_out,   # IN  (P, OH, OW)
                      floating[:, :, ::1] grad_in,           # OUT (P, H, W), overwritten
                      Py_ssize_t kh, Py_ssize_t kw, Py_ssize_t sh, Py_ssize_t sw,
                      Py_ssize_t ph, Py_ssize_t pw, bint count_include_pad, int num_threads):
    """Spread each output gradient evenly over the input positions of its window."""
    cdef Py_ssize_t p, planes = grad_in.shape[0], H = grad_in.shape[1], W = grad_in.shape[2]
    cdef Py_ssize_t oh = grad_out.shape[1], ow = grad_out.shape[2]
    cdef const floating* grad_data
    cdef floating* in_data
    cdef bint parallel = (num_threads > 1 and planes > 1
                          and planes * grad_in.shape[1] * grad_in.shape[2] >= MIN_PARALLEL_WORK)
    _check(kh, kw, sh, sw, ph, pw, 1, 1, planes, grad_out.shape[0])
    if planes * H * W == 0:
        return
    if oh * ow == 0:
        grad_in[:, :, :] = 0
        return
    # Planes by pointer, as max_pool_forward's.
    grad_data, in_data = &grad_out[0, 0, 0], &grad_in[0, 0, 0]
    with nogil:
        if parallel:
            for p in prange(planes, schedule="dynamic", chunksize=_chunk(planes, num_threads),
                            num_threads=num_threads):
                _avg_pool_backward_plane(grad_data + p * oh * ow, oh, ow, in_data + p * H * W,
                                         H, W, kh, kw, sh, sw, ph, pw, count_include_pad)
        else:
            for p in range(planes):
                _avg_pool_backward_plane(grad_data + p * oh * ow, oh, ow, in_data + p * H * W,
                                         H, W, kh, kw, sh, sw, ph, pw, count_include_pad)
