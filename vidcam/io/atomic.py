"""Atomic writes: everything is written under a temporary name in the target folder, then renamed.

A write that fails because the disk is full ends in one line, ``no space left on <folder>``,
whichever library did the writing (torch, OpenEXR, PyAV, OpenCV, numpy).
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from vidcam.errors import VidcamError

# A write that fails while its file system has less than this free is taken for a full disk:
# torch.save and OpenEXR report one without an errno ("[enforce fail at inline_container.cc]",
# "basic_ios::clear: iostream error"), so the free space is the evidence.
LOW_SPACE_BYTES = 16 * 2**20
_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
_FULL_MESSAGES = ("No space left on device", "Disk quota exceeded")


def free_bytes(folder: Path) -> int | None:
    """Bytes an unprivileged user may still write on ``folder``'s file system; None if unknown."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(exc: BaseException, target: Path) -> VidcamError | None:
    """The user-facing error when ``exc`` (raised while writing ``target``) means the disk is full."""
    full = getattr(exc, "errno", None) in _FULL_ERRNOS or any(text in str(exc) for text in _FULL_MESSAGES)
    if not full:
        free = free_bytes(target.parent)
        full = free is not None and free < LOW_SPACE_BYTES
    if not full:
        return None
    return VidcamError(f"no space left on {target.parent} (while writing {target.name})")

# The names atomic_path gives its temporaries: "." + target stem + "." + mkstemp's 8 random
# characters + ".tmp" + target suffix.
TEMPORARY_NAME = re.compile(r"^\..*\.[A-Za-z0-9_]{8}\.tmp(\.[A-Za-z0-9]+)?$")


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target`` that replaces it only if the block succeeds.

    The temporary name keeps the target's suffix so writers that pick a format by
    extension (PyAV, OpenCV, OpenEXR) still do the right thing.
    """
    target = Path(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    except OSError as exc:
        raise disk_full_error(exc, target) or exc
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; outputs should look like ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except Exception as exc:
        full = disk_full_error(exc, target)  # measured before the partial file is removed
        if full is not None:
            raise full from None
        raise
    finally:
        tmp_path.unlink(missing_ok=True)


def atomic_write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(target: str | Path, text: str) -> None:
    atomic_write_bytes(target, text.encode())


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete the temporaries an interrupted writer left in ``folder`` and its subfolders (only
    names of :data:`TEMPORARY_NAME`'s pattern, only plain files); returns what was removed."""
    removed = []
    for root, dirs, files in os.walk(folder):  # does not follow links to folders
        for name in files:
            path = Path(root) / name
            if TEMPORARY_NAME.match(name) and path.is_file() and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
