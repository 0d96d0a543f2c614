"""Renders templates/Dockerfile.j2 from a config: a pure function of its inputs."""

from __future__ import annotations

import json
import pathlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import jinja2

from kservehelper import __version__
from kservehelper.build.images import UV_IMAGE, BaseImage, resolve_base_image
from kservehelper.config.locate import CONFIG_FILE
from kservehelper.config.project import ProjectConfig

MODEL_PORT = 8080
USER_ID = 10001
# BuildKit secret ids with a meaning for pip; any other id is mounted at /run/secrets/<id>.
PIP_CONFIG_SECRET = "pip.conf"
CA_CERT_SECRET = "ca-cert"
_PIP_SECRET_ENV = {PIP_CONFIG_SECRET: "PIP_CONFIG_FILE", CA_CERT_SECRET: "PIP_CERT"}
_UV_SECRET_ENV = {CA_CERT_SECRET: "SSL_CERT_FILE"}
# uv (https://pypi.org/project/uv/) installs the packages; pip when a pip.conf secret is given
# (uv does not read pip.conf).
UV_VERSION = "0.13.9"
_UV_INSTALL = 'uv pip install --python "$(command -v python)" --compile-bytecode'
_PIP_INSTALL = "python -m pip install"
_KSERVEHELPER_REQUIREMENT = re.compile(r"^kservehelper\s*(?:[\[<>=!~;@ ]|$)", re.IGNORECASE)


@dataclass(frozen=True)
class DockerfileInputs:
    """What the Dockerfile depends on besides config.yaml: builder and staged files."""

    buildkit: bool = True
    wheel_name: str = f"kservehelper-{__version__}-py3-none-any.whl"
    secret_ids: tuple[str, ...] = ()
    input_schema: dict[str, Any] | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)


