"""One ``predict`` parameter → an :class:`InputField` and the pydantic type that validates it.

The parameter's kind comes from the registry (:mod:`.kinds`); ``Optional[...]`` and
``list[...]`` wrap it here. Constraints (``ge``, ``regex``, ``choices``, ``min_items``, ...)
become pydantic constraints or validators; each is checked against the kind, and the default
against the constraints, when the model is loaded. Pure: no I/O.
"""

from __future__ import annotations

import collections.abc
import dataclasses
import difflib
import inspect
import pathlib
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Annotated, Any

import pydantic
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticCustomError

from kservehelper.errors import SignatureError
from kservehelper.schema import kinds
from kservehelper.schema.kinds import InputKind, KindRequest
from kservehelper.types import INPUT_KEYWORDS, MISSING, InputSpec

_LIST_ORIGINS = (list, collections.abc.Sequence)
#: Keywords bounding a list's number of items; on a list, min_length/max_length are the older
#: spelling of these.
_ITEM_COUNT = frozenset({"min_items", "max_items"})
_OLD_ITEM_COUNT = {"min_length": "min_items", "max_length": "max_items"}


@dataclass(frozen=True)
class InputField:
    """One parameter of the model method."""

    name: str
    annotation: Any
    spec: InputSpec
    kind: InputKind
    is_list: bool  # list[<kind>]
    type_name: str
    optional: bool = False
    #: The fields of one item, for a kind whose values are objects (batch inputs).
    items: dict[str, InputField] = field(default_factory=dict)
    #: What the parameter spells the old way (a DeprecationWarning when the model loads).
    deprecations: tuple[str, ...] = ()

    @property
    def required(self) -> bool:
        return self.spec.required or self.kind.template_default

    @property
    def is_file(self) -> bool:
        """Path / File (or a list of them): turned into local files before the call."""
        return self.kind.is_file


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


def _resolve_kind(where: str, name: str, annotation: Any, default: Any) -> tuple[InputKind, bool]:
    """The parameter's kind, and whether it is a ``list[...]`` of that kind."""
    kind = kinds.find_kind(annotation, default)
    if kind is not None:
        return kind, False
    args = typing.get_args(annotation)
    if typing.get_origin(annotation) in _LIST_ORIGINS and len(args) == 1:
        item_kind = kinds.find_kind(args[0])
        if item_kind is not None and item_kind.listable:
            return item_kind, True
    raise SignatureError(
        f"{where}: parameter {name!r} has type {annotation!r}; supported input types are "
        f"{kinds.supported_types()}"
    )


def build_input_field(
    where: str, name: str, annotation: Any, spec: InputSpec
) -> tuple[InputField, Any, Any]:
    """The field, its pydantic type and its ``FieldInfo`` (default, description, schema)."""
    _check_unknown_keywords(where, name, spec)
    inner, optional = _unwrap_optional(annotation)
    kind, is_list = _resolve_kind(where, name, inner, spec.default)
    if not kind.template_default and _holds_input(spec.default):
        raise SignatureError(
            f"{where}: parameter {name!r}: Input(...) inside a default is only read in a batch "
            "template, a list of exactly one dict: [{'key': Input(...), ...}]"
        )
    spec, deprecation = _item_count_spelling(where, name, spec, kind, is_list)
    _check_keywords(where, name, spec, kind, is_list)
    type_name = f"list[{kind.name}]" if is_list else kind.name

    items: dict[str, InputField] = {}
    if kind.build is not None:

        def build_item(key: str, item_annotation: Any, item_spec: InputSpec) -> Any:
            return build_input_field(where, f"{name}[].{key}", item_annotation, item_spec)

        value_type, items = kind.build(KindRequest(where, name, inner, spec, build_item))
    else:
        value_type = kind.value_type
    value_type = _constrained(value_type, kind, spec, item_of_list=is_list)
    field_type: Any = list[value_type] if is_list else value_type  # type: ignore[valid-type]
    if spec.min_items is not None or spec.max_items is not None:
        counts = Field(min_length=spec.min_items, max_length=spec.max_items)
        field_type = Annotated[field_type, counts]
    if optional:
        field_type = field_type | None

    notes = tuple(n for item in items.values() for n in item.deprecations)
    if deprecation is not None:
        notes += (deprecation,)
    fld = InputField(name, annotation, spec, kind, is_list, type_name, optional, items, notes)
    default = ... if fld.required else _validated_default(where, name, fld, field_type)
    info = Field(
        default=default,
        description=spec.description,
        examples=list(spec.examples) if spec.examples is not None else None,
    )
    return fld, field_type, info


