"""Input files from elsewhere: ``http(s)://``, ``s3://`` and ``gs://`` to a local temporary file.

Every download is streamed to disk and bounded: the size is checked up front when the source
announces it and again while bytes arrive, so a lying or endless source cannot fill the disk.
Failures are :class:`~kservehelper.errors.InputError` (HTTP 400) naming the request field.
"""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urlsplit

import httpx

from kservehelper.errors import InputError
from kservehelper.settings import env_name, get_settings
from kservehelper.storage.base import (
    StorageSettings,
    is_allowed,
    redact,
    split_bucket_uri,
)

REMOTE_SCHEMES = ("http", "https", "s3", "gs")


def max_input_bytes() -> int:
    """The largest input file accepted (``KSERVEHELPER_MAX_INPUT_BYTES``, default 1 GiB)."""
    return get_settings().max_input_bytes


def is_remote(value: str) -> bool:
    """Whether ``value`` is a URL :func:`fetch_input` downloads."""
    return urlsplit(value).scheme.lower() in REMOTE_SCHEMES


def input_error(field: str, message: str, kind: str) -> InputError:
    return InputError(
        f"invalid input {field!r}: {message}", [{"loc": [field], "msg": message, "type": kind}]
    )


def too_large(field: str, size: int | None, limit: int) -> InputError:
    told = f"{size} bytes, " if size is not None else ""
    return input_error(
        field, f"the file is too large ({told}the limit is {limit} bytes)", "file_too_large"
    )


def filename_from(uri: str) -> str:
    """A safe local file name from the last path segment of ``uri``."""
    name = PurePosixPath(unquote(urlsplit(uri).path)).name.strip()
    return name if name not in ("", ".", "..") else "input"


async def fetch_input(
    uri: str,
    folder: Path,
    *,
    field: str,
    max_bytes: int | None = None,
    settings: StorageSettings | None = None,
) -> Path:
    """Download ``uri`` into ``folder`` (created if needed); returns the file's path.

    Args:
        uri: ``http(s)://...``, ``s3://bucket/key`` or ``gs://bucket/key``.
        folder: Where the file goes; the caller removes it after the request.
        field: The request field, named in errors.
        max_bytes: Size limit; default :func:`max_input_bytes`.
        settings: Timeouts and object-store endpoints; default from the environment.
    """
    limit = max_input_bytes() if max_bytes is None else max_bytes
    settings = settings or StorageSettings.from_env()
    if not is_allowed(uri, settings.allowed_inputs):
        raise input_error(
            field,
            f"{redact(uri)} is not an allowed input location on this server "
            f"({env_name('allowed_inputs')}: {', '.join(settings.allowed_inputs)})",
            "input_not_allowed",
        )
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename_from(uri)
    scheme = urlsplit(uri).scheme.lower()
    try:
        if scheme in ("http", "https"):
            await fetch_http(uri, target, field=field, limit=limit, settings=settings)
        elif scheme in ("s3", "gs"):
            await asyncio.to_thread(fetch_object, uri, target, field, limit, settings)
        else:
            raise input_error(
                field,
                f"unsupported URL scheme {scheme!r}; send http(s)://, s3://, gs://, "
                "a data: URI or a local path",
                "unsupported_scheme",
            )
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


async def fetch_http(
    url: str, target: Path, *, field: str, limit: int, settings: StorageSettings
) -> None:
    """Stream an HTTP(S) download to ``target``, enforcing ``limit``."""
    timeout = httpx.Timeout(min(settings.timeout, 300.0), connect=10.0)
    try:
        async with (
            httpx.AsyncClient(follow_redirects=True, timeout=timeout) as client,
            client.stream("GET", url) as response,
        ):
            if response.status_code != 200:
                raise input_error(
                    field,
                    f"downloading {redact(url)} failed: HTTP {response.status_code}",
                    "url_status",
                )
            announced = response.headers.get("content-length")
            if announced and announced.isdigit() and int(announced) > limit:
                raise too_large(field, int(announced), limit)
            received = 0
            with target.open("wb") as handle:
                async for chunk in response.aiter_bytes(1024 * 1024):
                    received += len(chunk)
                    if received > limit:
                        raise too_large(field, None, limit)
                    handle.write(chunk)
    except httpx.HTTPError as error:
        cause = str(error) or type(error).__name__
        raise input_error(
            field, f"cannot download {redact(url)}: {cause}", "url_unreachable"
        ) from None


def fetch_object(uri: str, target: Path, field: str, limit: int, settings: StorageSettings) -> None:
    """Download an ``s3://`` or ``gs://`` object to ``target`` (from a worker thread)."""
    scheme, bucket, key = split_bucket_uri(uri)
    if not key:
        raise input_error(field, f"{uri} names a bucket, not a file", "object_missing")
    try:
        if scheme == "s3":
            from kservehelper.storage.s3 import shared_s3_client

            client_s3 = shared_s3_client(settings)
            size = client_s3.size(bucket, key)
            if size > limit:
                raise too_large(field, size, limit)
            client_s3.download_file(bucket, key, target)
        else:
            from kservehelper.storage.gcs import shared_gcs_client

            client_gcs = shared_gcs_client(settings)
            size = client_gcs.size(bucket, key)
            if size > limit:
                raise too_large(field, size, limit)
            client_gcs.download_file(bucket, key, target)
    except InputError:
        raise
    except FileNotFoundError:
        raise input_error(field, f"{uri} does not exist", "object_missing") from None
    except ImportError as error:
        raise input_error(field, str(error), "unsupported_scheme") from None
    except Exception as error:
        cause = str(error) or type(error).__name__
        raise input_error(
            field, f"cannot download {uri}: {cause[:300]}", "object_unreachable"
        ) from None
    if target.stat().st_size > limit:  # the object changed between the size check and now
        raise too_large(field, target.stat().st_size, limit)
