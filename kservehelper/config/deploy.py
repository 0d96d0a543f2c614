"""The ``deploy:`` section of config.yaml: its schema and the errors a user can act on.

``kservehelper.config.project`` accepts ``deploy:`` as an opaque mapping; this module owns its
meaning. :func:`parse_deploy_config` turns the raw mapping into a :class:`DeployConfig` or
raises one :class:`~kservehelper.errors.ConfigError` listing every mistake with its file, line,
key (``deploy.resources.memory``) and a fix.
"""

from __future__ import annotations

import pathlib
import posixpath
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from kservehelper.config.checks import check_label_value, check_qualified_key
from kservehelper.config.errors import line_of, unknown_key_hint
from kservehelper.errors import ConfigError

# Kubernetes resource.Quantity, as the CRD's own pattern spells it.
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
_QUANTITY = re.compile(rf"(\+|-)?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?{_NUMBER}))?")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_ENV_NAME = re.compile(r"[-._a-zA-Z][-._a-zA-Z0-9]*")
_EXTENDED_RESOURCE = re.compile(
    r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?"
)
_ALLOW_ENTRY = re.compile(r"[a-z][a-z0-9+.-]*://[^\s,]+")

DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
DEFAULT_MAX_LOAD_TIME = 600


def _quantity(value: Any, example: str) -> str:
    """A YAML number or string as a Kubernetes quantity string, or a ValueError with a fix."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"use a Kubernetes quantity such as {example}")
    text = str(value).strip()
    if not _QUANTITY.fullmatch(text) or text.startswith("-"):
        raise ValueError(f"'{text}' is not a Kubernetes quantity; use one such as {example}")
    return text


def _check_name(
    value: str | None, pattern: re.Pattern[str], example: str, limit: int = 253
) -> str | None:
    if value is not None and (len(value) > limit or not pattern.fullmatch(value)):
        raise ValueError(
            f"{value!r} must be lowercase letters, digits and '-' (at most {limit}), "
            f"e.g. '{example}'"
        )
    return value


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourcesConfig(_Section):
    """``deploy.resources``: what one replica asks the scheduler for."""

    cpu: str = Field("1", description="CPU request, e.g. '2' or '500m'.")
    memory: str = Field("2Gi", description="Memory request and limit, e.g. '8Gi'.")
    cpu_limit: str | None = Field(None, description="CPU limit. Default: none (no throttling).")
    memory_limit: str | None = Field(None, description="Memory limit. Default: `memory`.")
    gpu: int | None = Field(
        None, ge=0, description="GPUs per replica. Default: 1 for cuda/ngc builds, else 0."
    )
    gpu_resource: str = Field(
        DEFAULT_GPU_RESOURCE, description="The GPU's extended resource name, e.g. amd.com/gpu."
    )

    @field_validator("cpu", "cpu_limit", mode="before")
    @classmethod
    def _cpu_quantity(cls, value: Any) -> Any:
        return None if value is None else _quantity(value, "'2' or '500m'")

    @field_validator("memory", "memory_limit", mode="before")
    @classmethod
    def _memory_quantity(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"{value} would mean {value} bytes; use a quantity such as 4Gi")
        return None if value is None else _quantity(value, "4Gi")

    @field_validator("gpu_resource")
    @classmethod
    def _resource_name(cls, value: str) -> str:
        if not _EXTENDED_RESOURCE.fullmatch(value):
            raise ValueError(f"'{value}' is not a resource name; use e.g. '{DEFAULT_GPU_RESOURCE}'")
        return value


class SecretKeyRef(_Section):
    """An environment variable's value read from a Kubernetes Secret."""

    secret: str = Field(description="The Secret's name.")
    key: str = Field(description="The key inside the Secret.")
    optional: bool = Field(False, description="Start even if the Secret or key is missing.")

    @field_validator("secret")
    @classmethod
    def _secret_name(cls, value: str) -> str:
        return _check_name(value, _DNS_SUBDOMAIN, "s3-credentials") or value


class Toleration(_Section):
    """A pod toleration (``deploy.tolerations[]``), in config.yaml's snake_case."""

    key: str | None = None
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = Field(None, ge=0)

    @field_validator("key")
    @classmethod
    def _taint_key(cls, value: str | None) -> str | None:
        return None if value is None else check_qualified_key(value, "taint key")

    @field_validator("value")
    @classmethod
    def _taint_value(cls, value: str | None) -> str | None:
        return None if value is None else check_label_value(value, "value")

    @model_validator(mode="after")
    def _consistent(self) -> Toleration:
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("operator Exists takes no value; drop value or use operator: Equal")
        if self.toleration_seconds is not None and self.effect != "NoExecute":
            raise ValueError("toleration_seconds needs effect: NoExecute")
        if self.key is None and self.operator != "Exists":
            raise ValueError("a toleration without key needs operator: Exists")
        return self


