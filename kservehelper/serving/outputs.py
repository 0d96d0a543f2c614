"""Output files: where models write them (``generate_filepath``) and how they leave the server.

Files go to the request's ``upload_webhook``, else the server's default destination; with
neither (local development), small files come back inline as ``data:`` URIs.
"""

from __future__ import annotations

import base64
import contextlib
import mimetypes
import os
import pathlib
import re
import shutil
import urllib.parse
import uuid
from collections.abc import Sequence
from contextvars import ContextVar
from typing import Any

import pydantic

from kservehelper.errors import InputError, UploadError
from kservehelper.schema.signature import OutputKind
from kservehelper.serving import workdirs
from kservehelper.settings import get_settings
from kservehelper.types import Path

_UNSAFE_FILENAME = re.compile(r"[^A-Za-z0-9._-]+")
_UNIQUE_PREFIX = re.compile(r"^[0-9a-f]{32}-")

#: The files ``generate_filepath`` made during the current request (see ``track_outputs``).
_REQUEST_FILES: ContextVar[list[pathlib.Path] | None] = ContextVar(
    "kservehelper_request_files", default=None
)


def output_dir() -> pathlib.Path:
    """The output folder: ``$KSERVEHELPER_OUTPUT_DIR``, else ``outputs/`` in this process's
    own folder (:mod:`~kservehelper.serving.workdirs`, removed when the process ends)."""
    configured = get_settings().output_dir
    if not configured:
        return workdirs.subfolder("outputs")
    configured.mkdir(parents=True, exist_ok=True)
    return configured


def generate_filepath(filename: str) -> Path:
    """A new, unique path for an output file named like ``filename``.

    Safe under concurrent requests: every call returns a different path (a UUID prefix), in
    the output folder (:func:`output_dir`). The request removes the file when it ends.
    Only the base name of ``filename`` is kept, so the path never escapes the folder.
    """
    name = _UNSAFE_FILENAME.sub("_", pathlib.PurePath(filename).name).strip("._") or "output"
    path = Path(output_dir() / f"{uuid.uuid4().hex}-{name}")
    tracked = _REQUEST_FILES.get()
    if tracked is not None:
        tracked.append(path)
    return path


def track_outputs() -> list[pathlib.Path]:
    """Record the files ``generate_filepath`` makes from now on in this request's context.

    The returned list is what the request removes at its end, so the output folder stays
    empty even when ``predict`` fails after writing files. Threads see it when the request
    runs them with ``contextvars.copy_context().run``.
    """
    files: list[pathlib.Path] = []
    _REQUEST_FILES.set(files)
    return files


def is_local_destination(destination: str) -> bool:
    """Whether ``destination`` names a folder on this machine (a path or a ``file://`` URL)."""
    scheme = urllib.parse.urlsplit(destination).scheme.lower()
    return scheme in ("", "file")


def check_destination(destination: str) -> None:
    """Reject an unknown or disallowed destination (HTTP 400) before ``predict`` runs."""
    from kservehelper.storage.base import resolve

    resolve(destination)


def inline_limit() -> int:
    return get_settings().inline_output_limit


def check_output_paths(paths: Sequence[object], method: str) -> list[pathlib.Path]:
    """Check that a method annotated to return files really returned existing files."""
    checked: list[pathlib.Path] = []
    for item in paths:
        if not isinstance(item, (str, os.PathLike)):
            raise TypeError(
                f"{method}() is annotated to return files but returned {type(item).__name__}"
            )
        path = pathlib.Path(item)
        if not path.is_file():
            raise UploadError(f"{method}() returned {str(path)!r}, which is not an existing file")
        checked.append(path)
    return checked


def result_files(kind: OutputKind, method: str, result: Any) -> list[pathlib.Path] | None:
    """The output files a method's ``result`` consists of, or ``None`` for a plain value.

    ``kind`` is the method's annotated output; an unannotated method returning files (one
    path, or a non-empty list of paths) is served as files too.
    """
    if kind is OutputKind.VALUE:
        if isinstance(result, os.PathLike):
            kind = OutputKind.FILE
        elif (
            isinstance(result, (list, tuple))
            and result
            and all(isinstance(r, os.PathLike) for r in result)
        ):
            kind = OutputKind.FILES
        else:
            return None
    if kind is OutputKind.FILE:
        return check_output_paths([result], method)
    if not isinstance(result, (list, tuple)):
        raise TypeError(
            f"{method}() is annotated to return a list of files "
            f"but returned {type(result).__name__}"
        )
    return check_output_paths(result, method)


def value_response(result: Any) -> dict[str, Any]:
    """The response body of a plain value: a dict as is, anything else as ``{"output": ...}``."""
    if isinstance(result, dict):
        return dict(result)
    if isinstance(result, pydantic.BaseModel):
        return {"output": result.model_dump(mode="json")}
    return {"output": result}


def inline_data_uris(paths: Sequence[pathlib.Path]) -> list[str]:
    """Encode files as ``data:`` URIs (no destination configured: local development only)."""
    total = sum(p.stat().st_size for p in paths)
    limit = inline_limit()
    if total > limit:
        raise InputError(
            f"the output files are {total} bytes, more than the {limit} bytes returned inline; "
            'set "upload_webhook" in the request (or start the server with upload_to=...) '
            "to receive URLs instead",
            [
                {
                    "loc": ["upload_webhook"],
                    "msg": "required for outputs this large",
                    "type": "missing",
                }
            ],
        )
    uris = []
    for path in paths:
        mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        uris.append(f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}")
    return uris


def move_to_folder(paths: Sequence[pathlib.Path], folder: pathlib.Path) -> list[pathlib.Path]:
    """Move output files into ``folder`` under their given names (without the unique prefix),
    never overwriting an existing file."""
    folder.mkdir(parents=True, exist_ok=True)
    moved = []
    for path in paths:
        name = _UNIQUE_PREFIX.sub("", path.name)
        stem, suffix = pathlib.PurePath(name).stem, pathlib.PurePath(name).suffix
        target, counter = folder / name, 1
        while target.exists():
            target = folder / f"{stem}-{counter}{suffix}"
            counter += 1
        moved.append(pathlib.Path(shutil.move(str(path), target)))
    return moved


def remove_files(paths: Sequence[pathlib.Path]) -> None:
    """Delete output files after the response, whatever happened to them."""
    for path in paths:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


async def deliver_files(paths: Sequence[pathlib.Path], destination: str | None) -> list[str]:
    """Deliver output files; return one URL per file, in order.

    With no destination the files come back inline as ``data:`` URIs (local development).
    """
    if destination is None:
        return inline_data_uris(paths)
    from kservehelper.storage.base import resolve

    target = resolve(destination)  # InputError (400) for an unknown or disallowed destination
    try:
        # Destinations see the name the model gave, without generate_filepath's unique prefix.
        names = [_UNIQUE_PREFIX.sub("", path.name) for path in paths]
        return await target.upload_files(paths, names)
    finally:
        await target.aclose()
