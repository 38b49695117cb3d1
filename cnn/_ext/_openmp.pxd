# OpenMP calls through a shim that also compiles without OpenMP: Cython guards its own prange
# pragmas with #ifdef _OPENMP, but direct omp_* calls are not guarded, so they go through here.
# Also the kernels' one rule for leaving OpenMP out of a loop (serial).
cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    #define CNN_OPENMP_ENABLED 1
    /* Waits for the team of the innermost enclosing parallel region (an orphaned barrier). */
    static inline void cnn_barrier(void) {
        #pragma omp barrier
    }
    #else
    #define CNN_OPENMP_ENABLED 0
    static int omp_get_max_threads(void) { return 1; }
    static int omp_get_thread_limit(void) { return 1; }
    static int omp_get_num_threads(void) { return 1; }
    static int omp_get_thread_num(void) { return 0; }
    static inline void cnn_barrier(void) {}
    #endif
    """
    bint CNN_OPENMP_ENABLED
    int omp_get_max_threads() noexcept nogil
    int omp_get_thread_limit() noexcept nogil
    int omp_get_num_threads() noexcept nogil
    int omp_get_thread_num() noexcept nogil
    void cnn_barrier() noexcept nogil


cdef inline bint serial(int num_threads, Py_ssize_t items) noexcept nogil:
    """Whether a loop over `items` runs on the calling thread alone, outside any parallel
    region: entering one, even with one thread, cost about 0.8 us (two futex calls among
    them), a good part of a batch-1 layer's time."""
    return num_threads <= 1 or items <= 1
