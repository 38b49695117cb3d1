"""The loader's side of worker processes: start them, hand out tasks, put the batches back in
order, and stop them whatever happens.

Each worker has its own task queue and its own result socket. Tasks go out round-robin, at
most ``prefetch_factor`` ahead per worker; results may arrive in any order and are held until
their turn, so batches come out in the sampler's order. The loader waits on the result sockets
and the workers' process sentinels together, so a worker that dies is noticed at once, and a
``timeout`` bounds each wait. On any exit (the epoch's end, an error, Ctrl-C, the iterator
dropped, the program ending) every worker is told to stop, given a moment, then terminated, and
always joined: no process is left behind, running or zombie.
"""
import atexit
import itertools
import multiprocessing
import os
import signal
import time
import weakref
from multiprocessing import connection

from . import shared, team
from .worker import RESUME, STOP, worker_loop

# Seconds a stopping worker gets to finish its task and exit before it is terminated: at the
# end of an epoch, and after an error or Ctrl-C (when its work is of no use any more).
SHUTDOWN_GRACE = 2.0
ABORT_GRACE = 0.1

_live_pools = weakref.WeakSet()


@atexit.register
def _shutdown_live_pools():
    # Before multiprocessing's own exit handler (registered earlier, so run later), which
    # would terminate the daemonic workers without a word to them.
    for pool in list(_live_pools):
        pool.shutdown()


class WorkerPool:
    """`num_workers` started worker processes, with their task queues and result sockets.

    Args:
        spec (dict): What every worker needs (see :func:`~cnn.utils.data.worker.worker_loop`).
        context: The ``multiprocessing`` context to start them with.
        base_seed (int): Worker ``i`` seeds its generators from ``base_seed + i``.
    """

    def __init__(self, spec, context, base_seed):
        self.processes, self.tasks, self.results = [], [], []
        _live_pools.add(self)
        try:
            for worker_id in range(spec["num_workers"]):
                tasks = context.Queue()
                # Undelivered tasks are of no use once the loader stops: never wait for them.
                tasks.cancel_join_thread()
                mine, theirs = context.Pipe(duplex=True)  # a socket: it carries descriptors
                process = context.Process(
                    target=worker_loop, name=f"DataLoader worker {worker_id}", daemon=True,
                    args=(spec, worker_id, tasks, theirs, base_seed, os.getpid()))
                self.tasks.append(tasks)
                self.results.append(mine)
                process.start()
                self.processes.append(process)
                theirs.close()
        except BaseException:
            self.shutdown()
            raise

    def describe(self, worker_id):
        """``"worker 1 (pid 1234)"``, for messages."""
        return f"worker {worker_id} (pid {self.processes[worker_id].pid})"

    def death(self, worker_id):
        """The error for worker `worker_id` having exited while it owed a batch."""
        code = self.processes[worker_id].exitcode
        if code is not None and code < 0:
            try:
                how = f"was killed by signal {signal.Signals(-code).name}"
            except ValueError:
                how = f"was killed by signal {-code}"
        else:
            how = f"exited with code {code}"
        return RuntimeError(f"DataLoader {self.describe(worker_id)} exited unexpectedly: it "
                            f"{how} before returning its batch (out of memory, or a crash in "
                            "native code?)")

    def shutdown(self, grace=SHUTDOWN_GRACE):
        """Stop every worker and join it (idempotent), terminating those still running after
        `grace` seconds."""
        _live_pools.discard(self)
        for tasks in self.tasks:
            try:
                tasks.put(STOP)
            except (OSError, ValueError):  # already closed
                pass
        for results in self.results:
            results.close()
        deadline = time.monotonic() + grace
        for process in self.processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self.processes:
            if process.is_alive():
                process.terminate()
                process.join(SHUTDOWN_GRACE)
            if process.is_alive():  # it ignored SIGTERM
                process.kill()
                process.join()
        for tasks in self.tasks:
            tasks.close()
        self.processes, self.tasks, self.results = [], [], []


