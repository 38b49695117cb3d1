"""cnn.save / cnn.load: exact round trips without pickle, atomic writes, clear errors."""
import io
import os
import pickle
import zipfile
from collections import OrderedDict

import numpy as np
import pytest

import cnn
from cnn import serialization
from cnn.nn import Conv2d, Flatten, Linear, ReLU, Sequential
from cnn.serialization import atomic_write, load, save

ARRAY_DTYPES = ["float16", "float32", "float64", ">f4", "int8", "int16", "int32", "int64",
                "uint8", "uint16", "uint32", "uint64", "bool", "complex64", "complex128",
                "<U5", "S3", "datetime64[s]", [("x", "<i4"), ("y", "<f8")]]


def assert_identical(actual, expected, where="obj"):
    """Same types all the way down, same dtypes, same values (NaN equal to NaN)."""
    assert type(actual) is type(expected), f"{where}: {type(actual)} != {type(expected)}"
    if isinstance(expected, cnn.Tensor):
        actual, expected = actual._data, expected._data
    if isinstance(expected, (np.ndarray, np.generic)):
        assert actual.dtype == expected.dtype, f"{where}: {actual.dtype} != {expected.dtype}"
        assert np.shape(actual) == np.shape(expected), where
        assert np.array_equal(actual, expected, equal_nan=expected.dtype.kind in "fc"), where
    elif isinstance(expected, dict):
        assert list(actual) == list(expected), where
        for key in expected:
            assert_identical(actual[key], expected[key], f"{where}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), where
        for i, (a, e) in enumerate(zip(actual, expected)):
            assert_identical(a, e, f"{where}[{i}]")
    elif isinstance(expected, float) and np.isnan(expected):
        assert np.isnan(actual), where
    else:
        assert actual == expected, where
        if isinstance(expected, float):  # -0.0 == 0.0, so compare the sign too
            assert np.signbit(actual) == np.signbit(expected), where


def every_kind_of_value():
    rng = np.random.default_rng(0)
    arrays = {str(np.dtype(dtype)): np.zeros((2, 3), dtype=dtype) for dtype in ARRAY_DTYPES}
    arrays["float32"] = rng.standard_normal((2, 3)).astype(np.float32)
    arrays["int64"] = np.arange(-3, 3).reshape(2, 3)
    return {
        "arrays": arrays,
        "shapes": [np.float64(2.5) * np.ones(()), np.empty((0, 4), np.float32),
                   np.arange(24).reshape(2, 3, 4)[:, ::2, 1:],  # not contiguous
                   np.asfortranarray(np.arange(6.0).reshape(2, 3))],
        "scalars": (np.float32(1.5), np.float64(-2.25), np.int8(-7), np.uint64(2**64 - 1),
                    np.bool_(True), np.complex64(1 + 2j), np.str_("ü")),
        "plain": [None, True, False, 0, -12, 2**70, 1.5, -0.0, float("inf"), float("nan"),
                  "text", "ünïcode ☃", ""],
        "containers": ([], (), {}, [[1, (2, [3])]], OrderedDict([("z", 1), ("a", 2)])),
        7: "integer key",
        "tensor": cnn.tensor([[1.0, 2.0]], dtype=np.float64),
        "state": Sequential(Linear(3, 2)).state_dict(),
    }


def lenet():
    return Sequential(Conv2d(1, 2, 3), ReLU(), Flatten(), Linear(2 * 6 * 6, 3))


# ***** round trips *****

def test_every_supported_value_round_trips_exactly(tmp_path):
    obj = every_kind_of_value()
    save(obj, tmp_path / "all.npz")
    assert_identical(load(tmp_path / "all.npz"), obj)


def test_string_paths_and_file_objects(tmp_path):
    obj = {"w": np.arange(3.0), "step": 4}
    path = str(tmp_path / "s.npz")
    save(obj, path)
    assert_identical(load(path), obj)
    buffer = io.BytesIO()
    save(obj, buffer)
    buffer.seek(0)
    assert_identical(load(buffer), obj)


def test_top_level_array_and_scalar(tmp_path):
    for obj in (np.arange(4.0), np.int16(3), 5, [1, np.ones(2)]):
        save(obj, tmp_path / "x.npz")
        assert_identical(load(tmp_path / "x.npz"), obj)


def test_keys_that_would_collide_when_flattened(tmp_path):
    obj = {"a/b": np.zeros(1), "a": {"b": np.ones(1)}, "__cnn_structure__": np.full(1, 2.0),
           "": {"": np.full(1, 3.0)}}
    save(obj, tmp_path / "c.npz")
    assert_identical(load(tmp_path / "c.npz"), obj)


def test_model_state_dict_round_trip_and_numpy_can_read_it(tmp_path):
    cnn.manual_seed(0)
    model = lenet()
    path = tmp_path / "model.npz"
    save(model.state_dict(), path)
    loaded = load(path)
    assert type(loaded) is OrderedDict
    assert list(loaded) == ["0.weight", "0.bias", "3.weight", "3.bias"]
    other = lenet()
    other.load_state_dict(loaded)
    x = np.random.default_rng(1).standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(other(x)._data, model(x)._data)
    with np.load(path, allow_pickle=False) as archive:
        np.testing.assert_array_equal(archive["3.bias"], model[3].bias._data)


def test_plain_numpy_savez_archive_loads_as_dict(tmp_path):
    arrays = {"0.weight": np.ones((2, 2), np.float32), "0.bias": np.zeros(2, np.float32)}
    np.savez(tmp_path / "plain.npz", **arrays)
    assert_identical(load(tmp_path / "plain.npz"), arrays)


def test_unsupported_values_raise_and_write_nothing(tmp_path):
    path = tmp_path / "bad.npz"
    for obj in ({"s": {1, 2}}, {"o": np.array([None, 1], dtype=object)}, {(1, 2): 3},
                {True: 1}, {"f": object()}, {"c": 1j}):
        with pytest.raises(TypeError):
            save(obj, path)
    assert os.listdir(tmp_path) == []
    with pytest.raises(TypeError, match=r"\['a'\]\[0\]"):  # the message says where
        save({"a": [object()]}, path)


# ***** atomic writes *****

def test_failed_save_keeps_previous_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "ckpt.npz"
    save({"w": np.arange(5.0)}, path)
    before = path.read_bytes()
    real_write_array = np.lib.format.write_array
    calls = []

    def fail_on_second_array(fp, array, *args, **kwargs):
        calls.append(array)
        if len(calls) == 2:
            fp.write(b"partial data")
            raise OSError("disk full (simulated)")
        return real_write_array(fp, array, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "write_array", fail_on_second_array)
    with pytest.raises(OSError, match="simulated"):
        save({"w": np.zeros(5), "v": np.ones(3)}, path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["ckpt.npz"]
    monkeypatch.undo()
    assert_identical(load(path), {"w": np.arange(5.0)})


def test_interrupted_atomic_write_leaves_nothing(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_write(path, "w") as f:
            f.write("new but incomplete")
            raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_atomic_write_replaces_and_gives_ordinary_permissions(tmp_path):
    path = tmp_path / "out.txt"
    with atomic_write(path, "w") as f:
        f.write("hello")
    assert path.read_text() == "hello"
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask
    path.chmod(0o600)
    with atomic_write(path) as f:
        f.write(b"bytes")
    assert path.read_bytes() == b"bytes"
    assert path.stat().st_mode & 0o777 == 0o600  # an existing file keeps its mode


def test_atomic_write_into_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        with atomic_write(tmp_path / "no" / "file.npz"):
            pass
    with pytest.raises(ValueError, match="mode"):
        with atomic_write(tmp_path / "x", "r"):
            pass


# ***** foreign and damaged files *****

def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        load(tmp_path / "missing.npz")


def foreign_files():
    """(file name, contents, expected words in the error)."""
    good = io.BytesIO()
    save({"w": np.arange(100.0), "b": np.ones(3)}, good)
    good = good.getvalue()
    corrupted = bytearray(good)
    corrupted[len(good) // 3] ^= 0xFF  # inside the first array's data
    plain_npy, object_npy, object_npz = io.BytesIO(), io.BytesIO(), io.BytesIO()
    np.save(plain_npy, np.arange(3))
    np.save(object_npy, np.array([np.ones(2), np.ones(3)], dtype=object), allow_pickle=True)
    np.savez(object_npz, w=np.array([{"a": 1}], dtype=object))
    other_zip = io.BytesIO()
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("archive/data.pkl", b"...")
    structure = np.frombuffer(b'{"format": "cnn.save", "version": 99, "root": 1}', np.uint8)
    newer = io.BytesIO()
    np.savez(newer, __cnn_structure__=structure)
    dangling = io.BytesIO()
    np.savez(dangling, __cnn_structure__=np.frombuffer(
        b'{"format": "cnn.save", "version": 1, "root": {"array": "nope"}}', np.uint8))
    not_json = io.BytesIO()
    np.savez(not_json, __cnn_structure__=np.frombuffer(b"{not json", np.uint8))
    return [
        ("random.npz", np.random.default_rng(0).bytes(1000), "not a cnn checkpoint"),
        ("empty.npz", b"", "empty"),
        ("truncated.npz", good[:len(good) // 2], "truncated"),
        ("corrupted.npz", bytes(corrupted), "corrupt"),
        ("pickled.pt", pickle.dumps({"w": [1.0]}, protocol=4), "pickle"),
        ("array.npy", plain_npy.getvalue(), "single NumPy array"),
        ("objects.npy", object_npy.getvalue(), "pickled Python objects"),
        ("objects.npz", object_npz.getvalue(), "pickled Python objects"),
        ("torch.pt", other_zip.getvalue(), "torch.save"),
        ("newer.npz", newer.getvalue(), "newer"),
        ("dangling.npz", dangling.getvalue(), "missing array"),
        ("notjson.npz", not_json.getvalue(), "malformed"),
    ]


FOREIGN_FILES = foreign_files()


@pytest.mark.parametrize("name, contents, words", FOREIGN_FILES,
                         ids=[name for name, _, _ in FOREIGN_FILES])
def test_foreign_or_damaged_file_raises_value_error_naming_it(tmp_path, name, contents, words):
    path = tmp_path / name
    path.write_bytes(contents)
    with pytest.raises(ValueError) as error:
        load(path)
    message = str(error.value)
    assert name in message
    assert words in message


def test_sniff_restores_the_file_position(tmp_path):
    buffer = io.BytesIO(b"xyz" + b"\x93NUMPY")
    buffer.seek(3)
    assert serialization._sniff(buffer) == "npy"
    assert buffer.tell() == 3
