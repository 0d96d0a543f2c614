"""Starting KServe's model server with a user's model class (``KServeModel.serve``)."""

from __future__ import annotations

from typing import Any

from kservehelper.deprecation import show_deprecations
from kservehelper.serving import workdirs
from kservehelper.serving.kserve_compat import HostBoundModelServer, kserve_app, predictor_config
from kservehelper.serving.model import KServeModel, freeze_heap_after_load
from kservehelper.settings import get_settings


def start_model_server(
    name: str,
    model_class: type,
    *,
    host: str | None,
    max_concurrency: int | None,
    max_queue: int | None,
    upload_to: str | None,
    workers: int | None,
    http_port: int | None,
    enable_grpc: bool | None,
    predictor_host: str | None,
    model_kwargs: dict[str, Any],
    num_replicas: int | None = None,
) -> None:
    """Make the served model, load it, and run ``kserve.ModelServer`` until it stops.

    Arguments left ``None`` fall back to KServe's command-line flags (and their defaults);
    ``host`` ``None`` keeps KServe's address, all interfaces (what a container needs).
    """
    from kservehelper.serving.http import install_routes
    from kservehelper.serving.transformer import TransformerModel, is_transformer

    show_deprecations()  # the model's 2.0 names, which Python hides outside __main__
    # Folders of servers killed before they could remove them (SIGKILL, OOM, a crash).
    workdirs.remove_stale_folders()
    if num_replicas is not None and num_replicas != 1:  # copies on Ray Serve
        from kservehelper.serving.replicas import serve_replicas

        return serve_replicas(
            name, model_class, num_replicas, host=host, http_port=http_port,
            enable_grpc=enable_grpc, workers=workers, max_concurrency=max_concurrency,
            max_queue=max_queue, upload_to=upload_to, model_kwargs=model_kwargs,
        )  # fmt: skip
    model_type = TransformerModel if is_transformer(model_class) else KServeModel
    model = model_type(
        name,
        model_class,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        upload_to=upload_to,
        **model_kwargs,
    )
    server = model_server(host, http_port, enable_grpc, workers, predictor_host)
    server.check_ports()  # before load(), which may take minutes
    if isinstance(model, TransformerModel):
        model.check_predictor()
    if server.workers > 1:
        # Each worker process loads its own copy (KServeModel.__setstate__); loading here
        # too would only hold a copy nobody serves from. KServe registers ready models only.
        model.ready = True
    else:
        model.load()
        install_routes(kserve_app(), {name: model})
        freeze_heap_after_load()
    server.start([model])


def model_server(
    host: str | None,
    http_port: int | None,
    enable_grpc: bool | None,
    workers: int | None,
    predictor_host: str | None = None,
) -> HostBoundModelServer:
    """KServe's model server with the arguments given; those left ``None`` fall back to
    KServe's command-line flags, ``host`` to ``KSERVEHELPER_HOST``."""
    options: dict[str, Any] = {}
    if http_port is not None:
        options["http_port"] = http_port
    if enable_grpc is not None:
        options["enable_grpc"] = enable_grpc
    if workers is not None:
        options["workers"] = workers
    if predictor_host is not None:
        options["predictor_config"] = predictor_config(predictor_host)
    return HostBoundModelServer(host=host or get_settings().host, **options)
