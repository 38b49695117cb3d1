"""Checkpoints without pickle: ``cnn.save(obj, path)`` and ``cnn.load(path)``, and atomic writes.

A checkpoint is one NumPy ``.npz`` archive (a zip of ``.npy`` members):

* every array (NumPy array, Tensor, NumPy scalar) is a member of its own, named by its path in
  the saved structure (``"model/0.weight"``), so ``numpy.load`` can read a checkpoint too;
* the structure itself (dicts, lists, tuples, and the Python numbers, strings, bools and Nones
  inside them) is JSON, stored as a ``uint8`` array member named ``__cnn_structure__``.

Nothing is pickled when saving and nothing is unpickled when loading (every member is read with
``allow_pickle=False``), so loading a checkpoint cannot run code, unlike ``torch.load`` with
``weights_only=False`` or ``numpy.load`` with ``allow_pickle=True``.

Writes go to a temporary file in the destination's folder that replaces the destination only
once it is complete and on disk (:func:`atomic_write`), so an interrupted save leaves the
previous checkpoint intact.
"""
import contextlib
import errno
import json
import math
import os
import tempfile
import tokenize
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Mapping

import numpy as np
from numpy.lib import format as npy_format

from .tensor import Tensor

__all__ = ["save", "load", "atomic_write"]

STRUCTURE_ENTRY = "__cnn_structure__"
FORMAT_NAME = "cnn.save"
FORMAT_VERSION = 1

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
_NPY_MAGIC = b"\x93NUMPY"
_PLAIN_TYPES = (type(None), bool, int, float, str)


# ***** atomic writes *****

@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open a file for writing that replaces `path` only when the ``with`` block succeeds.

    The data goes to a temporary file created in `path`'s folder (so the final rename stays on
    one filesystem, where ``os.replace`` is atomic). On a clean exit the file is flushed, synced
    to disk and renamed over `path`; on any exception (including ``KeyboardInterrupt``) the
    temporary file is removed and `path` is left exactly as it was. The new file gets the
    permissions an ordinary ``open(path, "w")`` would give it.

    Args:
        path (str or os.PathLike): The destination file; its folder must exist.
        mode (str): ``"wb"`` or ``"w"``.
        encoding (str, optional): For text mode.

    Yields:
        The open file object.

    Raises:
        FileNotFoundError: If `path`'s folder does not exist.
        ValueError: If `mode` is not a write mode.

    Example::

        with atomic_write("results.json", "w") as f:
            json.dump(results, f)
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"mode: expected 'w' or 'wb', got {mode!r}")
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path!r}: its folder does not exist",
                                folder)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.",
                                     suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding) as file:
            yield file
            file.flush()
            os.fsync(file.fileno())
        # mkstemp creates the file readable by its owner only.
        os.chmod(temporary, _new_file_mode(path))
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _sync_folder(folder)


