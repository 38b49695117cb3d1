# OpenMP calls through a shim that also compiles without OpenMP: Cython guards its own prange
# pragmas with #ifdef _OPENMP, but direct omp_* calls are not guarded, so they go through here.
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CNN_OPENMP_ENABLED 1
    #else
    #define CNN_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_limit(void) { return 1; }
    #endif
    """
    bint CNN_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_limit() noexcept nogil
