"""The destination interface every output target implements, and the storage settings.

A :class:`Destination` turns local files into URLs. Subclasses implement :meth:`Destination.put`
for one attempt at one file; this base class adds what every destination needs and no
destination should re-implement: bounded parallelism, a per-file timeout, retries with
exponential backoff on transient failures, and one :class:`~kservehelper.errors.UploadError`
naming the file and the cause when delivery finally fails. Which class handles a URI is
:mod:`kservehelper.storage.registry`'s business (``resolve()``).

Configuration comes from :class:`StorageSettings` (environment variables, see ``docs/files.md``).
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from kservehelper.errors import InputError, UploadError
from kservehelper.settings import get_settings
from kservehelper.storage.urls import UrlRefused, refusal

logger = logging.getLogger(__name__)

T = TypeVar("T")

MULTIPART_THRESHOLD = 16 * 1024 * 1024
"""Files at least this large go to object stores in parts (S3 multipart, GCS chunked)."""

CHUNK_SIZE = 1024 * 1024
"""Bytes read from disk at a time when streaming a file to or from the network."""


@dataclass(frozen=True)
class StorageSettings:
    """How files are delivered. :meth:`from_env` reads the ``KSERVEHELPER_*`` variables.

    Attributes:
        attempts: Tries per file (1 = no retry) on connection errors, timeouts, 429 and 5xx.
        timeout: Seconds allowed for one attempt at one file.
        concurrency: Files uploaded at the same time within one request.
        backoff: First retry delay in seconds; doubles on each further attempt (with jitter).
        url_expiry: Lifetime in seconds of presigned (S3) / signed (GCS) URLs.
        object_urls: ``"signed"`` returns presigned HTTPS URLs for object stores; ``"plain"``
            returns the ``s3://`` / ``gs://`` URI of the object.
        token: Bearer token for webhooks (the bundled upload server checks it). It is sent
            only to the operator's destination and to ``token_origins``.
        token_origins: Further origins (``scheme://host[:port]``) the token may go to.
        s3_endpoint_url: S3-compatible endpoint; ``None`` uses boto3's own resolution, which
            honours ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``.
        gcs_endpoint_url: GCS API endpoint; ``None`` uses the client default, which honours
            ``STORAGE_EMULATOR_HOST``.
        allowed: Allow-list of a request's destinations (``scheme://host[:port][/prefix]``,
            bucket URIs); empty: any public address (see :mod:`~kservehelper.storage.policy`).
        allowed_inputs: Allow-list of input locations, the same way. Set it on servers whose
            credentials reach private buckets: without it, a request may name any object those
            credentials can read.
    """

    attempts: int = 3
    timeout: float = 600.0
    concurrency: int = 8
    backoff: float = 0.5
    url_expiry: int = 24 * 3600
    object_urls: str = "signed"
    token: str | None = field(default=None, repr=False)
    token_origins: tuple[str, ...] = field(default_factory=tuple)
    s3_endpoint_url: str | None = None
    gcs_endpoint_url: str | None = None
    allowed: tuple[str, ...] = field(default_factory=tuple)
    allowed_inputs: tuple[str, ...] = field(default_factory=tuple)

    @classmethod
    def from_env(cls) -> StorageSettings:
        """Settings from the environment (:mod:`kservehelper.settings`)."""
        env = get_settings()
        return cls(
            attempts=env.upload_attempts,
            timeout=env.upload_timeout,
            concurrency=env.upload_concurrency,
            url_expiry=env.url_expiry,
            object_urls=env.object_urls,
            token=env.upload_token,
            token_origins=env.upload_token_origins,
            allowed=env.allowed_destinations,
            allowed_inputs=env.allowed_inputs,
        )


class RetryableError(Exception):
    """A transient failure (429, 5xx, dropped connection): the attempt may be repeated."""


class Destination(ABC):
    """Somewhere output files go. ``await destination.upload_files(paths)`` gives their URLs."""

    #: The request field a refusal by the outbound policy names (set by ``resolve()``).
    field_name: str = "upload_webhook"

    def __init__(self, uri: str, settings: StorageSettings | None = None) -> None:
        self.uri = uri
        self.settings = settings or StorageSettings.from_env()

    @abstractmethod
    async def put(self, path: Path, name: str) -> str:
        """One attempt at delivering one file under the file name ``name``; returns its URL.

        Raise :class:`RetryableError` (or let a transient error escape, see
        :meth:`is_transient`) for failures worth another attempt, anything else for
        failures that are final.
        """

    def is_transient(self, error: BaseException) -> bool:
        """Whether ``error`` (raised by :meth:`put`) is worth another attempt."""
        return isinstance(error, (RetryableError, asyncio.TimeoutError, TimeoutError))

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most destinations hold nothing
        """Release connections; the destination is not used afterwards."""

    async def upload_file(self, path: Path, name: str | None = None) -> str:
        """Deliver one file with timeout and retries; raise :class:`UploadError` on failure.

        ``name`` is the file name at the destination (default: the local file's name).
        """
        name = name or path.name
        return await self.with_retries(lambda: self.put(path, name), f"output file '{name}'")

    async def with_retries(self, attempt: Callable[[], Awaitable[T]], what: str) -> T:
        """Run ``attempt()`` under the per-file timeout, retrying transient failures.

        ``what`` names the file(s) in log lines and in the final :class:`UploadError`.
        """
        attempts = self.settings.attempts
        for number in range(1, attempts + 1):
            try:
                return await asyncio.wait_for(attempt(), self.settings.timeout)
            except (UploadError, InputError):
                raise
            except UrlRefused as error:  # the name now resolves somewhere requests may not go
                raise refusal(self.field_name, error) from None
            except Exception as error:
                cause = describe_error(error, self.settings.timeout)
                if number < attempts and self.is_transient(error):
                    delay = self.settings.backoff * 2 ** (number - 1) * (1 + random.random() / 4)
                    logger.warning(
                        "upload of %s to %s failed (%s), attempt %d/%d, retrying in %.1fs",
                        what, redact(self.uri), cause, number, attempts, delay,
                    )  # fmt: skip
                    await asyncio.sleep(delay)
                    continue
                tries = f" after {number} attempts" if number > 1 else ""
                raise UploadError(
                    f"could not upload {what} to {redact(self.uri)}{tries}: {cause}"
                ) from error
        raise AssertionError("unreachable")  # pragma: no cover

    async def upload_files(
        self, paths: Sequence[Path], names: Sequence[str] | None = None
    ) -> list[str]:
        """Deliver files in parallel (at most ``settings.concurrency`` at once); URLs in order.

        ``names`` are the file names at the destination (default: the local files' names).
        """
        limit = asyncio.Semaphore(self.settings.concurrency)
        names = list(names) if names is not None else [path.name for path in paths]

        async def bounded(path: Path, name: str) -> str:
            async with limit:
                return await self.upload_file(path, name)

        tasks = [
            asyncio.ensure_future(bounded(path, name))
            for path, name in zip(paths, names, strict=True)
        ]
        try:
            return list(await asyncio.gather(*tasks))
        finally:
            for task in tasks:
                task.cancel()


def split_bucket_uri(uri: str) -> tuple[str, str, str]:
    """``s3://bucket/some/prefix`` → ``("s3", "bucket", "some/prefix")`` (prefix may be "")."""
    parts = urlsplit(uri)
    if parts.scheme not in ("s3", "gs") or not parts.netloc:
        raise ValueError(f"{uri!r} is not an s3://bucket/... or gs://bucket/... URI")
    return parts.scheme, parts.netloc, parts.path.lstrip("/")


def join_key(*parts: str) -> str:
    """Object key from parts, without empty segments or doubled slashes."""
    return "/".join(part.strip("/") for part in parts if part.strip("/"))


def describe_error(error: BaseException, timeout: float) -> str:
    """A short human cause for ``error``: its message, or what a bare timeout means."""
    if isinstance(error, (asyncio.TimeoutError, TimeoutError)) and not str(error):
        return f"timed out after {timeout:g}s"
    text = str(error) or type(error).__name__
    return text if len(text) <= 300 else text[:300] + "..."


def redact(uri: str) -> str:
    """``uri`` without credentials or a query string (which may hold a signature)."""
    parts = urlsplit(uri)
    if not parts.scheme or not parts.netloc:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"


def __getattr__(name: str) -> Any:
    # resolve() moved to the registry (base no longer imports its own subclasses); code written
    # against ``kservehelper.storage.base.resolve`` keeps working.
    if name == "resolve":
        from kservehelper.storage.registry import resolve

        return resolve
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
