"""Caches for model code: loaded models in memory, model files on a bounded local disk.

* :class:`MemoryLRUCache`: the N most recently used loaded objects (e.g. LoRA adapters, pipelines),
  each loaded once even when many threads ask for it at the same time.
* :class:`DiskCache`: files from ``s3://`` / ``gs://`` kept under a byte budget on local disk;
  a miss downloads, the least recently used files are evicted. Safe across threads and
  processes: a per-file lock (``filelock``) makes one process download while the others wait,
  and a SQLite index records sizes and the order of use.
* :class:`ModelCache`: both around your ``load_fn``::

      cache = ModelCache(load_fn=lambda path: torch.load(path), max_models=2,
                         disk=DiskCache("/var/cache/models", max_bytes=50 * 2**30))
      model = cache.get("s3://models/lora/style-a.safetensors")

Needs the ``cache`` extra (cachetools, filelock) and ``s3`` / ``gcs`` for object stores.

kservehelper 2.0's names and signatures work from this module too (``MemoryCache``,
``DiskLRUCache``, ``DiskCache(num_shards, capacity, cache_dir, aws_bucket, ...)``,
``ModelCache(..., model_load_func=...)``): they are adapters over the classes here, in
:mod:`kservehelper.compat.cache`, and warn once that they are deprecated.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
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

Fetch = Callable[[Path], None]
"""Writes the content of a cache entry to the path it is given (a miss's download)."""

# 2.0's names that exist only as adapters (kservehelper.compat.cache); see __getattr__.
_V2_ONLY = ("MemoryCache", "DiskLRUCache")


def _import(name: str) -> Any:
    try:
        return __import__(name)
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            f"kservehelper.cache needs {name}: pip install 'kservehelper[cache]'"
        ) from None


def _is_v2_disk_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether a ``DiskCache(...)`` call uses 2.0's signature: 2.0's first parameter is an
    ``int`` (``num_shards``) and every parameter has a default; today's first is a folder."""
    if args:
        return isinstance(args[0], int) and not isinstance(args[0], bool)
    return "directory" not in kwargs


def _copy_file(source: str | Path, target: Path) -> None:
    shutil.copyfile(source, target)


