"""DataLoader worker processes: order, seeding, worker info, shared memory, errors (a worker
that raises, dies or hangs), Ctrl-C, and no process left behind.

Every test runs under a 60-second alarm and, afterwards, checks that this process has no child
left (running or zombie): a hung loader fails its test instead of hanging the suite.
"""
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import child_python
import cnn
from cnn.utils.data import (DataLoader, Dataset, IterableDataset, TensorDataset,
                            get_worker_info)

TEST_TIMEOUT = 60
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(cnn.__file__).parents[1]),
                                                   os.environ.get("PYTHONPATH", "")]))


def children():
    """The pids of this process's children, zombies included (Linux's /proc), except
    multiprocessing's own helpers (the resource tracker the spawn method starts, which lives as
    long as the interpreter)."""
    found = []
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        try:
            listed = (task / "children").read_text().split()
        except FileNotFoundError:  # a thread that just ended (a queue's feeder)
            continue
        for child in listed:
            try:
                command = Path(f"/proc/{child}/cmdline").read_bytes()
            except FileNotFoundError:
                continue
            if b"resource_tracker" not in command and b"forkserver" not in command:
                found.append(int(child))
    return found


@pytest.fixture(autouse=True)
def bounded_and_reaped():
    """A time limit on the test, and no child process left after it."""
    def expire(signum, frame):
        raise TimeoutError(f"the test took more than {TEST_TIMEOUT} s (a hung loader?)")

    before = set(children())
    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(TEST_TIMEOUT)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    left = set(children()) - before
    assert not left, f"child processes left behind: {sorted(left)}"


class Traced(Dataset):
    """Sample i is (i as float32 (2,), the pid that loaded it, a draw from cnn's generator)."""

    def __init__(self, n=40):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, index):
        draw = cnn.random.default_generator().random()
        return np.full(2, index, np.float32), os.getpid(), draw


class Failing(Dataset):
    """Sample 7 raises, exits, is killed or hangs, according to `mode`."""

    def __init__(self, mode):
        self.mode = mode

    def __len__(self):
        return 20

    def __getitem__(self, index):
        if index == 7:
            if self.mode == "raise":
                raise KeyError("sample seven is missing")
            if self.mode == "exit":
                os._exit(3)
            if self.mode == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if self.mode == "hang":
                time.sleep(120)
        return np.zeros(2), index


def indices(loader):
    return [np.asarray(batch[0])[:, 0].astype(int).tolist() for batch in loader]


# ***** order and content *****

@pytest.mark.parametrize("workers", [1, 2, 3])
def test_batches_come_in_sampler_order(workers):
    plain = DataLoader(Traced(), batch_size=3, shuffle=True, seed=4)
    parallel = DataLoader(Traced(), batch_size=3, shuffle=True, seed=4, num_workers=workers)
    assert indices(parallel) == indices(plain)
    assert len(parallel) == 14


def test_work_is_shared_among_the_workers():
    pids = {int(pid) for _, pids, _ in DataLoader(Traced(), batch_size=4, num_workers=2)
            for pid in np.asarray(pids)}
    assert len(pids) == 2 and os.getpid() not in pids


def test_batch_indexing_dataset_and_shared_memory_arrays():
    data = TensorDataset(np.arange(300, dtype=np.float64).reshape(100, 3), np.arange(100))
    batches = list(DataLoader(data, batch_size=16, num_workers=2))
    x, y = batches[-1]
    assert isinstance(x, cnn.Tensor) and x.shape == (4, 3) and x.dtype == np.float64
    np.testing.assert_array_equal(np.asarray(y), np.arange(96, 100))
    # The arrays are views of the shared segment a worker wrote, and are writable.
    assert not x._data.flags.owndata and x._data.flags.writeable
    x._data[0, 0] = -1.0
    arrays = list(DataLoader(data, batch_size=50, num_workers=2, as_tensor=False))
    assert type(arrays[0][0]) is np.ndarray and arrays[1][0][0, 0] == 150.0


def test_custom_collate_and_structures_survive_the_trip():
    def collate(samples):
        return {"x": np.stack([s[0] for s in samples]), "n": len(samples), "tag": ("a", 1.5),
                "t": cnn.tensor([1.0, 2.0]), "empty": np.zeros((0, 3))}

    batch = next(iter(DataLoader(Traced(), batch_size=5, collate_fn=collate, num_workers=2)))
    assert type(batch["x"]) is np.ndarray and batch["x"].shape == (5, 2)  # as collate made it
    assert batch["n"] == 5 and batch["tag"] == ("a", 1.5) and batch["empty"].shape == (0, 3)
    assert isinstance(batch["t"], cnn.Tensor) and np.asarray(batch["t"]).tolist() == [1.0, 2.0]


