"""Keep numpy's BLAS single-threaded while cnn computes.

cnn parallelises with one OpenMP team in its kernels. numpy's OpenBLAS has a thread pool of its
own, and two pools on the same cores slow each other down badly: idle threads of one pool spin
while the other pool's threads wait for a core (measured here: a LeNet-5 step took 42 ms with
both pools at 2 threads, 15 ms with BLAS at 1). So the ops that call numpy's matrix products run
them inside `single_threaded()`, which sets OpenBLAS to one thread and restores the previous
count afterwards. For a BLAS this module does not know (MKL, Accelerate, a system libblas
without these symbols) it does nothing, and `info()` says so.

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
    return f"OpenBLAS ({os.path.basename(_library)}), {_get_threads()} threads outside cnn's ops"


class single_threaded:
    """``with single_threaded():`` runs the block with numpy's BLAS on one thread (a no-op for
    an unknown BLAS). A class rather than a generator: it is entered for every matrix product
    of every layer, and this is the cheaper protocol."""

    __slots__ = ("_previous",)

    def __enter__(self):
        self._previous = None
        if _set_threads is not None:
            previous = _get_threads()
            if previous != 1:
                _set_threads(1)
                self._previous = previous

    def __exit__(self, *exc_info):
        if self._previous is not None:
            _set_threads(self._previous)
