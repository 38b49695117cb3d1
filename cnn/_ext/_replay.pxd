# The step of a bound program (cnn/replay.py's _BoundSteps) as the kernel modules define it:
# its work cut into shares that threads run at once, so that _replay.BoundSteps can run a
# whole program's steps in one parallel region.

cdef class BoundStep:
    # The number of shares, 0 .. team - 1: at most the team size of the binding.
    cdef readonly Py_ssize_t team

    # Run share t (0 <= t < team) on the arrays the step was bound to. Shares write disjoint
    # parts of the result, each in scratch of its own (row t), so they may run at once on
    # different threads, and any split of them among threads gives the same bits.
    cdef void share(self, Py_ssize_t t) noexcept nogil
