"""PyTorch's checkpoint files (``torch.save``), read without torch and written for it.

**Reading.** ``torch.save`` writes a zip archive (since PyTorch 1.6): ``<prefix>/data.pkl``, a
pickle of the saved structure in which every tensor is a call of ``torch._utils.
_rebuild_tensor_v2(storage, offset, size, stride, ...)`` and every storage a persistent id
``("storage", torch.FloatStorage, key, location, numel)`` whose bytes are the record
``<prefix>/data/<key>``. The legacy format (``_use_new_zipfile_serialization=False``) is a
sequence of pickles: a magic number, a protocol version, system information, the structure,
the list of storage keys, then each storage's element count and bytes.

The pickle is read by :mod:`.unpickler`, which admits only the names below (torch's
``weights_only=True`` list, cut down to what a state dict holds): tensors and parameters,
their storage types and dtypes, ``OrderedDict``, ``torch.Size`` and bytes. Nothing is
imported and nothing else is called. Each storage is read once, into one NumPy array, and
every tensor on it is a strided view of that array (no copy; tensors sharing a storage share
memory), except where the bytes must change:

* bfloat16, which NumPy lacks, is widened to float32 (exact: bfloat16 is the top half of a
  float32), a copy;
* a file written on a big-endian machine is byte-swapped, a copy per storage.

Tensors come back as :class:`cnn.Tensor` (``cnn.nn.Parameter`` for saved parameters), with
``requires_grad`` as saved; the storage's device (``"cuda:0"``) is ignored: everything loads
into main memory.

**Writing.** :func:`write` produces the zip format that ``torch.load(path, weights_only=True)``
reads: the same records, storages aligned to 64 bytes as torch aligns them, tensors as
contiguous little-endian storages of their own (arrays that are the very same object share one
storage).
"""
import io
import struct
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np

from ..nn.parameter import Parameter
from ..tensor import Tensor
from .files import check_key, show_path
from .pickler import Call, Global, PersistentId, dumps
from .unpickler import Unpickler, UnpicklingError

__all__ = ["is_torch_archive", "read_zip", "read_legacy", "write"]

# The first pickle of the legacy format, and its protocol version (torch/serialization.py).
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_ALIGNMENT = 64  # torch aligns each record's data to 64 bytes (for mmap)


# ***** dtypes *****

class _DType:
    """A torch dtype as stored: the NumPy dtype of its bytes, and whether it is widened."""

    __slots__ = ("name", "numpy", "storage")

    def __init__(self, name, numpy, storage):
        self.name = name
        self.numpy = np.dtype(numpy)
        self.storage = storage  # torch's legacy storage class name, None if it has none

    @property
    def bfloat16(self):
        return self.name == "bfloat16"

    def __repr__(self):
        return f"torch.{self.name}"


_DTYPES = [_DType(*spec) for spec in (
    ("float32", np.float32, "FloatStorage"), ("float64", np.float64, "DoubleStorage"),
    ("float16", np.float16, "HalfStorage"), ("bfloat16", np.uint16, "BFloat16Storage"),
    ("int64", np.int64, "LongStorage"), ("int32", np.int32, "IntStorage"),
    ("int16", np.int16, "ShortStorage"), ("int8", np.int8, "CharStorage"),
    ("uint8", np.uint8, "ByteStorage"), ("bool", np.bool_, "BoolStorage"),
    ("complex64", np.complex64, "ComplexFloatStorage"),
    ("complex128", np.complex128, "ComplexDoubleStorage"),
    ("uint16", np.uint16, None), ("uint32", np.uint32, None), ("uint64", np.uint64, None))]
# What a Tensor can hold, hence what is written and read back (complex storages are refused).
_BY_NUMPY = {dtype.numpy: dtype for dtype in _DTYPES
             if dtype.storage and not dtype.bfloat16 and dtype.numpy.kind != "c"}
_UNTYPED = _DType("uint8", np.uint8, "UntypedStorage")  # bytes, typed by _rebuild_tensor_v3


class _StorageType:
    """What a pickled storage class (``torch.FloatStorage``) stands for."""

    __slots__ = ("dtype",)

    def __init__(self, dtype):
        self.dtype = dtype


class _TensorClass:
    """What ``torch.Tensor`` or ``torch.nn.parameter.Parameter`` stands for."""

    __slots__ = ("parameter",)

    def __init__(self, parameter):
        self.parameter = parameter


# ***** reading *****

