"""A pickle machine that builds data and nothing else, for reading ``torch.save`` files.

Python's own unpickler calls whatever a file names: ``os.system`` is one ``GLOBAL`` and one
``REDUCE`` away. This one is a separate interpreter of the pickle opcodes (protocols 0 to 5)
that builds only plain values (None, bools, numbers, strings, bytes, lists, tuples, dicts,
sets) and asks its caller for everything else:

* a ``GLOBAL`` is looked up in the caller's table of allowed names; any other name stops the
  load with an error that names it (nothing is imported);
* ``REDUCE`` calls only the callables of that table, on arguments built the same way;
* ``BUILD`` (setting an object's state) goes to the caller's ``build``, which may refuse;
* persistent ids go to the caller's ``persistent_load`` (torch's storages);
* the opcodes that create instances of arbitrary classes (``INST``, ``OBJ``, ``NEWOBJ``,
  ``NEWOBJ_EX``), the extension registry (``EXT1/2/4``) and out-of-band buffers are refused.

This is what ``torch.load(weights_only=True)`` does, without torch.
"""
import struct
from collections import OrderedDict

__all__ = ["Unpickler", "UnpicklingError"]


class UnpicklingError(ValueError):
    """A pickle this machine refuses or cannot read; the message names the file."""


_DICTS = (dict, OrderedDict)
_CHUNK = 1 << 20


class Unpickler:
    """Reads one pickle from a binary file, admitting only what the caller allows.

    Args:
        file: A binary file object positioned at the pickle (left after its STOP opcode).
        name (str): How error messages name the file.
        allowed (dict): ``"module.qualname"`` to the object a GLOBAL of that name gives.
        persistent_load (callable, optional): ``persistent_load(pid)`` for BINPERSID/PERSID;
            without it, persistent ids are refused.
        build (callable, optional): ``build(obj, state)`` for BUILD, returning the object;
            without it, BUILD is refused.
    """

    def __init__(self, file, name, allowed, persistent_load=None, build=None):
        self._file = file
        self._name = name
        self._allowed = allowed
        self._callables = {id(value): value for value in allowed.values() if callable(value)}
        self._persistent_load = persistent_load
        self._build = build

    def load(self):
        """Return the object the pickle describes.

        Raises:
            UnpicklingError: A refused global or opcode, or a truncated or malformed pickle.
        """
        self._stack, self._marks, self._memo = [], [], {}
        start = self._file.tell()
        try:
            while True:
                code = self._read(1)
                if code == b".":  # STOP
                    return self._stack.pop()
                handler = _HANDLERS.get(code[0])
                if handler is None:
                    raise UnpicklingError(f"{self._name}: the pickle holds opcode {code!r} "
                                          f"({_REFUSED.get(code[0], 'unknown')}), which cnn.load "
                                          "refuses")
                handler(self)
        except UnpicklingError:
            raise
        # A damaged pickle fails in the Python operations that interpret it: a pop from an
        # empty stack, a missing memo key, an unhashable dict key, a bad number literal.
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError,
                struct.error, UnicodeDecodeError, MemoryError, RecursionError) as error:
            where = self._file.tell() - start
            raise UnpicklingError(f"{self._name}: a malformed pickle (at byte {where}: "
                                  f"{type(error).__name__}: {error})") from None

    # ----- reading -----

    def _read(self, size):
        # In chunks, so that a damaged length cannot make one huge allocation.
        data = self._file.read(min(size, _CHUNK))
        while len(data) < size:
            chunk = self._file.read(min(size - len(data), _CHUNK))
            if not chunk:
                raise UnpicklingError(f"{self._name}: the pickle is truncated")
            data += chunk
        return data

    def _readline(self):
        line = self._file.readline()
        if not line.endswith(b"\n"):
            raise UnpicklingError(f"{self._name}: the pickle is truncated")
        return line[:-1]

    def _unpack(self, fmt):
        return struct.unpack(fmt, self._read(struct.calcsize(fmt)))[0]

    def _sized(self, fmt):
        return self._read(self._unpack(fmt))

    # ----- the stack -----

    def _push(self, value):
        self._stack.append(value)

    def _pop_mark(self):
        items = self._stack
        self._stack = self._marks.pop()
        return items

    # ----- what the caller decides -----

    def _global(self, module, qualname):
        key = f"{module}.{qualname}"
        if key not in self._allowed:
            raise UnpicklingError(
                f"{self._name}: refused to load the global {key!r}: cnn.load admits only what "
                "a state dict holds (tensors, their storages, OrderedDict and plain Python "
                "values), and never imports or calls anything else")
        return self._allowed[key]

    def _reduce(self):
        args = self._stack.pop()
        func = self._stack[-1]
        if id(func) not in self._callables or not isinstance(args, tuple):
            raise UnpicklingError(f"{self._name}: the pickle calls a {type(func).__name__}, "
                                  "which is not one of the functions cnn.load admits")
        self._stack[-1] = func(*args)

    def _build_state(self):
        state = self._stack.pop()
        if self._build is None:
            raise UnpicklingError(f"{self._name}: the pickle sets the state of an object, "
                                  "which cnn.load refuses here")
        self._stack[-1] = self._build(self._stack[-1], state)

    def _persistent(self, pid):
        if self._persistent_load is None:
            raise UnpicklingError(f"{self._name}: the pickle refers to external data "
                                  "(a persistent id), which is refused here")
        self._push(self._persistent_load(pid))


