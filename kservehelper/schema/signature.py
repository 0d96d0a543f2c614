"""A model class → the :class:`ModelSignature` of each served method: validated inputs, output
kind, JSON schema.

Pure: no I/O, no HTTP, no kserve import. The signature is computed once when the model is
loaded; a bad annotation or a default that breaks its own constraints fails there, naming the
parameter, never on a request.
"""

from __future__ import annotations

import ast
import collections.abc
import dataclasses
import enum
import inspect
import pathlib
import textwrap
import typing
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict
from pydantic.json_schema import PydanticJsonSchemaWarning

from kservehelper.deprecation import warn_once, warn_once_at
from kservehelper.errors import InputError, SignatureError
from kservehelper.schema.fields import InputField, build_input_field, spec_of
from kservehelper.types import Secret, is_file_type

#: Request keys that are never passed to the model method.
RESERVED_KEYS = frozenset({"upload_webhook"})
#: The methods served over HTTP (``:predict`` and ``:generate``).
SERVED_METHODS = ("predict", "generate")
#: A model defining these instead of predict() runs as a KServe transformer.
TRANSFORMER_METHODS = ("preprocess", "postprocess")

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
            if kind == "extra_forbidden" and len(loc) == 1:
                msg = f"unknown input {loc[0]!r}; valid inputs are: {valid}"
                kind = "unknown_input"
            elif kind == "extra_forbidden":
                msg = f"unknown key {loc[-1]!r}; {self._valid_keys(loc)}"
                kind = "unknown_key"
            elif kind == "missing":
                msg = "this input is required" if len(loc) == 1 else "this key is required"
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

    def _valid_keys(self, loc: list[Any]) -> str:
        fld = self.fields.get(str(loc[0]))
        keys = ", ".join(fld.items) if fld is not None and fld.items else ""
        return f"valid keys are: {keys}" if keys else "no other keys are accepted"

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema (draft 2020-12, as used by OpenAPI 3.1) of the inputs."""
        with warnings.catch_warnings():
            # Secret defaults are not JSON-able on purpose: they stay out of the schema.
            warnings.simplefilter("ignore", PydanticJsonSchemaWarning)
            schema = self.input_model.model_json_schema()
        schema["title"] = "Input"
        _inline_definitions(schema)
        props = schema.get("properties", {})
        for order, (name, fld) in enumerate(self.fields.items()):
            prop = props.get(name, {})
            prop["x-order"] = order
            prop["x-kind"] = fld.type_name
        return schema

    def output_schema(self) -> dict[str, Any]:
        """What the method returns: its kind, and whether stream items are files."""
        out: dict[str, Any] = {"kind": self.output_kind.value}
        if self.output_kind is OutputKind.STREAM:
            out["items"] = "file" if self.output_is_file else "value"
        return out

    def docs(self) -> dict[str, dict[str, Any]]:
        """The input descriptions, shaped like the original project's ``/v1/docs`` route."""
        return {name: _doc_entry(fld) for name, fld in self.fields.items()}


def _doc_entry(fld: InputField) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": fld.type_name}
    spec = fld.spec
    if spec.description is not None:
        entry["description"] = spec.description
    entry["required"] = fld.required
    if not fld.required:
        entry["default"] = _jsonable_default(spec.default)
    entry.update({k: list(v) if k == "choices" else v for k, v in spec.constraints().items()})
    if fld.items:
        entry["items"] = {key: _doc_entry(item) for key, item in fld.items.items()}
    return entry


