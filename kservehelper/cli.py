"""The ``kservehelper`` command: thin wiring of the modules behind it.

Each command imports what it needs inside its body, so ``kservehelper --help`` and the build
commands never import the serving stack (kserve, FastAPI, numpy).
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path
from typing import Annotated, NoReturn, Optional

import typer

from kservehelper import __version__
from kservehelper.build.commands import DockerOption

app = typer.Typer(
    name="kservehelper",
    help="Serve a Python model class on KServe, and build, push and deploy its image.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="markdown",
    # A crash must not print local variables: they may hold credentials or user data.
    pretty_exceptions_show_locals=False,
)


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"kservehelper {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version_callback, is_eager=True, help="Print the version."
        ),
    ] = False,
) -> None:
    """Serve a Python model class on KServe, and build, push and deploy its image."""


ModelDir = Annotated[
    Path,
    typer.Argument(help="The model folder (holds model.py and config.yaml).", show_default=True),
]
ClassOption = Annotated[
    Optional[str],  # noqa: UP045 - typer reads the annotation at run time (Python 3.10)
    typer.Option("--class", help="The model class in the entrypoint. [default: config, Model]"),
]
NameOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option("--name", help="The KServe model name. [default: config, folder name]"),
]


def _fail(error: BaseException, code: int = 1) -> NoReturn:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code)


def _check_kserve_flags(extra: list[str]) -> None:
    """Arguments serve does not know must be KServe model-server flags (KServe's controller
    adds some, e.g. --predictor_protocol); KServe reads them itself. Anything else is a typo."""
    from kserve.model_server import parser

    known = {option for action in parser._actions for option in action.option_strings}
    unknown = [a.split("=")[0] for a in extra if a.startswith("-") and a.split("=")[0] not in known]
    if unknown:
        _fail(
            ValueError(f"no such option: {', '.join(unknown)} (see kservehelper serve --help)"), 2
        )


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

        curl localhost:9000/v1/models/hello:predict \\
            -H 'Content-Type: application/json' -d '{"name": "Ada"}'
    """
    from kservehelper.errors import KServeHelperError
    from kservehelper.serving.loader import import_model_class, locate_model
    from kservehelper.serving.model import KServeModel

    _check_kserve_flags(context.args)
    try:
        location = locate_model(model_dir, name, class_name)
        model_class = import_model_class(location)
    except KServeHelperError as exc:
        _fail(exc)
    os.chdir(location.folder)
    try:
        KServeModel.serve(
            location.name,
            model_class,
            max_concurrency=max_concurrency,
            upload_to=upload_to,
            workers=workers,
            http_port=port,
            host=host,
            enable_grpc=False,
            predictor_host=predictor_host,
        )
    except KServeHelperError as exc:
        _fail(exc)
    except Exception as exc:  # the model's own load() or constructor, typically
        traceback.print_exc()
        _fail(RuntimeError(f"the model could not be served: {type(exc).__name__}: {exc}"))


@app.command()
def predict(
    model_dir: ModelDir = Path("."),
    inputs: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option("--input", "-i", help="An input as name=value, or name=@file. Repeatable."),
    ] = None,
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Folder for output files. [default: .]"),
    ] = None,
    method: Annotated[
        str, typer.Option(help="The method to call: predict, or generate (older style).")
    ] = "predict",
    name: NameOption = None,
    class_name: ClassOption = None,
    image: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--image",
            help="Run this built image (with --network host) and predict over HTTP instead; "
            "'' means config.yaml's image.",
        ),
    ] = None,
    docker: DockerOption = None,
) -> None:
    """Run load() and one prediction in this process: no Docker, no server.

    Values are parsed by each input's type: text for str inputs, JSON for the others
    (3, 2.5, true, ["a", "b"]). @file reads a file: its path for Path inputs, its base64
    content for str inputs. The result is printed as JSON; stream items are printed as they
    arrive; output files are written to the current folder (or --output).

    Examples:

        kservehelper predict examples/hello -i name=Ada -i times=2

        kservehelper predict examples/blur-image -i image=@photo.jpg -i radius=4 -o out/

        kservehelper predict examples/blur-image --image 127.0.0.1:5000/blur:1 -i radius=4
    """
    from kservehelper.errors import InputError, KServeHelperError

    if image is not None:  # the built image, over HTTP (kservehelper/build/project.py)
        from kservehelper.build.project import predict_with_image

        try:
            predict_with_image(
                model_dir, image, inputs or [], method=method, docker_binary=docker, echo=typer.echo
            )
        except KServeHelperError as exc:
            _fail(exc)
        return
    import asyncio
    import json

    from kservehelper.serving import local, streaming
    from kservehelper.serving.loader import import_model_class, locate_model
    from kservehelper.serving.model import KServeModel
    from kservehelper.serving.transformer import is_transformer

    output_dir = (output or Path.cwd()).resolve()
    try:
        location = locate_model(model_dir, name, class_name)
        model_class = import_model_class(location)
        if is_transformer(model_class):
            raise InputError(
                f"{location.class_name} is a transformer (preprocess/postprocess): it needs its "
                "predictor; run both with `kservehelper serve` (--predictor-host for this one)"
            )
        model = KServeModel(location.name, model_class)
        signature = model.signatures.get(method)
        if signature is None:
            raise InputError(f"the model has no {method}() method")
        payload = local.parse_cli_inputs(signature, inputs or [])
    except KServeHelperError as exc:
        _fail(exc)
    model.local_output_dir = output_dir

    async def run() -> None:
        result = await local.run_local_prediction(model, method, payload)
        if isinstance(result, dict):
            typer.echo(json.dumps(result, indent=2, default=str))
            return
        async for item in result:
            typer.echo(streaming.dumps(item).decode())

    with local.working_directory(location.folder):
        try:
            model.load()
        except Exception as exc:
            traceback.print_exc()
            _fail(RuntimeError(f"load() failed: {type(exc).__name__}: {exc}"))
        try:
            asyncio.run(run())
        except KServeHelperError as exc:
            _fail(exc)
        except ValueError as exc:
            _fail(exc)
        except Exception as exc:
            traceback.print_exc()
            _fail(RuntimeError(f"{method}() failed: {type(exc).__name__}: {exc}"))