def _holds_input(value: Any) -> bool:
    if isinstance(value, InputSpec):
        return True
    if isinstance(value, dict):
        return any(_holds_input(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(_holds_input(v) for v in value)
    return False


def _constrained(value_type: Any, kind: InputKind, spec: InputSpec, item_of_list: bool) -> Any:
    """``value_type`` with the constraints on one value (each item, for a list) attached."""
    bounds: dict[str, Any] = {}
    if spec.ge is not None:
        bounds["ge"] = spec.ge
    if spec.le is not None:
        bounds["le"] = spec.le
    if not item_of_list:  # on a list, the length keywords bound its items (handled above)
        if spec.min_length is not None:
            bounds["min_length"] = spec.min_length
        if spec.max_length is not None:
            bounds["max_length"] = spec.max_length
    schema: dict[str, Any] = dict(kind.schema)
    validators: list[Any] = []
    if spec.regex is not None:
        validators.append(_regex_validator(spec.regex))
        schema["pattern"] = f"^(?:{spec.regex})$"
    if spec.choices is not None:
        validators.append(_choice_validator(spec.choices))
        schema["enum"] = list(spec.choices)
    if kind.convert is not None:
        validators.append(AfterValidator(kind.convert))
    metadata: list[Any] = []
    if bounds or schema:
        metadata.append(Field(json_schema_extra=schema or None, **bounds))
    metadata += validators
    for item in metadata:
        value_type = Annotated[value_type, item]  # nested Annotated flattens
    return value_type


def _check_unknown_keywords(where: str, name: str, spec: InputSpec) -> None:
    for keyword in spec.unknown:
        close = difflib.get_close_matches(keyword, INPUT_KEYWORDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise SignatureError(
            f"{where}: parameter {name!r}: Input() has no keyword {keyword!r}{hint}; "
            f"its keywords are: {', '.join(INPUT_KEYWORDS)}"
        )


def _item_count_spelling(
    where: str, name: str, spec: InputSpec, kind: InputKind, is_list: bool
) -> tuple[InputSpec, str | None]:
    """On a list, ``min_length``/``max_length`` are the older spelling of
    ``min_items``/``max_items``: read them as such, with a deprecation message."""
    if not (is_list or kind.is_array):
        return spec, None
    old = [k for k in _OLD_ITEM_COUNT if getattr(spec, k) is not None]
    if not old:
        return spec, None
    for key in old:
        if getattr(spec, _OLD_ITEM_COUNT[key]) is not None:
            raise SignatureError(
                f"{where}: parameter {name!r}: give the number of items once, as "
                f"{_OLD_ITEM_COUNT[key]} (not also {key})"
            )
    spelled = ", ".join(f"{_OLD_ITEM_COUNT[k]}= for {k}=" for k in old)
    note = (
        f"{where}: parameter {name!r} is a list: Input(min_length=/max_length=) on a list is "
        f"the older spelling of min_items=/max_items= (the number of items); write {spelled}"
    )
    changes = {_OLD_ITEM_COUNT[k]: getattr(spec, k) for k in old}
    changes.update({k: None for k in old})
    return dataclasses.replace(spec, **changes), note


def _check_keywords(where: str, name: str, spec: InputSpec, kind: InputKind, is_list: bool) -> None:
    allowed = set(kind.keywords)
    if is_list:
        allowed = (allowed - {"min_length", "max_length"}) | _ITEM_COUNT
    for keyword in spec.constraints():
        if keyword not in allowed:
            raise SignatureError(
                f"{where}: parameter {name!r}: {keyword} applies to {_applies_to(keyword)}, "
                f"not {f'list[{kind.name}]' if is_list else kind.name}"
            )
    if spec.regex is not None:
        try:
            re.compile(spec.regex)
        except re.error as exc:
            raise SignatureError(
                f"{where}: parameter {name!r}: regex {spec.regex!r} does not compile: {exc}"
            ) from exc


def _applies_to(keyword: str) -> str:
    if keyword in _ITEM_COUNT:
        return "list inputs (list[...], list, batch)"
    names = [k.name for k in kinds.registered_kinds() if keyword in k.keywords and k.listable]
    each = " (each item, in a list)" if keyword in {"ge", "le", "regex", "choices"} else ""
    return f"{', '.join(names)} inputs{each}"


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


def _validated_default(where: str, name: str, fld: InputField, field_type: Any) -> Any:
    """The default as the method will receive it (``2`` for a float becomes ``2.0``).

    A default that breaks its own constraints is a :class:`SignatureError` at load time.
    """
    spec = fld.spec
    if spec.default is None:
        if not (fld.optional or fld.kind is kinds.ANY or fld.annotation is type(None)):
            raise SignatureError(
                f"{where}: parameter {name!r} defaults to None but its type does not allow "
                f"None; annotate it as Optional[...]"
            )
        return None
    value = spec.default
    if isinstance(value, pathlib.PurePath):
        value = str(value)
    try:
        adapter: TypeAdapter[Any] = TypeAdapter(field_type, config=ConfigDict(strict=True))
        return adapter.validate_python(value)
    except pydantic.ValidationError as exc:
        reasons = "; ".join(e["msg"] for e in exc.errors(include_url=False))
        raise SignatureError(
            f"{where}: the default of parameter {name!r} ({spec.default!r}) breaks its "
            f"own constraints: {reasons}. Change the default or the constraint."
        ) from None
