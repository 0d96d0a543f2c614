"""Reading a request body within its size limit, and moving large ``data:`` URIs out of it.

A JSON body carrying a 100 MB ``data:`` URI would otherwise sit in memory three times over: the
bytes read, the parsed string, the decoded file. Before the body is parsed,
:func:`spool_data_uris` finds every large base64 ``data:`` URI string in it, decodes it to a
file in chunks, and replaces it in place with a short placeholder. The parsed payload then holds
placeholders; :func:`take_spooled` hands the file to the file input that receives one, and
:func:`restore_unclaimed` puts the original text back wherever a placeholder landed somewhere
else (a ``str`` input that happens to carry a ``data:`` URI), so models see exactly what was sent.
One request's peak memory stays close to the size of its body.
"""

from __future__ import annotations

import base64
import binascii
import contextvars
import re
import secrets
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from starlette.requests import Request

from kservehelper.errors import InputError, RequestTooLarge
from kservehelper.settings import env_name

SPOOL_THRESHOLD = 256 * 1024
"""``data:`` URIs at least this long (in the body) are decoded to disk before parsing."""

DECODE_CHUNK = 4 * 1024 * 1024
"""Base64 characters decoded at a time (a multiple of 4)."""

PLACEHOLDER_PREFIX = "kservehelper-spooled:"

# From the current position: everything up to the next string that starts with "data:" (other
# strings, escapes included, are skipped whole; possessive, so the scan never backtracks).
_SKIP_TO_DATA_URI = re.compile(rb'(?:[^"]++|"(?!data:)[^"\\]*+(?:\\.[^"\\]*+)*+")*+')
_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"')
_HEADER = re.compile(rb"data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(?:;[\w.+=-]*)*?);base64")
_BASE64 = re.compile(rb"[A-Za-z0-9+/]*={0,2}")
_COLON = re.compile(rb"\s*:")


def too_large(limit: int) -> RequestTooLarge:
    return RequestTooLarge(
        f"the request body is larger than {limit} bytes ({env_name('max_request_bytes')}); "
        "send large files as URLs (http(s)://, s3://, gs://) instead of data: URIs"
    )


async def read_body(request: Request, limit: int) -> bytearray:
    """The whole body, refused with :class:`RequestTooLarge` (413) as soon as it passes ``limit``.

    Read into one growing buffer (no list of chunks joined at the end, which would hold the
    body twice).
    """
    announced = request.headers.get("content-length")
    if announced is not None and announced.isdigit() and int(announced) > limit:
        raise too_large(limit)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise too_large(limit)
    return body


@dataclass
class SpooledFile:
    """A ``data:`` URI decoded to ``path``; ``header`` is its text before the comma."""

    path: Path
    header: str
    claimed: bool = False


@dataclass
class Spool:
    """The ``data:`` URIs taken out of one request's body, by placeholder."""

    folder: Path | None = None
    files: dict[str, SpooledFile] = field(default_factory=dict)

    def new_path(self) -> tuple[str, Path]:
        if self.folder is None:
            self.folder = Path(tempfile.mkdtemp(prefix="kservehelper-body-"))
        token = secrets.token_hex(16)
        return PLACEHOLDER_PREFIX + token, self.folder / token

    def remove(self) -> None:
        """Delete the files no input took (the request is over)."""
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


_current: contextvars.ContextVar[Spool | None] = contextvars.ContextVar(
    "kservehelper_spool", default=None
)


def use_spool(spool: Spool) -> None:
    """Make ``spool`` the current request's (read by :func:`take_spooled`)."""
    _current.set(spool)


