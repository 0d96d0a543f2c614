"""The :class:`ObjectStore` protocol both object stores implement (``s3.py``, ``gcs.py``), and the
one destination written over it.

Everything that moves objects (output delivery, input downloads, ``transfer.upload/download``,
the disk cache) asks :func:`kservehelper.storage.registry.object_store` for the store of a
scheme and speaks this protocol: no caller switches on ``s3`` versus ``gs``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar, Protocol

from kservehelper.storage.base import Destination, StorageSettings, join_key, split_bucket_uri

Progress = Callable[[int], None]
"""Called with the number of bytes moved since the previous call."""


class ObjectStore(Protocol):
    """The few operations kservehelper needs from an object store (thread-safe, synchronous:
    callers run them in worker threads)."""

    def upload_file(
        self, path: Path, bucket: str, key: str, progress: Progress | None = None
    ) -> None:
        """Upload ``path`` as ``key`` (in parts past :data:`~.base.MULTIPART_THRESHOLD`)."""

    def download_file(
        self, bucket: str, key: str, path: Path, progress: Progress | None = None
    ) -> None:
        """Download ``key`` to ``path``, streamed to disk."""

    def size(self, bucket: str, key: str) -> int:
        """The object's size in bytes; ``FileNotFoundError`` if it does not exist."""

    def list_keys(self, bucket: str, prefix: str) -> Iterator[tuple[str, int]]:
        """``(key, size)`` of every object under ``prefix``."""

    def signed_url(self, bucket: str, key: str, expiry: int) -> str:
        """A time-limited HTTPS GET URL for the object."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether a failure of one of the calls above is worth another attempt."""


class ObjectStoreDestination(Destination):
    """``scheme://bucket/prefix``: each file goes to ``prefix/<random id>/<filename>``.

    The URL returned is signed (``settings.url_expiry`` seconds) or, with
    ``settings.object_urls == "plain"``, the ``scheme://bucket/key`` URI of the object.
    Subclasses only name their scheme.
    """

    scheme: ClassVar[str]

    def __init__(self, uri: str, settings: StorageSettings | None = None) -> None:
        super().__init__(uri, settings)
        _, self.bucket, self.prefix = split_bucket_uri(uri)

    @property
    def store(self) -> ObjectStore:
        """The shared store for this scheme and these settings."""
        from kservehelper.storage.registry import object_store

        return object_store(self.scheme, self.settings)

    def is_transient(self, error: BaseException) -> bool:
        return super().is_transient(error) or self.store.is_transient(error)

    def url_of(self, key: str) -> str:
        """The URL answered for an uploaded object."""
        if self.settings.object_urls == "plain":
            return f"{self.scheme}://{self.bucket}/{key}"
        return self.store.signed_url(self.bucket, key, self.settings.url_expiry)

    def put_sync(self, path: Path, name: str) -> str:
        """Upload one file from a worker thread; returns its URL."""
        key = join_key(self.prefix, uuid.uuid4().hex[:16], name)
        self.store.upload_file(path, self.bucket, key)
        return self.url_of(key)

    async def put(self, path: Path, name: str) -> str:
        return await asyncio.to_thread(self.put_sync, path, name)
