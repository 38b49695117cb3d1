"""Reading pickled data files without running their code.

Unpickling can call any importable function, so a pickle from an untrusted source can run
anything. Datasets distributed as pickles (CIFAR's Python version) hold only dicts, lists,
bytes, strings, numbers and NumPy arrays; :func:`load` admits exactly those and refuses any
other global with an error naming the file.
"""
import codecs
import pickle

import numpy as np

_core = getattr(np, "_core", None) or np.core  # numpy >= 2 moved it; pickles name either


def _latin1_bytes(text, encoding):
    """What Python 3 writes into protocol-2 pickles for bytes: ``_codecs.encode(text,
    'latin1')``; only that encoding is admitted."""
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"refused _codecs.encode with encoding {encoding!r}")
    return codecs.encode(text, "latin1")


def _allowed():
    globals_ = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype,
                ("_codecs", "encode"): _latin1_bytes}
    for package in ("numpy.core", "numpy._core"):
        globals_[(f"{package}.multiarray", "_reconstruct")] = _core.multiarray._reconstruct
        globals_[(f"{package}.multiarray", "scalar")] = _core.multiarray.scalar
        if hasattr(_core.numeric, "_frombuffer"):
            globals_[(f"{package}.numeric", "_frombuffer")] = _core.numeric._frombuffer
    return globals_


class _RestrictedUnpickler(pickle.Unpickler):
    allowed = _allowed()

    def __init__(self, file, path):
        super().__init__(file, encoding="latin1")  # the Python 2 pickles' byte strings
        self.path = path

    def find_class(self, module, name):
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f"{self.path}: refused to unpickle the global {module}.{name}: this data file "
                "may hold only dicts, lists, bytes, strings, numbers and NumPy arrays (a file "
                "that names other code could run it; is it from another source?)") from None

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"{self.path}: refused a persistent id in a data file")


def load(path):
    """The object pickled in the file `path`, restricted to plain data (see the module).

    Raises:
        ValueError: If the file names anything else, or is not a valid pickle; the message
            names the file.
        OSError: If it cannot be read.
    """
    with open(path, "rb") as file:
        try:
            return _RestrictedUnpickler(file, path).load()
        except pickle.UnpicklingError as error:
            message = str(error)
            if not message.startswith(str(path)):
                message = f"{path}: not a valid pickle ({message})"
            raise ValueError(message) from None
        except (EOFError, TypeError, AttributeError, IndexError, KeyError) as error:
            raise ValueError(f"{path}: not a valid pickle of plain data "
                             f"({type(error).__name__}: {error})") from None
