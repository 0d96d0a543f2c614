"""The input-kind registry: every annotation a ``predict`` parameter may have, in one place.

A kind says how to recognise its annotation, the pydantic type that validates one value, which
``Input(...)`` keywords apply to it, the JSON-schema keys it adds, how ``-i name=VALUE`` on
the command line becomes a value, whether its values are files, and the type name shown in
docs. :mod:`.fields` (one parameter → field), :mod:`.signature` (the JSON schema) and
:mod:`.cli_inputs` (``kservehelper predict -i``, with or without ``--image``) all read it.

``Optional[...]`` and ``list[...]`` wrap any kind whose ``listable`` is true; ``min_items`` /
``max_items`` then bound the list and the item keywords (``ge``, ``regex``, ``choices``)
apply to each item.

Adding a kind is one entry. For example, a ``decimal.Decimal`` input sent as a JSON string::

    register(
        InputKind(
            name="Decimal",
            recognise=lambda annotation, default: annotation is decimal.Decimal,
            value_type=str,  # what the JSON carries; validated, then converted
            convert=decimal.Decimal,
            keywords=frozenset({"choices", "regex"}),
            schema={"format": "decimal"},
            cli=READ_TEXT,
        )
    )

Pure: no I/O beyond reading the files named on the command line, no HTTP, no kserve import.
"""

from __future__ import annotations

import base64
import collections.abc
import json
import mimetypes
import pathlib
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pydantic
from pydantic import AfterValidator, ConfigDict, Field

from kservehelper.errors import SignatureError
from kservehelper.types import MISSING, File, InputSpec, Secret, is_file_type

# -- reading `-i name=VALUE` ----------------------------------------------------------------


@dataclass(frozen=True)
class CliReader:
    """How ``-i name=VALUE`` (and ``-i name=@FILE``) becomes one request value.

    ``value(text, in_container)`` reads VALUE; ``file(path, in_container)`` reads ``@FILE``
    (an ``OSError`` or ``UnicodeDecodeError`` is reported naming the input).
    ``in_container`` is true for ``predict --image``: the container cannot read the host's
    paths, so files travel in the request.
    """

    name: str
    value: Callable[[str, bool], Any]
    file: Callable[[pathlib.Path, bool], Any]


def json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text  # validation reports the wrong type, as the server would


