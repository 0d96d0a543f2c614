"""Cog's upload protocol: ``PUT <url>/<filename>`` with the file as the body.

Any ``http(s)`` destination whose path does not end in ``/upload`` or ``/upload_batch`` is
treated this way. The file's URL is the answer's ``Location`` header without its query string
(which may hold a signature), else the URL the file was sent to.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

from kservehelper.storage.http_transport import (
    HttpDestination,
    content_type_of,
    read_file_chunks,
)


def put_url(base: str, filename: str) -> str:
    """``base`` with ``/filename`` appended to its path (query string kept)."""
    parts = urlsplit(base)
    path = parts.path.rstrip("/") + "/" + quote(filename)
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


def without_query(url: str) -> str:
    """``url`` without its query string and fragment."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


class PutDestination(HttpDestination):
    """An ``http(s)`` prefix that takes ``PUT <prefix>/<filename>`` (as Cog's ``--upload-url``)."""

    async def put(self, path: Path, name: str) -> str:
        url = put_url(self.uri, name)
        response = await self.client.put(
            url,
            content=read_file_chunks(path),
            headers={
                "Content-Type": content_type_of(name),
                "Content-Length": str(path.stat().st_size),
            },
        )
        self.check_status(response)
        location = response.headers.get("Location")
        if location:
            return without_query(urljoin(url, location))
        return without_query(url)