class _Storage:
    """One storage: its bytes (filled after the pickle is read) and its typed views."""

    __slots__ = ("key", "dtype", "numel", "raw", "big_endian", "_typed")

    def __init__(self, key, dtype, numel, big_endian):
        self.key, self.dtype, self.numel, self.big_endian = key, dtype, numel, big_endian
        self.raw = None
        self._typed = {}

    @property
    def nbytes(self):
        return self.numel * self.dtype.numpy.itemsize

    def typed(self, dtype):
        """The bytes as a 1-d array of `dtype` in native byte order (cached: views share it)."""
        array = self._typed.get(dtype)
        if array is None:
            if self.raw.nbytes % dtype.itemsize:
                raise ValueError(f"storage {self.key!r} holds {self.raw.nbytes} bytes, not a "
                                 f"whole number of {dtype} elements")
            array = self.raw.view(dtype)
            if self.big_endian and dtype.itemsize > 1:
                array = array.view(dtype.newbyteorder(">")).astype(dtype)
            self._typed[dtype] = array
        return array


class _Reader:
    """The names a pickle may use and what they build, for one file.

    Tensors are built in two steps: the pickle gives each Tensor (or Parameter) a placeholder
    of its shape and dtype and records where its data lies; :meth:`finish` then points it at a
    view of its storage, once the storages are read (after the pickle in the legacy format).
    """

    def __init__(self, name, big_endian=False):
        self.name = name
        self.big_endian = big_endian
        self.storages = {}
        self._pending = {}  # id(placeholder tensor) -> (tensor, where its data lies)
        self._tensors = []  # (tensor, where its data lies), in the order of the pickle
        self.allowed = self._allowed()

    def _allowed(self):
        allowed = {
            "collections.OrderedDict": OrderedDict,
            "torch._utils._rebuild_tensor": self._rebuild_tensor,
            "torch._utils._rebuild_tensor_v2": self._rebuild_tensor_v2,
            "torch._utils._rebuild_tensor_v3": self._rebuild_tensor_v3,
            "torch._utils._rebuild_parameter": self._rebuild_parameter,
            "torch._utils._rebuild_parameter_with_state": self._rebuild_parameter_with_state,
            "torch._tensor._rebuild_from_type_v2": self._rebuild_from_type_v2,
            "torch.Tensor": _TensorClass(parameter=False),
            "torch.nn.parameter.Parameter": _TensorClass(parameter=True),
            "torch.Size": _torch_size,
            "_codecs.encode": _encode_bytes,  # how protocol 2 pickles a bytes object
            "torch.storage.UntypedStorage": _StorageType(_UNTYPED),
            "torch.UntypedStorage": _StorageType(_UNTYPED),
        }
        for dtype in _DTYPES:
            allowed[f"torch.{dtype.name}"] = dtype
            if dtype.storage:
                allowed[f"torch.{dtype.storage}"] = _StorageType(dtype)
        self._rebuilders = {id(value) for key, value in allowed.items()
                            if key.startswith("torch._utils.")}
        return allowed

    def unpickler(self, file):
        """An Unpickler of `file` that builds tensors through this reader."""
        return Unpickler(file, self.name, self.allowed, self.persistent_load, self.build)

    # ----- what the pickle calls -----

    def build(self, obj, state):
        """BUILD: only attributes of an OrderedDict (a state dict's ``_metadata``)."""
        if type(obj) is not OrderedDict or not isinstance(state, dict) or not all(
                isinstance(key, str) and not key.startswith("__") for key in state):
            raise UnpicklingError(f"{self.name}: the pickle sets the state of a "
                                  f"{type(obj).__name__}, which cnn.load refuses")
        obj.__dict__.update(state)
        return obj

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise UnpicklingError(f"{self.name}: unknown persistent id {pid!r} (torch.save "
                                  "stores only storages)")
        _, storage_type, key, _location, numel = pid[:5]
        if len(pid) == 6 and pid[5] is not None:
            raise UnpicklingError(f"{self.name}: a storage view of the pre-1.0 legacy format, "
                                  "which cnn.load does not read; save it again with a newer "
                                  "torch")
        if (not isinstance(storage_type, _StorageType) or not isinstance(key, str)
                or not _is_count(numel)):
            raise UnpicklingError(f"{self.name}: a malformed storage reference {pid!r}")
        storage = self.storages.get(key)
        if storage is None:
            storage = self.storages[key] = _Storage(key, storage_type.dtype, numel,
                                                    self.big_endian)
        elif storage.dtype is not storage_type.dtype or storage.numel != numel:
            raise UnpicklingError(f"{self.name}: storage {key!r} is described twice, "
                                  "differently")
        return storage

    def _rebuild_tensor(self, storage, storage_offset, size, stride):
        return self._tensor(storage, storage.dtype, storage_offset, size, stride, False)

    def _rebuild_tensor_v2(self, storage, storage_offset, size, stride, requires_grad,
                           backward_hooks, metadata=None):
        return self._tensor(storage, storage.dtype, storage_offset, size, stride,
                            requires_grad)

    def _rebuild_tensor_v3(self, storage, storage_offset, size, stride, requires_grad,
                           backward_hooks, dtype, metadata=None):
        if not isinstance(dtype, _DType):
            raise UnpicklingError(f"{self.name}: a tensor of dtype {dtype!r}")
        return self._tensor(storage, dtype, storage_offset, size, stride, requires_grad)

    def _rebuild_parameter(self, data, requires_grad, backward_hooks):
        return self._parameter(data, requires_grad)

    def _rebuild_parameter_with_state(self, data, requires_grad, backward_hooks, state):
        _no_state(state, self.name)
        return self._parameter(data, requires_grad)

    def _rebuild_from_type_v2(self, func, new_type, args, state):
        if id(func) not in self._rebuilders or not isinstance(new_type, _TensorClass):
            raise UnpicklingError(f"{self.name}: a tensor of a class other than torch.Tensor "
                                  "and torch.nn.Parameter")
        _no_state(state, self.name)
        tensor = func(*args)
        return self._parameter(tensor, tensor.requires_grad) if new_type.parameter else tensor

    # ----- tensors -----

    def _tensor(self, storage, dtype, offset, size, stride, requires_grad):
        if not isinstance(storage, _Storage):
            raise UnpicklingError(f"{self.name}: a tensor without a storage")
        where = (storage, dtype, offset, _ints(size, "size", self.name),
                 _ints(stride, "stride", self.name))
        result = np.dtype(np.float32) if dtype.bfloat16 else dtype.numpy
        if result.kind == "c":
            raise UnpicklingError(f"{self.name}: a tensor of dtype {dtype!r}; cnn tensors hold "
                                  "bool, integer and floating-point numbers only")
        placeholder = np.broadcast_to(np.zeros((), result), where[3])
        tensor = Tensor(placeholder, requires_grad=bool(requires_grad) and result.kind == "f")
        self._pending[id(tensor)] = (tensor, where)
        self._tensors.append((tensor, where))
        return tensor

    def _parameter(self, data, requires_grad):
        pending = self._pending.get(id(data))
        if pending is None:
            raise UnpicklingError(f"{self.name}: a parameter whose data is not a tensor")
        parameter = Parameter(data._data, requires_grad=bool(requires_grad)
                              and data._data.dtype.kind == "f")
        self._pending[id(parameter)] = (parameter, pending[1])
        self._tensors.append((parameter, pending[1]))
        return parameter

    def finish(self):
        """Point every tensor at its data, once every storage has its bytes."""
        for tensor, (storage, dtype, offset, size, stride) in self._tensors:
            tensor._data = self._view(storage, dtype, offset, size, stride)
        self._pending.clear()
        self._tensors.clear()

    def _view(self, storage, dtype, offset, size, stride):
        array = storage.typed(dtype.numpy)
        if len(size) != len(stride) or not _is_count(offset):
            raise ValueError(f"{self.name}: a tensor with size {size}, stride {stride} and "
                             f"offset {offset!r}")
        last = offset + sum((n - 1) * s for n, s in zip(size, stride)) if all(size) else offset
        if (last >= len(array) and all(size)) or offset > len(array):
            raise ValueError(f"{self.name}: a tensor of size {size} (stride {stride}, offset "
                             f"{offset}) reaches past the end of its storage {storage.key!r} of "
                             f"{len(array)} elements (truncated or corrupted)")
        item = array.itemsize
        view = np.lib.stride_tricks.as_strided(array[offset:], size, [s * item for s in stride])
        if dtype.bfloat16:
            # bfloat16 is the upper half of a float32: shifting its bits up widens it exactly.
            view = (view.astype(np.uint32) << 16).view(np.float32)
        return view


