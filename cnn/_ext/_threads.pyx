"""Whether the kernels were compiled with OpenMP, and OpenMP's own default thread count."""
from cnn._ext._openmp cimport CNN_OPENMP_ENABLED, omp_get_max_threads, omp_get_thread_limit


def openmp_enabled():
    """True when this build's kernels were compiled with OpenMP."""
    return bool(CNN_OPENMP_ENABLED)


def openmp_max_threads():
    """The thread count OpenMP would use by default (1 without OpenMP)."""
    return omp_get_max_threads()


def openmp_thread_limit():
    """OpenMP's limit on the threads of the whole program (its thread-limit-var, which
    OMP_THREAD_LIMIT sets; 1 without OpenMP)."""
    return omp_get_thread_limit()
