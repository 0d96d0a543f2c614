"""What the HTTP destinations share: one pooled ``httpx.AsyncClient`` under the outbound policy,
the upload token where it may go, status handling."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx

from kservehelper.storage.base import CHUNK_SIZE, Destination, RetryableError, StorageSettings
from kservehelper.storage.policy import ConnectRule, pinned_client


def content_type_of(name: str | Path) -> str:
    """The MIME type guessed from a file name, ``application/octet-stream`` if unknown."""
    return mimetypes.guess_type(Path(name).name)[0] or "application/octet-stream"


async def read_file_chunks(path: Path) -> AsyncIterator[bytes]:
    """Stream a file from disk in chunks, so a large file never sits in memory."""
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_SIZE):
            yield chunk


def snippet(text: str, limit: int = 200) -> str:
    """The start of a response body, on one line, for error messages."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


class HttpDestination(Destination):
    """A destination reached over HTTP(S); subclasses implement :meth:`put`.

    Args:
        rule: Where connections may go (a request's destination: see
            :class:`~kservehelper.storage.policy.ConnectRule`); ``None`` for the operator's
            own destination, which is trusted.
        send_token: Whether the upload token goes with the requests (only to origins the
            operator named: :func:`~kservehelper.storage.policy.token_allowed`).
    """

    def __init__(
        self,
        uri: str,
        settings: StorageSettings | None = None,
        *,
        rule: ConnectRule | None = None,
        send_token: bool = False,
    ) -> None:
        super().__init__(uri, settings)
        self.rule = rule
        self.send_token = send_token
        self._client: httpx.AsyncClient | None = None

    @property
    def client(self) -> httpx.AsyncClient:
        """The connection pool, created on first use (inside the running event loop)."""
        if self._client is None:
            headers = {}
            if self.settings.token and self.send_token:
                headers["Authorization"] = f"Bearer {self.settings.token}"
            self._client = pinned_client(
                self.rule,
                headers=headers,
                timeout=httpx.Timeout(self.settings.timeout, connect=10.0),
                limits=httpx.Limits(max_connections=max(self.settings.concurrency, 1) * 2),
                follow_redirects=False,
            )
        return self._client

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    def is_transient(self, error: BaseException) -> bool:
        return super().is_transient(error) or isinstance(error, httpx.TransportError)

    @staticmethod
    def check_status(response: httpx.Response) -> None:
        """Raise :class:`RetryableError` on 429/5xx, ``RuntimeError`` on other non-2xx."""
        if response.is_success:
            return
        message = f"HTTP {response.status_code} from {response.request.url.copy_with(query=None)}"
        body = snippet(response.text)
        if body:
            message += f": {body}"
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryableError(message)
        raise RuntimeError(message)

    @staticmethod
    def parse_json(response: httpx.Response) -> Any:
        """The response body as JSON, or a ``ValueError`` quoting what came instead."""
        try:
            return json.loads(response.content)
        except ValueError:
            raise ValueError(
                f"the webhook answered invalid JSON: {snippet(response.text) or '(empty)'}"
            ) from None
