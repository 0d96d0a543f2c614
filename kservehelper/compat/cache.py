"""2.0's caches (``kservehelper.cache``), as adapters over today's :mod:`kservehelper.cache`.

* :class:`MemoryCache`: models named in ``<folder>/models.json`` (or by file name), loaded with
  ``load_func`` and kept in a :class:`~kservehelper.cache.MemoryLRUCache`.
* :class:`DiskLRUCache`: local files by key, ``cache[key] = path`` / ``cache[key]``, over a
  :class:`~kservehelper.cache.DiskCache` whose files sit at ``<cache_dir>/<key>`` as in 2.0.
* :class:`DiskCache`: files by key in one S3 bucket, on a bounded local disk.
* :class:`ModelCache`: loaded models in memory in front of :class:`DiskCache`.

2.0's methods return ``None`` / ``False`` on failure (after logging why) instead of raising;
that is kept. What changed on purpose is listed in README.md ("Coming from kservehelper 2.0").
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path, PurePath
from typing import Any

from kservehelper import cache as today
from kservehelper.compat import warn_deprecated

logger = logging.getLogger(__name__)

DEFAULT_CAPACITY = 10 * 10**9
"""2.0's default disk budget: 10 GB."""


def _checked_name(key: Any, what: str) -> str:
    """A key used as a file name under the cache's folder: one plain path component.

    Keys often come from requests (a LoRA name, a model id): ``../x``, ``/etc/x`` or names
    the cache keeps for itself (leading ``.``) are refused instead of reaching other files.
    """
    if not isinstance(key, str) or not key:
        raise ValueError(f"{what}: the key must be a non-empty string, got {key!r}")
    if "/" in key or "\\" in key or "\0" in key or key.startswith(".") or len(key) > 255:
        raise ValueError(
            f"{what}: key {key!r} is not a plain file name (no '/', '\\', NUL or leading '.', "
            "at most 255 characters)"
        )
    return key


class MemoryCache:
    """2.0's in-memory model cache: ``cache[key]`` is the loaded model (or ``None``).

    ``key`` is a name from ``models`` (or from ``<folder>/models.json``, re-read when a name is
    unknown) mapped to a file in ``folder``, or a file name in ``folder`` itself. The model is
    ``load_func(path)``, loaded once and kept while it is among the ``num_cached_objects``
    most recently used. New code: :meth:`kservehelper.cache.MemoryLRUCache.get_or_load`.
    """

    CONFIG_FILE = "models.json"

    def __init__(
        self,
        folder: str,
        num_cached_objects: int,
        models: dict[str, str] | None = None,
        load_func: Callable[[str], Any] | None = None,
    ) -> None:
        warn_deprecated("kservehelper.cache.MemoryCache", "MemoryLRUCache.get_or_load")
        if load_func is None:
            raise ValueError("MemoryCache: `load_func` for loading models is not set")
        self.folder = folder
        self.load_func = load_func
        self.cache: today.MemoryLRUCache[Any] = today.MemoryLRUCache(num_cached_objects)
        self.models: dict[str, str] = dict(models) if models is not None else {}
        if models is None:
            self._load_model_config()

    def _load_model_config(self) -> None:
        path = os.path.join(self.folder, self.CONFIG_FILE)
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as handle:
                models = json.load(handle)
            if not isinstance(models, dict):
                raise ValueError(f"{path}: expected a JSON object of model name -> file name")
            self.models = {str(name): str(file) for name, file in models.items()}

    def _path_of(self, key: str) -> str:
        if key not in self.models:
            self._load_model_config()
        if key in self.models:  # the operator's mapping: trusted as written
            return os.path.join(self.folder, self.models[key])
        relative = PurePath(key)
        if not key or relative.is_absolute() or ".." in relative.parts or "\0" in key:
            raise ValueError(
                f"MemoryCache: {key!r} is neither a model name in {self.CONFIG_FILE} nor a "
                f"file name inside {self.folder or 'the current folder'}"
            )
        return os.path.join(self.folder, key)

    def __getitem__(self, key: str) -> Any:
        path = self._path_of(key)
        try:
            return self.cache.get_or_load(key, lambda: self.load_func(path))
        except Exception as error:
            logger.error("MemoryCache: loading %r from %s failed: %s", key, path, error)
            return None