class DeployConfig(_Section):
    """config.yaml's ``deploy:`` section: how ``kservehelper deploy`` writes the manifest."""

    namespace: str | None = Field(None, description="Kubernetes namespace. Default: kubectl's.")
    mode: Literal["serverless", "raw"] = Field(
        "serverless",
        description="KServe deployment mode: serverless (Knative, scale to zero) or raw "
        "(plain Deployment + HPA).",
    )
    resources: ResourcesConfig = Field(default_factory=ResourcesConfig)  # type: ignore[arg-type]
    min_replicas: int = Field(1, ge=0, description="Fewest replicas; 0 scales to zero.")
    max_replicas: int = Field(1, ge=1, description="Most replicas.")
    scale_metric: Literal["concurrency", "rps", "cpu", "memory"] | None = Field(
        None, description="Autoscaling metric. Default: concurrency (serverless), cpu (raw)."
    )
    scale_target: int | None = Field(
        None,
        ge=1,
        description="Autoscaling target per replica. Default: workers x max_concurrency for "
        "concurrency, 80 (%) for cpu/memory.",
    )
    timeout: int = Field(600, ge=1, description="Request timeout, in seconds.")
    max_load_time: int = Field(
        DEFAULT_MAX_LOAD_TIME,
        ge=1,
        description="Seconds load() may take before Kubernetes restarts the container.",
    )
    workers: int = Field(1, ge=1, description="Server processes per replica, each a model copy.")
    max_concurrency: int | None = Field(
        None, ge=1, description="Predictions at once per process (KSERVEHELPER_MAX_CONCURRENCY)."
    )
    max_queue: int | None = Field(
        None,
        ge=0,
        description="Requests that may wait for a slot; more get a 503 (KSERVEHELPER_MAX_QUEUE).",
    )
    shutdown_grace: float | None = Field(
        None,
        ge=0,
        description="Seconds running and queued requests get to finish after SIGTERM "
        "(KSERVEHELPER_SHUTDOWN_GRACE); the pod's terminationGracePeriodSeconds is set above it.",
    )
    upload_to: str | None = Field(
        None, description="Default destination of output files (KSERVEHELPER_UPLOAD_TO)."
    )
    allowed_inputs: list[str] = Field(
        default_factory=list,
        description="Where input files may come from (KSERVEHELPER_ALLOWED_INPUTS), e.g. "
        "https://cdn.example.com/inputs or s3://bucket/prefix.",
    )
    allowed_destinations: list[str] = Field(
        default_factory=list,
        description="Where output files may go (KSERVEHELPER_ALLOWED_DESTINATIONS).",
    )
    read_only_root_filesystem: bool = Field(
        False,
        description="Mount the container's root file system read-only; the server's temporary "
        "folders become emptyDir volumes.",
    )
    env: dict[str, str | SecretKeyRef] = Field(
        default_factory=dict,
        description="Environment variables: a value, or {secret: NAME, key: KEY}.",
    )
    env_from_secrets: list[str] = Field(
        default_factory=list, description="Secrets whose every key becomes a variable."
    )
    secret_mounts: dict[str, str] = Field(
        default_factory=dict,
        description="Secrets mounted as files: {secret-name: /absolute/folder}.",
    )
    service_account: str | None = Field(None, description="The pods' service account.")
    image_pull_secrets: list[str] = Field(default_factory=list)
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: list[Toleration] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    predictor: str | None = Field(
        None,
        description="Transformer split: the predictor's model folder, relative to this one.",
    )

    @field_validator("env", mode="before")
    @classmethod
    def _env_values(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        result: dict[str, Any] = {}
        for name, item in value.items():
            if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
                raise ValueError(f"'{name}' is not a valid environment variable name")
            if isinstance(item, bool):
                item = "true" if item else "false"
            elif isinstance(item, (int, float)):
                item = str(item)
            elif item is None:
                raise ValueError(
                    f"{name} has no value; quote an empty string or use {{secret: NAME, key: KEY}}"
                )
            result[name] = item
        return result

    @field_validator("namespace")
    @classmethod
    def _namespace(cls, value: str | None) -> str | None:
        return _check_name(value, _DNS_LABEL, "ml-models", limit=63)

    @field_validator("allowed_inputs", "allowed_destinations")
    @classmethod
    def _allow_entries(cls, value: list[str]) -> list[str]:
        for entry in value:
            if not _ALLOW_ENTRY.fullmatch(entry):
                raise ValueError(
                    f"{entry!r} is not an allow-list entry; write scheme://host[:port][/path] "
                    "(or s3://bucket/prefix, gs://bucket/prefix), one per list item"
                )
        return value

    @field_validator("service_account")
    @classmethod
    def _service_account(cls, value: str | None) -> str | None:
        return _check_name(value, _DNS_SUBDOMAIN, "model-runner")

    @field_validator("image_pull_secrets", "env_from_secrets")
    @classmethod
    def _secret_names(cls, value: list[str]) -> list[str]:
        for name in value:
            _check_name(name, _DNS_SUBDOMAIN, "registry-credentials")
        return value

    @field_validator("secret_mounts")
    @classmethod
    def _mount_paths(cls, value: dict[str, str]) -> dict[str, str]:
        seen: dict[str, str] = {}
        for secret, path in value.items():
            _check_name(secret, _DNS_SUBDOMAIN, "gcs-key")
            normal = posixpath.normpath(path) if path.startswith("/") else path
            if (
                not path.startswith("/")
                or ".." in path.split("/")
                or ":" in path
                or any(ord(char) < 32 for char in path)
                or normal in ("/", "/app", "/tmp")
                or normal.startswith("/app/")
            ):
                raise ValueError(
                    f"{path!r} must be an absolute folder of its own (not /, /app or /tmp; no "
                    f"'..' or ':'), e.g. /var/secrets/{secret}"
                )
            if normal in seen:
                raise ValueError(
                    f"secrets {seen[normal]!r} and {secret!r} are both mounted at {normal}; "
                    "give each its own folder"
                )
            seen[normal] = secret
        return {secret: posixpath.normpath(path) for secret, path in value.items()}

    @field_validator("labels", "node_selector")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            check_qualified_key(key, "label key")
            check_label_value(item, key)
        return value

    @field_validator("annotations")
    @classmethod
    def _annotation_keys(cls, value: dict[str, str]) -> dict[str, str]:
        for key in value:
            check_qualified_key(key, "annotation key")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> DeployConfig:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas "
                f"({self.min_replicas}); raise max_replicas"
            )
        if self.mode == "raw" and self.scale_metric in ("concurrency", "rps"):
            raise ValueError(
                f"scale_metric {self.scale_metric} needs mode: serverless (raw mode scales "
                "with the HPA on cpu or memory)"
            )
        if self.mode == "raw" and self.min_replicas == 0:
            raise ValueError("raw mode cannot scale to zero; set min_replicas: 1 or more")
        if self.scale_metric in ("cpu", "memory") and self.min_replicas == 0:
            raise ValueError(
                f"scale_metric {self.scale_metric} cannot scale to zero; set min_replicas: 1"
            )
        if self.scale_metric in ("cpu", "memory") and (self.scale_target or 0) > 100:
            raise ValueError("scale_target for cpu/memory is a percentage; use 1 to 100")
        return self


