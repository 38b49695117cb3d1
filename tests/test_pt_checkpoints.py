"""PyTorch checkpoints without PyTorch: cnn.load reads torch.save's files (the checked-in ones of
tests/data/, written by tests/make_pt_files.py, and fresh ones when torch is installed) through
a restricted unpickler; cnn.save writes files torch.load(weights_only=True) reads;
load_state_dict takes torch tensors."""
import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, strategies as st

import cnn
import cnn.nn as nn

DATA = Path(__file__).resolve().parent / "data"


def expected_tensors():
    """What tests/make_pt_files.py put in tensors.pt, computed again with NumPy."""
    base = np.arange(24, dtype=np.float32).reshape(4, 6) / 8 - 1
    return OrderedDict([
        ("float32", base), ("transposed", base.T), ("sliced", base[1:3, ::2]),
        ("float64", base.astype(np.float64) / 3), ("float16", base.astype(np.float16)),
        ("bfloat16", base),  # widened to float32 (exact: these values fit bfloat16)
        ("int64", np.arange(-3, 3)), ("int32", np.arange(-3, 3, dtype=np.int32) * 1000),
        ("int8", np.arange(-3, 3, dtype=np.int8)),
        ("uint8", np.arange(250, 256, dtype=np.uint8)), ("bool", base > 0),
        ("scalar", np.array(2.5, np.float32)),
        ("empty", np.zeros((0, 3), np.float32)), ("parameter", np.full(2, 0.5, np.float32)),
        ("plain", {"epoch": 3, "name": "lenet", "betas": (0.9, 0.999), "none": None,
                   "flags": [True, False], "big": 2 ** 70}),
    ])


def small_net():
    """cnn's twin of make_pt_files.small_net (without its weights)."""
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def expected_state_dict():
    state = OrderedDict()
    for key, value in small_net().state_dict().items():
        count = value.size
        state[key] = (np.arange(count, dtype=np.float32) / count - 0.5).reshape(value.shape)
    state["1.running_var"] = np.full(2, 2.0, np.float32)
    state["1.num_batches_tracked"] = np.array(7, np.int64)
    for key in state:  # one SGD step with gradient 1 and lr 0.1 moved every parameter
        if key.rsplit(".", 1)[1] in ("weight", "bias"):
            state[key] = state[key] - np.float32(0.1)
    return state


def assert_same(actual, expected, where="obj"):
    """Tensors (Parameters where saved so) of the expected arrays; the plain values equal."""
    if isinstance(expected, np.ndarray):
        assert isinstance(actual, cnn.Tensor), f"{where}: {type(actual)}"
        assert actual.dtype == expected.dtype, f"{where}: {actual.dtype} != {expected.dtype}"
        assert actual.shape == expected.shape, where
        np.testing.assert_array_equal(actual.numpy(), expected, err_msg=where)
    elif isinstance(expected, dict):
        assert type(actual) is type(expected) and list(actual) == list(expected), where
        for key in expected:
            assert_same(actual[key], expected[key], f"{where}[{key!r}]")
    else:
        assert type(actual) is type(expected) and actual == expected, where


# ***** reading the checked-in files (no torch needed) *****

@pytest.mark.parametrize("name", ["tensors.pt", "tensors_legacy.pt"])
def test_reads_every_dtype_of_both_formats(name):
    loaded = cnn.load(DATA / name)
    assert_same(loaded, expected_tensors())
    assert type(loaded["parameter"]) is nn.Parameter and loaded["parameter"].requires_grad
    assert type(loaded["float32"]) is cnn.Tensor and not loaded["float32"].requires_grad


@pytest.mark.parametrize("name", ["tensors.pt", "tensors_legacy.pt"])
def test_tensors_are_strided_views_of_one_storage(name):
    loaded = cnn.load(DATA / name)
    base, transposed, sliced = (loaded[key]._data for key in ("float32", "transposed", "sliced"))
    assert transposed.strides == (4, 24) and sliced.strides == (24, 8)
    assert np.shares_memory(base, transposed) and np.shares_memory(base, sliced)
    assert base.flags.writeable and base.flags.c_contiguous
    base[1, 2] = 100.0  # one storage: a write shows through every view
    assert transposed[2, 1] == 100.0 and sliced[0, 1] == 100.0
    assert not np.shares_memory(base, loaded["float64"]._data)


