"""2.0's ``kservehelper.utils``: ``upload_files`` and ``flock``, over today's code.

New code returns ``Path`` / ``List[Path]`` from ``predict`` and lets the server deliver the
files to the request's ``upload_webhook`` (or ``upload_to``), or uses
:func:`kservehelper.storage.base.resolve` directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from kservehelper.compat import run_sync, warn_deprecated
from kservehelper.storage.base import StorageSettings, resolve


def upload_files(
    webhook_url: str, paths: Sequence[str | Path], timeout: float = 60
) -> dict[str, list[str]]:
    """Upload files to ``webhook_url``; returns ``{"output": [url, ...]}`` in the order given.

    Any destination the server supports works: the 2.0 webhooks (``.../upload``, one POST per
    file; ``.../upload_batch``, one POST for all), a ``PUT`` URL, ``s3://bucket/prefix`` or
    ``gs://bucket/prefix``. ``timeout`` is per attempt at one file; failures are retried
    (``KSERVEHELPER_UPLOAD_ATTEMPTS``) and finally raise
    :class:`~kservehelper.errors.UploadError` naming the file. An unknown or disallowed
    destination raises :class:`~kservehelper.errors.InputError`. The local files are left in
    place (2.0 removed them after ``/upload`` only).
    """
    warn_deprecated("kservehelper.utils.upload_files", "a Path/List[Path] return value")
    settings = dataclasses.replace(StorageSettings.from_env(), timeout=float(timeout))
    files = [Path(path) for path in paths]
    for path in files:
        if not path.is_file():
            raise FileNotFoundError(f"upload_files: {path} is not a file")
    destination = resolve(webhook_url, settings)

    async def deliver() -> list[str]:
        try:
            return await destination.upload_files(files)
        finally:
            await destination.aclose()

    return {"output": run_sync(deliver())}


@contextlib.contextmanager
def flock(lock_path: str | Path, timeout: float = 300) -> Iterator[Any]:
    """Hold an exclusive lock on ``lock_path`` (across processes) for the ``with`` block.

    2.0's helper, over ``filelock``; raises ``TimeoutError`` after ``timeout`` seconds.
    """
    warn_deprecated("kservehelper.utils.flock", "filelock.FileLock")
    from kservehelper.cache import _import

    filelock = _import("filelock")
    lock = filelock.FileLock(str(lock_path))
    try:
        lock.acquire(timeout=timeout)
    except filelock.Timeout:
        raise TimeoutError(f"could not lock {lock_path} within {timeout}s") from None
    try:
        yield lock
    finally:
        lock.release()
