"""Keep glibc's malloc from handing memory back to the kernel after every training step.

A training step allocates a few megabytes of activations and gradients and frees them all when
the graph is released. With glibc's default tunables, arrays above 128 KiB are mmap()ed and
munmap()ed one by one, and a heap whose free top grows past the trim threshold is shrunk back:
either way the next step gets fresh pages, and the kernel zeroes each one on its first touch.
Measured on LeNet-5 at batch 64 (2 cores): about 1,000 page faults per step, 5.4 ms per step
against 2.9 ms with the settings below, which keep freed memory in the heap for the next step.
numpy has no allocator of its own for arrays this size, so the setting has to be malloc's.

Arrays above glibc's largest mmap threshold (32 MiB: a batch-1000 activation of ResNet-8
holds 65 MB) would still be mapped and unmapped on every call, so `tune()` also turns off
malloc's use of mmap (M_MMAP_MAX = 0: large blocks come from the heap, which glibc still maps
when the heap cannot grow). Fresh pages cost more than zeroing on a virtual machine whose host
reclaims free memory: this one (its balloon driver reports free pages back to the host) made a
ResNet-8 inference at batch 1000 take 255-440 ms instead of 172-190 ms when its calls came a
second or more apart, at about 4,800 page faults per call, most of them on 2 MiB pages.

The trim threshold (how much free memory at the heap's top glibc keeps) is 1 GiB, above such a
call's working set (about 480 MiB for ResNet-8): at 128 MiB, a call whose freed arrays lay at
the top gave them back midway and faulted them in again (3,000-5,700 faults per call).

`tune()` sets the mmap threshold to 32 MiB (glibc's maximum on 64-bit), the trim threshold to
1 GiB and the largest number of mmapped blocks to 0. It changes the process's malloc, so it
stays out of the way of anyone who tuned malloc already: with any of glibc's MALLOC_* variables
or a glibc.malloc tunable in the environment, it does nothing (so
`MALLOC_TRIM_THRESHOLD_=131072` restores glibc's behaviour).
On other C libraries (musl, macOS, Windows) it does nothing either.
"""
import ctypes
import os
import platform

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_MMAP_MAX = -4
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 1 << 30
_USER_SETTINGS = ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TOP_PAD_",
                  "MALLOC_MMAP_MAX_", "MALLOC_ARENA_MAX")

_state = "not applied"


def _user_tuned_malloc():
    return (any(name in os.environ for name in _USER_SETTINGS)
            or "glibc.malloc." in os.environ.get("GLIBC_TUNABLES", ""))


def tune():
    """Apply the thresholds once (see the module docstring); return what was done."""
    global _state
    if _state != "not applied":
        return _state
    if platform.libc_ver()[0] != "glibc":
        _state = "left as is (not glibc)"
    elif _user_tuned_malloc():
        _state = "left as is (MALLOC_* or GLIBC_TUNABLES set)"
    else:
        try:
            mallopt = ctypes.CDLL(None).mallopt
            mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
            applied = (mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
                       and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
                       and mallopt(_M_MMAP_MAX, 0))
        except (OSError, AttributeError):
            applied = False
        _state = ("glibc malloc keeps freed memory (mmap threshold 32 MiB, trim threshold "
                  "1 GiB, no mmap for large blocks)" if applied
                  else "left as is (mallopt refused)")
    return _state


def state():
    """What tune() did, for show_config."""
    return _state
