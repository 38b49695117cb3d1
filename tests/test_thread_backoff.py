"""The kernels take one thread less per core other processes keep busy (cnn/_contention.py)."""
import os
import subprocess
import sys
import time

import pytest

import child_python
import cnn
from cnn import _contention


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


@pytest.fixture
def machine(monkeypatch):
    """A machine whose CPU counters the test sets: busy ticks of our CPUs, our CPU seconds."""
    state = {"busy": 0, "own": 0.0}
    monkeypatch.setattr(_contention, "_busy_ticks", lambda cpus: state["busy"])
    monkeypatch.setattr(_contention, "_own_seconds", lambda: state["own"])
    monkeypatch.setattr(_contention, "_TICKS", 100)
    return state


def test_others_are_the_busy_time_of_our_cores_less_our_own(machine):
    clock = FakeClock()
    contention = _contention.Contention(window=0.25, clock=clock)
    assert contention.busy_cores() == 0.0  # no window has passed yet
    # One second: our cores were busy 1.7 core-seconds, 0.5 of them ours.
    clock.now += 1.0
    machine["busy"] += 170
    machine["own"] += 0.5
    assert contention.busy_cores() == pytest.approx(1.2)
    assert contention.cpu_count == len(os.sched_getaffinity(0))  # the cores it watched
    # Within the window the estimate stands, whatever happens meanwhile.
    clock.now += 0.1
    machine["busy"] += 1000
    assert contention.busy_cores() == pytest.approx(1.2)
    # The next window sees the 1000 ticks (and the 0.1 s before it): 10 cores over 0.3 s.
    clock.now += 0.2
    assert contention.busy_cores() == pytest.approx(1000 / 100 / 0.3)
    # Our own time above the cores' busy time (ticks are coarse) is not a negative load.
    clock.now += 0.5
    machine["own"] += 1.0
    assert contention.busy_cores() == 0.0


def test_an_unknown_proc_stat_layout_gives_no_estimate(tmp_path, monkeypatch):
    stat = tmp_path / "stat"
    stat.write_bytes(b"cpu  1 2 3\ncpu0 x y z\n")
    monkeypatch.setattr(_contention, "_STAT", str(stat))
    assert _contention._busy_ticks({0}) is None


def test_a_forked_child_starts_a_window_of_its_own(machine):
    # The child's own CPU time starts from zero: measured against the parent's, its first
    # window would count the parent's CPU time as other processes'.
    clock = FakeClock()
    contention = _contention.Contention(window=0.25, clock=clock)
    machine["own"] = 50.0
    contention.busy_cores()
    contention.reset()
    machine["own"] = 0.0
    clock.now += 1.0
    assert contention.busy_cores() == 0.0
    clock.now += 1.0
    machine["busy"] += 30
    machine["own"] += 0.1
    assert contention.busy_cores() == pytest.approx(0.2)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork")
def test_the_library_resets_the_estimate_in_a_forked_child():
    code = ("import os, time, cnn\n"
            "end = time.process_time() + 0.5\n"
            "while time.process_time() < end: pass\n"  # the parent's own CPU time
            "cnn.threads.kernel_threads()\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0 if cnn.threads._contention._start is None else 3)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "raise SystemExit(os.waitstatus_to_exitcode(status))\n")
    done = child_python.run(code)
    assert done.returncode == 0, done.stderr


def test_pinned_threads_turn_the_backoff_off():
    code = "import cnn; print(cnn.show_config(mode='dicts')['thread_backoff'])"
    env = dict(os.environ, OMP_PROC_BIND="true")
    done = child_python.run(code, env=env, check=True)
    assert done.stdout.startswith("off (OMP_PROC_BIND or OMP_PLACES pins the threads)")


def test_without_proc_stat_nothing_is_busy(monkeypatch):
    monkeypatch.setattr(_contention, "_STAT", "/nonexistent/stat")
    clock = FakeClock()
    contention = _contention.Contention(clock=clock)
    for _ in range(3):
        clock.now += 1.0
        assert contention.busy_cores() == 0.0


class Busy:
    def __init__(self, cores, cpu_count):
        self.cores = cores
        self.cpu_count = cpu_count

    def busy_cores(self):
        return self.cores


@pytest.mark.parametrize("busy, expected", [(0.0, 2), (0.5, 2), (0.7, 1), (1.5, 1), (3.0, 1)])
def test_a_core_counts_as_taken_from_0_6_of_it(threads, monkeypatch, busy, expected):
    if not cnn.openmp_enabled():
        pytest.skip("a serial build has one thread whatever the machine does")
    monkeypatch.setattr(cnn.threads, "_contention", Busy(busy, 2))
    cnn.set_num_threads(2)
    assert cnn.threads.kernel_threads() == expected
    assert cnn.get_num_threads() == 2  # the setting itself is the user's
    cnn.set_num_threads(1)
    assert cnn.threads.kernel_threads() == 1


def test_four_threads_on_eight_cores_keep_their_count_beside_one_busy_core(threads, monkeypatch):
    if not cnn.openmp_enabled():
        pytest.skip("a serial build has one thread whatever the machine does")
    monkeypatch.setattr(cnn.threads, "_contention", Busy(1.0, 8))
    cnn.set_num_threads(4)
    assert cnn.threads.kernel_threads() == 4
    monkeypatch.setattr(cnn.threads, "_contention", Busy(5.0, 8))
    assert cnn.threads.kernel_threads() == 3


@pytest.mark.skipif(not os.path.exists("/proc/stat") or not hasattr(os, "sched_getaffinity"),
                    reason="the estimate reads Linux's /proc/stat")
def test_a_busy_process_on_our_cores_is_seen():
    contention = _contention.Contention(window=0.5)
    contention.busy_cores()
    time.sleep(0.6)
    before = contention.busy_cores()
    # The hog needs a core of its own: with others' load (which varies) on the rest, the
    # estimate could not tell its core from their changes.
    if before > len(os.sched_getaffinity(0)) - 1.5:
        pytest.skip(f"other processes already keep {before:.1f} cores busy: no room to tell")
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # the hog starts; this window may hold part of its start
        contention.busy_cores()
        time.sleep(0.6)
        during = contention.busy_cores()
    finally:
        hog.kill()
        hog.wait()
    assert during >= before + 0.6, (before, during)


def test_show_config_says_whether_the_backoff_is_on(capsys):
    cnn.show_config()
    out = capsys.readouterr().out
    assert "busy machine:    on: one thread less per core other processes keep busy" in out
    code = "import cnn; print(cnn.show_config(mode='dicts')['thread_backoff'])"
    env = dict(os.environ, CNN_THREAD_BACKOFF="0")
    done = child_python.run(code, env=env, check=True)
    assert done.stdout.startswith("off (CNN_THREAD_BACKOFF=0)")
