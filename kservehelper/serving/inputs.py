"""File inputs: turning what a request sends for a ``Path``/``File`` input into a local file.

A request may send a local path (useful with ``kservehelper predict``) or a ``data:`` URI. The
files made here live in a per-request temporary folder removed after the request.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import pathlib
import re
import urllib.parse

from kservehelper.errors import InputError
from kservehelper.types import Path

_DATA_URI = re.compile(
    r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[^;,]*)*?),(?P<data>.*)$", re.S
)


def _error(field: str, msg: str, kind: str = "file_input") -> InputError:
    return InputError(
        f"invalid input {field!r}: {msg}", [{"loc": [field], "msg": msg, "type": kind}]
    )


def materialize_file(
    field: str, value: str, workdir: pathlib.Path, allow_local: bool = False
) -> Path:
    """Return a local file for one file input (``field`` names it in errors).

    Local paths are accepted only when ``allow_local`` (``kservehelper predict``): a server
    must not let a request read arbitrary files from its disk.
    """
    if value.startswith("data:"):
        return _from_data_uri(field, value, workdir)
    scheme = urllib.parse.urlsplit(value).scheme
    if scheme in ("", "file"):
        if not allow_local:
            raise _error(
                field,
                "local paths are accepted only by `kservehelper predict`; "
                "send the file as a data: URI",
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
    URLs (streamed, size-limited by ``KSERVEHELPER_MAX_INPUT_BYTES``) into ``workdir``."""
    from kservehelper.storage.fetch import fetch_input, is_remote

    if is_remote(value):
        return Path(await fetch_input(value, workdir / "remote" / field, field=field))
    return materialize_file(field, value, workdir, allow_local)


def _from_data_uri(field: str, value: str, workdir: pathlib.Path) -> Path:
    match = _DATA_URI.match(value)
    if match is None:
        raise _error(field, "malformed data: URI; expected data:<mime>;base64,<data>")
    params = match.group("params") or ""
    data = match.group("data")
    try:
        payload = (
            base64.b64decode(data, validate=True)
            if ";base64" in params
            else urllib.parse.unquote_to_bytes(data)
        )
    except (binascii.Error, ValueError):
        raise _error(field, "the data: URI's base64 payload is invalid") from None
    suffix = mimetypes.guess_extension(match.group("mime") or "") or ""
    workdir.mkdir(parents=True, exist_ok=True)
    target = workdir / f"{field}{suffix}"
    counter = 1
    while target.exists():
        target = workdir / f"{field}-{counter}{suffix}"
        counter += 1
    target.write_bytes(payload)
    return Path(target)