def test_no_batching_and_iterable_datasets():
    singles = list(DataLoader(Traced(6), batch_size=None, num_workers=2))
    assert [int(np.asarray(s[0])[0]) for s in singles] == list(range(6))
    assert isinstance(singles[0][0], cnn.Tensor)

    class Stream(IterableDataset):
        def __iter__(self):
            info = get_worker_info()
            return iter(range(info.id, 10, info.num_workers))

    batches = [np.asarray(b).tolist() for b in DataLoader(Stream(), batch_size=3, num_workers=2)]
    # torch's order: one batch from each worker in turn, each worker's stream split by itself
    assert batches == [[0, 2, 4], [1, 3, 5], [6, 8], [7, 9]]


# ***** seeds and worker info *****

def test_each_worker_is_seeded_and_the_run_is_reproducible():
    def draws(**options):
        return [np.asarray(b[2]).tolist() for b in DataLoader(Traced(12), batch_size=3,
                                                              num_workers=2, **options)]
    cnn.manual_seed(0)
    first = draws()
    cnn.manual_seed(0)
    assert draws() == first  # the base seed comes from cnn's generator
    flat = sum(first, [])
    assert len(set(flat)) == 12  # the two workers' streams differ
    assert draws(seed=3) == draws(seed=3) != draws(seed=4)
    generator = np.random.default_rng(5)
    assert draws(generator=generator) != draws(generator=generator)  # drawn per epoch


def test_worker_info_and_init_fn(tmp_path):
    assert get_worker_info() is None

    class Info(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, index):
            info = get_worker_info()
            return np.array([info.id, info.num_workers, info.seed]), index

    def init(worker_id):
        (tmp_path / f"worker{worker_id}").write_text(str(get_worker_info().id))

    cnn.manual_seed(1)
    rows = np.concatenate([np.asarray(b[0]) for b in DataLoader(
        Info(), batch_size=1, num_workers=2, worker_init_fn=init)])
    assert rows[:, 0].tolist() == [0, 1, 0, 1] and set(rows[:, 1]) == {2}
    assert rows[1, 2] == rows[0, 2] + 1  # base_seed + worker_id
    assert sorted(p.read_text() for p in tmp_path.iterdir()) == ["0", "1"]


def test_persistent_workers_keep_their_processes():
    loader = DataLoader(Traced(8), batch_size=2, num_workers=2, persistent_workers=True)
    first = {int(p) for b in loader for p in np.asarray(b[1])}
    iterator = iter(loader)
    next(iterator)  # an epoch abandoned half-way: the next one starts cleanly
    second = [b for b in loader]
    assert {int(p) for b in second for p in np.asarray(b[1])} == first
    assert indices(second) == [[0, 1], [2, 3], [4, 5], [6, 7]]
    del loader, iterator, second
    import gc
    gc.collect()


def test_spawn_start_method():
    data = TensorDataset(np.arange(10.0), np.arange(10))
    loader = DataLoader(data, batch_size=4, num_workers=2, multiprocessing_context="spawn")
    assert [np.asarray(b[1]).tolist() for b in loader] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


# ***** errors: never a hang *****

def test_a_worker_exception_names_the_worker_and_the_original():
    loader = DataLoader(Failing("raise"), batch_size=2, num_workers=2)
    with pytest.raises(KeyError) as raised:
        list(loader)
    message = str(raised.value)
    assert "Caught KeyError in DataLoader worker process 1" in message
    assert "sample seven is missing" in message and "Original Traceback" in message
    assert "__getitem__" in message


@pytest.mark.parametrize("mode, how", [("exit", "exited with code 3"),
                                       ("kill", "killed by signal SIGKILL")])
def test_a_dying_worker_ends_the_iteration_with_an_error(mode, how):
    iterator = iter(DataLoader(Failing(mode), batch_size=2, num_workers=2))
    with pytest.raises(RuntimeError, match=f"DataLoader worker 1 .*{how}"):
        list(iterator)
    assert list(iterator) == []  # shut down: nothing more


def test_a_hanging_worker_times_out():
    started = time.monotonic()
    with pytest.raises(RuntimeError, match="timed out after 1.5 seconds.*worker 1"):
        list(DataLoader(Failing("hang"), batch_size=2, num_workers=2, timeout=1.5))
    assert time.monotonic() - started < 20


