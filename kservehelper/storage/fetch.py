"""Input files from elsewhere: ``http(s)://``, ``s3://`` and ``gs://`` to a local temporary file.

Every download passes the outbound policy first (:mod:`kservehelper.storage.policy`: the URL's
shape, ``KSERVEHELPER_ALLOWED_INPUTS``, and for HTTP the address each connection goes to, also
after every redirect). It is streamed to disk and bounded: the size is checked up front when the
source announces it and again while bytes arrive, so a lying or endless source cannot fill the
disk. Failures are :class:`~kservehelper.errors.InputError` (HTTP 400) naming the request field.
"""

from __future__ import annotations

import asyncio
from pathlib import Path, PurePosixPath
from urllib.parse import unquote, urljoin, urlsplit

import httpx

from kservehelper.errors import InputError
from kservehelper.settings import env_name, get_settings
from kservehelper.storage import policy
from kservehelper.storage.base import StorageSettings, redact, split_bucket_uri
from kservehelper.storage.urls import AllowList, UrlRefused, allow_list, refusal

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
    name = PurePosixPath(unquote(urlsplit(uri).path).replace("\\", "/")).name.strip()
    return name if name not in ("", ".", "..") else "input"


def input_allow_list(settings: StorageSettings) -> AllowList:
    """``KSERVEHELPER_ALLOWED_INPUTS`` (as carried by ``settings``), parsed."""
    return allow_list(settings.allowed_inputs, env_name("allowed_inputs"),
                             "input_not_allowed")  # fmt: skip


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
        settings: Timeouts, object-store endpoints and the allow-list; default from the
            environment.
    """
    limit = max_input_bytes() if max_bytes is None else max_bytes
    settings = settings or StorageSettings.from_env()
    uri = uri.strip()
    scheme = urlsplit(uri).scheme.lower()
    from kservehelper.storage.registry import source

    download = source(scheme)
    if download is None:
        raise input_error(
            field,
            f"unsupported URL scheme {scheme!r}; send http(s)://, s3://, gs://, "
            "a data: URI or a local path",
            "unsupported_scheme",
        )
    allowed = input_allow_list(settings)
    policy.check_request_url(uri, allowed, field=field)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / filename_from(uri)
    try:
        await download(uri, target, field=field, limit=limit, settings=settings, allowed=allowed)
    except UrlRefused as error:
        target.unlink(missing_ok=True)
        raise refusal(field, error) from None
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return target


async def fetch_http(
    url: str,
    target: Path,
    *,
    field: str,
    limit: int,
    settings: StorageSettings,
    allowed: AllowList,
) -> None:
    """Stream an HTTP(S) download to ``target``, enforcing ``limit``.

    Redirects are followed (at most :data:`~kservehelper.storage.policy.MAX_REDIRECTS`), each
    new location checked like the first URL; every connection goes through the address check.
    """
    timeout = httpx.Timeout(min(settings.timeout, 300.0), connect=10.0)
    rule = policy.ConnectRule.for_list(allowed)
    try:
        async with policy.pinned_client(rule, timeout=timeout, follow_redirects=False) as client:
            for hop in range(policy.MAX_REDIRECTS + 1):
                async with client.stream("GET", url) as response:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        if hop == policy.MAX_REDIRECTS:
                            raise input_error(
                                field,
                                f"downloading {redact(url)} redirected more than "
                                f"{policy.MAX_REDIRECTS} times",
                                "url_redirects",
                            )
                        url = urljoin(url, location)
                        policy.check_request_url(url, allowed, field=field)
                        continue
                    await _save(response, url, target, field, limit)
                    return
    except httpx.HTTPError as error:
        cause = str(error) or type(error).__name__
        if "CERTIFICATE_VERIFY_FAILED" in cause:
            cause += (
                "; the server does not trust this site's TLS certificate (its operator can "
                "add the issuing CA with SSL_CERT_FILE)"
            )
        raise input_error(
            field, f"cannot download {redact(url)}: {cause}", "url_unreachable"
        ) from None


async def _save(response: httpx.Response, url: str, target: Path, field: str, limit: int) -> None:
    if response.status_code != 200:
        raise input_error(
            field, f"downloading {redact(url)} failed: HTTP {response.status_code}", "url_status"
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


async def fetch_object(
    uri: str,
    target: Path,
    *,
    field: str,
    limit: int,
    settings: StorageSettings,
    allowed: AllowList,
) -> None:
    """Download an ``s3://`` or ``gs://`` object to ``target`` (in a worker thread)."""
    await asyncio.to_thread(_fetch_object, uri, target, field, limit, settings)


def _fetch_object(
    uri: str, target: Path, field: str, limit: int, settings: StorageSettings
) -> None:
    from kservehelper.storage.registry import object_store

    scheme, bucket, key = split_bucket_uri(uri)
    if not key:
        raise input_error(field, f"{uri} names a bucket, not a file", "object_missing")
    try:
        store = object_store(scheme, settings)
        size = store.size(bucket, key)
        if size > limit:
            raise too_large(field, size, limit)
        store.download_file(bucket, key, target)
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
