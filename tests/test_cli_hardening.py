"""Every failure of the command line is a message and an exit status, never a traceback (issue
16): absurd thread counts, empty data, hostile checkpoints, unwritable outputs, signals."""
import gzip
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile

import numpy as np
import pytest

import child_python
import cnn
import cnn._memory
from cnn.cli import main
from cnn.cli.lenet import TRAIN_CHECKPOINT
from cnn.datasets import read_idx
from cnn.serialization import MAX_DEPTH, remove_stale_temporaries
from test_cli import ENV, TINY, needs_mnist, run_cli, same_values, stop_a_long_run


def run_main(argv, capsys):
    """``cnn.cli.main(argv)`` in-process: (status, stderr); argparse's exits give theirs."""
    try:
        status = main(list(map(str, argv)), prog="cnn")
    except SystemExit as exit:
        status = exit.code
    return status, capsys.readouterr().err


def test_absurd_thread_counts_are_refused_with_the_bound(capsys):
    before = signal.getsignal(signal.SIGTERM)
    status, err = run_main(["train", "--threads", "10000"], capsys)
    assert status == 2 and "--threads: expected at most" in err, err
    assert signal.getsignal(signal.SIGTERM) is before  # main gives the caller's handler back
    bound, reason = cnn.threads.max_threads()
    with pytest.raises(ValueError, match=rf"n: expected at most {bound} threads \(.+\), got"):
        cnn.set_num_threads(bound + 1)
    assert reason and 1 <= bound <= cnn.threads.MAX_THREADS


def test_omp_num_threads_sets_the_default_within_the_bound():
    code = "import cnn; print(cnn.get_num_threads())"
    for value, expected in (("1", "1"), ("100000", str(cnn.threads.max_threads()[0]))):
        result = child_python.run(code, env=dict(ENV, OMP_NUM_THREADS=value))
        assert result.stdout.strip() == (expected if cnn.openmp_enabled() else "1"), result.stderr


def test_the_thread_bound_follows_the_container_limit(tmp_path, monkeypatch):
    limit = tmp_path / "pids.max"
    limit.write_text("3\n")
    monkeypatch.setattr(cnn.threads, "_PIDS_MAX", str(limit))
    assert cnn.threads.max_threads() == (3, f"the container's task limit ({limit})")
    with pytest.raises(ValueError, match="at most 3 threads"):
        cnn.set_num_threads(4)


