"""Unit tests: a method's signature → validation, defaults, output kinds, schema."""

from __future__ import annotations

import collections.abc
import json
import warnings
from typing import Any, Dict, List, Optional  # noqa: UP035 (2.0's spellings, on purpose)

import jsonschema
import pytest
from pydantic import BaseModel

from kservehelper.errors import InputError, SignatureError
from kservehelper.schema.signature import (
    OutputKind,
    build_signature,
    compare_signatures,
    model_schema,
    signatures_of,
)
from kservehelper.types import File, Input, Path, Secret

ConcatenateIteratorAlias = collections.abc.Iterator  # what 2.0's ConcatenateIterator is today


class Everything:
    def predict(
        self,
        prompt: str = Input(description="Text", min_length=1, max_length=10),
        steps: int = Input(default=20, ge=1, le=50),
        scale: float = Input(default=7, ge=0.0, le=20.0),
        sampler: str = Input(default="ddim", choices=["ddim", "euler"]),
        seed: Optional[int] = Input(default=None),
        tags: list[str] = Input(default=["a"], min_items=1, max_items=3, regex=r"[a-z]+"),
        sizes: list[int] = Input(default=[1], ge=1, le=4),
        flag: bool = False,
        token: Secret = Input(default="s3cr3t"),
        image: Optional[Path] = Input(default=None),
        attachments: list[File] = Input(default=[]),
    ) -> Path: ...


def signature():
    return build_signature(Everything.predict)


def errors_of(payload: dict[str, object]) -> list[dict[str, object]]:
    with pytest.raises(InputError) as caught:
        signature().validate(payload)
    return caught.value.detail


def test_defaults_fill_missing_inputs_and_are_coerced_to_their_type() -> None:
    kwargs = signature().validate({"prompt": "cat"})
    assert kwargs["steps"] == 20
    assert kwargs["scale"] == 7.0 and isinstance(kwargs["scale"], float)
    assert kwargs["seed"] is None
    assert kwargs["tags"] == ["a"]
    assert kwargs["flag"] is False
    assert isinstance(kwargs["token"], Secret)
    assert kwargs["token"].get_secret_value() == "s3cr3t"
    assert "s3cr3t" not in repr(kwargs["token"])


def test_reserved_upload_webhook_is_not_an_input() -> None:
    assert "upload_webhook" not in signature().validate({"prompt": "x", "upload_webhook": "u"})


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"prompt": ""}, ["prompt"], "string_too_short"),
        ({"prompt": "x" * 11}, ["prompt"], "string_too_long"),
        ({"prompt": 5}, ["prompt"], "string_type"),
        ({"prompt": "x", "steps": 0}, ["steps"], "greater_than_equal"),
        ({"prompt": "x", "steps": 51}, ["steps"], "less_than_equal"),
        ({"prompt": "x", "steps": "5"}, ["steps"], "int_type"),
        ({"prompt": "x", "steps": 2.5}, ["steps"], "int_type"),
        ({"prompt": "x", "scale": 20.5}, ["scale"], "less_than_equal"),
        ({"prompt": "x", "sampler": "plms"}, ["sampler"], "choice"),
        ({"prompt": "x", "tags": []}, ["tags"], "too_short"),
        ({"prompt": "x", "tags": ["ok", "NOT"]}, ["tags", 1], "string_pattern_mismatch"),
        ({"prompt": "x", "sizes": [1, 5]}, ["sizes", 1], "less_than_equal"),
        ({"prompt": "x", "flag": "true"}, ["flag"], "bool_type"),
        ({"prompt": "x", "seed": "1"}, ["seed"], "int_type"),
        ({"prompt": "x", "image": 3}, ["image"], "string_type"),
        ({"prompt": "x", "bogus": 1}, ["bogus"], "unknown_input"),
        ({}, ["prompt"], "missing"),
    ],
)
def test_each_constraint_is_enforced(
    payload: dict[str, object], loc: list[object], kind: str
) -> None:
    [detail] = errors_of(payload)
    assert detail["loc"] == loc
    assert detail["type"] == kind


def test_ints_are_accepted_for_floats() -> None:
    assert signature().validate({"prompt": "x", "scale": 3})["scale"] == 3.0


def test_unknown_input_lists_the_valid_names() -> None:
    [detail] = errors_of({"prompt": "x", "promt": "typo"})
    assert detail["msg"].startswith("unknown input 'promt'; valid inputs are: prompt, steps")


