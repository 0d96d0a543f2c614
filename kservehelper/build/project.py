"""The build/push/predict steps for a model folder, as the command line runs them.

config.yaml → Dockerfile (for the detected builder) → staged context → docker build → the
model's schema read inside the image (added as a label); push records the digest and the local
image id in ``DIR/.kservehelper/last-push.json`` for the deploy command.

Nothing here imports the user's model on this machine: the model runs only inside its image.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from kservehelper.build import container, docker, engine
from kservehelper.build.context import stage_context
from kservehelper.build.dockerfile import (
    APT_CONFIG_SECRET,
    CA_CERT_SECRET,
    SCHEMA_LABEL,
    DockerfileInputs,
    build_arguments,
    is_kservehelper_requirement,
    label_json,
    render_dockerfile,
)
from kservehelper.config.locate import LAST_PUSH_FILE
from kservehelper.config.project import ProjectConfig, load_config
from kservehelper.errors import BuildError
from kservehelper.schema.cli_inputs import parse_cli_pairs, type_names_from_schema

#: uv's own setting for where python-build-standalone releases are downloaded from; passed
#: through to the build when set (CUDA images whose distro lacks the Python asked for).
PYTHON_MIRROR_ENV = "UV_PYTHON_INSTALL_MIRROR"
#: Where ``predict --image`` has the container store output files (copied out afterwards).
CONTAINER_OUTPUTS = "/tmp/kservehelper-predict-outputs"


@dataclass
class BuildOutcome:
    """A finished build: the image tag, the Dockerfile used and the build log."""

    image: str
    dockerfile: str
    result: engine.BuildResult
    engine: docker.Engine
    schema: dict[str, Any] | None = None


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


@contextlib.contextmanager
def _with_apt_config(secrets: Sequence[str]) -> Iterator[list[str]]:
    """The secrets, plus an apt configuration pointing apt at the CA bundle when one is given
    (a secret too: it never lands in a layer)."""
    ids = secret_ids(secrets)
    if CA_CERT_SECRET not in ids or APT_CONFIG_SECRET in ids:
        yield list(secrets)
        return
    with tempfile.TemporaryDirectory(prefix="kservehelper-apt-") as folder:
        config = pathlib.Path(folder) / "apt.conf"
        config.write_text(f'Acquire::https::CAInfo "/run/secrets/{CA_CERT_SECRET}";\n')
        yield [*secrets, f"id={APT_CONFIG_SECRET},src={config}"]


def dockerfile_for(
    config: ProjectConfig,
    engine_: docker.Engine | None,
    secrets: Sequence[str] = (),
    *,
    wheel_name: str | None = None,
) -> str:
    """The Dockerfile this config builds with this engine (BuildKit when unknown)."""
    inputs = DockerfileInputs(
        buildkit=engine_.buildkit if engine_ is not None else True,
        secret_ids=secret_ids(secrets),
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
    """Check config.yaml, render the Dockerfile, stage the context, build the image, then read
    the model's schema inside it and label the image with it."""
    config = load_config(model_dir)
    chosen = docker.detect_engine(docker_binary)
    image = tag or config.image_or_default
    if tag:  # the labels name what is built
        config = config.model_copy(update={"image": tag})
    say = echo or (lambda _: None)
    say(f"kservehelper: building {image} with {chosen.describe()}")
    for warning in config.warnings:
        say(f"kservehelper: warning: {warning}")
    if any(is_kservehelper_requirement(p) for p in config.build.python_packages):
        say("kservehelper: python_packages names kservehelper: installing this version")
    staged = stage_context(config)
    try:
        for warning in staged.warnings:
            say(f"kservehelper: warning: {warning}")
        with _with_apt_config(secrets) as all_secrets:
            wheel_name = pathlib.PurePosixPath(staged.wheel).name
            dockerfile = dockerfile_for(config, chosen, all_secrets, wheel_name=wheel_name)
            (staged.path / "Dockerfile").write_text(dockerfile, encoding="utf-8")
            build_args: dict[str, str | None] = dict(build_arguments(config))
            if os.environ.get(PYTHON_MIRROR_ENV):
                build_args[PYTHON_MIRROR_ENV] = None  # passed through from the environment
            result = engine.build_image(
                chosen,
                str(staged.path),
                image,
                platform=platform,
                network=network,
                no_cache=no_cache,
                progress=progress,
                secrets=all_secrets,
                build_args=build_args,
                echo=echo,
            )
    finally:
        staged.cleanup()
    say("kservehelper: reading the model's schema inside the image")
    schema = container.read_schema(chosen, image, config.name or "model", config.class_name)
    docker.add_labels(chosen, image, {SCHEMA_LABEL: label_json(schema)})
    return BuildOutcome(image, dockerfile, result, chosen, schema)


