"""Atomic writes: everything is written under a temporary name in the target folder, then renamed."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

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
    fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".tmp{target.suffix}", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; outputs should look like ordinary files
    try:
        yield tmp_path
        os.replace(tmp_path, target)
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
