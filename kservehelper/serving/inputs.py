"""File inputs: turning what a request sends for a ``Path``/``File`` input into a local file.

A request may send a ``data:`` URI, a URL (see :func:`fetch_file`) or, with
``kservehelper predict`` only, a local path. Every file is held to
``KSERVEHELPER_MAX_INPUT_BYTES`` (a ``data:`` URI by its decoded size) and written to disk in
chunks. The files made here live in a per-request temporary folder removed after the request.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import pathlib
import re
import shutil
import urllib.parse
from typing import Any

from kservehelper.errors import InputError
from kservehelper.schema.fields import InputField
from kservehelper.serving.request_body import take_spooled
from kservehelper.settings import env_name, get_settings
from kservehelper.types import Path

_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),(?P<data>.*)$", re.S
)
_BASE64 = re.compile(r"[A-Za-z0-9+/]*={0,2}")
_DECODE_CHUNK = 4 * 1024 * 1024  # base64 characters at a time (a multiple of 4)


def _error(field: str, msg: str, kind: str = "file_input") -> InputError:
    return InputError(
        f"invalid input {field!r}: {msg}", [{"loc": [field], "msg": msg, "type": kind}]
    )


def _too_large(field: str, size: int, limit: int) -> InputError:
    return _error(
        field,
        f"the file is too large ({size} bytes, the limit is {limit} bytes, "
        f"{env_name('max_input_bytes')})",
        "file_too_large",
    )


def needs_file(field: InputField, value: Any) -> bool:
    """Whether a validated value of ``field`` is to become a local file: any value of a file
    input but ``None`` and the input's own default; so an empty string sent for a file is an
    error (:func:`materialize_file`), not a path to the current folder."""
    if not field.is_file or value is None:
        return False
    return bool(value) or value != field.spec.default


def materialize_file(
    field: str, value: str, workdir: pathlib.Path, allow_local: bool = False
) -> Path:
    """Return a local file for one file input (``field`` names it in errors).

    Local paths are accepted only when ``allow_local`` (``kservehelper predict``): a server
    must not let a request read arbitrary files from its disk.
    """
    if not value:
        raise _error(field, "the file input is empty; send a data: URI or a URL", "file_empty")
    spooled = take_spooled(value)
    if spooled is not None:
        return _from_spool(field, spooled.path, spooled.header, workdir)
    if value.startswith("data:"):
        return _from_data_uri(field, value, workdir)
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme in ("", "file"):
        if not allow_local:
            raise _error(
                field,
                "local paths are accepted only by `kservehelper predict`; "
                "send the file as a data: URI or a URL",
                "local_path_refused",
            )
        local = pathlib.Path(urllib.parse.urlsplit(value).path if scheme else value)
        if not local.is_file():
            raise _error(field, f"no such file: {value}")
        return Path(local)
    raise _error(
        field,
        f"unsupported URL scheme {scheme!r}; send a data: URI or a local path",
        "unsupported_scheme",
    )


async def fetch_file(
    field: str, value: str, workdir: pathlib.Path, allow_local: bool = False
) -> Path:
    """Like :func:`materialize_file`, and also downloads ``http(s)://``, ``s3://`` and ``gs://``
    URLs (through the outbound policy, streamed, size-limited) into ``workdir``."""
    from kservehelper.storage.fetch import fetch_input, is_remote

    if is_remote(value):
        return Path(await fetch_input(value, workdir / "remote" / field, field=field))
    return materialize_file(field, value, workdir, allow_local)


def _target(field: str, mime: str, workdir: pathlib.Path) -> pathlib.Path:
    suffix = mimetypes.guess_extension(mime) or ""
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{field}{suffix}"
    counter = 1
    while target.exists():
        target = workdir / f"{field}-{counter}{suffix}"
        counter += 1
    return target


def _from_spool(field: str, source: pathlib.Path, header: str, workdir: pathlib.Path) -> Path:
    """A ``data:`` URI the server decoded while reading the body: checked, then moved."""
    limit = get_settings().max_input_bytes
    size = source.stat().st_size
    if size > limit:
        raise _too_large(field, size, limit)
    match = _DATA_URI.match(header + ",")
    target = _target(field, (match.group("mime") if match else None) or "", workdir)
    shutil.move(str(source), target)
    return Path(target)


def _from_data_uri(field: str, value: str, workdir: pathlib.Path) -> Path:
    match = _DATA_URI.match(value)
    if match is None:
        raise _error(field, "malformed data: URI; expected data:<mime>;base64,<data>")
    limit = get_settings().max_input_bytes
    params = match.group("params") or ""
    start = match.start("data")
    target = _target(field, match.group("mime") or "", workdir)
    try:
        if ";base64" in params:
            _decode_base64(field, value, start, limit, target)
        else:
            payload = urllib.parse.unquote_to_bytes(value[start:])
            if len(payload) > limit:
                raise _too_large(field, len(payload), limit)
            target.write_bytes(payload)
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Path(target)


def _decode_base64(field: str, value: str, start: int, limit: int, target: pathlib.Path) -> None:
    """Decode the base64 of a ``data:`` URI to ``target`` in chunks, size checked first."""
    encoded = len(value) - start
    size = encoded // 4 * 3 - (value.endswith("==") + value.endswith("="))
    if size > limit:
        raise _too_large(field, size, limit)
    invalid = _error(field, "the data: URI's base64 payload is invalid")
    if encoded % 4:
        raise invalid
    with target.open("wb") as handle:
        for offset in range(start, len(value), _DECODE_CHUNK):
            chunk = value[offset : offset + _DECODE_CHUNK]
            last = offset + _DECODE_CHUNK >= len(value)
            if _BASE64.fullmatch(chunk) is None or (not last and chunk.endswith("=")):
                raise invalid
            try:
                handle.write(base64.b64decode(chunk, validate=True))
            except (binascii.Error, ValueError):
                raise invalid from None
