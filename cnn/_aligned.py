"""Parameter arrays whose data start on a 64-byte boundary (a cache line, an AVX-512 register).

NumPy aligns an array's data to 16 bytes. A weight that starts inside a cache line makes most
of a kernel's 64-byte loads of it span two lines: a batch-1 linear layer (400 -> 120, its
192 KB read once a call) took 2.8 against 2.3 us in numpy's BLAS product, and 2.5 against 1.7
us in cnn's own (cnn/_ext/linear_rows.h). Layers therefore allocate their parameters here, and
``Module.to`` converts into such arrays. The convolution kernels keep their weight layouts and
scratch here too (cnn/_ext/conv.pyx): from NumPy's arrays, which start on a 64-byte boundary
one time in four, batch-1 layers ran 5-15% slower, by how their process's allocations fell.
The values and results do not depend on where an array lies (the kernels' order of arithmetic
never follows the address), so an array placed anywhere else (``param.data = ...``) is as
correct, just slower.
"""
import ctypes
import math

import numpy as np

ALIGNMENT = 64


def empty(shape, dtype):
    """An uninitialised C-contiguous array of `shape` and `dtype` whose data start on an
    ALIGNMENT-byte boundary (a view into a slightly larger block of bytes)."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    nbytes = math.prod(shape) * dtype.itemsize
    block = np.empty(nbytes + ALIGNMENT, dtype=np.uint8)
    # (ctypes.addressof of a char over the block: 0.25 us, where block.ctypes.data took 0.8,
    # and the kernels allocate their layouts here at every training step.)
    start = -ctypes.addressof(ctypes.c_char.from_buffer(block)) % ALIGNMENT
    return block[start:start + nbytes].view(dtype).reshape(shape)


def converted(array, dtype):
    """`array`'s values as `dtype`, in a new aligned array (``array.astype(dtype)``)."""
    out = empty(array.shape, dtype)
    np.copyto(out, array, casting="unsafe")
    return out
