"""Convolution plans: one object per convolution geometry, owning everything derived from it.

A :class:`ConvPlan` is built once for a geometry (input channels and size, weight shape, stride,
padding, dilation, groups, dtype) in this module's instruction-set build, and checks that geometry
once, with errors that name the argument. It owns what follows from it: the algorithm (Winograd
for wide 3x3 layers at stride 1, direct convolution for the other groups = 1 layers and small
calls, im2col + a BLAS product per image for grouped and 1x1 ones), the tables the kernels
read (tap offsets, window origins, the weights' segment layout, Winograd's tiles), the size of
every scratch buffer, the weight repacking, and the sub-plan of the dense input gradient. Its
methods take the arrays of one call (any batch size), check them against the plan in a few
integer comparisons, allocate the outputs, and run the kernels. Kept between calls are the
weights in the kernels' layouts (_kept_weights), in entries never changed once made, and each
Python thread's own scratch for the direct kernels (_scratch), so one plan serves several
threads at once.

Layers ask for plans through ``cnn._ext.conv_plan`` (a cache keyed by geometry and instruction
set); the kernels themselves (conv_direct.pxi, conv_winograd.pxi, conv_columns.pxi) are private
to this module and reachable only through a plan's checks. Modelled on scikit-learn's
HistogramBuilder: a Cython class that owns its buffers' layout, with the loops in nogil
functions beside it.
"""
import importlib
import math
import sys
import threading
import weakref

import numpy as np

from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBuffer_Release, PyObject_GetBuffer
from cython cimport floating
from cython.parallel cimport prange, threadid
from libc.stdint cimport int64_t, uint64_t
from libc.string cimport memcpy, memset

from cnn._ext._buffers cimport take
from cnn._ext._openmp cimport serial as _serial
from cnn._ext._replay cimport BoundStep
from cnn import _aligned
from cnn._blas import use_one_thread
from cnn._ext.geometry import conv_geometry
from cnn._validation import FLOAT_DTYPES, flag, integer, real_number, shape

cdef extern from "conv_layout.h":
    enum:
        CNN_BLOCK
        CNN_NARROW_BLOCK
        CNN_PIXELS
        CNN_WIDE_PIXELS
        CNN_BLOCK_LANES
        CNN_MAX_LANES
        CNN_PAIR_BLOCK
        CNN_PAIR_TILES
        CNN_SEGMENT
        CNN_SEGMENT_GROUP
        CNN_WEIGHT_GRAD_BLOCKS

include "pointwise.pxi"
include "norm_coefficients.pxi"
include "conv_direct.pxi"
include "conv_columns.pxi"
include "conv_winograd.pxi"

# This module's instruction-set level ("avx512", "avx2" or "baseline"): setup.py builds it once
# per level as cnn._ext.<level>.conv. (No negative indices in this file: wraparound is off; and / rounds like C's.)
ISA = __name__.split(".")[2]
# The kernels of the same level that plans call: max-pool's backward (a pooled gradient to its
# argmax), and for the columns algorithm, after its GEMMs, ReLU and batch norm's affine map (by
# the rules every kernel follows).
_pool = importlib.import_module(__name__.rsplit(".", 1)[0] + ".pool")
_elementwise = importlib.import_module(__name__.rsplit(".", 1)[0] + ".elementwise")
# The team-shared BLAS products: one module for every instruction set (cnn/_ext/_gemm.pyx).
from cnn._ext import _gemm
_norm = importlib.import_module(__name__.rsplit(".", 1)[0] + ".norm")

DIRECT = "direct"
COLUMNS = "columns"
WINOGRAD = "winograd"
# Winograd's products sum over the input channels in one register tile: with fewer input
# channels than this, the tile's fixed cost and the transforms outweigh the 2.25x fewer
# multiply-adds (at 16, ResNet-8's 16 -> 16 layer at batch 64 already ran its forward in
# 2.4 ms against the direct kernels' 3.3 ms, 1 thread).
WINOGRAD_MIN_CHANNELS = 16
# ... and a call of several images and at least this many output pixels (images x pixels)
# runs by Winograd; with fewer, the weights' transform (16 x F x C values, at every call of a
# training step) would cost more than the multiply-adds it saves...
WINOGRAD_MIN_OUTPUTS = 512
# ... unless the call has at least WINOGRAD_MIN_MACS_ALONE multiply-adds of the direct kernels,
# and an image at least WINOGRAD_MIN_MACS_PER_BYTE_ALONE of them per byte of its transformed
# input and products (16 (C + F) values a tile, written and read back; the ratio is
# 9 C F / (16 (C + F)) whatever the image's size: 4.5 for 16 -> 16, 6 for 16 -> 32, 9 for
# 32 -> 32). That is how a single image (batch-1 inference, where the plan keeps the
# transformed weights) runs by Winograd.
# Measured on an AVX-512 Xeon, one image with batch norm and ReLU, Winograd's time over the
# direct kernels', best of 7 alternated runs, two threads / one (the fifteenth session, after
# the fourteenth's faster Winograd transforms; the thresholds were 2^22, twice below 32 tiles
# and 8 a byte until then):
#   2.4M: 16 -> 16 at 32x32 0.85 / 0.83, 32 -> 32 at 16x16 0.79 / 0.78, 64 -> 64 at 8x8 (16
#   tiles) 1.01 / 0.86;
#   4.7M: 16 -> 32 at 32x32 1.05 / 0.88, 32 -> 64 at 16x16 0.83 / 0.72, 64 -> 128 at 8x8 (16
#   tiles) 1.02 / 0.87;
#   9.4M: 128 -> 128 at 8x8 (16 tiles) 0.80 / 0.81; earlier, 64 -> 64 at 16x16 0.79, 32 -> 32
#   at 32x32 0.89 (cut by rows of tiles, below, 0.61-0.80 pooled); 38M: 0.63-0.77.
# So layers of 16 tiles needed 9.4M (four times the threshold: the AVX-512 products take 32
# tiles at a time, and fewer run them half empty); the others 2.1M, of which only 16 -> 32 at
# 32x32 (in none of the bench's nets) is no faster on two threads. Since the seventeenth
# session the products' scratch and the transformed weights start on cache lines, which made
# Winograd 5-15% faster at batch 1, and the images of 16 tiles need 2.1M too: alternating in
# one process, the frozen batch-1 forwards (64 -> 64 at 8x8 now by Winograd in ResNet-8, 64 ->
# 128 at 8x8 in the VGG-style net) ResNet-8 0.97-0.98x, the VGG-style net 0.96-0.97x, on one
# thread and on two.
WINOGRAD_MIN_MACS_ALONE = 1 << 21
WINOGRAD_PAIRED_TILES = 32
WINOGRAD_MIN_MACS_PER_BYTE_ALONE = 4
# A single image on several threads is cut into rows of tiles (each thread transforming only
# its own) where the layer has no more output than input channels and each part then holds at
# least this many tiles, else by output channels (each thread transforming the whole image):
# _winograd_forward. Two threads, rows against channels, medians alternating in one process:
# 16 -> 16 at 32x32 0.90, 32 -> 32 at 32x32 pooled 0.85, 64 -> 64 at 16x16 pooled 0.95 and
# unpooled 1.01, 32 -> 32 at 16x16 0.99; but 32 -> 64 at 16x16 1.06-1.09, 16 -> 32 at 32x32
# 1.01.
WINOGRAD_ROW_PART_TILES = WINOGRAD_PAIRED_TILES
# A call with fewer multiply-adds than this runs on one thread: sharing it costs more than the
# second thread brings. 2^22 was chosen under passive waiting, where every wake-up is a system
# call; single-threaded calls entering no parallel region (each region cost about 0.8 us) made
# 2^21 better; since a batch smaller than the team is cut into one static share per thread,
# each padding its image into memory of its own (_share_of_image), 2^18 measured better,
# alternating in one process on 2 threads: ResNet-8's batch-1 forward 344 -> 322 us (its stem
# and strided layers shared), a LeNet-5 batch-10 step 641 -> 599 us; LeNet-5's batch-1 layers
# (at most 240k) stay on one thread, where sharing them ran slower. On the Xeon, 2^20, 2^21
# and 2^22 all ran ResNet-8's, VGG's and the CIFAR net's batch-1 forwards 3-16% slower.
MIN_PARALLEL_MACS = 1 << 18
# The weight repacking (_pack) shares blocks of this many taps among the team when the packed
# weights hold at least MIN_PARALLEL_PACK values.
DEF PACK_ROWS = 64
cdef Py_ssize_t MIN_PARALLEL_PACK = 1 << 15
# The weights a plan keeps in its kernels' layouts between calls (_kept_weights): one array
# per layer of its geometry and layout, the oldest dropped past this many (ResNet-20 has 7
# layers of one geometry, and a plan may serve both the direct and the Winograd kernels); as
# many frozen batch norm maps (_frozen_batch_norm_map). Both through _keep_bounded.
PACKINGS_KEPT = 16
# The arrays of a folded batch norm, as its errors name them (_batch_norm_map).
_NORM_ARRAYS = ("running_mean", "running_var", "batch_norm weight", "batch_norm bias")
# The layouts of kept weights (_lay_out_weights).
DEF DIRECT_PACKING = 0
DEF WINOGRAD_TRANSFORM = 1
# What a call does with the weights' layout (_kept_weights): made for it alone (a training
# step's weights change at every call), kept and used again while the weights' bytes keep their
# fingerprint, or kept and used again without reading the weights (frozen: cnn.compile's
# freezing, whose caller vouches that they are unchanged; at batch 1 the fingerprint's reading
# of every weight was a tenth of the VGG-style net's forward, and pushed the kept layouts out of
# the cores' caches).
DEF LAYOUT_FOR_THE_CALL = 0
DEF LAYOUT_CHECKED = 1
DEF LAYOUT_FROZEN = 2
# The kernels of a forward that are not BLAS products (ConvPlan._forward_path).
DEF FORWARD_WINOGRAD = 0
DEF FORWARD_ROWS = 1
DEF FORWARD_DIRECT = 2
# Bytes from which the team shares the fingerprint of weights (_fingerprint_chunks).
cdef Py_ssize_t MIN_PARALLEL_FINGERPRINT = 1 << 16


cdef inline bint _flag(value, str name) except -1:
    """cnn._validation.flag for the per-call flags, without a Python call for True and False."""
    if value is True:
        return True
    if value is False:
        return False
    return flag(value, name)


cdef _keep_bounded(dict entries, key, value):
    """entries[key] = value in one of a plan's caches, the oldest entry let go first when a new
    key would make them more than PACKINGS_KEPT (pop, not del: another thread may have changed
    the dict meanwhile)."""
    if key not in entries and len(entries) >= PACKINGS_KEPT:
        entries.pop(next(iter(entries), None), None)
    entries[key] = value


cdef int _layout_use(keep_packing, frozen) except -1:
    """What a forward call's keep_packing and frozen flags ask of its weights' layout:
    LAYOUT_FOR_THE_CALL, LAYOUT_CHECKED or LAYOUT_FROZEN (_kept_weights)."""
    if not _flag(keep_packing, "keep_packing"):
        if _flag(frozen, "frozen"):
            raise ValueError("frozen: a frozen call uses a kept layout, so it needs "
                             "keep_packing=True, got keep_packing=False")
        return LAYOUT_FOR_THE_CALL
    return LAYOUT_FROZEN if _flag(frozen, "frozen") else LAYOUT_CHECKED


cdef inline Py_ssize_t _round_up(Py_ssize_t n, Py_ssize_t multiple) noexcept nogil:
    """n rounded up to a multiple of `multiple` (n >= 0; C division: cdivision is on)."""
    return (n + multiple - 1) // multiple * multiple


