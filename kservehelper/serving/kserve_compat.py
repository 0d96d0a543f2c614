"""Every use of KServe's (and Starlette's) internals, in one file.

kservehelper runs on KServe's own model server. A few things it needs have no public API in
KServe 0.21; they are kept here, each with the reason, so a KServe upgrade has one file to check:

* the FastAPI app KServe serves (``kserve.model_server.app``), which our routes join;
* putting our routes ahead of KServe's on that app (Starlette matches routes in order);
* the model server's command-line flags (its argparse parser's ``_actions``), to tell KServe's
  own flags from typos;
* KServe's parsed flags (``kserve.model_server.args``), for the predictor settings a transformer
  gets from KServe's controller;
* the address the REST server binds (KServe always binds ``0.0.0.0``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI
from kserve.model_server import ModelServer
from starlette.routing import BaseRoute


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
        await super()._serve()
