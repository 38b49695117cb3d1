"""cnn's own checkpoint format: one NumPy ``.npz`` archive, without pickle.

* every array (NumPy array, Tensor, NumPy scalar) is a member of its own, named by its path in
  the saved structure (``"model/0.weight"``), so ``numpy.load`` can read a checkpoint too;
* the structure itself (dicts, lists, tuples, and the Python numbers, strings, bools and Nones
  inside them) is JSON, stored as a ``uint8`` array member named ``__cnn_structure__``.

Nothing is pickled when saving and nothing is unpickled when loading (every member is read with
``allow_pickle=False``).
"""
import json
import math
import zipfile
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
from numpy.lib import format as npy_format

from ..tensor import Tensor
from .files import MAX_DEPTH, check_key, npy_header, show_path

STRUCTURE_ENTRY = "__cnn_structure__"
FORMAT_NAME = "cnn.save"
FORMAT_VERSION = 1

_PLAIN_TYPES = (type(None), bool, int, float, str)


# ***** save *****

def write(obj, file):
    """Write `obj` to the binary file object `file` as a cnn checkpoint (see :func:`cnn.save`).

    Raises:
        TypeError: For a value of an unsupported type (an object array, a set, a custom class),
            or a dict key that is not a string or an integer; the message gives its path.
            Nothing is written then.
    """
    arrays = {}
    root = _encode(obj, (), arrays)
    structure = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root})
    _write_archive(file, structure, arrays)


def _encode(value, path, arrays):
    """The JSON node for `value`; its arrays go into `arrays` under unique member names."""
    if isinstance(value, Tensor):
        return {"tensor": _add_array(value._data, path, arrays)}
    if isinstance(value, np.ndarray):
        return {"array": _add_array(value, path, arrays)}
    # Before the plain types: numpy.float64 and numpy.str_ are also float and str.
    if isinstance(value, np.generic):
        return {"scalar": _add_array(np.asarray(value), path, arrays)}
    if isinstance(value, _PLAIN_TYPES):
        return value
    if isinstance(value, Mapping):
        items = []
        for key, item in value.items():
            check_key(key, path)
            items.append([key, _encode(item, path + (key,), arrays)])
        node = {"dict": items}
        if isinstance(value, OrderedDict):
            node["ordered"] = True
        return node
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, path + (i,), arrays) for i, item in enumerate(value)]}
    raise TypeError(f"save: cannot save a {type(value).__name__} (at {show_path(path)}): "
                    "supported are dicts, lists, tuples, NumPy arrays and scalars, Tensors, None, "
                    "bool, int, float and str")


def _add_array(array, path, arrays):
    if array.dtype.hasobject:
        raise TypeError(f"save: cannot save an array of dtype {array.dtype} (at "
                        f"{show_path(path)}): object arrays need pickle, which cnn checkpoints "
                        "never use")
    name = "/".join(str(part) for part in path) or "value"
    # Keys containing "/" could make two paths collide; the structure records the final name.
    unique, suffix = name, 1
    while unique in arrays or unique == STRUCTURE_ENTRY:
        unique, suffix = f"{name}~{suffix}", suffix + 1
    arrays[unique] = array
    return unique