def _is_count(value):
    return type(value) is int and value >= 0


def _ints(values, what, name):
    if not isinstance(values, tuple) or not all(map(_is_count, values)):
        raise UnpicklingError(f"{name}: a tensor whose {what} is {values!r}")
    return values


def _torch_size(values):
    return tuple(values)


def _encode_bytes(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise TypeError("_codecs.encode: only a str in latin1 makes bytes")
    return text.encode("latin-1")


def _no_state(state, name):
    # Python attributes set on a tensor (a dict, or a dict and the slots' values); a cnn Tensor
    # has no room for them.
    if any(state if isinstance(state, tuple) else (state,)):
        raise UnpicklingError(f"{name}: a tensor with Python attributes ({state!r}), which cnn "
                              "tensors cannot hold")


def is_torch_archive(archive):
    """Whether the zip `archive` is a torch.save file (it has a ``<prefix>/data.pkl``)."""
    return _prefix(archive) is not None


def _prefix(archive):
    for name in archive.namelist():
        folder, _, base = name.rpartition("/")
        if base == "data.pkl" and folder and "/" not in folder:
            return folder + "/"
    return None


def read_zip(archive, file, name):
    """The object a torch.save zip archive holds.

    Args:
        archive (zipfile.ZipFile): The open archive.
        file: The binary file it reads (its storages are read from it directly).
        name (str): How error messages name the file.

    Raises:
        ValueError: A refused global, a malformed pickle, a missing or damaged storage record;
            the message names the file.
    """
    prefix = _prefix(archive)
    name = f"{name} (a torch.save file)"
    byteorder = _record(archive, file, prefix + "byteorder", name, optional=True)
    if byteorder is not None and byteorder.tobytes() not in (b"little", b"big"):
        raise ValueError(f"{name}: unknown byte order {byteorder.tobytes()!r}")
    big_endian = byteorder is not None and byteorder.tobytes() == b"big"
    reader = _Reader(name, big_endian)
    pickle = _record(archive, file, prefix + "data.pkl", name)
    obj = reader.unpickler(io.BytesIO(pickle.tobytes())).load()
    for key, storage in reader.storages.items():
        raw = _record(archive, file, f"{prefix}data/{key}", name)
        if raw.nbytes != storage.nbytes:
            raise ValueError(f"{name}: storage {key!r} should hold {storage.nbytes} bytes, its "
                             f"record holds {raw.nbytes} (truncated or corrupted)")
        storage.raw = raw
    reader.finish()
    return obj


def _record(archive, file, member, name, optional=False):
    """The bytes of one record as a writable uint8 array, read straight into it if stored."""
    try:
        info = archive.getinfo(member)
    except KeyError:
        if optional:
            return None
        raise ValueError(f"{name}: a torch.save file without its record {member!r} (truncated "
                         "or corrupted)") from None
    if info.compress_type != zipfile.ZIP_STORED or info.flag_bits & 0x1:
        return np.frombuffer(bytearray(archive.read(info)), np.uint8)
    file.seek(info.header_offset)
    header = file.read(30)
    if len(header) != 30 or header[:4] != b"PK\x03\x04":
        raise ValueError(f"{name}: the zip header of record {member!r} is damaged")
    name_length, extra_length = struct.unpack("<HH", header[26:30])
    start = info.header_offset + 30 + name_length + extra_length
    if start + info.file_size > _size_of(file):
        raise ValueError(f"{name}: record {member!r} reaches past the end of the file "
                         "(truncated)")
    data = np.empty(info.file_size, np.uint8)
    file.seek(start)
    if file.readinto(data) != info.file_size:
        raise ValueError(f"{name}: record {member!r} is truncated")
    if zlib.crc32(data) != info.CRC:
        raise ValueError(f"{name}: record {member!r} fails its checksum (corrupted)")
    return data


def _size_of(file):
    position = file.tell()
    size = file.seek(0, 2)
    file.seek(position)
    return size


def read_legacy(file, name):
    """The object a torch.save file of the legacy (non-zip) format holds.

    Raises:
        ValueError: A pickle that torch.save did not write, a refused global, a malformed
            pickle, or storages that are missing or truncated; the message names the file.
    """
    plain = {}
    if Unpickler(file, name, plain).load() != _LEGACY_MAGIC:
        raise ValueError(f"{name}: a pickle file, but not one torch.save wrote (it lacks "
                         "torch's magic number); cnn.load reads pickles only in torch.save's "
                         "formats, with a restricted unpickler, since unpickling runs code")
    if Unpickler(file, name, plain).load() != _LEGACY_PROTOCOL:
        raise ValueError(f"{name}: an unknown version of torch.save's legacy format")
    name = f"{name} (a torch.save file of the legacy format)"
    system = Unpickler(file, name, plain).load()
    little = not isinstance(system, Mapping) or system.get("little_endian", True)
    reader = _Reader(name, big_endian=not little)
    obj = reader.unpickler(file).load()
    keys = Unpickler(file, name, plain).load()
    if (not isinstance(keys, list) or not all(isinstance(key, str) for key in keys)
            or sorted(keys) != sorted(reader.storages)):
        raise ValueError(f"{name}: the list of storages does not match the tensors (corrupted)")
    end = _size_of(file)
    for key in keys:
        storage = reader.storages[key]
        count = file.read(8)
        if len(count) != 8 or struct.unpack("<q" if little else ">q", count)[0] != storage.numel:
            raise ValueError(f"{name}: storage {key!r} is truncated or corrupted")
        if file.tell() + storage.nbytes > end:
            raise ValueError(f"{name}: storage {key!r} reaches past the end of the file "
                             "(truncated)")
        storage.raw = np.empty(storage.nbytes, np.uint8)
        if file.readinto(storage.raw) != storage.nbytes:
            raise ValueError(f"{name}: storage {key!r} is truncated")
    reader.finish()
    return obj


# ***** writing *****

def write(obj, file):
    """Write `obj` to the binary file object `file` in torch.save's zip format.

    Raises:
        TypeError: For a value torch.load(weights_only=True) could not read back (a set, a
            custom class, an array of strings or objects or of an unsigned type wider than 8
            bits), or a dict key that is not a string or an integer; the message gives its
            path. Nothing is written then.
    """
    storages = []
    pickle = dumps(_prepare(obj, (), storages, {}))
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        _write_record(archive, "archive/data.pkl", pickle)
        _write_record(archive, "archive/byteorder", b"little")
        for key, array in enumerate(storages):
            _write_record(archive, f"archive/data/{key}", array)
        _write_record(archive, "archive/version", b"3\n")


def _prepare(value, path, storages, keys):
    """`value` with its arrays replaced by the pickle's tensor calls (see :mod:`.pickler`)."""
    if isinstance(value, (Tensor, np.ndarray)):
        return _tensor_call(value._data if isinstance(value, Tensor) else value, path, storages,
                            keys)
    # Before the plain types: numpy.float64 and numpy.str_ are also float and str.
    if isinstance(value, np.generic):
        if value.dtype.kind not in "biufc":
            raise TypeError(f"save: cannot save a NumPy {value.dtype} scalar (at "
                            f"{show_path(path)}) in a torch.save file")
        return value.item()
    if value is None or type(value) in (bool, int, float, str):
        return value
    if isinstance(value, Mapping):
        result = OrderedDict() if isinstance(value, OrderedDict) else {}
        for key, item in value.items():
            check_key(key, path)
            result[key] = _prepare(item, path + (key,), storages, keys)
        return result
    if isinstance(value, (list, tuple)):
        items = [_prepare(item, path + (i,), storages, keys) for i, item in enumerate(value)]
        return tuple(items) if isinstance(value, tuple) else items
    raise TypeError(f"save: cannot save a {type(value).__name__} (at {show_path(path)}) in a "
                    "torch.save file: supported are dicts, lists, tuples, NumPy arrays and "
                    "scalars, Tensors, None, bool, int, float and str")


def _tensor_call(array, path, storages, keys):
    dtype = _BY_NUMPY.get(array.dtype.newbyteorder("="))
    if dtype is None:
        raise TypeError(f"save: cannot save an array of dtype {array.dtype} (at "
                        f"{show_path(path)}) in a torch.save file: torch.load(weights_only="
                        "True) reads float16/32/64, int8/16/32/64, uint8 and bool")
    key = keys.get(id(array))
    if key is None:
        key = keys[id(array)] = str(len(storages))
        storages.append(np.ascontiguousarray(array, dtype.numpy.newbyteorder("<")))
    storage = PersistentId(("storage", Global("torch", dtype.storage), key, "cpu", array.size))
    strides = tuple(int(np.prod(array.shape[i + 1:])) for i in range(array.ndim))
    return Call(Global("torch._utils", "_rebuild_tensor_v2"),
                (storage, 0, tuple(array.shape), strides, False,
                 Call(Global("collections", "OrderedDict"), ())))


def _write_record(archive, member, data):
    """One stored record whose data starts at a multiple of 64 bytes, as torch writes them."""
    info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
    info.compress_type = zipfile.ZIP_STORED
    if isinstance(data, np.ndarray):
        data = data.reshape(-1).view(np.uint8)
    info.file_size = len(data)
    # The padding is an extra field (id "FB", as torch's) in the local header.
    start = archive.fp.tell() + 30 + len(member.encode("utf-8")) + 4
    padding = -start % _ALIGNMENT
    info.extra = b"FB" + struct.pack("<H", padding) + b"\0" * padding
    with archive.open(info, mode="w") as record:
        record.write(data)

