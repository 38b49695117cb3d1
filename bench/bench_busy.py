"""A LeNet-5 training step with one core busy elsewhere, under each thread policy.

When another process keeps a core busy, the kernels' OpenMP threads share that core with it.
A thread that spins while it waits (at the barrier closing a parallel loop, or for the next loop)
then takes CPU from the very thread it waits for, and a step can take ten times longer. cnn's
default keeps libgomp's own wait policy and gives the kernels one thread less per core other
processes keep busy (cnn/_contention.py); the other policies are OpenMP wait policies without
that backoff. This measures how each copes: for each one a fresh process (libgomp reads the
policy once, when it loads) times training steps while a busy-looping child process is paused
(idle) and while it runs (busy), in turns (idle, busy, busy, idle, ...), so that drifts in the
machine's speed hit both alike. Each change of state is followed by SETTLE seconds without
steps, so that the figures are the steady state a longer-running process sees (cnn notices a
change within about half a second). The policies run in rounds, each round in another order.

    python bench/bench_busy.py                  # about 2 minutes
    python bench/bench_busy.py --rounds 5 --json
    python bench/bench_busy.py --policies "cnn default,libgomp default,1 thread"

The table gives, per policy, the median step time idle and busy (medians of blocks of steps),
busy / idle, and idle against libgomp's own default (what cnn did before it chose a policy).
It also gives how many cores other processes used meanwhile (besides the busy child): on a
shared machine the "idle" figures are not idle, and the report says so.
"""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

# name -> the environment a policy's process starts with. "libgomp default" is libgomp's
# documented behaviour with OMP_WAIT_POLICY unset (spin 300,000 times before sleeping, about
# 3 ms) without cnn's thread backoff; the wait policies below are without it too.
POLICIES = {
    "cnn default": {},
    "libgomp default": {"CNN_THREAD_BACKOFF": "0"},
    "passive": {"OMP_WAIT_POLICY": "passive", "CNN_THREAD_BACKOFF": "0"},
    "active": {"OMP_WAIT_POLICY": "active", "CNN_THREAD_BACKOFF": "0"},
    "spin 1000": {"GOMP_SPINCOUNT": "1000", "CNN_THREAD_BACKOFF": "0"},
    "spin 3000": {"GOMP_SPINCOUNT": "3000", "CNN_THREAD_BACKOFF": "0"},
    "spin 10000": {"GOMP_SPINCOUNT": "10000", "CNN_THREAD_BACKOFF": "0"},
    "spin 30000": {"GOMP_SPINCOUNT": "30000", "CNN_THREAD_BACKOFF": "0"},
    "1 thread": {"OMP_NUM_THREADS": "1"},
}
DEFAULT_POLICIES = ("cnn default", "libgomp default", "passive", "1 thread")
POLICY_VARIABLES = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT", "KMP_BLOCKTIME", "OMP_NUM_THREADS",
                    "CNN_THREAD_BACKOFF")
# Seconds between a change of state (the busy child stopped or started) and the next block.
SETTLE = 0.6
BUSY_LOOP = "while True:\n    pass\n"


# ***** the child: one policy *****

