"""A model method → :class:`ModelSignature`: its validated inputs, its output kind, its schema.

Pure: no I/O, no HTTP, no kserve import. The signature is computed once when the model is
loaded; a bad annotation or a default that breaks its own constraints fails there, naming the
parameter, never on a request.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import pathlib
import re
import types
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic.json_schema import PydanticJsonSchemaWarning
from pydantic_core import PydanticCustomError

from kservehelper.errors import InputError, SignatureError
from kservehelper.types import MISSING, InputSpec, Secret, is_file_type

#: Request keys that are never passed to the model method.
RESERVED_KEYS = frozenset({"upload_webhook"})

_SCALARS: tuple[type, ...] = (str, int, float, bool)
_STREAM_ORIGINS = (
    collections.abc.Iterator,
    collections.abc.Iterable,
    collections.abc.Generator,
    collections.abc.AsyncIterator,
    collections.abc.AsyncIterable,
    collections.abc.AsyncGenerator,
)


class OutputKind(str, enum.Enum):
    """What a model method returns, as far as serving is concerned."""

    VALUE = "value"  # any JSON-able value, returned inline
    FILE = "file"  # one Path, delivered to a destination
    FILES = "files"  # a list of Paths
    STREAM = "stream"  # a generator: items are sent as they are produced


@dataclass(frozen=True)
class InputField:
    """One parameter of the model method."""

    name: str
    annotation: Any
    spec: InputSpec
    is_file: bool  # Path / File (or a list of them): turned into local files before the call
    is_list: bool
    type_name: str

    @property
    def required(self) -> bool:
        return self.spec.required


@dataclass(frozen=True)
class ModelSignature:
    """The inputs and output of one model method (``predict``, ``generate``, ``preprocess``)."""

    method: str
    fields: dict[str, InputField]
    output_kind: OutputKind
    output_is_file: bool  # for streams: whether the items are files
    input_model: type[BaseModel]

    def validate(self, payload: Mapping[str, Any]) -> dict[str, Any]:
        """Validate a request's inputs; return the keyword arguments for the method.

        Missing inputs take their defaults. Raises :class:`InputError` listing every problem.
        """
        data = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
        try:
            validated = self.input_model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise self._input_error(exc) from None
        return dict(validated.__dict__)

    def _input_error(self, exc: pydantic.ValidationError) -> InputError:
        valid = ", ".join(self.fields) or "(none: this model takes no inputs)"
        detail: list[dict[str, Any]] = []
        for err in exc.errors(include_url=False):
            loc = list(err["loc"])
            msg = err["msg"]
            kind = err["type"]
            if kind == "extra_forbidden":
                msg = f"unknown input {loc[0]!r}; valid inputs are: {valid}"
                kind = "unknown_input"
            elif kind == "missing":
                msg = "this input is required"
            detail.append({"loc": loc, "msg": msg, "type": kind})
        if len(detail) == 1:
            only = detail[0]
            where = ".".join(str(p) for p in only["loc"])
            plain = only["type"] == "unknown_input" or not where
            summary = only["msg"] if plain else f"invalid input {where!r}: {only['msg']}"
        else:
            names = sorted({str(d["loc"][0]) for d in detail if d["loc"]})
            summary = f"{len(detail)} invalid inputs: {', '.join(names)}"
        return InputError(summary, detail)

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12, as used by OpenAPI 3.1) of the inputs."""
        with warnings.catch_warnings():
            # Secret defaults are not JSON-able on purpose: they stay out of the schema.
            warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
            schema = self.input_model.model_json_schema()
        schema["title"] = "Input"
        props = schema.get("properties", {})
        for order, (name, fld) in enumerate(self.fields.items()):
            prop = props.get(name, {})
            prop["x-order"] = order
            if fld.is_file:
                target = next((b for b in prop.get("anyOf", []) if b.get("type") != "null"), prop)
                target = target.get("items", target) if fld.is_list else target
                target["format"] = "uri"
            if fld.type_name == "Secret":
                prop.update({"format": "password", "writeOnly": True})
        return schema

    def output_schema(self) -> dict[str, Any]:
        """What the method returns: its kind, and whether stream items are files."""
        out: dict[str, Any] = {"kind": self.output_kind.value}
        if self.output_kind is OutputKind.STREAM:
            out["items"] = "file" if self.output_is_file else "value"
        return out

    def docs(self) -> dict[str, dict[str, Any]]:
        """The input descriptions, shaped like the original project's ``/v1/docs`` route."""
        out: dict[str, dict[str, Any]] = {}
        for name, fld in self.fields.items():
            entry: dict[str, Any] = {"type": fld.type_name}
            spec = fld.spec
            if spec.description is not None:
                entry["description"] = spec.description
            entry["required"] = spec.required
            if not spec.required:
                entry["default"] = _jsonable_default(spec.default)
            for key in ("ge", "le", "min_length", "max_length", "regex"):
                value = getattr(spec, key)
                if value is not None:
                    entry[key] = value
            if spec.choices is not None:
                entry["choices"] = list(spec.choices)
            out[name] = entry
        return out