def test_regex_must_match_the_whole_value() -> None:
    class M:
        def predict(self, code: str = Input(regex=r"\d{3}")) -> str: ...

    sig = build_signature(M.predict)
    assert sig.validate({"code": "123"}) == {"code": "123"}
    with pytest.raises(InputError):
        sig.validate({"code": "1234"})


def test_plain_defaults_and_required_parameters_without_input() -> None:
    class M:
        def predict(self, text: str, n: int = 3) -> str: ...

    sig = build_signature(M.predict)
    assert sig.validate({"text": "a"}) == {"text": "a", "n": 3}
    assert sig.fields["text"].required


def test_string_annotations_are_resolved() -> None:
    namespace: dict[str, object] = {"Input": Input}
    exec(
        "from __future__ import annotations\n"
        "class M:\n"
        "    def predict(self, x: int = Input(default=1, le=5)) -> str: ...\n",
        namespace,
    )
    sig = build_signature(namespace["M"].predict)  # type: ignore[attr-defined]
    assert sig.fields["x"].type_name == "int"


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            "x: int = Input(default=9, le=5)",
            "default of parameter 'x' (9) breaks its own constraints",
        ),
        ("x: str = Input(default='no', choices=['a'])", "default of parameter 'x'"),
        ("x: str = Input(default='A', regex='[a-z]')", "default of parameter 'x'"),
        ("x: list[int] = Input(default=[1, 2, 3], max_items=2)", "default of parameter 'x'"),
        ("x: int = Input(default='3')", "default of parameter 'x'"),
        ("x: int = Input(default=None)", "defaults to None but its type does not allow None"),
        ("x: str = Input(ge=1)", "ge applies to int, float inputs"),
        ("x: int = Input(min_length=1)", "min_length applies to str, Secret inputs, not int"),
        ("x: int = Input(regex='a')", "regex applies to str inputs (each item, in a list)"),
        ("x: str = Input(regex='(')", "does not compile"),
        ("x: str = Input(min_items=1)", "min_items applies to list inputs"),
        ("x: Path = Input(choices=['a'])", "choices applies to"),
        ("x: set = Input(default=set())", "supported input types are"),
        ("x: dict[str, int] = Input(default={})", "supported input types are"),
        ("x: list[set] = Input(default=[])", "supported input types are"),
        ("x: list = Input(default=[], min_length=0, min_items=0)", "give the number of items once"),
        ("x: int = Input(gte=1)", "Input() has no keyword 'gte' (did you mean 'ge'?)"),
        ("x = Input(default=1)", "has no type annotation"),
        ("upload_webhook: str = ''", "reserved request key"),
        ("*args: int", "cannot be served"),
    ],
)
def test_unservable_signatures_fail_at_load_naming_the_parameter(source: str, message: str) -> None:
    namespace: dict[str, object] = {"Input": Input, "Path": Path}
    exec(f"class M:\n    def predict(self, {source}): ...\n", namespace)
    with pytest.raises(SignatureError) as caught:
        build_signature(namespace["M"].predict)  # type: ignore[attr-defined]
    assert message in str(caught.value)


def test_input_rejects_contradictory_constraints() -> None:
    with pytest.raises(ValueError, match="ge must not be greater than le"):
        Input(ge=5, le=1)
    with pytest.raises(ValueError, match="min_length must not be greater"):
        Input(min_length=5, max_length=1)
    with pytest.raises(ValueError, match="at least one choice"):
        Input(choices=[])


class Outputs:
    def value(self) -> dict: ...
    def nothing(self): ...
    def one(self) -> Path: ...
    def many(self) -> list[Path]: ...
    def iterator(self) -> collections.abc.Iterator[str]: ...
    def file_stream(self) -> collections.abc.Iterator[Path]: ...
    def pydantic(self) -> BaseModel: ...

    def generator(self):
        yield 1

    async def agen(self):
        yield 1


@pytest.mark.parametrize(
    ("method", "kind", "items_are_files"),
    [
        ("value", OutputKind.VALUE, False),
        ("nothing", OutputKind.VALUE, False),
        ("one", OutputKind.FILE, False),
        ("many", OutputKind.FILES, False),
        ("iterator", OutputKind.STREAM, False),
        ("file_stream", OutputKind.STREAM, True),
        ("pydantic", OutputKind.VALUE, False),
        ("generator", OutputKind.STREAM, False),
        ("agen", OutputKind.STREAM, False),
    ],
)
def test_output_kinds(method: str, kind: OutputKind, items_are_files: bool) -> None:
    sig = build_signature(getattr(Outputs, method))
    assert sig.output_kind is kind
    assert sig.output_is_file is items_are_files


