"""Starting KServe's model server with a user's model class (``KServeModel.serve``)."""

from __future__ import annotations

import os
from typing import Any

from kserve.model_server import ModelServer

from kservehelper.serving.model import KServeModel

#: Environment variable: the address to listen on (default: all interfaces).
HOST_ENV = "KSERVEHELPER_HOST"


def start_model_server(
    name: str,
    model_class: type,
    *,
    host: str | None,
    max_concurrency: int | None,
    upload_to: str | None,
    workers: int | None,
    http_port: int | None,
    enable_grpc: bool | None,
    predictor_host: str | None,
    model_kwargs: dict[str, Any],
) -> None:
    """Make the served model, load it, and run ``kserve.ModelServer`` until it stops.

    Arguments left ``None`` fall back to KServe's command-line flags (and their defaults);
    ``host`` ``None`` keeps KServe's address, all interfaces (what a container needs).
    """
    from kserve import model_server

    from kservehelper.serving.routes import install_routes
    from kservehelper.serving.transformer import TransformerModel, is_transformer

    model_type = TransformerModel if is_transformer(model_class) else KServeModel
    model = model_type(
        name, model_class, max_concurrency=max_concurrency, upload_to=upload_to, **model_kwargs
    )
    options: dict[str, Any] = {}
    if http_port is not None:
        options["http_port"] = http_port
    if enable_grpc is not None:
        options["enable_grpc"] = enable_grpc
    if workers is not None:
        options["workers"] = workers
    if predictor_host is not None:
        options["predictor_config"] = _predictor_config(predictor_host)
    server = HostBoundModelServer(host=host or os.environ.get(HOST_ENV) or None, **options)
    if isinstance(model, TransformerModel):
        model.check_predictor()
    if server.workers > 1:
        # Each worker process loads its own copy (KServeModel.__setstate__); loading here
        # too would only hold a copy nobody serves from. KServe registers ready models only.
        model.ready = True
    else:
        model.load()
        install_routes(model_server.app, {name: model})
    server.start([model])


def _predictor_config(predictor_host: str) -> Any:
    """KServe's predictor settings from its flags, with ``predictor_host`` given here."""
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
