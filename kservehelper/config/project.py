"""The config.yaml schema, loading, and error messages a user can act on.

Every mistake is reported before Docker runs, as a :class:`~kservehelper.errors.ConfigError`
naming the file, the line, the key and a fix. The user's model module is never imported here
(it may need torch or a GPU): the entrypoint is checked with :mod:`ast`.
"""

from __future__ import annotations

import json
import pathlib
import re
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
)

from kservehelper.config.checks import (
    check_image_reference,
    check_model_name,
    check_text,
    is_plainly_not_secret,
    looks_like_secret_name,
)
from kservehelper.config.errors import line_of, unknown_key_hint
from kservehelper.config.locate import CONFIG_FILE, resolve_model_name
from kservehelper.errors import ConfigError

_PYTHON_VERSION = re.compile(r"3\.(\d{1,2})")
_CUDA_VERSION = re.compile(r"\d{1,2}\.\d{1,2}")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_USER_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
# A Debian/Ubuntu package: NAME[:ARCH][=VERSION | /RELEASE] (Debian policy 5.6.1, 5.6.12).
_APT_PACKAGE = re.compile(
    r"[a-z0-9][a-z0-9+.-]+(?::[a-z0-9-]+)?(?:=[A-Za-z0-9.+~:-]+|/[A-Za-z0-9.-]+)?"
)
# Only a newline (a multi-line script or value) and a tab may appear in commands and env values.
_SCRIPT_WHITESPACE = "\n\t"


