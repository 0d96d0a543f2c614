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
import logging
import math
import signal
from collections.abc import Callable, Sequence
from socket import socket
from types import FrameType
from typing import Any

from fastapi import FastAPI
from kserve.model_server import ModelServer
from kserve.protocol.rest.server import _RefreshingServer
from starlette.routing import BaseRoute

from kservehelper.serving import shutdown, workdirs
from kservehelper.settings import get_settings

logger = logging.getLogger("kserve.kservehelper")

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
    """KServe's model server, listening on a chosen address (KServe always uses 0.0.0.0)."""

    def __init__(self, host: str | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.host = host

    async def _serve(self) -> None:
        # The REST servers exist by now and bind their sockets only when served.
        if self.host is not None:
            for rest in (self._rest_server, self._rest_multiprocess_server):
                config = getattr(getattr(rest, "_rest_server", rest), "config", None)
                if config is not None:
                    config.host = self.host
        self._install_draining_server()
        await super()._serve()

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
        try:
            await super()._serve(sockets)
        finally:
            workdirs.remove_process_folder()
            if self.after_exit is not None:
                self.after_exit()
