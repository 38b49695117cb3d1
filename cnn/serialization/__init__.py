"""Checkpoints: ``cnn.save(obj, path)`` and ``cnn.load(path)``, in two formats, and atomic writes.

* cnn's own format (the default): one NumPy ``.npz`` archive, the arrays as ``.npy`` members
  and the structure as JSON; nothing is pickled (:mod:`.npz`).
* PyTorch's (``.pt``/``.pth``, or ``format="pt"``): the zip archive ``torch.save`` writes,
  which ``torch.load(path, weights_only=True)`` reads; ``cnn.load`` reads it, and torch's
  legacy non-zip format, without torch, through a restricted unpickler that builds tensors and
  plain values and refuses everything else (:mod:`.pt`).

Neither kind of load can run code stored in a file, unlike ``torch.load`` with
``weights_only=False`` or ``numpy.load`` with ``allow_pickle=True``.

Writes to a path go to a temporary file in the destination's folder that replaces the
destination only once it is complete and on disk (:func:`atomic_write`), so an interrupted save
leaves the previous checkpoint intact.
"""
import os
import zipfile

from . import npz, pt
from .atomic import atomic_write, remove_stale_temporaries
from .files import (FOREIGN, MAX_DEPTH, check_depth, check_unpacked_size, file_name, opened,
                    sniff, zip_errors)

__all__ = ["save", "load", "atomic_write", "remove_stale_temporaries", "MAX_DEPTH"]

# What compat's load_model and the tests call it by.
_sniff = sniff

_FORMATS = ("npz", "pt")
_TORCH_SUFFIXES = (".pt", ".pth")


def save(obj, f, format=None):
    """Save a state dict (or any nesting of the supported values) to one file.

    Supported values: dicts (and OrderedDicts) with string or integer keys, lists, tuples,
    NumPy arrays, NumPy scalars, Tensors (their arrays are saved; they load back as Tensors that
    do not require grad), and Python ``None``, ``bool``, ``int``, ``float`` and ``str``.

    * ``format="npz"`` (the default): cnn's format. :func:`load` gives back the same structure
      with the same types and dtypes (arrays of any non-object dtype).
    * ``format="pt"`` (the default for a name ending in ``.pt`` or ``.pth``): PyTorch's zip
      format, which ``torch.load(f, weights_only=True)`` reads: arrays and Tensors become torch
      tensors (dtypes float16/32/64, int8/16/32/64, uint8, bool), NumPy scalars
      Python numbers. :func:`load` gives the arrays back as Tensors.

    Dicts, lists and tuples may nest up to ``MAX_DEPTH`` (100) levels.

    Args:
        obj: The object, typically ``model.state_dict()`` or a dict of several state dicts.
        f (str, os.PathLike or binary file): Where to write. A path is written atomically
            (see :func:`atomic_write`); no suffix is added. A path that is a symbolic link
            is written through: the file it points to is replaced, the link stays (as
            ``torch.save`` and ``open(path, "w")`` do).
        format (str, optional): ``"npz"`` or ``"pt"``; by default ``"pt"`` for a path (or a
            file object's ``name``) ending in ``.pt`` or ``.pth``, else ``"npz"``.

    Raises:
        TypeError: For a value the format cannot hold (an object array, a set, a custom class;
            in ``"pt"`` also strings arrays and unsigned integers wider than 8 bits), or a dict
            key that is not a string or an integer; the message gives its path. Nothing is
            written then.
        ValueError: If `format` is not one of the two, or `obj` nests deeper than
            ``MAX_DEPTH`` (or holds itself).

    Example::

        cnn.save({"model": model.state_dict(), "epoch": 3}, "checkpoint.npz")
        cnn.save(model.state_dict(), "model.pt")          # torch.load reads it
    """
    write = pt.write if _format_of(f, format) == "pt" else npz.write
    check_depth(obj, "save")
    if hasattr(f, "write"):
        write(obj, f)
    else:
        with atomic_write(f) as file:
            write(obj, file)


