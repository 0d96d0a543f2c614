"""The build/push/predict steps for a model folder, as the command line runs them.

config.yaml → Dockerfile (for the detected builder) → staged context → docker build;
push records the digest in ``DIR/.kservehelper/last-push.json`` for the deploy command.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from kservehelper.build import docker
from kservehelper.build.context import stage_context
from kservehelper.build.dockerfile import (
    CA_CERT_SECRET,
    DockerfileInputs,
    is_kservehelper_requirement,
    render_dockerfile,
)
from kservehelper.config.locate import LAST_PUSH_FILE
from kservehelper.config.project import ProjectConfig, load_config
from kservehelper.errors import BuildError
from kservehelper.schema.cli_inputs import parse_cli_pairs, type_names_from_schema


@dataclass
class BuildOutcome:
    """A finished build: the image tag, the Dockerfile used and the build log."""

    image: str
    dockerfile: str
    result: docker.BuildResult
    engine: docker.Engine


def secret_arguments(secrets: Sequence[str], ca_cert: pathlib.Path | None) -> list[str]:
    """``--secret`` values for docker; ``--ca-cert PATH`` becomes ``id=ca-cert,src=PATH``."""
    arguments = list(secrets)
    if ca_cert is not None:
        if not ca_cert.is_file():
            raise BuildError(f"--ca-cert {ca_cert}: no such file")
        arguments.append(f"id={CA_CERT_SECRET},src={ca_cert.resolve()}")
    for argument in arguments:
        if "id=" not in argument:
            raise BuildError(f"--secret {argument!r}: write id=NAME,src=PATH (as docker does)")
    return arguments


def secret_ids(arguments: Sequence[str]) -> tuple[str, ...]:
    """The ids of ``--secret id=...,src=...`` arguments."""
    ids = []
    for argument in arguments:
        for part in argument.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "id":
                ids.append(value.strip())
    return tuple(ids)


def model_input_schema(model_dir: pathlib.Path) -> dict[str, Any] | None:
    """The model's input schema from ``kservehelper schema``, if its module imports here.

    Run in a subprocess: it imports the user's module (torch, PIL...) and the serving stack,
    which building itself never needs. Returns None when that is not possible.
    """
    code = "from kservehelper.cli import main; main()"
    try:
        done = subprocess.run(
            [sys.executable, "-c", code, "schema", str(model_dir)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        document = json.loads(done.stdout) if done.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired, json.JSONDecodeError):
        return None
    return document if isinstance(document, dict) else None


def dockerfile_for(
    config: ProjectConfig,
    engine: docker.Engine | None,
    secrets: Sequence[str] = (),
    *,
    with_schema: bool = True,
    wheel_name: str | None = None,
) -> str:
    """The Dockerfile this config builds with this engine (BuildKit when unknown)."""
    schema = model_input_schema(config.model_dir) if with_schema else None
    inputs = DockerfileInputs(
        buildkit=engine.buildkit if engine is not None else True,
        secret_ids=secret_ids(secrets),
        input_schema=schema,
    )
    if wheel_name is not None:
        inputs = dataclasses.replace(inputs, wheel_name=wheel_name)
    return render_dockerfile(config, inputs)


def build_project(
    model_dir: pathlib.Path,
    *,
    tag: str | None = None,
    docker_binary: str | None = None,
    platform: str = docker.DEFAULT_PLATFORM,
    network: str = "host",
    no_cache: bool = False,
    progress: str = "plain",
    secrets: Sequence[str] = (),
    echo: Callable[[str], None] | None = print,
) -> BuildOutcome:
    """Check config.yaml, render the Dockerfile, stage the context and build the image."""
    config = load_config(model_dir)
    engine = docker.detect_engine(docker_binary)
    image = tag or config.image_or_default
    if tag:  # the labels name what is built
        config = config.model_copy(update={"image": tag})
    if echo is not None:
        echo(f"kservehelper: building {image} with {engine.builder} ({engine.binary})")
        if any(is_kservehelper_requirement(p) for p in config.build.python_packages):
            echo("kservehelper: python_packages names kservehelper: installing this version")
    staged = stage_context(config)
    try:
        wheel_name = pathlib.PurePosixPath(staged.wheel).name
        dockerfile = dockerfile_for(config, engine, secrets, wheel_name=wheel_name)
        (staged.path / "Dockerfile").write_text(dockerfile, encoding="utf-8")
        result = docker.build_image(
            engine,
            str(staged.path),
            image,
            platform=platform,
            network=network,
            no_cache=no_cache,
            progress=progress,
            secrets=secrets,
            echo=echo,
        )
    finally:
        staged.cleanup()
    return BuildOutcome(image, dockerfile, result, engine)


def push_project(
    model_dir: pathlib.Path,
    *,
    tag: str | None = None,
    docker_binary: str | None = None,
    echo: Callable[[str], None] | None = print,
) -> dict[str, str]:
    """Push the built image; record and return ``{"image", "digest", "reference"}``."""
    config = load_config(model_dir)
    image = tag or config.image
    if not image:
        raise BuildError(
            f"{config.model_dir / 'config.yaml'}: no `image` to push; set image: "
            "REGISTRY/NAME:TAG (or pass --tag)"
        )
    engine = docker.detect_engine(docker_binary)
    digest = docker.push_image(engine, image, echo=echo)
    repository = image.partition("@")[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: repository.rfind(":")]
    record = {"image": image, "digest": digest, "reference": f"{repository}@{digest}"}
    path = config.model_dir / LAST_PUSH_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    return record


def parse_image_inputs(pairs: Sequence[str], schema: dict[str, Any]) -> dict[str, Any]:
    """``name=value`` pairs as a request payload, read by each input's kind as local
    ``predict`` reads them (the server's schema names each input's kind: ``x-kind``).

    The container cannot read the host's paths: a file input's local file (``image=cat.png``
    or ``image=@cat.png``) is sent as a ``data:`` URI.
    """
    return parse_cli_pairs(pairs, type_names_from_schema(schema), in_container=True)


def predict_with_image(
    model_dir: pathlib.Path,
    image: str | None,
    inputs: Sequence[str],
    *,
    method: str = "predict",
    docker_binary: str | None = None,
    echo: Callable[[str], None] | None = print,
) -> list[str]:
    """Run the built image, send one request over HTTP, print the answer, stop the container."""
    config = load_config(model_dir)
    engine = docker.detect_engine(docker_binary)
    name = config.name or "model"
    with docker.running_model(
        engine, image or config.image_or_default, name, config.class_name
    ) as url:
        schema_response = httpx.get(f"{url}/v1/models/{name}/schema", timeout=30)
        schema = schema_response.json() if schema_response.status_code == 200 else {}
        payload = parse_image_inputs(inputs, schema)
        return docker.predict_over_http(url, name, payload, echo=echo, method=method)
