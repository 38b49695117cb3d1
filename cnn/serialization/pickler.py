"""A pickle writer for plain data and named calls, without importing what it names.

Python's pickler writes a ``GLOBAL`` only for an object it can import, so it cannot write
``torch._utils._rebuild_tensor_v2`` where torch is not installed. This one writes protocol 2
(torch.save's default) for None, bools, ints, floats, strings, lists, tuples, dicts and
OrderedDicts, and for three stand-ins that name what the reader will rebuild: a :class:`Global`
by its name, a :class:`Call` of one on arguments, and a :class:`PersistentId` (torch's
reference to a storage stored beside the pickle).
"""
import struct
from collections import OrderedDict

__all__ = ["Call", "Global", "PersistentId", "dumps"]

_BATCH = 1000  # items per APPENDS / SETITEMS, as Python's pickler


class Global:
    """A global by name: ``Global("torch", "FloatStorage")`` stands for ``torch.FloatStorage``."""

    __slots__ = ("module", "name")

    def __init__(self, module, name):
        self.module, self.name = module, name


class Call:
    """``function(*args)`` in the pickle: REDUCE of a :class:`Global` on a tuple."""

    __slots__ = ("function", "args")

    def __init__(self, function, args):
        self.function, self.args = function, tuple(args)


class PersistentId:
    """A reference to data outside the pickle (BINPERSID of `value`, itself written as data)."""

    __slots__ = ("value",)

    def __init__(self, value):
        self.value = value


def dumps(obj):
    """Pickle `obj` (protocol 2).

    Args:
        obj: Plain values and containers, and the stand-ins of this module, nested.

    Returns:
        bytes: The pickle.

    Raises:
        TypeError: For an object of any other type.
    """
    writer = _Writer()
    writer.out += b"\x80\x02"  # PROTO 2
    writer.save(obj)
    writer.out += b"."  # STOP
    return bytes(writer.out)


class _Writer:
    def __init__(self):
        self.out = bytearray()

    def save(self, obj):
        kind = type(obj)
        method = _SAVERS.get(kind)
        if method is not None:
            method(self, obj)
        elif kind is Call:
            self.save(obj.function)
            self.save(obj.args)
            self.out += b"R"  # REDUCE
        elif kind is Global:
            self.out += b"c" + f"{obj.module}\n{obj.name}\n".encode("utf-8")  # GLOBAL
        elif kind is PersistentId:
            self.save(obj.value)
            self.out += b"Q"  # BINPERSID
        else:
            raise TypeError(f"cannot pickle a {kind.__name__} here")

    def save_none(self, obj):
        self.out += b"N"

    def save_bool(self, obj):
        self.out += b"\x88" if obj else b"\x89"  # NEWTRUE / NEWFALSE

    def save_int(self, obj):
        if 0 <= obj < 0x100:
            self.out += b"K" + bytes([obj])  # BININT1
        elif 0 <= obj < 0x10000:
            self.out += b"M" + struct.pack("<H", obj)  # BININT2
        elif -0x80000000 <= obj < 0x80000000:
            self.out += b"J" + struct.pack("<i", obj)  # BININT
        else:
            data = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True)
            if len(data) < 0x100:
                self.out += b"\x8a" + bytes([len(data)]) + data  # LONG1
            else:
                self.out += b"\x8b" + struct.pack("<i", len(data)) + data  # LONG4

    def save_float(self, obj):
        self.out += b"G" + struct.pack(">d", obj)  # BINFLOAT

    def save_str(self, obj):
        data = obj.encode("utf-8", "surrogatepass")
        self.out += b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE

    def save_tuple(self, obj):
        if len(obj) <= 3:
            for item in obj:
                self.save(item)
            self.out += (b")", b"\x85", b"\x86", b"\x87")[len(obj)]  # EMPTY_TUPLE, TUPLE1-3
            return
        self.out += b"("  # MARK
        for item in obj:
            self.save(item)
        self.out += b"t"  # TUPLE

    def save_list(self, obj):
        self.out += b"]"  # EMPTY_LIST
        for start in range(0, len(obj), _BATCH):
            self.out += b"("
            for item in obj[start:start + _BATCH]:
                self.save(item)
            self.out += b"e"  # APPENDS

    def save_dict(self, obj):
        if type(obj) is OrderedDict:
            self.save(Call(Global("collections", "OrderedDict"), ()))
        else:
            self.out += b"}"  # EMPTY_DICT
        items = list(obj.items())
        for start in range(0, len(items), _BATCH):
            self.out += b"("
            for key, value in items[start:start + _BATCH]:
                self.save(key)
                self.save(value)
            self.out += b"u"  # SETITEMS


_SAVERS = {type(None): _Writer.save_none, bool: _Writer.save_bool, int: _Writer.save_int,
           float: _Writer.save_float, str: _Writer.save_str, tuple: _Writer.save_tuple,
           list: _Writer.save_list, dict: _Writer.save_dict, OrderedDict: _Writer.save_dict}