def _text_int(line):
    if line == b"00":
        return False
    if line == b"01":
        return True
    return int(line.rstrip(b"L"))


def _text_string(line):
    # Protocol 0 quotes its strings; Python 2 str objects are read as text.
    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
        raise ValueError("an unquoted STRING")
    return line[1:-1].decode("unicode_escape")


def _handlers():
    """Opcode byte -> function of the Unpickler. Protocol numbers as in Python's pickle.py."""
    h = {}

    def on(code, fn):
        h[ord(code)] = fn

    # framing and control
    on(b"\x80", lambda u: u._read(1))                       # PROTO
    on(b"\x95", lambda u: u._read(8))                       # FRAME: the frames are read in order
    on(b"(", _mark)
    on(b"0", _pop)
    on(b"1", lambda u: u._pop_mark())                       # POP_MARK
    on(b"2", lambda u: u._push(u._stack[-1]))               # DUP
    # constants and numbers
    on(b"N", lambda u: u._push(None))
    on(b"\x88", lambda u: u._push(True))
    on(b"\x89", lambda u: u._push(False))
    on(b"I", lambda u: u._push(_text_int(u._readline())))
    on(b"L", lambda u: u._push(_text_int(u._readline())))
    on(b"J", lambda u: u._push(u._unpack("<i")))            # BININT
    on(b"K", lambda u: u._push(u._read(1)[0]))              # BININT1
    on(b"M", lambda u: u._push(u._unpack("<H")))            # BININT2
    on(b"\x8a", lambda u: u._push(int.from_bytes(u._sized("<B"), "little", signed=True)))
    on(b"\x8b", lambda u: u._push(int.from_bytes(u._sized("<i"), "little", signed=True)))
    on(b"F", lambda u: u._push(float(u._readline())))
    on(b"G", lambda u: u._push(u._unpack(">d")))            # BINFLOAT
    # strings and bytes
    on(b"S", lambda u: u._push(_text_string(u._readline())))
    on(b"T", lambda u: u._push(u._sized("<i").decode("latin-1")))      # BINSTRING
    on(b"U", lambda u: u._push(u._sized("<B").decode("latin-1")))      # SHORT_BINSTRING
    on(b"V", lambda u: u._push(u._readline().decode("raw_unicode_escape")))  # UNICODE
    on(b"X", lambda u: u._push(u._sized("<I").decode("utf-8", "surrogatepass")))
    on(b"\x8c", lambda u: u._push(u._sized("<B").decode("utf-8", "surrogatepass")))
    on(b"\x8d", lambda u: u._push(u._sized("<Q").decode("utf-8", "surrogatepass")))
    on(b"B", lambda u: u._push(u._sized("<I")))             # BINBYTES
    on(b"C", lambda u: u._push(u._sized("<B")))             # SHORT_BINBYTES
    on(b"\x8e", lambda u: u._push(u._sized("<Q")))          # BINBYTES8
    on(b"\x96", lambda u: u._push(bytearray(u._sized("<Q"))))  # BYTEARRAY8
    # containers
    on(b"]", lambda u: u._push([]))
    on(b"l", lambda u: u._push(u._pop_mark()))              # LIST
    on(b"a", _append)
    on(b"e", _appends)
    on(b")", lambda u: u._push(()))
    on(b"t", lambda u: u._push(tuple(u._pop_mark())))
    on(b"\x85", lambda u: u._stack.__setitem__(-1, (u._stack[-1],)))
    on(b"\x86", lambda u: u._stack.__setitem__(slice(-2, None), [tuple(u._stack[-2:])]))
    on(b"\x87", lambda u: u._stack.__setitem__(slice(-3, None), [tuple(u._stack[-3:])]))
    on(b"}", lambda u: u._push({}))
    on(b"d", lambda u: u._push(_dict_of(u._pop_mark())))    # DICT
    on(b"s", _set_item)
    on(b"u", _set_items_marked)
    on(b"\x8f", lambda u: u._push(set()))                   # EMPTY_SET
    on(b"\x90", _add_items)
    on(b"\x91", lambda u: u._push(frozenset(u._pop_mark())))  # FROZENSET
    # the memo
    on(b"g", lambda u: u._push(u._memo[int(u._readline())]))
    on(b"h", lambda u: u._push(u._memo[u._read(1)[0]]))
    on(b"j", lambda u: u._push(u._memo[u._unpack("<I")]))
    on(b"p", lambda u: u._memo.__setitem__(int(u._readline()), u._stack[-1]))
    on(b"q", lambda u: u._memo.__setitem__(u._read(1)[0], u._stack[-1]))
    on(b"r", lambda u: u._memo.__setitem__(u._unpack("<I"), u._stack[-1]))
    on(b"\x94", lambda u: u._memo.__setitem__(len(u._memo), u._stack[-1]))  # MEMOIZE
    # what the caller decides
    on(b"c", lambda u: u._push(u._global(u._readline().decode("utf-8"),
                                         u._readline().decode("utf-8"))))
    on(b"\x93", lambda u: _stack_global(u))
    on(b"R", lambda u: u._reduce())
    on(b"b", lambda u: u._build_state())
    on(b"Q", lambda u: u._persistent(u._stack.pop()))       # BINPERSID
    on(b"P", lambda u: u._persistent(u._readline().decode("ascii")))  # PERSID
    return h


