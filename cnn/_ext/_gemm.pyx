"""Matrix products split into fixed blocks of columns, the blocks shared by the OpenMP team.

Each block is one call of numpy's BLAS (its cblas_sgemm / cblas_dgemm, whose address
cnn/_blas.py finds in the library numpy loaded), made with that BLAS on one thread: the kernels'
OpenMP team is then the one pool at work, as everywhere else in cnn. Blocks are columns of the
result (rows of op(b)): each call packs only its share of op(b), where row blocks would each
pack all of it. A result of a few columns (a classifier's 10 logits for a large batch) is cut
into blocks of rows instead: column blocks would each read all of op(a), the large operand,
and a call of 5 columns runs BLAS's kernels at their narrowest. The number of blocks depends on
the shapes alone (an even count, or one block for a product too small to share), never on the
thread count, and each block is one call, so the results are bit-identical for any number of
threads.

The convolutions by columns (conv.pyx) multiply image by image instead: `image_products` is
one call per image and group, `summed_products` sums such products over fixed blocks of images
(their weight gradient); the calls are shared by the team the same way.

Compiled once (no instruction-set variants): the arithmetic happens inside the BLAS.
"""
from cython cimport floating
from cython.parallel cimport prange
from libc.stdint cimport int64_t

from cnn._ext._openmp cimport serial as _serial

from cnn import _blas

from numpy import float32 as np_float32, float64 as np_float64

cdef enum:
    ROW_MAJOR = 101       # CBLAS_ORDER and CBLAS_TRANSPOSE values, fixed by the CBLAS standard
    NO_TRANSPOSE = 111
    TRANSPOSE = 112

# The ILP64 interface (64-bit integers) of the OpenBLAS that numpy's wheels ship.
ctypedef void (*sgemm_t)(int order, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                         float alpha, const float* a, int64_t lda, const float* b, int64_t ldb,
                         float beta, float* c, int64_t ldc) noexcept nogil
ctypedef void (*dgemm_t)(int order, int trans_a, int trans_b, int64_t m, int64_t n, int64_t k,
                         double alpha, const double* a, int64_t lda, const double* b,
                         int64_t ldb, double beta, double* c, int64_t ldc) noexcept nogil

MAX_BLOCK_COLUMNS = 64
# Results of at most this many columns are cut into row blocks of at most MAX_BLOCK_ROWS rows.
# (A 1000 x 4096 @ 4096 x 10 product read its 16 MB operand on each of two threads: 1.8 ms as
# two column blocks against 1.0 as two row blocks.)
MAX_ROW_SPLIT_COLUMNS = 16
MAX_BLOCK_ROWS = 512
# Multiply-adds below which one thread computes the product: waking the team costs more than it
# saves. At 2^20, LeNet-5's first fully connected layer (3M at batch 64) is shared: its step ran
# 1.68 -> 1.61 ms on 2 threads (2^22 left it to one thread; 2^18 measured no better).
MIN_SHARED_WORK = 1 << 20


