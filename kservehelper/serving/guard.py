"""The ASGI middleware in front of every route: request size, stalled bodies, the HTTP surface,
and errors nothing else answered.

* A body larger than ``KSERVEHELPER_MAX_REQUEST_BYTES`` is refused with 413 before the route
  runs when ``Content-Length`` announces it, and as soon as the bytes read pass the limit
  otherwise (a chunked body); the connection is then closed, so the rest is never read.
* A body that stalls for ``KSERVEHELPER_BODY_TIMEOUT`` seconds fails the request with 408.
* Request line and headers larger than ``KSERVEHELPER_MAX_HEADER_BYTES``: 431.
* A browser request that changes state (``POST``, ...) from a page of another origin is
  refused with 403: its ``Origin`` header names neither this server (its ``Host``) nor an entry
  of ``KSERVEHELPER_ALLOWED_ORIGINS``. Without this, any web page a user of the server opens
  could make the browser POST to it (bodies sent as ``text/plain`` need no CORS preflight, and
  kservehelper accepts them for 2.0's clients). Clients that are not browsers send no ``Origin``.
* An exception no route handled is answered in the error shape (never uvicorn's plain-text
  500), through the same ``error_response`` the routes use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Collection
from urllib.parse import urlsplit

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from kservehelper.errors import CrossOriginRefused, HeadersTooLarge, InputError, RequestTimeout
from kservehelper.serving.request_body import too_large
from kservehelper.settings import env_name, get_settings


class RequestGuard:
    """Pure ASGI middleware (see the module docs)."""

    def __init__(
        self, app: ASGIApp, *, error_response: Callable[[BaseException], Response]
    ) -> None:
        self.app = app
        self.error_response = error_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        head = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"")
        head += sum(len(key) + len(value) + 4 for key, value in scope.get("headers", ()))
        # Headers that arrived in one read; longer ones the connection layer refuses as they come.
        if head > settings.max_header_bytes:
            too_long = HeadersTooLarge(
                f"the request line and headers are larger than {settings.max_header_bytes} "
                f"bytes ({env_name('max_header_bytes')})"
            )
            await self._answer(too_long, scope, receive, send, close=True)
            return
        refused = _cross_origin(scope, settings.allowed_origins)
        if refused is not None:
            await self._answer(refused, scope, receive, send, close=True)
            return
        limit = settings.max_request_bytes
        announced = _header(scope, b"content-length")
        if announced is not None:
            if not announced.isdigit():
                bad = InputError("Content-Length must be a number of bytes")
                await self._answer(bad, scope, receive, send, close=True)
                return
            if int(announced) > limit:
                await self._answer(too_large(limit), scope, receive, send, close=True)
                return
        has_body = announced not in (None, "0") or _header(scope, b"transfer-encoding") is not None
        started = False
        received = 0
        body_done = not has_body

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        async def guarded_receive() -> Message:
            nonlocal received, body_done
            if body_done:  # no body, or all of it read: waiting for a disconnect is no stall
                return await receive()
            message = await _within(receive(), settings.body_timeout)
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise too_large(limit)
                body_done = not message.get("more_body", False)
            else:
                body_done = True
            return message

        try:
            await self.app(scope, guarded_receive, guarded_send)
        except Exception as error:
            if started:  # too late for an error response: uvicorn closes the connection
                raise
            await self._answer(error, scope, receive, send, close=not body_done)

    async def _answer(
        self, error: BaseException, scope: Scope, receive: Receive, send: Send, *, close: bool
    ) -> None:
        response = self.error_response(error)
        if close:  # the unread rest of the body is not worth reading: end the connection
            response.headers["connection"] = "close"
        await response(scope, receive, send)


async def _within(waiting: Awaitable[Message], timeout: float) -> Message:
    """``await waiting``, or :class:`RequestTimeout` after ``timeout`` seconds.

    A timer that cancels the current task, not ``asyncio.wait_for``: the body usually is there
    already, and a task per read would cost more than the read.
    """
    task = asyncio.current_task()
    assert task is not None
    expired = False

    def expire() -> None:
        nonlocal expired
        expired = True
        task.cancel()

    timer = asyncio.get_running_loop().call_later(timeout, expire)
    try:
        return await waiting
    except asyncio.CancelledError:
        if not expired:
            raise
        uncancel = getattr(task, "uncancel", None)  # Python 3.11+
        if uncancel is not None:
            uncancel()
        raise RequestTimeout(
            f"the request body stalled for {timeout:g}s ({env_name('body_timeout')})"
        ) from None
    finally:
        timer.cancel()


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return bytes(value).decode("latin-1").strip()
    return None


_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_DEFAULT_PORTS = {"http": 80, "https": 443}


def _cross_origin(scope: Scope, allowed: Collection[str]) -> CrossOriginRefused | None:
    """The refusal of a state-changing request sent by a page of another origin, else None."""
    if scope.get("method", "GET") in _SAFE_METHODS:
        return None
    origin = _header(scope, b"origin")
    if origin is None or "*" in allowed:
        return None
    if _same_server(origin, _header(scope, b"host") or ""):
        return None
    if origin.lower().rstrip("/") in {entry.lower().rstrip("/") for entry in allowed}:
        return None
    variable = env_name("allowed_origins")
    return CrossOriginRefused(
        f"a web page at {origin} may not send requests to this server (browsers name the page "
        f"in the Origin header, and it is not this server); to let a web app at that origin "
        f"call the model, add it to {variable}, e.g. {variable}=https://app.example.com"
    )


def _same_server(origin: str, host: str) -> bool:
    """Whether ``origin`` (``scheme://host[:port]``) is the server the ``Host`` header names."""
    try:
        page, server = urlsplit(origin.strip()), urlsplit("//" + host.strip())
        default = _DEFAULT_PORTS.get(page.scheme.lower())
        page_port, server_port = page.port or default, server.port or default
    except ValueError:  # "null" (a sandboxed page, a file), or no URL at all
        return False
    return bool(page.hostname) and page.hostname == server.hostname and page_port == server_port
