"""Nothing lost (SPEC section 8): damaged files raise errors that name them, failed loads and
saves leave everything as it was. Complements tests/test_serialization.py,
tests/test_seed_interface.py, tests/test_module.py and tests/test_optim.py, which cover the
common cases; tests/test_fuzz.py throws random damage at the same loaders."""
import os
import struct
import zipfile

import numpy as np
import pytest
from numpy.lib import format as npy_format

import cnn
from cnn import Sequential  # the original library's, with save_model / load_model
from cnn.nn import BatchNorm2d, Conv2d, Flatten, Linear, ReLU
from cnn.optim import SGD


def small_net():
    cnn.manual_seed(0)
    return Sequential(Conv2d(1, 2, 3), ReLU(), Flatten(), Linear(2 * 4 * 4, 3))


def snapshot(model):
    return {key: value.copy() for key, value in model.state_dict().items()}


def assert_unchanged(model, before):
    after = model.state_dict()
    assert list(after) == list(before)
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value, err_msg=key)


def test_archive_whose_directory_points_outside_the_file(tmp_path):
    # The end record's central-directory offset lies past the end: reading it seeks to a
    # negative position, an OSError from the file, reported as a damaged archive.
    path = tmp_path / "ckpt.npz"
    cnn.save({"w": np.arange(5.0)}, path)
    raw = bytearray(path.read_bytes())
    end = raw.rindex(b"PK\x05\x06")
    struct.pack_into("<I", raw, end + 16, 40 * len(raw))
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="ckpt.npz.*(truncated|corrupted)"):
        cnn.load(path)
    model = small_net()
    before = snapshot(model)
    with pytest.raises(ValueError, match="ckpt.npz"):
        model.load_model(path)
    assert_unchanged(model, before)


def test_member_declaring_an_absurd_size_is_refused_before_allocating(tmp_path):
    path = tmp_path / "huge.npz"
    with zipfile.ZipFile(path, "w") as archive:
        with archive.open("w.npy", "w") as member:
            npy_format.write_array_header_1_0(
                member, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
            member.write(bytes(64))
    with pytest.raises(ValueError, match=r"huge.npz.*'w.npy' declares 8796093022208 bytes.*"
                                         r"holds 64"):
        cnn.load(path)


def test_interrupted_save_model_keeps_the_previous_file(tmp_path, monkeypatch):
    model = small_net()
    path = model.save_model(tmp_path / "model")
    before = open(path, "rb").read()
    real_write_array = np.lib.format.write_array
    calls = []

    def interrupt_on_third_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", interrupt_on_third_array)
    for param in model.parameters():
        param._data += 1
    with pytest.raises(KeyboardInterrupt):
        model.save_model(tmp_path / "model")
    monkeypatch.undo()
    assert open(path, "rb").read() == before
    assert os.listdir(tmp_path) == ["model.npy"]  # no temporary file left


def test_failed_optimizer_load_with_a_bad_flag_changes_nothing():
    model = small_net()
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for param in model.parameters():
        param.grad = np.ones_like(param._data)
    optimizer.step()
    saved = optimizer.state_dict()
    bad = optimizer.state_dict()
    bad["param_groups"][0]["nesterov"] = "yes"
    bad["param_groups"][0]["lr"] = 0.5
    buffers = [optimizer.state[p]["momentum_buffer"].copy() for p in model.parameters()]
    with pytest.raises(ValueError, match="nesterov"):
        optimizer.load_state_dict(bad)
    assert optimizer.param_groups[0]["lr"] == 0.1
    for param, buffer in zip(model.parameters(), buffers):
        np.testing.assert_array_equal(optimizer.state[param]["momentum_buffer"], buffer)
    optimizer.load_state_dict(saved)  # still loads what it saved


def test_training_on_an_empty_batch_keeps_the_running_statistics():
    layer = BatchNorm2d(3)
    layer.running_mean[...] = [1, 2, 3]
    layer.running_var[...] = [4, 5, 6]
    x = cnn.tensor(np.zeros((0, 3, 4, 4), np.float32), requires_grad=True)
    out = layer(x)
    assert out.shape == (0, 3, 4, 4)
    out.sum().backward()
    assert x.grad.shape == x.shape
    np.testing.assert_array_equal(layer.running_mean, [1, 2, 3])
    np.testing.assert_array_equal(layer.running_var, [4, 5, 6])