def test_reads_a_training_checkpoint_into_a_cnn_model():
    saved = cnn.load(DATA / "checkpoint.pt")
    assert list(saved) == ["model", "optimizer", "epoch"] and saved["epoch"] == 3
    assert_same(saved["model"], expected_state_dict())
    assert saved["model"]._metadata[""] == {"version": 1}  # the state dict's BUILD
    optimizer = saved["optimizer"]
    assert optimizer["param_groups"][0]["lr"] == 0.1
    assert optimizer["param_groups"][0]["params"] == [0, 1, 2, 3, 4, 5]
    assert optimizer["param_groups"][0]["foreach"] is None
    np.testing.assert_array_equal(optimizer["state"][4]["momentum_buffer"].numpy(),
                                  np.ones((3, 8), np.float32))
    model = small_net()
    assert not model.load_state_dict(saved["model"]).missing_keys
    np.testing.assert_array_equal(model[3].weight.numpy(), expected_state_dict()["3.weight"])


# ***** writing, and reading back (no torch needed) *****

def test_save_by_suffix_or_format_and_load_back(tmp_path):
    obj = {"w": np.arange(6, dtype=np.float32).reshape(2, 3), "t": cnn.tensor([1.5, 2.5]),
           "i": np.arange(3), "b": np.array([True, False]), "h": np.ones(2, np.float16),
           "nested": [{"x": (1, "two", None)}], "scalar": np.float64(0.25), "step": 4}
    for name, format in (("a.pt", None), ("b.PTH", None), ("c.npz", "pt"), ("d.bin", "pt")):
        cnn.save(obj, tmp_path / name, format=format)
        assert zipfile.ZipFile(tmp_path / name).namelist()[0] == "archive/data.pkl"
        loaded = cnn.load(tmp_path / name)
        assert isinstance(loaded["w"], cnn.Tensor) and loaded["w"].dtype == np.float32
        np.testing.assert_array_equal(loaded["w"].numpy(), obj["w"])
        np.testing.assert_array_equal(loaded["b"].numpy(), obj["b"])
        assert loaded["nested"] == [{"x": (1, "two", None)}]
        assert loaded["scalar"] == 0.25 and type(loaded["scalar"]) is float
    cnn.save(obj, tmp_path / "e.npz")  # the default stays cnn's own format
    assert "__cnn_structure__.npy" in zipfile.ZipFile(tmp_path / "e.npz").namelist()
    with open(tmp_path / "f.pt", "wb") as file:  # a file object by its name
        cnn.save(obj, file)
    assert cnn.load(tmp_path / "f.pt")["step"] == 4


def test_written_records_are_aligned_and_shared_arrays_share_a_storage(tmp_path):
    weight = np.arange(10, dtype=np.float32)
    cnn.save({"a": weight, "tied": weight, "other": weight.copy(), "v": weight[::2]},
             tmp_path / "m.pt")
    raw = (tmp_path / "m.pt").read_bytes()
    archive = zipfile.ZipFile(tmp_path / "m.pt")
    for info in archive.infolist():
        name_length, extra_length = struct.unpack("<HH", raw[info.header_offset + 26:
                                                              info.header_offset + 30])
        assert (info.header_offset + 30 + name_length + extra_length) % 64 == 0, info.filename
    assert sorted(n for n in archive.namelist() if "/data/" in n) == [
        "archive/data/0", "archive/data/1", "archive/data/2"]
    loaded = cnn.load(tmp_path / "m.pt")
    assert np.shares_memory(loaded["a"]._data, loaded["tied"]._data)
    assert not np.shares_memory(loaded["a"]._data, loaded["other"]._data)
    np.testing.assert_array_equal(loaded["v"].numpy(), weight[::2])


@pytest.mark.parametrize("value, words", [
    (np.ones(2, np.complex64), "dtype complex64"),
    (np.ones(2, np.uint16), "dtype uint16"),
    (np.array(["a"]), "dtype <U1"),
    ({1, 2}, "cannot save a set"),
    ({(1, 2): np.ones(1)}, "dict keys must be strings or integers"),
    (np.datetime64("2020-01-01"), "NumPy datetime64"),
])
def test_save_refuses_what_torch_load_cannot_read_and_writes_nothing(tmp_path, value, words):
    with pytest.raises(TypeError, match=words) as error:
        cnn.save({"model": {"x": value}}, tmp_path / "bad.pt")
    assert "['model']['x']" in str(error.value) or "['model']" in str(error.value)
    assert os.listdir(tmp_path) == []


