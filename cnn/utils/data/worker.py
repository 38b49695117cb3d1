"""The worker processes of a :class:`~cnn.utils.data.DataLoader` (``num_workers > 0``).

A worker seeds its generators, runs ``worker_init_fn``, then loops: take a task (a batch's
indices) from its task queue, fetch and collate the batch, and send it back through shared
memory (cnn/utils/data/shared.py). An exception becomes a message naming the worker and
carrying the original traceback; the loader raises it in the task's turn.

A worker ignores Ctrl-C (the terminal sends SIGINT to the whole process group: the loader's
process handles it and shuts the workers down), runs the kernels and numpy's BLAS on one thread
each (its parallelism is the processes themselves), and exits when told to, when its parent
process is gone, or when the result socket breaks.
"""
import os
import pickle
import queue
import random
import signal
import traceback

import numpy as np

from ... import _blas, random as _random
from ...threads import set_num_threads
from . import shared
from .fetch import IterableFetcher, MapFetcher

__all__ = ["WorkerInfo", "get_worker_info"]

# How often (seconds) an idle worker checks that the loader's process is still alive.
PARENT_CHECK_INTERVAL = 1.0
# Task-queue messages besides a task ``(task_id, indices)``.
STOP = None
RESUME = "resume"

_worker_info = None


class WorkerInfo:
    """What a worker process knows of itself, as ``torch.utils.data.get_worker_info()``.

    Attributes:
        id (int): This worker's number, in ``[0, num_workers)``.
        num_workers (int): The loader's number of workers.
        seed (int): The seed this worker's generators were given (``base_seed + id``).
        dataset: This worker's copy of the dataset.
    """

    __slots__ = ("id", "num_workers", "seed", "dataset")

    def __init__(self, id, num_workers, seed, dataset):
        self.id, self.num_workers, self.seed, self.dataset = id, num_workers, seed, dataset

    def __setattr__(self, name, value):
        if hasattr(self, name):
            raise RuntimeError(f"Cannot assign attributes to WorkerInfo objects ({name})")
        object.__setattr__(self, name, value)

    def __repr__(self):
        return (f"WorkerInfo(id={self.id}, num_workers={self.num_workers}, seed={self.seed}, "
                f"dataset={type(self.dataset).__name__})")


def get_worker_info():
    """This worker's :class:`WorkerInfo` in a DataLoader worker process, None elsewhere.

    Use it in a dataset's ``__iter__`` (to split an iterable dataset among the workers) or in
    ``worker_init_fn``.
    """
    return _worker_info


class WorkerError:
    """An exception raised in a worker, carried to the loader's process as text."""

    def __init__(self, worker_id, pid, error, where):
        lines = traceback.format_exception(type(error), error, error.__traceback__)
        self.text = (f"Caught {type(error).__name__} in DataLoader worker process {worker_id} "
                     f"(pid {pid}) {where}.\nOriginal Traceback (most recent call last):\n"
                     + "".join(lines[1:]))
        self.type = type(error)
        try:
            pickle.dumps(self.type)
        except Exception:  # a class the loader's process could not find by name
            self.type = RuntimeError

    def exception(self):
        """The exception to raise: the original type with the worker's message when that
        type takes a message alone, else a RuntimeError (PyTorch's rule)."""
        text = self.text
        if self.type is KeyError:  # whose str() is the repr of its message
            text = _Message(text)
        try:
            return self.type(text)
        except Exception:
            return RuntimeError(text)


class _Message(str):
    """A message that prints as itself inside a KeyError (as PyTorch's KeyErrorMessage)."""

    def __repr__(self):
        return self


def seed_worker(base_seed, worker_id):
    """Seed this process's generators as worker `worker_id` of a loader drawn `base_seed`:
    ``cnn``'s and Python's with ``base_seed + worker_id`` (as PyTorch seeds its own), NumPy's
    legacy global one with a 32-bit state derived from both. Returns the seed."""
    seed = base_seed + worker_id
    _random.manual_seed(seed)
    random.seed(seed)
    np.random.seed(np.random.SeedSequence([base_seed, worker_id]).generate_state(1)[0])
    return seed


def worker_loop(spec, worker_id, tasks, results, base_seed, parent_pid):
    """Run worker `worker_id` until told to stop (the target of each worker process).

    Args:
        spec (dict): The loader's dataset, kind (``"map"`` or ``"iterable"``),
            ``auto_collation``, ``collate_fn``, ``batch_size``, ``drop_last``,
            ``num_workers`` and ``worker_init_fn``.
        worker_id (int): This worker's number.
        tasks: Its task queue (``multiprocessing.Queue``).
        results: Its end of the result socket (``multiprocessing.connection.Connection``).
        base_seed (int): The loader's base seed for this set of workers.
        parent_pid (int): The loader's process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    set_num_threads(1)
    _blas.use_one_thread()
    _serve(spec, worker_id, tasks, results, base_seed, parent_pid)


def _serve(spec, worker_id, tasks, results, base_seed, parent_pid):
    global _worker_info
    seed = seed_worker(base_seed, worker_id)
    dataset = spec["dataset"]
    _worker_info = WorkerInfo(worker_id, spec["num_workers"], seed, dataset)
    failure, fetcher = None, None
    try:
        if spec["worker_init_fn"] is not None:
            spec["worker_init_fn"](worker_id)
        fetcher = _fetcher(spec)
    except Exception as error:  # reported with the first task, in its turn
        failure = WorkerError(worker_id, os.getpid(), error, "while starting (worker_init_fn "
                              "or iter(dataset))")
    while True:
        try:
            task = tasks.get(timeout=PARENT_CHECK_INTERVAL)
        except queue.Empty:
            if os.getppid() != parent_pid:
                break
            continue
        if task is STOP:
            break
        try:
            if task == RESUME:
                # A new epoch of persistent workers: an iterable dataset starts over.
                if failure is None and spec["kind"] == "iterable":
                    fetcher = _fetcher(spec)
                shared.send(results, "resumed", None)
            else:
                _answer(results, fetcher, failure, task, worker_id)
        except OSError:  # the loader's process is gone, or closed the socket
            break


def _fetcher(spec):
    if spec["kind"] == "iterable":
        return IterableFetcher(spec["dataset"], spec["auto_collation"], spec["collate_fn"],
                               spec["batch_size"], spec["drop_last"])
    return MapFetcher(spec["dataset"], spec["auto_collation"], spec["collate_fn"])


def _answer(results, fetcher, failure, task, worker_id):
    """Fetch the batch of `task` and send it, or send what went wrong."""
    task_id, indices = task
    if failure is not None:
        shared.send(results, "error", task_id, failure)
        return
    try:
        batch = fetcher.fetch(indices)
    except StopIteration:
        shared.send(results, "exhausted", task_id)
        return
    except Exception as error:
        shared.send(results, "error", task_id,
                    WorkerError(worker_id, os.getpid(), error, "while fetching a batch"))
        return
    try:
        shared.send_batch(results, task_id, batch)
    except OSError:
        raise
    except Exception as error:  # the batch cannot be pickled
        shared.send(results, "error", task_id,
                    WorkerError(worker_id, os.getpid(), error, "while sending a batch"))
