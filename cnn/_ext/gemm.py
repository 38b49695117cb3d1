"""The layers' matrix products: numpy's BLAS, in column blocks shared by the kernels' threads.

See cnn/_ext/_gemm.pyx. Where numpy's BLAS exposes no cblas_?gemm that cnn knows, or the product
is too small to share, the product is numpy's own, on one BLAS thread (cnn/_blas.py).
"""
import numpy as np

from cnn import _blas
from cnn._validation import flag, float_array

from . import _gemm


def matmul(a, b, transpose_a=False, transpose_b=False, num_threads=1):
    """op(a) @ op(b) for 2-D float arrays of one dtype, op transposing where asked.

    Raises:
        TypeError, ValueError: Arguments that are not such arrays, or whose shapes do not fit;
            the message names the argument.
    """
    a = float_array(a, "a", ndim=2)
    b = float_array(b, "b", ndim=2)
    transpose_a, transpose_b = flag(transpose_a, "transpose_a"), flag(transpose_b, "transpose_b")
    if a.dtype != b.dtype:
        raise ValueError(f"b: expected dtype {a.dtype} (a's), got {b.dtype}")
    k = a.shape[0] if transpose_a else a.shape[1]
    k_b = b.shape[1] if transpose_b else b.shape[0]
    if k != k_b:
        raise ValueError(f"b: expected {k} rows in op(b) for op(a) with {k} columns, got "
                         f"{k_b}")
    return product(a, b, transpose_a, transpose_b, num_threads)


def product(a, b, transpose_a, transpose_b, num_threads):
    """matmul for arguments the caller has checked (the layers, at their public boundary):
    2-D float arrays of one dtype whose inner dimensions agree, bool flags."""
    m = a.shape[1] if transpose_a else a.shape[0]
    n = b.shape[0] if transpose_b else b.shape[1]
    k = a.shape[0] if transpose_a else a.shape[1]
    _blas.use_one_thread()
    if _gemm.blocks(m, n, k) != (1, 1):
        out = np.empty((m, n), dtype=a.dtype)
        if _gemm.matmul(np.ascontiguousarray(a), np.ascontiguousarray(b), out, transpose_a,
                        transpose_b, num_threads):
            return out
    if k == 1:
        # An outer product (a weight gradient at batch 1): each value is one rounded product
        # added to zero, as BLAS computes it (adding 0 turns a -0 product into BLAS's +0), but
        # OpenBLAS's sgemm took 54 us for 120 x 400 of them.
        out = np.multiply((a.T if transpose_a else a), (b.T if transpose_b else b))
        out += 0
        return out
    # One call either way (the blocks depend on the shapes, never on the thread count): numpy's
    # own is the shortest path to it. np.dot reaches the same BLAS call as `@` (the same bits,
    # tested) with less dispatch: 2.5 against 2.9 us for a batch-1 400 -> 120 layer.
    return np.dot(a.T if transpose_a else a, b.T if transpose_b else b)