def test_big_endian_files_are_byte_swapped(tmp_path):
    values = {"f": np.linspace(-1, 1, 5, dtype=np.float32), "i": np.arange(-2, 3),
              "h": np.ones(3, np.float16) / 3}
    buffer = io.BytesIO()
    cnn.save(values, buffer, format="pt")
    source = zipfile.ZipFile(buffer)
    with zipfile.ZipFile(tmp_path / "big.pt", "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "archive/byteorder":
                data = b"big"
            elif "/data/" in info.filename:
                key = int(info.filename.rsplit("/", 1)[1])
                array = list(values.values())[key]
                data = array.astype(array.dtype.newbyteorder(">")).tobytes()
            target.writestr(info.filename, data)
    loaded = cnn.load(tmp_path / "big.pt")
    for key, array in values.items():
        np.testing.assert_array_equal(loaded[key].numpy(), array)
        assert loaded[key].dtype == array.dtype


# ***** what the unpickler refuses *****

class _System:
    """Pickles as a call of os.system, the classic pickle exploit."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


def torch_zip(pickle_bytes):
    """A torch.save-shaped zip archive around a given data.pkl."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        archive.writestr("archive/byteorder", b"little")
        archive.writestr("archive/version", b"3\n")
    return buffer.getvalue()


def legacy_file(pickle_bytes):
    """The legacy format's preamble (magic, protocol, system info) before a given pickle."""
    return (pickle.dumps(0x1950A86A20F9469CFC6C, protocol=2) + pickle.dumps(1001, protocol=2)
            + pickle.dumps({"little_endian": True}, protocol=2) + pickle_bytes
            + pickle.dumps([], protocol=2))


@pytest.mark.parametrize("wrap", [torch_zip, legacy_file], ids=["zip", "legacy"])
def test_a_forbidden_global_is_refused_by_name_and_never_runs(tmp_path, wrap):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pt"
    path.write_bytes(wrap(pickle.dumps({"w": _System(f"touch {marker}")}, protocol=2)))
    with pytest.raises(ValueError) as error:
        cnn.load(path)
    assert str(path) in str(error.value)
    assert f"refused to load the global '{os.system.__module__}.system'" in str(error.value)
    assert not marker.exists()


class Linear:
    """Stands for a class of a training script, as a pickled whole model has."""

    def __init__(self):
        self.weight = [1.0]


@pytest.mark.parametrize("obj, words", [
    (Linear(), f"'{__name__}.Linear'"),                       # torch.save(model)
    (np.arange(3), "numpy"),                                  # a pickled NumPy array
    ({"x": {1, 2}}, "set'"),  # protocol 2 names it __builtin__.set
    (OrderedDict([("w", 1)]), None),                          # allowed: loads
])
def test_only_a_state_dict_s_globals_are_admitted(tmp_path, obj, words):
    path = tmp_path / "x.pt"
    path.write_bytes(torch_zip(pickle.dumps(obj, protocol=2)))
    if words is None:
        assert cnn.load(path) == obj
        return
    with pytest.raises(ValueError, match="refused to load the global") as error:
        cnn.load(path)
    assert words in str(error.value) and str(path) in str(error.value)


@pytest.mark.parametrize("data, opcode", [
    (b"(icollections\nOrderedDict\n.", "INST"),                       # protocol 0
    (b"\x80\x02ccollections\nOrderedDict\n)\x81.", "NEWOBJ"),         # protocol 2
    (b"\x80\x02\x82\x01.", "EXT1"),                                    # the copyreg registry
])
def test_instance_building_opcodes_are_refused(tmp_path, data, opcode):
    path = tmp_path / "x.pt"
    path.write_bytes(torch_zip(data))
    with pytest.raises(ValueError, match=f"opcode .* \\({opcode}\\)"):
        cnn.load(path)


def test_a_plain_pickle_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"w": [1.0]}, protocol=4))
    with pytest.raises(ValueError, match="a pickle file, but not one torch.save wrote"):
        cnn.load(path)


# ***** damaged files *****

def good_file():
    return (DATA / "tensors.pt").read_bytes()


def with_member(data, member, replace):
    """The archive with one member's bytes replaced (written back as a plain zip)."""
    source, target = zipfile.ZipFile(io.BytesIO(data)), io.BytesIO()
    with zipfile.ZipFile(target, "w") as archive:
        for info in source.infolist():
            if info.filename.endswith(member) and replace is None:
                continue
            content = source.read(info)
            archive.writestr(info.filename, replace(content) if info.filename.endswith(
                member) else content)
    return target.getvalue()


def tampered_tensor_pickle():
    """data.pkl with the first tensor's size grown beyond its storage."""
    source = zipfile.ZipFile(io.BytesIO(good_file()))
    name = next(n for n in source.namelist() if n.endswith("data.pkl"))
    data = source.read(name)
    return data.replace(b"K\x04K\x06\x86", b"K\x05K\x06\x86", 1)


