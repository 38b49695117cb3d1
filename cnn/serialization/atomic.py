"""Atomic writes: a file that replaces its destination only once it is complete and on disk."""
import contextlib
import errno
import os
import tempfile

__all__ = ["atomic_write"]


@contextlib.contextmanager
def atomic_write(path, mode="wb", encoding=None):
    """Open a file for writing that replaces `path` only when the ``with`` block succeeds.

    The data goes to a temporary file created in `path`'s folder (so the final rename stays on
    one filesystem, where ``os.replace`` is atomic). On a clean exit the file is flushed, synced
    to disk and renamed over `path`; on any exception (including ``KeyboardInterrupt``) the
    temporary file is removed and `path` is left exactly as it was. The new file gets the
    permissions an ordinary ``open(path, "w")`` would give it.

    A `path` that is a symbolic link is written through, as ``open(path, "w")`` would: the
    file it points to is replaced (atomically, in its own folder) and the link stays.

    A process killed outright (SIGKILL, a power cut) cannot remove its temporary file; the
    temporary's name holds the writer's process id, and the next write to `path` removes the
    temporaries of writers that are no longer running.

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
    path = os.path.realpath(os.fspath(path))
    folder = os.path.dirname(path)
    if not os.path.isdir(folder):
        raise FileNotFoundError(errno.ENOENT, f"cannot write {path!r}: its folder does not exist",
                                folder)
    remove_stale_temporaries(path)
    fd, temporary = tempfile.mkstemp(dir=folder, prefix=_prefix(path) + f"{os.getpid()}.",
                                     suffix=_SUFFIX)
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


_SUFFIX = ".tmp"


def _prefix(path):
    return f".{os.path.basename(path)}."


def remove_stale_temporaries(path):
    """Remove the temporary files that writers of `path` killed mid-write left behind.

    A temporary is ``.NAME.PID.XXXXXXXX.tmp`` beside `path`; it is stale when no process
    PID runs (a live writer's, or one from another machine sharing the folder whose PID happens
    to run here, is kept). Returns the paths removed.
    """
    folder, prefix = os.path.dirname(os.path.abspath(path)), _prefix(path)
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        if not (name.startswith(prefix) and name.endswith(_SUFFIX)):
            continue
        pid = name[len(prefix):].split(".", 1)[0]
        if not pid.isdigit() or _running(int(pid)):
            continue
        with contextlib.suppress(OSError):
            os.unlink(os.path.join(folder, name))
            removed.append(os.path.join(folder, name))
    return removed


def _running(pid):
    if os.name == "nt":  # os.kill(pid, 0) would end the process there
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # another user's process (EPERM): running
        return True
    return True


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