@app.command()
def schema(
    model_dir: ModelDir = Path("."),
    name: NameOption = None,
    class_name: ClassOption = None,
) -> None:
    """Print the model's input and output schema (JSON Schema), without starting a server.

    The same document the server answers at GET /v1/models/NAME/schema.

    Example:

        kservehelper schema examples/hello
    """
    import json

    from kservehelper.errors import KServeHelperError
    from kservehelper.serving.loader import import_model_class, locate_model
    from kservehelper.signature import model_schema, signatures_of

    try:
        location = locate_model(model_dir, name, class_name)
        document = model_schema(location.name, signatures_of(import_model_class(location)))
    except KServeHelperError as exc:
        _fail(exc)
    typer.echo(json.dumps(document, indent=2))


@app.command("upload-server")
def upload_server(
    dest: Annotated[
        str, typer.Option("--dest", help="s3://bucket/prefix, gs://bucket/prefix or a folder.")
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    token: Annotated[
        Optional[str],  # noqa: UP045 - typer needs Optional on Python 3.10
        typer.Option(
            envvar="KSERVEHELPER_UPLOAD_TOKEN",
            help="Require 'Authorization: Bearer TOKEN' on uploads (the model runtime sends "
            "it when KSERVEHELPER_UPLOAD_TOKEN is set).",
        ),
    ] = None,
    max_size_mb: Annotated[
        int, typer.Option("--max-size-mb", help="Largest request body accepted, in MiB.")
    ] = 2048,
    public_url: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Base URL clients reach this server at (for local-folder URLs)."),
    ] = None,
) -> None:
    """Run the bundled upload webhook server: stores files in DEST and answers with URLs.

    It speaks the three protocols the model runtime uses for output files:
    POST /upload (field 'file'), POST /upload_batch (fields file_0..., header NUM_FILES)
    and PUT /FILENAME. Point a request's "upload_webhook" at http://HOST:PORT/upload.

    Examples:

        kservehelper upload-server --dest s3://my-bucket/outputs --port 8000

        kservehelper upload-server --dest gs://my-bucket/outputs --token "$TOKEN"

        kservehelper upload-server --dest ./uploads --host 0.0.0.0 --public-url http://files:8000
    """
    from kservehelper.storage.server import run_upload_server

    run_upload_server(
        dest,
        host=host,
        port=port,
        token=token,
        max_bytes=max_size_mb * 1024 * 1024,
        public_url=public_url,
    )


@app.command()
def deploy(
    model_dir: ModelDir = Path("."),
    output: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--output", "-o", help="Write the manifest to FILE instead of stdout."),
    ] = None,
    output_format: Annotated[
        str, typer.Option("--format", "-f", help="yaml or json.", case_sensitive=False)
    ] = "yaml",
    image: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="Deploy this image. [default: the pushed digest, else config's image]"),
    ] = None,
) -> None:
    """Print the KServe InferenceService for the model in MODEL_DIR (from config.yaml).

    The image is the digest `kservehelper push` recorded, else config.yaml's image. The
    `deploy:` section of config.yaml sets namespace, resources, replicas, autoscaling,
    timeouts, environment and secrets, probes and workers (see docs/deploy.md).

    Examples:

        kservehelper deploy . | kubectl apply -f -

        kservehelper deploy examples/gpu-style --format json --output isvc.json
    """
    from kservehelper.deploy import dump_manifest, load_deploy_target, render_inference_service
    from kservehelper.errors import KServeHelperError

    output_format = output_format.lower()
    if output_format not in ("yaml", "json"):
        _fail(ValueError(f"--format must be yaml or json, not {output_format!r}"), code=2)
    try:
        target = load_deploy_target(model_dir, image=image)
        text = dump_manifest(
            render_inference_service(target), "json" if output_format == "json" else "yaml"
        )
    except KServeHelperError as exc:
        _fail(exc)
    for warning in target.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}", err=True)


def main() -> None:
    """Console-script entry point."""
    app()


# The image commands (build, push, dockerfile, init, config-schema) live with the build code.
from kservehelper.build.commands import register_build_commands  # noqa: E402

register_build_commands(app)
