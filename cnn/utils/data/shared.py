"""Moving a batch from a worker process to the loader's process through shared memory.

The worker writes every array of the batch into one anonymous shared file (``memfd_create``
on Linux, an unlinked temporary file elsewhere) and passes its file descriptor over the result
socket; only the batch's skeleton (the containers, the arrays' shapes and dtypes, and anything
that is not an array) is pickled. The loader's process maps the file and wraps the arrays
around it without copying; the memory goes back to the system when the last of them is freed.
Nothing is ever named in a filesystem, so a process killed at any moment leaks nothing.
"""
import mmap
import os
import tempfile
from multiprocessing import reduction

import numpy as np

from ...tensor import Tensor, from_numpy
from .collate import map_structure

# Each array starts on a cache line (and on any dtype's alignment).
_ALIGN = 64


class _Slot:
    """Where one array of the batch lies in the shared file."""

    __slots__ = ("offset", "shape", "dtype", "tensor")

    def __init__(self, offset, shape, dtype, tensor):
        self.offset, self.shape, self.dtype, self.tensor = offset, shape, dtype, tensor

    def __reduce__(self):
        return _Slot, (self.offset, self.shape, self.dtype, self.tensor)


def send(conn, kind, task, payload=None):
    """Send a message without a batch: ``(kind, task, payload)``, pickled."""
    conn.send((kind, task, payload, 0))


def send_batch(conn, task, batch):
    """Send `batch` (arrays, Tensors, containers of them, anything picklable) for `task`.

    Raises:
        Exception: Whatever pickling the skeleton raises; nothing has been sent then.
    """
    arrays = []
    skeleton = _extract(batch, arrays)
    size = arrays[-1][0].offset + arrays[-1][1].nbytes if arrays else 0
    if not size:
        conn.send(("batch", task, skeleton, 0))
        return
    fd = _anonymous_file(size)
    try:
        with mmap.mmap(fd, size) as shared:
            for slot, array in arrays:
                np.ndarray(slot.shape, slot.dtype, buffer=shared, offset=slot.offset)[...] = array
        # The skeleton first: if it cannot be pickled, nothing was sent.
        conn.send(("batch", task, skeleton, size))
        reduction.send_handle(conn, fd, None)
    finally:
        os.close(fd)


def receive(conn):
    """Receive one message: ``(kind, task, payload)``, a batch's arrays mapped in place.

    Raises:
        EOFError, OSError: If the sender died before the whole message arrived.
    """
    kind, task, payload, size = conn.recv()
    if size:
        fd = reduction.recv_handle(conn)
        try:
            shared = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        payload = _fill(payload, shared)
    return kind, task, payload


def _extract(data, arrays):
    """`data` with every non-empty numeric array (or Tensor) replaced by a :class:`_Slot`,
    appended with its array to `arrays`."""
    def slot(leaf):
        if not isinstance(leaf, (np.ndarray, Tensor)):
            return leaf
        array = np.asarray(leaf)
        if array.dtype.kind not in "biufc" or not array.size:
            return leaf
        start = 0
        if arrays:
            previous, previous_array = arrays[-1]
            start = -(-(previous.offset + previous_array.nbytes) // _ALIGN) * _ALIGN
        arrays.append((_Slot(start, array.shape, array.dtype, isinstance(leaf, Tensor)), array))
        return arrays[-1][0]
    return map_structure(data, slot)


def _fill(skeleton, shared):
    """The batch: `skeleton` with each :class:`_Slot` replaced by an array over `shared`."""
    def array(leaf):
        if not isinstance(leaf, _Slot):
            return leaf
        view = np.ndarray(leaf.shape, leaf.dtype, buffer=shared, offset=leaf.offset)
        return from_numpy(view) if leaf.tensor else view
    return map_structure(skeleton, array)


def _anonymous_file(size):
    """A file descriptor of `size` bytes of memory that no path names."""
    fd = None
    if hasattr(os, "memfd_create"):
        try:
            fd = os.memfd_create("cnn-batch", os.MFD_CLOEXEC)
        except OSError:  # e.g. forbidden by a seccomp policy
            fd = None
    if fd is None:
        with tempfile.TemporaryFile() as file:  # unlinked at once where memfd is missing
            fd = os.dup(file.fileno())
    try:
        os.ftruncate(fd, size)
    except BaseException:
        os.close(fd)
        raise
    return fd
