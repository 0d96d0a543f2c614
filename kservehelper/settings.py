"""Every ``KSERVEHELPER_*`` environment variable, read in one place.

:func:`get_settings` reads the environment once per process (pydantic-settings) and checks every
value, so a typo such as ``KSERVEHELPER_MAX_CONCURRENCY=two`` stops the server at start-up with
the variable's name instead of failing a request later. Code that needs a setting asks
``get_settings().name``; nothing else in the package reads ``os.environ`` for our variables.

Tests that change the environment call :func:`reset_settings` (the suite does it around every
test).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from kservehelper.errors import ConfigError

ENV_PREFIX = "KSERVEHELPER_"

AllowList = Annotated[tuple[str, ...], NoDecode]
"""A list written as ``"a, b c"`` (comma- or whitespace-separated) in the environment."""


def parse_allow_list(raw: str) -> tuple[str, ...]:
    """Comma- or whitespace-separated entries, empty ones dropped."""
    return tuple(item for item in raw.replace(",", " ").split() if item)


class Settings(BaseSettings):
    """kservehelper's settings; each field ``name`` is read from ``KSERVEHELPER_NAME``."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, extra="ignore", frozen=True, validate_default=True
    )

    # -- serving -----------------------------------------------------------------------------
    host: str | None = Field(default=None, description="Address the model server listens on.")
    max_concurrency: int = Field(default=1, ge=1, description="Predictions running at once.")
    upload_to: str | None = Field(
        default=None, description="Default destination of output files (webhook URL, s3://, gs://)."
    )
    output_dir: Path | None = Field(
        default=None,
        description="Folder of output files (default: a per-process temporary folder).",
    )
    inline_output_limit: int = Field(
        default=10 * 1024 * 1024,
        ge=0,
        description="Largest total size of outputs sent as data: URIs.",
    )
    max_queue: int = Field(
        default=64,
        ge=0,
        description="Requests that may wait for a slot; more are answered 503 at once "
        "(0: never wait).",
    )
    switch_interval_ms: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="The interpreter's thread switch interval while serving, in ms (0: Python's "
        "own, 5 ms): how long the event loop may wait for the GIL behind a sync predict "
        "running Python code (health checks answer faster with a shorter one).",
    )
    shutdown_grace: float = Field(
        default=30.0,
        ge=0,
        description="Seconds running and queued requests get to finish after SIGTERM.",
    )
    upload_deadline: float = Field(
        default=120.0,
        gt=0,
        description="Seconds a request may spend delivering its output files (then 504).",
    )
    predictor_timeout: float = Field(
        default=300.0,
        gt=0,
        description="Seconds a transformer waits for its predictor's answer (then 504).",
    )
    max_input_bytes: int = Field(default=1024**3, ge=1, description="Largest input file accepted.")
    playground: bool = Field(
        default=True,
        description="Serve the browser playground at / and /v1/models/NAME/playground (0: off).",
    )

    # -- exposure (docs/security.md) ---------------------------------------------------------
    max_request_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1024,
        description="Largest request body accepted (413 past it), checked while it is read.",
    )
    header_timeout: float = Field(
        default=10.0,
        gt=0,
        description="Seconds a client has to send a request's headers; then the connection "
        "is closed.",
    )
    body_timeout: float = Field(
        default=60.0,
        gt=0,
        description="Seconds a request body may stall (no bytes arriving) before the request "
        "fails with 408.",
    )
    max_header_bytes: int = Field(
        default=64 * 1024,
        ge=4096,
        description="Largest request line and headers accepted (431 past it).",
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description="Open connections the server keeps; more are answered 503 and closed.",
    )
    allowed_origins: AllowList = Field(
        default=(),
        description="Web origins (scheme://host[:port]) besides the server's own whose pages may "
        "POST to it from a browser; '*' allows any.",
    )
    enable_model_repository: bool = Field(
        default=False,
        description="Serve KServe's unauthenticated model-repository routes "
        "(POST /v2/repository/models/NAME/load|unload).",
    )

    # -- files in and out --------------------------------------------------------------------
    allowed_destinations: AllowList = Field(
        default=(),
        description="Where output files may go (URL prefixes, s3://bucket, gs://bucket).",
    )
    allowed_inputs: AllowList = Field(
        default=(), description="Where input files may come from (URL prefixes, bucket URIs)."
    )
    upload_token: str | None = Field(
        default=None, description="Bearer token for the upload webhook.", repr=False
    )
    upload_token_origins: AllowList = Field(
        default=(),
        description="Origins (scheme://host[:port]) besides the upload_to destination's that "
        "the upload token may be sent to.",
    )
    upload_attempts: int = Field(default=3, ge=1, description="Tries per output file.")
    upload_timeout: float = Field(
        default=600.0, gt=0, description="Seconds for one attempt at a file."
    )
    upload_concurrency: int = Field(
        default=8, ge=1, description="Files uploaded at once per request."
    )
    url_expiry: int = Field(
        default=24 * 3600, ge=1, description="Lifetime of signed URLs, in seconds."
    )
    object_urls: Literal["signed", "plain"] = Field(
        default="signed", description="signed: presigned HTTPS URLs; plain: s3:// / gs:// URIs."
    )

    # -- building images ---------------------------------------------------------------------
    docker: str | None = Field(default=None, description="The docker client binary.")
    builder: Literal["buildx", "buildkit", "legacy"] | None = Field(
        default=None, description="Force a builder instead of detecting one."
    )
    wheel: Path | None = Field(
        default=None, description="A prebuilt kservehelper wheel to put in images (tests, CI)."
    )

    @field_validator(
        "allowed_destinations",
        "allowed_inputs",
        "allowed_origins",
        "upload_token_origins",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        return parse_allow_list(value) if isinstance(value, str) else value

    @field_validator("object_urls", mode="before")
    @classmethod
    def _lowercase(cls, value: Any) -> Any:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("host", "upload_to", "upload_token", "docker", "builder", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process's settings, read from the environment on first use.

    Raises :class:`~kservehelper.errors.ConfigError` naming each bad variable.
    """
    try:
        return Settings()
    except ValidationError as error:
        problems = []
        for item in error.errors(include_url=False):
            name = ENV_PREFIX + str(item["loc"][0]).upper() if item["loc"] else ENV_PREFIX
            problems.append(f"{name}={item.get('input')!r}: {item['msg']}")
        raise ConfigError("invalid environment: " + "; ".join(problems)) from None


def reset_settings() -> None:
    """Forget the settings read so far: the next :func:`get_settings` reads the environment."""
    get_settings.cache_clear()


def env_name(field: str) -> str:
    """A setting's environment variable: ``env_name("upload_to")`` is ``KSERVEHELPER_UPLOAD_TO``."""
    if field not in Settings.model_fields:
        raise KeyError(f"no setting named {field!r}")
    return ENV_PREFIX + field.upper()
