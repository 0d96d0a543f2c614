"""The image commands of ``kservehelper``: build, push, dockerfile, init, config-schema."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from kservehelper.cli.app import DockerOption, app, fail

BuildDir = Annotated[Path, typer.Argument(help="The model folder (holds config.yaml).")]


@app.command()
def build(
    model_dir: BuildDir = Path("."),
    tag: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--tag", "-t", help="Image name. [default: config.yaml's image]"),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Ignore the layer cache.")] = False,
    platform: Annotated[str, typer.Option(help="Target platform.")] = "linux/amd64",
    network: Annotated[str, typer.Option(help="Network for RUN steps.")] = "host",
    secret: Annotated[
        Optional[list[str]],  # noqa: UP045
        typer.Option(
            "--secret",
            help="A BuildKit secret, id=NAME,src=PATH (repeatable). id=pip.conf is used as "
            "pip's config file (private indexes); never stored in the image.",
        ),
    ] = None,
    ca_cert: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(help="A CA bundle pip trusts during the build (a BuildKit secret)."),
    ] = None,
    progress: Annotated[str, typer.Option(help="BuildKit progress: plain, tty, auto.")] = "plain",
    docker: DockerOption = None,
) -> None:
    """Build the model's image from config.yaml, streaming the build log.

    Examples:

        kservehelper build examples/blur-image

        kservehelper build . --tag 127.0.0.1:5000/blur:dev --secret id=pip.conf,src=pip.conf
    """
    from kservehelper.build.project import build_project, secret_arguments
    from kservehelper.errors import KServeHelperError

    try:
        secrets = secret_arguments(secret or [], ca_cert)
        outcome = build_project(
            model_dir,
            tag=tag,
            docker_binary=docker,
            platform=platform,
            network=network,
            no_cache=no_cache,
            progress=progress,
            secrets=secrets,
            echo=typer.echo,
        )
    except KServeHelperError as exc:
        fail(exc)
    typer.echo(f"Built {outcome.image}")


@app.command()
def push(
    model_dir: BuildDir = Path("."),
    tag: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option("--tag", "-t", help="Image to push. [default: config.yaml's image]"),
    ] = None,
    docker: DockerOption = None,
) -> None:
    """Push the model's image; print its digest and record it in .kservehelper/last-push.json.

    Example:

        kservehelper push examples/blur-image
    """
    from kservehelper.build.project import push_project
    from kservehelper.errors import KServeHelperError

    try:
        record = push_project(model_dir, tag=tag, docker_binary=docker, echo=typer.echo)
    except KServeHelperError as exc:
        fail(exc)
    typer.echo(f"Pushed {record['reference']}")
    typer.echo(record["digest"])


@app.command()
def dockerfile(
    model_dir: BuildDir = Path("."),
    builder: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(help="buildkit or legacy. [default: what the docker client offers]"),
    ] = None,
    docker: DockerOption = None,
) -> None:
    """Print the Dockerfile `kservehelper build` would build (after checking config.yaml).

    The model is not imported: `build` reads its input schema inside the built image and adds
    it as a label. A build.env value with a newline is a build argument `build` passes.

    Examples:

        kservehelper dockerfile examples/blur-image

        kservehelper dockerfile . --builder legacy | hadolint -
    """
    from kservehelper.build.docker import detect_engine
    from kservehelper.build.dockerfile import DockerfileInputs, render_dockerfile
    from kservehelper.config.project import load_config
    from kservehelper.errors import BuildError, KServeHelperError

    try:
        config = load_config(model_dir)
        if builder is None:
            try:
                buildkit = detect_engine(docker).buildkit
            except BuildError:
                buildkit = True
        elif builder in ("buildkit", "buildx", "legacy"):
            buildkit = builder != "legacy"
        else:
            raise BuildError(f"--builder {builder}: use buildkit or legacy")
        text = render_dockerfile(config, DockerfileInputs(buildkit=buildkit))
    except KServeHelperError as exc:
        fail(exc)
    for warning in config.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(text, nl=False)


@app.command("config-schema")
def config_schema() -> None:
    """Print config.yaml's JSON Schema, for editors and CI.

    Example: save the schema, then paste the second line as the first line of config.yaml
    (VS Code and other editors using yaml-language-server then check and complete it):

    ```
    kservehelper config-schema > config.schema.json
    # yaml-language-server: $schema=config.schema.json
    ```
    """
    import json

    from kservehelper.config.project import config_json_schema

    typer.echo(json.dumps(config_json_schema(), indent=2))


@app.command()
def init(
    model_dir: BuildDir = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite existing files.")] = False,
) -> None:
    """Scaffold model.py, config.yaml, requirements.txt and .dockerignore in a folder.

    Example:

        kservehelper init my-model && kservehelper build my-model
    """
    from kservehelper.build.scaffold import scaffold_model_folder
    from kservehelper.errors import KServeHelperError

    try:
        written = scaffold_model_folder(model_dir, force=force)
    except KServeHelperError as exc:
        fail(exc)
    for path in written:
        typer.echo(f"wrote {path}")