class BuildConfig(BaseModel):
    """The ``build:`` section: what goes into the image."""

    model_config = ConfigDict(extra="forbid")

    python_version: str | None = Field(
        None,
        description="Python MAJOR.MINOR as a quoted string, e.g. '3.11'. Default: 3.11 "
        "(with ngc: the Python of the NGC release).",
    )
    cuda: str | None = Field(
        None, description="CUDA MAJOR.MINOR as a quoted string, e.g. '12.4'. Omit for CPU."
    )
    cudnn: bool = Field(False, description="Use an nvidia/cuda image that includes cuDNN.")
    cuda_image_type: Literal["base", "runtime", "devel"] | None = Field(
        None,
        description="nvidia/cuda flavour: base, runtime or devel. Default: base, or runtime "
        "when cudnn is true.",
    )
    ngc: bool = Field(False, description="Use NVIDIA's NGC PyTorch image (needs cuda).")
    base_image: str | None = Field(
        None, description="Explicit base image; bypasses the python/cuda/ngc tables."
    )
    system_packages: list[str] = Field(default_factory=list, description="apt packages to install.")
    python_requirements: list[str] = Field(
        default_factory=list, description="requirements files, relative to the model folder."
    )
    python_packages: list[str] = Field(
        default_factory=list,
        description="pip requirements: 'name==version', local '.whl' files, 'git+https://...'.",
    )
    commands: list[str] = Field(
        default_factory=list, description="Shell commands run (as root) after the packages."
    )
    additional_commands: list[str] = Field(
        default_factory=list, description="Shell commands run after `commands`."
    )
    env: dict[str, str] = Field(
        default_factory=dict, description="Environment variables set in the image."
    )
    user: str = Field(
        "kserve", description="The non-root user the model runs as; 'root' to run as root."
    )

    @field_validator("python_version", "cuda", mode="before")
    @classmethod
    def _version_must_be_quoted(cls, value: Any, info: ValidationInfo) -> Any:
        if isinstance(value, float):
            example = '"3.10"' if info.field_name == "python_version" else '"12.4"'
            raise ValueError(
                f"got the number {value}: YAML reads 3.10 as 3.1 (and 12.10 as 12.1), so "
                f"quote versions, e.g. {info.field_name}: {example}"
            )
        if isinstance(value, int) and not isinstance(value, bool):
            raise ValueError(f'got the number {value}: write MAJOR.MINOR in quotes, e.g. "12.4"')
        return value

    @field_validator("python_version")
    @classmethod
    def _python_version_shape(cls, value: str | None) -> str | None:
        if value is not None and not _PYTHON_VERSION.fullmatch(value):
            raise ValueError(f"{value!r} must be MAJOR.MINOR, e.g. '3.11'")
        return value

    @field_validator("cuda")
    @classmethod
    def _cuda_shape(cls, value: str | None) -> str | None:
        if value is not None and not _CUDA_VERSION.fullmatch(value):
            raise ValueError(f"{value!r} must be MAJOR.MINOR, e.g. '12.4'")
        return value

    @field_validator("base_image")
    @classmethod
    def _base_image_reference(cls, value: str | None) -> str | None:
        return None if value is None else check_image_reference(value)

    @field_validator("system_packages")
    @classmethod
    def _apt_package_names(cls, value: list[str]) -> list[str]:
        for package in value:
            check_text(package, "a package name")
            if not _APT_PACKAGE.fullmatch(package):
                raise ValueError(
                    f"{package!r} is not a Debian/Ubuntu package name; write NAME or "
                    "NAME=VERSION, e.g. libgl1 or git=1:2.39.5-0+deb12u2"
                )
        return value

    @field_validator("python_requirements")
    @classmethod
    def _requirements_paths(cls, value: list[str]) -> list[str]:
        for path in value:
            check_text(path, "a requirements file name")
            if not path.strip() or path.startswith("-"):
                raise ValueError(f"{path!r} is not a file name; e.g. requirements.txt")
        return value

    @field_validator("python_packages")
    @classmethod
    def _requirement_strings(cls, value: list[str]) -> list[str]:
        for package in value:
            check_text(package, "a package requirement")
            if not package.strip():
                raise ValueError("an empty entry; remove it")
            if package.strip().startswith("-"):
                raise ValueError(
                    f"{package!r} is a pip option, not a package; put options such as "
                    "--extra-index-url in a requirements file (python_requirements)"
                )
        return value

    @field_validator("commands", "additional_commands")
    @classmethod
    def _command_text(cls, value: list[str]) -> list[str]:
        for command in value:
            check_text(command, "a command", allowed=_SCRIPT_WHITESPACE)
            if not command.strip():
                raise ValueError("an empty command; remove it")
        return value

    @field_validator("env", mode="before")
    @classmethod
    def _env_scalars(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        result: dict[Any, Any] = {}
        for name, item in value.items():
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, (int, float)):
                item = str(item)
            result[name] = item
        return result

    @field_validator("env")
    @classmethod
    def _env_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, item in value.items():
            if not _ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            check_text(item, f"the value of {name}", allowed=_SCRIPT_WHITESPACE)
            if looks_like_secret_name(name) and not is_plainly_not_secret(item):
                raise ValueError(
                    f"{name} looks like a credential, and build.env values are stored in the "
                    "image for anyone who pulls it to read; set it at deploy time instead: "
                    f"deploy.env: {{{name}: {{secret: SECRET-NAME, key: KEY}}}} (a Kubernetes "
                    "Secret)"
                )
        return value

    @field_validator("user")
    @classmethod
    def _user_name(cls, value: str) -> str:
        if not _USER_NAME.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid user name (lowercase, e.g. 'kserve')")
        return value