def test_json_schema_is_valid_and_describes_every_input() -> None:
    schema = signature().json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert [props[name]["x-order"] for name in props] == list(range(len(props)))
    assert props["steps"]["minimum"] == 1 and props["steps"]["maximum"] == 50
    assert props["tags"]["items"]["pattern"] == "^(?:[a-z]+)$"
    assert props["tags"]["minItems"] == 1
    assert props["sampler"]["enum"] == ["ddim", "euler"]
    assert props["token"]["format"] == "password"
    assert "default" not in props["token"]  # never show a secret
    assert props["image"]["anyOf"][0] == {"type": "string", "format": "uri"}
    assert props["attachments"]["items"] == {"type": "string", "format": "uri"}
    assert schema["required"] == ["prompt"]


def test_compare_signatures_names_each_difference() -> None:
    class M:
        def predict(self, a: int = 1, b: str = "") -> str: ...
        def generate(self, a: str = "", c: int = 2): ...

    problems = compare_signatures(build_signature(M.predict), build_signature(M.generate))
    assert problems == [
        "'a' is int in predict() but str in generate()",
        "generate() has no parameter 'b'",
        "predict() has no parameter 'c'",
    ]


def test_signatures_of_a_transformer_take_preprocess_inputs_and_postprocess_output() -> None:
    class Transformer:
        def preprocess(self, text: str = Input(min_length=1)) -> dict: ...
        def postprocess(self, response) -> list[Path]: ...  # type: ignore[no-untyped-def]

    signatures = signatures_of(Transformer)
    assert list(signatures) == ["preprocess"]
    assert list(signatures["preprocess"].fields) == ["text"]
    assert signatures["preprocess"].output_kind is OutputKind.FILES
    assert model_schema("t", signatures)["methods"]["preprocess"]["path"] == "/v1/models/t:predict"


@pytest.mark.parametrize(
    ("methods", "message"),
    [
        ({}, "has no predict() method"),
        ({"preprocess": lambda self: {}}, "defines both preprocess() and postprocess()"),
        (
            {
                "preprocess": lambda self: {},
                "postprocess": lambda self, r: r,
                "predict": lambda self: 1,
            },
            "and no predict() or generate()",
        ),
    ],
)
def test_signatures_of_rejects_incomplete_classes(methods: dict[str, object], message: str) -> None:
    with pytest.raises(SignatureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        signatures_of(type("M", (), methods))


# -- kservehelper 2.0's shapes: bare list/dict, min_items/max_items, batch inputs ------------


class Shapes:
    def predict(
        self,
        items: list = Input(default=[], max_items=3),
        typed: List = Input(default=[1, "two"]),  # noqa: UP006 (2.0's spelling, on purpose)
        options: dict = Input(default={}),
        settings: Optional[Dict] = None,  # noqa: UP006
        anything: Any = None,
        sizes: list[int] = Input(default=[1], min_items=1, max_items=2, ge=0),
    ) -> dict: ...


def test_bare_list_and_dict_take_any_json_values() -> None:
    sig = build_signature(Shapes.predict)
    payload = {"items": [1, "a", {"b": [None]}], "options": {"k": [1, {"x": True}]}, "anything": 3}
    kwargs = sig.validate(payload)
    assert kwargs["items"] == [1, "a", {"b": [None]}]
    assert kwargs["options"] == {"k": [1, {"x": True}]}
    assert kwargs["typed"] == [1, "two"] and kwargs["settings"] is None
    assert [sig.fields[n].type_name for n in sig.fields] == [
        "list",
        "list",
        "dict",
        "dict",
        "Any",
        "list[int]",
    ]


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"items": [1, 2, 3, 4]}, ["items"], "too_long"),
        ({"items": {"a": 1}}, ["items"], "list_type"),
        ({"options": [1]}, ["options"], "dict_type"),
        ({"sizes": []}, ["sizes"], "too_short"),
        ({"sizes": [1, 2, 3]}, ["sizes"], "too_long"),
        ({"sizes": [-1]}, ["sizes", 0], "greater_than_equal"),
    ],
)
def test_bare_shapes_and_item_counts_are_enforced(
    payload: dict[str, object], loc: list[object], kind: str
) -> None:
    with pytest.raises(InputError) as caught:
        build_signature(Shapes.predict).validate(payload)
    [detail] = caught.value.detail
    assert (detail["loc"], detail["type"]) == (loc, kind)


