"""``kservehelper serve``: a model folder on the KServe model server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from kservehelper.cli.app import ClassOption, ModelDir, app, fail

if TYPE_CHECKING:
    from kservehelper.config.locate import ModelLocation


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(
    context: typer.Context,
    model_dir: ModelDir = Path("."),
    port: Annotated[
        int,
        typer.Option("--port", "-p", "--http_port", help="HTTP port."),
    ] = 8080,
    host: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            help="Address to listen on; 127.0.0.1 keeps the server private. "
            "[default: $KSERVEHELPER_HOST, else 0.0.0.0: all interfaces]"
        ),
    ] = None,
    name: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--name", "--model_name", help="The KServe model name. [default: config, folder name]"
        ),
    ] = None,
    class_name: ClassOption = None,
    max_concurrency: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(help="Predictions run at once; more queue. [default: 1]", min=1),
    ] = None,
    max_queue: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            help="Requests that may wait for a slot; more get 503 + Retry-After at once. "
            "[default: 64]",
            min=0,
        ),
    ] = None,
    upload_to: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Default destination of output files (a webhook URL, s3://, gs://)."),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Processes serving requests, each with its own model copy.", min=1),
    ] = 1,
    replicas: Annotated[
        int,
        typer.Option(
            help="Copies of the model on Ray Serve behind this server (kservehelper[ray]).",
            min=1,
        ),
    ] = 1,
    predictor_host: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--predictor-host",
            "--predictor_host",
            help="Transformers only: HOST:PORT of the predictor to forward to.",
        ),
    ] = None,
) -> None:
    """Serve the model in MODEL_DIR on the KServe model server.

    KServe's own model-server flags (--predictor_protocol, --enable_docs_url, ...) are passed
    through, so the arguments KServe's controller gives a container work as they are.

    Open http://HOST:PORT/ in a browser for the model's playground (a form to try it).

    Examples:

        kservehelper serve examples/hello --port 9000

        kservehelper serve examples/transformer --port 9001 --predictor-host 127.0.0.1:9002

        kservehelper serve examples/hello --replicas 2   # two copies on Ray Serve

        curl localhost:9000/v1/models/hello:predict \\
            -H 'Content-Type: application/json' -d '{"name": "Ada"}'
    """
    from kservehelper.errors import KServeHelperError
    from kservehelper.serving.kserve_flags import import_kserve_with_flags, passes_flag

    extra = list(context.args)
    if str(model_dir).startswith("-"):  # click takes an unknown option there for the folder
        extra.insert(0, str(model_dir))
    try:
        # First: KServe parses its flags when imported, and the model's file imports it.
        import_kserve_with_flags(extra, _own_options(context))
    except KServeHelperError as exc:
        fail(exc, code=2)
    location, model_class = _import_model(model_dir, name, class_name)
    _serve(
        location,
        model_class,
        max_concurrency=max_concurrency,
        max_queue=max_queue,
        upload_to=upload_to,
        workers=workers,
        num_replicas=replicas,
        http_port=port,
        host=host,
        predictor_host=predictor_host,
        # gRPC stays off unless asked for with KServe's own flag (`--enable_grpc true`).
        enable_grpc=None if passes_flag(extra, "--enable_grpc") else False,
    )


def _own_options(context: typer.Context) -> list[str]:
    """serve's own option names, to suggest for a typo."""
    return [name for param in context.command.params for name in param.opts if name[:1] == "-"]


def _import_model(
    model_dir: Path, name: str | None, class_name: str | None
) -> tuple[ModelLocation, type]:
    from kservehelper.config.locate import locate_model
    from kservehelper.errors import KServeHelperError
    from kservehelper.serving.loader import import_model_class

    try:
        location = locate_model(model_dir, name, class_name)
        return location, import_model_class(location)
    except KServeHelperError as exc:
        fail(exc)


def _serve(location: ModelLocation, model_class: type, **settings: Any) -> None:
    """Load the model and serve it until the server stops; a failure is one line."""
    from kservehelper.errors import KServeHelperError, ModelError
    from kservehelper.serving.loader import code_location, display_path
    from kservehelper.serving.server import start_model_server

    origin = Path.cwd()
    os.chdir(location.folder)  # the model runs from its folder, as in its image
    try:
        start_model_server(location.name, model_class, model_kwargs={}, **settings)
    except KServeHelperError as exc:
        fail(exc)
    except Exception as exc:  # the model's own constructor or load(), typically
        os.chdir(origin)  # paths in the message, relative to where the user is
        where = code_location(exc, location.folder) or display_path(location.entrypoint)
        error = ModelError(f"{where}: the model could not be served: {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        fail(error)