@pytest.mark.parametrize("damage, words", [
    (lambda d: d[:len(d) // 2], "truncated"),
    (lambda d: with_member(d, "data/0", None), "without its record"),
    (lambda d: with_member(d, "data/0", lambda c: c[:-4]), "truncated or corrupted"),
    (lambda d: with_member(d, "byteorder", lambda c: b"middle"), "unknown byte order"),
    (lambda d: with_member(d, "data.pkl", lambda c: c[:40]), "truncated"),
    (lambda d: with_member(d, "data.pkl", lambda c: tampered_tensor_pickle()),
     "reaches past the end of its storage"),
])
def test_damaged_zip_files_raise_value_errors_naming_them(tmp_path, damage, words):
    path = tmp_path / "damaged.pt"
    path.write_bytes(damage(good_file()))
    with pytest.raises(ValueError, match=words) as error:
        cnn.load(path)
    assert str(path) in str(error.value)


def test_flipped_storage_bytes_fail_the_checksum(tmp_path):
    data = bytearray(good_file())
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    info = next(i for i in archive.infolist() if i.filename.endswith("data/0"))
    name_length, extra_length = struct.unpack("<HH", data[info.header_offset + 26:
                                                          info.header_offset + 30])
    data[info.header_offset + 30 + name_length + extra_length] ^= 0xFF
    path = tmp_path / "flipped.pt"
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="checksum"):
        cnn.load(path)


@given(st.data())
def test_any_damage_gives_a_value_error_naming_the_file(tmp_path_factory, data):
    source = data.draw(st.sampled_from(["tensors.pt", "tensors_legacy.pt", "checkpoint.pt"]))
    raw = bytearray((DATA / source).read_bytes())
    if data.draw(st.booleans()):
        del raw[data.draw(st.integers(1, len(raw) - 1)):]
    for position in data.draw(st.lists(st.integers(0, len(raw) - 1), max_size=4)):
        raw[position] ^= data.draw(st.integers(1, 255))
    path = tmp_path_factory.mktemp("fuzz") / "damaged.pt"
    path.write_bytes(bytes(raw))
    try:
        cnn.load(path)
    except ValueError as error:
        assert str(path) in str(error)


# ***** arguments *****

def test_map_location_and_weights_only_are_accepted_for_compatibility():
    path = DATA / "tensors.pt"

    class Device:  # what str(torch.device("cpu")) gives
        def __str__(self):
            return "cpu"

    for location in (None, "cpu", Device(), {"cuda:0": "cpu"}):
        assert cnn.load(path, map_location=location)["plain"]["epoch"] == 3
    assert cnn.load(path, weights_only=True)["plain"]["epoch"] == 3
    with pytest.raises(ValueError, match="map_location: cnn keeps every tensor in main memory"):
        cnn.load(path, map_location="cuda:0")
    with pytest.raises(TypeError, match="map_location: cnn cannot call a function"):
        cnn.load(path, map_location=lambda storage, location: storage)
    with pytest.raises(ValueError, match="weights_only"):
        cnn.load(path, weights_only=False)
    with pytest.raises(ValueError, match="format: expected 'npz' or 'pt'"):
        cnn.save({}, io.BytesIO(), format="torch")


# ***** load_state_dict and other libraries' arrays *****

class HasArray:
    def __init__(self, array):
        self.array = array

    def __array__(self, dtype=None, copy=None):
        return self.array


class HasNumpy:  # numpy() without torch's `force` argument
    def __init__(self, array):
        self.array = array

    def numpy(self):
        return self.array


def test_load_state_dict_takes_objects_with_array_or_numpy():
    model = nn.Linear(3, 2)
    weight, bias = np.ones((2, 3), np.float32), np.full(2, 2.0, np.float32)
    model.load_state_dict({"weight": HasArray(weight), "bias": HasNumpy(bias)})
    np.testing.assert_array_equal(model.weight.numpy(), weight)
    np.testing.assert_array_equal(model.bias.numpy(), bias)
    with pytest.raises(TypeError, match=r'"bias": expected a NumPy array or Tensor, got list'):
        model.load_state_dict({"weight": weight, "bias": [1.0, 2.0]})


# ***** against PyTorch itself *****

@pytest.fixture
def torch():
    return pytest.importorskip("torch")


def test_torch_files_of_every_kind_load_like_torch_load(torch, tmp_path):
    base = torch.randn(5, 4, dtype=torch.float64)
    obj = {"views": [base, base.t(), base[1:, 2:]], "tied": (base, base),
           "half": torch.randn(3).half(), "bfloat16": torch.randn(3).bfloat16(),
           "long": torch.arange(-2, 2),
           "param": torch.nn.Parameter(torch.ones(2)), "empty": torch.zeros(2, 0),
           "expanded": torch.ones(3, 1).expand(3, 4), "bytes": b"\x00\x01", "size": base.shape}
    for legacy in (False, True):
        path = tmp_path / f"torch_{legacy}.pt"
        # torch's legacy format cannot hold the newer unsigned dtypes.
        saved = obj if legacy else dict(obj, uint16=torch.arange(4).to(torch.uint16))
        torch.save(saved, path, _use_new_zipfile_serialization=not legacy)
        reference = torch.load(path, weights_only=True)
        loaded = cnn.load(path)
        for key in ("half", "long", "empty", "expanded", "param", "uint16")[:5 + (not legacy)]:
            np.testing.assert_array_equal(loaded[key].numpy(), reference[key].detach().numpy())
        np.testing.assert_array_equal(loaded["bfloat16"].numpy(),
                                      reference["bfloat16"].float().numpy())
        for got, want in zip(loaded["views"], reference["views"]):
            np.testing.assert_array_equal(got.numpy(), want.numpy())
        assert np.shares_memory(loaded["tied"][0]._data, loaded["tied"][1]._data)
        assert np.shares_memory(loaded["views"][0]._data, loaded["views"][2]._data)
        assert loaded["bytes"] == b"\x00\x01" and loaded["size"] == (5, 4)


def test_torch_loads_what_cnn_saves(torch, tmp_path):
    cnn.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))
    cnn.save({"model": model.state_dict(), "epoch": 3, "loss": np.float32(0.5),
              "ids": np.arange(3), "mask": np.array([True, False])}, tmp_path / "run.pt")
    for mmap in (False, True):
        loaded = torch.load(tmp_path / "run.pt", weights_only=True, mmap=mmap)
        assert loaded["epoch"] == 3 and loaded["loss"] == 0.5
        assert loaded["ids"].dtype == torch.int64 and loaded["mask"].dtype == torch.bool
        twin = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                                   torch.nn.Flatten(), torch.nn.Linear(8, 3))
        twin.load_state_dict(loaded["model"])
        x = np.random.default_rng(0).standard_normal((2, 1, 4, 4)).astype(np.float32)
        with torch.no_grad():
            expected = twin.eval()(torch.from_numpy(x)).numpy()
        with cnn.no_grad():
            np.testing.assert_allclose(model.eval()(cnn.tensor(x)).numpy(), expected,
                                       rtol=1e-5, atol=1e-6)


