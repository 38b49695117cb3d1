# cython: boundscheck=True
"""The loop of a replayed forward (cnn/replay.py's steps without gradients), in C.

At batch 1 each step's kernels take microseconds, and the loop's Python ran between them
with the caches full of the kernels' data: the same bytecode cost several times what it
cost in a tight loop. Here each step's arguments go straight from the list of values into
the call's tuple, with no interpreter frame. (The list's indices come from the program
that made the steps; they are still bounds-checked, as Python's own indexing would be.)
A bound program (cnn/replay.py's _BoundSteps) has no values list: its steps (BoundStep) run
on arrays of their own, after its input is copied in (copy_into), all in one parallel region
(BoundSteps).
"""
from cpython.buffer cimport PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBuffer_Release
from cpython.buffer cimport PyObject_GetBuffer
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_New, PyTuple_SET_ITEM
from cython.parallel cimport parallel
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy

from cnn._ext._openmp cimport cnn_barrier, omp_get_num_threads, omp_get_thread_num


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


cdef class BoundStep:
    """A step of a bound program (FrozenForward.bind's BoundForward, for one): its work cut
    into `team` shares, each run by ``share(t)`` (a C method, declared in _replay.pxd, that the
    kernel modules' subclasses define). ``step(threads)`` runs the step alone on at most
    `threads` threads; BoundSteps runs a program's steps together."""

    def __cinit__(self, *args, **kwargs):
        if type(self) is BoundStep:
            raise TypeError("BoundStep: a kernel module's subclass defines the shares")

    cdef void share(self, Py_ssize_t t) noexcept nogil:
        pass  # never called: __cinit__ refuses instances of this class itself

    def __call__(self, int threads):
        """Run every share of the step on a team of at most `threads` threads."""
        BoundSteps([self])(threads)


cdef class BoundSteps:
    """A bound program's steps (BoundStep, in order), run by ``steps(threads)`` in one
    parallel region: each thread runs its shares of a step, then waits at a barrier for the
    others before the next. At batch 1 a step's kernels take a few microseconds, and a
    parallel region of its own cost about 1 us of them (the threads woken at its start,
    joined at its end); a barrier costs about a fifth of that. Since every step ends at a
    barrier, a step that one thread runs leaves the others waiting: the bound forms share
    even the smallest steps with the whole team, where the kernels' own calls run them on
    one thread (a batch-1 ResNet-8's strided 1x1 convolutions, LeNet-5's layers, a global
    pool, a linear layer). Two threads, Zen 5, alternating: LeNet-5 0.76x, ResNet-8 0.96x,
    the CIFAR and VGG-style nets unchanged. With a team smaller than a step's (a region given
    fewer threads than asked), each thread runs every team-th share, which gives the same
    bits: the shares are independent."""

    cdef list steps
    cdef void** items  # the steps, for the region, which runs without the GIL
    cdef Py_ssize_t count, team  # team: the largest step's

    def __cinit__(self, list steps):
        cdef Py_ssize_t i
        self.steps = [<BoundStep?>step for step in steps]
        self.count, self.team = len(self.steps), 1
        self.items = <void**>malloc(max(1, self.count) * sizeof(void*))
        if self.items == NULL:
            raise MemoryError()
        for i in range(self.count):
            self.items[i] = <void*>self.steps[i]
            self.team = max(self.team, (<BoundStep>self.items[i]).team)

    def __dealloc__(self):
        free(self.items)

    def __call__(self, int threads):
        """Run the steps on a team of at most `threads` threads (at least one)."""
        cdef int size = <int>min(max(1, threads), self.team)
        with nogil:
            if size == 1:
                _run_shares(self.items, self.count, 0, 1)
            else:
                with parallel(num_threads=size):
                    _run_shares(self.items, self.count, omp_get_thread_num(),
                                omp_get_num_threads())


cdef void _run_shares(void** steps, Py_ssize_t count, Py_ssize_t thread,
                      Py_ssize_t threads) noexcept nogil:
    """The part of thread `thread` (of `threads` running the same) in BoundSteps: shares
    thread, thread + threads, ... of each step, a barrier between steps."""
    cdef Py_ssize_t i, t
    for i in range(count):
        if i > 0 and threads > 1:
            cnn_barrier()
        t = thread
        while t < (<BoundStep>steps[i]).team:
            (<BoundStep>steps[i]).share(t)
            t += threads


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
