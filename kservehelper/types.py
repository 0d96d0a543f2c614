"""What users annotate their ``predict`` parameters with: ``Input``, ``Path``, ``File``, ``Secret``.

These names are the seed API (``from kservehelper.types import Input, Path``); models written
against the original kservehelper keep working. kservehelper 2.0's other names (``URLPath``,
``URLFile``, ``ConcatenateIterator``) still import, with a ``DeprecationWarning`` naming
today's equivalent.
"""

from __future__ import annotations

import collections.abc
import pathlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from kservehelper.deprecation import warn_once


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

#: Every keyword :func:`Input` takes (an unknown one is an error when the model is loaded).
INPUT_KEYWORDS = (
    "default",
    "description",
    "ge",
    "le",
    "min_length",
    "max_length",
    "min_items",
    "max_items",
    "regex",
    "choices",
    "examples",
)


@dataclass(frozen=True)
class InputSpec:
    """The description of one ``predict`` parameter, as written with :func:`Input`."""

    default: Any = MISSING
    description: str | None = None
    ge: float | None = None
    le: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    regex: str | None = None
    choices: tuple[Any, ...] | None = None
    examples: tuple[Any, ...] | None = None
    #: Keywords :func:`Input` does not know (``gte=``): reported when the model is loaded,
    #: where the parameter's name is known.
    unknown: dict[str, Any] = field(default_factory=dict)

    @property
    def required(self) -> bool:
        return self.default is MISSING

    def constraints(self) -> dict[str, Any]:
        """The constraint keywords that were given (``ge``, ``regex``, ``min_items``, ...)."""
        names = ("ge", "le", "min_length", "max_length", "min_items", "max_items", "regex")
        given = {name: getattr(self, name) for name in names if getattr(self, name) is not None}
        if self.choices is not None:
            given["choices"] = self.choices
        return given


def Input(
    default: Any = MISSING,
    description: str | None = None,
    ge: float | None = None,
    le: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    regex: str | None = None,
    choices: Sequence[Any] | None = None,
    examples: Sequence[Any] | None = None,
    **unknown: Any,
) -> Any:
    """Describe one input of ``predict``.

    Use it as the default value of a parameter::

        def predict(self, radius: float = Input(description="Blur radius", default=2, ge=0, le=50)):

    Args:
        default: Value used when a request omits the input. Leave it out (or pass ``...``, as
            kservehelper 2.0 allowed) to make the input required. The default itself must
            satisfy the constraints below; a default that does not fails when the model is
            loaded, naming the parameter.
        description: Shown in the model's schema and ``/v1/docs/{name}``.
        ge: Numbers: the value must be greater than or equal to this. For lists, each item.
        le: Numbers: the value must be less than or equal to this. For lists, each item.
        min_length: Strings: minimum number of characters.
        max_length: Strings: maximum number of characters.
        min_items: Lists (``list[...]``, a bare ``list``, a batch): minimum number of items.
        max_items: Lists: maximum number of items. On a list, ``min_length``/``max_length``
            still mean the number of items (the older spelling), with a
            ``DeprecationWarning`` saying to write ``min_items``/``max_items``.
        regex: Strings: a Python regular expression the whole value must match
            (``re.fullmatch``). For lists of strings, each item.
        choices: The value must be one of these. For lists, each item.
        examples: Example values, shown in the JSON schema (``"examples"``); not checked
            against the constraints and never used as a default.

    Any other keyword (a typo such as ``gte=``) fails when the model is loaded, naming the
    parameter and the keyword.

    Returns:
        An :class:`InputSpec`, read by kservehelper when the model is loaded.
    """
    if default is ...:  # kservehelper 2.0 was pydantic.Field: `...` meant "required"
        default = MISSING
    if ge is not None and le is not None and ge > le:
        raise ValueError(f"Input(ge={ge}, le={le}): ge must not be greater than le")
    for low, high, low_name, high_name in (
        (min_length, max_length, "min_length", "max_length"),
        (min_items, max_items, "min_items", "max_items"),
    ):
        if low is not None and high is not None and low > high:
            raise ValueError(
                f"Input({low_name}={low}, {high_name}={high}): "
                f"{low_name} must not be greater than {high_name}"
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
        min_items=min_items,
        max_items=max_items,
        regex=regex,
        choices=choices,
        examples=tuple(examples) if examples is not None else None,
        unknown=dict(unknown),
    )


class Path(pathlib.PosixPath):
    """A file, as an input or an output.

    As an input, a request may pass a local path, a ``data:`` URI or (with the files
    support) an ``http(s)://``, ``s3://`` or ``gs://`` URL; ``predict`` receives a local path.
    As an output (``-> Path`` or ``-> List[Path]``), the file is delivered to the request's
    ``upload_webhook`` (or the server's default destination) and the response carries URLs.
    """


class File(Path):
    """A file input or output; the same as :class:`Path` (kept for Cog-style models).

    kservehelper 2.0's ``File`` handed ``predict`` an open file object; this one is a local
    path, like :class:`Path` (``open(image, "rb")`` reads it).
    """


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


# kservehelper 2.0's names: each is today's type, reached with a DeprecationWarning (once per
# name and process) that names what to write instead.
_DEPRECATED_NAMES: dict[str, tuple[Any, str]] = {
    "URLPath": (
        Path,
        "kservehelper.types.URLPath is kservehelper 2.0's name for a file input sent as a URL; "
        "annotate with kservehelper.types.Path: a request may send an http(s)/s3/gs URL or a "
        "data: URI, and predict() receives a local path",
    ),
    "URLFile": (
        File,
        "kservehelper.types.URLFile is kservehelper 2.0's name for a file input sent as a URL; "
        "annotate with kservehelper.types.File (or Path): predict() receives a local path",
    ),
    "ConcatenateIterator": (
        collections.abc.Iterator,
        "kservehelper.types.ConcatenateIterator is kservehelper 2.0's name for a stream of "
        "text pieces; annotate with collections.abc.Iterator[str] (or return a generator): "
        "each item is streamed as it is produced",
    ),
}


def __getattr__(name: str) -> Any:
    found = _DEPRECATED_NAMES.get(name)
    if found is None:
        raise AttributeError(f"module 'kservehelper.types' has no attribute {name!r}")
    value, message = found
    warn_once(f"kservehelper.types.{name}", message, stacklevel=2)
    return value
