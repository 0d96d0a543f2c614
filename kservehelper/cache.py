"""Caches for model code: loaded models in memory, model files on a bounded local disk.

* :class:`MemoryLRUCache`: the N most recently used loaded objects (e.g. LoRA adapters, pipelines),
  each loaded once even when many threads ask for it at the same time.
* :class:`DiskCache`: files from ``s3://`` / ``gs://`` kept under a byte budget on local disk;
  a miss downloads, the least recently used files are evicted. Safe across threads and
  processes: a per-file lock (``filelock``) makes one process download while the others wait,
  and a SQLite index records sizes and last use.
* :class:`ModelCache`: both around your ``load_fn``::

      cache = ModelCache(load_fn=lambda path: torch.load(path), max_models=2,
                         disk=DiskCache("/var/cache/models", max_bytes=50 * 2**30))
      model = cache.get("s3://models/lora/style-a.safetensors")

Needs the ``cache`` extra (cachetools, filelock) and ``s3`` / ``gcs`` for object stores.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from kservehelper.storage.base import StorageSettings, split_bucket_uri

V = TypeVar("V")


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"kservehelper.cache needs {name}: pip install 'kservehelper[cache]'"
        ) from None


class MemoryLRUCache(Generic[V]):
    """At most ``max_items`` objects, least recently used dropped first; thread-safe."""

    def __init__(self, max_items: int) -> None:
        cachetools = _import("cachetools")
        self._items: Any = cachetools.LRUCache(maxsize=max_items)
        self._lock = threading.Lock()
        self._loading: dict[Hashable, threading.Lock] = {}

    def get(self, key: Hashable) -> V | None:
        """The cached object (now the most recently used), or ``None``."""
        with self._lock:
            return self._items.get(key)

    def set(self, key: Hashable, value: V) -> None:
        """Store ``value``, evicting the least recently used object if full."""
        with self._lock:
            self._items[key] = value

    def get_or_load(self, key: Hashable, load: Callable[[], V]) -> V:
        """The cached object, or ``load()``'s result, loaded once however many callers wait."""
        value = self.get(key)
        if value is not None:
            return value
        with self._lock:
            key_lock = self._loading.setdefault(key, threading.Lock())
        with key_lock:
            value = self.get(key)
            if value is None:
                value = load()
                self.set(key, value)
        with self._lock:
            self._loading.pop(key, None)
        return value

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items


class DiskCache:
    """Object-store files on local disk within ``max_bytes``; see the module docstring.

    Files keep their names (``<dir>/objects/<hash of URI>/<name>``), so loaders that look at
    the extension work. A file being read by one process may be evicted by another only when
    the cache is over budget; on POSIX an open file stays readable after eviction.
    """

    def __init__(
        self, directory: str | Path, max_bytes: int, settings: StorageSettings | None = None
    ) -> None:
        self.filelock = _import("filelock")
        self.directory = Path(directory)
        self.max_bytes = max_bytes
        self.settings = settings or StorageSettings.from_env()
        (self.directory / "objects").mkdir(parents=True, exist_ok=True)
        (self.directory / "locks").mkdir(parents=True, exist_ok=True)
        self.downloads = 0  # in this process; for tests and metrics
        with self._index() as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS entries (key TEXT PRIMARY KEY, uri TEXT NOT NULL,"
                " path TEXT NOT NULL, size INTEGER NOT NULL, last_used REAL NOT NULL)"
            )

    @contextlib.contextmanager
    def _index(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.directory / "index.sqlite3", timeout=60, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("BEGIN IMMEDIATE")  # one writer at a time, across processes
            yield db
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        finally:
            db.close()

    def _lock(self, key: str) -> Any:
        return self.filelock.FileLock(str(self.directory / "locks" / f"{key}.lock"))

    @staticmethod
    def key_of(uri: str) -> str:
        return hashlib.sha256(uri.encode()).hexdigest()[:32]

    def get(self, uri: str) -> Path:
        """The local path of ``uri`` (``s3://`` or ``gs://``), downloading it on a miss."""
        key = self.key_of(uri)
        with self._lock(key):
            with self._index() as db:
                row = db.execute("SELECT path FROM entries WHERE key = ?", (key,)).fetchone()
                if row is not None and Path(row[0]).is_file():
                    db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (time.time(), key))
                    return Path(row[0])
            path = self._download(uri, key)
            with self._index() as db:
                db.execute(
                    "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                    (key, uri, str(path), path.stat().st_size, time.time()),
                )
        self._evict(keep=key)
        return path

    def _download(self, uri: str, key: str) -> Path:
        from kservehelper.storage.transfer import _object_client

        scheme, bucket, name = split_bucket_uri(uri)
        client = _object_client(scheme, self.settings)
        size = client.size(bucket, name)
        if size > self.max_bytes:
            raise ValueError(f"{uri} is {size} bytes, more than the cache's {self.max_bytes}")
        folder = self.directory / "objects" / key
        shutil.rmtree(folder, ignore_errors=True)
        partial = self.directory / "objects" / f"{key}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        filename = PurePosixPath(urlsplit(uri).path).name or "object"
        partial.mkdir(parents=True)
        client.download_file(bucket, name, partial / filename)
        partial.rename(folder)  # whole file appears at once: no reader sees half of it
        self.downloads += 1
        return folder / filename

    def _evict(self, keep: str) -> None:
        """Drop least recently used files until the cache fits ``max_bytes``."""
        with self._index() as db:
            rows = db.execute("SELECT key, size FROM entries ORDER BY last_used ASC").fetchall()
            total = sum(size for _, size in rows)
            for key, size in rows:
                if total <= self.max_bytes:
                    break
                if key == keep:
                    continue
                lock = self._lock(key)
                try:
                    lock.acquire(timeout=0)
                except self.filelock.Timeout:
                    continue  # being downloaded or refreshed right now
                try:
                    shutil.rmtree(self.directory / "objects" / key, ignore_errors=True)
                    db.execute("DELETE FROM entries WHERE key = ?", (key,))
                    total -= size
                finally:
                    lock.release()

    def size(self) -> int:
        """Bytes currently held."""
        with self._index() as db:
            return int(db.execute("SELECT COALESCE(SUM(size), 0) FROM entries").fetchone()[0])

    def __contains__(self, uri: str) -> bool:
        with self._index() as db:
            row = db.execute("SELECT path FROM entries WHERE key = ?", (self.key_of(uri),))
            found = row.fetchone()
        return found is not None and Path(found[0]).is_file()


class ModelCache(Generic[V]):
    """Loaded models by URI: memory LRU in front of an optional :class:`DiskCache`.

    ``get(uri)`` returns the loaded model, calling ``load_fn(local_path)`` on a memory miss
    (with a disk cache and an ``s3://``/``gs://`` URI, the path is the cached download;
    otherwise ``load_fn`` receives ``uri`` as it is).
    """

    def __init__(
        self, load_fn: Callable[[Any], V], max_models: int = 1, disk: DiskCache | None = None
    ) -> None:
        self.load_fn = load_fn
        self.memory: MemoryLRUCache[V] = MemoryLRUCache(max_models)
        self.disk = disk

    def get(self, uri: str) -> V:
        """The loaded model for ``uri``."""

        def load() -> V:
            remote = urlsplit(uri).scheme in ("s3", "gs")
            return self.load_fn(self.disk.get(uri) if self.disk and remote else uri)

        return self.memory.get_or_load(uri, load)