def test_item_counts_are_in_the_schema() -> None:
    schema = build_signature(Shapes.predict).json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert props["items"]["type"] == "array" and props["items"]["maxItems"] == 3
    assert props["items"]["items"] == {}  # items unchecked
    assert props["options"]["type"] == "object"
    assert (props["sizes"]["minItems"], props["sizes"]["maxItems"]) == (1, 2)
    assert props["sizes"]["items"]["minimum"] == 0
    assert [props[n]["x-kind"] for n in ("items", "options", "sizes")] == [
        "list",
        "dict",
        "list[int]",
    ]


def test_min_length_on_a_list_is_the_old_spelling_with_one_deprecation_warning() -> None:
    class OldSpelling:
        def predict(self, tags: list[str] = Input(default=["a"], min_length=1, max_length=2)): ...

    with pytest.warns(DeprecationWarning, match="write min_items= for min_length=") as caught:
        sig = build_signature(OldSpelling.predict)
    assert caught[0].filename == __file__  # points at the model's own code
    assert (sig.fields["tags"].spec.min_items, sig.fields["tags"].spec.max_items) == (1, 2)
    with pytest.raises(InputError):
        sig.validate({"tags": ["a", "b", "c"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        build_signature(OldSpelling.predict)  # once per process


class Batch:
    """kservehelper 2.0's batch inputs, exactly as its tests/test_batch_inputs.py writes them."""

    def predict(
        self,
        param: str = Input(description="global param", default="test_param"),
        batch: list = [  # noqa: B006 (2.0's shape: the default describes one item)
            {
                "prompt": Input(description="Input prompt", default="standing, (full body)++"),
                "param_a": Input(description="param", default=1),
                "param_b": Input(description="param", default=1, ge=0, le=2),
            }
        ],
    ) -> Dict:  # noqa: UP006
        return {"outputs": batch, "extra": param}


def test_batch_items_are_validated_one_by_one_with_their_defaults_filled_in() -> None:
    sig = build_signature(Batch.predict)
    batch = [{"prompt": "a", "param_a": 3}, {"prompt": "b", "param_b": 2}]
    kwargs = sig.validate({"batch": batch, "param": "test", "upload_webhook": "http://x"})
    assert kwargs == {
        "param": "test",
        "batch": [
            {"prompt": "a", "param_a": 3, "param_b": 1},
            {"prompt": "b", "param_a": 1, "param_b": 2},
        ],
    }
    assert batch == [{"prompt": "a", "param_a": 3}, {"prompt": "b", "param_b": 2}]  # untouched


@pytest.mark.parametrize(
    ("payload", "loc", "kind", "message"),
    [
        ({"batch": [{"param_b": 3}]}, ["batch", 0, "param_b"], "less_than_equal", "less than"),
        (
            {"batch": [{}, {"param_a": "3"}]},
            ["batch", 1, "param_a"],
            "int_type",
            "valid integer",
        ),
        (
            {"batch": [{"promt": "a"}]},
            ["batch", 0, "promt"],
            "unknown_key",
            "unknown key 'promt'; valid keys are: prompt, param_a, param_b",
        ),
        ({"batch": ["a"]}, ["batch", 0], "model_type", "valid dictionary"),
        ({"batch": {"prompt": "a"}}, ["batch"], "list_type", "valid list"),
        ({}, ["batch"], "missing", "this input is required"),
    ],
)
def test_batch_errors_are_located_by_item_and_key(
    payload: dict[str, object], loc: list[object], kind: str, message: str
) -> None:
    with pytest.raises(InputError) as caught:
        build_signature(Batch.predict).validate(payload)
    [detail] = caught.value.detail
    assert (detail["loc"], detail["type"]) == (loc, kind)
    assert message in detail["msg"]


def test_batch_schema_describes_the_item_object() -> None:
    schema = build_signature(Batch.predict).json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert "$defs" not in schema  # the item object is inline: each input reads on its own
    batch = schema["properties"]["batch"]
    assert batch["type"] == "array" and batch["x-kind"] == "batch"
    item = batch["items"]
    assert item["type"] == "object" and item["additionalProperties"] is False
    assert list(item["properties"]) == ["prompt", "param_a", "param_b"]
    assert item["properties"]["param_b"] == {
        "default": 1,
        "description": "param",
        "maximum": 2,
        "minimum": 0,
        "title": "Param B",
        "type": "integer",
    }
    assert schema["required"] == ["batch"]
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"batch": [{"prompt": "a", "param_b": 2}]})
    assert not validator.is_valid({"batch": [{"param_b": 3}]})


def test_batch_docs_list_each_item_key() -> None:
    docs = build_signature(Batch.predict).docs()
    assert docs["batch"]["type"] == "batch" and docs["batch"]["required"] is True
    assert docs["batch"]["items"]["param_b"] == {
        "type": "int",
        "description": "param",
        "required": False,
        "default": 1,
        "ge": 0,
        "le": 2,
    }
    json.dumps(docs)  # JSON-able: the item template never leaks into the docs


def test_batch_item_types_come_from_defaults_then_constraints() -> None:
    class Kinds:
        def predict(
            self,
            rows: list[dict] = Input(
                default=[
                    {
                        "flag": Input(default=False),
                        "scale": Input(default=7.5),
                        "tags": Input(default=["a"]),
                        "extra": Input(default={}),
                        "note": Input(default=None),
                        "strength": Input(ge=0, le=1),
                        "code": Input(regex="[a-z]+"),
                        "free": Input(),
                    }
                ],
                description="rows",
                max_items=2,
            ),
        ): ...

    sig = build_signature(Kinds.predict)
    assert {k: f.type_name for k, f in sig.fields["rows"].items.items()} == {
        "flag": "bool",
        "scale": "float",
        "tags": "list",
        "extra": "dict",
        "note": "Any",
        "strength": "float",
        "code": "str",
        "free": "Any",
    }
    row = {"strength": 1, "code": "ab", "free": [1]}
    assert sig.validate({"rows": [row]})["rows"][0] == {
        "flag": False,
        "scale": 7.5,
        "tags": ["a"],
        "extra": {},
        "note": None,
        "strength": 1.0,
        "code": "ab",
        "free": [1],
    }
    with pytest.raises(InputError) as caught:
        sig.validate({"rows": [row, row, row]})
    assert caught.value.detail[0]["type"] == "too_long"  # max_items bounds the batch


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("b: str = [{'k': Input(default=1)}]", "is a batch input"),
        ("b: list = [{'k': Input(default=5, le=2)}]", "default of parameter 'b[].k' (5)"),
        ("b: list = [{'k': Input(default=(1,))}]", "is not a JSON value"),
        ("b: list = [{'k': Input(default=1, gte=0)}]", "parameter 'b[].k': Input() has no"),
        ("b: list = [{'k': Input(default='a', ge=0)}]", "ge applies to int, float"),
        ("b: list = [{'k': Input()}, {'j': Input()}]", "a list of exactly one dict"),
        ("b: dict = {'k': Input()}", "only read in a batch template"),
    ],
)
def test_bad_batch_templates_fail_at_load(source: str, message: str) -> None:
    namespace: dict[str, object] = {"Input": Input}
    exec(f"class M:\n    def predict(self, {source}): ...\n", namespace)
    with pytest.raises(SignatureError) as caught:
        build_signature(namespace["M"].predict)  # type: ignore[attr-defined]
    assert message in str(caught.value)


