"""A local folder as a destination: files are copied (or moved) there, URLs are ``file://``.

Meant for development and for the bundled upload server, which serves such a folder over HTTP.
"""

from __future__ import annotations

import asyncio
import shutil
import uuid
from pathlib import Path
from urllib.parse import unquote, urlsplit

from kservehelper.storage.base import Destination, StorageSettings


def local_folder(uri: str) -> Path:
    """The folder a ``file://`` URL or plain path names."""
    if uri.startswith("file://"):
        return Path(unquote(urlsplit(uri).path))
    return Path(uri)


class LocalDestination(Destination):
    """``/some/dir`` or ``file:///some/dir``: each file lands in ``dir/<random id>/<filename>``."""

    def __init__(self, uri: str, settings: StorageSettings | None = None) -> None:
        super().__init__(uri, settings)
        self.folder = local_folder(uri)

    def store(self, path: Path, name: str | None = None, *, move: bool = False) -> Path:
        """Copy (or move) ``path`` into the folder as ``name``; returns where it landed."""
        target = self.folder / uuid.uuid4().hex[:16] / (name or path.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        if move:
            shutil.move(str(path), target)
        else:
            shutil.copyfile(path, target)
        return target

    async def put(self, path: Path, name: str) -> str:
        target = await asyncio.to_thread(self.store, path, name)
        return target.resolve().as_uri()