class DiskLRUCache:
    """2.0's local file cache: ``cache[key] = filepath`` copies the file in, ``cache[key]`` is
    the cached copy's path (``<cache_dir>/<key>``) or ``None``.

    Least recently used files are evicted before a new one is added while the total is at
    least ``capacity`` bytes (2.0's rule: the newest file may take the total past it). The
    index is shared by every process using ``cache_dir``. New code:
    :class:`kservehelper.cache.DiskCache`.
    """

    def __init__(self, capacity: int | None = None, cache_dir: str | None = None) -> None:
        warn_deprecated("kservehelper.cache.DiskLRUCache", "kservehelper.cache.DiskCache")
        self.capacity = capacity or DEFAULT_CAPACITY
        self.cache_dir = cache_dir or tempfile.gettempdir()
        self.store = _KeyedStore(self.cache_dir)

    @property
    def total_size(self) -> int:
        """Bytes held."""
        return self.store.size()

    @property
    def cache(self) -> OrderedDict[str, dict[str, Any]]:
        """2.0's index: key -> ``{"filename", "size"}``, least recently used first (a copy)."""
        return OrderedDict(
            (key, {"filename": key, "size": size}) for key, size in self.store.entries()
        )

    def __getitem__(self, key: str) -> str | None:
        path = self.store.lookup(_checked_name(key, "DiskLRUCache"))
        return str(path) if path is not None else None

    def __setitem__(self, key: str, filepath: str) -> None:
        _checked_name(key, "DiskLRUCache")
        self.store.shrink(self.capacity - 1)  # 2.0: evict while total >= capacity
        self.store.put(key, filepath)


class _KeyedStore(today.DiskCache):
    """Today's disk cache with 2.0's layout: entries are keys stored at ``<folder>/<key>``,
    the index and locks in ``<folder>/.kservehelper-cache``; it never evicts by itself."""

    def __init__(self, folder: str) -> None:
        self.folder = Path(folder)
        super().__init__(self.folder / ".kservehelper-cache", max_bytes=sys.maxsize)

    def path_of(self, uri: str) -> Path:
        return self.folder / _checked_name(uri, "DiskLRUCache")


def _s3_storage(
    bucket: str | None, region: str | None, key_id: str | None, secret: str | None
) -> Any:
    """2.0's S3 settings, read when the cache is made (2.0 read them at import)."""
    bucket = bucket or os.getenv("BUCKET")
    key_id = os.getenv("AWS_ACCESS_KEY_ID", "") if key_id is None else key_id
    secret = os.getenv("AWS_SECRET_ACCESS_KEY", "") if secret is None else secret
    if not bucket:
        logger.warning("S3 storage is not set (give aws_bucket= or $BUCKET): local files only")
        return None
    from kservehelper.compat.storage import S3Storage

    return S3Storage(bucket, region or os.getenv("REGION_NAME"), key_id, secret)


