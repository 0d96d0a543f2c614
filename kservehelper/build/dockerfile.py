"""Renders templates/Dockerfile.j2 from a config: a pure function of its inputs.

Every value from config.yaml arrives here validated (:mod:`kservehelper.config.project`) and is
rendered quoted: shell words for package names and paths, Dockerfile double quotes for ENV and
LABEL values, JSON exec form for ``commands``, so no value can add an instruction.
"""

from __future__ import annotations

import json
import pathlib
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

import jinja2

from kservehelper import __version__
from kservehelper.build.images import BaseImage, resolve_base_image
from kservehelper.config.locate import CONFIG_FILE
from kservehelper.config.project import ProjectConfig

MODEL_PORT = 8080
USER_ID = 10001
# BuildKit secret ids with a meaning: pip's config file, a CA bundle, and the apt config that
# `kservehelper build` writes to point apt at that bundle. Any other id is mounted at
# /run/secrets/<id> in the same (network) steps.
PIP_CONFIG_SECRET = "pip.conf"
CA_CERT_SECRET = "ca-cert"
APT_CONFIG_SECRET = "kservehelper-apt.conf"
_CA_ENV = ("SSL_CERT_FILE", "PIP_CERT", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "GIT_SSL_CAINFO")
# uv (https://pypi.org/project/uv/) installs the packages; pip when a pip.conf secret is given
# (uv does not read pip.conf). Both install into the image's Python as it is: its packages are
# kept, its EXTERNALLY-MANAGED marker is passed (the image is the environment), and its
# $PIP_CONSTRAINT (NGC images pin their torch with it) is honoured.
UV_VERSION = "0.13.9"
_UV_INSTALL = (
    'uv pip install --python "$(command -v python)" --break-system-packages --compile-bytecode '
    '${PIP_CONSTRAINT:+--constraint "$PIP_CONSTRAINT"}'
)
_PIP_INSTALL = "PIP_BREAK_SYSTEM_PACKAGES=1 python -m pip install"
_KSERVEHELPER_REQUIREMENT = re.compile(r"kservehelper\s*(?:[\[<>=!~;@ ].*)?", re.IGNORECASE)
_APT_COMMAND = re.compile(r"\b(apt|apt-get|add-apt-repository)\b")
_APT_CACHE_MOUNTS = (
    "--mount=type=cache,target=/var/cache/apt,sharing=locked \\\n    "
    "--mount=type=cache,target=/var/lib/apt/lists,sharing=locked \\\n    "
)


@dataclass(frozen=True)
class DockerfileInputs:
    """What the Dockerfile depends on besides config.yaml: builder and staged files."""

    buildkit: bool = True
    wheel_name: str = f"kservehelper-{__version__}-py3-none-any.whl"
    secret_ids: tuple[str, ...] = ()
    input_schema: dict[str, Any] | None = None
    extra_labels: dict[str, str] = field(default_factory=dict)


def _double_quote(value: str) -> str:
    """A Dockerfile double-quoted word for LABEL/ENV, read back exactly: ``\\``, ``"`` and
    ``$`` escaped. Dockerfile syntax has no way to write a newline (see :func:`env_build_args`)."""
    if "\n" in value or "\r" in value:
        raise ValueError("a Dockerfile double-quoted value cannot hold a line break")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


def label_json(document: Any) -> str:
    """JSON for a label, with backslashes and quotes inside strings written as ``\\u005c`` and
    ``\\u0022``: the same document for any JSON reader, and a label value that Dockerfile
    linters (hadolint) read as Docker does."""
    text = json.dumps(document, sort_keys=True)
    return text.replace("\\\\", "\\u005c").replace('\\"', "\\u0022")


def _env_word(value: str) -> str:
    """An ENV value read back exactly: single quotes (nothing inside is special) unless the
    value holds one; then double quotes with ``\\``, ``"`` and ``$`` escaped."""
    if "'" not in value and "\n" not in value:
        return f"'{value}'"
    return _double_quote(value)


def _exec_form(argv: list[str]) -> str:
    """A JSON exec-form array: every character escaped as JSON, so one line, one instruction."""
    return json.dumps(argv, ensure_ascii=False)


_ENVIRONMENT = jinja2.Environment(
    loader=jinja2.PackageLoader("kservehelper.build", "templates"),
    undefined=jinja2.StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,
)
_ENVIRONMENT.filters["sh"] = shlex.quote
_ENVIRONMENT.filters["dq"] = _double_quote
_ENVIRONMENT.filters["env_word"] = _env_word
_ENVIRONMENT.filters["tojson"] = _exec_form


