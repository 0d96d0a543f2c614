"""Every use of KServe's (and Starlette's) internals, in one file.

kservehelper runs on KServe's own model server. A few things it needs have no public API in
KServe 0.21; they are kept here, each with the reason, so a KServe upgrade has one file to check:

* the FastAPI app KServe serves (``kserve.model_server.app``), which our routes join;
* putting our routes ahead of KServe's on that app (Starlette matches routes in order), and a
  route only browsers match (``GET /`` is the playground for them, KServe's liveness for the
  rest);
* KServe's parsed flags (``kserve.model_server.args``), for the predictor settings a transformer
  gets from KServe's controller, and for the server's settings: ``ModelServer``'s defaults are
  read from them once, when KServe is imported, before ``kservehelper serve`` has checked and
  passed its flags (:mod:`~kservehelper.serving.kserve_flags`, which must run before KServe is
  imported, holds the parser side);
* the addresses the REST and gRPC servers bind (KServe always binds ``0.0.0.0`` and ``[::]``);
* the event loop. KServe's ``--event_loop`` flag (default ``auto``: uvloop when installed, and
  KServe's own ``uvicorn[standard]`` requirement installs it) reaches uvicorn's config, but a
  single-process ``ModelServer.start`` runs the server under ``asyncio.run`` with whatever loop
  policy is set, so it runs on stdlib asyncio; only the multi-process workers honour the flag.
  :func:`use_event_loop` applies the flag before ``start`` (measured in docs/benchmarks.md);
* the HTTP surface: which of the routes KServe registers stay (:func:`restrict_routes`), the
  app's error handlers and middleware; uvicorn's protocol class, swapped for the guarded one of
  :mod:`~kservehelper.serving.connections` (the one module with uvicorn internals).
* shutdown. KServe handles signals in two places: ``ModelServer.register_signal_handler``
  (``kserve/model_server.py``) points SIGINT/SIGTERM/SIGQUIT at ``ModelServer.stop``, and the
  REST server (``RESTServer._server`` in ``kserve/protocol/rest/server.py``) is a uvicorn
  server that, while it serves, takes SIGINT/SIGTERM over and stops with a fixed 30 s
  ``timeout_graceful_shutdown``: it closes its socket at once (new requests are refused) and
  cancels what is left into plain-text 500s. That uvicorn server is swapped, before it starts,
  for a :class:`DrainingServer`, which drains first (:mod:`~kservehelper.serving.shutdown`)
  and then, in a single process, calls ``ModelServer.stop`` itself (it stops KServe's gRPC
  server). With ``workers > 1``, KServe's parent keeps its own handler: it forwards SIGTERM to
  each worker process (which run pickled copies of the draining server) and kills them after
  ``timeout_graceful_shutdown``, so that timeout is set above the grace period.
"""

from __future__ import annotations

import asyncio
import inspect
import math
import signal
import sys
from collections.abc import Callable, Sequence
from concurrent import futures
from socket import socket
from types import FrameType
from typing import Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from grpc import aio
from kserve.errors import ModelNotFound, ModelNotReady, ServerNotLive, ServerNotReady
from kserve.logging import logger
from kserve.model_server import ModelServer
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc
from kserve.protocol.grpc.interceptors import ExceptionToStatusInterceptor, LoggingInterceptor
from kserve.protocol.grpc.server import GRPCServer
from kserve.protocol.grpc.servicer import InferenceServicer
from kserve.protocol.rest.server import _RefreshingServer
from starlette.exceptions import HTTPException
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Scope

from kservehelper.errors import NotFound, NotReady
from kservehelper.serving import shutdown, workdirs, worker_load
from kservehelper.serving.connections import guarded_protocol
from kservehelper.serving.ports import ALL_INTERFACES, check_port_free
from kservehelper.settings import get_settings

ANSWER_MARGIN = 10
"""Seconds above the grace period for the last answers and for the server to close."""


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


class BrowserRoute(Route):
    """A route only a browser asking for a page (``Accept: text/html``) matches.

    Other clients go on to the next route with the same path: ``GET /`` stays KServe's
    liveness answer for probes, curl and HTTP libraries.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child_scope = super().matches(scope)
        if match is not Match.NONE and not _accepts_html(scope):
            return Match.NONE, {}
        return match, child_scope


def _accepts_html(scope: Scope) -> bool:
    accept = b",".join(value for name, value in scope.get("headers", ()) if name == b"accept")
    return b"text/html" in accept.lower()


def enable_docs_url(app: FastAPI) -> None:
    """KServe's ``--enable_docs_url`` for an app made before the flag was read: its
    ``/docs`` page (KServe decides it when ``kserve.model_server`` is imported)."""
    if app.docs_url is not None or app.openapi_url is None:
        return
    from fastapi.openapi.docs import get_swagger_ui_html
    from starlette.requests import Request
    from starlette.responses import HTMLResponse

    openapi_url = app.openapi_url

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=openapi_url, title=f"{app.title} - Swagger UI")

    app.docs_url = "/docs"
    app.add_route("/docs", docs, include_in_schema=False)


def add_middleware(app: FastAPI, middleware: Callable[..., ASGIApp], **options: Any) -> None:
    """Wrap the app's routes in ``middleware`` (before the app serves its first request)."""
    app.add_middleware(middleware, **options)


