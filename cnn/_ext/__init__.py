"""The compiled kernels, at the best instruction-set level this CPU supports.

setup.py compiles every kernel module (`im2col`, `pool`, ...) once per level into
`cnn._ext.<level>.<module>`. At import we pick the best level that was built and that the CPU
supports; `CNN_ISA=baseline|avx2|avx512` forces one (an error if it cannot run here).
`backend` holds the chosen modules as attributes: `backend.im2col.im2col_forward(...)`.

The kernels trust their arguments: call them only through the checked wrappers in `cnn._kernels`.
"""
import importlib
import os
import types

try:
    from . import _cpu, _threads
except ImportError as error:
    raise ImportError(
        f"cnn: the compiled kernels are missing from {os.path.dirname(__file__)}. Build them with "
        "`pip install .` (or `python setup.py build_ext --inplace` for development).") from error

LEVELS = ("avx512", "avx2", "baseline")  # best first
KERNEL_MODULES = ("im2col", "pool", "direct_conv", "optim")


def _load(isa):
    """The kernel modules compiled for `isa`, or None when they were not built."""
    modules = {}
    for name in KERNEL_MODULES:
        try:
            modules[name] = importlib.import_module(f"{__name__}.{isa}.{name}")
        except ImportError:
            return None
    return types.SimpleNamespace(isa=isa, **modules)


def available_isas():
    """The levels that were built and that this CPU supports, best first."""
    return [isa for isa in LEVELS if _cpu.supports(isa) and _load(isa) is not None]


def select(isa):
    """Make the kernels compiled for `isa` the ones in use (tests use this to compare levels)."""
    global backend
    if isa not in LEVELS:
        raise ValueError(f"isa: expected one of {LEVELS}, got {isa!r}")
    if not _cpu.supports(isa):
        raise ValueError(f"isa: this CPU does not support {isa!r}")
    loaded = _load(isa)
    if loaded is None:
        raise ValueError(f"isa: the {isa!r} kernels were not built (see setup.py)")
    backend = loaded


def _initial_isa():
    forced = os.environ.get("CNN_ISA")
    if forced:
        return forced
    available = available_isas()
    if not available:
        raise ImportError("cnn: no compiled kernels found; reinstall with `pip install .`")
    return available[0]


openmp_enabled = _threads.openmp_enabled
openmp_max_threads = _threads.openmp_max_threads
backend = None
select(_initial_isa())