def write_empty_mnist(folder):
    folder.mkdir()
    for prefix in ("train", "t10k"):
        (folder / f"{prefix}-images-idx3-ubyte").write_bytes(struct.pack(">IIII", 2051, 0, 28,
                                                                           28))
        (folder / f"{prefix}-labels-idx1-ubyte").write_bytes(struct.pack(">II", 2049, 0))


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_a_data_folder_without_images_is_explained(command, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_empty_mnist(tmp_path / "empty")
    if command == "evaluate":
        cnn.save(cnn.cli.lenet.lenet5().state_dict(), tmp_path / "model.npz")
    extra = ["--model", "model.npz"] if command == "evaluate" else ["--epochs", "1"]
    status, err = run_main([command, "--data", tmp_path / "empty", *extra], capsys)
    assert status == 1 and "holds no images" in err, err


def nested_npz(path, depth):
    root = '{"list": [' * depth + "0" + "]}" * depth  # json.dumps would recurse
    text = f'{{"format": "cnn.save", "version": 1, "root": {root}}}'
    member = io.BytesIO()
    np.save(member, np.frombuffer(text.encode(), np.uint8))
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("__cnn_structure__.npy", member.getvalue())


def nested_pt(path, depth):
    """A torch.save zip whose pickle is `depth` nested lists (MARK ... LIST, no recursion)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", b"\x80\x02" + b"(" * depth + b"K\x00"
                         + b"l" * depth + b".")
        archive.writestr("archive/version", b"3\n")


@pytest.mark.parametrize("make", [nested_npz, nested_pt])
def test_deeply_nested_checkpoints_are_refused(make, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for depth in (MAX_DEPTH + 1, 5000):
        make(tmp_path / "deep", depth)
        with pytest.raises(ValueError, match=f"nested more than {MAX_DEPTH} levels"):
            cnn.load(tmp_path / "deep")
    make(tmp_path / "fine", MAX_DEPTH - 1)
    assert cnn.load(tmp_path / "fine") is not None
    status, err = run_main(["evaluate", "--model", "deep"], capsys)
    assert status == 1 and "nested more than" in err, err
    with pytest.raises(ValueError, match="nested more than"):
        cnn.save(json.loads("[" * 200 + "]" * 200), tmp_path / "x.npz")


def test_a_zip_bomb_is_refused_before_it_inflates(tmp_path, monkeypatch):
    path = tmp_path / "bomb.npz"
    np.savez_compressed(path, a=np.zeros(1 << 20, np.float32))  # 4 MiB in a few KiB
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(cnn._memory, "physical_memory", lambda: 1 << 20)  # a 1 MiB machine
    with pytest.raises(ValueError, match="more than this machine's memory"):
        cnn.load(path)
    gz = tmp_path / "images.gz"
    gz.write_bytes(gzip.compress(struct.pack(">IIII", 2051, 4096, 28, 28) + bytes(4096 * 784)))
    with pytest.raises(ValueError, match="more than this machine's memory"):
        read_idx(gz)


def resumable_checkpoint(path, **changes):
    model = cnn.cli.lenet.lenet5()
    args = {"epochs": 2, "batch_size": 64, "optimizer": "adam", "lr": 1e-3, "seed": 0,
            "limit_train": 64, "limit_test": 64, "dataset": "mnist", "model": "lenet5",
            "workers": 0}
    checkpoint = {"format": TRAIN_CHECKPOINT, "version": 1, "model": model.state_dict(),
                  "optimizer": {}, "scheduler": {}, "epoch": 1, "loader": {"epoch": 1},
                  "rng_state": cnn.get_rng_state(), "args": args, "history": []}
    for key, value in changes.items():
        if key.startswith("args_"):
            args[key[5:]] = value
        else:
            checkpoint[key] = value
    cnn.save(checkpoint, path)


@pytest.mark.parametrize("change, words", [
    ({"args_batch_size": "64"}, "args/batch_size is '64', expected an integer >= 1"),
    ({"args_optimizer": ["adam"]}, "args/optimizer is ['adam']"),
    ({"args_lr": -1.0}, "args/lr is -1.0, expected a positive number"),
    ({"args_dataset": 3}, "args/dataset is 3"),
    ({"epoch": "one"}, "epoch is 'one'"),
    ({"history": 5}, "history is of type int, expected a list"),
    ({"loader": [1]}, "loader is not a mapping"),
    ({"model": [1, 2]}, "cannot resume from"),
    ({"optimizer": "adam"}, "cannot resume from"),
])
def test_checkpoint_entries_of_the_wrong_type_are_named(change, words, tmp_path, capsys,
                                                        monkeypatch):
    monkeypatch.chdir(tmp_path)
    resumable_checkpoint(tmp_path / "run.npz", **change)
    status, err = run_main(["train", "--resume", "run.npz", "--epochs", "3"], capsys)
    assert status == 1 and words in err and "Traceback" not in err, err


@pytest.mark.parametrize("out", ["missing/x.npz", "folder", "readonly/x.npz", "/proc/x.npz"])
def test_unwritable_outputs_are_found_before_any_work(out, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder").mkdir()
    (tmp_path / "readonly").mkdir(mode=0o555)
    if out.startswith("readonly") and os.access(tmp_path / "readonly", os.W_OK):
        pytest.skip("running as root: a mode-0555 folder stays writable")
    if out.startswith("/proc") and not os.path.isdir("/proc"):
        pytest.skip("no /proc (not Linux)")  # /proc refuses new files even to root
    for command in (["train", "--data", tmp_path / "no-data"], ["export"],
                    ["classify", "--data", tmp_path / "no-data"]):
        status, err = run_main([*command, "--out", out], capsys)
        # The output is checked before the data or model is even looked for.
        assert status == 1 and f"--out {out}" in err, err


def test_save_onto_a_symlink_writes_through_to_its_target(tmp_path):
    target = tmp_path / "runs" / "model.npz"
    target.parent.mkdir()
    cnn.save({"a": 1}, target)
    link = tmp_path / "latest.npz"
    link.symlink_to(target)
    cnn.save({"a": 2}, link)
    assert link.is_symlink() and cnn.load(target) == {"a": 2} == cnn.load(link)
    assert sorted(os.listdir(tmp_path / "runs")) == ["model.npz"]


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    path = tmp_path / "model.npz"
    dead = child_python.run("import os; print(os.getpid())").stdout.strip()
    stale = tmp_path / f".model.npz.{dead}.abcd1234.tmp"
    live = tmp_path / f".model.npz.{os.getpid()}.abcd1234.tmp"  # a writer still running
    other = tmp_path / f".other.npz.{dead}.abcd1234.tmp"
    for file in (stale, live, other):
        file.write_bytes(b"partial")
    assert remove_stale_temporaries(path) == [str(stale)]
    cnn.save({"a": 1}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [live.name, other.name, "model.npz"])


def test_fused_sequential_takes_unbatched_images():
    cnn.manual_seed(0)
    model = cnn.nn.Sequential(cnn.nn.Conv2d(1, 3, 3), cnn.nn.ReLU(), cnn.nn.MaxPool2d(2))
    image = cnn.randn(1, 8, 8, requires_grad=True)
    out = model(image)
    assert out.shape == (3, 3, 3)
    np.testing.assert_array_equal(out._data, model(image.unsqueeze(0))[0]._data)
    out.sum().backward()
    assert image.grad.shape == (1, 8, 8)


def start(args, cwd):
    return subprocess.Popen([sys.executable, "-m", "cnn", *map(str, args)], cwd=cwd, env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


HELD_INTERRUPT = """
import os, signal, sys
sys.argv, sys.orig_argv = ["-m"], [sys.executable, "-m", "cnn"]  # as python -m cnn imports
import cnn
os.kill(os.getpid(), signal.SIGINT)
print("held")
try:
    cnn._startup.release_interrupts()
    print("not delivered")
except KeyboardInterrupt:
    print("delivered")
"""


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="POSIX signal masks")
def test_ctrl_c_while_python_m_cnn_imports_the_package_waits_for_the_command_line():
    # NumPy's import turns an interrupt into an ImportError that reads like a broken install,
    # so `python -m cnn` holds SIGINT while the package imports; cnn/__main__.py releases it
    # where the command line catches it.
    out = child_python.run(HELD_INTERRUPT, env=ENV, check=True).stdout.split()
    assert out == ["held", "delivered"]


@needs_mnist
@pytest.mark.parametrize("delay", [0.05, 0.2, 0.4, 0.8])
def test_ctrl_c_during_start_up_is_a_clean_stop(delay, tmp_path):
    process = start(["train", "--epochs", "1", *TINY], tmp_path)
    time.sleep(delay)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert "Traceback" not in err, err
    # 130 from the command line, killed by SIGINT before it could catch it, or already done.
    assert process.returncode in (130, -signal.SIGINT, 0), err


@needs_mnist
def test_sigterm_stops_train_like_ctrl_c_with_status_143(tmp_path):
    process, out, err, checkpoint = stop_a_long_run(tmp_path, signal.SIGTERM)
    assert process.returncode == 143, err
    assert "Terminated (SIGTERM) in epoch" in err and "Traceback" not in err, err
    assert cnn.load(checkpoint)["epoch"] >= 1
    assert not list(tmp_path.glob(".*.tmp"))


@needs_mnist
def test_bad_input_never_shows_a_traceback(tmp_path):
    (tmp_path / "garbage.npz").write_bytes(b"PK\x03\x04" + bytes(100))
    for args in (["evaluate", "--model", "garbage.npz"], ["train", "--resume", "garbage.npz"],
                 ["train", "--threads", "0"], ["evaluate", "--threads", "99999"]):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode in (1, 2) and "Traceback" not in result.stderr, (args, result)


def test_sigkill_at_random_moments_loses_nothing(tmp_path):
    """Kill ``train`` (SIGKILL) at random moments, resuming each time: the checkpoint always
    loads, and the run ends with the bits of an uninterrupted one (issue 16, "nothing lost")."""
    from test_distributed import write_idx_mnist
    # About 1.5 s uninterrupted: 16 epochs (and 16 checkpoint writes) of 30 steps.
    write_idx_mnist(tmp_path / "data", 960, 40, seed=0)
    recipe = ["train", "--data", "data", "--epochs", "16", "--batch-size", "32",
              "--optimizer", "sgd"]
    start_ups = []
    for _ in range(2):  # the interpreter and `import cnn`, the second time with warm caches
        began = time.perf_counter()
        assert run_cli("train", "--help", cwd=tmp_path).returncode == 0
        start_ups.append(time.perf_counter() - began)
    start_up = min(start_ups)
    began = time.perf_counter()
    reference = run_cli(*recipe, "--out", "ref.npz", cwd=tmp_path)
    training = max(time.perf_counter() - began - start_up, 0.1)
    assert reference.returncode == 0, reference.stderr
    checkpoint = tmp_path / "run.npz"
    rng = np.random.default_rng(16)
    epochs_seen = [0]
    kills = 0
    # Each attempt trains for 5-20% of an uninterrupted run after its start-up, however fast
    # this machine is: at least five attempts, so at least four kills, before the run can end
    # (10-30% left CI's run at two kills once: a cold first start-up, measured long, gave the
    # attempts more time than planned).
    # An attempt that saved no new epoch (a machine busier than when the times were taken:
    # CI once killed all 40 before the first checkpoint) lets the next ones run half as long
    # again, so that the run always gets through.
    patience = 1.0
    for attempt in range(40):
        args = ["train", "--data", "data", "--resume", "run.npz"] if checkpoint.exists() \
            else [*recipe, "--out", "run.npz"]
        process = start(args, tmp_path)
        try:
            process.communicate(timeout=(start_up + rng.uniform(0.05, 0.2) * training)
                                * patience)
        except subprocess.TimeoutExpired:
            process.kill()  # SIGKILL: no handler runs, a write may be cut anywhere
            process.communicate()
            kills += 1
        epochs_before = epochs_seen[-1]
        if checkpoint.exists():
            saved = cnn.load(checkpoint)  # always complete
            assert saved["epoch"] >= epochs_seen[-1]
            epochs_seen.append(saved["epoch"])
        if not checkpoint.exists() or epochs_seen[-1] == epochs_before:
            patience *= 1.5
        if process.returncode == 0 and epochs_seen[-1] == 16:
            break
    finished = run_cli("train", "--data", "data", "--resume", "run.npz", cwd=tmp_path)
    assert finished.returncode == 0, finished.stderr
    assert kills >= 3, f"only {kills} kills: the runs ended too soon to test much"
    ours, theirs = cnn.load(checkpoint), cnn.load(tmp_path / "ref.npz")
    assert ours["epoch"] == theirs["epoch"] == 16
    for part in ("model", "optimizer", "scheduler", "rng_state"):
        assert same_values(ours[part], theirs[part]), part
    assert not list(tmp_path.glob(".*.tmp"))  # the killed writes' temporaries are gone
