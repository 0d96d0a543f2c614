"""This process's scratch folder, removed when the process ends, and reclaimed if it is killed.

Everything a serving process writes to disk goes under one folder of its own::

    $TMPDIR/kservehelper-<pid>-<random>/
        owner.lock   locked (flock) for as long as the process lives
        outputs/     output files made by generate_filepath (unless KSERVEHELPER_OUTPUT_DIR)
        requests/    one working folder per request with file inputs

The folder is removed at exit. A process killed with SIGKILL cannot do that, so a server
starting up removes the folders whose lock nobody holds any more (the kernel drops a dead
process's locks): servers sharing ``/tmp``, even from different containers, never remove
each other's folders, and a recycled PID does not fool the check.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import pathlib
import shutil
import tempfile
import threading
from typing import IO

logger = logging.getLogger("kserve.kservehelper")

PREFIX = "kservehelper-"
LOCK_NAME = "owner.lock"

_lock = threading.Lock()
_folder: pathlib.Path | None = None
_owner_pid: int | None = None
_lock_file: IO[bytes] | None = None


def _flock(handle: IO[bytes], blocking: bool) -> bool:
    """Take an exclusive lock on ``handle``; False if another process holds it (or locks
    are not available here: then no folder is ever taken for a dead process's)."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no reclaiming; folders are still removed at exit
        return blocking
    flags = fcntl.LOCK_EX if blocking else fcntl.LOCK_EX | fcntl.LOCK_NB
    try:
        fcntl.flock(handle.fileno(), flags)
    except BlockingIOError:
        return False
    return True


def process_folder() -> pathlib.Path:
    """This process's folder (made, locked and registered for removal on first use)."""
    global _folder, _owner_pid, _lock_file
    with _lock:
        if _folder is not None and _owner_pid == os.getpid():
            return _folder
        root = pathlib.Path(tempfile.gettempdir())
        # Made under a hidden name and renamed once locked, so that a sweeping server never
        # sees it unlocked.
        staging = pathlib.Path(tempfile.mkdtemp(prefix=f".{PREFIX}new-", dir=root))
        handle = (staging / LOCK_NAME).open("wb")
        _flock(handle, blocking=True)
        folder = root / f"{PREFIX}{os.getpid()}-{staging.name.rsplit('-', 1)[-1]}"
        staging.rename(folder)
        first = _owner_pid is None
        _folder, _owner_pid, _lock_file = folder, os.getpid(), handle
        if first:
            atexit.register(remove_process_folder)
        return folder


def subfolder(name: str) -> pathlib.Path:
    """``name`` under this process's folder (created if needed)."""
    path = process_folder() / name
    path.mkdir(exist_ok=True)
    return path


def request_folder() -> pathlib.Path:
    """A new, empty working folder for one request; the request removes it when it ends."""
    return pathlib.Path(tempfile.mkdtemp(prefix="request-", dir=subfolder("requests")))


def remove_process_folder() -> None:
    """Remove this process's folder, if it made one (at exit, and after a shutdown)."""
    global _folder, _lock_file
    with _lock:
        if _folder is None or _owner_pid != os.getpid():
            return
        shutil.rmtree(_folder, ignore_errors=True)
        if _lock_file is not None:
            with contextlib.suppress(OSError):
                _lock_file.close()
        _folder, _lock_file = None, None


def remove_stale_folders(root: pathlib.Path | None = None) -> list[pathlib.Path]:
    """Remove the folders of processes that no longer exist; returns what was removed."""
    root = root or pathlib.Path(tempfile.gettempdir())
    removed = []
    try:
        candidates = [p for p in root.iterdir() if p.name.startswith(PREFIX) and p.is_dir()]
    except OSError:
        return []
    for folder in candidates:
        if folder == _folder:
            continue
        lock_path = folder / LOCK_NAME
        try:
            handle = lock_path.open("rb")
        except OSError:
            continue  # not one of ours (or already gone)
        with handle:
            if not _flock(handle, blocking=False):
                continue  # its process is alive
            shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder)
    if removed:
        logger.info(
            "removed %d folder(s) left by processes that ended without cleaning up: %s",
            len(removed),
            ", ".join(p.name for p in removed),
        )
    return removed