def _cpu_seconds(pid=None):
    """CPU seconds (user + system) of process `pid`, or of this process when None."""
    if pid is None:
        t = os.times()
        return t.user + t.system
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _busy_seconds():
    """CPU seconds all cores spent busy since boot (/proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(v) for v in f.readline().split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")


def _time_block(step, steps, hog_pid):
    """Median seconds of `steps` steps, and the cores other processes (not this one, not the
    busy child) used meanwhile."""
    start = (time.perf_counter(), _busy_seconds(), _cpu_seconds(), _cpu_seconds(hog_pid))
    times = []
    for _ in range(steps):
        began = time.perf_counter()
        step()
        times.append(time.perf_counter() - began)
    end = (time.perf_counter(), _busy_seconds(), _cpu_seconds(), _cpu_seconds(hog_pid))
    wall, busy, own, hog = (b - a for a, b in zip(start, end))
    return statistics.median(times), max(0.0, (busy - own - hog) / wall)


def child(batch_size, blocks, steps):
    """Time steps idle and busy in turns; print one JSON line."""
    if any((REPO / "cnn" / "_ext").glob("_cpu*.so")) and str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))  # this checkout's cnn when its kernels are built in place
    import numpy as np

    import cnn
    from cnn.cli.lenet import lenet5

    cnn.manual_seed(0)
    model = lenet5()
    optimizer = cnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = cnn.from_numpy(rng.random((batch_size, 1, 28, 28), dtype=np.float32))
    y = cnn.from_numpy(rng.integers(0, 10, batch_size))

    def step():
        optimizer.zero_grad()
        cnn.nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()

    for _ in range(20):
        step()
    hog = subprocess.Popen([sys.executable, "-c", BUSY_LOOP])
    try:
        hog.send_signal(signal.SIGSTOP)
        time.sleep(SETTLE)
        result = {"idle": [], "busy": [], "others_idle": [], "others_busy": []}
        was_busy = False
        for block in range(blocks):
            busy = block % 4 in (1, 2)  # idle, busy, busy, idle, ...
            if busy != was_busy:
                hog.send_signal(signal.SIGCONT if busy else signal.SIGSTOP)
                time.sleep(SETTLE)
                was_busy = busy
            median, others = _time_block(step, steps, hog.pid)
            state = "busy" if busy else "idle"
            result[state].append(median)
            result["others_" + state].append(others)
    finally:
        hog.kill()
        hog.wait()
    result["threads"] = cnn.get_num_threads()
    result["config"] = {k: v for k, v in cnn.show_config(mode="dicts").items()
                        if k in ("cnn", "isa", "openmp", "wait_policy", "thread_backoff")}
    print(json.dumps(result))


# ***** the parent: every policy, in rounds *****

def run_policy(name, args):
    env = {k: v for k, v in os.environ.items() if k not in POLICY_VARIABLES}
    env.update(POLICIES[name])
    command = [sys.executable, __file__, "--child", "--batch-size", str(args.batch_size),
               "--blocks", str(args.blocks), "--steps", str(args.steps)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the {name!r} process failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def summarize(results, names):
    rows = {}
    for name in names:
        runs = results[name]
        idle = statistics.median(v for run in runs for v in run["idle"])
        busy = statistics.median(v for run in runs for v in run["busy"])
        rows[name] = {
            "idle_ms": idle * 1e3, "busy_ms": busy * 1e3, "busy_over_idle": busy / idle,
            "others_idle_cores": statistics.mean(v for run in runs for v in run["others_idle"]),
            "others_busy_cores": statistics.mean(v for run in runs for v in run["others_busy"]),
            "threads": runs[0]["threads"], "config": runs[0]["config"],
        }
    reference = rows.get("libgomp default")
    for row in rows.values():
        row["idle_vs_libgomp_default"] = (row["idle_ms"] / reference["idle_ms"]
                                          if reference else None)
    return rows


def report(rows, args):
    headers = ["policy", "threads", "idle ms", "busy ms", "busy/idle", "idle vs libgomp",
               "others' cores (idle/busy)"]
    table = [headers]
    for name, row in rows.items():
        versus = row["idle_vs_libgomp_default"]
        table.append([name, str(row["threads"]), f"{row['idle_ms']:.2f}", f"{row['busy_ms']:.2f}",
                      f"{row['busy_over_idle']:.2f}", "-" if versus is None else f"{versus:.2f}",
                      f"{row['others_idle_cores']:.2f} / {row['others_busy_cores']:.2f}"])
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    lines = [f"LeNet-5 training step, batch {args.batch_size}, SGD momentum; one busy-looping "
             f"process while busy; {args.rounds} rounds x {args.blocks} blocks x {args.steps} "
             "steps; medians of block medians"]
    for i, r in enumerate(table):
        lines.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w)
                               for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    others = max(row["others_idle_cores"] for row in rows.values())
    if others > 0.2:
        lines.append(f"Measured while busy: other processes used up to {others:.2f} cores on "
                     "average during the idle blocks.")
    return "\n".join(lines)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--policies", default=",".join(DEFAULT_POLICIES),
                        help=f"comma-separated, from: {', '.join(POLICIES)}")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=3, help="processes per policy")
    parser.add_argument("--blocks", type=int, default=8, help="idle and busy blocks per process")
    parser.add_argument("--steps", type=int, default=30, help="steps per block")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.policies.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown:
        parser.error(f"--policies: unknown {', '.join(unknown)}; choose from "
                     f"{', '.join(POLICIES)}")
    args.names = names
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        child(args.batch_size, args.blocks, args.steps)
        return 0
    results = {name: [] for name in args.names}
    for round_index in range(args.rounds):
        shift = round_index % len(args.names)
        for name in args.names[shift:] + args.names[:shift]:
            print(f"round {round_index + 1}/{args.rounds}: {name}", file=sys.stderr, flush=True)
            results[name].append(run_policy(name, args))
    rows = summarize(results, args.names)
    if args.json:
        print(json.dumps({"batch_size": args.batch_size, "rounds": args.rounds,
                          "blocks": args.blocks, "steps": args.steps, "policies": rows},
                         indent=2))
    else:
        print(report(rows, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
