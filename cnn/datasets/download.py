"""Downloading dataset files: MD5-checked, written atomically, with mirror fallback.

A file is streamed into a temporary file in its destination folder, flushed and fsynced, its
MD5 compared, and only then renamed over the destination (``os.replace`` is atomic within one
filesystem). On any failure, including Ctrl-C, the temporary file is removed, so a destination
path either holds a complete, checked file or nothing.
"""
import hashlib
import http.client
import os
import secrets
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from ..version import __version__

# Some servers refuse urllib's default "Python-urllib/x.y" agent.
USER_AGENT = f"cnn/{__version__}"
DEFAULT_TIMEOUT = 30.0
# The most one file may take in all (seconds): a server that trickles a byte now and then never
# trips the per-read timeout. 11 MB of MNIST in 15 minutes is 12 KB/s.
DEFAULT_DEADLINE = 900.0
_CHUNK = 1 << 20


class DownloadError(OSError):
    """A file could not be fetched from any URL tried; the message lists each URL's failure."""


def download_url(url, path, md5=None, timeout=DEFAULT_TIMEOUT, progress=None,
                 deadline=DEFAULT_DEADLINE):
    """Fetch ``url`` into ``path`` atomically, checking its MD5 sum.

    Args:
        url: The URL (anything ``urllib.request.urlopen`` handles).
        path: The destination file; its folder must exist.
        md5: The expected MD5 hex digest of the file, or None to skip the check.
        timeout: Seconds to wait for the connection and for each read.
        progress: None, or a callable ``progress(received, total)`` called once the response
            starts and after every chunk: bytes received so far and the ``Content-Length``
            (None when the server gives none). The command line draws its bar with it.
        deadline: Seconds the whole file may take (None: no limit); checked after every read,
            so it is overrun by at most `timeout`.

    Returns:
        pathlib.Path: ``path``.

    Raises:
        DownloadError: For an HTTP error status, a connection failure or time-out, a download
            past its `deadline`, a body shorter than its ``Content-Length`` or an MD5
            mismatch. The message names the URL.
            Other exceptions (``KeyboardInterrupt``) propagate unchanged. Either way no
            temporary or partial file is left.
    """
    path = Path(path)
    # Not tempfile.mkstemp: its files are private (mode 0600), and a dataset folder may be
    # shared; os.open with 0o666 leaves the permissions to the umask, like any new file.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0),
                 0o666)
    try:
        with os.fdopen(fd, "wb") as out:
            digest = _fetch(url, out, timeout, progress, deadline)
            out.flush()
            os.fsync(out.fileno())
        if md5 is not None and digest != md5.lower():
            raise DownloadError(f"{url}: MD5 mismatch, expected {md5}, got {digest} "
                                "(corrupted or changed file)")
        os.replace(temporary, path)
    except BaseException:
        # BaseException: a Ctrl-C in the middle of a download must not leave the .part file.
        Path(temporary).unlink(missing_ok=True)
        raise
    return path


def _fetch(url, out, timeout, progress=None, deadline=None):
    """Stream ``url`` into the file ``out``; return the MD5 hex digest of what was written."""
    digest = hashlib.md5()
    received = 0
    end = None if deadline is None else time.monotonic() + deadline
    try:
        request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
        with urllib.request.urlopen(request, timeout=timeout) as response:
            expected = response.headers.get("Content-Length")
            total = int(expected) if expected is not None and expected.isdigit() else None
            if progress is not None:
                progress(0, total)
            while True:
                # read1: what one receive gives, so that the deadline is checked while a slow
                # server trickles (read(n) would wait for all n bytes).
                chunk = response.read1(_CHUNK)
                if not chunk:
                    break
                if end is not None and time.monotonic() > end:
                    raise DownloadError(f"{url}: not complete after {deadline:g} s ({received} "
                                        "bytes received): the server is too slow")
                digest.update(chunk)
                out.write(chunk)
                received += len(chunk)
                if progress is not None:
                    progress(received, total)
    except DownloadError:
        raise
    except urllib.error.HTTPError as error:
        raise DownloadError(f"{url}: HTTP error {error.code} {error.reason}") from error
    except urllib.error.URLError as error:
        raise DownloadError(f"{url}: {error.reason}") from error
    # Time-outs, resets, malformed URLs or responses.
    except (OSError, ValueError, http.client.HTTPException) as error:
        raise DownloadError(f"{url}: {type(error).__name__}: {error}") from error
    # http.client does not complain when a server closes the connection early.
    if expected is not None and expected.isdigit() and received != int(expected):
        raise DownloadError(f"{url}: connection closed after {received} of {expected} bytes")
    return digest.hexdigest()


def download_from_mirrors(filename, folder, mirrors, md5=None, timeout=DEFAULT_TIMEOUT,
                          hint=None, progress=None, deadline=DEFAULT_DEADLINE):
    """Fetch ``filename`` into ``folder`` from the first mirror that serves it correctly.

    Each mirror is a base URL (ending in ``/``) to which ``filename`` is appended. A mirror that
    fails (HTTP error, connection failure, time-out, MD5 mismatch) is reported and the next one
    tried.

    Args:
        filename: The file's name, both on the mirrors and in ``folder``.
        folder: The destination folder, created if needed.
        mirrors: Base URLs, tried in order.
        md5: The expected MD5 hex digest, or None.
        timeout: Seconds to wait for the connection and for each read.
        hint: A sentence appended to the error, e.g. how to place the file by hand.
        progress: Passed to :func:`download_url` for each mirror tried.
        deadline: Seconds each mirror's download may take in all (None: no limit).

    Returns:
        pathlib.Path: The downloaded file.

    Raises:
        DownloadError: If every mirror failed; the message lists every URL with its failure.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    failures = []
    for mirror in mirrors:
        url = mirror + filename
        print(f"Downloading {url} to {folder / filename}", file=sys.stderr)
        try:
            return download_url(url, folder / filename, md5=md5, timeout=timeout,
                                progress=progress, deadline=deadline)
        except DownloadError as error:
            failures.append(str(error))
    tried = "\n".join("  " + failure for failure in failures) or "  (no mirror given)"
    message = f"could not download {filename}; tried:\n{tried}"
    raise DownloadError(message + ("\n" + hint if hint else ""))
