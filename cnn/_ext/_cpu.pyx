"""Which instruction-set levels this CPU (and its operating system) supports.

Built at the baseline level only, so it imports on any x86-64 CPU. GCC's and clang's
__builtin_cpu_supports also checks that the OS saves the AVX/AVX-512 registers (XGETBV).
"""

cdef extern from *:
    """
    #if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    static int cnn_cpu_avx2(void) {
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")
            && __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2");
    }
    static int cnn_cpu_avx512(void) {
        __builtin_cpu_init();
        return cnn_cpu_avx2() && __builtin_cpu_supports("avx512f")
            && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl")
            && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512cd");
    }
    #else
    static int cnn_cpu_avx2(void) { return 0; }
    static int cnn_cpu_avx512(void) { return 0; }
    #endif
    """
    int cnn_cpu_avx2()
    int cnn_cpu_avx512()


def supports(str isa):
    """True when the CPU can run kernels compiled for `isa` ('baseline', 'avx2' or 'avx512')."""
    if isa == "baseline":
        return True
    if isa == "avx2":
        return bool(cnn_cpu_avx2())
    if isa == "avx512":
        return bool(cnn_cpu_avx512())
    raise ValueError(f"isa: expected 'baseline', 'avx2' or 'avx512', got {isa!r}")
