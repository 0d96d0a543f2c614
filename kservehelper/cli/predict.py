"""``kservehelper predict`` and ``schema``: one prediction and the schema, in this process.

The commands are wiring; the steps are functions: find and import the model
(:func:`load_local_model`), parse ``-i`` into a request (:func:`local_request`), run it
(:func:`run_local`), print what came back (:func:`print_result`, :func:`print_stream_item`).
Each step ends the command with one line (``fail()``) when the user's model or inputs are wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import typer

from kservehelper.cli.app import ClassOption, DockerOption, ModelDir, NameOption, app, fail

if TYPE_CHECKING:
    from kservehelper.config.locate import ModelLocation
    from kservehelper.serving.model import KServeModel


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
    if image is not None:
        predict_in_image(
            model_dir, image, inputs or [], method=method, docker=docker, output=output
        )
        return
    location, model = load_local_model(model_dir, name, class_name)
    payload = local_request(model, method, inputs or [])
    model.local_output_dir = (output or Path.cwd()).resolve()
    run_local(location, model, method, payload)


def predict_in_image(
    model_dir: Path,
    image: str,
    inputs: Sequence[str],
    *,
    method: str,
    docker: str | None,
    output: Path | None = None,
) -> None:
    """Run the built image (kservehelper/build/project.py) and predict over HTTP; output files
    land in ``output`` (default: the current folder) and print as local predict prints."""
    from kservehelper.build.project import predict_with_image
    from kservehelper.cli import output as printer
    from kservehelper.errors import KServeHelperError

    try:
        predict_with_image(
            model_dir,
            image,
            list(inputs),
            method=method,
            docker_binary=docker,
            output_dir=output,
            on_result=printer.print_result,
            on_item=printer.print_stream_item,
        )
    except KServeHelperError as exc:
        fail(exc)


def load_local_model(
    model_dir: Path, name: str | None, class_name: str | None
) -> tuple[ModelLocation, KServeModel]:
    """Find and import the model in ``model_dir``, ready to load (not loaded yet)."""
    from kservehelper.config.locate import locate_model
    from kservehelper.errors import InputError, KServeHelperError
    from kservehelper.serving.loader import import_model_class
    from kservehelper.serving.model import KServeModel
    from kservehelper.serving.transformer import is_transformer

    try:
        location = locate_model(model_dir, name, class_name)
        model_class = import_model_class(location)
        if is_transformer(model_class):
            raise InputError(
                f"{location.class_name} is a transformer (preprocess/postprocess): it needs its "
                "predictor; run both with `kservehelper serve` (--predictor-host for this one)"
            )
        return location, KServeModel(location.name, model_class)
    except KServeHelperError as exc:
        fail(exc)


def local_request(model: KServeModel, method: str, pairs: Sequence[str]) -> dict[str, Any]:
    """The request payload from ``-i name=value`` pairs, typed by ``method``'s inputs."""
    from kservehelper.errors import InputError, KServeHelperError
    from kservehelper.serving import local

    signature = model.signatures.get(method)
    try:
        if signature is None:
            served = ", ".join(sorted(model.signatures))
            raise InputError(f"the model has no {method}() method; use --method with: {served}")
        return local.parse_cli_inputs(signature, pairs)
    except KServeHelperError as exc:
        fail(exc)


def run_local(
    location: ModelLocation, model: KServeModel, method: str, payload: dict[str, Any]
) -> None:
    """``load()`` then one ``method`` call, from the model's folder; print the result."""
    import asyncio

    from kservehelper.errors import KServeHelperError, ModelError
    from kservehelper.serving import local
    from kservehelper.serving.loader import code_location, display_path

    step = "load()"
    try:
        with local.working_directory(location.folder):
            model.load()
            step = f"{method}()"
            asyncio.run(_predict_and_print(model, method, payload))
    except (KServeHelperError, ValueError) as exc:
        # Our errors say what to fix; a ValueError is the model saying the input is wrong.
        fail(exc)
    except Exception as exc:
        where = code_location(exc, location.folder) or display_path(location.entrypoint)
        error = ModelError(f"{where}: {step} raised {type(exc).__name__}: {exc}")
        error.__cause__ = exc
        fail(error)


async def _predict_and_print(model: KServeModel, method: str, payload: dict[str, Any]) -> None:
    from kservehelper.serving import local

    result = await local.run_local_prediction(model, method, payload)
    if isinstance(result, dict):
        print_result(result)
        return
    async for item in result:
        print_stream_item(item)


def print_result(result: dict[str, Any]) -> None:
    """A prediction's response, as indented JSON (cli/output.py: as ``predict --image``)."""
    from kservehelper.cli import output as printer

    printer.print_result(result)


def print_stream_item(item: Any) -> None:
    """One stream item, as one JSON line, printed as soon as it arrives (cli/output.py)."""
    import json

    from kservehelper.cli import output as printer
    from kservehelper.serving import streaming

    printer.print_stream_item(json.loads(streaming.dumps(item)))


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
