"""Scripts written for PyTorch and torchvision (tests/clients/) run under cnn after the import
swap alone."""
import os
import subprocess
import sys
from pathlib import Path

import cnn
from test_datasets import write_cifar10

CLIENTS = Path(__file__).parent / "clients"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(cnn.__file__).parents[1]),
                                                   os.environ.get("PYTHONPATH", "")]))


def test_the_cifar10_resnet_recipe_trains_with_two_workers(tmp_path):
    write_cifar10(tmp_path / "data", sizes=(20, 20, 20, 20, 20, 30))
    result = subprocess.run(
        [sys.executable, str(CLIENTS / "cifar10_resnet.py"), "--data", str(tmp_path / "data"),
         "--epochs", "2", "--batch-size", "32", "--workers", "2"],
        cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line.startswith("epoch")]
    assert len(lines) == 2 and "/100)" in lines[0] and "test acc" in lines[1]
    assert "Traceback" not in result.stderr
    state = cnn.load(tmp_path / "ckpt.npz")
    assert state["epoch"] == 2 and "linear.weight" in state["net"]
