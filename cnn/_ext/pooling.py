"""Max- and average-pooling on arrays: the entry points of the pooling kernels (pool.pyx).

Array in, array out: each function takes (N, C, H, W) arrays and a geometry checked by
cnn/_ext/geometry.py, views the batch as a stack of N*C planes, allocates the result and runs
the kernel of the instruction set in use (``cnn._ext.backend``) on `num_threads` threads.
"""
import numpy as np

from cnn import _ext


def _planes(x):
    """x (N, C, H, W) as a C-contiguous stack of N*C planes."""
    n, c, h, w = x.shape
    return np.ascontiguousarray(x).reshape(n * c, h, w)


def max_pool(x, geometry, num_threads):
    """Max-pool `x` (N, C, H, W); returns (values, indices), both (N, C, OH, OW).

    indices[n, c, oy, ox] is the flat position y*W + x of the maximum inside plane (n, c) (the
    first maximum in row-major window order; a NaN wins), or -1 for a window that covers only
    padding.
    """
    kernel, stride, padding, dilation, out = geometry
    n, c = x.shape[:2]
    values = np.empty((n, c) + out, dtype=x.dtype)
    indices = np.empty((n, c) + out, dtype=np.int64)
    _ext.backend.pool.max_pool_forward(_planes(x), values.reshape(n * c, *out),
                                       indices.reshape(n * c, *out), *kernel, *stride, *padding,
                                       *dilation, num_threads)
    return values, indices


def max_pool_backward(grad_output, indices, input_shape, num_threads):
    """Gradient of max_pool with respect to its input (N, C, H, W), from its indices."""
    n, c, h, w = input_shape
    planes, outputs = n * c, grad_output.shape[2] * grad_output.shape[3]
    grad_input = np.empty(input_shape, dtype=grad_output.dtype)
    _ext.backend.pool.max_pool_backward(
        np.ascontiguousarray(grad_output).reshape(planes, outputs),
        np.ascontiguousarray(indices).reshape(planes, outputs),
        grad_input.reshape(planes, h * w), num_threads)
    return grad_input


def _covers_plane(geometry, shape):
    """Whether a pool of `geometry` on (N, C, H, W) inputs of `shape` has one window covering
    each whole plane, without padding (a classifier's global pool)."""
    (kh, kw), _, (ph, pw), _, out = geometry
    h, w = shape[2:]
    return out == (1, 1) and (kh, kw) == (h, w) and ph == pw == 0 and h * w > 0


def avg_pool(x, geometry, count_include_pad, num_threads):
    """Average-pool `x` (N, C, H, W) with zero padding; returns (N, C, OH, OW)."""
    (kh, kw), (sh, sw), (ph, pw), _, out = geometry
    n, c = x.shape[:2]
    values = np.empty((n, c) + out, dtype=x.dtype)
    if _covers_plane(geometry, x.shape):
        # A global pool (a classifier's): its kernel takes buffers, cheaper at batch 1.
        _ext.backend.pool.global_avg_pool(np.ascontiguousarray(x), values, num_threads)
        return values
    _ext.backend.pool.avg_pool_forward(_planes(x), values.reshape(n * c, *out), kh, kw, sh, sw,
                                       ph, pw, count_include_pad, num_threads)
    return values


class FrozenGlobalAvgPool:
    """avg_pool for windows covering whole planes of (N, C, H, W) inputs of one shape,
    prepared by cnn.compile's freezing (frozen_avg_pool): called as ``frozen(num_threads,
    x)``, avg_pool's result; its bind gives the form a bound program runs."""

    def __init__(self, shape):
        self.shape = tuple(shape)

    def __call__(self, num_threads, x):
        self._check(x)
        values = np.empty(x.shape[:2] + (1, 1), dtype=x.dtype)
        _ext.backend.pool.global_avg_pool(np.ascontiguousarray(x), values, num_threads)
        return values

    def bind(self, num_threads, out, x):
        """This pool bound to arrays it reads and writes at every call (cnn.compile's bound
        programs): ``bound(threads)`` writes x's plane means into out (N, C, 1, 1), both
        C-contiguous of one float dtype, their buffers taken once, on a team of at most
        `num_threads`."""
        self._check(x)
        return _ext.backend.pool.BoundGlobalAvgPool(num_threads, x, out)

    def _check(self, x):
        if x.shape != self.shape:
            raise ValueError(f"x: expected shape {self.shape} (the frozen pool's), got "
                             f"{x.shape}")


def frozen_avg_pool(shape, geometry):
    """avg_pool prepared for inputs of `shape` (N, C, H, W) (cnn.compile's freezing): a
    FrozenGlobalAvgPool where each window covers a whole plane, else None (the other pools
    have nothing to prepare)."""
    return FrozenGlobalAvgPool(shape) if _covers_plane(geometry, shape) else None


def avg_pool_backward(grad_output, input_shape, geometry, count_include_pad, num_threads):
    """Gradient of avg_pool (same geometry) with respect to its input (N, C, H, W)."""
    (kh, kw), (sh, sw), (ph, pw), _, _ = geometry
    n, c, h, w = input_shape
    grad_input = np.empty(input_shape, dtype=grad_output.dtype)
    _ext.backend.pool.avg_pool_backward(_planes(grad_output), grad_input.reshape(n * c, h, w),
                                        kh, kw, sh, sw, ph, pw, count_include_pad, num_threads)
    return grad_input
