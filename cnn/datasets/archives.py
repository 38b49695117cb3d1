"""Extracting dataset files from downloaded archives (zip, tar, gzipped tar), safely.

Only regular files are extracted, under names checked to stay inside the destination (no
absolute paths, no ``..``, no links or devices), each written to a temporary file beside its
destination and renamed into place, so that an interrupted extraction leaves complete files
only.
"""
import os
import secrets
import shutil
import tarfile
import zipfile
from pathlib import Path, PurePosixPath


def extract(archive, destination, keep=lambda name: True, strip=0):
    """Extract the regular files of `archive` that `keep` accepts into `destination`.

    Args:
        archive: A ``.zip``, ``.tar``, ``.tar.gz`` or ``.tgz`` file.
        destination: The folder to extract into (created if needed).
        keep (callable): Given a member's name (POSIX path inside the archive), whether to
            extract it.
        strip (int): Leading path components to drop from each name.

    Returns:
        list of pathlib.Path: The files written.

    Raises:
        ValueError: If the archive is not a zip or tar file, is corrupt, or a kept member's
            name would leave `destination`; the message names the archive.
    """
    archive, destination = Path(archive), Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    written = []
    try:
        if zipfile.is_zipfile(archive):
            with zipfile.ZipFile(archive) as opened:
                for info in opened.infolist():
                    if not info.is_dir() and keep(info.filename):
                        target = _target(archive, destination, info.filename, strip)
                        with opened.open(info) as source:
                            written.append(_write(source, target))
        elif tarfile.is_tarfile(archive):
            with tarfile.open(archive) as opened:
                for member in opened:
                    if member.isfile() and keep(member.name):
                        target = _target(archive, destination, member.name, strip)
                        with opened.extractfile(member) as source:
                            written.append(_write(source, target))
        else:
            raise ValueError(f"{archive}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError) as error:
        raise ValueError(f"{archive}: corrupt archive ({error})") from None
    return written


def _target(archive, destination, name, strip):
    parts = PurePosixPath(name).parts[strip:]
    if not parts or PurePosixPath(name).is_absolute() or ".." in parts or "\\" in name:
        raise ValueError(f"{archive}: refusing the member {name!r}, whose path would leave "
                         f"{destination}")
    return destination.joinpath(*parts)


def _write(source, target):
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.{secrets.token_hex(4)}.part")
    try:
        with open(temporary, "xb") as out:
            shutil.copyfileobj(source, out, 1 << 20)
        os.replace(temporary, target)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return target