# -- streams written the seed's way --------------------------------------------------------


class Wrapped:
    def unannotated(self, repeat: int = 3):  # type: ignore[no-untyped-def]
        def _generator():  # type: ignore[no-untyped-def]
            for _ in range(repeat):
                yield "Hello World!"

        return KServeModel.wrap_generator(_generator)

    def helper_returns_a_value(self):  # type: ignore[no-untyped-def]
        def wrap_generator(g):  # type: ignore[no-untyped-def]
            return {"not": "a stream"}

        return {"value": wrap_generator}

    async def bare_name(self):  # type: ignore[no-untyped-def]
        if self:
            return wrap_generator(iter([1]))
        return None

    def concatenated(self) -> ConcatenateIteratorAlias[str]: ...


class KServeModel:  # stands in for kservehelper's: the schema is read from the source alone
    @staticmethod
    def wrap_generator(g):  # type: ignore[no-untyped-def]
        return g


def wrap_generator(g):  # type: ignore[no-untyped-def]
    return g


@pytest.mark.parametrize(
    ("method", "kind"),
    [
        ("unannotated", OutputKind.STREAM),
        ("helper_returns_a_value", OutputKind.VALUE),
        ("bare_name", OutputKind.STREAM),
        ("concatenated", OutputKind.STREAM),
    ],
)
def test_a_method_returning_wrap_generator_is_a_stream(method: str, kind: OutputKind) -> None:
    sig = build_signature(getattr(Wrapped, method))
    assert sig.output_kind is kind
    assert model_schema("m", {"predict": sig})["output"]["kind"] == kind.value


def test_methods_without_source_are_values() -> None:
    namespace: dict[str, object] = {}
    exec("def predict(self):\n    return KServeModel.wrap_generator(None)\n", namespace)
    assert build_signature(namespace["predict"]).output_kind is OutputKind.VALUE  # type: ignore[arg-type]