def _new_file_mode(path):
    """The mode `path` has now, or the one a newly created file would get under the umask."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def _sync_folder(folder):
    # Makes the rename itself durable; POSIX only, and a failure here loses nothing.
    if not hasattr(os, "O_DIRECTORY"):
        return
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


# ***** save *****

def save(obj, f):
    """Save a state dict (or any nesting of the supported values) to one ``.npz`` file.

    Supported values: dicts (and OrderedDicts) with string or integer keys, lists, tuples,
    NumPy arrays of any non-object dtype, NumPy scalars, Tensors (their arrays are saved; they
    load back as Tensors that do not require grad), and Python ``None``, ``bool``, ``int``,
    ``float`` and ``str``. :func:`load` gives back the same structure with the same types and
    dtypes.

    Args:
        obj: The object, typically ``model.state_dict()`` or a dict of several state dicts.
        f (str, os.PathLike or binary file): Where to write. A path is written atomically
            (see :func:`atomic_write`); the usual suffix is ``.npz`` (none is added).

    Raises:
        TypeError: For a value of an unsupported type (an object array, a set, a custom class),
            or a dict key that is not a string or an integer; the message gives its path.
            Nothing is written then.

    Example::

        cnn.save({"model": model.state_dict(), "epoch": 3}, "checkpoint.npz")
    """
    arrays = {}
    root = _encode(obj, (), arrays)
    structure = json.dumps({"format": FORMAT_NAME, "version": FORMAT_VERSION, "root": root})
    if hasattr(f, "write"):
        _write_archive(f, structure, arrays)
    else:
        with atomic_write(f) as file:
            _write_archive(file, structure, arrays)


def _encode(value, path, arrays):
    """The JSON node for `value`; its arrays go into `arrays` under unique member names."""
    if isinstance(value, Tensor):
        return {"tensor": _add_array(value.data, path, arrays)}
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
            if not isinstance(key, (str, int)) or isinstance(key, bool):
                raise TypeError(f"save: dict keys must be strings or integers, got "
                                f"{type(key).__name__} {key!r} at {_show(path)}")
            items.append([key, _encode(item, path + (key,), arrays)])
        node = {"dict": items}
        if isinstance(value, OrderedDict):
            node["ordered"] = True
        return node
    if isinstance(value, (list, tuple)):
        kind = "tuple" if isinstance(value, tuple) else "list"
        return {kind: [_encode(item, path + (i,), arrays) for i, item in enumerate(value)]}
    raise TypeError(f"save: cannot save a {type(value).__name__} (at {_show(path)}): supported "
                    "are dicts, lists, tuples, NumPy arrays and scalars, Tensors, None, bool, "
                    "int, float and str")


def _add_array(array, path, arrays):
    if array.dtype.hasobject:
        raise TypeError(f"save: cannot save an array of dtype {array.dtype} (at {_show(path)}): "
                        "object arrays need pickle, which cnn checkpoints never use")
    name = "/".join(str(part) for part in path) or "value"
    # Keys containing "/" could make two paths collide; the structure records the final name.
    unique, suffix = name, 1
    while unique in arrays or unique == STRUCTURE_ENTRY:
        unique, suffix = f"{name}~{suffix}", suffix + 1
    arrays[unique] = array
    return unique


def _show(path):
    return "the top level" if not path else "[" + "][".join(repr(part) for part in path) + "]"


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

def load(f):
    """Load what :func:`save` wrote, without unpickling anything.

    A ``.npz`` written by ``numpy.savez`` (without object arrays) also loads: it gives a dict of
    its arrays, in archive order (for example weights exported from PyTorch with
    ``np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()})``).

    Args:
        f (str, os.PathLike or binary file): The checkpoint.

    Returns:
        The saved object: the same nesting of dicts, lists and tuples, NumPy arrays and scalars
        with their dtypes, Tensors, and plain Python values.

    Raises:
        OSError: If the file cannot be opened (FileNotFoundError when it does not exist).
        ValueError: If the file is not a checkpoint: empty, truncated or corrupted, a pickle, a
            single ``.npy`` array, an archive holding pickled objects, or a malformed structure.
            The message names the file and the problem.
    """
    name = _file_name(f)
    with _opened(f) as file:
        kind = _sniff(file)
        if kind != "npz":
            raise ValueError(f"{name}: {_FOREIGN[kind]}")
        entries = _read_members(file, name)
    if STRUCTURE_ENTRY not in entries:
        return dict(entries)
    structure = _read_structure(entries.pop(STRUCTURE_ENTRY), name)
    return _Decoder(entries, name).decode(structure["root"])


def _file_name(f):
    if hasattr(f, "read"):
        return repr(getattr(f, "name", "<file object>"))
    return repr(os.fspath(f))


@contextlib.contextmanager
def _opened(f):
    if hasattr(f, "read"):
        yield f
    else:
        with open(f, "rb") as file:
            yield file


def _sniff(file):
    """What kind of file this is, judged by its first bytes (the position is restored).

    Returns:
        str: ``"npz"``, ``"npy"``, ``"npy-objects"`` (a ``.npy`` of pickled Python objects, as
        the original library's checkpoints), ``"pickle"``, ``"empty"`` or ``"unknown"``.
    """
    start = file.tell()
    head = file.read(len(_NPY_MAGIC))
    try:
        if not head:
            return "empty"
        if head[:4] in _ZIP_MAGIC:
            return "npz"
        if head == _NPY_MAGIC:
            file.seek(start)
            header = _npy_header(file)
            return "npy-objects" if header is not None and header[2].hasobject else "npy"
        # Pickle protocols 2 and later start with PROTO; torch.save's legacy format is one.
        if head[0] == 0x80 and 2 <= head[1] <= 5:
            return "pickle"
        return "unknown"
    finally:
        file.seek(start)


def _npy_header(file):
    """(shape, fortran_order, dtype) from a ``.npy`` header, or None when it cannot be read."""
    try:
        major, _ = npy_format.read_magic(file)
        read_header = (npy_format.read_array_header_1_0 if major == 1
                       else npy_format.read_array_header_2_0)
        return read_header(file)
    # A damaged header fails to parse as a Python literal in several ways.
    except (ValueError, EOFError, SyntaxError, tokenize.TokenError):
        return None


_FOREIGN = {
    "empty": "the file is empty, not a cnn checkpoint",
    "npy": "a single NumPy array (.npy), not a cnn checkpoint (an .npz archive written by "
           "cnn.save); read it with numpy.load",
    "npy-objects": "a .npy file of pickled Python objects (the original library's checkpoint "
                   "format), not a cnn checkpoint; cnn.load never unpickles, since unpickling "
                   "runs code. For a trusted file from the original library use "
                   "model.load_model(path, allow_pickle=True)",
    "pickle": "a pickle file, not a cnn checkpoint; cnn.load never unpickles, since unpickling "
              "runs code",
    "unknown": "not a cnn checkpoint (an .npz archive written by cnn.save): the file does not "
               "start like a zip archive",
}


def _read_members(file, name):
    """Every ``.npy`` member of the archive, by name without the suffix, in archive order."""
    entries = {}
    try:
        with zipfile.ZipFile(file) as archive:
            for info in archive.infolist():
                if not info.filename.endswith(".npy"):
                    raise ValueError(f"{name}: a zip archive but not a NumPy .npz: member "
                                     f"{info.filename!r} is not a .npy array"
                                     + _torch_hint(info.filename))
                with archive.open(info) as member:
                    array = _read_array(member, name, info)
                    # Reading to the end makes zipfile verify the member's CRC.
                    if member.read(1):
                        raise ValueError(f"{name}: member {info.filename!r} has data after its "
                                         f"array (corrupted)")
                entries[info.filename[:-len(".npy")]] = array
    # zlib.error: a corrupted compressed member (np.savez_compressed); NotImplementedError and
    # RuntimeError: compression methods or encryption zipfile does not support; OSError: a seek
    # to an offset a damaged directory gives; UnicodeDecodeError: a damaged member name.
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError,
            RuntimeError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{name}: not a readable .npz archive, truncated or corrupted "
                         f"({error})") from None
    return entries


def _torch_hint(member):
    if member.endswith("data.pkl"):
        return (" (it looks like a torch.save file, which needs pickle; export the weights "
                "with numpy.savez(path, **{k: v.numpy() for k, v in state_dict.items()}))")
    return ""


def _read_array(member, name, info):
    member_name = info.filename
    # A damaged header could declare any size: compare it with the member's before allocating.
    header = _npy_header(member)
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
        structure = json.loads(array.tobytes().decode("utf-8"))
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

    def decode(self, node):
        if isinstance(node, _PLAIN_TYPES):
            return node
        if isinstance(node, list) or not isinstance(node, dict) or not node:
            return self._fail(f"unexpected node {node!r}")
        kind = next(iter(node))
        if kind == "dict":
            return self._mapping(node)
        if kind in ("list", "tuple"):
            items = node[kind]
            if not isinstance(items, list):
                return self._fail(f"a {kind} node must hold a list, got {items!r}")
            decoded = [self.decode(item) for item in items]
            return decoded if kind == "list" else tuple(decoded)
        if kind in ("array", "tensor", "scalar"):
            array = self._array(node[kind])
            if kind == "tensor":
                return Tensor(array)
            return array[()] if kind == "scalar" else array
        return self._fail(f"unknown node kind {kind!r}")

    def _mapping(self, node):
        items = node["dict"]
        if not isinstance(items, list):
            return self._fail(f"a dict node must hold a list of pairs, got {items!r}")
        result = OrderedDict() if node.get("ordered") else {}
        for item in items:
            if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                    or not isinstance(item[0], (str, int))):
                return self._fail(f"a dict item must be a [key, value] pair, got {item!r}")
            result[item[0]] = self.decode(item[1])
        return result

    def _array(self, member):
        if not isinstance(member, str) or member not in self.entries:
            return self._fail(f"it refers to a missing array member {member!r}")
        return self.entries[member]

    def _fail(self, problem):
        raise ValueError(f"{self.name}: the {STRUCTURE_ENTRY} member is malformed: {problem}")
