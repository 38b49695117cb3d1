"""numpy's BLAS: one thread for the process once cnn computes, and its cblas_?gemm.

cnn parallelises with one OpenMP team in its kernels. numpy's OpenBLAS has a thread pool of its
own, and two pools on the same cores slow each other down badly: idle threads of one pool spin
while the other pool's threads wait for a core (measured here: a LeNet-5 step took 42 ms with
both pools at 2 threads, 15 ms with BLAS at 1). So the first cnn op that calls numpy's matrix
products sets OpenBLAS to one thread for the rest of the process (`use_one_thread()`), once:
saving and restoring the count around every product raced between Python threads (one thread's
restore undid another's setting mid-product, so results depended on timing) and cost two calls
per product. The README's Threads section says so. For a BLAS this module does not know (MKL,
Accelerate, a system libblas without these symbols) it does nothing, and `info()` says so.

OpenBLAS's thread count is found through the symbols OpenBLAS exports, in the library numpy
loaded (its wheels ship `scipy_openblas` with prefixed, 64-bit-integer names).
"""
import ctypes
import glob
import os

import numpy as np

_SETTERS = ("scipy_openblas_set_num_threads64_", "scipy_openblas_set_num_threads",
            "openblas_set_num_threads64_", "openblas_set_num_threads")
_GETTERS = ("scipy_openblas_get_num_threads64_", "scipy_openblas_get_num_threads",
            "openblas_get_num_threads64_", "openblas_get_num_threads")


def _candidate_libraries():
    """BLAS libraries numpy may have loaded: its wheel's bundled copies, then any mapped one."""
    numpy_dir = os.path.dirname(np.__file__)
    for folder in (os.path.join(numpy_dir, os.pardir, "numpy.libs"),
                   os.path.join(numpy_dir, ".dylibs")):
        yield from sorted(glob.glob(os.path.join(folder, "*openblas*")))
    try:
        with open("/proc/self/maps") as maps:
            mapped = {line.split()[-1] for line in maps if "blas" in line.lower()}
        yield from sorted(path for path in mapped if os.path.isabs(path))
    except OSError:  # not Linux
        pass


def _find_controls():
    """(library path, set function, get function) for the first library with both symbols."""
    for path in _candidate_libraries():
        try:
            library = ctypes.CDLL(path)
        except OSError:
            continue
        setter = next((getattr(library, name) for name in _SETTERS if hasattr(library, name)),
                      None)
        getter = next((getattr(library, name) for name in _GETTERS if hasattr(library, name)),
                      None)
        if setter is not None and getter is not None:
            setter.argtypes, setter.restype = [ctypes.c_int], None
            getter.argtypes, getter.restype = [], ctypes.c_int
            return path, setter, getter
    return None, None, None


_library, _set_threads, _get_threads = _find_controls()

# cblas_?gemm with 64-bit integers, for cnn/_ext/_gemm.pyx (which shares a product's column
# blocks out to the kernels' threads, one single-threaded BLAS call per block).
_GEMM_NAMES = {np.dtype(np.float32): ("scipy_cblas_sgemm64_", "cblas_sgemm64_"),
               np.dtype(np.float64): ("scipy_cblas_dgemm64_", "cblas_dgemm64_")}


def _gemm_addresses():
    if _library is None:
        return {}
    library = ctypes.CDLL(_library)
    found = {}
    for dtype, names in _GEMM_NAMES.items():
        name = next((name for name in names if hasattr(library, name)), None)
        if name is not None:
            found[dtype] = ctypes.cast(getattr(library, name), ctypes.c_void_p).value
    return found


_gemm = _gemm_addresses()


def gemm_address(dtype):
    """The address of numpy's BLAS cblas_?gemm (64-bit integers) for `dtype`, or None when this
    BLAS has none that cnn knows (then matrix products go through numpy)."""
    return _gemm.get(np.dtype(dtype))


def info():
    """Which BLAS thread control cnn found: a short description for show_config."""
    if _library is None:
        return "not found (BLAS threads are left as they are)"
    state = "set to 1 by cnn's first matrix product" if _one_thread else "not yet set by cnn"
    return f"OpenBLAS ({os.path.basename(_library)}), {_get_threads()} threads ({state})"


_one_thread = False


def use_one_thread():
    """Set numpy's BLAS to one thread for the rest of the process (the first call only; every
    later one is a test of a global). cnn's ops call this before their matrix products."""
    global _one_thread
    if not _one_thread:
        if _set_threads is not None:
            _set_threads(1)
        _one_thread = True
