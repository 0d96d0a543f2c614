"""``kservehelper deploy``: the KServe InferenceService for a model folder."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Optional

import typer

from kservehelper.cli.app import DockerOption, ModelDir, app, fail


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
    docker: DockerOption = None,
) -> None:
    """Print the KServe InferenceService for the model in MODEL_DIR (from config.yaml).

    The image is the digest `kservehelper push` recorded (refused when the local image was
    rebuilt since: push first, or pass --image), else config.yaml's image. The
    `deploy:` section of config.yaml sets namespace, resources, replicas, autoscaling,
    timeouts, environment and secrets, probes and workers (see docs/deploy.md).

    Examples:

        kservehelper deploy . | kubectl apply -f -

        kservehelper deploy examples/gpu-style --format json --output isvc.json
    """
    from kservehelper.deploy.manifest import dump_manifest, render_inference_service
    from kservehelper.deploy.target import load_deploy_target
    from kservehelper.errors import KServeHelperError

    output_format = output_format.lower()
    if output_format not in ("yaml", "json"):
        fail(ValueError(f"--format must be yaml or json, not {output_format!r}"), code=2)
    try:
        target = load_deploy_target(model_dir, image=image, local_image_id=_local_images(docker))
        text = dump_manifest(
            render_inference_service(target), "json" if output_format == "json" else "yaml"
        )
    except KServeHelperError as exc:
        fail(exc)
    for warning in target.warnings:
        typer.echo(f"warning: {warning}", err=True)
    if output is None:
        typer.echo(text, nl=False)
        return
    output.write_text(text, encoding="utf-8")
    typer.echo(f"Wrote {output}", err=True)


def _local_images(docker_binary: str | None) -> Callable[[str], str | None]:
    """Looks up local image ids with Docker; without a reachable engine there is nothing local
    to compare the pushed digest with."""
    from kservehelper.build.docker import detect_engine, image_id
    from kservehelper.errors import BuildError

    def lookup(image: str) -> str | None:
        try:
            return image_id(detect_engine(docker_binary), image)
        except BuildError:
            return None

    return lookup
