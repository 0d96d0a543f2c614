"""What users annotate their ``predict`` parameters with: ``Input``, ``Path``, ``File``, ``Secret``.

These names are the seed API (``from kservehelper.types import Input, Path``); models written
against the original kservehelper keep working.
"""

from __future__ import annotations

import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any


class _Missing:
    """Sentinel for "no default given", so ``None`` stays a valid default."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "REQUIRED"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()


@dataclass(frozen=True)
class InputSpec:
    """The description of one ``predict`` parameter, as written with :func:`Input`."""

    default: Any = MISSING
    description: str | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    regex: str | None = None
    choices: tuple[Any, ...] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return self.default is MISSING


def Input(
    default: Any = MISSING,
    description: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    regex: str | None = None,
    choices: Sequence[Any] | None = None,
    **extra: Any,
) -> Any:
    """Describe one input of ``predict``.

    Use it as the default value of a parameter::

        def predict(self, radius: float = Input(description="Blur radius", default=2, ge=0, le=50)):

    Args:
        default: Value used when a request omits the input. Leave it out to make the input
            required. The default itself must satisfy the constraints below; a default that
            does not fails when the model is loaded, naming the parameter.
        description: Shown in the model's schema and ``/v1/docs/{name}``.
        ge: Numbers: the value must be greater than or equal to this. For lists, each item.
        le: Numbers: the value must be less than or equal to this. For lists, each item.
        min_length: Strings: minimum number of characters. Lists: minimum number of items.
        max_length: Strings: maximum number of characters. Lists: maximum number of items.
        regex: Strings: a Python regular expression the whole value must match
            (``re.fullmatch``). For lists of strings, each item.
        choices: The value must be one of these. For lists, each item.
        **extra: Extra keys copied into the input's JSON schema (e.g. ``examples=[...]``).

    Returns:
        An :class:`InputSpec`, read by kservehelper when the model is loaded.
    """
    if ge is not None and le is not None and ge > le:
        raise ValueError(f"Input(ge={ge}, le={le}): ge must not be greater than le")
    if min_length is not None and max_length is not None and min_length > max_length:
        raise ValueError(
            f"Input(min_length={min_length}, max_length={max_length}): "
            "min_length must not be greater than max_length"
        )
    if choices is not None:
        choices = tuple(choices)
        if not choices:
            raise ValueError("Input(choices=[]): give at least one choice, or leave choices out")
    return InputSpec(
        default=default,
        description=description,
        ge=ge,
        le=le,
        min_length=min_length,
        max_length=max_length,
        regex=regex,
        choices=choices,
        extra=dict(extra),
    )


class Path(pathlib.PosixPath):
    """A file, as an input or an output.

    As an input, a request may pass a local path, a ``data:`` URI or (with the files
    support) an ``http(s)://``, ``s3://`` or ``gs://`` URL; ``predict`` receives a local path.
    As an output (``-> Path`` or ``-> List[Path]``), the file is delivered to the request's
    ``upload_webhook`` (or the server's default destination) and the response carries URLs.
    """


class File(Path):
    """A file input or output; the same as :class:`Path` (kept for Cog-style models)."""


class Secret(str):
    """A string input whose value is never shown in logs, reprs or error messages."""

    def __repr__(self) -> str:
        return "Secret('**********')"

    def get_secret_value(self) -> str:
        """The real value."""
        return str.__str__(self)


def is_file_type(annotation: Any) -> bool:
    """Whether ``annotation`` is one of the file types (``Path``, ``File``, ``pathlib.Path``)."""
    return isinstance(annotation, type) and issubclass(annotation, pathlib.PurePath)