def set_error_handlers(
    app: FastAPI, handler: Callable[..., Any], answer: Callable[[BaseException], Any]
) -> None:
    """Answer the HTTP errors Starlette and FastAPI raise themselves (404, 405, request
    validation) with ``handler(request, exc)`` instead of their ``{"detail": ...}``, and
    KServe's readiness and metadata errors with ``answer(error)``.

    KServe's own handlers (``kserve/errors.py``) log a traceback for each: a readiness probe
    during a drain, or before ``load()`` ends, would fill the log with them. KServe adds its
    handlers when its server starts (``RESTServer._add_exception_handlers``), after this runs,
    so its registrations for these errors are ignored.
    """

    async def not_ready(_: Any, error: Exception) -> Any:
        return answer(NotReady(str(error)))

    async def not_found(_: Any, error: Exception) -> Any:
        return answer(NotFound(str(error)))

    ours: dict[Any, Callable[..., Any]] = {
        HTTPException: handler,
        RequestValidationError: handler,
        ModelNotReady: not_ready,
        ServerNotReady: not_ready,
        ServerNotLive: not_ready,
        ModelNotFound: not_found,
    }
    app.exception_handlers.update(ours)
    add = app.add_exception_handler

    def add_unless_ours(key: Any, function: Callable[..., Any]) -> None:
        if key not in ours:
            add(key, function)

    app.add_exception_handler = add_unless_ours  # type: ignore[method-assign,assignment]


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


def _flag_settings() -> dict[str, Any]:
    """``ModelServer``'s settings that mirror KServe's flags, as the flags are now.

    ``ModelServer.__init__``'s defaults were taken from the flags when KServe was imported; the
    flags ``kservehelper serve`` passes through are parsed after that.
    """
    from kserve.model_server import args

    flags = vars(args)
    names = inspect.signature(ModelServer.__init__).parameters
    return {name: flags[name] for name in names if name in flags}


def use_event_loop(choice: str) -> str:
    """Make ``asyncio.run`` (KServe's ``start``) use the loop KServe's ``--event_loop`` flag
    names: ``uvloop``, ``asyncio``, or ``auto`` (uvloop if it is installed). Returns the one
    used. KServe's ``setup_event_loop`` asks for the current loop before ``asyncio.run``
    makes its own, so a current loop of the chosen kind is set too."""
    if choice not in ("auto", "uvloop"):
        return "asyncio"
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            logger.warning("--event_loop uvloop: uvloop is not installed; using asyncio")
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    asyncio.set_event_loop(asyncio.new_event_loop())
    return "uvloop"


def use_switch_interval(milliseconds: float) -> None:
    """Shorten the interpreter's switch interval (0 keeps Python's 5 ms).

    While a sync ``predict`` runs Python code in its thread, the event loop gets the GIL back
    only when that thread is made to let go, after the switch interval; a health check needs
    the GIL several times. Measured with a 3 s GIL-holding ``predict``: health p99 53 ms at
    5 ms, 31 ms at 1 ms, with no measurable change in sync throughput
    (docs/benchmarks.md)."""
    if milliseconds > 0:
        sys.setswitchinterval(milliseconds / 1000)