def blocks(Py_ssize_t m, Py_ssize_t n, Py_ssize_t k):
    """(row blocks, column blocks) that an (m, k) @ (k, n) product is split into: (1, 1) for
    one call, else one of the two is an even count above 1."""
    if m * n * k < MIN_SHARED_WORK:
        return 1, 1
    if n <= MAX_ROW_SPLIT_COLUMNS:
        if m < 2:
            return 1, 1
        return 2 * ((m + 2 * MAX_BLOCK_ROWS - 1) // (2 * MAX_BLOCK_ROWS)), 1
    return 1, 2 * ((n + 2 * MAX_BLOCK_COLUMNS - 1) // (2 * MAX_BLOCK_COLUMNS))


cdef size_t _gemm_of(bint double_precision):
    """The address of numpy's cblas_dgemm (or cblas_sgemm), 0 when cnn knows none."""
    address = _blas.gemm_address(np_float64 if double_precision else np_float32)
    return 0 if address is None else address


cdef inline void _call(size_t gemm, int ta, int tb, int64_t m, int64_t n, int64_t k,
                       const floating* a, int64_t lda, const floating* b, int64_t ldb,
                       floating beta, floating* c, int64_t ldc) noexcept nogil:
    """c = op(a) @ op(b) + beta * c, row-major, through the BLAS function at `gemm` (the
    cblas_?gemm of the dtype)."""
    if floating is float:
        (<sgemm_t> gemm)(ROW_MAJOR, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)
    else:
        (<dgemm_t> gemm)(ROW_MAJOR, ta, tb, m, n, k, 1, a, lda, b, ldb, beta, c, ldc)


def matmul(const floating[:, ::1] a,    # IN  (M, K), or (K, M) when transpose_a
           const floating[:, ::1] b,    # IN  (K, N), or (N, K) when transpose_b
           floating[:, ::1] out,        # OUT (M, N)
           bint transpose_a, bint transpose_b, int num_threads):
    """out = op(a) @ op(b), op transposing where asked, through numpy's cblas_sgemm (float32)
    or cblas_dgemm (float64) with 64-bit integers.

    Returns:
        bool: False, with `out` untouched, when numpy's BLAS has no such function that cnn
        knows (the caller then computes the product otherwise).

    Raises:
        ValueError: The shapes of a, b and out do not fit together.
    """
    cdef Py_ssize_t M = out.shape[0], N = out.shape[1]
    cdef Py_ssize_t K = a.shape[0] if transpose_a else a.shape[1]
    cdef Py_ssize_t row_blocks, column_blocks, height, width, block, count
    cdef int ta = TRANSPOSE if transpose_a else NO_TRANSPOSE
    cdef int tb = TRANSPOSE if transpose_b else NO_TRANSPOSE
    cdef int64_t lda = a.shape[1], ldb = b.shape[1]
    cdef size_t gemm
    if ((a.shape[1] if transpose_a else a.shape[0]) != M
            or (b.shape[0] if transpose_b else b.shape[1]) != N
            or (b.shape[1] if transpose_b else b.shape[0]) != K):
        raise ValueError(f"matmul: shapes {(a.shape[0], a.shape[1])} and "
                         f"{(b.shape[0], b.shape[1])} (transposed: {transpose_a}, {transpose_b}) "
                         f"do not give out's {(M, N)}")
    gemm = _gemm_of(floating is double)
    if gemm == 0:
        return False
    if M == 0 or N == 0:
        return True
    if K == 0:
        out[:, :] = 0
        return True
    row_blocks, column_blocks = blocks(M, N, K)
    count = row_blocks * column_blocks
    height, width = (M + row_blocks - 1) // row_blocks, (N + column_blocks - 1) // column_blocks
    with nogil:
        if _serial(num_threads, count):
            for block in range(count):
                _block(gemm, ta, tb, a, lda, b, ldb, out, block // column_blocks * height,
                       height, block % column_blocks * width, width, K)
        else:
            for block in prange(count, schedule="dynamic", num_threads=num_threads):
                _block(gemm, ta, tb, a, lda, b, ldb, out, block // column_blocks * height,
                       height, block % column_blocks * width, width, K)
    return True


cdef inline void _block(size_t gemm, int ta, int tb, const floating[:, ::1] a, int64_t lda,
                        const floating[:, ::1] b, int64_t ldb, floating[:, ::1] out,
                        Py_ssize_t row, Py_ssize_t height, Py_ssize_t column, Py_ssize_t width,
                        Py_ssize_t K) noexcept nogil:
    """matmul's rows row, ... (at most `height`) and columns column, ... (at most `width`):
    those rows of op(a) @ those columns of op(b)."""
    cdef Py_ssize_t M = out.shape[0], N = out.shape[1]
    # Rows of op(a) are `row` rows down a, or `row` columns across a; columns of op(b) are
    # `column` rows down b, or `column` columns across b.
    cdef const floating* a_block = &a[0, row] if ta == TRANSPOSE else &a[row, 0]
    cdef const floating* b_block = &b[column, 0] if tb == TRANSPOSE else &b[0, column]
    _call(gemm, ta, tb, min(height, M - row), min(width, N - column), K, a_block, lda, b_block,
          ldb, 0, &out[row, column], N)


def image_products(const floating[:, :, ::1] a,     # IN  (G, M, K), or (G, K, M) transposed
                   const floating[:, :, :, ::1] b,  # IN  (N, G, K, P)
                   floating[:, :, :, ::1] out,      # OUT (N, G, M, P)
                   bint transpose_a, int num_threads):
    """out[n, g] = op(a[g]) @ b[n, g] for every image n and group g: one BLAS call each (the
    product of a convolution by columns), the calls shared by the team, so the results do not
    depend on the thread count.

    Returns:
        bool: False, with `out` untouched, when numpy's BLAS has no cblas_?gemm that cnn knows.

    Raises:
        ValueError: The shapes do not fit together.
    """
    cdef Py_ssize_t N = out.shape[0], G = out.shape[1], M = out.shape[2], P = out.shape[3]
    cdef Py_ssize_t K = b.shape[2], item
    cdef int ta = TRANSPOSE if transpose_a else NO_TRANSPOSE
    cdef int64_t lda = a.shape[2]
    cdef size_t gemm
    if (a.shape[0] != G or (a.shape[2] if transpose_a else a.shape[1]) != M
            or (a.shape[1] if transpose_a else a.shape[2]) != K
            or b.shape[0] != N or b.shape[1] != G or b.shape[3] != P):
        raise ValueError(f"image_products: a {tuple(a.shape)[:3]} (transposed: {transpose_a}) "
                         f"and b {tuple(b.shape)[:4]} do not give out's {tuple(out.shape)[:4]}")
    gemm = _gemm_of(floating is double)
    if gemm == 0:
        return False
    if N * G * M * P == 0:
        return True
    if K == 0:
        out[:, :, :, :] = 0
        return True
    with nogil:
        if _serial(num_threads, N * G):
            for item in range(N * G):
                _image_product(gemm, ta, a, lda, b, out, item // G, item % G)
        else:
            for item in prange(N * G, schedule="dynamic", num_threads=num_threads):
                _image_product(gemm, ta, a, lda, b, out, item // G, item % G)
    return True


cdef inline void _image_product(size_t gemm, int ta, const floating[:, :, ::1] a, int64_t lda,
                                const floating[:, :, :, ::1] b, floating[:, :, :, ::1] out,
                                Py_ssize_t n, Py_ssize_t g) noexcept nogil:
    """out[n, g] = op(a[g]) @ b[n, g] (image_products)."""
    cdef Py_ssize_t P = out.shape[3]
    _call(gemm, ta, NO_TRANSPOSE, out.shape[2], P, b.shape[2], &a[g, 0, 0], lda,
          &b[n, g, 0, 0], P, 0, &out[n, g, 0, 0], P)


def summed_products(const floating[:, :, :, ::1] a,  # IN  (N, G, M, P)
                    const floating[:, :, :, ::1] b,  # IN  (N, G, K, P)
                    floating[:, :, :, ::1] out,      # OUT (blocks, G, M, K)
                    Py_ssize_t images_per_block, int num_threads):
    """out[k, g] = the sum of a[n, g] @ b[n, g].T over the images n of block k (images
    k * images_per_block, ...): a convolution's weight gradient by columns, block by block.
    Each block adds its images in order (a BLAS call each, accumulating), and the caller adds
    the blocks in order, so the results depend on the batch size only, not on the thread count.

    Returns:
        bool: False, with `out` untouched, when numpy's BLAS has no cblas_?gemm that cnn knows.

    Raises:
        ValueError: The shapes do not fit together, or the blocks do not cover the images.
    """
    cdef Py_ssize_t N = a.shape[0], G = a.shape[1], M = a.shape[2], P = a.shape[3]
    cdef Py_ssize_t K = b.shape[2], blocks = out.shape[0], item
    cdef size_t gemm
    if (b.shape[0] != N or b.shape[1] != G or b.shape[3] != P or out.shape[1] != G
            or out.shape[2] != M or out.shape[3] != K):
        raise ValueError(f"summed_products: a {tuple(a.shape)[:4]} and b {tuple(b.shape)[:4]} "
                         f"do not give out's {tuple(out.shape)[:4]}")
    if images_per_block < 1 or blocks * images_per_block < N or (
            blocks > 0 and (blocks - 1) * images_per_block >= max(N, 1)):
        raise ValueError(f"images_per_block: {blocks} blocks of {images_per_block} images do "
                         f"not cover {N} images")
    gemm = _gemm_of(floating is double)
    if gemm == 0:
        return False
    if blocks * G * M * K == 0:
        return True
    if P == 0 or N == 0:
        out[:, :, :, :] = 0
        return True
    with nogil:
        if _serial(num_threads, blocks * G):
            for item in range(blocks * G):
                _summed_block(gemm, a, b, out, item // G, item % G, images_per_block)
        else:
            for item in prange(blocks * G, schedule="dynamic", num_threads=num_threads):
                _summed_block(gemm, a, b, out, item // G, item % G, images_per_block)
    return True


cdef inline void _summed_block(size_t gemm, const floating[:, :, :, ::1] a,
                               const floating[:, :, :, ::1] b, floating[:, :, :, ::1] out,
                               Py_ssize_t k, Py_ssize_t g,
                               Py_ssize_t images_per_block) noexcept nogil:
    """out[k, g] of summed_products: its images' products, added in order."""
    cdef Py_ssize_t P = a.shape[3], K = b.shape[2], n
    cdef Py_ssize_t first = k * images_per_block
    cdef Py_ssize_t last = min(a.shape[0], (k + 1) * images_per_block)
    for n in range(first, last):
        # The block's first image sets out[k, g]; the others add to it.
        _call(gemm, NO_TRANSPOSE, TRANSPOSE, a.shape[2], K, P, &a[n, g, 0, 0], P,
              &b[n, g, 0, 0], P, 0 if n == first else 1, &out[k, g, 0, 0], K)
