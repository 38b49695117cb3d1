# Float arrays taken through the buffer protocol directly, for the kernels called once per layer
# at batch 1. A typed memoryview argument cost about 0.12 us to acquire (a memoryview object
# made and freed, the buffer's format parsed) and a fused-type def 0.14 us to dispatch: 0.65 us
# for a linear layer's four arrays, a third of its batch-1 time. A Py_buffer costs about 0.035.
# What a memoryview would check is checked here: C-contiguous, the number of dimensions, the
# dtype (float32 or float64: the caller checks that a call's arrays share one), writable for
# outputs; the errors name the argument.
from cpython.buffer cimport (PyBUF_C_CONTIGUOUS, PyBUF_FORMAT, PyBUF_WRITABLE, PyBuffer_Release,
                             PyObject_GetBuffer)


cdef inline int take(object array, Py_buffer* view, int ndim, bint writable,
                     str name) except -1:
    """Fill `view` with `array`'s C-contiguous float buffer of `ndim` dimensions (the caller
    releases it with PyBuffer_Release); ValueError or TypeError naming `name` otherwise."""
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    try:
        PyObject_GetBuffer(array, view, flags)
    except (BufferError, ValueError, TypeError) as error:
        raise ValueError(f"{name}: expected a C-contiguous{' writable' if writable else ''} "
                         f"float array, got {type(array).__name__} ({error})") from None
    if view.ndim != ndim or not _is_float(view):
        given = f"{view.ndim}-D, buffer format {view.format.decode('ascii', 'replace')!r}"
        PyBuffer_Release(view)
        raise TypeError(f"{name}: expected a {ndim}-D float32 or float64 array, got "
                        f"{type(array).__name__} ({given})")
    return 0


cdef inline bint _is_float(Py_buffer* view) noexcept:
    """A buffer of native float32 ('f') or float64 ('d') values."""
    cdef const char* f = view.format
    if f[0] in b"@=" and f[1] != 0:  # native byte order, said explicitly
        f += 1
    return f[1] == 0 and ((f[0] == b"f" and view.itemsize == 4) or
                          (f[0] == b"d" and view.itemsize == 8))


cdef inline bint is_double(Py_buffer* view) noexcept:
    """Whether a buffer taken by `take` holds float64 (else float32)."""
    return view.itemsize == 8


cdef inline int disjoint(Py_buffer* out, Py_buffer* other, str name) except -1:
    """ValueError unless the result `out` and the argument `other` (named `name`) share no
    memory: a kernel that writes its result while reading an argument would read values it
    already wrote."""
    cdef char* a = <char*>out.buf
    cdef char* b = <char*>other.buf
    if out.len and other.len and a < b + other.len and b < a + out.len:
        raise ValueError(f"out: expected an array that shares no memory with {name}")
    return 0


cdef inline void release(Py_buffer* views, int taken) noexcept:
    """Release the first `taken` buffers of `views` (those `take` filled)."""
    cdef int i
    for i in range(taken):
        PyBuffer_Release(&views[i])