class MultiProcessIterator:
    """One epoch (or, with persistent workers, every epoch) of batches from worker processes.

    Args:
        spec (dict): What the workers need; ``num_workers`` among it.
        context: The ``multiprocessing`` context.
        base_seed (int): The workers' base seed.
        prefetch_factor (int): Tasks handed out ahead, per worker.
        timeout (float): Seconds to wait for a batch; 0 for no limit.
        finish: Called on each batch as it is yielded (turns arrays into Tensors).
        persistent (bool): Keep the workers between epochs (:meth:`reset` starts the next).
        index_iterator: The first epoch's task payloads (lists of indices, or single indices
            without batching), or None for an iterable dataset (each task: the next batch).
        length (int): ``len()`` of the epoch.
        limit_threads (bool): Limit this process's kernel threads while an epoch runs, so
            that they and the workers fit the cores (cnn/utils/data/team.py).
    """

    def __init__(self, spec, context, base_seed, prefetch_factor, timeout, finish,
                 persistent, index_iterator, length, limit_threads):
        self.num_workers = spec["num_workers"]
        self.limit_threads = limit_threads
        self.prefetch_factor, self.timeout, self.finish = prefetch_factor, timeout, finish
        self.persistent = persistent
        self.pool = WorkerPool(spec, context, base_seed)
        try:
            self._start_epoch(index_iterator, length)
        except BaseException:
            self.shutdown()
            raise

    def reset(self, index_iterator, length):
        """Start a new epoch on the same (persistent) workers, discarding what the previous
        one left in flight.

        Args:
            index_iterator: The new epoch's task payloads (batches of indices), or None for an
                iterable dataset.
            length: ``len()`` of the new epoch.
        """
        try:
            for tasks in self.pool.tasks:
                tasks.put(RESUME)
            waiting = set(range(self.num_workers))
            while waiting:
                for worker_id, kind, _, _ in self._receive(waiting, None):
                    if kind == "resumed":
                        waiting.discard(worker_id)
        except BaseException:
            self.shutdown()
            raise
        self._start_epoch(index_iterator, length)

    def _start_epoch(self, index_iterator, length):
        self.indices = itertools.repeat(None) if index_iterator is None else index_iterator
        self.length = length
        self.sent = self.received = 0
        self.owner = {}  # task id -> the worker that owes its result
        self.ready = {}  # task id -> (kind, payload), received ahead of its turn
        self.active = [True] * self.num_workers  # False once an iterable worker ran dry
        self.turn = itertools.cycle(range(self.num_workers))
        self.more = True  # the sampler has more tasks
        if self.limit_threads:
            team.claim(id(self), self.num_workers)
        # Work starts now, while the caller does whatever it does before its first next().
        for _ in range(self.prefetch_factor * self.num_workers):
            self._send_task()

    def __iter__(self):
        return self

    def __len__(self):
        return self.length

    def __next__(self):
        if self.pool is None:
            raise StopIteration
        try:
            return self._next()
        except StopIteration:
            team.release(id(self))
            if not self.persistent:
                self.shutdown()
            raise
        except BaseException:
            self.shutdown(ABORT_GRACE)
            raise

    def _next(self):
        deadline = None if not self.timeout else time.monotonic() + self.timeout
        while True:
            if self.received == self.sent:
                raise StopIteration
            if self.received in self.ready:
                kind, payload = self.ready.pop(self.received)
                self.received += 1
                self._send_task()
                if kind == "exhausted":
                    continue
                if kind == "error":
                    raise payload.exception()
                return self.finish(payload)
            owing = {self.owner[self.received]}
            for worker_id, kind, task, payload in self._receive(owing, deadline):
                if task is not None:
                    self.ready[task] = (kind, payload)
                    del self.owner[task]
                if kind == "exhausted":
                    self.active[worker_id] = False

    def _send_task(self):
        """Hand the next task to the next active worker, if there is one and a task."""
        if not self.more or not any(self.active):
            return
        worker_id = next(self.turn)
        while not self.active[worker_id]:
            worker_id = next(self.turn)
        try:
            indices = next(self.indices)
        except StopIteration:
            self.more = False
            return
        self.pool.tasks[worker_id].put((self.sent, indices))
        self.owner[self.sent] = worker_id
        self.sent += 1

    def _receive(self, expected, deadline):
        """Wait for messages, with the workers in `expected` bound to deliver; return them as
        ``(worker_id, kind, task, payload)``, reading every result socket that is ready.

        Raises:
            RuntimeError: If a worker in `expected` died, or nothing came by `deadline`.
        """
        pool = self.pool
        sockets = {pool.results[w]: w for w in range(self.num_workers)}
        sentinels = {pool.processes[w].sentinel: w for w in expected}
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        ready = connection.wait(list(sockets) + list(sentinels), timeout)
        if not ready:
            late = ", ".join(pool.describe(w) for w in sorted(expected))
            raise RuntimeError(f"DataLoader timed out after {self.timeout} seconds waiting for "
                               f"a batch from {late}")
        messages = []
        for ready_one in ready:
            worker_id = sockets.get(ready_one)
            if worker_id is None:
                continue
            try:
                kind, task, payload = shared.receive(ready_one)
            except (EOFError, OSError):
                pool.processes[worker_id].join(SHUTDOWN_GRACE)
                raise pool.death(worker_id) from None
            messages.append((worker_id, kind, task, payload))
        for ready_one in ready:
            worker_id = sentinels.get(ready_one)
            if worker_id is not None and not pool.results[worker_id].poll():
                pool.processes[worker_id].join()
                raise pool.death(worker_id)
        return messages

    def shutdown(self, grace=SHUTDOWN_GRACE):
        """Stop the workers (idempotent); the iterator then yields nothing more."""
        team.release(id(self))
        if self.pool is not None:
            pool, self.pool = self.pool, None
            pool.shutdown(grace)

    def __del__(self):
        try:
            self.shutdown()
        except Exception:  # at interpreter exit, modules may already be torn down
            pass


def start_method_context(context):
    """A ``multiprocessing`` context from None (Python's default start method), a start
    method's name, or a context."""
    if context is None:
        return multiprocessing.get_context()
    if isinstance(context, str):
        return multiprocessing.get_context(context)
    return context