def build_signature(method: Callable[..., Any], method_name: str | None = None) -> ModelSignature:
    """Read a model method's parameters and return annotation into a :class:`ModelSignature`.

    Raises :class:`SignatureError` naming the parameter when something cannot be served.
    """
    name = str(method_name or getattr(method, "__name__", "predict"))
    where = f"{getattr(method, '__qualname__', name)}()"
    try:
        hints = typing.get_type_hints(method, include_extras=True)
    except Exception as exc:  # a NameError in a string annotation, typically
        raise SignatureError(f"{where}: cannot resolve its type annotations: {exc}") from exc

    fields: dict[str, InputField] = {}
    model_fields: dict[str, Any] = {}
    for param in inspect.signature(method).parameters.values():
        if param.name == "self":
            continue
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise SignatureError(
                f"{where}: *{param.name} / **{param.name} cannot be served; "
                "declare each input as its own parameter"
            )
        if param.name in RESERVED_KEYS:
            raise SignatureError(f"{where}: {param.name!r} is a reserved request key; rename it")
        if param.name not in hints:
            raise SignatureError(
                f"{where}: parameter {param.name!r} has no type annotation; "
                f"annotate it, e.g. `{param.name}: str = Input(description=...)`"
            )
        spec = _spec_of(param)
        fld, field_type, field_info = _build_field(where, param.name, hints[param.name], spec)
        fields[param.name] = fld
        model_fields[param.name] = (field_type, field_info)

    config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=False)
    input_model = pydantic.create_model(
        f"{name.capitalize()}Input", __config__=config, **model_fields
    )
    kind, item_is_file = _output_kind(method, hints.get("return", inspect.Signature.empty))
    return ModelSignature(name, fields, kind, item_is_file, input_model)


def compare_signatures(first: ModelSignature, second: ModelSignature) -> list[str]:
    """Differences between the inputs of two methods (``predict`` vs ``generate``), as text."""
    problems: list[str] = []
    a, b = first.fields, second.fields
    for missing in a.keys() - b.keys():
        problems.append(f"{second.method}() has no parameter {missing!r}")
    for extra in b.keys() - a.keys():
        problems.append(f"{first.method}() has no parameter {extra!r}")
    for name in a.keys() & b.keys():
        if a[name].type_name != b[name].type_name:
            problems.append(
                f"{name!r} is {a[name].type_name} in {first.method}() "
                f"but {b[name].type_name} in {second.method}()"
            )
        elif a[name].spec != b[name].spec:
            problems.append(f"{name!r} has different Input(...) settings in the two methods")
    return sorted(problems)


def _spec_of(param: inspect.Parameter) -> InputSpec:
    default = param.default
    if isinstance(default, InputSpec):
        return default
    if isinstance(default, pydantic.fields.FieldInfo):
        raise SignatureError(
            f"parameter {param.name!r}: use kservehelper.types.Input(...), not pydantic.Field"
        )
    return InputSpec(default=MISSING if default is inspect.Parameter.empty else default)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    origin = typing.get_origin(annotation)
    if origin is typing.Union or origin is types.UnionType:
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(annotation)) == 2:
            return args[0], True
    return annotation, False


def _type_name(base: Any) -> str:
    if base is Secret:
        return "Secret"
    if is_file_type(base):
        return base.__name__ if base.__module__.startswith("kservehelper") else "Path"
    return str(base.__name__)


def _build_field(
    where: str, name: str, annotation: Any, spec: InputSpec
) -> tuple[InputField, Any, Any]:
    inner, optional = _unwrap_optional(annotation)
    is_list = inner is list or typing.get_origin(inner) in (list, collections.abc.Sequence)
    base = typing.get_args(inner)[0] if is_list and typing.get_args(inner) else inner
    if is_list and not typing.get_args(inner):
        raise SignatureError(
            f"{where}: parameter {name!r}: say what the list holds, e.g. list[str]"
        )
    is_file = is_file_type(base)
    if not (is_file or base is Secret or base in _SCALARS):
        raise SignatureError(
            f"{where}: parameter {name!r} has type {annotation!r}; supported input types are "
            "str, int, float, bool, Path, File, Secret, list[...] of those and Optional[...]"
        )
    type_name = f"list[{_type_name(base)}]" if is_list else _type_name(base)
    _check_constraints(where, name, spec, base, is_list)

    item_type: Any = str if (is_file or base is Secret) else base
    item_validators: list[Any] = []
    item_field: dict[str, Any] = {}
    if spec.ge is not None:
        item_field["ge"] = spec.ge
    if spec.le is not None:
        item_field["le"] = spec.le
    if spec.regex is not None:
        item_validators.append(_regex_validator(spec.regex))
    if spec.choices is not None:
        item_validators.append(_choice_validator(spec.choices))
    if base is Secret:
        item_validators.append(AfterValidator(Secret))
    for metadata in [Field(**item_field), *item_validators] if item_field else item_validators:
        item_type = Annotated[item_type, metadata]  # nested Annotated flattens

    field_type: Any = list[item_type] if is_list else item_type
    if optional:
        field_type = field_type | None

    extra: dict[str, Any] = dict(spec.extra)
    if spec.choices is not None:
        extra["enum"] = list(spec.choices)
    if spec.regex is not None:
        extra["pattern"] = f"^(?:{spec.regex})$"
    default = _validated_default(where, name, annotation, spec, field_type)
    info = Field(
        default=default,
        description=spec.description,
        min_length=spec.min_length,
        max_length=spec.max_length,
        json_schema_extra=_schema_patch(extra, is_list) if extra else None,
    )
    fld = InputField(name, annotation, spec, is_file, is_list, type_name)
    return fld, field_type, info


