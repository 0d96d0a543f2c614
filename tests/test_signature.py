"""Unit tests: a method's signature → validation, defaults, output kinds, schema."""

from __future__ import annotations

import collections.abc
from typing import Optional

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