def test_dropping_the_iterator_stops_the_workers():
    iterator = iter(DataLoader(Traced(), batch_size=2, num_workers=2))
    next(iterator)
    processes = list(iterator.pool.processes)
    del iterator
    assert all(not process.is_alive() for process in processes)


@pytest.mark.parametrize("kwargs, message", [
    (dict(num_workers=-1), "num_workers option should be non-negative"),
    (dict(prefetch_factor=2), "prefetch_factor option could only be specified"),
    (dict(persistent_workers=True), "persistent_workers option needs num_workers > 0"),
    (dict(timeout=-1), "timeout option should be non-negative"),
    (dict(multiprocessing_context="spawn"), "multiprocessing_context can only be used"),
    (dict(num_workers=1, prefetch_factor=0), "prefetch_factor"),
    (dict(num_workers=1, multiprocessing_context="nonsense"), "nonsense"),
])
def test_worker_options_are_checked(kwargs, message):
    with pytest.raises(ValueError, match=message):
        DataLoader(Traced(), **kwargs)


# ***** the whole program: exit and Ctrl-C *****

SCRIPT = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    from cnn.utils.data import DataLoader, Dataset

    class Slow(Dataset):
        def __len__(self):
            return 1000

        def __getitem__(self, index):
            time.sleep(0.01)
            return np.zeros(3), index

    iterator = iter(DataLoader(Slow(), batch_size=4, num_workers=2))
    next(iterator)
    print(" ".join(str(p.pid) for p in iterator.pool.processes), flush=True)
    if sys.argv[1] == "exit":
        sys.exit(0)  # mid-epoch, the iterator still alive
    print("looping", flush=True)
    try:
        for batch in iterator:
            pass
    except KeyboardInterrupt:
        print("interrupted", flush=True)
        sys.exit(130)
""")


def gone(pid):
    """Whether process `pid` no longer exists (a zombie still does)."""
    return not Path(f"/proc/{pid}").exists()


def wait_gone(pids, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not all(gone(pid) for pid in pids):
        time.sleep(0.05)
    return all(gone(pid) for pid in pids)


def test_the_workers_end_with_the_program(tmp_path):
    result = child_python.run(SCRIPT, "exit", env=ENV, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert wait_gone([int(pid) for pid in result.stdout.split()])
    assert "Traceback" not in result.stderr


def test_ctrl_c_during_iteration_stops_the_workers(tmp_path):
    process = subprocess.Popen([sys.executable, "-c", SCRIPT, "interrupt"], env=ENV, cwd=tmp_path,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    try:
        pids = [int(pid) for pid in process.stdout.readline().split()]
        assert process.stdout.readline().strip() == "looping"
        time.sleep(0.3)
        os.killpg(process.pid, signal.SIGINT)  # as a terminal does: the whole process group
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 130 and "interrupted" in out, err
    assert "Traceback" not in err  # the workers ignore Ctrl-C and print nothing
    assert wait_gone(pids)


# ***** the kernels' threads while workers load *****

@pytest.mark.skipif(not cnn.openmp_enabled(), reason="the kernels run on one thread")
def test_the_kernel_threads_leave_room_for_the_workers(monkeypatch, threads):
    from cnn.utils.data import team
    monkeypatch.setattr(team, "_cores", lambda: 4)
    cnn.set_num_threads(3)
    seen = []

    def during(limit, **options):
        seen.clear()
        for _ in DataLoader(Traced(8), batch_size=2, num_workers=2,
                            limit_kernel_threads=limit, **options):
            seen.append(cnn.get_num_threads())
        return set(seen)

    assert during(True) == {2} and cnn.get_num_threads() == 3  # 4 cores - 2 workers
    assert during(False) == {3}
    first = iter(DataLoader(Traced(8), batch_size=2, num_workers=2))
    second = iter(DataLoader(Traced(8), batch_size=2, num_workers=1))
    assert cnn.get_num_threads() == 1  # 4 cores - 3 workers
    del first
    assert cnn.get_num_threads() == 3  # 4 cores - 1 worker, but never above the user's 3
    cnn.set_num_threads(4)  # the user's choice during an epoch stands, and after it
    del second
    assert cnn.get_num_threads() == 4


def test_persistent_workers_start_afresh_after_an_error():
    loader = DataLoader(Failing("raise"), batch_size=2, num_workers=2, persistent_workers=True)
    for _ in range(2):  # each epoch fails at sample 7, with a working set of workers each time
        with pytest.raises(KeyError, match="sample seven"):
            list(loader)