def test_load_state_dict_takes_a_torch_state_dict(torch):
    torch.manual_seed(0)
    twin = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2),
                               torch.nn.Flatten(), torch.nn.Linear(8, 3))
    model = small_net()
    assert not model.load_state_dict(twin.state_dict()).missing_keys
    for key, value in twin.state_dict().items():
        np.testing.assert_array_equal(model.state_dict()[key], value.numpy())
    # Parameters that require grad, and a dtype NumPy lacks, through .numpy(force=True).
    model.load_state_dict(dict(twin.named_parameters()), strict=False)
    state = twin.state_dict()
    state["3.bias"] = state["3.bias"].bfloat16()
    with pytest.raises(TypeError, match=r'"3.bias": cannot convert the torch.Tensor'):
        model.load_state_dict(state)


# ***** the command line *****

MNIST = Path(os.environ.get("CNN_DATA") or DATA.parents[1] / ".." / "shared" / "data" / "mnist")


@pytest.mark.skipif(not MNIST.is_dir(), reason=f"no MNIST in {MNIST}")
def test_evaluate_reads_a_pytorch_checkpoint_of_lenet(tmp_path, capsys):
    from cnn.cli import main
    from cnn.cli.lenet import lenet5
    cnn.manual_seed(0)
    state = lenet5().state_dict()
    cnn.save(state, tmp_path / "lenet.npz")
    cnn.save({"model_state_dict": state, "epoch": 2}, tmp_path / "lenet.pt")
    results = []
    for name in ("lenet.npz", "lenet.pt"):
        assert main(["evaluate", "--model", str(tmp_path / name), "--data", str(MNIST)]) == 0
        results.append(capsys.readouterr().out.splitlines())
    assert "trained 2 epochs" in results[1][0]
    assert results[0][1:] == results[1][1:]  # the same accuracy and confusion matrix
