"""What kind of file a checkpoint is, judged by its first bytes, and how errors name it."""
import contextlib
import os
import tokenize
import zipfile
import zlib

from numpy.lib import format as npy_format

from .._memory import check_fits

# How deeply dicts, lists and tuples may nest in a checkpoint: a state dict nests two or three
# levels; a file nested thousands deep (or holding a list that contains itself) would make
# every walk over what cnn.load returns fail with RecursionError, so both formats refuse it.
MAX_DEPTH = 100

_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or an empty archive
_NPY_MAGIC = b"\x93NUMPY"


def file_name(f):
    """How error messages name `f` (a path or a file object): its repr."""
    if hasattr(f, "read"):
        return repr(getattr(f, "name", "<file object>"))
    return repr(os.fspath(f))


@contextlib.contextmanager
def opened(f):
    """`f` itself if it is a file object, else the file at path `f` opened for reading."""
    if hasattr(f, "read"):
        yield f
    else:
        with open(f, "rb") as file:
            yield file


def show_path(path):
    """Where a value sits in a saved structure, for error messages: ``['model']['0.weight']``."""
    return "the top level" if not path else "[" + "][".join(repr(part) for part in path) + "]"


def check_key(key, path):
    """Refuse a dict key other than a string or an integer (what both formats can store)."""
    if not isinstance(key, (str, int)) or isinstance(key, bool):
        raise TypeError(f"save: dict keys must be strings or integers, got "
                        f"{type(key).__name__} {key!r} at {show_path(path)}")


def sniff(file):
    """What kind of file this is, judged by its first bytes (the position is restored).

    Returns:
        str: ``"zip"`` (an ``.npz`` or a ``torch.save`` archive), ``"npy"``, ``"npy-objects"``
        (a ``.npy`` of pickled Python objects, as the original library's checkpoints),
        ``"pickle"`` (protocol 2 or later, as torch.save's legacy format), ``"empty"`` or
        ``"unknown"``.
    """
    start = file.tell()
    head = file.read(len(_NPY_MAGIC))
    try:
        if not head:
            return "empty"
        if head[:4] in _ZIP_MAGIC:
            return "zip"
        if head == _NPY_MAGIC:
            file.seek(start)
            header = npy_header(file)
            return "npy-objects" if header is not None and header[2].hasobject else "npy"
        # Pickle protocols 2 and later start with PROTO.
        if len(head) > 1 and head[0] == 0x80 and 2 <= head[1] <= 5:
            return "pickle"
        return "unknown"
    finally:
        file.seek(start)


def npy_header(file):
    """(shape, fortran_order, dtype) from a ``.npy`` header, or None when it cannot be read."""
    try:
        major, _ = npy_format.read_magic(file)
        read_header = (npy_format.read_array_header_1_0 if major == 1
                       else npy_format.read_array_header_2_0)
        return read_header(file)
    # A damaged header fails to parse as a Python literal in several ways.
    except (ValueError, EOFError, SyntaxError, tokenize.TokenError):
        return None


FOREIGN = {
    "empty": "the file is empty, not a checkpoint",
    "npy": "a single NumPy array (.npy), not a checkpoint (an .npz archive written by cnn.save, "
           "or a torch.save file); read it with numpy.load",
    "npy-objects": "a .npy file of pickled Python objects (the original library's checkpoint "
                   "format), not a cnn checkpoint; cnn.load never runs a general unpickler, "
                   "since unpickling runs code. For a trusted file from the original library "
                   "use model.load_model(path, allow_pickle=True)",
    "unknown": "not a cnn checkpoint (an .npz archive written by cnn.save) nor a torch.save "
               "file: it starts like neither a zip archive nor a pickle",
}


@contextlib.contextmanager
def zip_errors(name):
    """Turn the ways a damaged zip archive fails into one ValueError naming the file."""
    try:
        yield
    # zlib.error: a corrupted compressed member (np.savez_compressed); NotImplementedError and
    # RuntimeError: compression methods or encryption zipfile does not support; OSError: a seek
    # to an offset a damaged directory gives; UnicodeDecodeError: a damaged member name.
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, zlib.error, NotImplementedError,
            RuntimeError, OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{name}: not a readable zip archive (.npz or torch.save), truncated "
                         f"or corrupted ({error})") from None


def check_depth(obj, name):
    """Raise ValueError if dicts, lists and tuples nest in `obj` deeper than MAX_DEPTH (or a
    container holds itself). Iterative: any depth is measured without recursion.

    Args:
        obj: A loaded (or to be saved) structure.
        name (str): How the message names it (the file, or ``"save"``).
    """
    stack = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, dict):
            children = value.values()
        elif isinstance(value, (list, tuple)):
            children = value
        else:
            continue
        if depth > MAX_DEPTH:
            raise ValueError(f"{name}: dicts, lists and tuples nested more than {MAX_DEPTH} "
                             "levels deep (or a container that holds itself): cnn checkpoints "
                             "nest a few levels; a damaged or hostile file?")
        stack.extend((child, depth + 1) for child in children)


def check_unpacked_size(archive, name):
    """Raise ValueError if the zip `archive`'s members declare more bytes than the machine's
    memory (a zip bomb, or a damaged directory), before any is inflated."""
    check_fits(sum(info.file_size for info in archive.infolist()),
               f"{name}: the zip archive's directory")
