"""One ``predict`` parameter → an :class:`InputField` and the pydantic type that validates it.

Constraints (``ge``, ``regex``, ``choices``, ...) become pydantic constraints or validators;
each is checked against the parameter's type, and the default against the constraints, when
the model is loaded. Pure: no I/O.
"""

from __future__ import annotations

import collections.abc
import inspect
import pathlib
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticCustomError

from kservehelper.errors import SignatureError
from kservehelper.types import MISSING, InputSpec, Secret, is_file_type

_SCALARS: tuple[type, ...] = (str, int, float, bool)


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


def spec_of(param: inspect.Parameter) -> InputSpec:
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


def build_input_field(
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
