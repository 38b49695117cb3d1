# cython: boundscheck=True
"""The loop of a replayed forward (cnn/replay.py's steps without gradients), in C.

At batch 1 each step's kernels take microseconds, and the loop's Python ran between them
with the caches full of the kernels' data: the same bytecode cost several times what it
cost in a tight loop. Here each step's arguments go straight from the list of values into
the call's tuple, with no interpreter frame. (The list's indices come from the program
that made the steps; they are still bounds-checked, as Python's own indexing would be.)
"""
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM


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