def _format_of(f, format):
    if format is not None:
        if format not in _FORMATS:
            raise ValueError(f"format: expected 'npz' or 'pt', got {format!r}")
        return format
    path = getattr(f, "name", None) if hasattr(f, "write") else os.fspath(f)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if isinstance(path, str) and path.lower().endswith(_TORCH_SUFFIXES):
        return "pt"
    return "npz"


def load(f, map_location=None, weights_only=True):
    """Load a checkpoint that :func:`save` or ``torch.save`` wrote, without running its code.

    Reads, by the file's content (not its name):

    * cnn's ``.npz`` format: the saved structure, with the same types and dtypes; a ``.npz``
      written by ``numpy.savez`` (without object arrays) gives a dict of its arrays, in archive
      order;
    * ``torch.save``'s zip format and its legacy format: what ``torch.load(f,
      weights_only=True)`` gives, with :class:`cnn.Tensor` (``cnn.nn.Parameter`` for saved
      parameters) in place of torch tensors. Their arrays are views of the storages read from
      the file (no copy; tensors that shared a storage share memory), except bfloat16, which
      NumPy lacks and which is widened to float32 (exactly), and files from big-endian
      machines, which are byte-swapped. The pickle inside is read by a restricted unpickler
      that admits only tensors, their storages and dtypes, ``OrderedDict`` and plain values:
      any other global is refused with an error naming it, and nothing is imported or called.

    Args:
        f (str, os.PathLike or binary file): The checkpoint.
        map_location: Accepted for compatibility with ``torch.load``: None, ``"cpu"``,
            ``torch.device("cpu")`` or a dict mapping locations to ``"cpu"``. Tensors always
            load into main memory, whatever device they were saved from.
        weights_only (bool): Accepted for compatibility: True (or None) is the only way cnn
            loads.

    Returns:
        The saved object: the same nesting of dicts, lists and tuples, arrays (NumPy arrays
        and scalars, Tensors) and plain Python values.

    Raises:
        OSError: If the file cannot be opened (FileNotFoundError when it does not exist).
        ValueError: If the file is not a checkpoint (empty, truncated or corrupted, a pickle
            torch.save did not write, a single ``.npy`` array, an archive holding pickled
            objects, a malformed structure, dicts and lists nested deeper than ``MAX_DEPTH``,
            members that declare more bytes than the machine's memory), or its pickle names a
            global that is refused. The message names the file and the problem. Also for a
            `map_location` other than the CPU, or ``weights_only=False``.

    Example::

        state = cnn.load("resnet18.pth", map_location="cpu")   # written by torch.save
        model.load_state_dict(state)
    """
    _check_map_location(map_location)
    if weights_only is not None and weights_only is not True:
        raise ValueError(f"weights_only: cnn.load loads weights only (a restricted unpickler "
                         f"that never runs code from the file), got {weights_only!r}")
    name = file_name(f)
    with opened(f) as file:
        kind = sniff(file)
        if kind == "zip":
            with zip_errors(name), zipfile.ZipFile(file) as archive:
                check_unpacked_size(archive, name)
                if pt.is_torch_archive(archive):
                    return _checked(pt.read_zip(archive, file, name), name)
                return npz.read(archive, name)
        if kind == "pickle":
            return _checked(pt.read_legacy(file, name), name)
        raise ValueError(f"{name}: {FOREIGN[kind]}")


def _checked(obj, name):
    """`obj`, unpickled from `name`, once its nesting is known to be within MAX_DEPTH (cnn's
    own format checks that while decoding)."""
    check_depth(obj, name)
    return obj


def _check_map_location(map_location):
    locations = map_location.values() if isinstance(map_location, dict) else [map_location]
    for location in locations:
        if location is None or str(location) == "cpu":
            continue
        if callable(location):
            raise TypeError("map_location: cnn cannot call a function on torch storages; pass "
                            "map_location='cpu' (or leave it out): tensors always load into "
                            "main memory")
        raise ValueError(f"map_location: cnn keeps every tensor in main memory and has no other "
                         f"device; expected None or 'cpu', got {location!r}")
