"""How much memory this machine has: the bound on what a file may ask cnn to allocate.

A checkpoint or a dataset file declares the sizes of its arrays before their data; a damaged or
hostile file (a zip or gzip bomb: 18 MB that inflate to 18 GB) can declare more than the
machine holds. Readers compare the declared total with `physical_memory()` first and refuse
such a file with a ValueError that names it, instead of a MemoryError (or the kernel's OOM
killer) halfway through inflating it.
"""
import os


def physical_memory():
    """The machine's physical memory in bytes, the smaller cgroup v2 limit (a container's)
    when there is one, or None when neither can be read."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):  # not POSIX
        total = None
    try:
        with open("/sys/fs/cgroup/memory.max") as file:
            text = file.read().strip()
        if text.isdigit():
            total = int(text) if total is None else min(total, int(text))
    except OSError:
        pass
    return total


def check_fits(nbytes, what):
    """Raise ValueError when `nbytes` (what `what` declares it needs) exceeds the memory.

    Args:
        nbytes (int): The bytes a file's header declares.
        what (str): The file and what in it declares them, for the message.
    """
    total = physical_memory()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} declares {_size(nbytes)} of data, more than this machine's "
                         f"memory ({_size(total)}): a damaged file, or a decompression bomb")


def _size(nbytes):
    return f"{nbytes / 2**30:.1f} GiB" if nbytes >= 2**30 else f"{nbytes / 2**20:.1f} MiB"
