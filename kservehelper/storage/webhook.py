"""The upload webhook protocol of the original kservehelper.

* ``.../upload``: one ``multipart/form-data`` POST per file, field ``file``; the server
  answers ``{"url": "..."}``. Files go in parallel (bounded by the settings' concurrency).
* ``.../upload_batch``: one POST carrying ``file_0`` ... ``file_{n-1}`` and the header
  ``NUM_FILES: n``; the server answers ``{"urls": [...]}`` in the same order.

The bundled upload server (``kservehelper upload-server``) speaks both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import IO
from urllib.parse import urlsplit

from kservehelper.storage.http_transport import HttpDestination, content_type_of


class WebhookDestination(HttpDestination):
    """A webhook URL whose path ends in ``/upload`` (per file) or ``/upload_batch``."""

    @property
    def batch(self) -> bool:
        """Whether this is the ``/upload_batch`` protocol."""
        return urlsplit(self.uri).path.rstrip("/").endswith("/upload_batch")

    async def put(self, path: Path, name: str) -> str:
        if self.batch:
            return (await self.post_batch([path], [name]))[0]
        with path.open("rb") as handle:
            files = {"file": (name, handle, content_type_of(name))}
            response = await self.client.post(self.uri, files=files)
        self.check_status(response)
        body = self.parse_json(response)
        if not isinstance(body, dict) or not isinstance(body.get("url"), str):
            raise ValueError(f'the webhook answered {str(body)[:200]!r}, expected {{"url": ...}}')
        return str(body["url"])

    async def post_batch(self, paths: Sequence[Path], names: Sequence[str]) -> list[str]:
        """One attempt at the ``/upload_batch`` protocol for all ``paths``."""
        with contextlib.ExitStack() as stack:
            files: dict[str, tuple[str, IO[bytes], str]] = {}
            for index, (path, name) in enumerate(zip(paths, names, strict=True)):
                handle = stack.enter_context(path.open("rb"))
                files[f"file_{index}"] = (name, handle, content_type_of(name))
            response = await self.client.post(
                self.uri, files=files, headers={"NUM_FILES": str(len(paths))}
            )
        self.check_status(response)
        body = self.parse_json(response)
        urls = body.get("urls") if isinstance(body, dict) else None
        if not isinstance(urls, list) or len(urls) != len(paths):
            raise ValueError(
                f"the webhook answered {str(body)[:200]!r}, expected "
                f'{{"urls": [...]}} with {len(paths)} URLs'
            )
        return [str(url) for url in urls]

    async def upload_files(
        self, paths: Sequence[Path], names: Sequence[str] | None = None
    ) -> list[str]:
        if not self.batch or len(paths) <= 1:
            return await super().upload_files(paths, names)
        # One request carries every file: it is retried as a whole and a failure names them all.
        final = list(names) if names is not None else [path.name for path in paths]
        quoted = ", ".join(f"'{name}'" for name in final)
        return await self.with_retries(
            lambda: self.post_batch(paths, final), f"output files {quoted}"
        )