def _mark(u):
    u._marks.append(u._stack)
    u._stack = []


def _pop(u):
    if u._stack:
        u._stack.pop()
    else:
        u._pop_mark()


# Items go only into the containers this machine built itself (lists, dicts, sets), never
# into an object the caller returned, whose methods could do anything.

def _target(u, kinds):
    target = u._stack[-1]
    if type(target) not in kinds:
        raise UnpicklingError(f"{u._name}: the pickle adds items to a {type(target).__name__}")
    return target


def _append(u):
    value = u._stack.pop()
    _target(u, (list,)).append(value)


def _appends(u):
    items = u._pop_mark()
    _target(u, (list,)).extend(items)


def _dict_of(items):
    result = {}
    _set_items(result, items)
    return result


def _set_items(target, items):
    for i in range(0, len(items) - 1, 2):
        target[items[i]] = items[i + 1]


def _set_item(u):
    value = u._stack.pop()
    key = u._stack.pop()
    _set_items(_target(u, _DICTS), [key, value])


def _set_items_marked(u):
    items = u._pop_mark()
    _set_items(_target(u, _DICTS), items)


def _add_items(u):
    items = u._pop_mark()
    _target(u, (set,)).update(items)


def _stack_global(u):
    qualname = u._stack.pop()
    module = u._stack.pop()
    if not isinstance(module, str) or not isinstance(qualname, str):
        raise UnpicklingError(f"{u._name}: STACK_GLOBAL with non-string names")
    u._push(u._global(module, qualname))


_HANDLERS = _handlers()
_REFUSED = {ord(b"i"): "INST", ord(b"o"): "OBJ", 0x81: "NEWOBJ", 0x92: "NEWOBJ_EX",
            0x82: "EXT1", 0x83: "EXT2", 0x84: "EXT4", 0x97: "NEXT_BUFFER",
            0x98: "READONLY_BUFFER"}
