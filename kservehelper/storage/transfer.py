"""Copy files and folders between local paths, ``s3://`` and ``gs://``, with progress.

The original project's ``S3Storage``, generalised::

    from kservehelper.storage.transfer import upload, download

    upload("weights/", "s3://models/sdxl/")            # a folder: every file under it
    download("gs://models/sdxl/unet.safetensors", "/cache/unet.safetensors")

Large files move in parts (S3 multipart / ranged downloads, GCS chunked). ``progress=True``
shows a byte-level bar (S3) or a per-file bar (GCS) on the terminal. Both stores are reached
through the :class:`~kservehelper.storage.objects.ObjectStore` protocol.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

from kservehelper.storage.base import StorageSettings, join_key, split_bucket_uri
from kservehelper.storage.registry import object_store

ByteProgress = Callable[[int], None]


@contextlib.contextmanager
def progress_bar(total: int, label: str, enabled: bool) -> Iterator[ByteProgress]:
    """A callback advancing a rich progress bar by a number of bytes (a no-op if disabled)."""
    if not enabled:
        yield lambda _: None
        return
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TransferSpeedColumn,
    )

    with Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
    ) as bar:
        task = bar.add_task(label, total=total)
        yield lambda amount: bar.advance(task, amount)


# Kept for callers written before the registry (kservehelper/cache.py): the same function.
_object_client = object_store


def _local_files(source: Path) -> list[tuple[Path, str]]:
    """``(path, relative posix name)`` of a file, or of every file under a folder."""
    if source.is_file():
        return [(source, source.name)]
    if not source.is_dir():
        raise FileNotFoundError(f"{source} does not exist")
    return [(p, p.relative_to(source).as_posix()) for p in sorted(source.rglob("*")) if p.is_file()]


def upload(
    source: str | Path,
    dest: str,
    *,
    progress: bool = False,
    settings: StorageSettings | None = None,
) -> list[str]:
    """Upload a file or folder to ``dest`` (``s3://``, ``gs://`` or a local path).

    A file goes to ``dest`` itself, or into it when ``dest`` ends with ``/``; a folder's files
    go under ``dest`` keeping their relative paths. Returns the URIs written.
    """
    settings = settings or StorageSettings.from_env()
    source = Path(source)
    files = _local_files(source)
    single = source.is_file() and not dest.endswith("/")
    total = sum(path.stat().st_size for path, _ in files)
    written: list[str] = []
    with progress_bar(total, f"upload {source.name}", progress) as advance:
        if "://" not in dest or dest.startswith("file://"):
            root = Path(dest.removeprefix("file://"))
            for path, name in files:
                target = root if single else root / name
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, target)
                advance(path.stat().st_size)
                written.append(str(target))
            return written
        scheme, bucket, prefix = split_bucket_uri(dest)
        store = object_store(scheme, settings)
        for path, name in files:
            key = prefix if single else join_key(prefix, name)
            store.upload_file(path, bucket, key, progress=advance)
            written.append(f"{scheme}://{bucket}/{key}")
    return written


def download(
    source: str,
    dest: str | Path,
    *,
    progress: bool = False,
    settings: StorageSettings | None = None,
) -> list[Path]:
    """Download an object, or every object under a prefix, from ``s3://`` / ``gs://``.

    An object goes to ``dest`` (into it if ``dest`` is an existing folder); a prefix's objects
    go under ``dest`` keeping their paths relative to the prefix. Returns the local paths.
    """
    settings = settings or StorageSettings.from_env()
    dest = Path(dest)
    scheme, bucket, key = split_bucket_uri(source)
    client = object_store(scheme, settings)
    objects: list[tuple[str, Path, int]] = []
    try:
        size = client.size(bucket, key) if key and not key.endswith("/") else None
    except FileNotFoundError:
        size = None
    if size is not None:
        target = dest / Path(key).name if dest.is_dir() else dest
        objects.append((key, target, size))
    else:
        prefix = key if not key or key.endswith("/") else key + "/"
        for name, length in client.list_keys(bucket, prefix):
            if not name.endswith("/"):
                objects.append((name, dest / name[len(prefix) :], length))
        if not objects:
            raise FileNotFoundError(f"nothing at {source}")
    total = sum(length for _, _, length in objects)
    with progress_bar(total, f"download {Path(key).name or bucket}", progress) as advance:
        for name, target, _ in objects:
            target.parent.mkdir(parents=True, exist_ok=True)
            client.download_file(bucket, name, target, progress=advance)
    return [target for _, target, _ in objects]
