"""How many threads the compiled kernels use (the OpenMP team; numpy's BLAS pool is cnn/_blas.py's).

The kernels take their thread count from here on every call (they never change OpenMP's global
state, so they cannot disturb other OpenMP libraries in the process). The default is
`OMP_NUM_THREADS` when it is set, else the cores this process may run on. Without OpenMP (see
`openmp_enabled()`), the kernels are serial and `get_num_threads()` is 1 whatever was set.
"""
import os

from cnn import _ext
from cnn._validation import integer


def openmp_enabled():
    """True when the kernels were compiled with OpenMP (multi-threaded)."""
    return _ext.openmp_enabled()


# OpenMP cannot start tens of thousands of threads (libgomp aborts the process), and no CPU
# this library targets has more than a few hundred cores.
MAX_THREADS = 1024


def _default_num_threads():
    requested = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if requested.isdigit() and int(requested) > 0:
        return min(int(requested), MAX_THREADS)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_num_threads = _default_num_threads()


def get_num_threads():
    """The number of threads the kernels use (1 when built without OpenMP)."""
    return _num_threads if openmp_enabled() else 1


def set_num_threads(n):
    """Set the number of threads the kernels use; `n` is an integer in [1, MAX_THREADS]."""
    global _num_threads
    _num_threads = integer(n, "n", minimum=1, maximum=MAX_THREADS)