class MemoryLRUCache(Generic[V]):
    """At most ``max_items`` objects, least recently used dropped first; thread-safe.

    ``num_cached_objects=`` (2.0's name for ``max_items``) is accepted too.
    """

    def __init__(self, max_items: int | None = None, *, num_cached_objects: int | None = None):
        if num_cached_objects is not None:
            from kservehelper.compat import warn_deprecated

            warn_deprecated("MemoryLRUCache(num_cached_objects=...)", "MemoryLRUCache(max_items)")
            max_items = num_cached_objects if max_items is None else max_items
        if max_items is None or max_items < 1:
            raise ValueError(f"MemoryLRUCache needs max_items >= 1, got {max_items}")
        cachetools = _import("cachetools")
        self.max_items = max_items
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

    def snapshot(self) -> dict[Hashable, V]:
        """A copy of the cached objects by key (reading it changes no order of use)."""
        with self._lock:
            return dict(self._items.items())

    @property
    def cache(self) -> dict[Hashable, V]:
        """2.0's attribute: the cached objects (a copy; see :meth:`snapshot`)."""
        return self.snapshot()

    @property
    def capacity(self) -> int:
        """2.0's name for :attr:`max_items`."""
        return self.max_items

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
    the cache is over budget; on POSIX an open file stays readable after eviction. Entries
    appear whole: a file is written under a temporary name and renamed into place.

    Called with kservehelper 2.0's arguments (``DiskCache()``, ``DiskCache(num_shards=...,
    cache_dir=..., aws_bucket=...)``), it returns 2.0's adapter
    (:class:`kservehelper.compat.cache.DiskCache`).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        if cls is DiskCache and _is_v2_disk_call(args, kwargs):
            from kservehelper.compat.cache import DiskCache as V2DiskCache

            return V2DiskCache(*args, **kwargs)
        return super().__new__(cls)

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

    @staticmethod
    def _next_use(db: sqlite3.Connection) -> float:
        # Strictly increasing, so the order of use is exact even within one clock tick.
        latest = db.execute("SELECT MAX(last_used) FROM entries").fetchone()[0]
        now = time.time()
        return now if latest is None or now > latest else float(latest) + 1e-6

    def _lock(self, key: str) -> Any:
        return self.filelock.FileLock(str(self.directory / "locks" / f"{key}.lock"))

    @staticmethod
    def key_of(uri: str) -> str:
        return hashlib.sha256(uri.encode()).hexdigest()[:32]

    def path_of(self, uri: str) -> Path:
        """Where the cached copy of ``uri`` lives: ``objects/<hash of uri>/<its file name>``."""
        filename = PurePosixPath(urlsplit(uri).path).name or "object"
        return self.directory / "objects" / self.key_of(uri) / filename

    def get(self, uri: str, fetch: Fetch | None = None) -> Path:
        """The local path of ``uri``; on a miss, ``fetch(path)`` writes it first.

        Without ``fetch``, ``uri`` (``s3://`` or ``gs://``) is downloaded from its store.
        Concurrent callers, in any process, wait for the one fetch.
        """
        key = self.key_of(uri)
        with self._lock(key):
            path = self._touch(key)
            if path is None:
                path = self.path_of(uri)
                self._write(path, fetch or (lambda target: self._download(uri, target)))
                self._record(key, uri, path)
                self.downloads += 1
        self.shrink(self.max_bytes, keep=key)
        return path

    def put(self, uri: str, source: str | Path) -> Path:
        """Store a copy of the local file ``source`` as ``uri``'s entry (replacing any), e.g.
        right after uploading it, so the next :meth:`get` needs no download."""
        key = self.key_of(uri)
        with self._lock(key):
            path = self.path_of(uri)
            self._write(path, functools.partial(_copy_file, source))
            self._record(key, uri, path)
        self.shrink(self.max_bytes, keep=key)
        return path

    def lookup(self, uri: str) -> Path | None:
        """The cached copy of ``uri`` (now the most recently used), or ``None``; never fetches."""
        return self._touch(self.key_of(uri))

    def _touch(self, key: str) -> Path | None:
        with self._index() as db:
            row = db.execute("SELECT path FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None or not Path(row[0]).is_file():
                return None
            db.execute("UPDATE entries SET last_used = ? WHERE key = ?", (self._next_use(db), key))
            return Path(row[0])

    def _record(self, key: str, uri: str, path: Path) -> None:
        with self._index() as db:
            db.execute(
                "INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?)",
                (key, uri, str(path), path.stat().st_size, self._next_use(db)),
            )

    @staticmethod
    def _write(path: Path, write: Fetch) -> None:
        """Write an entry under a temporary name, then rename it into place: no reader ever
        sees half a file, and a failed write leaves nothing behind."""
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".{path.name}.partial")
        partial.unlink(missing_ok=True)
        try:
            write(partial)
            if not partial.is_file():
                raise FileNotFoundError(f"nothing was written for {path.name}")
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise

    def _download(self, uri: str, target: Path) -> None:
        from kservehelper.storage.transfer import _object_client

        scheme, bucket, name = split_bucket_uri(uri)
        client = _object_client(scheme, self.settings)
        size = client.size(bucket, name)
        if size > self.max_bytes:
            raise ValueError(f"{uri} is {size} bytes, more than the cache's {self.max_bytes}")
        client.download_file(bucket, name, target)

    def _discard(self, path: Path) -> None:
        path.unlink(missing_ok=True)
        if path.parent.parent == self.directory / "objects":  # the entry's own folder
            with contextlib.suppress(OSError):
                path.parent.rmdir()

    def shrink(self, max_bytes: int, keep: str | None = None) -> None:
        """Drop least recently used files until at most ``max_bytes`` remain.

        ``keep`` (a key, see :meth:`key_of`) is never dropped; nor is a file being written
        or refreshed right now.
        """
        with self._index() as db:
            rows = db.execute(
                "SELECT key, path, size FROM entries ORDER BY last_used ASC"
            ).fetchall()
            total = sum(size for _, _, size in rows)
            for key, path, size in rows:
                if total <= max_bytes:
                    break
                if key == keep:
                    continue
                lock = self._lock(key)
                try:
                    lock.acquire(timeout=0)
                except self.filelock.Timeout:
                    continue  # being downloaded or refreshed right now
                try:
                    self._discard(Path(path))
                    db.execute("DELETE FROM entries WHERE key = ?", (key,))
                    total -= size
                finally:
                    lock.release()

    def entries(self) -> list[tuple[str, int]]:
        """``(uri, size)`` of every cached file, least recently used first."""
        with self._index() as db:
            rows = db.execute("SELECT uri, size FROM entries ORDER BY last_used ASC").fetchall()
        return [(str(uri), int(size)) for uri, size in rows]

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

    Called with kservehelper 2.0's arguments (``ModelCache(model_load_func=..., aws_bucket=...)``),
    it returns 2.0's adapter (:class:`kservehelper.compat.cache.ModelCache`).
    """

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        first = args[0] if args else kwargs.get("load_fn")
        if cls is ModelCache and (first is None or not callable(first)):
            from kservehelper.compat.cache import ModelCache as V2ModelCache

            return V2ModelCache(*args, **kwargs)
        return super().__new__(cls)

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


def __getattr__(name: str) -> Any:
    if name in _V2_ONLY:
        from kservehelper.compat import cache as v2

        return getattr(v2, name)
    raise AttributeError(f"module 'kservehelper.cache' has no attribute {name!r}")
