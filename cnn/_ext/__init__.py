"""The compiled kernels, at the best instruction-set level this CPU supports.

setup.py compiles every kernel module (`conv`, `pool`, `norm`, `elementwise`, `linear`,
`optim`) once per level into `cnn._ext.<level>.<module>`. At import we pick the best level
that was built and that the CPU supports; `CNN_ISA=baseline|avx2|avx512` forces one (an error
if it cannot run here).
`backend` holds the chosen modules as attributes: `backend.pool.max_pool_forward(...)`.

Convolutions run through plans (`conv_plan`, cnn/_ext/conv.pyx): a plan checks its geometry
once and every call's arrays against it. The pooling and optimizer kernels check that their
arrays are consistent with each other; the geometry they are given comes from
cnn/_ext/geometry.py, checked where the public functions take their arguments.
"""
import functools
import importlib
import os
import types

import numpy as np

from . import geometry

# The OpenMP wait policy (how long a kernel thread with nothing to do spins before it sleeps) is
# left to the OpenMP runtime and the user: the runtime is shared with every OpenMP library in
# the process (PyTorch binds to the same libgomp when cnn loaded it first), so a policy set here
# would be theirs too. An earlier default, passive waiting, made PyTorch's LeNet-5 step 1.6
# times slower in the same process and cnn's own 1.15-1.3 times slower on an idle machine. What
# a busy machine needs is fewer threads, not a different wait: cnn/_contention.py. The
# variables are only read here, for show_config.
WAIT_POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME")


def _openmp_runtimes():
    """Paths of the OpenMP runtimes mapped into this process, or None where that is unknown."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "/lib" in line}
    except OSError:  # not Linux
        return None
    return {path for path in paths
            if os.path.basename(path).startswith(("libgomp", "libomp", "libiomp"))}


def _policy_state(chosen, before, after, openmp):
    """What the OpenMP runtime was given, for show_config()."""
    if not openmp:
        return {"source": "serial", "settings": {}}
    if before is not None and after is not None and not after - before:
        # Another library had loaded this very runtime, which had read its settings then.
        return {"source": "loaded before cnn", "settings": {}}
    return {"source": "environment" if chosen else "runtime default", "settings": chosen}


_chosen = {name: os.environ[name] for name in WAIT_POLICY_VARIABLES if name in os.environ}
_before = _openmp_runtimes()
try:
    from . import _cpu, _threads
except ImportError as error:
    raise ImportError(
        f"cnn: the compiled kernels are missing from {os.path.dirname(__file__)}. Build them with "
        "`pip install .` (or `python setup.py build_ext --inplace` for development).") from error
wait_policy = _policy_state(_chosen, _before, _openmp_runtimes(), _threads.openmp_enabled())
del _chosen, _before

LEVELS = ("avx512", "avx2", "baseline")  # best first
KERNEL_MODULES = ("pool", "conv", "norm", "elementwise", "linear", "optim")


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
openmp_thread_limit = _threads.openmp_thread_limit
backend: types.SimpleNamespace = None  # type: ignore[assignment]  # select() sets it
select(_initial_isa())


@functools.lru_cache(maxsize=512)
def _cached_plan(isa, input_shape, weight_shape, stride, padding, dilation, groups, dtype):
    return backend.conv.ConvPlan(input_shape, weight_shape, stride, padding, dilation, groups,
                                 dtype)


def conv_plan(input_shape, weight_shape, stride=1, padding=0, dilation=1, groups=1,
              dtype=np.float32):
    """The convolution plan (a ``ConvPlan`` of the kernels in use) for this geometry, built
    and checked on first use and then shared: a layer gets the same plan at every step.

    Args:
        input_shape: (C, H, W), or (N, C, H, W) (a plan serves every batch size).
        weight_shape: (F, C / groups, KH, KW).
        stride, padding, dilation: an int or a (height, width) pair.
        groups: the number of channel groups.
        dtype: float32 or float64.

    Raises:
        TypeError, ValueError: As ``ConvPlan``, naming the argument.
    """
    # A layer passes the same argument objects at every step: a plan found by the shapes and
    # given those very objects (compared by identity, so that 2.0 or True never passes for 2)
    # needs no other check.
    key = (input_shape[-3:], weight_shape, dtype, backend.isa)
    try:
        last = _last_plans.get(key)
    except TypeError:  # an unhashable shape: the checks below refuse it
        last = None
    if (last is not None and last[0] is stride and last[1] is padding and last[2] is dilation
            and last[3] is groups):
        return last[4]
    arguments = (stride, padding, dilation, groups)
    try:
        shapes = (tuple(input_shape)[-3:], tuple(weight_shape))
        cache_key = shapes + arguments + (np.dtype(dtype),)
    except TypeError:
        cache_key = None
    if cache_key is None or not all(map(geometry.is_plain, shapes + arguments)):
        # Only exact ints are cache keys (2.0 == 2 would let a float skip its TypeError);
        # anything else is checked (and refused, or normalised) by a plan for this call alone.
        return backend.conv.ConvPlan(input_shape, weight_shape, *arguments, dtype)
    plan = _cached_plan(backend.isa, *cache_key)
    if len(_last_plans) > 512:
        _last_plans.clear()
    _last_plans[key] = arguments + (plan,)
    return plan


# (input (C, H, W), weight shape, dtype, isa) -> (stride, padding, dilation, groups, plan) of the
# latest call: the argument objects of conv_plan's fast path.
_last_plans = {}
