"""``kservehelper predict`` and ``schema``: one prediction and the schema, in this process."""

from __future__ import annotations

import traceback
from pathlib import Path
from typing import Annotated, Optional

import typer

from kservehelper.cli.app import ClassOption, DockerOption, ModelDir, NameOption, app, fail


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
        from kservehelper.cli import output as printer

        try:
            predict_with_image(
                model_dir,
                image,
                inputs or [],
                method=method,
                docker_binary=docker,
                output_dir=output,
                on_result=printer.print_result,
                on_item=printer.print_stream_item,
            )
        except KServeHelperError as exc:
            fail(exc)
        return
    import asyncio
    import json

    from kservehelper.config.locate import locate_model
    from kservehelper.serving import local, streaming
    from kservehelper.serving.loader import import_model_class
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
        fail(exc)
    model.local_output_dir = output_dir

    from kservehelper.cli import output as printer

    async def run() -> None:
        result = await local.run_local_prediction(model, method, payload)
        if isinstance(result, dict):
            printer.print_result(result)
            return
        async for item in result:
            printer.print_stream_item(json.loads(streaming.dumps(item)))

    with local.working_directory(location.folder):
        try:
            model.load()
        except Exception as exc:
            traceback.print_exc()
            fail(RuntimeError(f"load() failed: {type(exc).__name__}: {exc}"))
        try:
            asyncio.run(run())
        except KServeHelperError as exc:
            fail(exc)
        except ValueError as exc:
            fail(exc)
        except Exception as exc:
            traceback.print_exc()
            fail(RuntimeError(f"{method}() failed: {type(exc).__name__}: {exc}"))


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

    from kservehelper.config.locate import locate_model
    from kservehelper.errors import KServeHelperError
    from kservehelper.schema.signature import model_schema, signatures_of
    from kservehelper.serving.loader import import_model_class

    try:
        location = locate_model(model_dir, name, class_name)
        document = model_schema(location.name, signatures_of(import_model_class(location)))
    except KServeHelperError as exc:
        fail(exc)
    typer.echo(json.dumps(document, indent=2))
