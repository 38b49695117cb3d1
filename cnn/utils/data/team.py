"""How many kernel threads the iterating process keeps while worker processes load.

The kernels' OpenMP team uses every core by default, and an OpenMP team slows down badly when
one of its threads loses its core to another process (the others wait for it at every
barrier). So while loaders with workers are being iterated, the team is limited to
``max(1, cores - workers)`` threads (the workers of all such loaders counted together), and
given back its thread count when the last of those iterations ends. A thread count the user sets
while an iteration runs is left alone.
"""
import os

from ...threads import get_num_threads, set_num_threads

_claims = {}  # a token per running iteration -> its workers
_saved = None  # the team's thread count before the first claim
_set = None  # the count set here last


def _cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def claim(token, workers):
    """Count `workers` busy for the iteration `token`, limiting the team accordingly."""
    global _saved, _set
    if not _claims:
        _set = None
        _saved = get_num_threads()
    _claims[token] = workers
    _apply()


def release(token):
    """End the claim of `token` (idempotent); the last one gives the team its count back."""
    if _claims.pop(token, None) is None:
        return
    _apply()


def _apply():
    global _saved, _set
    if _set is not None and get_num_threads() != _set:
        # The user chose a thread count meanwhile: theirs stands, and is what is restored.
        _saved = get_num_threads()
    wanted = _saved if not _claims else max(1, min(_saved, _cores() - sum(_claims.values())))
    set_num_threads(wanted)
    _set = None if not _claims else wanted
