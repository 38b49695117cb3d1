"""The command line as a user runs it: ``python -m cnn ...`` in a subprocess, on real MNIST.

Training runs use a slice of the data (``--limit-train``/``--limit-test``) so that an epoch takes
a fraction of a second. Argument errors and ``--help`` run in-process, through ``cnn.cli.main``.
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import child_python
import cnn
from cnn.cli import main
from cnn.cli.lenet import lenet5

MNIST_DIR = Path(os.environ.get("CNN_DATA")
                 or Path(__file__).parents[1] / ".." / "shared" / "data" / "mnist")
needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f"no MNIST in {MNIST_DIR}")

# The subprocesses import the very cnn these tests import, wherever it is installed.
ENV = dict(os.environ, CNN_DATA=str(MNIST_DIR),
           PYTHONPATH=os.pathsep.join([str(Path(cnn.__file__).parents[1]),
                                       os.environ.get("PYTHONPATH", "")]))
TINY = ("--limit-train", "640", "--limit-test", "500")  # 10 steps of 64, a quick test


def run_cli(*args, cwd, timeout=120):
    """Run ``python -m cnn ARGS`` in `cwd`; return the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, "-m", "cnn", *map(str, args)], cwd=cwd, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def assert_clean_failure(result, code=1):
    __tracebackhide__ = True
    assert result.returncode == code, result.stderr
    assert "Traceback" not in result.stderr, result.stderr