def _schema_patch(extra: dict[str, Any], is_list: bool) -> Callable[[dict[str, Any]], None]:
    item_keys = {"enum", "pattern"}

    def patch(schema: dict[str, Any]) -> None:
        for key, value in extra.items():
            target = schema
            if is_list and key in item_keys:
                target = schema.setdefault("items", {})
            target[key] = value

    return patch


def _check_constraints(where: str, name: str, spec: InputSpec, base: Any, is_list: bool) -> None:
    numeric = base in (int, float) and base is not bool
    if (spec.ge is not None or spec.le is not None) and not numeric:
        raise SignatureError(
            f"{where}: parameter {name!r}: ge/le apply to int and float inputs, "
            f"not {_type_name(base)}"
        )
    sized = is_list or base is str or base is Secret
    if (spec.min_length is not None or spec.max_length is not None) and not sized:
        raise SignatureError(
            f"{where}: parameter {name!r}: min_length/max_length apply to str and list inputs, "
            f"not {_type_name(base)}"
        )
    if spec.regex is not None:
        if base is not str:
            raise SignatureError(f"{where}: parameter {name!r}: regex applies to str inputs only")
        try:
            re.compile(spec.regex)
        except re.error as exc:
            raise SignatureError(
                f"{where}: parameter {name!r}: regex {spec.regex!r} does not compile: {exc}"
            ) from exc


def _regex_validator(regex: str) -> AfterValidator:
    compiled = re.compile(regex)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise PydanticCustomError(
                "string_pattern_mismatch",
                "must match the regular expression {pattern}",
                {"pattern": regex},
            )
        return value

    return AfterValidator(check)


def _choice_validator(choices: tuple[Any, ...]) -> AfterValidator:
    allowed = set(choices) if all(_hashable(c) for c in choices) else None
    listed = ", ".join(repr(c) for c in choices)

    def check(value: Any) -> Any:
        ok = value in allowed if allowed is not None else value in choices
        if not ok:
            raise PydanticCustomError("choice", "must be one of: {choices}", {"choices": listed})
        return value

    return AfterValidator(check)


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def _validated_default(
    where: str, name: str, annotation: Any, spec: InputSpec, field_type: Any
) -> Any:
    """The default as the method will receive it (``2`` for a float becomes ``2.0``).

    A default that breaks its own constraints is a :class:`SignatureError` at load time.
    """
    if spec.required:
        return ...
    if spec.default is None:
        if not _allows_none(annotation):
            raise SignatureError(
                f"{where}: parameter {name!r} defaults to None but its type does not allow "
                f"None; annotate it as Optional[...]"
            )
        return None
    value = spec.default
    if isinstance(value, pathlib.PurePath):
        value = str(value)
    sized = Field(min_length=spec.min_length, max_length=spec.max_length)
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(
            Annotated[field_type, sized], config=ConfigDict(strict=True)
        )
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        reasons = "; ".join(e["msg"] for e in exc.errors(include_url=False))
        raise SignatureError(
            f"{where}: the default of parameter {name!r} ({spec.default!r}) breaks its "
            f"own constraints: {reasons}. Change the default or the constraint."
        ) from None


def _allows_none(annotation: Any) -> bool:
    return _unwrap_optional(annotation)[1] or annotation is type(None)


def output_kind_of(method: Callable[..., Any]) -> tuple[OutputKind, bool]:
    """What ``method`` returns (its kind, and whether stream items are files), from its
    return annotation alone."""
    try:
        annotation = typing.get_type_hints(method).get("return", inspect.Signature.empty)
    except Exception as exc:
        raise SignatureError(
            f"{method.__qualname__}(): cannot resolve its annotations: {exc}"
        ) from exc
    return _output_kind(method, annotation)


def _output_kind(method: Callable[..., Any], annotation: Any) -> tuple[OutputKind, bool]:
    if inspect.isgeneratorfunction(method) or inspect.isasyncgenfunction(method):
        args = typing.get_args(annotation)
        return OutputKind.STREAM, bool(args) and is_file_type(args[0])
    if annotation is inspect.Signature.empty or annotation is None:
        return OutputKind.VALUE, False
    if is_file_type(annotation):
        return OutputKind.FILE, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, collections.abc.Sequence) and args and is_file_type(args[0]):
        return OutputKind.FILES, False
    if origin in _STREAM_ORIGINS:
        return OutputKind.STREAM, bool(args) and is_file_type(args[0])
    return OutputKind.VALUE, False


def _jsonable_default(value: Any) -> Any:
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, Secret):
        return "**********"
    return value