cdef tuple _weight_grad_blocks(Py_ssize_t n):
    """(images per block, blocks): the fixed blocks a weight gradient sums n images in, each
    into its own slot, added in block order. About CNN_WEIGHT_GRAD_BLOCKS of them, decided by
    the batch size alone, never by the thread count (bit-identical results)."""
    per_block = max(1, _round_up(n, CNN_WEIGHT_GRAD_BLOCKS) // CNN_WEIGHT_GRAD_BLOCKS)
    return per_block, max(1, _round_up(n, per_block) // per_block)


cdef inline Py_ssize_t _padded_channels(Py_ssize_t f) noexcept:
    """Output channels rounded up to whole register tiles: the narrow tile for layers that fit
    in it, else a multiple of CNN_BLOCK. The kernels infer the tile width from this."""
    if f <= CNN_NARROW_BLOCK:
        return CNN_NARROW_BLOCK
    return _round_up(f, CNN_BLOCK)


class _InputGradPhase:
    """One axis of one phase of the input gradient: the input positions y = r, r + s, ... (s
    the stride), and the convolution over the output gradient that gives them.

    dx[y] = sum over taps i of w[i] * g[(y + p - i*d) / s], for the taps where the division is
    exact: i = i0, i0 + delta, ... (delta = s / gcd(d, s)). For y = r + s*t that is a stride-1
    correlation of g, with dilation `spacing` = d / gcd(d, s), by the `count` taps reversed;
    computed by a plan with symmetric padding `pad`, its outputs `crop` are those t.

    Attributes:
        taps (slice or None): The kernel positions of the phase (None: no tap reaches it, or
            it holds no input position).
        count, spacing, pad (int), crop (slice): As above.
    """

    def __init__(self, size, out_size, kernel, stride, pad, dilation, r):
        delta = stride // math.gcd(dilation, stride)
        self.spacing = dilation // math.gcd(dilation, stride)
        first = [i for i in range(min(delta, kernel)) if (r + pad - i * dilation) % stride == 0]
        positions = (size - r + stride - 1) // stride if size > r else 0
        self.taps = None
        if not first or positions == 0:
            return
        i0 = first[0]
        self.count = (kernel - i0 + delta - 1) // delta
        self.taps = slice(i0, i0 + delta * (self.count - 1) + 1, delta)
        # g's index for t and the reversed tap m is t - lead + m*spacing: `lead` outputs of
        # padding before g starts, `trail` after it ends, for the `positions` outputs wanted.
        lead = (self.count - 1) * self.spacing - (r + pad - i0 * dilation) // stride
        trail = positions + (self.count - 1) * self.spacing - lead - out_size
        self.pad = max(lead, trail, 0)
        self.crop = slice(self.pad - lead, self.pad - lead + positions)


cdef extern from "conv_pack.h" nogil:
    void cnn_pack_taps_f32(const float* weight, Py_ssize_t F, Py_ssize_t T, float* wt,
                           Py_ssize_t P, Py_ssize_t B, Py_ssize_t first, Py_ssize_t last)
    void cnn_pack_taps_f64(const double* weight, Py_ssize_t F, Py_ssize_t T, double* wt,
                           Py_ssize_t P, Py_ssize_t B, Py_ssize_t first, Py_ssize_t last)
    void cnn_transpose_f32(const float* src, Py_ssize_t src_stride, float* dst,
                           Py_ssize_t dst_stride, Py_ssize_t rows, Py_ssize_t cols)
    void cnn_transpose_f64(const double* src, Py_ssize_t src_stride, double* dst,
                           Py_ssize_t dst_stride, Py_ssize_t rows, Py_ssize_t cols)


cdef inline void _transpose(const floating* src, Py_ssize_t src_stride, floating* dst,
                            Py_ssize_t dst_stride, Py_ssize_t rows,
                            Py_ssize_t cols) noexcept nogil:
    """dst[j * dst_stride + i] = src[i * src_stride + j] for i < rows, j < cols (conv_pack.h:
    in 8 x 8 blocks in registers)."""
    if floating is float:
        cnn_transpose_f32(src, src_stride, dst, dst_stride, rows, cols)
    else:
        cnn_transpose_f64(src, src_stride, dst, dst_stride, rows, cols)


cdef inline void _pack_taps(const floating* weight, Py_ssize_t F, Py_ssize_t T, floating* wt,
                            Py_ssize_t P, Py_ssize_t B, Py_ssize_t first,
                            Py_ssize_t last) noexcept nogil:
    """Taps first..last-1 of each block of B channels of wt (P channels) from weight (F, T)."""
    if floating is float:
        cnn_pack_taps_f32(weight, F, T, wt, P, B, first, last)
    else:
        cnn_pack_taps_f64(weight, F, T, wt, P, B, first, last)


cdef void _pack(const floating[:, ::1] weight, floating[:, ::1] wt, int num_threads) noexcept:
    """wt (T, P) filled block by block (conv_pack.h: the forward tile's blocks of channels,
    _forward_block, each its taps' rows of B channels): weight[f, t] in block f // B's row t,
    zeros in the channels past F. One pass, where NumPy would zero the array, then copy
    through a transposed view. The team shares the taps in blocks of PACK_ROWS."""
    cdef Py_ssize_t F = weight.shape[0], T = weight.shape[1], P = wt.shape[1], block
    cdef Py_ssize_t blocks = (T + PACK_ROWS - 1) // PACK_ROWS
    cdef Py_ssize_t B = _forward_block(P, floating is float)
    if T == 0 or P == 0:
        return
    cdef const floating* source = &weight[0, 0] if F > 0 else NULL
    with nogil:
        if num_threads > 1 and T * P >= MIN_PARALLEL_PACK:
            for block in prange(blocks, schedule="static", num_threads=num_threads):
                _pack_taps(source, F, T, &wt[0, 0], P, B, block * PACK_ROWS,
                           min(T, (block + 1) * PACK_ROWS))
        else:  # without a parallel region, which alone costs about 0.8 us
            _pack_taps(source, F, T, &wt[0, 0], P, B, 0, T)


cdef void _pad_bias(const floating[::1] bias, floating[::1] bias_padded) noexcept:
    """bias_padded[f] = bias[f] (bias may be None), zeros past its end."""
    cdef Py_ssize_t f, F = 0 if bias is None else bias.shape[0]
    for f in range(bias_padded.shape[0]):
        bias_padded[f] = bias[f] if f < F else 0


cdef extern from "fingerprint.h" nogil:
    enum:
        CNN_FINGERPRINT_LANES
        CNN_FINGERPRINT_CHUNK
    Py_ssize_t cnn_fingerprint_chunks(const char* bytes, Py_ssize_t size, uint64_t* kept,
                                      int compare, Py_ssize_t first, Py_ssize_t last)


cdef inline Py_ssize_t _fingerprint_rows(Py_ssize_t nbytes) noexcept nogil:
    """The chunks (rows of a fingerprint) of an array of `nbytes` bytes."""
    return (nbytes + CNN_FINGERPRINT_CHUNK - 1) // CNN_FINGERPRINT_CHUNK


cdef Py_ssize_t _fingerprint_chunks(array, uint64_t[:, ::1] kept, bint compare,
                                    int num_threads) except -1:
    """cnn_fingerprint_chunks over every chunk of a C-contiguous array's bytes (read through
    the buffer protocol), the team taking a range of chunks each: writes the fingerprint to
    `kept` (compare false) or returns how many chunks differ from it (a fingerprint of another
    number of chunks differs everywhere)."""
    cdef Py_buffer view
    cdef Py_ssize_t chunks, part, parts, differing = 0
    PyObject_GetBuffer(array, &view, PyBUF_C_CONTIGUOUS)
    try:
        chunks = _fingerprint_rows(view.len)
        if kept.shape[0] != chunks or kept.shape[1] != CNN_FINGERPRINT_LANES:
            if compare:
                return max(chunks, 1)
            raise ValueError(f"fingerprint: expected shape ({chunks}, "
                             f"{CNN_FINGERPRINT_LANES}), got ({kept.shape[0]}, {kept.shape[1]})")
        if chunks == 0:  # an empty array: nothing to read, and no kept[0, 0]
            return 0
        parts = min(num_threads, chunks) if view.len >= MIN_PARALLEL_FINGERPRINT else 1
        with nogil:
            if parts <= 1:  # without a parallel region (about 0.8 us)
                differing = cnn_fingerprint_chunks(<char*> view.buf, view.len, &kept[0, 0],
                                                   compare, 0, chunks)
            else:
                for part in prange(parts, schedule="static", num_threads=parts):
                    differing += cnn_fingerprint_chunks(
                        <char*> view.buf, view.len, &kept[0, 0], compare,
                        chunks * part // parts, chunks * (part + 1) // parts)
    finally:
        PyBuffer_Release(&view)
    return differing


cdef object _fingerprint(array, int num_threads):
    """The fingerprint of a C-contiguous array's bytes (fingerprint.h), (chunks, lanes)
    uint64: kept in place of a copy, it tells a later call whether the array changed while
    reading the array alone (_has_fingerprint)."""
    fingerprint = np.empty((_fingerprint_rows(array.nbytes), CNN_FINGERPRINT_LANES),
                           dtype=np.uint64)
    _fingerprint_chunks(array, fingerprint, False, num_threads)
    return fingerprint


cdef bint _has_fingerprint(array, fingerprint, int num_threads) except -1:
    """Whether a C-contiguous array's bytes have `fingerprint` (_fingerprint's)."""
    return _fingerprint_chunks(array, fingerprint, True, num_threads) == 0


def fingerprint(array, num_threads=1):
    """The fingerprint (fingerprint.h) that a plan keeps of the weights it laid out, as a
    (chunks, lanes) uint64 array, of a C-contiguous NumPy array's bytes; the tests compare it
    with a NumPy form of its definition."""
    if not isinstance(array, np.ndarray) or not array.flags.c_contiguous:
        raise TypeError(f"array: expected a C-contiguous NumPy array, got "
                        f"{type(array).__name__}")
    return _fingerprint(array, integer(num_threads, "num_threads", minimum=1))


# Each Python thread's scratch for the Winograd forward (_winograd_scratch).
_WINOGRAD_SCRATCH = threading.local()


cdef tuple _winograd_scratch(bint double_precision, Py_ssize_t threads, Py_ssize_t size):
    """(scratch, room): the calling Python thread's scratch for _winograd_forward, a vector of
    `threads` rows (or more) of `room` >= `size` values, and that room, shared by every plan
    of the dtype: kept and grown, never shrunk. A new array at each call put every layer's V
    and M in memory other layers had pushed out of the cache (the writes read it back first),
    and one kept per plan left each its own: the VGG-style net's batch-1 forward 326 -> 315 us
    with one per plan, 289 shared (medians of 4 alternated processes, AVX-512 Xeon). Each
    team thread keeps its own row whatever the layer (a row of `size` values would put a
    smaller layer's second thread on the first one's lines), a whole number of cache lines
    apart."""
    key = "double" if double_precision else "float"
    kept = getattr(_WINOGRAD_SCRATCH, key, None)
    if kept is not None and kept[2] >= threads and kept[1] >= size:
        return kept[0], kept[1]
    if kept is not None:  # layers of smaller teams keep using the rows they need
        size, threads = max(size, kept[1]), max(threads, kept[2])
    room = _round_up(size, 16)
    array = _aligned.empty((threads * room,), np.float64 if double_precision else np.float32)
    view = _vector_view[double](array) if double_precision else _vector_view[float](array)
    setattr(_WINOGRAD_SCRATCH, key, (view, room, threads))
    return view, room


cdef object _rows_view(floating[:, ::1] array):
    """A C-contiguous 2-D array as a typed memoryview object: passed to a kernel again, it is
    not checked and acquired again as an array is (about 0.1 us each)."""
    return array


cdef object _vector_view(floating[::1] array):
    """A C-contiguous 1-D array as a typed memoryview object (as _rows_view)."""
    return array


def _relu_masked(grad, pooled, threads):
    """The pooled gradient through ReLU's mask, the pooled values being ReLU's output:
    elementwise.relu_backward (0 where the pooled value is <= 0, even for an inf or NaN
    gradient; a NaN pooled value passes it)."""
    masked = np.empty_like(grad)
    _elementwise.relu_backward(grad.reshape(-1), pooled.reshape(-1), masked.reshape(-1),
                               threads)
    return masked


def _read_only(array):
    array.flags.writeable = False
    return array


cdef class ConvPlan:
    """A checked convolution geometry and everything the kernels derive from it.

    Args:
        input_shape: (C, H, W) of one image ((N, C, H, W) is accepted; N is ignored: a plan
            serves any batch size).
        weight_shape: (F, C / groups, KH, KW).
        stride, padding, dilation: an int or a (height, width) pair (PyTorch's meaning; zero
            padding).
        groups: the number of independent channel groups.
        dtype: float32 or float64, the dtype of every array the plan's methods take.

    Attributes:
        input_shape, weight_shape, output_shape (tuples): (C, H, W), (F, C/groups, KH, KW) and
            (F, OH, OW).
        stride, padding, dilation (tuples of two ints), groups (int), dtype (numpy.dtype).
        isa (str): the instruction-set build the plan runs in.
        algorithm (str): "winograd" (3x3 layers at stride 1 and dilation 1 with at least
            WINOGRAD_MIN_CHANNELS input channels and more than 8 output channels: calls with
            at least WINOGRAD_MIN_OUTPUTS output pixels, and smaller ones of enough
            multiply-adds (WINOGRAD_MIN_MACS_ALONE: batch-1 inference), run by Winograd, the
            others by the direct kernels), "columns" (im2col + a BLAS product per image, the
            calls shared by the team: layers with groups > 1, and 1x1 layers without padding,
            whose columns are the input or its subsampled pixels; a strided one's forward runs
            the direct kernels, unless backward will take its columns) or "direct" (the other
            layers).

    Raises:
        TypeError: An argument of the wrong type, or an unsupported dtype.
        ValueError: Shapes that do not fit together (channels, groups), or a geometry that is
            not meaningful (see cnn._ext.geometry); the message names the argument.
    """

    cdef readonly tuple input_shape, weight_shape, output_shape, stride, padding, dilation
    cdef readonly Py_ssize_t groups
    # The multiply-adds of one image's forward: the cost that sizes a call's team (_team).
    cdef Py_ssize_t macs_per_image
    cdef readonly object dtype
    cdef readonly str isa, algorithm
    # Direct convolution's layout: channels padded to whole tiles, the padded image, the taps.
    cdef Py_ssize_t f_padded, hp, wp, image_size, n_taps, tap_rows, n_pixels
    cdef bint scatter_input_grad, weight_grad_by_channel, pool_rows, conv_rows
    # A strided 1x1 layer (columns algorithm) whose forward runs the direct tile (making its
    # columns only for backward).
    cdef bint _direct_pointwise
    cdef object segment_places, segment_offsets
    # The tap and origin tables as typed views, acquired once: a batch-1 call spends
    # microseconds, of which acquiring a view of each array the kernels take is a good part.
    cdef const Py_ssize_t[::1] taps, origins
    cdef bint double_precision
    cdef tuple segment_shape
    cdef list _input_grad_phases
    # (layout, id(weight)) -> (weak reference to it, the fingerprint of its bytes, their
    # layout): _kept_weights
    cdef dict _packings
    # id(running_mean) -> (the batch norm tuple, its map): _frozen_batch_norm_map
    cdef dict _frozen_maps
    cdef object _workspaces
    cdef Py_ssize_t tiles_padded, winograd_hp, winograd_wp, winograd_size
    cdef readonly Py_ssize_t winograd_images
    cdef Py_ssize_t winograd_tiles

    def __init__(self, input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
                 dtype=np.float32):
        self._packings = {}
        self._frozen_maps = {}
        self._workspaces = threading.local()
        dims = tuple(input_shape)
        input_shape = shape(dims[max(len(dims) - 3, 0):], "input_shape", 3)
        weight_shape = shape(weight_shape, "weight_shape", 4)
        self.groups = integer(groups, "groups", 1)
        try:
            self.dtype = np.dtype(dtype)
        except TypeError:
            self.dtype = None
        if self.dtype not in FLOAT_DTYPES:
            raise TypeError(f"dtype: expected float32 or float64, got {dtype!r}")
        self.double_precision = self.dtype == np.float64
        c = input_shape[0]
        f = weight_shape[0]
        if f % self.groups:
            raise ValueError(f"groups: must divide out_channels ({f}), got {self.groups}")
        if c != weight_shape[1] * self.groups:
            raise ValueError(f"input: expected {weight_shape[1] * self.groups} channels "
                             f"(weight.shape[1] = {weight_shape[1]} times groups = "
                             f"{self.groups}), got {c} channels in shape {input_shape}")
        kernel, self.stride, self.padding, self.dilation, out = conv_geometry(
            input_shape, weight_shape[2:], stride, padding, dilation)
        self.input_shape, self.weight_shape = input_shape, weight_shape
        self.output_shape = (f,) + out
        # (At most sys.maxsize: only a thread count depends on it.)
        self.macs_per_image = min(sys.maxsize, f * (c // self.groups) * math.prod(kernel)
                                  * math.prod(out))
        self.isa = ISA
        self.algorithm = DIRECT if self.groups == 1 else COLUMNS
        if self.algorithm == DIRECT:
            self._lay_out_direct()
            if kernel == (1, 1) and self.padding == (0, 0):
                # A 1x1 convolution is a matrix product per image (its columns are the input,
                # or at a stride its subsampled pixels): BLAS runs it at 2-4x the register
                # tile's speed, whose few taps leave it storing more than computing (ResNet
                # shortcuts). The direct tables stay: an input gradient's phases use them,
                # and so does a strided layer's forward when backward will not need its
                # columns: there the subsampling copy, the product's call and a separate pass
                # for a folded batch norm cost more than the tile reading the input where it
                # is (ResNet-8's shortcuts at batch 1000: 7.9 -> 6.3 ms and 4.2 -> 3.2 ms).
                self.algorithm = COLUMNS
                self._direct_pointwise = self.stride != (1, 1)
                return
            # The fused ReLU + max-pool runs along pooled rows, vectors of windows instead of
            # vectors of channels (conv_rows.h), where the tile fills its vectors badly (at most
            # 8 output channels; pooled rows of 12 windows or more: LeNet-5's first layer has
            # 14, and rows of 2-7 ran 1.3-4x slower than the tile) or spends more on storing
            # than on its few taps (at most 64, as 3 input channels by 3x3; rows of 16 or more).
            self.pool_rows = (self.stride == (1, 1) and self.dilation == (1, 1)
                              and ((f <= CNN_NARROW_BLOCK and out[1] // 2 >= 12)
                                   or (self.n_taps <= 64 and out[1] // 2 >= 16)))
            # The unpooled forward likewise, by pairs of output rows, where the taps are few
            # and a row fills a vector.
            self.conv_rows = (self.stride == (1, 1) and self.dilation == (1, 1)
                              and self.n_taps <= 64 and out[1] >= 16)
            if (kernel == (3, 3) and self.stride == (1, 1) and self.dilation == (1, 1)
                    and c >= WINOGRAD_MIN_CHANNELS and f > CNN_NARROW_BLOCK):
                self.algorithm = WINOGRAD
                self._lay_out_winograd()

    cdef _lay_out_winograd(self):
        """The tables of conv_winograd.pxi: the 2x2 output tiles (the last row or column of
        tiles may hang over the output), the padded image that covers every tile's 4x4 patch,
        and each thread's scratch: padded image, V and M."""
        c, f = self.input_shape[0], self.weight_shape[0]
        oh, ow = self.output_shape[1:]
        tiles_h, tiles_w = (oh + 1) // 2, (ow + 1) // 2
        # Whole vectors of tiles: the products read CNN_BLOCK tiles at once (past the last
        # tile, values that are computed and never stored).
        self.tiles_padded = _round_up(tiles_h * tiles_w, CNN_BLOCK)
        self.winograd_hp, self.winograd_wp = 2 * tiles_h + 2, 2 * tiles_w + 2
        # The forward of a small image (fewer tiles than the paired product's two vectors:
        # 8x8 outputs have 16) takes several images at a time, their tiles side by side, so
        # that the products run paired (conv_layout.h: each broadcast weight feeds two
        # multiply-adds); the same arithmetic for every value.
        self.winograd_images = 1
        if CNN_PAIR_TILES and not self.double_precision and tiles_h * tiles_w < CNN_PAIR_BLOCK:
            self.winograd_images = CNN_PAIR_BLOCK // (tiles_h * tiles_w)
        self.winograd_tiles = _round_up(self.winograd_images * tiles_h * tiles_w, CNN_BLOCK)
        self.winograd_size = _forward_room(c, f, self.winograd_hp, self.winograd_wp,
                                           self.winograd_tiles)

    cdef _lay_out_direct(self):
        """The tables of the direct kernels: tap offsets inside a padded image, window origins,
        tile widths, and the weights' segment layout (conv_layout.h's constants)."""
        c, h, w = self.input_shape
        f, _, kh, kw = self.weight_shape
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        oh, ow = self.output_shape[1:]
        self.f_padded = _padded_channels(f)
        self.hp, self.wp = h + 2 * ph, w + 2 * pw
        self.image_size = c * self.hp * self.wp
        self.n_pixels = oh * ow
        ci, ii, ji = np.meshgrid(np.arange(c), np.arange(kh), np.arange(kw), indexing="ij")
        self.taps = _read_only(((ci * self.hp + ii * dh) * self.wp + ji * dw)
                               .astype(np.intp).ravel())
        self.n_taps = self.taps.shape[0]
        lanes = CNN_WIDE_PIXELS if self.f_padded == CNN_NARROW_BLOCK else CNN_BLOCK_LANES
        # The weight gradient's tiles take whole groups of taps (rows past n_taps hold junk).
        self.tap_rows = _round_up(self.n_taps, lanes)
        oy, ox = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")
        self.origins = _read_only((oy * sh * self.wp + ox * sw).astype(np.intp).ravel())
        # With many input channels the input gradient is a dense convolution (_dense_input_grad);
        # the kernels' scatter is for few-channel layers. Few output channels sum their weight
        # gradient channel by channel over the non-zero gradient values; the others run the
        # register tile over the active pixels, which fills its vectors with their channels.
        self.scatter_input_grad = c < CNN_BLOCK
        self.weight_grad_by_channel = f <= CNN_NARROW_BLOCK
        self._lay_out_segments()

    cdef _lay_out_segments(self):
        """The weights in segments, as cnn_scatter_segments and cnn_gather_segments read them.

        Each (input channel c, kernel row i) of a window is cut into runs of CNN_SEGMENT
        consecutive positions, weight[f, c, i, j] at position j*dilation_w, zeros between and
        after; a segments array of `segment_shape` (F, S, CNN_SEGMENT) holds weight.ravel() at
        the flat positions `segment_places`. `segment_offsets` (S,) place each run from a window
        origin in the padded image; S is rounded up to a multiple of CNN_SEGMENT_GROUP with
        all-zero segments at offset 0.
        """
        c = self.input_shape[0]
        f, _, kh, kw = self.weight_shape
        dh, dw = self.dilation
        per_row = _round_up((kw - 1) * dw + 1, CNN_SEGMENT) // CNN_SEGMENT  # per kernel row
        count = c * kh * per_row
        self.segment_shape = (f, _round_up(count, CNN_SEGMENT_GROUP), CNN_SEGMENT)
        fi, ci, ii, ji = np.meshgrid(np.arange(f), np.arange(c), np.arange(kh), np.arange(kw),
                                     indexing="ij")
        position = (ci * kh + ii) * per_row * CNN_SEGMENT + ji * dw  # within one channel's rows
        self.segment_places = _read_only(
            (fi * self.segment_shape[1] * CNN_SEGMENT + position).astype(np.intp).ravel())
        row_offsets = (np.arange(c)[:, None] * self.hp + np.arange(kh) * dh) * self.wp
        offsets = np.zeros(self.segment_shape[1], dtype=np.intp)
        offsets[:count] = (row_offsets.reshape(-1, 1)
                           + CNN_SEGMENT * np.arange(per_row)).ravel()
        self.segment_offsets = _read_only(offsets)

    def __repr__(self):
        return (f"ConvPlan(input_shape={self.input_shape}, weight_shape={self.weight_shape}, "
                f"stride={self.stride}, padding={self.padding}, dilation={self.dilation}, "
                f"groups={self.groups}, dtype={self.dtype.name}, isa={self.isa!r}, "
                f"algorithm={self.algorithm!r})")

    # ***** checks of one call's arrays against the plan *****

    cdef object _array(self, value, str name, tuple expected, dtype=None):
        """`value` as a C-contiguous array of `dtype` (the plan's by default) and shape
        `expected`; a copy only when the layout needs one."""
        dtype = self.dtype if dtype is None else dtype
        if not isinstance(value, np.ndarray):
            raise TypeError(f"{name}: expected a NumPy array, got {type(value).__name__}")
        if value.dtype is not dtype and value.dtype != dtype:
            raise TypeError(f"{name}: expected dtype {np.dtype(dtype)} (the plan's), got "
                            f"{value.dtype}")
        if value.shape != expected:
            wanted = "(N, " + ", ".join(map(str, expected[1:])) + ")" if expected[0] < 0 else \
                str(expected)
            raise ValueError(f"{name}: expected shape {wanted}, got {value.shape}")
        return np.ascontiguousarray(value)

    cdef object _input(self, value):
        """The input (N, C, H, W) of any batch size N."""
        batch = value.shape[0] if isinstance(value, np.ndarray) and value.ndim == 4 else -1
        return self._array(value, "input", (batch,) + self.input_shape)

    cdef object _bias(self, value):
        if value is None:
            return None
        return self._array(value, "bias", self.weight_shape[:1])

    cdef tuple _needs(self, needs):
        if not isinstance(needs, (tuple, list)) or len(needs) != 3:
            raise ValueError(f"needs: expected three flags (input, weight, bias), got {needs!r}")
        return tuple([flag(value, "needs") for value in needs])

    cdef Py_ssize_t _threads(self, num_threads) except -1:
        # The layers pass an int (at most cnn.threads.MAX_THREADS): no Python check needed.
        if type(num_threads) is int and 1 <= num_threads <= 1024:
            return num_threads
        return integer(num_threads, "num_threads", 1)

    cdef Py_ssize_t _team(self, Py_ssize_t batch, Py_ssize_t threads, Py_ssize_t scale=1):
        """The threads a forward call of `batch` images gets: one for tiny work (below `scale`
        times MIN_PARALLEL_MACS)."""
        if batch <= 0:
            return 1
        # batch * macs_per_image >= scale * MIN_PARALLEL_MACS, without overflowing.
        return threads if self.macs_per_image >= (scale * MIN_PARALLEL_MACS + batch - 1) // batch \
            else 1

    cdef bint _winograd_pays(self, Py_ssize_t batch):
        """Whether a call of `batch` images runs by Winograd (a Winograd plan, enough outputs);
        the bits of its results depend on this choice, never on the thread count."""
        cdef Py_ssize_t oh, ow, tiles
        if self.algorithm != WINOGRAD or batch <= 0:
            return False
        oh, ow = self.output_shape[1], self.output_shape[2]
        if batch > 1 and batch * oh * ow >= WINOGRAD_MIN_OUTPUTS:
            return True
        tiles = ((oh + 1) // 2) * ((ow + 1) // 2)
        # batch * macs_per_image >= WINOGRAD_MIN_MACS_ALONE, without overflowing
        return (self.macs_per_image >= (WINOGRAD_MIN_MACS_ALONE + batch - 1) // batch
                and self.macs_per_image >= WINOGRAD_MIN_MACS_PER_BYTE_ALONE * 16
                * (self.input_shape[0] + self.output_shape[0]) * tiles * self.dtype.itemsize)

    def runs_winograd(self, batch):
        """Whether a forward of `batch` images runs by Winograd: the one choice of the plan
        that depends on the batch, and with it the last bits of an image's results (never
        on the thread count). cnn.compile runs a batch a few images at a time only where
        this agrees."""
        return self._winograd_pays(integer(batch, "batch", minimum=0))

    # ***** forward *****

    def forward(self, x, weight, bias=None, relu=False, keep_columns=False, num_threads=1,
                batch_norm=None, residual=None, keep_packing=True, frozen=False):
        """conv2d(x, weight) + bias, then a batch norm in evaluation mode, a residual and ReLU
        when asked.

        Args:
            x: (N, C, H, W) array of the plan's dtype.
            weight: (F, C / groups, KH, KW).
            bias: (F,) or None.
            relu: apply ReLU (pointwise.h's rule) to the result, in the same pass.
            keep_columns: also return the im2col columns, which backward reuses (the columns
                algorithm only; None otherwise). For a 1x1 layer without stride or padding they
                are `x` itself, reshaped (a view).
            num_threads: the OpenMP team's size.
            batch_norm: None, or a batch norm in evaluation mode, (running_mean,
                running_var, weight, bias, eps): arrays (F,) of the plan's dtype (weight and
                bias may be None) and a float. Its map (out - mean) * scale + shift runs
                before the ReLU with norm.evaluation_coefficients's coefficients by
                norm.normalize's rule (the same bits as the batch norm's own kernels).
            residual: None, or an array shaped as the result: added (the convolution's value
                first, as AddReLU adds) after the affine map and before the ReLU, a residual
                connection's sum with the same bits as elementwise.add_relu.
            keep_packing: keep the weights as the kernels lay them out (the direct kernels'
                packing, Winograd's transform) for the next call with this array, which uses
                them while its values are unchanged (_kept_weights): for inference; false
                where the weights change at every call (a training step's) or are made for one
                call, whose copy would only cost.
            frozen: with keep_packing, use a layout kept for this very array without reading
                its values again, and a batch norm's map kept for these very arrays
                (cnn.compile's freezing: the caller vouches that they have not changed
                since; a change in place may then go unseen).

        Returns:
            (out (N, F, OH, OW), columns or None)
        """
        x = self._input(x)
        weight = self._array(weight, "weight", self.weight_shape)
        bias = self._bias(bias)
        relu = _flag(relu, "relu")
        keep = _layout_use(keep_packing, frozen)
        threads = self._team(x.shape[0], self._threads(num_threads))
        if residual is not None:
            residual = self._array(residual, "residual", (x.shape[0],) + self.output_shape)
        keep_columns = _flag(keep_columns, "keep_columns")
        # A strided 1x1 layer whose columns backward needs makes them anyway: the product on
        # them reads its input once, where the direct tile would read it a second time
        # (ResNet-8's shortcuts at batch 64, columns kept: 259 -> 230 us and 197 -> 144 us).
        by_blas = self._by_products(keep_columns)
        # A batch norm's map: float64 rows for the columns algorithm's separate pass, the
        # epilogues' padded rows of the dtype for the others; checked before any kernel runs.
        coefficients = None
        if batch_norm is not None:
            if keep == LAYOUT_FROZEN and not by_blas:
                coefficients = self._frozen_batch_norm_map(batch_norm)
            else:
                coefficients = self._batch_norm_map(batch_norm, not by_blas)
        if by_blas:
            out, columns = self._columns_forward(
                x, weight, bias, relu and batch_norm is None and residual is None, keep_columns,
                threads)
            if coefficients is not None:
                planes = out.reshape(out.shape[0], out.shape[1], -1)
                _norm.normalize(planes, coefficients[0], coefficients[1], coefficients[2],
                                planes, relu and residual is None, threads)
            self._residual_pass(out, residual, relu, threads)
            return out, columns
        out = np.empty((x.shape[0],) + self.output_shape, dtype=self.dtype)
        path = self._forward_path(x.shape[0], False)
        weights, bias = self._operands(path, weight, bias, threads, keep)
        self._launch(path, x, weights, bias, coefficients, out, relu, threads, residual)
        return out, None

    cdef bint _by_products(self, bint keep_columns):
        """Whether a forward runs BLAS products on columns (the columns algorithm; a strided
        1x1 layer only when its columns are kept for backward, else it runs the direct tile:
        forward's comment) rather than the kernels of _forward_path."""
        return self.algorithm == COLUMNS and (not self._direct_pointwise or keep_columns)

    cdef int _forward_path(self, Py_ssize_t batch, bint pooled):
        """Which kernels a forward of `batch` images runs, with or without the fused ReLU and
        max-pool, when they are not BLAS products: Winograd's (where it pays), the row
        kernels (conv_rows, pool_rows) or the direct tile."""
        if self._winograd_pays(batch):
            return FORWARD_WINOGRAD
        if self.pool_rows if pooled else self.conv_rows:
            return FORWARD_ROWS
        return FORWARD_DIRECT

    cdef tuple _operands(self, int path, weight, bias, Py_ssize_t threads, int keep):
        """(weights, bias) as the kernels of `path` read them: Winograd's transform or the
        direct packing (kept as `keep` says: _kept_weights) and the bias padded to whole tiles
        (in the calling thread's scratch: _padded_bias), or for the row kernels the weights
        as (F, taps) and the bias (zeros without one)."""
        if path == FORWARD_WINOGRAD:
            return self._transformed_weights(weight, threads, keep), self._padded_bias(bias)
        if path == FORWARD_DIRECT:
            return self._packed_weights(weight, threads, keep), self._padded_bias(bias)
        f = self.weight_shape[0]
        return (weight.reshape(f, self.n_taps),
                np.zeros(f, dtype=self.dtype) if bias is None else bias)

    cdef _launch(self, int path, x, weights, bias, coefficients, out, bint relu,
                 Py_ssize_t threads, residual):
        """forward's kernels of `path` (_forward_path) on checked arrays and their
        operands (_operands): out = the convolution, then the batch norm's map
        (`coefficients`: _batch_norm_map's padded rows, or None), the residual and ReLU as
        forward says."""
        if path == FORWARD_WINOGRAD:
            self._winograd(x, weights, bias, coefficients, out, relu, threads, None, None,
                           residual)
            return
        parts = self._parts(x.shape[0], threads)
        if path == FORWARD_ROWS:
            self._conv_rows(x, weights, bias, coefficients, out, relu and residual is None,
                            parts, threads)
            self._residual_pass(out, residual, relu, threads)
            return
        scratch = self._scratch(1, threads, self.image_size)
        ph, pw = self.padding
        if self.double_precision:
            _conv_forward[double](x, weights, bias, self.taps, self.origins, coefficients,
                                  out, scratch, ph, pw, relu, parts, threads, None, residual)
        else:
            _conv_forward[float](x, weights, bias, self.taps, self.origins, coefficients,
                                 out, scratch, ph, pw, relu, parts, threads, None, residual)

    cdef object _batch_norm_map(self, batch_norm, bint padded):
        """A batch norm's (running_mean, running_var, weight, bias, eps), checked, as the rows
        (mean, scale, shift) of its map: with `padded`, in the plan's dtype (rounded as
        norm.normalize rounds them) and padded with zeros to whole tiles of channels, the
        epilogues' coefficients, in the calling thread's scratch (_scratch); else float64,
        norm.normalize's. One typed pass over the arrays taken as buffers: the NumPy
        operations it replaced cost a batch-1 layer 5 us, the checks and typed memoryviews
        that replaced them 2 us."""
        cdef Py_buffer views[5]  # the four arrays (the affine ones when given), the rows
        cdef Py_buffer* rows
        cdef const void* at[4]
        cdef int k, taken = 0
        if type(batch_norm) is not tuple or len(batch_norm) != 5:
            raise ValueError(f"batch_norm: expected (running_mean, running_var, weight, bias, "
                             f"eps), got {batch_norm!r}")
        eps = batch_norm[4]
        if not (type(eps) is float and 0.0 <= eps < math.inf):  # as counted_batch_norm's
            eps = real_number(eps, "eps", minimum=0)
        channels = self.weight_shape[0]
        if not padded:
            out = np.zeros((3, channels))
        else:
            out = self._scratch(3, 3, channels, self.f_padded - channels)
        try:
            for k in range(4):
                at[k] = NULL
                if k >= 2 and batch_norm[k] is None:  # no affine weight or bias
                    continue
                self._take_channels(batch_norm[k], &views[taken], _NORM_ARRAYS[k])
                at[k] = views[taken].buf
                taken += 1
            rows = &views[taken]
            take(out, rows, 2, True, "coefficients")
            taken += 1
            if self.double_precision:
                _evaluation_rows_at[double, double](
                    <const double*> at[0], <const double*> at[1], <const double*> at[2],
                    <const double*> at[3], eps, <double*> rows.buf, rows.shape[1], channels,
                    False)
            elif padded:
                _evaluation_rows_at[float, float](
                    <const float*> at[0], <const float*> at[1], <const float*> at[2],
                    <const float*> at[3], eps, <float*> rows.buf, rows.shape[1], channels,
                    False)
            else:  # float64 rows of float32 arrays
                _evaluation_rows_at[float, double](
                    <const float*> at[0], <const float*> at[1], <const float*> at[2],
                    <const float*> at[3], eps, <double*> rows.buf, rows.shape[1], channels,
                    False)
        finally:
            for k in range(taken):
                PyBuffer_Release(&views[k])
        return out

    cdef object _frozen_batch_norm_map(self, batch_norm):
        """A frozen call's batch norm map (_batch_norm_map's padded rows): made once for these
        very arrays and this eps, then kept, as the weights' layouts are (the statistics
        taken for constants, as freezing takes them; the map cost a batch-1 layer about 0.6 us,
        ResNet-8's frozen forward about 5%). The entry holds the arrays themselves, so that an
        identity is never a freed array's; a new array (or eps) makes a new map."""
        if type(batch_norm) is tuple and len(batch_norm) == 5:
            entry = self._frozen_maps.get(id(batch_norm[0]))
            if (entry is not None and entry[0][0] is batch_norm[0]
                    and entry[0][1] is batch_norm[1] and entry[0][2] is batch_norm[2]
                    and entry[0][3] is batch_norm[3] and entry[0][4] == batch_norm[4]):
                return entry[1]
        rows = self._batch_norm_map(batch_norm, True)  # checks it, or raises
        kept = np.array(rows)  # the scratch's rows are the next call's
        view = _rows_view[double](kept) if self.double_precision else _rows_view[float](kept)
        _keep_bounded(self._frozen_maps, id(batch_norm[0]), (batch_norm, view))
        return view

    cdef int _take_channels(self, value, Py_buffer* view, str name) except -1:
        """`value`, an array (F,) of the plan's dtype, taken as a C-contiguous buffer that the
        caller releases: the array itself where it is one, else what _array makes of it (a
        contiguous copy, held by the buffer) or the error it raises."""
        if type(value) is np.ndarray:
            try:
                take(value, view, 1, False, name)
            except (ValueError, TypeError):  # not contiguous, or not float
                pass
            else:
                if (view.itemsize == self.dtype.itemsize
                        and view.shape[0] == self.weight_shape[0]):
                    return 0
                PyBuffer_Release(view)
        take(self._array(value, name, self.weight_shape[:1]), view, 1, False, name)
        return 0

    cdef _residual_pass(self, out, residual, bint relu, Py_ssize_t threads):
        """out += residual, then ReLU when relu (AddReLU's pass, for the algorithms whose
        kernels do not add it themselves); nothing without a residual."""
        if residual is None:
            return
        if relu:
            _elementwise.add_relu(out.reshape(-1), residual.reshape(-1), out.reshape(-1),
                                  threads)
        else:
            np.add(out, residual, out=out)

    cdef _winograd(self, x, u, bias_padded, coefficients, out, bint relu, Py_ssize_t threads,
                   pooled=None, indices=None, residual=None):
        """out = the forward by conv_winograd.pxi (checked arrays, the transformed weights
        and padded bias of _operands; a residual added as forward says), or with `pooled` and
        `indices` (then `out` is None) its ReLU and 2x2 max-pool. Threads take whole images,
        or share each image (by rows of tiles or by output channels: _winograd_forward) when
        whole images would leave a thread idle."""
        f, oh, ow = self.output_shape
        cdef bint split
        cdef Py_ssize_t images, tiles
        self._winograd_layout(x.shape[0], threads, &split, &images, &tiles)
        scratch, room = _winograd_scratch(self.double_precision, threads, self.winograd_size)
        ph, pw = self.padding
        if self.double_precision:
            _winograd_forward[double](x, u, bias_padded, coefficients, out, pooled, indices,
                                      scratch, room, f, oh, ow, ph, pw, self.winograd_hp,
                                      self.winograd_wp, tiles, images, relu, split, threads,
                                      residual)
        else:
            _winograd_forward[float](x, u, bias_padded, coefficients, out, pooled, indices,
                                     scratch, room, f, oh, ow, ph, pw, self.winograd_hp,
                                     self.winograd_wp, tiles, images, relu, split, threads,
                                     residual)

    def forward_relu_pool(self, x, weight, bias=None, num_threads=1, with_indices=True,
                          keep_packing=True, frozen=False):
        """max_pool2d(relu(conv2d(x, weight) + bias), 2) in one pass, without storing the
        convolution's output (groups = 1; Winograd pools each 2x2 output tile, its window).

        Args:
            with_indices: also return the argmax positions (what backward_relu_pool needs);
                without them (inference) the kernels write nothing but the pooled values.
            keep_packing, frozen: as forward's.

        Returns:
            (pooled, indices), both (N, F, OH // 2, OW // 2); indices (int64) are the argmax
            positions y*OW + x in each conv-output plane, as max_pool2d returns them, or None
            without `with_indices`.
        """
        oh, ow = self._poolable()
        x = self._input(x)
        weight = self._array(weight, "weight", self.weight_shape)
        bias = self._bias(bias)
        keep = _layout_use(keep_packing, frozen)
        threads = self._team(x.shape[0], self._threads(num_threads))
        shape_ = (x.shape[0], self.output_shape[0], oh // 2, ow // 2)
        pooled = np.empty(shape_, dtype=self.dtype)
        indices = np.empty(shape_, dtype=np.int64) if _flag(with_indices, "with_indices") else None
        if self._by_products(False):
            # A 1x1 layer: its ReLU'd output, then max_pool2d's own kernel (the same bits as
            # the three layers).
            out = self._columns_forward(x, weight, bias, True, False, threads)[0]
            planes = shape_[0] * shape_[1]
            _pool.max_pool_forward(out.reshape(planes, oh, ow),
                                   pooled.reshape(planes, shape_[2], shape_[3]),
                                   (indices if indices is not None else np.empty(
                                       shape_, dtype=np.int64)).reshape(planes, shape_[2],
                                                                        shape_[3]),
                                   2, 2, 2, 2, 0, 0, 1, 1, threads)
            return pooled, indices
        path = self._forward_path(x.shape[0], True)
        weights, bias = self._operands(path, weight, bias, threads, keep)
        self._launch_pool(path, x, weights, bias, pooled, indices, threads)
        return pooled, indices

    cdef tuple _poolable(self):
        """The convolution's output (OH, OW), after checking that the fused ReLU and 2x2
        max-pool apply (groups = 1, an output of 2x2 or more)."""
        oh, ow = self.output_shape[1:]
        if self.groups != 1:
            raise ValueError(f"groups: the fused convolution, ReLU and max-pool needs groups = 1, "
                             f"got {self.groups}")
        if oh < 2 or ow < 2:
            raise ValueError(f"input: the convolution's output {(oh, ow)} is smaller than the "
                             "2x2 pooling window")
        return oh, ow

    def frozen_forward(self, batch, weight, bias=None, relu=False, batch_norm=None,
                       residual=False, pool=False, num_threads=1):
        """forward (or with `pool`, forward_relu_pool without indices) of `batch` images
        prepared once for weights taken for constants (cnn.compile's freezing): the kernels
        chosen, the weights laid out (kept as a frozen call keeps them), the bias and a batch
        norm's map copied. Each call of the result then checks its input and runs the
        kernels, where forward checks and prepares all its arguments again (about 1 us of a
        batch-1 layer's call). The same bits as forward's; a later change of the arrays given
        here goes unseen.

        Args:
            batch: the images of each call.
            weight, bias, relu, batch_norm: as forward's.
            residual: whether each call takes a residual (forward's, shaped as the result).
            pool: the fused ReLU and 2x2 max-pool (relu, batch_norm and residual unused: they
                must be their defaults).
            num_threads: the team that lays the weights out.

        Returns:
            FrozenForward, or None where the call runs BLAS products (the columns
            algorithm), which have nothing to prepare.
        """
        batch = integer(batch, "batch", 0)
        weight = self._array(weight, "weight", self.weight_shape)
        bias = self._bias(bias)
        relu = _flag(relu, "relu")
        residual = _flag(residual, "residual")
        threads = self._threads(num_threads)
        pool = _flag(pool, "pool")
        if pool:
            self._poolable()
            if relu or batch_norm is not None or residual:
                raise ValueError("pool: the fused ReLU and max-pool takes no relu, batch_norm "
                                 "or residual")
        if self._by_products(False):
            if batch_norm is not None:
                self._batch_norm_map(batch_norm, False)  # checked all the same
            return None
        coefficients = (None if batch_norm is None
                        else self._frozen_batch_norm_map(batch_norm))
        path = self._forward_path(batch, pool)
        weights, bias = self._operands(path, weight, bias, threads, LAYOUT_FROZEN)
        if path == FORWARD_ROWS:
            weights, bias = np.array(weights), np.array(bias)
        elif self.double_precision:  # _padded_bias's scratch, which the next call rewrites
            bias = _vector_view[double](np.array(bias))
        else:
            bias = _vector_view[float](np.array(bias))
        return FrozenForward(self, path, batch, weights, bias, coefficients, relu, residual,
                             pool)

    cdef _launch_pool(self, int path, x, weights, bias, pooled, indices, Py_ssize_t threads):
        """forward_relu_pool's kernels of `path` (_forward_path) on checked arrays and their
        operands (_operands)."""
        if path == FORWARD_WINOGRAD:
            # Each 2x2 output tile is one pooling window: pooled in the output transform.
            self._winograd(x, weights, bias, None, None, True, threads, pooled, indices)
            return
        parts = self._parts(x.shape[0], threads)
        if path == FORWARD_ROWS:
            self._pool_rows(x, weights, bias, pooled, indices, parts, threads)
            return
        scratch = self._scratch(1, threads, self.image_size)
        ph, pw = self.padding
        ow = self.output_shape[2]
        if self.double_precision:
            _conv_relu_pool_forward[double](x, weights, bias, self.taps, pooled, indices,
                                            self.origins, scratch, ow, ph, pw, parts, threads)
        else:
            _conv_relu_pool_forward[float](x, weights, bias, self.taps, pooled, indices,
                                           self.origins, scratch, ow, ph, pw, parts, threads)

    cdef object _scratch(self, int kind, Py_ssize_t threads, Py_ssize_t size,
                         Py_ssize_t zeros=0):
        """A scratch (threads, size + zeros) of the calling Python thread's, whose last
        `zeros` values of each row are zero, as a typed memoryview: made once and reused by
        that thread's later calls of this kind and these sizes (0: the row kernels', whose
        pooled and unpooled forms differ in size, 1: the tile's padded images, 2: the tile's
        padded bias, one row, as a vector, 3: a folded batch norm's padded coefficients). A
        batch-1 layer's allocations, the zeroing and the kernels' buffer checks cost a good
        part of its microseconds; the kernels read nothing they have not written in a call
        but the zeros, so a reused scratch gives the same bits. Per Python thread, since
        threads may share a plan."""
        kept = getattr(self._workspaces, "scratch", None)
        if kept is None:
            kept = self._workspaces.scratch = [(None, None)] * 4
        made_for, view = kept[kind]
        if made_for != (threads, size, zeros):
            array = _aligned.empty((threads, size + zeros), self.dtype)
            array[:, size:] = 0
            if kind == 2:
                view = (_vector_view[double](array[0]) if self.double_precision
                        else _vector_view[float](array[0]))
            else:
                view = (_rows_view[double](array) if self.double_precision
                        else _rows_view[float](array))
            kept[kind] = ((threads, size, zeros), view)
        return view

    cdef void _winograd_layout(self, Py_ssize_t batch, Py_ssize_t threads, bint* split,
                               Py_ssize_t* images, Py_ssize_t* tiles) noexcept:
        """How _winograd_forward shares `batch` images out to `threads`: whether each image is
        split, the images of an item, the tiles of an item's rows of V."""
        # Whole images go to the threads, unless that would leave one idle or the last ones
        # alone (3 images on 2 threads): then each image is shared (_winograd_forward).
        split[0] = threads > 1 and batch % threads != 0 and batch < 2 * threads
        # Several images at a time only where that still leaves each thread two items.
        images[0] = self.winograd_images
        if split[0] or batch < 2 * threads * images[0]:
            images[0] = 1
        tiles[0] = self.winograd_tiles if images[0] > 1 else self.tiles_padded

    cdef object _rows_scratch(self, Py_ssize_t threads, bint pooled):
        """The row kernels' scratch: a padded image per thread (for the pooled rows, padded
        to an even width), then zeros that a last row's loads may read into lanes never
        stored (no junk such as NaNs; the kernels never write them): the loads of its last
        row reach one row and a vector past it (pooled: a vector)."""
        c, kw = self.weight_shape[1], self.weight_shape[3]
        slack = _row_slack(kw, self.dtype.itemsize)
        if pooled:
            return self._scratch(0, threads, c * self.hp * (self.wp + self.wp % 2), slack)
        return self._scratch(0, threads, c * self.hp * self.wp, self.wp + slack)

    cdef _conv_rows(self, x, weight, bias, coefficients, out, bint relu, Py_ssize_t parts,
                    Py_ssize_t threads):
        """forward by pairs of output rows (checked arrays, the weights and bias of
        _operands; see conv_rows): each image padded; the loads of its last row reach one row
        and a vector past it."""
        kh, kw = self.weight_shape[2:]
        ph, pw = self.padding
        scratch = self._rows_scratch(threads, False)
        if self.double_precision:
            _conv_rows_forward[double](x, weight, bias, coefficients, out, scratch, kh, kw, ph,
                                       pw, relu, parts, threads)
        else:
            _conv_rows_forward[float](x, weight, bias, coefficients, out, scratch, kh, kw, ph,
                                      pw, relu, parts, threads)

    cdef _pool_rows(self, x, weight, bias, pooled, indices, Py_ssize_t parts,
                    Py_ssize_t threads):
        """forward_relu_pool by pooled rows (checked arrays, the weights and bias of
        _operands; see pool_rows): each image padded to an even width, its rows split into
        even and odd columns; the loads of its last row reach a vector past it."""
        kh, kw = self.weight_shape[2:]
        ph, pw = self.padding
        wp = self.wp + self.wp % 2
        scratch = self._rows_scratch(threads, True)
        if self.double_precision:
            _conv_relu_pool_rows[double](x, weight, bias, pooled, indices, scratch, kh, kw,
                                         self.output_shape[2], ph, pw, self.hp, wp, parts,
                                         threads)
        else:
            _conv_relu_pool_rows[float](x, weight, bias, pooled, indices, scratch, kh, kw,
                                        self.output_shape[2], ph, pw, self.hp, wp, parts,
                                        threads)

    cdef Py_ssize_t _parts(self, Py_ssize_t batch, Py_ssize_t threads):
        """Into how many ranges the forward cuts each image: 1 (threads take whole images)
        unless the batch is too small to keep the team busy (batch 1 at inference), then one
        per thread, so that the threads' static shares of the batch's ranges
        (_share_of_image) are even. Depends on the batch and the thread count only; any cut
        gives the same bits."""
        if threads == 1 or batch == 0 or batch >= 2 * threads:
            return 1
        return threads

    cdef object _padded_bias(self, bias):
        """The bias (or zeros without one) padded with zeros to whole tiles: what the direct
        and Winograd kernels start each sum from (in the calling thread's scratch)."""
        padded = self._scratch(2, 1, self.f_padded)
        if self.double_precision:
            _pad_bias[double](bias, padded)
        else:
            _pad_bias[float](bias, padded)
        return padded

    cdef object _packed_weights(self, weight, Py_ssize_t threads, int keep):
        """wt (taps, F_padded), `weight` repacked for the register tile block of channels by
        block (_pack, conv_pack.h), as a typed memoryview (_rows_view): packing transposes
        every weight, which cost a batch-1 layer up to a fifth of its time, so it is kept
        (_kept_weights)."""
        return self._kept_weights(DIRECT_PACKING, weight, threads, keep)

    cdef object _transformed_weights(self, weight, Py_ssize_t threads, int keep):
        """Winograd's transformed weights u (16, groups, C, lanes): _winograd_weights of
        conv_winograd.pxi, kept (_kept_weights). Made at every call, they were 16/9 of the
        weights written for each batch-1 inference."""
        return self._kept_weights(WINOGRAD_TRANSFORM, weight, threads, keep)

    cdef object _kept_weights(self, int kind, weight, Py_ssize_t threads, int keep):
        """`weight` in the layout `kind` of the kernels (_lay_out_weights), kept (unless `keep`
        is LAYOUT_FOR_THE_CALL) for the next call with the same array and used again while
        that array's bytes are still those it was made from: their fingerprint is taken then
        and again at each call (fingerprint.h; a fraction of the packing's cost: one thread,
        AVX-512 Xeon, ResNet-8's 64 -> 64 layer 50 -> 42 us, VGG's 64 -> 128 layer 92 -> 72
        us). Only the values count:
        an in-place change anywhere, by an optimizer or through NumPy, is seen (a change of
        one 8-byte word in each of a chunk's lanes always, more only but for a 64-bit
        coincidence). The fingerprint replaced a copy compared byte for byte, which read the
        weights twice a call and pushed the laid-out weights out of the cache: the VGG-style
        net's batch-1 forward 344 -> 324 us (medians of 4 alternated processes). Training
        steps, whose weights change at each step, keep nothing (`keep` LAYOUT_FOR_THE_CALL:
        the fingerprint would only cost); frozen calls (LAYOUT_FROZEN) use a kept layout of
        the array without reading it (its fingerprint is still taken when the layout is made,
        for the checked calls). The array is found by id and a weak reference (a new
        array at a freed one's address is not it). Entries are tuples never changed once
        made, so threads sharing the plan (each call reads the entry it found) never see one
        half-written."""
        key = (kind, id(weight))
        entry = self._packings.get(key)
        if (entry is not None and entry[0]() is weight
                and (keep == LAYOUT_FROZEN or _has_fingerprint(weight, entry[1], threads))):
            return entry[2]
        laid_out = self._lay_out_weights(kind, weight, threads)
        # pop, not del: another thread may have changed the dict while the comparison and the
        # packing ran without the GIL.
        if keep != LAYOUT_FOR_THE_CALL:
            _keep_bounded(self._packings, key,
                          (weakref.ref(weight), _fingerprint(weight, threads), laid_out))
        elif entry is not None:  # stale (the weights changed, or a new array): let it go
            self._packings.pop(key, None)
        return laid_out

    cdef object _lay_out_weights(self, int kind, weight, Py_ssize_t threads):
        """A new array of `weight` in the layout `kind`: DIRECT_PACKING's (taps, F_padded) as a
        typed memoryview (a kept packing's view: no check per call), or
        WINOGRAD_TRANSFORM's u."""
        if kind == WINOGRAD_TRANSFORM:
            c, f = self.input_shape[0], self.weight_shape[0]
            u = _aligned.empty((16, _lane_rows(f) // CNN_BLOCK_LANES, c, CNN_BLOCK_LANES),
                               self.dtype)
            if self.double_precision:
                _winograd_weights[double](weight, u, threads)
            else:
                _winograd_weights[float](weight, u, threads)
            return u
        wt = _aligned.empty((self.n_taps, self.f_padded), self.dtype)
        rows = weight.reshape(self.weight_shape[0], self.n_taps)
        if self.double_precision:
            _pack[double](rows, wt, threads)
            return _rows_view[double](wt)
        _pack[float](rows, wt, threads)
        return _rows_view[float](wt)

    cdef tuple _columns_forward(self, x, weight, bias, bint relu, bint keep, Py_ssize_t threads):
        """Group g's output is w_g (F/groups, Cg*KH*KW) @ cols_g, image by image: products
        that give NCHW directly (the column layout is described in conv_columns.pxi), one BLAS
        call each, shared by the team (_gemm.image_products)."""
        n = x.shape[0]
        f, oh, ow = self.output_shape
        cols = self._columns(x, threads)
        rows = cols.shape[1] // self.groups  # explicit sizes: -1 is ambiguous for empty arrays
        w_groups = weight.reshape(self.groups, f // self.groups, rows)
        cols_groups = cols.reshape(n, self.groups, rows, oh * ow)
        use_one_thread()
        out = np.empty((n, self.groups, f // self.groups, oh * ow), dtype=self.dtype)
        if not _gemm.image_products(w_groups, cols_groups, out, False, threads):
            np.matmul(w_groups, cols_groups, out=out)
        out = out.reshape(n, f, oh, ow)
        if bias is not None:
            out += bias.reshape(1, f, 1, 1)
        if relu:
            flat = out.reshape(-1)
            _elementwise.relu(flat, flat, threads)
        return out, (cols_groups if keep else None)

    # ***** columns (im2col / col2im) *****

    def columns(self, x, num_threads=1):
        """The convolution patches of x (N, C, H, W) as columns (N, C*KH*KW, OH*OW).

        Column (c*KH + i)*KW + j of image n holds x[n, c, oy*SH - PH + i*DH, ox*SW - PW + j*DW]
        at position oy*OW + ox (zero in the padding), so `w.reshape(F, -1) @ cols` is the
        convolution (groups = 1).
        """
        cols = self._columns(self._input(x), self._threads(num_threads))
        return cols.copy() if self._columns_are_the_input() else cols  # never a view of x

    def columns_adjoint(self, cols, num_threads=1):
        """The adjoint of :meth:`columns` (col2im): sums columns (N, C*KH*KW, OH*OW) back into
        an (N, C, H, W) array."""
        c, kh, kw = self.input_shape[0], self.weight_shape[2], self.weight_shape[3]
        pixels = self.output_shape[1] * self.output_shape[2]
        batch = cols.shape[0] if isinstance(cols, np.ndarray) and cols.ndim == 3 else -1
        cols = self._array(cols, "cols", (batch, c * kh * kw, pixels))
        x = self._columns_adjoint(cols, self._threads(num_threads))
        return x.copy() if self._columns_are_the_input() else x  # never a view of cols

    cdef bint _columns_are_the_input(self):
        """Whether the columns are the input itself (1x1 kernel, stride 1, no padding)."""
        return (self.weight_shape[2:] == (1, 1) and self.stride == (1, 1)
                and self.padding == (0, 0))

    cdef object _columns(self, x, Py_ssize_t threads):
        c, kh, kw = self.input_shape[0], self.weight_shape[2], self.weight_shape[3]
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        oh, ow = self.output_shape[1:]
        if self._columns_are_the_input():
            return x.reshape(x.shape[0], c, oh * ow)
        cols = np.empty((x.shape[0], c * kh * kw, oh * ow), dtype=self.dtype)
        if self.double_precision:
            _im2col[double](x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, threads)
        else:
            _im2col[float](x, cols, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, threads)
        return cols

    cdef object _columns_adjoint(self, cols, Py_ssize_t threads):
        kh, kw = self.weight_shape[2:]
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        oh, ow = self.output_shape[1:]
        if self._columns_are_the_input():
            return cols.reshape((cols.shape[0],) + self.input_shape)
        x = np.empty((cols.shape[0],) + self.input_shape, dtype=self.dtype)
        if self.double_precision:
            _col2im[double](cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, threads)
        else:
            _col2im[float](cols, x, kh, kw, sh, sw, ph, pw, dh, dw, oh, ow, threads)
        return x

    # ***** backward *****

    def backward(self, x, weight, grad_output, needs=(True, True, True), columns=None,
                 num_threads=1):
        """Gradients of conv2d(x, weight, bias) given d(loss)/d(output) (N, F, OH, OW).

        Args:
            x, weight: the forward's arrays.
            grad_output: (N, F, OH, OW).
            needs: three flags (input, weight, bias): which gradients to compute.
            columns: what forward returned with keep_columns (columns algorithm), or None to
                recompute them.
            num_threads: the OpenMP team's size.

        Returns:
            (grad_input, grad_weight, grad_bias), None where `needs` says it is not wanted.
        """
        need_x, need_w, need_b = self._needs(needs)
        x = self._input(x)
        weight = self._array(weight, "weight", self.weight_shape)
        grad = self._array(grad_output, "grad_output", (x.shape[0],) + self.output_shape)
        threads = self._threads(num_threads)
        if self._winograd_pays(x.shape[0]):
            return self._winograd_backward(x, weight, grad, None, None, need_x, need_w,
                                           need_b, threads)
        if self.algorithm == COLUMNS:
            return self._columns_backward(x, weight, grad, columns, need_x, need_w, need_b,
                                          threads)
        return self._direct_backward(x, weight, grad, None, None, need_x, need_w, need_b,
                                     threads)

    def backward_relu_pool(self, x, weight, grad_output, pooled, indices,
                           needs=(True, True, True), num_threads=1):
        """Gradients of max_pool2d(relu(conv2d(x, weight, bias)), 2) given d(loss)/d(pooled).

        `pooled` and `indices` are what forward_relu_pool returned. Each pooled gradient goes,
        unless the pooled value is <= 0 (ReLU's mask, by relu_backward's rule: a NaN passes, a
        masked gradient is 0 even when it is inf or NaN), to its window's argmax pixel, and
        from there through the convolution, without building the convolution-sized gradient.
        The results equal backward's on that gradient, bit for bit (the same kernel sums them).
        """
        need_x, need_w, need_b = self._needs(needs)
        if self.groups != 1:
            raise ValueError(f"groups: the fused convolution, ReLU and max-pool needs groups = 1, "
                             f"got {self.groups}")
        x = self._input(x)
        weight = self._array(weight, "weight", self.weight_shape)
        f, oh, ow = self.output_shape
        expected = (x.shape[0], f, oh // 2, ow // 2)
        grad = self._array(grad_output, "grad_output", expected)
        pooled = self._array(pooled, "pooled", expected)
        indices = self._array(indices, "indices", expected, np.int64)
        if self._winograd_pays(x.shape[0]):
            return self._winograd_backward(x, weight, grad, pooled, indices, need_x, need_w,
                                           need_b, self._threads(num_threads))
        if self.algorithm == COLUMNS:
            threads = self._threads(num_threads)
            unpooled = self._unpooled(_relu_masked(grad, pooled, threads), indices, threads)
            return self._columns_backward(x, weight, unpooled, None, need_x, need_w, need_b,
                                          threads)
        return self._direct_backward(x, weight, grad, pooled, indices, need_x, need_w, need_b,
                                     self._threads(num_threads))

    cdef tuple _winograd_backward(self, x, weight, grad, pooled, indices, bint need_x,
                                  bint need_w, bint need_b, Py_ssize_t threads):
        """The gradients of a Winograd plan from checked arrays (pooled is None for a
        conv-shaped gradient): the weight gradient by conv_winograd.pxi, the bias gradient as
        a sum, the input gradient by a plan of its own (_dense_input_grad)."""
        if pooled is not None:
            grad = self._unpooled(_relu_masked(grad, pooled, threads), indices, threads)
        n, c, f = x.shape[0], self.input_shape[0], self.output_shape[0]
        grad_x = grad_w = grad_b = None
        if need_w:
            per_block, blocks = _weight_grad_blocks(n)
            # Each block's product stores every value of its partial sums (zeros needed only
            # without images, when no block runs): no pass to zero megabytes first.
            partial = (np.empty if n > 0 else np.zeros)(
                (blocks, 16, _lane_rows(f), _vector_channels(c)), dtype=self.dtype)
            scratch = np.empty((threads, _weight_grad_room(
                c, f, self.winograd_hp, self.winograd_wp, self.tiles_padded,
                _weight_grad_chunk(c, f, self.tiles_padded, per_block))), dtype=self.dtype)
            ph, pw = self.padding
            grad_w = np.empty(self.weight_shape, dtype=self.dtype)
            if self.double_precision:
                _winograd_weight_grad[double](x, grad, partial, scratch, per_block, ph, pw,
                                              self.winograd_hp, self.winograd_wp,
                                              self.tiles_padded, threads)
                _winograd_weight_adjoint[double](partial, grad_w, threads)
            else:
                _winograd_weight_grad[float](x, grad, partial, scratch, per_block, ph, pw,
                                             self.winograd_hp, self.winograd_wp,
                                             self.tiles_padded, threads)
                _winograd_weight_adjoint[float](partial, grad_w, threads)
        if need_b:
            grad_b = grad.sum(axis=(0, 2, 3))
        if need_x:
            grad_x = self._dense_input_grad(grad, weight, threads)
        return grad_x, grad_w, grad_b

    cdef tuple _direct_backward(self, x, weight, grad, pooled, indices, bint need_x,
                                bint need_w, bint need_b, Py_ssize_t threads):
        """Run _conv_backward over checked arrays; pooled is None for a conv-shaped gradient."""
        n = x.shape[0]
        f = self.weight_shape[0]
        scatter_x = need_x and self.scatter_input_grad
        by_channel = self.weight_grad_by_channel
        if scatter_x:
            segments = np.zeros(self.segment_shape, dtype=self.dtype)
            segments.reshape(-1)[self.segment_places] = weight.reshape(-1)
        else:
            segments = np.zeros((1, CNN_SEGMENT_GROUP, CNN_SEGMENT), dtype=self.dtype)
        segment_values = self.segment_shape[1] * CNN_SEGMENT
        pixels = self.n_pixels
        # Per thread: the padded image and the padded input gradient, each with CNN_SEGMENT
        # spare elements; the pixel rows; the channels' values of one pixel; each channel's
        # non-zero values, and room for one row of windows (see _channel_lists_pooled).
        # Integers: the same, by place.
        scratch = np.empty((threads, 2 * (self.image_size + CNN_SEGMENT) + pixels * self.f_padded
                            + f + (f + 1) * pixels), dtype=self.dtype)
        integers = np.empty((threads, pixels + f + f * pixels + f + pixels), dtype=np.intp)
        images_per_block, blocks = _weight_grad_blocks(n)
        partial = np.zeros((blocks, f + 1, segment_values) if by_channel else
                           (blocks, self.tap_rows + 1, self.f_padded), dtype=self.dtype)
        # Without images or output channels there is nothing to sum: the gradients are zeros.
        run = (need_w or need_b or scatter_x) and n > 0 and f > 0
        dx = (np.empty if run else np.zeros)(x.shape if scatter_x else (0, 1, 1, 1),
                                             dtype=self.dtype)
        pooled_form = pooled is not None
        if not pooled_form:
            pooled = np.empty((0, 1, 1, 1), dtype=self.dtype)
            indices = np.empty((0, 1, 1, 1), dtype=np.int64)
        ph, pw = self.padding
        conv_w = self.output_shape[2]
        weight_rows = weight.reshape(f, self.n_taps)
        if run and self.dtype == np.float64:
            _conv_backward[double](x, grad, pooled, indices, weight_rows, segments, self.taps,
                                   self.origins, self.segment_offsets, partial, dx, scratch,
                                   integers, ph, pw, images_per_block, pooled_form, by_channel,
                                   self.f_padded, conv_w, need_w, need_b, scatter_x, threads)
        elif run:
            _conv_backward[float](x, grad, pooled, indices, weight_rows, segments, self.taps,
                                  self.origins, self.segment_offsets, partial, dx, scratch,
                                  integers, ph, pw, images_per_block, pooled_form, by_channel,
                                  self.f_padded, conv_w, need_w, need_b, scatter_x, threads)
        # Blocks are summed in their fixed order, whatever the thread count.
        summed = partial.sum(axis=0)
        if by_channel:
            grad_w = (summed[:f].reshape(-1)[self.segment_places].reshape(self.weight_shape)
                      if need_w else None)
            grad_b = summed[f, :f].copy() if need_b else None
        else:
            grad_w = (np.ascontiguousarray(summed[:self.n_taps, :f].T)
                      .reshape(self.weight_shape) if need_w else None)
            grad_b = summed[self.tap_rows, :f].copy() if need_b else None
        grad_x = dx if scatter_x else None
        if need_x and not scatter_x:
            if pooled_form:
                grad = self._unpooled(_relu_masked(grad, pooled, threads), indices, threads)
            grad_x = self._dense_input_grad(grad, weight, threads)
        return grad_x, grad_w, grad_b

    cdef object _unpooled(self, grad, indices, Py_ssize_t threads):
        """The convolution-shaped gradient (N, F, OH, OW) of a 2x2 max-pool's gradient: each
        value added at its window's argmax (max_pool2d's backward)."""
        n, (f, oh, ow) = grad.shape[0], self.output_shape
        planes, pooled_size = n * f, grad.shape[2] * grad.shape[3]
        out = np.empty((n, f, oh, ow), dtype=self.dtype)
        _pool.max_pool_backward(grad.reshape(planes, pooled_size),
                                indices.reshape(planes, pooled_size),
                                out.reshape(planes, oh * ow), threads)
        return out

    cdef object _dense_input_grad(self, grad, weight, Py_ssize_t threads):
        """The input gradient as direct convolutions of the output gradient, one per phase: the
        input pixels whose row is ry and column rx modulo the stride (one phase at stride 1)
        receive from the taps of the kernel that reach them (a sub-kernel, rotated by 180
        degrees, input and output channels swapped), so no multiply-add meets a zero that the
        stride put between gradient values. Dense, and a full vector of channels per pixel for
        layers with at least CNN_BLOCK input channels. The phases are laid out on first use."""
        if self._input_grad_phases is None:
            self._lay_out_input_grad_phases()
        n = grad.shape[0]
        c, h, w = self.input_shape
        if self.stride == (1, 1):
            _, _, rows, cols, plan = self._input_grad_phases[0][:5]
            out = plan.forward(grad, self._phase_weight(weight, rows, cols), num_threads=threads,
                               keep_packing=False)[0]
            out = out[:, :, rows.crop, cols.crop]
            return out if out.flags.c_contiguous else np.ascontiguousarray(out)
        # Each phase writes its pixels straight into their strided places; only pixels that no
        # tap reaches (a phase without a plan) need zeros first.
        unreached = any(phase[4] is None for phase in self._input_grad_phases)
        dx = (np.zeros if unreached else np.empty)((n, c, h, w), dtype=self.dtype)
        for ry, rx, rows, cols, plan, origins, places in self._input_grad_phases:
            if plan is None:
                continue
            sub = self._phase_weight(weight, rows, cols)
            if (<ConvPlan> plan)._winograd_pays(n):
                # A 3x3 phase that Winograd serves (5x5 kernels at stride 2, for example):
                # computed whole, then copied into its strided places.
                out = plan.forward(grad, sub, num_threads=threads, keep_packing=False)[0]
                dx[:, :, ry::self.stride[0], rx::self.stride[1]] = out[:, :, rows.crop,
                                                                       cols.crop]
            else:
                (<ConvPlan> plan)._placed_forward(grad, sub, dx, origins, places, threads)
        return dx

    cdef object _phase_weight(self, weight, rows, cols):
        """The weights of one phase of the input gradient: its taps, rotated by 180 degrees,
        input and output channels swapped."""
        sub = weight[:, :, rows.taps, cols.taps][:, :, ::-1, ::-1].transpose(1, 0, 2, 3)
        return np.ascontiguousarray(sub)

    cdef _placed_forward(self, x, weight, out, origins, placements, Py_ssize_t threads):
        """The direct forward (no bias) of the output pixels whose window origins are
        `origins`, each written to out[n, f] at its place `placements[p]` (checked arrays of
        this plan's; out is the larger input gradient a phase belongs to)."""
        threads = self._team(x.shape[0], threads)
        parts = self._parts(x.shape[0], threads)
        wt, bias_padded = self._operands(FORWARD_DIRECT, weight, None, threads,
                                         LAYOUT_FOR_THE_CALL)
        scratch = self._scratch(1, threads, self.image_size)
        ph, pw = self.padding
        if self.double_precision:
            _conv_forward[double](x, wt, bias_padded, self.taps, origins, None, out, scratch,
                                  ph, pw, False, parts, threads, placements)
        else:
            _conv_forward[float](x, wt, bias_padded, self.taps, origins, None, out, scratch,
                                 ph, pw, False, parts, threads, placements)

    cdef _lay_out_input_grad_phases(self):
        c, h, w = self.input_shape
        f, _, kh, kw = self.weight_shape
        oh, ow = self.output_shape[1:]
        (sh, sw), (ph, pw), (dh, dw) = self.stride, self.padding, self.dilation
        phases = []
        for ry in range(sh):
            rows = _InputGradPhase(h, oh, kh, sh, ph, dh, ry)
            for rx in range(sw):
                cols = _InputGradPhase(w, ow, kw, sw, pw, dw, rx)
                plan = origins = places = None
                if rows.taps is not None and cols.taps is not None:
                    plan = ConvPlan((f, oh, ow), (c, f, rows.count, cols.count), 1,
                                    (rows.pad, cols.pad), (rows.spacing, cols.spacing), 1,
                                    self.dtype)
                    # The phase's wanted outputs (its crop) and their places in the input
                    # gradient's plane: rows ry, ry + sh, ..., columns rx, rx + sw, ...
                    out_w = (<ConvPlan> plan).output_shape[2]
                    grid = np.arange((<ConvPlan> plan).n_pixels).reshape(-1, out_w)
                    origins = _read_only(np.ascontiguousarray(
                        np.asarray((<ConvPlan> plan).origins)[grid[rows.crop, cols.crop]]
                        .reshape(-1)))
                    y = ry + sh * np.arange(rows.crop.stop - rows.crop.start)
                    x = rx + sw * np.arange(cols.crop.stop - cols.crop.start)
                    places = _read_only((y[:, None] * w + x[None, :]).reshape(-1).astype(np.intp))
                phases.append((ry, rx, rows, cols, plan, origins, places))
        self._input_grad_phases = phases

    cdef tuple _columns_backward(self, x, weight, grad, columns, bint need_x, bint need_w,
                                 bint need_b, Py_ssize_t threads):
        """dW_g = sum_n dy_g[n] @ cols_g[n].T (in fixed blocks of images, added in order),
        dcols_g = w_g.T @ dy_g, dx = col2im(dcols): image by image, one BLAS call each,
        shared by the team (_gemm)."""
        n, (f, oh, ow) = x.shape[0], self.output_shape
        pixels = oh * ow
        grad_b = grad.sum(axis=(0, 2, 3)) if need_b else None
        grad_groups = grad.reshape(n, self.groups, f // self.groups, pixels)
        rows = self.weight_shape[1] * self.weight_shape[2] * self.weight_shape[3]
        grad_x = grad_w = None
        if need_w and columns is None:
            columns = self._columns(x, threads).reshape(n, self.groups, rows, pixels)
        use_one_thread()
        if need_w:
            per_block, blocks = _weight_grad_blocks(n)
            partial = np.empty((blocks, self.groups, f // self.groups, rows), dtype=self.dtype)
            if _gemm.summed_products(grad_groups, columns, partial, per_block, threads):
                grad_w = partial.sum(axis=0)
            else:
                grad_w = np.matmul(grad_groups, columns.transpose(0, 1, 3, 2)).sum(axis=0)
            grad_w = grad_w.reshape(self.weight_shape)
        if need_x:
            w_groups = weight.reshape(self.groups, f // self.groups, rows)
            dcols = np.empty((n, self.groups, rows, pixels), dtype=self.dtype)
            if not _gemm.image_products(w_groups, grad_groups, dcols, True, threads):
                np.matmul(w_groups.transpose(0, 2, 1), grad_groups, out=dcols)
            grad_x = self._columns_adjoint(dcols.reshape(n, self.groups * rows, pixels), threads)
        return grad_x, grad_w, grad_b


def _described(array):
    """An argument as an error message names it: an array's dtype, shape and layout."""
    if not isinstance(array, np.ndarray):
        return type(array).__name__
    layout = "C-contiguous" if array.flags.c_contiguous else "not C-contiguous"
    return f"{array.dtype} array of shape {array.shape} ({layout})"


cdef class FrozenForward:
    """A convolution's forward of a fixed batch size prepared once (ConvPlan.frozen_forward)
    for weights taken for constants; called as ``frozen(num_threads, x)``, or
    ``frozen(num_threads, x, residual)`` when prepared for a residual: the result (N, F, OH,
    OW), or pooled (N, F, OH // 2, OW // 2). Holds its operands (read only), so threads may
    share it; each call runs in its own thread's scratch."""

    cdef ConvPlan plan
    cdef int path
    cdef object weights, bias, coefficients
    cdef tuple input_shape, output_shape
    cdef bint relu, residual, pool

    def __init__(self, ConvPlan plan, int path, Py_ssize_t batch, weights, bias, coefficients,
                 bint relu, bint residual, bint pool):
        self.plan, self.path = plan, path
        self.weights, self.bias, self.coefficients = weights, bias, coefficients
        self.relu, self.residual, self.pool = relu, residual, pool
        self.input_shape = (batch,) + plan.input_shape
        f, oh, ow = plan.output_shape
        self.output_shape = (batch, f, oh // 2, ow // 2) if pool else (batch, f, oh, ow)

    def __call__(self, num_threads, x, residual=None):
        cdef ConvPlan plan = self.plan
        x = plan._array(x, "input", self.input_shape)
        threads = plan._team(self.input_shape[0], plan._threads(num_threads))
        if self.residual:
            residual = plan._array(residual, "residual", self.output_shape)
        elif residual is not None:
            raise ValueError("residual: this frozen forward was prepared without one")
        out = np.empty(self.output_shape, dtype=plan.dtype)
        if self.pool:
            plan._launch_pool(self.path, x, self.weights, self.bias, out, None, threads)
        else:
            plan._launch(self.path, x, self.weights, self.bias, self.coefficients, out,
                         self.relu, threads, residual)
        return out

    def bind(self, num_threads, out, x, residual=None):
        """This forward bound to arrays it reads and writes at every call (cnn.compile's
        bound programs): a BoundForward, whose call ``bound(threads)`` writes into `out` what
        ``frozen(threads, x, residual)`` would return, for the values these arrays then hold,
        with nothing checked, laid out or allocated again; or None where it has no bound form
        (float64, whose batch-1 layers keep the frozen call; the row kernels with a
        residual). Each array must be C-contiguous, of the plan's dtype and of the frozen
        call's shape (`out`: the result's, writable, sharing no memory with the others);
        `num_threads`: the largest team of its calls (the scratch is sized for it). The
        bound form runs in the scratch of the thread that binds it (as the plan's other
        calls in that thread do, one after the other): call it from that thread."""
        if not self._bindable(residual is not None):
            _check_binding(self, num_threads, out, x, residual)  # its arguments checked alike
            return None
        return BoundForward(self, num_threads, out, x, residual)

    cdef bint _bindable(self, bint residual):
        """Whether this forward has a bound form: float32, and not the row kernels with a
        residual (added by a pass of its own, _residual_pass, not by the kernels)."""
        return not self.plan.double_precision and not (self.path == FORWARD_ROWS and residual)


cdef Py_ssize_t _check_binding(FrozenForward frozen, num_threads, out, x,
                               residual) except -1:
    """The checks of FrozenForward.bind's arguments; returns the team size."""
    cdef ConvPlan plan = frozen.plan
    threads = plan._threads(num_threads)
    if frozen.residual != (residual is not None):
        raise ValueError("residual: expected one exactly when the frozen forward was "
                         "prepared with one")
    arrays = [("input", x, frozen.input_shape), ("out", out, frozen.output_shape)]
    if residual is not None:
        arrays.append(("residual", residual, frozen.output_shape))
    for name, array, expected in arrays:
        if (type(array) is not np.ndarray or array.dtype != plan.dtype
                or array.shape != expected or not array.flags.c_contiguous):
            raise ValueError(f"{name}: expected a C-contiguous {plan.dtype} array of shape "
                             f"{expected}, got {_described(array)}")
    if not out.flags.writeable:
        raise ValueError("out: expected a writable array")
    for name, array in (("input", x), ("residual", residual)):
        if array is not None and np.may_share_memory(out, array):
            raise ValueError(f"out: expected an array that shares no memory with {name}")
    return threads


cdef class BoundForward(BoundStep):
    """A float32 FrozenForward bound to its arrays (FrozenForward.bind, whose checks it
    makes): ``bound(threads)`` runs the kernels of the frozen call from the input (and the
    residual) into the result array, on a team of at most the binding's `num_threads`; a
    bound program runs its shares (BoundStep) with its other steps'. The operands, the
    scratch, the arrays and how the binding's team shares the work out are fixed once here,
    so a call is the kernels alone: a batch-1 layer's frozen call spent about 1 us in the
    checks, the allocation and the typed memoryviews around its kernels. The arrays' buffers
    are held, so NumPy refuses to resize them (unless told not to check, `refcheck=False`,
    which frees memory the kernels then write: never do that to a bound array). The same
    bits as the frozen call, which runs the same kernels (no value depends on how the work
    is shared out)."""

    cdef int path
    cdef bint relu, pool
    cdef bint by_rows  # Winograd's parts: rows of tiles, not output channels
    cdef Py_ssize_t parts  # of each image (Winograd: of each item)
    cdef Py_ssize_t room, ph, pw, f, oh, ow, kh, kw, hp, wp, images, tiles
    cdef const float[:, :, :, ::1] x
    cdef const float[:, :, :, ::1] residual
    cdef float[:, :, :, ::1] out
    cdef int64_t[:, :, :, ::1] no_indices  # never set: None (the argmax is not kept)
    cdef const float[:, ::1] weights  # the direct and row kernels' (_operands)
    cdef const float[:, :, :, ::1] transformed  # Winograd's (_operands)
    cdef const float[::1] bias
    cdef const float[:, ::1] coefficients
    cdef const float* affine  # the coefficients' values, or NULL
    cdef const Py_ssize_t[::1] taps, origins  # the direct kernels' (the plan's)
    cdef float[:, ::1] scratch  # the direct and row kernels': a row per thread
    cdef float[::1] winograd_scratch

    def __cinit__(self, FrozenForward frozen, num_threads, out, x, residual=None):
        cdef ConvPlan plan = frozen.plan
        cdef Py_ssize_t threads = _check_binding(frozen, num_threads, out, x, residual)
        cdef Py_ssize_t batch = x.shape[0]
        cdef bint split
        if not frozen._bindable(residual is not None):
            raise ValueError("frozen: this forward has no bound form (FrozenForward.bind "
                             "gives None)")
        self.path = frozen.path
        self.relu, self.pool = frozen.relu, frozen.pool
        self.ph, self.pw = plan.padding
        self.f, self.oh, self.ow = plan.output_shape
        self.kh, self.kw = plan.weight_shape[2:]
        self.x, self.out = x, out
        if residual is not None:
            self.residual = residual
        self.bias = frozen.bias
        self.affine = NULL
        if frozen.coefficients is not None:
            self.coefficients = frozen.coefficients
            self.affine = &self.coefficients[0, 0]
        # The binding's whole team shares the layer, however small (a frozen call keeps tiny
        # ones on one thread, _team): a bound program waits at a barrier after each step,
        # whatever its team (_replay.BoundSteps). Otherwise the frozen call's shares.
        self.parts = plan._parts(batch, threads)
        self.team = threads if self.parts > 1 else min(threads, batch)
        if self.path == FORWARD_WINOGRAD:
            self.transformed = frozen.weights
            self.winograd_scratch, self.room = _winograd_scratch(False, threads,
                                                                 plan.winograd_size)
            plan._winograd_layout(batch, threads, &split, &self.images, &self.tiles)
            self.hp, self.wp = plan.winograd_hp, plan.winograd_wp
            self.parts = _winograd_parts(plan.input_shape[0], self.f, self.oh, self.ow, split,
                                         threads, &self.by_rows)
            self.team = min(threads, (batch + self.images - 1) // self.images * self.parts)
        else:
            self.weights = frozen.weights
            self.taps, self.origins = plan.taps, plan.origins
            self.hp, self.wp = plan.hp, plan.wp + plan.wp % 2  # the row kernels' split image
            if self.path == FORWARD_ROWS:
                self.scratch = plan._rows_scratch(threads, self.pool)
            else:
                self.scratch = plan._scratch(1, threads, plan.image_size)
        if out.size == 0:
            self.team = 0

    cdef void share(self, Py_ssize_t t) noexcept nogil:
        if self.path == FORWARD_WINOGRAD:
            _winograd_share[float](self.x, self.transformed, self.bias, self.affine, self.out,
                                   self.pool, self.no_indices, self.winograd_scratch,
                                   self.room, self.f, self.oh, self.ow, self.ph, self.pw,
                                   self.hp, self.wp, self.tiles, self.images, self.relu,
                                   self.by_rows, self.parts, self.team, t, self.residual)
        elif self.path == FORWARD_ROWS:
            if self.pool:
                _conv_relu_pool_rows_share[float](self.x, self.weights, self.bias, self.out,
                                                  self.no_indices, self.scratch, self.kh,
                                                  self.kw, self.ow, self.ph, self.pw, self.hp,
                                                  self.wp, self.parts, self.team, t)
            else:
                _conv_rows_share[float](self.x, self.weights, self.bias, self.affine,
                                        0 if self.affine == NULL else self.coefficients.shape[1],
                                        self.out, self.scratch, self.kh, self.kw, self.ph,
                                        self.pw, self.relu, self.parts, self.team, t)
        elif self.pool:
            _conv_relu_pool_share[float](self.x, self.weights, self.bias, self.taps, self.out,
                                         self.no_indices, self.origins, self.scratch, self.ow,
                                         self.ph, self.pw, self.parts, self.team, t)
        else:
            _conv_forward_share[float](self.x, self.weights, self.bias, self.taps,
                                       self.origins, self.affine, self.out, self.scratch,
                                       self.ph, self.pw, self.relu, self.parts, self.team, t,
                                       NULL, self.residual)
