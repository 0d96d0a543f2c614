"""Every use of KServe's (and Starlette's) internals, in one file.

kservehelper runs on KServe's own model server. A few things it needs have no public API in
KServe 0.21; they are kept here, each with the reason, so a KServe upgrade has one file to check:

* the FastAPI app KServe serves (``kserve.model_server.app``), which our routes join;
* putting our routes ahead of KServe's on that app (Starlette matches routes in order);
* the model server's command-line flags (its argparse parser's ``_actions``), to tell KServe's
  own flags from typos;
* KServe's parsed flags (``kserve.model_server.args``), for the predictor settings a transformer
  gets from KServe's controller;
* the address the REST server binds (KServe always binds ``0.0.0.0``);
* the HTTP surface: which of the routes KServe registers stay (:func:`restrict_routes`), the
  app's error handlers and middleware;
* uvicorn's connection handling (:class:`GuardedConnection`): a header-read timeout, a header
  size cap, a connection cap and JSON bodies for the errors uvicorn answers itself.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from kserve.model_server import ModelServer
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from kservehelper.settings import get_settings


def kserve_app() -> FastAPI:
    """The FastAPI app KServe's model server serves (a module global in KServe 0.21).

    A multi-process server's workers import it afresh, so routes must be added in each worker.
    """
    from kserve import model_server

    app: FastAPI = model_server.app
    return app


def insert_routes_first(app: FastAPI, routes: Sequence[BaseRoute]) -> None:
    """Put ``routes`` ahead of the app's own: Starlette matches routes in order, and KServe's
    ``/v1/models/{name}:predict`` must not answer before ours."""
    app.router.routes[0:0] = list(routes)


def add_middleware(app: FastAPI, middleware: Callable[..., ASGIApp], **options: Any) -> None:
    """Wrap the app's routes in ``middleware`` (before the app serves its first request)."""
    app.add_middleware(middleware, **options)


def set_error_handlers(app: FastAPI, handler: Callable[..., Any]) -> None:
    """Answer the HTTP errors Starlette and FastAPI raise themselves (404, 405, request
    validation) with ``handler(request, exc)`` instead of their ``{"detail": ...}``."""
    app.exception_handlers[HTTPException] = handler
    app.exception_handlers[RequestValidationError] = handler


def is_framework_route(route: BaseRoute) -> bool:
    """Whether KServe (or FastAPI itself: ``/openapi.json``, ``/docs``) registered ``route``."""
    if isinstance(route, Mount):
        return False
    module = getattr(getattr(route, "endpoint", None), "__module__", "") or ""
    return module.split(".")[0] in ("kserve", "fastapi")


def route_signature(route: BaseRoute) -> tuple[str, frozenset[str]]:
    """``(path template, methods)`` of a route (methods empty for non-HTTP routes)."""
    return str(getattr(route, "path", "")), frozenset(getattr(route, "methods", None) or ())


def restrict_routes(app: FastAPI, keep: Callable[[BaseRoute], bool]) -> None:
    """Keep only the routes ``keep`` accepts among those FastAPI and KServe register on ``app``.

    KServe adds its routes when the server starts, each group as an ``APIRouter`` passed to
    ``app.include_router`` (how FastAPI stores included routers differs between versions), so
    the routers are filtered as they are included; routes already on the app (FastAPI's own
    ``/openapi.json``, ``/docs``) are filtered now.
    """
    app.router.routes[:] = [route for route in app.router.routes if keep(route)]
    include = app.include_router

    def include_kept(router: Any, *args: Any, **kwargs: Any) -> None:
        router.routes[:] = [route for route in router.routes if keep(route)]
        include(router, *args, **kwargs)

    app.include_router = include_kept  # type: ignore[method-assign]


def model_server_flags() -> set[str]:
    """Every option string KServe's model-server parser knows (``--http_port``, ...)."""
    from kserve.model_server import parser

    return {option for action in parser._actions for option in action.option_strings}


def predictor_config(predictor_host: str) -> Any:
    """KServe's predictor settings from its parsed flags, with ``predictor_host`` given here."""
    from kserve.model_server import args
    from kserve.predictor_config import PredictorConfig

    return PredictorConfig(
        predictor_host=predictor_host,
        predictor_protocol=args.predictor_protocol,
        predictor_use_ssl=args.predictor_use_ssl,
        predictor_request_timeout_seconds=args.predictor_request_timeout_seconds,
        predictor_request_retries=args.predictor_request_retries,
        predictor_health_check=args.enable_predictor_health_check,
    )


class HostBoundModelServer(ModelServer):
    """KServe's model server, listening on a chosen address (KServe always uses 0.0.0.0), its
    connections guarded (:class:`GuardedConnection`), the operator's destination checked."""

    def __init__(self, host: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.host = host

    def start(self, models: list[Any]) -> None:
        from kservehelper.storage.policy import trust_operator_destination

        for model in models:  # one-line ConfigError: the server does not start
            trust_operator_destination(getattr(model, "upload_to", None))
        super().start(models)

    async def _serve(self) -> None:
        # The REST servers exist by now and bind their sockets only when served.
        for rest in (self._rest_server, self._rest_multiprocess_server):
            config = getattr(getattr(rest, "_rest_server", rest), "config", None)
            if config is None:
                continue
            if self.host is not None:
                config.host = self.host
            config.http = guarded_protocol(config.http)
        await super()._serve()


# -- connections ------------------------------------------------------------------------------


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


class GuardedH11Protocol(GuardedConnection, H11Protocol):
    """uvicorn's h11 protocol with :class:`GuardedConnection`."""


class GuardedHttpToolsProtocol(GuardedConnection, HttpToolsProtocol):
    """uvicorn's httptools protocol with :class:`GuardedConnection`."""


def guarded_protocol(http: Any) -> Any:
    """The guarded protocol class for a uvicorn ``http`` setting ("auto", "h11", "httptools");
    any other value (a protocol class someone chose) is kept as it is."""
    if http in ("auto", "httptools"):
        return GuardedHttpToolsProtocol
    if http == "h11":
        return GuardedH11Protocol
    return http