def _write_archive(file, structure, arrays):
    """Write the structure and the arrays as the ``.npy`` members of a zip, as ``np.savez``."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED,
                         allowZip64=True) as archive:
        _write_member(archive, STRUCTURE_ENTRY, np.frombuffer(structure.encode(), np.uint8))
        for name, array in arrays.items():
            _write_member(archive, name, array)


def _write_member(archive, name, array):
    # force_zip64: the member's size is not known before it is written (np.savez does the same).
    with archive.open(name + ".npy", mode="w", force_zip64=True) as member:
        npy_format.write_array(member, array, allow_pickle=False)


# ***** load *****

def read(archive, name):
    """The object a cnn checkpoint holds, or the dict of arrays of a plain ``numpy.savez`` file.

    Args:
        archive (zipfile.ZipFile): The open archive.
        name (str): How error messages name the file.

    Raises:
        ValueError: A member that is not a ``.npy`` array or holds pickled objects, a damaged
            member, or a malformed structure; the message names the file.
    """
    entries = _read_members(archive, name)
    if STRUCTURE_ENTRY not in entries:
        return dict(entries)
    structure = _read_structure(entries.pop(STRUCTURE_ENTRY), name)
    return _Decoder(entries, name).decode(structure["root"])


def _read_members(archive, name):
    """Every ``.npy`` member of the archive, by name without the suffix, in archive order."""
    entries = {}
    for info in archive.infolist():
        if not info.filename.endswith(".npy"):
            raise ValueError(f"{name}: a zip archive but neither a NumPy .npz nor a torch.save "
                             f"file: member {info.filename!r} is not a .npy array")
        with archive.open(info) as member:
            array = _read_array(member, name, info)
            # Reading to the end makes zipfile verify the member's CRC.
            if member.read(1):
                raise ValueError(f"{name}: member {info.filename!r} has data after its array "
                                 "(corrupted)")
        entries[info.filename[:-len(".npy")]] = array
    return entries


def _read_array(member, name, info):
    member_name = info.filename
    # A damaged header could declare any size: compare it with the member's before allocating.
    header = npy_header(member)
    if header is not None and not header[2].hasobject:
        shape, _, dtype = header
        declared = math.prod(shape) * dtype.itemsize
        held = info.file_size - member.tell()
        if declared != held:
            raise ValueError(f"{name}: member {member_name!r} declares {declared} bytes of data "
                             f"(shape {shape}, dtype {dtype}) but holds {held} (truncated or "
                             "corrupted)")
    member.seek(0)
    try:
        return npy_format.read_array(member, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise ValueError(f"{name}: member {member_name!r} holds pickled Python objects; cnn "
                             f"checkpoints never contain them and cnn.load never unpickles, "
                             f"since unpickling runs code") from None
        raise ValueError(f"{name}: member {member_name!r} is not a valid .npy array "
                         f"({error})") from None


def _read_structure(array, name):
    try:
        if array.dtype != np.uint8 or array.ndim != 1:
            raise ValueError(f"expected a 1-d uint8 array, got {array.dtype} {array.shape}")
        try:
            structure = json.loads(array.tobytes().decode("utf-8"))
        except RecursionError:
            raise ValueError(f"dicts, lists and tuples nested more than {MAX_DEPTH} levels "
                             "deep (a damaged or hostile file?)") from None
        if not isinstance(structure, dict) or structure.get("format") != FORMAT_NAME:
            raise ValueError("it does not describe a cnn.save structure")
        version = structure.get("version")
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError(f"invalid format version {version!r}")
        if "root" not in structure:
            raise ValueError("it has no root entry")
    except (UnicodeDecodeError, ValueError) as error:
        raise ValueError(f"{name}: the {STRUCTURE_ENTRY} member is malformed: {error}") from None
    if version > FORMAT_VERSION:
        raise ValueError(f"{name}: written in checkpoint format version {version} by a newer "
                         f"cnn; this one reads up to version {FORMAT_VERSION}: upgrade cnn")
    return structure


class _Decoder:
    """Turns the JSON structure back into objects, checking every node."""

    def __init__(self, entries, name):
        self.entries = entries
        self.name = name

    def decode(self, node, depth=1):
        if isinstance(node, _PLAIN_TYPES):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or not node:
            return self._fail(f"unexpected node {node!r}")
        kind = next(iter(node))
        if kind in ("dict", "list", "tuple") and depth > MAX_DEPTH:
            return self._fail(f"dicts, lists and tuples nested more than {MAX_DEPTH} levels "
                              "deep (a damaged or hostile file?)")
        if kind == "dict":
            return self._mapping(node, depth)
        if kind in ("list", "tuple"):
            items = node[kind]
            if not isinstance(items, list):
                return self._fail(f"a {kind} node must hold a list, got {items!r}")
            decoded = [self.decode(item, depth + 1) for item in items]
            return decoded if kind == "list" else tuple(decoded)
        if kind in ("array", "tensor", "scalar"):
            array = self._array(node[kind])
            if kind == "tensor":
                return Tensor(array)
            return array[()] if kind == "scalar" else array
        return self._fail(f"unknown node kind {kind!r}")

    def _mapping(self, node, depth):
        items = node["dict"]
        if not isinstance(items, list):
            return self._fail(f"a dict node must hold a list of pairs, got {items!r}")
        result = OrderedDict() if node.get("ordered") else {}
        for item in items:
            if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                    or not isinstance(item[0], (str, int))):
                return self._fail(f"a dict item must be a [key, value] pair, got {item!r}")
            result[item[0]] = self.decode(item[1], depth + 1)
        return result

    def _array(self, member):
        if not isinstance(member, str) or member not in self.entries:
            return self._fail(f"it refers to a missing array member {member!r}")
        return self.entries[member]

    def _fail(self, problem):
        raise ValueError(f"{self.name}: the {STRUCTURE_ENTRY} member is malformed: {problem}")