def push_project(
    model_dir: pathlib.Path,
    *,
    tag: str | None = None,
    docker_binary: str | None = None,
    echo: Callable[[str], None] | None = print,
) -> dict[str, str]:
    """Push the built image; record and return ``{"image", "digest", "reference", "image_id"}``."""
    config = load_config(model_dir)
    image = tag or config.image
    if not image:
        raise BuildError(
            f"{config.model_dir / 'config.yaml'}: no `image` to push; set image: "
            "REGISTRY/NAME:TAG (or pass --tag)"
        )
    chosen = docker.detect_engine(docker_binary)
    local_id = docker.image_id(chosen, image)
    digest = engine.push_image(chosen, image, echo=echo)
    repository = image.partition("@")[0]
    last = repository.rsplit("/", 1)[-1]
    if ":" in last:
        repository = repository[: repository.rfind(":")]
    record = {"image": image, "digest": digest, "reference": f"{repository}@{digest}"}
    if local_id:
        record["image_id"] = local_id
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
    output_dir: pathlib.Path | None = None,
    on_result: Callable[[dict[str, Any]], None] | None = None,
    on_item: Callable[[Any], None] | None = None,
) -> None:
    """Run the built image, send one request over HTTP and hand over its answer as local
    ``predict`` does: a result (``on_result``) or stream items as they arrive (``on_item``),
    with output files copied out of the container into ``output_dir`` (their values become the
    local paths). The container is removed afterwards, also on failure."""
    config = load_config(model_dir)
    chosen = docker.detect_engine(docker_binary)
    name = config.name or "model"
    folder = (output_dir or pathlib.Path.cwd()).resolve()
    env = {"KSERVEHELPER_UPLOAD_TO": CONTAINER_OUTPUTS}
    with container.running_container(
        chosen, image or config.image_or_default, name, config.class_name, env=env
    ) as (url, running):
        schema_response = httpx.get(f"{url}/v1/models/{name}/schema", timeout=30)
        schema = schema_response.json() if schema_response.status_code == 200 else {}
        payload = parse_image_inputs(inputs, schema)
        with tempfile.TemporaryDirectory(prefix="kservehelper-outputs-") as scratch:
            fetch = _OutputFetcher(chosen, running, pathlib.Path(scratch), folder)
            for kind, value in container.post_prediction(url, name, payload, method=method):
                callback = on_item if kind == "item" else on_result
                if callback is not None:
                    callback(fetch.localise(value))


class _OutputFetcher:
    """Output files the container stored under :data:`CONTAINER_OUTPUTS`: copied out into the
    output folder under their own names (never overwriting), their URLs replaced by paths."""

    def __init__(
        self, engine_: docker.Engine, running: str, scratch: pathlib.Path, folder: pathlib.Path
    ) -> None:
        self.engine, self.running, self.scratch, self.folder = engine_, running, scratch, folder

    def localise(self, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: self.localise(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self.localise(item) for item in value]
        prefix = f"file://{CONTAINER_OUTPUTS}/"
        if isinstance(value, str) and value.startswith(prefix):
            return str(self._copy_out(value.removeprefix("file://")))
        return value

    def _copy_out(self, source: str) -> pathlib.Path:
        relative = pathlib.PurePosixPath(source).relative_to(CONTAINER_OUTPUTS)
        if ".." in relative.parts:
            raise BuildError(f"the model server answered an unexpected file URL: {source}")
        landed = self.scratch / relative.name
        container.copy_from_container(self.engine, self.running, source, str(landed))
        self.folder.mkdir(parents=True, exist_ok=True)
        name = pathlib.PurePath(relative.name)
        target, counter = self.folder / name.name, 1
        while target.exists():
            target = self.folder / f"{name.stem}-{counter}{name.suffix}"
            counter += 1
        shutil.move(str(landed), target)
        return target