def _double_quote(value: str, expand: bool = False) -> str:
    """A Dockerfile double-quoted string for LABEL/ENV; `$` stays literal unless ``expand``
    (ENV values may name other variables, e.g. ``PATH: /opt/bin:$PATH``)."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    if not expand:
        escaped = escaped.replace("$", "\\$")
    return '"' + escaped.replace("\n", "\\n") + '"'


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("kservehelper.build", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
_ENVIRONMENT.filters["sh"] = shlex.quote
_ENVIRONMENT.filters["dq"] = _double_quote


def is_kservehelper_requirement(package: str) -> bool:
    """Whether a python_packages entry names kservehelper (it is replaced by our own wheel)."""
    return bool(_KSERVEHELPER_REQUIREMENT.match(package.strip()))


def pip_packages(config: ProjectConfig) -> list[str]:
    """build.python_packages as pip arguments: local wheels point at their staged copy and a
    ``kservehelper`` entry is dropped (the image gets the running version's wheel)."""
    arguments = []
    for package in config.build.python_packages:
        package = package.strip()
        if is_kservehelper_requirement(package):
            continue
        if package.endswith(".whl") and "://" not in package:
            package = "/tmp/kservehelper/wheels/" + package.rsplit("/", 1)[-1]
        arguments.append(shlex.quote(package))
    return arguments


def system_packages(config: ProjectConfig) -> list[str]:
    """build.system_packages, plus git when a package is installed from a git URL."""
    packages = list(dict.fromkeys(config.build.system_packages))
    uses_git = any(p.strip().startswith("git+") for p in config.build.python_packages)
    if uses_git and "git" not in packages:
        packages.append("git")
    return packages


def serve_command(config: ProjectConfig) -> list[str]:
    """The image's CMD: kservehelper serves /app on port 8080."""
    name = config.name or "model"
    port = str(MODEL_PORT)
    return [
        "kservehelper",
        "serve",
        "/app",
        "--port",
        port,
        "--name",
        name,
        "--class",
        config.class_name,
    ]


def image_labels(config: ProjectConfig, inputs: DockerfileInputs) -> dict[str, str]:
    """OCI labels plus kservehelper's: its version, the config, the model's input schema."""
    labels = {
        "org.opencontainers.image.title": config.name or "model",
        "org.opencontainers.image.description": f"{config.name} served on KServe by kservehelper",
        "ai.kservehelper.version": __version__,
        "ai.kservehelper.model.name": config.name or "model",
        "ai.kservehelper.model.class": config.class_name,
        "ai.kservehelper.config": config.to_label(),
    }
    if config.image:
        tag = config.image.rsplit("/", 1)[-1].partition("@")[0]
        if ":" in tag:
            labels["org.opencontainers.image.version"] = tag.rsplit(":", 1)[-1]
    if inputs.input_schema is not None:
        labels["ai.kservehelper.input-schema"] = json.dumps(inputs.input_schema, sort_keys=True)
    labels.update(inputs.extra_labels)
    return labels


def render_dockerfile(config: ProjectConfig, inputs: DockerfileInputs | None = None) -> str:
    """The Dockerfile text for a config and a builder (BuildKit or legacy)."""
    inputs = inputs or DockerfileInputs()
    base: BaseImage = resolve_base_image(config.build)
    buildkit = inputs.buildkit
    requirements = [
        "deps/requirements/" + pathlib.Path(r).as_posix() for r in config.build.python_requirements
    ]
    has_wheels = any(
        p.strip().endswith(".whl") and "://" not in p for p in config.build.python_packages
    )
    pip_arguments = [f"-r /tmp/kservehelper/{r.removeprefix('deps/')}" for r in requirements]
    pip_arguments += pip_packages(config)
    if pip_arguments:
        # Resolved together with kservehelper's requirements, so a model's pins cannot break them.
        pip_arguments.append("-r /tmp/kservehelper/runtime/requirements.txt")

    secret_mounts = "".join(
        f"--mount=type=secret,id={secret} \\\n    " for secret in inputs.secret_ids
    )
    use_uv = PIP_CONFIG_SECRET not in inputs.secret_ids
    secret_env = _UV_SECRET_ENV if use_uv else _PIP_SECRET_ENV
    pip_env = "".join(
        f"{secret_env[s]}=/run/secrets/{s} " for s in inputs.secret_ids if s in secret_env
    )
    cache_dir = "/root/.cache/uv" if use_uv else "/root/.cache/pip"
    legacy_copies: list[tuple[str, str]] = []
    if buildkit:
        pip_mounts = (
            f"--mount=type=cache,target={cache_dir} \\\n    "
            "--mount=type=bind,source=deps/runtime,target=/tmp/kservehelper/runtime \\\n    "
        )
        if requirements:
            pip_mounts += (
                "--mount=type=bind,source=deps/requirements,"
                "target=/tmp/kservehelper/requirements \\\n    "
            )
        if has_wheels:
            pip_mounts += (
                "--mount=type=bind,source=deps/wheels,target=/tmp/kservehelper/wheels \\\n    "
            )
        pip_mounts += secret_mounts
    else:
        pip_mounts = ""
        pip_env = ""
        if requirements:
            legacy_copies.append(("deps/requirements/", "/tmp/kservehelper/requirements/"))
        if has_wheels:
            legacy_copies.append(("deps/wheels/", "/tmp/kservehelper/wheels/"))

    ignores = ["DL3008", "DL3013"]
    if buildkit:
        ignores += ["DL3042", "DL3009"]
    if config.build.user == "root":
        ignores.append("DL3002")

    return _ENVIRONMENT.get_template("Dockerfile.j2").render(
        version=__version__,
        config_file=CONFIG_FILE,
        hadolint_ignores=ignores,
        base=base,
        buildkit=buildkit,
        uv_image=UV_IMAGE,
        system_packages=system_packages(config),
        user=config.build.user,
        uid=USER_ID,
        legacy_copies=legacy_copies,
        pip_arguments=pip_arguments,
        uv_version=UV_VERSION if use_uv else None,
        install=_UV_INSTALL if use_uv else _PIP_INSTALL,
        cache_dir=cache_dir,
        pip_mounts=pip_mounts,
        pip_env=pip_env,
        wheel_dir="deps/kservehelper",
        wheel_name=inputs.wheel_name,
        env=config.build.env,
        commands=[*config.build.commands, *config.build.additional_commands],
        command_mounts=secret_mounts if buildkit else "",
        labels=image_labels(config, inputs),
        cmd=json.dumps(serve_command(config)),
    )