def spool_data_uris(body: bytearray, spool: Spool) -> None:
    """Decode every large base64 ``data:`` URI string in ``body`` to a file and put a
    placeholder in its place. Malformed ones are left as they are (validation reports them)."""
    if len(body) < SPOOL_THRESHOLD or body.find(b'"data:') < 0:
        return
    position = 0
    while True:
        skipped = _SKIP_TO_DATA_URI.match(body, position)  # always matches (maybe nothing)
        start = skipped.end() if skipped is not None else len(body)
        if start >= len(body):
            return
        token = _STRING.match(body, start)
        if token is None:  # an unterminated string: the JSON parser will say so
            return
        position = token.end()
        if position - start >= SPOOL_THRESHOLD and not _is_key(body, position):
            position = _spool_one(body, start, position, spool)


def _is_key(body: bytearray, end: int) -> bool:
    return _COLON.match(body, end) is not None


def _spool_one(body: bytearray, start: int, end: int, spool: Spool) -> int:
    """Spool the string token ``body[start:end]`` if it is a base64 ``data:`` URI; returns
    where the scan goes on."""
    inner_start, inner_end = start + 1, end - 1
    comma = body.find(b",", inner_start, min(inner_end, inner_start + 512))
    if comma < 0 or body.find(b"\\", inner_start, inner_end) >= 0:
        return end  # escaped characters or no header: parsed and decoded the ordinary way
    if _HEADER.fullmatch(body, inner_start, comma) is None:
        return end
    placeholder, path = spool.new_path()
    with memoryview(body) as view:
        decoded = _decode_to_file(view[comma + 1 : inner_end], path)
    if not decoded:
        path.unlink(missing_ok=True)
        return end
    spool.files[placeholder] = SpooledFile(path, body[inner_start:comma].decode("ascii"))
    replacement = f'"{placeholder}"'.encode()
    body[start : start + len(replacement)] = replacement
    del body[start + len(replacement) : end]  # in place: no second copy of the body
    return start + len(replacement)


def _decode_to_file(data: memoryview, path: Path) -> bool:
    """Decode base64 ``data`` into ``path`` chunk by chunk; ``False`` if it is not base64."""
    total = len(data)
    if total % 4:
        return False
    with path.open("wb") as handle:
        for offset in range(0, total, DECODE_CHUNK):
            chunk = data[offset : offset + DECODE_CHUNK]
            last = offset + DECODE_CHUNK >= total
            if _BASE64.fullmatch(chunk) is None or (not last and chunk[-1:] == b"="):
                return False
            try:
                handle.write(binascii.a2b_base64(chunk))
            except binascii.Error:
                return False
    return True


def take_spooled(value: str) -> SpooledFile | None:
    """The spooled file a placeholder stands for, in the current request (claimed once)."""
    spool = _current.get()
    if spool is None or not value.startswith(PLACEHOLDER_PREFIX):
        return None
    spooled = spool.files.get(value)
    if spooled is None or spooled.claimed:
        return None
    spooled.claimed = True
    return spooled


def restore_unclaimed(payload: Any, file_fields: Iterable[str], spool: Spool) -> Any:
    """Put the original ``data:`` text back for placeholders outside the file inputs."""
    if not spool.files or not isinstance(payload, dict):
        return _restore(payload, spool)
    keep = set(file_fields)
    restored: dict[str, Any] = {}
    for key, value in payload.items():
        if key in keep and (isinstance(value, str) or _all_strings(value)):
            restored[key] = value
        else:
            restored[key] = _restore(value, spool)
    return restored


def _all_strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _restore(value: Any, spool: Spool) -> Any:
    if not spool.files:
        return value
    if isinstance(value, str):
        spooled = spool.files.get(value)
        if spooled is None:
            return value
        encoded = base64.b64encode(spooled.path.read_bytes()).decode("ascii")
        return f"{spooled.header},{encoded}"
    if isinstance(value, list):
        return [_restore(item, spool) for item in value]
    if isinstance(value, dict):
        return {key: _restore(item, spool) for key, item in value.items()}
    return value


def spooled_size_error(field: str, size: int, limit: int) -> InputError:
    message = f"the file is too large ({size} bytes, the limit is {limit} bytes)"
    return InputError(
        f"invalid input {field!r}: {message}",
        [{"loc": [field], "msg": message, "type": "file_too_large"}],
    )
