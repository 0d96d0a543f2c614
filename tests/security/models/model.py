"""Models for the security tests (pick one with --class)."""

from __future__ import annotations

import hashlib
import logging
import pathlib
import resource
from collections.abc import Iterator
from typing import Optional

from kservehelper import KServeModel
from kservehelper.types import File, Input, Path, Secret

logger = logging.getLogger("security.model")


class Secretive:
    """Takes secrets and, on request, quotes them in errors and logs (the server must not)."""

    def predict(
        self,
        session: Secret = Input(description="A per-request credential"),
        api_key: Secret = Input(description="The model's key", default="sk-default-4711-0815"),
        mode: str = Input(default="ok", choices=["ok", "raise", "value", "log"]),
    ) -> dict:
        key, sent = api_key.get_secret_value(), session.get_secret_value()
        if mode == "raise":
            raise RuntimeError(f"upstream refused key {key} for session {sent}")
        if mode == "value":
            raise ValueError(f"session {sent} is not valid")
        if mode == "log":
            logger.error("calling upstream with %s and %s", key, sent)
            try:
                raise ConnectionError(f"refused: {sent}")
            except ConnectionError:
                logger.exception("upstream failed for %s", sent)
        return {"ok": True, "lengths": [len(key), len(sent)]}


class FileSize:
    """A file input's size and digest, and the process's peak memory (ru_maxrss, KiB)."""

    def predict(self, document: File = Input(description="Any file")) -> dict:
        data = pathlib.Path(document)
        digest = hashlib.sha256()
        with data.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        return {
            "size": data.stat().st_size,
            "sha256": digest.hexdigest(),
            "name": data.name,
            "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        }


class TextFile:
    """Writes ``text`` to a file output (exercises destinations)."""

    def predict(self, text: str = Input(default="hello", max_length=1000)) -> Path:
        path = KServeModel.generate_filepath("text.txt")
        pathlib.Path(path).write_text(text)
        return Path(path)


class Echo:
    """Returns a string input as it came (a data: URI in a str input must arrive untouched)."""

    def predict(
        self, text: str = Input(default=""), blob: Optional[File] = Input(default=None)
    ) -> dict:
        size = pathlib.Path(blob).stat().st_size if blob is not None else None
        return {
            "length": len(text),
            "digest": hashlib.sha256(text.encode()).hexdigest(),
            "blob_size": size,
        }


class SecretStream:
    """A stream that fails quoting its secret after one item."""

    def predict(self, token: Secret = Input(description="A credential")) -> Iterator[str]:
        yield "first"
        raise RuntimeError(f"stream broke while using {token.get_secret_value()}")
