"""``kservehelper serve``: a model folder on the KServe model server."""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from kservehelper.cli.app import ClassOption, ModelDir, app, fail


def _check_kserve_flags(extra: list[str]) -> None:
    """Arguments serve does not know must be KServe model-server flags (KServe's controller
    adds some, e.g. --predictor_protocol); KServe reads them itself. Anything else is a typo."""
    from kservehelper.serving.kserve_compat import model_server_flags

    known = model_server_flags()
    unknown = [a.split("=")[0] for a in extra if a.startswith("-") and a.split("=")[0] not in known]
    if unknown:
        fail(ValueError(f"no such option: {', '.join(unknown)} (see kservehelper serve --help)"), 2)


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def serve(
    context: typer.Context,
    model_dir: ModelDir = Path("."),
    port: Annotated[
        int,
        typer.Option("--port", "-p", "--http_port", help="HTTP port."),
    ] = 8080,
    host: Annotated[
        str,
        typer.Option(help="Address to listen on; 127.0.0.1 keeps the server private."),
    ] = "0.0.0.0",
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

    Examples:

        kservehelper serve examples/hello --port 9000

        kservehelper serve examples/transformer --port 9001 --predictor-host 127.0.0.1:9002

        kservehelper serve examples/hello --replicas 2   # two copies on Ray Serve

        curl localhost:9000/v1/models/hello:predict \\
            -H 'Content-Type: application/json' -d '{"name": "Ada"}'
    """
    from kservehelper.config.locate import locate_model
    from kservehelper.errors import KServeHelperError
    from kservehelper.serving.loader import import_model_class
    from kservehelper.serving.model import KServeModel

    _check_kserve_flags(context.args)
    try:
        location = locate_model(model_dir, name, class_name)
        model_class = import_model_class(location)
    except KServeHelperError as exc:
        fail(exc)
    os.chdir(location.folder)
    try:
        KServeModel.serve(
            location.name,
            model_class,
            max_concurrency=max_concurrency,
            upload_to=upload_to,
            workers=workers,
            num_replicas=replicas,
            http_port=port,
            host=host,
            enable_grpc=False,
            predictor_host=predictor_host,
        )
    except KServeHelperError as exc:
        fail(exc)
    except Exception as exc:  # the model's own load() or constructor, typically
        traceback.print_exc()
        fail(RuntimeError(f"the model could not be served: {type(exc).__name__}: {exc}"))