def is_kservehelper_requirement(package: str) -> bool:
    """Whether a python_packages entry names kservehelper (it is replaced by our own wheel)."""
    return bool(_KSERVEHELPER_REQUIREMENT.fullmatch(package.strip()))


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
    if uses_git and not any(p.split("=")[0].split(":")[0] == "git" for p in packages):
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
    """OCI labels plus kservehelper's: its version, the config (no ``deploy:``, no env values),
    and the model's input schema when known (``kservehelper build`` adds it after building)."""
    labels = {
        "org.opencontainers.image.title": config.name or "model",
        "org.opencontainers.image.description": f"{config.name} served on KServe by kservehelper",
        "ai.kservehelper.version": __version__,
        "ai.kservehelper.model.name": config.name or "model",
        "ai.kservehelper.model.class": config.class_name,
        "ai.kservehelper.config": label_json(json.loads(config.to_label())),
    }
    if config.image:
        tag = config.image.rsplit("/", 1)[-1].partition("@")[0]
        if ":" in tag:
            labels["org.opencontainers.image.version"] = tag.rsplit(":", 1)[-1]
    if inputs.input_schema is not None:
        labels[SCHEMA_LABEL] = label_json(inputs.input_schema)
    labels.update(inputs.extra_labels)
    return labels


SCHEMA_LABEL = "ai.kservehelper.input-schema"


def label_instruction(labels: dict[str, str] | Any) -> str:
    """One ``LABEL key="value" ...`` instruction (values quoted, read back exactly)."""
    return "LABEL " + " ".join(f"{key}={_double_quote(value)}" for key, value in labels.items())


def env_build_args(config: ProjectConfig) -> dict[str, str]:
    """build.env values that Dockerfile syntax cannot write (a line break) or that linters
    misread (a trailing ``\\``), by name, and the build argument that carries each
    (``ENV NAME=${ARG}`` keeps it exactly)."""
    return {
        name: f"KSERVEHELPER_ENV_{name}"
        for name, value in config.build.env.items()
        if "\n" in value or value.endswith("\\")
    }


def build_arguments(config: ProjectConfig) -> dict[str, str]:
    """``--build-arg`` values ``kservehelper build`` passes for this config."""
    return {arg: config.build.env[name] for name, arg in env_build_args(config).items()}


@dataclass(frozen=True)
class _Secrets:
    """How the build's secrets reach the steps that use the network, and only those: every
    secret is mounted in each of them; each tool is pointed at the files it reads."""

    secret_ids: tuple[str, ...]
    use_uv: bool

    @property
    def mounts(self) -> str:
        """``--mount=type=secret`` flags for one network step."""
        return "".join(f"--mount=type=secret,id={secret} \\\n    " for secret in self.secret_ids)

    def variables(self, *tools: str) -> dict[str, str]:
        """The variables that point ``tools`` (apt, pip, uv, git; all when none) at them."""
        wanted = set(tools) or {"apt", "pip", "uv", "git", "any"}
        found: dict[str, str] = {}
        ca = f"/run/secrets/{CA_CERT_SECRET}"
        if CA_CERT_SECRET in self.secret_ids:
            for tool, name in (
                ("uv", "SSL_CERT_FILE"),
                ("any", "SSL_CERT_FILE"),
                ("pip", "PIP_CERT"),
                ("any", "REQUESTS_CA_BUNDLE"),
                ("any", "CURL_CA_BUNDLE"),
                ("git", "GIT_SSL_CAINFO"),
            ):
                if tool in wanted:
                    found[name] = ca
        if APT_CONFIG_SECRET in self.secret_ids and "apt" in wanted:
            found["APT_CONFIG"] = f"/run/secrets/{APT_CONFIG_SECRET}"
        if PIP_CONFIG_SECRET in self.secret_ids and "pip" in wanted:
            found["PIP_CONFIG_FILE"] = f"/run/secrets/{PIP_CONFIG_SECRET}"
        return found

    def env(self, *tools: str) -> str:
        """``NAME=value `` assignments to put before a command."""
        return "".join(f"{name}={value} " for name, value in self.variables(*tools).items())

    def exports(self, *tools: str) -> str:
        """``export NAME=value`` lines, for a script."""
        return "".join(f"export {name}={value}\n" for name, value in self.variables(*tools).items())


