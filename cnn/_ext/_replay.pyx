# cython: boundscheck=True
"""The loop of a replayed forward (cnn/replay.py's steps without gradients), in C.

At batch 1 each step's kernels take microseconds, and the loop's Python ran between them
with the caches full of the kernels' data: the same bytecode cost several times what it
cost in a tight loop. Here each step's arguments go straight from the list of values into
the call's tuple, with no interpreter frame. (The list's indices come from the program
that made the steps; they are still bounds-checked, as Python's own indexing would be.)
A bound program (cnn/replay.py's _BoundSteps) has no values list: its steps are called with
the thread count alone, after its input is copied in (copy_into).
"""
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release
from cpython.buffer cimport PyObject_GetBuffer
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from libc.string cimport memcpy


def run_forwards(list forwards, list values, threads):
    """Run replay steps on `values`, a list of arrays by slot: each step is (run, sources,
    kwargs, slot, released), and sets values[slot] = run(threads, *[values[i] for i in
    sources], **kwargs) (kwargs None: none), then lets go (sets to None) the slots in
    `released` (None: none), whose last reader it was."""
    cdef tuple step, sources, args
    cdef Py_ssize_t i, n
    for step in forwards:
        sources = <tuple?>step[1]
        n = len(sources)
        args = PyTuple_New(n + 1)
        Py_INCREF(threads)
        PyTuple_SET_ITEM(args, 0, threads)
        for i in range(n):
            value = values[<Py_ssize_t>sources[i]]
            Py_INCREF(value)
            PyTuple_SET_ITEM(args, i + 1, value)
        kwargs = step[2]
        if kwargs is None:
            values[<Py_ssize_t>step[3]] = step[0](*args)
        else:
            values[<Py_ssize_t>step[3]] = step[0](*args, **kwargs)
        released = step[4]
        if released is not None:
            for slot in <tuple?>released:
                values[<Py_ssize_t>slot] = None


def run_bound(list steps, threads):
    """Run a bound program's steps (cnn/replay.py's _BoundSteps): each is called with the
    thread count alone, its arrays bound."""
    for step in steps:
        step(threads)


def copy_into(destination, source):
    """destination[...] = source, for two arrays of one shape and dtype (a bound program's
    input): one memcpy where the source is C-contiguous (a tenth of a microsecond, where
    the assignment took about 0.4), else NumPy's copy."""
    cdef Py_buffer to, of
    if destination.dtype != source.dtype or destination.shape != source.shape:
        raise ValueError(f"source: expected a {destination.dtype} array of shape "
                         f"{destination.shape}, got {source.dtype} {source.shape}")
    PyObject_GetBuffer(destination, &to, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE)
    try:
        try:
            PyObject_GetBuffer(source, &of, PyBUF_C_CONTIGUOUS)
        except (BufferError, ValueError, TypeError):
            destination[...] = source
            return
        try:
            memcpy(to.buf, of.buf, to.len)
        finally:
            PyBuffer_Release(&of)
    finally:
        PyBuffer_Release(&to)
