"""How many of this process's cores other processes are keeping busy (Linux: ``/proc/stat``).

Why the kernels want to know: an OpenMP thread that waits (for the next parallel loop, or at the
barrier that ends one) spins for a while before it sleeps. On a machine of its own that is the
fastest way to wait, but when another process keeps a core busy, a team with a thread on that
core waits at every barrier for a thread that only gets a share of its core, and the spinning
takes CPU from the very thread it waits for: a LeNet-5 step took 8 to 16 times longer. So
``cnn.threads`` gives the kernels fewer threads while other processes use the cores
(``kernel_threads()``), instead of changing how the OpenMP runtime waits: that runtime is shared
with every other OpenMP library in the process (PyTorch loads the same libgomp), and the
policy is the same for all of them.

The estimate is taken over windows of at least ``WINDOW`` seconds: the busy time of the cores
in this process's affinity mask (stolen time included: another virtual machine is another
process too) minus this process's own CPU time, per second of wall time. Within a window the
last estimate stands, so asking costs a clock read.
"""
import os
import time

# Long enough that the kernel's tick counters (1/100 s per core) give the estimate to about
# 0.1 core, short enough that a process that starts or stops is seen within half a second.
WINDOW = 0.25
_STAT = "/proc/stat"
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _busy_ticks(cpus):
    """Busy clock ticks (all but idle and iowait) of the CPUs `cpus`, summed, or None where
    /proc/stat is not there to read."""
    try:
        with open(_STAT, "rb") as stat:
            lines = stat.read().split(b"\n")
    except OSError:  # not Linux, or /proc not mounted
        return None
    busy = 0
    try:
        for line in lines[1:]:
            if not line.startswith(b"cpu"):
                break
            fields = line.split()
            if int(fields[0][3:]) in cpus:
                ticks = [int(value) for value in fields[1:9]]
                busy += sum(ticks) - ticks[3] - ticks[4]  # idle and iowait
    except (ValueError, IndexError):  # a layout this parser does not know: no estimate
        return None
    return busy


def _own_seconds():
    times = os.times()
    return times.user + times.system


class Contention:
    """Other processes' CPU use on the cores this process may run on, as a number of cores,
    updated at most once per `window` seconds (0.0 until a first window has passed, and
    always 0.0 where it cannot be measured). `cpu_count` is how many cores the estimate
    watched (those of the affinity mask at the last sample; 0 before one)."""

    def __init__(self, window=WINDOW, clock=time.monotonic):
        self.window = window
        self.clock = clock
        self.cores = 0.0
        self.cpu_count = 0
        self._start = None  # (wall, busy ticks, own seconds, cpus) at the window's start

    def reset(self):
        """Forget the window (a forked child: its own CPU time starts again from zero)."""
        self.cores = 0.0
        self._start = None

    def _sample(self):
        try:
            cpus = os.sched_getaffinity(0)
        except AttributeError:  # not Linux
            return None
        busy = _busy_ticks(cpus)
        return None if busy is None else (self.clock(), busy, _own_seconds(), cpus)

    def busy_cores(self):
        """The latest estimate of the cores other processes keep busy."""
        now = self.clock()
        start = self._start
        if start is not None and now - start[0] < self.window:
            return self.cores
        sample = self._sample()
        if sample is None:
            return self.cores
        if start is not None and sample[3] == start[3]:
            others = ((sample[1] - start[1]) / _TICKS - (sample[2] - start[2]))
            self.cores = max(0.0, others / (sample[0] - start[0]))
        self._start = sample
        self.cpu_count = len(sample[3])
        return self.cores