def parse_deploy_config(raw: Any, config_path: pathlib.Path) -> DeployConfig:
    """Check config.yaml's raw ``deploy:`` mapping; raise :class:`ConfigError` on any mistake."""
    text = config_path.read_text(encoding="utf-8") if config_path.is_file() else ""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        line = line_of(text, ("deploy",))
        raise ConfigError(f"{config_path}:{line}: deploy must be a mapping (resources: ..., ...)")
    try:
        return DeployConfig.model_validate(raw)
    except ValidationError as error:
        raise ConfigError(_describe(config_path, text, error)) from None


def _describe(path: pathlib.Path, text: str, error: ValidationError) -> str:
    lines = []
    for item in error.errors():
        # An env value is a string or a secret reference: report the branch the value meant.
        if "str" in item["loc"] and isinstance(item["input"], dict):
            continue
        if "SecretKeyRef" in item["loc"] and item["type"] == "model_type":
            continue
        loc = tuple(p for p in item["loc"] if p not in ("str", "SecretKeyRef"))
        full = ("deploy", *loc)
        key = ".".join(str(part) for part in full)
        where = f"{path}:{line_of(text, full)}"
        if item["type"] == "extra_forbidden":
            hint = unknown_key_hint(str(loc[-1]), _known_keys(loc[:-1]))
            lines.append(f"{where}: unknown key '{key}'; {hint}")
            continue
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "literal_error":
            message = f"{message} (got {item['input']!r})"
        elif item["type"] in ("int_parsing", "int_type", "int_from_float"):
            message = f"{message}; write a whole number (got {item['input']!r})"
        elif item["type"] == "missing":
            message = "is required"
        lines.append(f"{where}: {key}: {message}")
    return "\n".join(dict.fromkeys(lines))


def _known_keys(parent: tuple[Any, ...]) -> list[str]:
    model: type[BaseModel] = DeployConfig
    if parent == ("resources",):
        model = ResourcesConfig
    elif parent[:1] == ("tolerations",):
        model = Toleration
    elif parent[:1] == ("env",):
        model = SecretKeyRef
    return list(model.model_fields)