class DiskCache:
    """2.0's S3-backed disk cache: ``get(key)`` is a local path of the bucket's object ``key``
    (downloaded on a miss) or ``None``; ``set(key, filepath)`` uploads the file as ``key`` and
    keeps a copy; both never raise.

    One least-recently-used store of ``capacity`` bytes under ``<cache_dir>/kservehelper-cache``
    (``num_shards`` is accepted for 2.0 code; today's per-file locks replace 2.0's shards).
    The bucket is ``aws_bucket`` or ``$BUCKET``, the region ``aws_region_name`` or
    ``$REGION_NAME``; credentials are the keys given (or ``$AWS_ACCESS_KEY_ID`` /
    ``$AWS_SECRET_ACCESS_KEY``), else boto3's standard chain. New code:
    :class:`kservehelper.cache.DiskCache` with ``s3://`` URIs.
    """

    def __init__(
        self,
        num_shards: int = 10,
        capacity: int = DEFAULT_CAPACITY,
        cache_dir: str | None = None,
        aws_bucket: str | None = None,
        aws_region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
    ) -> None:
        warn_deprecated(
            "kservehelper.cache.DiskCache(num_shards, capacity, cache_dir, aws_...)",
            "kservehelper.cache.DiskCache(directory, max_bytes)",
        )
        if num_shards < 1:
            raise ValueError(f"DiskCache: num_shards must be at least 1, got {num_shards}")
        self.num_shards = num_shards
        self.cache_dir = cache_dir or tempfile.gettempdir()
        self.storage = _s3_storage(
            aws_bucket, aws_region_name, aws_access_key_id, aws_secret_access_key
        )
        self.bucket = self.storage.bucket if self.storage is not None else None
        self.store = today.DiskCache(Path(self.cache_dir) / "kservehelper-cache", capacity)

    def _shard_index(self, key: Any) -> int:
        """2.0's shard of ``key`` (uniform over ``num_shards``); kept for code that used it."""
        digest = int.from_bytes(hashlib.sha256(str(key).encode()).digest()[:8], "big")
        return digest * self.num_shards >> 64

    def _uri(self, key: str) -> str:
        if not isinstance(key, str) or not key:
            raise ValueError(f"DiskCache: the key must be a non-empty string, got {key!r}")
        return f"s3://{self.bucket or 'local'}/{key}"

    def get(self, key: str) -> str | None:
        """The local path of ``key``, downloading it from the bucket on a miss; else ``None``."""
        try:
            uri = self._uri(key)
            storage = self.storage
            if storage is None:
                path = self.store.lookup(uri)
                return str(path) if path is not None else None

            def fetch(target: Path) -> None:
                if not storage.download(key, target):
                    raise FileNotFoundError(f"s3://{storage.bucket}/{key} could not be downloaded")

            return str(self.store.get(uri, fetch=fetch))
        except Exception as error:
            logger.error("DiskCache: %r is not available: %s", key, error)
            return None

    def set(self, key: str, filepath: str) -> bool:
        """Upload ``filepath`` to the bucket as ``key`` and keep a copy; ``True`` on success."""
        try:
            uri = self._uri(key)
            if self.storage is not None and not self.storage.upload(filepath, key):
                return False
            self.store.put(uri, filepath)
            return True
        except Exception as error:
            logger.error("DiskCache: storing %r from %s failed: %s", key, filepath, error)
            return False


class ModelCache:
    """2.0's model cache: ``get(key)`` is the model loaded from the bucket's object ``key``
    (``model_load_func(local_path)``, or the path itself without one), or ``None``;
    ``set(key, filepath)`` uploads, caches and loads it (``True`` on success).

    Up to ``num_mem_objects`` models stay loaded; files are cached as by :class:`DiskCache`.
    New code: :class:`kservehelper.cache.ModelCache`.
    """

    def __init__(
        self,
        num_shards: int = 10,
        capacity: int = DEFAULT_CAPACITY,
        cache_dir: str | None = None,
        num_mem_objects: int = 10,
        model_load_func: Callable[[str], Any] | None = None,
        aws_bucket: str | None = None,
        aws_region_name: str | None = None,
        aws_access_key_id: str | None = None,
        aws_secret_access_key: str | None = None,
    ) -> None:
        warn_deprecated(
            "kservehelper.cache.ModelCache(..., model_load_func=...)",
            "kservehelper.cache.ModelCache(load_fn, max_models, disk)",
        )
        self.disk_cache = DiskCache(
            num_shards=num_shards,
            capacity=capacity,
            cache_dir=cache_dir,
            aws_bucket=aws_bucket,
            aws_region_name=aws_region_name,
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
        )
        self.load_func = model_load_func
        self.models: today.ModelCache[Any] = today.ModelCache(self._load, num_mem_objects)
        self.mem_cache = self.models.memory

    def _load(self, key: str) -> Any:
        path = self.disk_cache.get(key)
        if path is None:
            raise LookupError(f"model with key {key!r} is not in the disk cache nor the bucket")
        model = self.load_func(path) if self.load_func is not None else path
        if model is None:
            raise ValueError(f"model_load_func returned None for {path}")
        return model

    def get(self, key: str) -> Any:
        """The loaded model for ``key``, or ``None``."""
        try:
            return self.models.get(key)
        except Exception as error:
            logger.error("ModelCache: %r could not be loaded: %s", key, error)
            return None

    def set(self, key: str, filepath: str) -> bool:
        """Upload, cache and load the model file ``filepath`` as ``key``."""
        if not self.disk_cache.set(key, filepath):
            return False
        return self.get(key) is not None
