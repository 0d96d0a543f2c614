"""uvicorn's connection handling, guarded: the one place kservehelper touches uvicorn internals.

KServe serves its app with uvicorn's own HTTP protocol classes; :class:`GuardedConnection` is
mixed in before them (``HostBoundModelServer`` in ``kserve_compat.py`` switches the server's
protocol class to :func:`guarded_protocol`'s), so that:

* a connection must send its request headers within ``KSERVEHELPER_HEADER_TIMEOUT``;
* headers are capped at ``KSERVEHELPER_MAX_HEADER_BYTES`` while they arrive;
* ``KSERVEHELPER_MAX_CONNECTIONS`` bounds the open connections;
* the errors uvicorn answers itself (malformed HTTP) have JSON bodies like every other error.
"""

from __future__ import annotations

import asyncio
import functools
import importlib
import json
from typing import Any

from kservehelper.settings import get_settings


def _raw_response(status: int, reason: str, message: str) -> bytes:
    body = json.dumps({"error": message}).encode()
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


class GuardedConnection(asyncio.Protocol):
    """Mixed in before one of uvicorn's HTTP protocol classes (one instance per connection).

    * A new connection must deliver its request headers within ``KSERVEHELPER_HEADER_TIMEOUT``
      seconds, and so must a kept-alive one once the next request's first byte arrives (idle
      kept-alive connections are uvicorn's ``timeout_keep_alive``'s business); else it is
      closed (with a 408 if part of a request came).
    * Headers larger than ``KSERVEHELPER_MAX_HEADER_BYTES``: 431, closed.
    * Past ``KSERVEHELPER_MAX_CONNECTIONS`` open connections, the connection that has waited
      longest for request headers (half-open, or idle between requests) is closed to make room;
      if every one has a request running, the new one gets 503 and is closed. Connections
      that send nothing cannot keep a client out.
    * uvicorn's own 400 for malformed HTTP is JSON like every other error.
    """

    connections: set[Any]
    transport: asyncio.Transport
    cycle: Any
    _header_timer: asyncio.TimerHandle | None = None
    _header_bytes: int = 0
    _waiting_since: float | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        limit = get_settings().max_connections
        if len(self.connections) > limit:
            waiting = [c for c in self.connections if getattr(c, "_waiting_since", None)]
            # (kept-alive idle connections count as waiting: see on_response_complete)
            if not waiting:
                self._refuse(503, "Service Unavailable",
                             f"the server has {limit} open connections; retry shortly")  # fmt: skip
                return
            min(waiting, key=lambda c: c._waiting_since)._header_timeout()
        self._arm_header_timer()

    def data_received(self, data: bytes) -> None:
        waiting = self._awaiting_headers()
        super().data_received(data)
        if self.transport.is_closing():
            return
        if not self._awaiting_headers():
            self._cancel_header_timer()
            self._header_bytes = 0
            return
        self._header_bytes = self._header_bytes + len(data) if waiting else len(data)
        limit = get_settings().max_header_bytes
        if self._header_bytes > limit:
            self._refuse(431, "Request Header Fields Too Large",
                         f"the request line and headers are larger than {limit} bytes")  # fmt: skip
        elif self._header_timer is None:
            self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_header_timer()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        if not self.transport.is_closing() and self._awaiting_headers():
            self._waiting_since = asyncio.get_running_loop().time()  # idle: may make room

    def send_400_response(self, msg: str) -> None:
        self._refuse(400, "Bad Request", f"malformed HTTP request: {msg.rstrip('.')}")

    def _awaiting_headers(self) -> bool:
        cycle = getattr(self, "cycle", None)
        return cycle is None or bool(cycle.response_complete)

    def _arm_header_timer(self) -> None:
        loop = asyncio.get_running_loop()
        self._header_timer = loop.call_later(get_settings().header_timeout, self._header_timeout)
        self._waiting_since = loop.time()

    def _cancel_header_timer(self) -> None:
        self._waiting_since = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timeout(self) -> None:
        """The headers are late (or room is needed): close the connection."""
        self._cancel_header_timer()
        if self.transport.is_closing() or not self._awaiting_headers():
            return
        if self._header_bytes:
            timeout = get_settings().header_timeout
            self._refuse(408, "Request Timeout",
                         f"the request headers did not arrive in time ({timeout:g}s)")  # fmt: skip
        else:
            self.transport.close()

    def _refuse(self, status: int, reason: str, message: str) -> None:
        self._cancel_header_timer()
        if not self.transport.is_closing():
            self.transport.write(_raw_response(status, reason, message))
            self.transport.close()


# The guarded protocol classes are made when first asked for: uvicorn's two HTTP
# implementations import their parsers (h11, httptools), and a server uses one of them. They
# are found by name as module attributes (the module's __getattr__), which is how a
# multi-process server's workers unpickle them.
_UVICORN_PROTOCOLS = {
    "GuardedH11Protocol": ("uvicorn.protocols.http.h11_impl", "H11Protocol"),
    "GuardedHttpToolsProtocol": ("uvicorn.protocols.http.httptools_impl", "HttpToolsProtocol"),
}


@functools.cache
def _guarded(name: str) -> type[asyncio.Protocol]:
    """The class ``name``: one of uvicorn's protocols with :class:`GuardedConnection` first."""
    module, base_name = _UVICORN_PROTOCOLS[name]
    base = getattr(importlib.import_module(module), base_name)
    doc = f"uvicorn's {base_name} with :class:`GuardedConnection`."
    return type(name, (GuardedConnection, base), {"__module__": __name__, "__doc__": doc})


def __getattr__(name: str) -> Any:
    if name in _UVICORN_PROTOCOLS:
        return _guarded(name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def guarded_protocol(http: Any) -> Any:
    """The guarded protocol class for a uvicorn ``http`` setting ("auto", "h11", "httptools");
    any other value (a protocol class someone chose) is kept as it is. "auto" is httptools
    when it is installed, else h11, as in uvicorn."""
    if http == "auto":
        try:
            return _guarded("GuardedHttpToolsProtocol")
        except ImportError:
            return _guarded("GuardedH11Protocol")
    if http == "httptools":
        return _guarded("GuardedHttpToolsProtocol")
    if http == "h11":
        return _guarded("GuardedH11Protocol")
    return http
