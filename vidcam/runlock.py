"""One process at a time per run folder, and nothing written over a file this run did not make.

A run (``enhance``, ``enhance --resume``) holds an exclusive ``flock`` on ``RUN/.vidcam.lock``
for its whole life; the file records the holder's pid and host for the refusal message. The
operating system drops the lock when the process ends, however it ends (kill -9 included), so
a stale lock file never blocks anything. ``atlas`` and ``edit`` take a shared lock on the same
file: they may run side by side, but not while the run trains, and a resume waits for them.

The folder is created and locked before it is checked, so two runs started together cannot
both find it empty.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
from collections.abc import Iterable, Iterator
from pathlib import Path

from vidcam.errors import VidcamError
from vidcam.io.atomic import remove_temporaries

LOCK_NAME = ".vidcam.lock"
COMPLETE_NAME = "complete"  # written last by a run that finished; its absence marks an unfinished run

_held: dict[Path, int] = {}  # folders this process has locked -> the lock file's descriptor


def _key(folder: Path) -> Path:
    return Path(folder).resolve()


def _holder(lock_path: Path) -> str:
    try:
        text = lock_path.read_text().strip()
    except OSError:
        text = ""
    return text or "unknown pid"


def _lock(folder: Path, exclusive: bool, create: bool) -> int | None:
    """The descriptor of ``folder``'s lock file, locked; None when there is no lock file and
    ``create`` is false; VidcamError naming the holder when another process holds it."""
    lock_path = Path(folder) / LOCK_NAME
    flags = (os.O_RDWR | os.O_CREAT) if create else os.O_RDONLY
    try:
        fd = os.open(lock_path, flags, 0o644)
    except FileNotFoundError:
        if create:
            raise
        return None
    try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES):
            raise VidcamError(
                f"{folder} is in use by a running vidcam process ({_holder(lock_path)}); "
                "wait for it to finish or stop it first"
            ) from None
        if exc.errno in (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS):
            from vidcam.log import log

            log(f"note: {folder}'s file system cannot lock files; nothing stops a second run from using it")
            return os.open(lock_path, flags, 0o644)  # an unlocked descriptor: the run goes on unprotected
        raise
    if exclusive:
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
    return fd


def _release(folder: Path) -> None:
    fd = _held.pop(_key(folder), None)
    if fd is not None:
        os.close(fd)  # closing the descriptor drops the flock


@contextlib.contextmanager
def claim_run_folder(outdir: Path, resume: bool) -> Iterator[None]:
    """Create (new run) and exclusively lock the run folder, then check it, for the block's life.

    A new run needs a folder that is missing or empty (its lock file aside), so nothing of the
    user's is overwritten; a resume needs a folder holding a run. On resume, temporaries left by
    an interrupted write are removed and the run is marked unfinished until it completes again.
    """
    outdir = Path(outdir)
    if _key(outdir) in _held:  # this process holds it already (e.g. enhance calling itself)
        yield
        return
    if resume:
        from vidcam.run import CONFIG_NAME

        if not (outdir / CONFIG_NAME).is_file():
            raise VidcamError(f"--resume: {outdir} holds no vidcam run to continue")
    elif outdir.exists() and not outdir.is_dir():
        raise VidcamError(f"output path {outdir} exists and is not a folder")
    lock_existed = (outdir / LOCK_NAME).exists()
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        fd = _lock(outdir, exclusive=True, create=True)
    except VidcamError as exc:
        raise VidcamError(f"{'--resume: ' if resume else ''}{exc}") from None
    except OSError as exc:
        raise VidcamError(f"cannot write to output folder {outdir}: {exc.strerror or exc}") from None
    assert fd is not None
    _held[_key(outdir)] = fd
    try:
        if not resume:
            others = [entry.name for entry in outdir.iterdir() if entry.name != LOCK_NAME]
            if others:
                from vidcam.run import CONFIG_NAME

                if not lock_existed:  # leave a folder of the user's as it was
                    (outdir / LOCK_NAME).unlink(missing_ok=True)
                what = "another vidcam run" if CONFIG_NAME in others else "other files"
                raise VidcamError(f"output folder {outdir} already holds {what}; use --resume or choose another -o")
        else:
            (outdir / COMPLETE_NAME).unlink(missing_ok=True)
            removed = remove_temporaries(outdir)
            if removed:
                from vidcam.log import log

                log(f"removed {len(removed)} temporary file(s) left by the interrupted run")
        yield
    finally:
        _release(outdir)


@contextlib.contextmanager
def reading_run(folder: Path) -> Iterator[None]:
    """A shared lock on a run folder while ``atlas``/``edit`` read it: refused while its run is live."""
    folder = Path(folder)
    if _key(folder) in _held or not folder.is_dir():
        yield
        return
    try:
        fd = _lock(folder, exclusive=False, create=False)
    except VidcamError as exc:
        raise VidcamError(f"cannot read the run: {exc}") from None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)


def mark_complete(folder: Path) -> None:
    """The last write of a finished run: every output before it is in place."""
    from vidcam.io.atomic import atomic_write_text

    atomic_write_text(Path(folder) / COMPLETE_NAME, "vidcam run complete\n")


def is_complete(folder: Path) -> bool:
    return (Path(folder) / COMPLETE_NAME).is_file()


def note_if_unfinished(run_folder: Path, step: int, steps: int) -> None:
    """atlas/edit work from the last checkpoint of a stopped run, and say so."""
    legacy = not (Path(run_folder) / LOCK_NAME).exists()  # made before runs were locked and marked: trust it
    if _key(run_folder) in _held or is_complete(run_folder) or legacy:
        return
    from vidcam.log import log

    log(f"note: {run_folder} is an unfinished run (checkpoint at step {step} of {steps}); "
        "using its last checkpoint (finish it with `vidcam enhance ... --resume`)")


def refuse_existing(paths: Iterable[Path], overwrite: bool) -> None:
    """Before writing anything: refuse when any of ``paths`` exists, unless ``overwrite``."""
    if overwrite:
        return
    for path in paths:
        if Path(path).exists() or Path(path).is_symlink():
            raise VidcamError(f"{path} already exists; choose another output or pass --overwrite to replace it")