def _command_steps(commands: list[str], buildkit: bool, secrets: _Secrets) -> list[dict[str, Any]]:
    """One RUN per entry: ``bash -eo pipefail -c SCRIPT`` in JSON exec form."""
    steps = []
    for command in commands:
        uses_apt = bool(_APT_COMMAND.search(command))
        prelude = secrets.exports() if buildkit else ""
        mounts = (_APT_CACHE_MOUNTS if uses_apt else "") + secrets.mounts if buildkit else ""
        if uses_apt:
            # Base images ship without apt lists (and ours live in a cache mount): fetch them.
            if not buildkit:
                prelude += "trap 'rm -rf /var/lib/apt/lists/*' EXIT\n"
            prelude += "apt-get update -qq\n"
        argv = ["/bin/bash", "-eo", "pipefail", "-c", prelude + command]
        steps.append({"mounts": mounts, "argv": argv, "uses_apt": uses_apt})
    return steps


def _has_distro_python_packages(config: ProjectConfig) -> bool:
    return any(p.startswith("python3-") for p in config.build.system_packages)


def render_dockerfile(config: ProjectConfig, inputs: DockerfileInputs | None = None) -> str:
    """The Dockerfile text for a config and a builder (BuildKit or legacy)."""
    inputs = inputs or DockerfileInputs()
    base: BaseImage = resolve_base_image(config.build)
    buildkit = inputs.buildkit
    requirements = [pathlib.PurePosixPath(r).as_posix() for r in config.build.python_requirements]
    has_wheels = any(
        p.strip().endswith(".whl") and "://" not in p for p in config.build.python_packages
    )
    pip_arguments = [
        "-r " + shlex.quote(f"/tmp/kservehelper/requirements/{r}") for r in requirements
    ]
    pip_arguments += pip_packages(config)
    if pip_arguments:
        # Resolved together with kservehelper's requirements, so a model's pins cannot break them.
        pip_arguments.append("-r /tmp/kservehelper/runtime/requirements.txt")

    use_uv = PIP_CONFIG_SECRET not in inputs.secret_ids
    secrets = _Secrets(inputs.secret_ids if buildkit else (), use_uv)
    installer = "uv" if use_uv else "pip"
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
        pip_mounts += secrets.mounts
    else:
        pip_mounts = ""
        if requirements:
            legacy_copies.append(("deps/requirements/", "/tmp/kservehelper/requirements/"))
        if has_wheels:
            legacy_copies.append(("deps/wheels/", "/tmp/kservehelper/wheels/"))

    ignores = ["DL3008", "DL3013"]
    if buildkit:
        ignores += ["DL3042", "DL3009"]
    if config.build.user == "root":
        ignores.append("DL3002")
    commands = _command_steps(
        [*config.build.commands, *config.build.additional_commands], buildkit, secrets
    )

    return _ENVIRONMENT.get_template("Dockerfile.j2").render(
        version=__version__,
        config_file=CONFIG_FILE,
        hadolint_ignores=ignores,
        base=base,
        buildkit=buildkit,
        system_packages=system_packages(config),
        apt_mounts=_APT_CACHE_MOUNTS,
        network_mounts=secrets.mounts,
        apt_exports="".join(
            f"export {name}={value} \\\n    && " for name, value in secrets.variables("apt").items()
        ),
        provision_env=secrets.env("apt", "uv", "pip"),
        pip_env=secrets.env("pip"),
        install_env=secrets.env(installer, "git"),
        python_want=base.python_version or "",
        python_patch=base.python_patch or "",
        uv_version_for_python=UV_VERSION,
        check_distro_packages=base.family != "python" and _has_distro_python_packages(config),
        user=config.build.user,
        uid=USER_ID,
        legacy_copies=legacy_copies,
        pip_arguments=pip_arguments,
        uv_version=UV_VERSION if use_uv else None,
        install=_UV_INSTALL if use_uv else _PIP_INSTALL,
        cache_dir=cache_dir,
        pip_mounts=pip_mounts,
        wheel_dir="deps/kservehelper",
        wheel_name=inputs.wheel_name,
        env=config.build.env,
        env_build_args=env_build_args(config),
        commands=commands,
        any_apt_command=any(step["uses_apt"] for step in commands),
        labels=image_labels(config, inputs),
        cmd=json.dumps(serve_command(config)),
    )