def _data_uri(path: pathlib.Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("data:")


def _file_value(text: str, in_container: bool) -> Any:
    if _is_url(text):
        return text
    path = pathlib.Path(text).expanduser()
    if in_container:
        if not path.is_file():
            raise FileNotFoundError(path)
        return _data_uri(path)
    return str(path.resolve())


#: The value is text; ``@FILE`` sends the file's content, base64-encoded.
READ_TEXT = CliReader(
    "text",
    value=lambda text, in_container: text,
    file=lambda path, in_container: base64.b64encode(path.read_bytes()).decode(),
)
#: The value is JSON (``3``, ``true``, ``["a"]``, ``{"k": 1}``), else text;
#: ``@FILE`` reads the file as JSON.
READ_JSON = CliReader(
    "json",
    value=lambda text, in_container: json_or_text(text),
    file=lambda path, in_container: json_or_text(path.read_text(encoding="utf-8")),
)
#: The value is a local path or a URL; a local file is sent as a ``data:`` URI to a container.
READ_FILE = CliReader(
    "file",
    value=_file_value,
    file=lambda path, in_container: _data_uri(path) if in_container else str(path.resolve()),
)


# -- kinds ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KindRequest:
    """What a kind with its own ``build`` gets: the parameter, and how to build item fields."""

    where: str
    name: str
    annotation: Any
    spec: InputSpec
    #: ``(key, annotation, spec) → (InputField, pydantic type, FieldInfo)``: one field of an
    #: item object, built exactly like a parameter.
    build_field: Callable[[str, Any, InputSpec], tuple[Any, Any, Any]]


@dataclass(frozen=True)
class InputKind:
    """One supported annotation of a ``predict`` parameter."""

    #: The type name shown in docs, ``/v1/docs`` and the schema's ``x-kind``.
    name: str
    #: ``(annotation, default) → bool``: whether a parameter is of this kind. ``annotation`` is
    #: unwrapped from ``Optional[...]``; ``default`` is the ``Input(default=...)`` or plain
    #: default (``MISSING`` when there is none).
    recognise: Callable[[Any, Any], bool]
    #: The pydantic type of one value (before the constraints are attached).
    value_type: Any = Any
    #: The ``Input(...)`` constraint keywords that apply to one value.
    keywords: frozenset[str] = frozenset()
    #: JSON-schema keys added to one value's schema (``{"format": "uri"}``).
    schema: Mapping[str, Any] = field(default_factory=dict)
    #: How ``-i name=VALUE`` is read.
    cli: CliReader = READ_JSON
    #: Values are files: fetched to a local path before ``predict`` runs.
    is_file: bool = False
    #: May be the item type of ``list[...]``.
    listable: bool = True
    #: Values are JSON arrays: ``min_items`` / ``max_items`` apply, ``-i`` collects repeats.
    is_array: bool = False
    #: Applied to each validated value (``Secret(...)``).
    convert: Callable[[Any], Any] | None = None
    #: The default describes the items instead of being a value (batch inputs): the input is
    #: required.
    template_default: bool = False
    #: Builds the value type per parameter instead of ``value_type`` (batch inputs). Returns
    #: the type and the item fields (shown in docs).
    build: Callable[[KindRequest], tuple[Any, dict[str, Any]]] | None = None


_REGISTRY: list[InputKind] = []


def register(kind: InputKind, *, first: bool = False) -> InputKind:
    """Add ``kind``; ``first`` puts it ahead of the others (when it recognises a narrower case
    of an annotation another kind also recognises)."""
    if kind_named(kind.name) is not None:
        raise ValueError(f"an input kind named {kind.name!r} is registered already")
    if first:
        _REGISTRY.insert(0, kind)
    else:
        _REGISTRY.append(kind)
    return kind


def unregister(name: str) -> None:
    """Remove the kind named ``name`` (for throwaway kinds in tests)."""
    _REGISTRY[:] = [k for k in _REGISTRY if k.name != name]


def registered_kinds() -> tuple[InputKind, ...]:
    """Every kind, in the order they are tried."""
    return tuple(_REGISTRY)


def kind_named(name: str) -> InputKind | None:
    return next((k for k in _REGISTRY if k.name == name), None)


def find_kind(annotation: Any, default: Any = MISSING) -> InputKind | None:
    """The first kind recognising ``annotation`` (with this default), or None."""
    return next((k for k in _REGISTRY if k.recognise(annotation, default)), None)


def supported_types() -> str:
    """The supported annotations, for error messages."""
    names = ", ".join(k.name for k in _REGISTRY if k.listable)
    return f"{names}, list[...] of those, Optional[...], and batch inputs ([{{key: Input(...)}}])"


def kind_of_type_name(type_name: str) -> tuple[InputKind, bool] | None:
    """``"list[Path]"`` → (the Path kind, True); ``"int"`` → (the int kind, False)."""
    is_list = type_name.startswith("list[") and type_name.endswith("]")
    kind = kind_named(type_name[5:-1] if is_list else type_name)
    return (kind, is_list) if kind is not None else None


# -- the built-in kinds ----------------------------------------------------------------------


def _is(*types: Any) -> Callable[[Any, Any], bool]:
    return lambda annotation, default: any(annotation is t for t in types)


def _bare(origins: tuple[Any, ...], any_args: tuple[Any, ...]) -> Callable[[Any, Any], bool]:
    """Recognises ``list``, ``List``, ``list[Any]`` (and likewise for dict): items unchecked."""

    def recognise(annotation: Any, default: Any) -> bool:
        if annotation in origins:
            return True
        args = typing.get_args(annotation)
        return typing.get_origin(annotation) in origins and args in ((), any_args)

    return recognise


_LISTS = (list, collections.abc.Sequence)
_DICTS = (dict, collections.abc.Mapping)
_NUMBERS = frozenset({"ge", "le", "choices"})


def _is_batch_template(default: Any) -> bool:
    return (
        isinstance(default, list)
        and len(default) == 1
        and isinstance(default[0], dict)
        and bool(default[0])
        and all(isinstance(v, InputSpec) for v in default[0].values())
    )


def _item_annotation(where: str, spec: InputSpec) -> Any:
    """The type of one key of a batch item: its default's type, else what its constraints
    imply, else any JSON value."""
    default = spec.default
    if default is None:
        return Any
    if default is MISSING:
        given = spec.constraints()
        if "ge" in given or "le" in given:
            return float
        if given.keys() & {"regex", "min_length", "max_length"}:
            return str
        if given.keys() & {"min_items", "max_items"}:
            return list
        return Any
    for python_type in (bool, int, float, str, list, dict):
        if isinstance(default, python_type):
            return python_type
    raise SignatureError(
        f"{where}: default {default!r} is not a JSON value (str, int, float, bool, list, "
        "dict or None)"
    )


def _build_batch(request: KindRequest) -> tuple[Any, dict[str, Any]]:
    annotation = request.annotation
    if not (annotation in _LISTS or typing.get_origin(annotation) in _LISTS):
        raise SignatureError(
            f"{request.where}: parameter {request.name!r} is a batch input (its default is "
            f"[{{key: Input(...), ...}}]): annotate it as a list, e.g. "
            f"`{request.name}: list = [...]`, not {annotation!r}"
        )
    template: dict[str, InputSpec] = request.spec.default[0]
    items: dict[str, Any] = {}
    model_fields: dict[str, Any] = {}
    aliases: dict[str, str] = {}
    for index, (key, spec) in enumerate(template.items()):
        if not isinstance(key, str) or not key:
            raise SignatureError(
                f"{request.where}: parameter {request.name!r}: batch item keys are non-empty "
                f"strings, not {key!r}"
            )
        annotation = _item_annotation(
            f"{request.where}: parameter {request.name!r}, item key {key!r}", spec
        )
        item_field, item_type, info = request.build_field(key, annotation, spec)
        items[key] = item_field
        attribute = f"item_{index}"  # keys need not be identifiers: they are aliases
        aliases[attribute] = key
        aliased = Field(
            default=info.default, alias=key, description=info.description, examples=info.examples
        )
        model_fields[attribute] = (item_type, aliased)
    config = ConfigDict(extra="forbid", strict=True)
    item_model = pydantic.create_model(
        f"{request.name.title().replace('_', '')}Item", __config__=config, **model_fields
    )

    def as_dict(item: pydantic.BaseModel) -> dict[str, Any]:
        return {key: getattr(item, attribute) for attribute, key in aliases.items()}

    one_item: Any = typing.Annotated[item_model, AfterValidator(as_dict)]
    return list[one_item], items


STR = register(
    InputKind(
        "str",
        _is(str),
        str,
        frozenset({"min_length", "max_length", "regex", "choices"}),
        cli=READ_TEXT,
    )
)
INT = register(InputKind("int", _is(int), int, _NUMBERS))
FLOAT = register(InputKind("float", _is(float), float, _NUMBERS))
BOOL = register(InputKind("bool", _is(bool), bool, frozenset({"choices"})))
SECRET = register(
    InputKind(
        "Secret",
        _is(Secret),
        str,
        frozenset({"min_length", "max_length"}),
        {"format": "password", "writeOnly": True},
        cli=READ_TEXT,
        convert=Secret,
    )
)
FILE = register(
    InputKind(
        "File",
        lambda annotation, default: is_file_type(annotation) and issubclass(annotation, File),
        str,
        schema={"format": "uri"},
        cli=READ_FILE,
        is_file=True,
    )
)
PATH = register(
    InputKind(
        "Path",
        lambda annotation, default: is_file_type(annotation),
        str,
        schema={"format": "uri"},
        cli=READ_FILE,
        is_file=True,
    )
)
BATCH = register(
    InputKind(
        "batch",
        lambda annotation, default: _is_batch_template(default),
        keywords=frozenset({"min_items", "max_items"}),
        listable=False,
        is_array=True,
        template_default=True,
        build=_build_batch,
    ),
    first=True,  # whatever the annotation: a template default is a batch
)
LIST = register(
    InputKind(
        "list",
        _bare(_LISTS, (Any,)),
        list[Any],
        frozenset({"min_items", "max_items"}),
        is_array=True,
    )
)
DICT = register(InputKind("dict", _bare(_DICTS, (str, Any)), dict[str, Any]))
ANY = register(InputKind("Any", _is(Any, object), Any, frozenset({"choices"})))