class ProjectConfig(BaseModel):
    """A model folder's config.yaml."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    image: str | None = Field(
        None, description="The image to build and push, e.g. 'registry.example.com/blur:1.0'."
    )
    entrypoint: str = Field("model.py", description="The file defining the model class.")
    name: str | None = Field(
        None,
        description="KServe model name. Default: the name the entrypoint passes to "
        "KServeModel.serve('NAME', ...), else the folder name, lowercased.",
    )
    class_name: str = Field("Model", alias="class", description="The model class name.")
    build: BuildConfig = Field(default_factory=BuildConfig)  # type: ignore[arg-type]
    deploy: dict[str, Any] = Field(
        default_factory=dict, description="Deployment settings (see `kservehelper deploy`)."
    )

    _model_dir: pathlib.Path = PrivateAttr(default_factory=pathlib.Path.cwd)
    _warnings: list[str] = PrivateAttr(default_factory=list)

    @field_validator("image")
    @classmethod
    def _image_reference(cls, value: str | None) -> str | None:
        return None if value is None else check_image_reference(value)

    @field_validator("name")
    @classmethod
    def _model_name(cls, value: str | None) -> str | None:
        return None if value is None else check_model_name(check_text(value, "the name"))

    @field_validator("entrypoint")
    @classmethod
    def _entrypoint_path(cls, value: str) -> str:
        return check_text(value, "the entrypoint")

    @field_validator("class_name")
    @classmethod
    def _class_identifier(cls, value: str) -> str:
        if not value.isidentifier() or not value.isascii():
            raise ValueError(f"{value!r} is not a Python class name (e.g. Model)")
        return value

    @property
    def model_dir(self) -> pathlib.Path:
        """The folder config.yaml was loaded from."""
        return self._model_dir

    @property
    def warnings(self) -> list[str]:
        """What :func:`load_config` found worth saying that is not an error (e.g. an
        end-of-life CUDA release), as ``file:line: message`` lines."""
        return self._warnings

    @property
    def image_or_default(self) -> str:
        """``image``, or ``<name>:latest`` when config.yaml names none."""
        return self.image or f"{self.name}:latest"

    def to_label(self) -> str:
        """The config as compact JSON, for an image label: without the ``deploy:`` section
        (cluster settings, credentials) and with ``build.env`` reduced to its names."""
        document = self.model_dump(mode="json", by_alias=True, exclude={"deploy"})
        document["build"]["env"] = sorted(self.build.env)
        return json.dumps(document, sort_keys=True)


def config_json_schema() -> dict[str, Any]:
    """config.yaml's JSON Schema, for editors (yaml-language-server) and CI checks."""
    schema = ProjectConfig.model_json_schema(by_alias=True, mode="validation")
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "kservehelper config.yaml"
    return schema


def load_config(model_dir: pathlib.Path) -> ProjectConfig:
    """Load and fully check ``model_dir/config.yaml``; raise :class:`ConfigError` if wrong.

    Checks the schema, the files it names (entrypoint, requirements, wheels), that the
    entrypoint defines the model class (by parsing it, not importing it) and that the
    Python/CUDA/NGC combination has a base image.
    """
    model_dir = model_dir.resolve()
    path = model_dir / CONFIG_FILE
    if not model_dir.is_dir():
        raise ConfigError(f"{model_dir}: no such folder")
    if not path.is_file():
        raise ConfigError(
            f"{path}: not found. Create one with `kservehelper init`, or run the command "
            "in the folder that holds config.yaml."
        )
    text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark is not None else ""
        problem = getattr(error, "problem", None) or str(error)
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}") from error
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}:1: must be a mapping of keys (image, entrypoint, build, ...)")
    try:
        config = ProjectConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe_validation_error(path, text, error)) from error
    from kservehelper.config.folder import check_base_image, check_files

    config._model_dir = model_dir
    check_files(path, text, config)
    config.name = resolve_model_name(
        model_dir, config.name, model_dir / config.entrypoint, config.class_name
    )
    check_base_image(path, text, config)
    return config


def _describe_validation_error(path: pathlib.Path, text: str, error: ValidationError) -> str:
    lines: list[tuple[int, str]] = []
    for item in error.errors():
        loc = tuple(item["loc"])
        key = ".".join(str(part) for part in loc)
        line = line_of(text, loc)
        where = f"{path}:{line}"
        if item["type"] == "extra_forbidden":
            hint = unknown_key_hint(str(loc[-1]), _known_keys(loc[:-1]))
            lines.append((line, f"{where}: unknown key '{key}'; {hint}"))
        else:
            message = item["msg"].removeprefix("Value error, ")
            lines.append((line, f"{where}: {key}: {message}"))
    return "\n".join(message for _, message in sorted(lines))


def _known_keys(parent: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = ProjectConfig
    if parent == ("build",):
        model = BuildConfig
    return [field.alias or name for name, field in model.model_fields.items()]