def same_values(a, b):
    """Whether two loaded checkpoints hold the same structure and bit-identical arrays."""
    if isinstance(a, dict):
        return (isinstance(b, dict) and a.keys() == b.keys()
                and all(same_values(a[key], b[key]) for key in a))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same_values(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    return a == b


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 2-epoch run on a slice: its folder, checkpoint path and output."""
    folder = tmp_path_factory.mktemp("trained")
    result = run_cli("train", "--epochs", 2, *TINY, cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder, folder / "lenet_mnist.npz", result


# ***** arguments and help (in-process) *****

@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["classify"], ["profile"],
                                     ["summary"]])
def test_help(command, capsys):
    with pytest.raises(SystemExit) as exit:
        main(command + ["--help"], prog="python -m cnn")
    assert exit.value.code == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: python -m cnn {' '.join(command)}".rstrip())
    if command == ["train"]:
        for option in ("--data", "--epochs", "--batch-size", "--optimizer", "--lr", "--threads",
                       "--seed", "--out", "--resume", "lenet_mnist.npz"):
            assert option in text


@pytest.mark.parametrize("argv, complaint", [
    ([], "required: COMMAND"),
    (["fit"], "invalid choice: 'fit'"),
    (["train", "--epochs", "0"], "--epochs: expected a positive integer, got 0"),
    (["train", "--lr", "nan"], "--lr: expected a positive number, got nan"),
    (["train", "--optimizer", "rmsprop"], "invalid choice: 'rmsprop'"),
    (["train", "--seed", "-1"], "--seed: expected a non-negative integer, got -1"),
    (["classify", "--errors", "3"], "unrecognized arguments: 3"),
    (["profile", "--iters", "x"], "--iters: expected a positive integer, got 'x'"),
])
def test_bad_arguments(argv, complaint, capsys):
    with pytest.raises(SystemExit) as exit:
        main(argv)
    assert exit.value.code == 2
    assert complaint in capsys.readouterr().err


def test_library_imports_neither_tqdm_nor_matplotlib():
    code = "import sys, cnn; print(sorted({'tqdm', 'matplotlib'} & set(sys.modules)))"
    result = child_python.run(code, env=ENV)
    assert result.stdout.strip() == "[]", result.stderr


# ***** train *****

@needs_mnist
def test_train_reports_each_epoch_and_writes_a_checkpoint(trained):
    _, checkpoint_path, result = trained
    lines = result.stdout.splitlines()
    assert re.match(r"cnn \S+: kernels \w+, (no )?OpenMP, \d+ threads", lines[0])
    assert "61,706 parameters" in lines[1] and "640 training and 500 test images" in lines[1]
    assert "adam lr 0.001" in lines[2] and "batch 64" in lines[2]
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert [line.split()[1] for line in epochs] == ["1/2", "2/2"]
    assert all(re.search(r"loss \d+\.\d{4}  test accuracy \d+\.\d\d%  .* img/s", line)
               for line in epochs)
    assert re.match(r"done in \d+ s: test accuracy \d+\.\d\d% after 2 epochs; the model is in "
                    r"lenet_mnist.npz", lines[-2])
    assert lines[-1] == "next: python -m cnn evaluate"  # the data and the model are found alike

    checkpoint = cnn.load(checkpoint_path)
    assert checkpoint["format"] == "cnn train checkpoint" and checkpoint["epoch"] == 2
    assert checkpoint["args"]["lr"] == 1e-3 and checkpoint["args"]["limit_train"] == 640
    assert checkpoint["loader"] == {"seed": 0, "epoch": 2}
    assert set(checkpoint["rng_state"]) >= {"bit_generator", "state"}
    assert len(checkpoint["history"]) == 2 and "test_accuracy" in checkpoint["history"][0]
    assert checkpoint["optimizer"]["state"][0]["step"] == 20
    lenet5().load_state_dict(checkpoint["model"])
    assert not list(checkpoint_path.parent.glob(".*.tmp"))  # no temporary file left behind


@needs_mnist
def test_train_without_tqdm_trains_without_a_bar(tmp_path):
    code = ("import sys; sys.modules['tqdm'] = None; from cnn.cli import main; sys.exit(main("
            "['train', '--epochs', '1', '--limit-train', '64', '--limit-test', '64']))")
    result = child_python.run(code, cwd=tmp_path, env=ENV)
    assert result.returncode == 0, result.stderr
    assert "no progress bar: tqdm is not installed" in result.stderr
    assert "epoch 1/1" in result.stdout and (tmp_path / "lenet_mnist.npz").exists()


@needs_mnist
def test_resume_ends_with_exactly_the_weights_of_an_uninterrupted_run(trained, tmp_path):
    _, uninterrupted, _ = trained
    first = run_cli("train", "--epochs", 1, *TINY, "--out", "run.npz", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert cnn.load(tmp_path / "run.npz")["epoch"] == 1
    resumed = run_cli("train", "--resume", "run.npz", "--epochs", 2, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming run.npz after epoch 1" in resumed.stdout
    assert [line.split()[1] for line in resumed.stdout.splitlines()
            if line.startswith("epoch ")] == ["2/2"]

    expected, got = cnn.load(uninterrupted), cnn.load(tmp_path / "run.npz")
    for key in ("model", "optimizer", "scheduler", "epoch", "loader", "rng_state", "args"):
        assert same_values(expected[key], got[key]), key


@needs_mnist
def test_resume_refuses_changed_settings_and_finished_runs(trained, tmp_path):
    _, checkpoint, _ = trained
    changed = run_cli("train", "--resume", checkpoint, "--lr", 0.01, "--out", "x.npz",
                      cwd=tmp_path)
    assert_clean_failure(changed)
    assert "--lr 0.01 differs from the 0.001" in changed.stderr
    done = run_cli("train", "--resume", checkpoint, "--out", "x.npz", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "already holds 2 epochs: nothing to train" in done.stdout
    assert not (tmp_path / "x.npz").exists()


@needs_mnist
def stop_a_long_run(tmp_path, signum, pause=0.0):
    """Start a 1000-epoch ``train`` in `tmp_path`, send it `signum` `pause` seconds after its
    first checkpoint; return (process, stdout, stderr, checkpoint path) once it ended."""
    process = subprocess.Popen(
        [sys.executable, "-m", "cnn", "train", "--epochs", "1000", "--limit-train", "1280",
         "--limit-test", "200"], cwd=tmp_path, env=ENV, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    checkpoint = tmp_path / "lenet_mnist.npz"
    try:
        deadline = time.monotonic() + 60
        while not checkpoint.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert checkpoint.exists(), "no checkpoint within 60 s"
        time.sleep(pause)
        process.send_signal(signum)
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    return process, out, err, checkpoint


def test_ctrl_c_stops_cleanly_and_keeps_the_last_complete_checkpoint(tmp_path):
    # 0.3 s: into the next epoch, or its checkpoint: any moment must work.
    process, out, err, checkpoint = stop_a_long_run(tmp_path, signal.SIGINT, pause=0.3)
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    stopped = re.search(r"Interrupted in epoch (\d+).*The last good checkpoint, "
                        r"lenet_mnist.npz \(after epoch (\d+)\), is intact.*"
                        r"Continue with: python -m cnn train --resume lenet_mnist.npz", err)
    assert stopped, err
    saved = cnn.load(checkpoint)  # complete, and the epoch the message names
    assert saved["epoch"] == int(stopped.group(2)) == int(stopped.group(1)) - 1 >= 1
    printed = [int(line.split()[1].split("/")[0]) for line in out.splitlines()
               if line.startswith("epoch ")]
    assert printed == list(range(1, len(printed) + 1)) and len(printed) <= saved["epoch"]
    assert not list(tmp_path.glob(".*.tmp"))


@needs_mnist
def test_a_diverging_run_stops_and_leaves_the_checkpoint_alone(trained, tmp_path):
    _, good, _ = trained
    shutil.copy(good, tmp_path / "lenet_mnist.npz")
    before = (tmp_path / "lenet_mnist.npz").read_bytes()
    result = run_cli("train", "--optimizer", "sgd", "--lr", "1e6", *TINY, cwd=tmp_path)
    assert_clean_failure(result)
    assert re.search(r"training diverged: the (loss is (nan|inf)|weights are no longer finite)"
                     r".* epoch 1", result.stderr), result.stderr
    assert "lower learning rate than --lr 1e+06" in result.stderr
    assert (tmp_path / "lenet_mnist.npz").read_bytes() == before


@needs_mnist
def test_missing_data_is_explained_without_a_traceback(tmp_path):
    result = run_cli("train", "--data", tmp_path / "nowhere", cwd=tmp_path)
    assert_clean_failure(result)
    assert "nowhere" in result.stderr and "train-images-idx3-ubyte.gz" in result.stderr
    assert "by hand" in result.stderr


# ***** evaluate, classify *****

@needs_mnist
def test_evaluate_prints_accuracy_and_confusion_matrix(trained):
    folder, _, _ = trained
    result = run_cli("evaluate", cwd=folder)  # train's checkpoint, lenet_mnist.npz, by default
    assert result.returncode == 0, result.stderr
    accuracy = re.search(r"test accuracy: (\d+\.\d\d)% \(([\d,]+) of 10,000\)", result.stdout)
    assert accuracy and float(accuracy.group(1)) > 20  # 20 steps: above chance (10%)
    lines = result.stdout.splitlines()
    header = lines.index(next(line for line in lines if line.startswith("true")))
    assert lines[header].split() == ["true"] + [str(d) for d in range(10)] + ["recall"]
    rows = [line.split() for line in lines[header + 1:header + 11]]
    counts = np.array([[int(cell.replace(",", "")) for cell in row[1:11]] for row in rows])
    assert [row[0] for row in rows] == [str(d) for d in range(10)]
    assert counts.sum() == 10_000
    assert np.trace(counts) == int(accuracy.group(2).replace(",", ""))


@needs_mnist
def test_evaluate_counts_epochs_in_words(trained, tmp_path):
    _, checkpoint, _ = trained
    state = cnn.load(checkpoint)
    assert "trained 2 epochs," in run_cli("evaluate", "--model", checkpoint,
                                          cwd=tmp_path).stdout
    state["epoch"] = 1
    cnn.save(state, tmp_path / "one.npz")
    assert "trained 1 epoch," in run_cli("evaluate", "--model", "one.npz", cwd=tmp_path).stdout


@needs_mnist
def test_evaluate_refuses_a_file_that_is_not_lenet(tmp_path):
    cnn.save({"weight": np.zeros(3, np.float32)}, tmp_path / "other.npz")
    result = run_cli("evaluate", "--model", "other.npz", cwd=tmp_path)
    assert_clean_failure(result)
    assert "other.npz does not hold LeNet-5's weights" in result.stderr


@needs_mnist
def test_classify_draws_the_grid(trained, tmp_path):
    pytest.importorskip("matplotlib")
    _, checkpoint, _ = trained
    result = run_cli("classify", "--model", checkpoint, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert re.search(r"^[\d,]+ of 10,000 test digits misclassified; the grid of 36 \(mistakes "
                     r"first\) is in classify_results.png$", result.stdout, re.M)
    assert (tmp_path / "classify_results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@needs_mnist
def test_classify_without_matplotlib_says_how_to_install_it(trained, tmp_path):
    _, checkpoint, _ = trained
    # A None entry in sys.modules makes every import of matplotlib fail, as if absent.
    code = ("import sys; sys.modules['matplotlib'] = None; from cnn.cli import main; "
            f"sys.exit(main(['classify', '--model', {str(checkpoint)!r}]))")
    result = child_python.run(code, cwd=tmp_path, env=ENV)
    assert_clean_failure(result)
    assert "pip install .[plot]" in result.stderr
    assert not (tmp_path / "classify_results.png").exists()


# ***** profile, summary *****

def test_profile_prints_a_row_per_layer(tmp_path):
    result = run_cli("profile", "--batch-size", 8, "--iters", 2, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line.split() for line in result.stdout.splitlines()]
    layers = [row[:2] for row in rows if row and row[0].isdigit()]
    assert layers == [[str(i), kind] for i, kind in enumerate(
        ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU", "MaxPool2d", "Flatten", "Linear",
         "ReLU", "Linear", "ReLU", "Linear"])]
    assert any(row and row[0] == "total" for row in rows)
    assert "images/s" in result.stdout


def test_summary_prints_layers_shapes_and_61706_parameters(tmp_path):
    result = run_cli("summary", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Total params: 61,706" in result.stdout
    assert re.search(r"0: Conv2d\s+\[1, 6, 28, 28\]\s+156", result.stdout)
    assert re.search(r"11: Linear\s+\[1, 10\]\s+850", result.stdout)


@pytest.mark.parametrize("unbuffered", ["1", ""])
def test_output_into_a_closed_pipe_ends_quietly(unbuffered):
    # `cnn summary | head -1` once head has exited: every write fails (EPIPE). The read end is
    # closed before cnn starts, so this happens on every run, with stdout buffered or not.
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = dict(os.environ, PYTHONUNBUFFERED=unbuffered)
    try:
        writer = subprocess.run([sys.executable, "-m", "cnn", "summary"], stdout=write_end,
                                stderr=subprocess.PIPE, text=True, timeout=120, env=env)
    finally:
        os.close(write_end)
    assert "Traceback" not in writer.stderr and "BrokenPipeError" not in writer.stderr, \
        writer.stderr
    assert writer.returncode == 1