def _inline_definitions(schema: dict[str, Any]) -> None:
    """Replace ``$ref``s to ``$defs`` (batch item objects) by the definitions themselves, so
    each input's schema reads on its own."""
    definitions = schema.pop("$defs", None)
    if not definitions:
        return

    def inline(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                target = inline(dict(definitions[ref.removeprefix("#/$defs/")]))
                return {**target, **{k: inline(v) for k, v in node.items() if k != "$ref"}}
            return {k: inline(v) for k, v in node.items()}
        if isinstance(node, list):
            return [inline(v) for v in node]
        return node

    schema.update(inline(schema))


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
        spec = spec_of(param)
        fld, field_type, field_info = build_input_field(where, param.name, hints[param.name], spec)
        fields[param.name] = fld
        model_fields[param.name] = (field_type, field_info)
        for note in fld.deprecations:
            _warn_once(method, note)

    config = ConfigDict(extra="forbid", strict=True, arbitrary_types_allowed=False)
    input_model = pydantic.create_model(
        f"{name.capitalize()}Input", __config__=config, **model_fields
    )
    kind, item_is_file = _output_kind(method, hints.get("return", inspect.Signature.empty))
    return ModelSignature(name, fields, kind, item_is_file, input_model)


def _warn_once(method: Callable[..., Any], message: str) -> None:
    """A DeprecationWarning about the user's code, attributed to the method's own file and
    line (so it shows where it is to be fixed), once per process."""
    function = inspect.unwrap(method)
    code = getattr(function, "__code__", None)
    if code is None:
        warn_once(message, message, stacklevel=3)
        return
    module = getattr(function, "__module__", None) or "__main__"
    warn_once_at(message, message, code.co_filename, code.co_firstlineno, module)


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
    if is_file_type(annotation):
        return OutputKind.FILE, False
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (list, collections.abc.Sequence) and args and is_file_type(args[0]):
        return OutputKind.FILES, False
    if origin in _STREAM_ORIGINS or annotation in _STREAM_ORIGINS:
        return OutputKind.STREAM, bool(args) and is_file_type(args[0])
    if _returns_wrapped_generator(method):
        return OutputKind.STREAM, False
    return OutputKind.VALUE, False


def _returns_wrapped_generator(method: Callable[..., Any]) -> bool:
    """Whether the method's own body says ``return ...wrap_generator(...)`` (the seed's
    streaming style, usually without a return annotation). Read from its source, never by
    calling it; False when the source is not available."""
    try:
        source = textwrap.dedent(inspect.getsource(inspect.unwrap(method)))
        tree = ast.parse(source)
    except (OSError, TypeError, SyntaxError):
        return False
    function = tree.body[0] if tree.body else None
    if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return False
    return any(_is_wrap_generator_call(node.value) for node in _own_returns(function))


def _own_returns(function: ast.FunctionDef | ast.AsyncFunctionDef) -> list[ast.Return]:
    """The ``return`` statements of ``function`` itself, not of functions defined inside it."""
    found: list[ast.Return] = []
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Return):
            found.append(node)
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)):
            pending.extend(ast.iter_child_nodes(node))
    return found


def _is_wrap_generator_call(node: ast.expr | None) -> bool:
    if not isinstance(node, ast.Call):
        return False
    func = node.func
    return (isinstance(func, ast.Attribute) and func.attr == "wrap_generator") or (
        isinstance(func, ast.Name) and func.id == "wrap_generator"
    )


def _jsonable_default(value: Any) -> Any:
    if isinstance(value, pathlib.PurePath):
        return str(value)
    if isinstance(value, Secret):
        return "**********"
    return value


def signatures_of(model_class: type) -> dict[str, ModelSignature]:
    """The signatures of the served methods of a user model class.

    Raises :class:`SignatureError` when the class has neither ``predict`` nor ``generate``, or
    when it has both and their inputs differ.
    """
    found = {
        name: build_signature(getattr(model_class, name), name)
        for name in SERVED_METHODS
        if callable(getattr(model_class, name, None))
    }
    transformer = [m for m in TRANSFORMER_METHODS if callable(getattr(model_class, m, None))]
    if transformer:
        if found or len(transformer) == 1:
            raise SignatureError(
                f"{model_class.__name__}: a transformer defines both preprocess() and "
                "postprocess(), and no predict() or generate() (the predictor does that); "
                f"it defines {', '.join(transformer + list(found))}"
            )
        preprocess = build_signature(getattr(model_class, "preprocess"), "preprocess")  # noqa: B009
        kind, items_are_files = output_kind_of(getattr(model_class, "postprocess"))  # noqa: B009
        # Inputs are preprocess()'s; what comes back is postprocess()'s.
        return {
            "preprocess": dataclasses.replace(
                preprocess, output_kind=kind, output_is_file=items_are_files
            )
        }
    if not found:
        raise SignatureError(
            f"{model_class.__name__} has no predict() method; define "
            "`def predict(self, ...)` (or the older-style generate())"
        )
    if len(found) == 2:
        problems = compare_signatures(found["predict"], found["generate"])
        if problems:
            raise SignatureError(
                f"{model_class.__name__}: predict() and generate() must take the same inputs: "
                + "; ".join(problems)
            )
    return found


def main_signature(signatures: dict[str, ModelSignature]) -> ModelSignature:
    """The signature whose inputs describe the model (predict's, else generate's/preprocess's)."""
    return next(iter(signatures.values()))


def model_schema(name: str, signatures: dict[str, ModelSignature]) -> dict[str, Any]:
    """The schema document served at ``/v1/models/{name}/schema``."""
    main = main_signature(signatures)
    return {
        "name": name,
        "input": main.json_schema(),
        "output": main.output_schema(),
        "methods": {
            method: {
                "path": f"/v1/models/{name}:{_route_verb(method)}",
                "output": sig.output_schema(),
            }
            for method, sig in signatures.items()
        },
    }


def _route_verb(method: str) -> str:
    return "predict" if method == "preprocess" else method