class HostBoundModelServer(ModelServer):
    """KServe's model server, listening on a chosen address (KServe always uses all of them),
    its ports checked before the model loads, its connections guarded
    (:mod:`~kservehelper.serving.connections`), the operator's destination checked."""

    def __init__(self, host: str | None = None, **options: Any) -> None:
        super().__init__(**{**_flag_settings(), **options})
        self.host = host

    def check_ports(self) -> None:
        """Raise :class:`~kservehelper.errors.ServeError` now if a port is taken, rather than
        after the model's ``load()`` (minutes, with real weights)."""
        check_port_free(
            self.host or "0.0.0.0",
            self.http_port,
            what="HTTP port",
            fix="choose another: kservehelper serve --port N (python model.py --http_port N)",
        )
        if self.enable_grpc:
            check_port_free(
                self.host or "::",
                self.grpc_port,
                what="gRPC port",
                fix="choose another with --grpc_port N, or turn gRPC off: --enable_grpc false",
            )

    def start(self, models: list[Any]) -> None:
        from kservehelper.storage.policy import trust_operator_destination

        for model in models:  # one-line ConfigError: the server does not start
            trust_operator_destination(getattr(model, "upload_to", None))
        use_event_loop(str(getattr(self, "event_loop", "auto")))
        super().start(models)

    async def _serve(self) -> None:
        # The servers exist by now and bind their sockets only when served.
        for rest in (self._rest_server, self._rest_multiprocess_server):
            config = getattr(getattr(rest, "_rest_server", rest), "config", None)
            if config is None:
                continue
            if self.host is not None:
                config.host = self.host
            config.http = guarded_protocol(config.http)  # kservehelper.serving.connections
        if self.host is not None:
            self._bind_grpc(self.host)
        self._install_draining_server()
        await super()._serve()

    def _bind_grpc(self, host: str) -> None:
        """Swap KServe's gRPC server, not started yet, for one listening on ``host``."""
        kserve_grpc: GRPCServer | None = getattr(self, "_grpc_server", None)
        if kserve_grpc is None or host in ALL_INTERFACES:  # KServe's own [::] is all of them
            return
        for index, pending in enumerate(self.servers):
            if getattr(pending, "cr_code", None) is GRPCServer.start.__code__:
                pending.close()  # never started: closing it is all there is to undo
                bound = HostBoundGRPCServer(
                    host,
                    kserve_grpc._port,
                    kserve_grpc._data_plane,
                    kserve_grpc._model_repository_extension,
                    kwargs=kserve_grpc._kwargs,
                    grace_period=kserve_grpc._grace_period,
                )
                self._grpc_server = bound
                self.servers[index] = bound.start(self.max_threads)

    def _install_draining_server(self) -> None:
        grace = get_settings().shutdown_grace
        single, multi = self._rest_server, self._rest_multiprocess_server
        rest = single if single is not None else getattr(multi, "_rest_server", None)
        if rest is None:
            return
        config = rest.config
        config.timeout_graceful_shutdown = math.ceil(grace) + ANSWER_MARGIN
        # One process: once drained, stop the rest of KServe's server (gRPC) as its own
        # SIGTERM handler would have. Several: the worker processes only serve HTTP.
        after_exit = (lambda: self.stop(signal.SIGTERM)) if single is not None else None
        rest._server = DrainingServer(config, grace, after_exit)


class HostBoundGRPCServer(GRPCServer):
    """KServe's gRPC server on a chosen address; KServe's ``start`` binds ``[::]`` always.

    ``start`` is KServe 0.21's, with the listen address as the one change.
    """

    def __init__(self, host: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._host = host

    async def start(self, max_workers: int) -> None:
        servicer = InferenceServicer(self._data_plane, self._model_repository_extension)
        self._server = aio.server(
            futures.ThreadPoolExecutor(max_workers=max_workers),
            interceptors=(LoggingInterceptor(), ExceptionToStatusInterceptor()),
            options=[
                ("grpc.max_send_message_length", self._kwargs.get("grpc_max_send_message_length")),
                (
                    "grpc.max_receive_message_length",
                    self._kwargs.get("grpc_max_receive_message_length"),
                ),
            ],
        )
        grpc_predict_v2_pb2_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, self._server)
        address = f"[{self._host}]" if ":" in self._host else self._host
        self._server.add_insecure_port(f"{address}:{self._port}")
        logger.info("Starting gRPC server on %s:%s", address, self._port)
        await self._server.start()
        await self._server.wait_for_termination()


class DrainingServer(_RefreshingServer):
    """KServe's uvicorn server, draining on SIGTERM/SIGINT before it stops.

    A second SIGINT (Ctrl-C) stops at once. Once stopped, the process's folder is removed.
    """

    def __init__(
        self, config: Any, grace: float, after_exit: Callable[[], None] | None = None
    ) -> None:
        super().__init__(config)
        self.grace = grace
        self.after_exit = after_exit
        self._loop: asyncio.AbstractEventLoop | None = None
        self._draining = False
        self._drain: asyncio.Task[None] | None = None

    def __getstate__(self) -> dict[str, Any]:
        # Pickled into worker processes (workers > 1) before it runs.
        return {**self.__dict__, "_loop": None, "_drain": None, "_draining": False}

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        stopping: bool = self.should_exit  # type: ignore[has-type]
        if self._loop is None or stopping:
            super().handle_exit(sig, frame)
            return
        if self._draining:
            if sig == signal.SIGINT:
                logger.warning("second interrupt: stopping now")
                self._loop.call_soon_threadsafe(shutdown.cancel_everything)
                self.should_exit = True
            return
        self._draining = True
        # A signal handler runs between two bytecodes of whatever the loop was doing: start
        # the drain from the loop itself.
        self._loop.call_soon_threadsafe(self._start_drain)

    def _start_drain(self) -> None:
        self._drain = asyncio.get_running_loop().create_task(self._drain_then_exit())

    async def _drain_then_exit(self) -> None:
        try:
            await shutdown.drain(self.grace)
        finally:
            self.should_exit = True

    async def _serve(self, sockets: list[socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        use_switch_interval(get_settings().switch_interval_ms)
        # A worker process (workers > 1) loads its model now, not while it was unpickled.
        worker_load.start_pending_loads()
        try:
            await super()._serve(sockets)
        finally:
            workdirs.remove_process_folder()
            if self.after_exit is not None:
                self.after_exit()
