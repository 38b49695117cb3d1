"""How many threads the compiled kernels use (the OpenMP team; numpy's BLAS pool is cnn/_blas.py's).

The kernels take their thread count from here on every call (`kernel_threads()`; they never
change OpenMP's global state, so they cannot disturb other OpenMP libraries in the process). The
setting is `OMP_NUM_THREADS` when it is set, else the cores this process may run on, or what
`set_num_threads` gave. While other processes keep some of those cores busy, the kernels use
fewer threads than that (cnn/_contention.py says why; `CNN_THREAD_BACKOFF=0` turns this off).
Without OpenMP (see `openmp_enabled()`), the kernels are serial, `get_num_threads()` is 1
whatever was set, and asking for more than one thread warns.

How idle threads wait (the OpenMP wait policy) is the OpenMP runtime's own unless the user set
it: see `wait_policy()`.
"""
from __future__ import annotations

import os
import warnings

from cnn import _ext
from cnn._contention import Contention
from cnn._validation import integer

# OpenMP cannot start tens of thousands of threads (libgomp aborts the process), and no CPU
# this library targets has more than a few hundred cores.
MAX_THREADS = 1024
# cgroup v2's limit on the tasks (threads included) of this container, where there is one.
_PIDS_MAX = "/sys/fs/cgroup/pids.max"


def openmp_enabled() -> bool:
    """True when the kernels were compiled with OpenMP (multi-threaded)."""
    return bool(_ext.openmp_enabled())


def _default_num_threads() -> int:
    requested = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    if requested.isdigit() and int(requested) > 0:
        return min(int(requested), max_threads()[0])
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def max_threads() -> tuple[int, str]:
    """The most threads the kernels may be given, and what sets that bound: a phrase.

    The smallest of ``MAX_THREADS``, OpenMP's thread limit (``OMP_THREAD_LIMIT``), the
    process's ``RLIMIT_NPROC`` and the container's ``pids.max``: OpenMP cannot create threads
    past the last three, and libgomp ends the process when thread creation fails.
    """
    bounds = [(MAX_THREADS, "cnn's MAX_THREADS")]
    if openmp_enabled():
        bounds.append((_ext.openmp_thread_limit(), "OpenMP's thread limit (OMP_THREAD_LIMIT)"))
    try:
        import resource
        soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
        if soft != resource.RLIM_INFINITY:
            bounds.append((soft, "the process limit RLIMIT_NPROC (ulimit -u)"))
    except (ImportError, AttributeError, OSError, ValueError):  # not POSIX
        pass
    try:
        with open(_PIDS_MAX) as file:
            text = file.read().strip()
        if text.isdigit():
            bounds.append((int(text), f"the container's task limit ({_PIDS_MAX})"))
    except OSError:
        pass
    bound, reason = min(bounds, key=lambda pair: pair[0])
    return max(1, bound), reason


# The kernels' thread count: always 1 in a build without OpenMP (read on every kernel call, so
# kept ready rather than recomputed).
_num_threads = _default_num_threads() if openmp_enabled() else 1
# A core counts as taken when other processes use at least this much of it: below, a thread
# there still gets most of its core; the margin also keeps the team from flapping on the
# estimate's noise (about 0.1 core).
TAKEN_CORE = 0.6
# OMP_PROC_BIND / OMP_PLACES pin the process's threads to places the user chose: the main
# thread's affinity is then one CPU, and the estimate would see one core; so no backoff.
_BINDING = ("OMP_PROC_BIND", "OMP_PLACES")
_bound = any(os.environ.get(name, "").strip().lower() not in ("", "false")
             for name in _BINDING)
_contention = (Contention() if os.environ.get("CNN_THREAD_BACKOFF", "1") != "0" and not _bound
               else None)
if _contention is not None and hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_contention.reset)


def get_num_threads() -> int:
    """The number of threads the kernels use (1 when built without OpenMP)."""
    return _num_threads


def kernel_threads() -> int:
    """The threads the next kernel call gets: ``get_num_threads()``, less one for each core of
    this process's that other processes keep busy (at least one; see cnn/_contention.py)."""
    n = _num_threads
    if n == 1 or _contention is None:
        return n
    taken = int(_contention.busy_cores() + 1.0 - TAKEN_CORE)
    if taken == 0:
        return n
    return max(1, min(n, _contention.cpu_count - taken))


def set_num_threads(n: int) -> None:
    """Set the number of threads the kernels use.

    The count takes effect at the next kernel call, in every Python thread (each call reads
    it once, when it starts).

    Args:
        n: An integer in [1, max_threads()[0]].

    Raises:
        TypeError: If `n` is not an integer.
        ValueError: If `n` < 1, or more than OpenMP can give (see :func:`max_threads`); the
            message names the bound and what sets it.

    Warns:
        RuntimeWarning: When more than one thread is asked for and this build has no OpenMP
            (the kernels then run serially: ``get_num_threads()`` stays 1).
    """
    global _num_threads
    n = integer(n, "n", minimum=1)
    bound, reason = max_threads()
    if n > bound:
        raise ValueError(f"n: expected at most {bound} threads ({reason}), got {n}")
    _num_threads = n if openmp_enabled() else 1
    if n > 1 and _num_threads == 1:
        warnings.warn(
            f"cnn.set_num_threads({n}): this build of cnn has no OpenMP (its "
            "compiler had none, or CNN_NO_OPENMP was set), so the kernels run on one thread. "
            "Rebuild with a compiler that supports OpenMP (README, 'The build') for more.",
            RuntimeWarning, stacklevel=2)


def wait_policy() -> str:
    """How the kernels' idle OpenMP threads wait, and who chose it: a phrase for show_config."""
    state = _ext.wait_policy
    settings = ", ".join(f"{name}={value}" for name, value in state["settings"].items())
    if state["source"] == "serial":
        return "none (serial kernels)"
    if state["source"] == "loaded before cnn":
        return ("as the OpenMP runtime read it when another library loaded it before cnn (to "
                "choose, set OMP_WAIT_POLICY before starting Python)")
    if state["source"] == "environment":
        return f"{settings} (from the environment)"
    return ("the OpenMP runtime's default (libgomp's: spin about 300,000 times, then sleep; "
            "OMP_WAIT_POLICY or GOMP_SPINCOUNT chooses another)")


def backoff() -> str:
    """Whether the kernels take fewer threads while other processes keep cores busy, and how
    many they would take now: a phrase for show_config."""
    if _contention is None:
        reason = ("OMP_PROC_BIND or OMP_PLACES pins the threads" if _bound
                  else "CNN_THREAD_BACKOFF=0")
        return f"off ({reason}): the kernels always use get_num_threads() threads"
    return (f"on: one thread less per core other processes keep busy (now "
            f"{_contention.busy_cores():.1f} cores busy elsewhere, {kernel_threads()} kernel "
            f"threads; CNN_THREAD_BACKOFF=0 turns it off)")
