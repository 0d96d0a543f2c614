"""Unit tests: the input-kind registry (schema/kinds.py), and `-i name=VALUE` read by each
input's kind (schema/cli_inputs.py)."""

from __future__ import annotations

import base64
import collections.abc
import decimal
import pathlib
from collections.abc import Iterator
from typing import Any, Optional

import jsonschema
import pytest

from kservehelper.build.project import parse_image_inputs
from kservehelper.errors import InputError, SignatureError
from kservehelper.schema import kinds
from kservehelper.schema.kinds import InputKind, find_kind, kind_of_type_name
from kservehelper.schema.signature import build_signature, model_schema
from kservehelper.serving.local import parse_cli_inputs
from kservehelper.types import MISSING, File, Input, Path, Secret


@pytest.mark.parametrize(
    ("annotation", "default", "name"),
    [
        (str, MISSING, "str"),
        (int, MISSING, "int"),
        (float, MISSING, "float"),
        (bool, MISSING, "bool"),
        (Secret, MISSING, "Secret"),
        (Path, MISSING, "Path"),
        (pathlib.Path, MISSING, "Path"),
        (File, MISSING, "File"),
        (list, MISSING, "list"),
        (list[Any], MISSING, "list"),
        (collections.abc.Sequence, MISSING, "list"),
        (dict, MISSING, "dict"),
        (dict[str, Any], MISSING, "dict"),
        (Any, MISSING, "Any"),
        (list, [{"k": Input(default=1)}], "batch"),
        (list[dict], [{"k": Input(default=1)}], "batch"),
    ],
)
def test_each_annotation_is_one_kind(annotation: Any, default: Any, name: str) -> None:
    kind = find_kind(annotation, default)
    assert kind is not None and kind.name == name


@pytest.mark.parametrize("annotation", [set, tuple, dict[str, int], list[int], bytes])
def test_unsupported_annotations_have_no_kind(annotation: Any) -> None:
    assert find_kind(annotation) is None  # list[int] is list[...] of int: fields.py wraps it


def test_kind_names_are_unique_and_readable_back() -> None:
    names = [k.name for k in kinds.registered_kinds()]
    assert len(names) == len(set(names))
    assert kind_of_type_name("list[Path]") == (kinds.PATH, True)
    assert kind_of_type_name("batch") == (kinds.BATCH, False)
    assert kind_of_type_name("nope") is None
    with pytest.raises(ValueError, match="registered already"):
        kinds.register(InputKind("str", lambda a, d: False))


DECIMAL = InputKind(
    name="Decimal",
    recognise=lambda annotation, default: annotation is decimal.Decimal,
    value_type=str,
    convert=decimal.Decimal,
    keywords=frozenset({"choices", "regex"}),
    schema={"format": "decimal"},
    cli=kinds.READ_TEXT,
)


@pytest.fixture
def decimal_kind() -> Iterator[InputKind]:
    kinds.register(DECIMAL)
    yield DECIMAL
    kinds.unregister("Decimal")


@pytest.mark.usefixtures("decimal_kind")
def test_adding_a_kind_is_one_registry_entry() -> None:
    class Model:
        def predict(
            self,
            price: decimal.Decimal = Input(description="a price", choices=["1.10", "2.20"]),
            prices: Optional[list[decimal.Decimal]] = Input(
                default=None, max_items=2, regex=r"\d+\.\d+"
            ),
        ) -> dict: ...

    sig = build_signature(Model.predict)
    assert sig.validate({"price": "1.10"})["price"] == decimal.Decimal("1.10")
    with pytest.raises(InputError) as caught:
        sig.validate({"price": "3.30"})
    assert caught.value.detail[0]["type"] == "choice"
    assert sig.validate({"price": "2.20", "prices": ["0.5"]})["prices"] == [decimal.Decimal("0.5")]
    with pytest.raises(InputError) as caught:
        sig.validate({"price": "2.20", "prices": ["1e3"]})
    assert caught.value.detail[0]["loc"] == ["prices", 0]

    schema = sig.json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["properties"]["price"]["format"] == "decimal"
    assert schema["properties"]["price"]["x-kind"] == "Decimal"
    assert schema["properties"]["prices"]["anyOf"][0]["items"]["format"] == "decimal"
    assert sig.docs()["prices"]["type"] == "list[Decimal]"
    # the command line reads it by its kind (text: "1.10" stays a string, not the float 1.1)
    assert parse_cli_inputs(sig, ["price=1.10", "prices=0.5", "prices=0.25"]) == {
        "price": "1.10",
        "prices": ["0.5", "0.25"],
    }
    with pytest.raises(SignatureError, match="ge applies to int, float inputs"):

        class Bad:
            def predict(self, price: decimal.Decimal = Input(ge=0)) -> dict: ...

        build_signature(Bad.predict)


def test_an_unregistered_kind_is_refused_with_the_supported_list() -> None:
    class Model:
        def predict(self, price: decimal.Decimal) -> dict: ...

    with pytest.raises(SignatureError) as caught:
        build_signature(Model.predict)
    assert "supported input types are str, int, float, bool, Secret, File, Path" in str(
        caught.value
    )


# -- `-i name=VALUE` ------------------------------------------------------------------------


class Everything:
    def predict(
        self,
        text: str = "",
        count: int = 0,
        scale: float = 1.0,
        flag: bool = False,
        token: Secret = Input(default="x"),
        image: Optional[Path] = None,
        tags: list[str] = Input(default=[]),
        sizes: list[int] = Input(default=[]),
        files: list[File] = Input(default=[]),
        items: list = Input(default=[]),
        options: dict = Input(default={}),
        batch: list = [{"prompt": Input(default="p"), "n": Input(default=1)}],  # noqa: B006
    ) -> dict: ...


SIG = build_signature(Everything.predict)


def parse(*pairs: str) -> dict[str, Any]:
    return parse_cli_inputs(SIG, list(pairs))


def test_values_are_read_by_kind() -> None:
    assert parse("text=42", "count=3", "scale=2.5", "flag=true", "token=007") == {
        "text": "42",
        "count": 3,
        "scale": 2.5,
        "flag": True,
        "token": "007",
    }
    assert parse("count=three") == {"count": "three"}  # validation then says it is not an int


def test_lists_collect_repeats_and_take_json_arrays() -> None:
    assert parse("tags=a", "tags=b") == {"tags": ["a", "b"]}
    assert parse('tags=["a","b"]', "tags=c") == {"tags": ["a", "b", "c"]}
    assert parse("tags=[not json") == {"tags": ["[not json"]}
    assert parse("sizes=[1,2]", "sizes=3") == {"sizes": [1, 2, 3]}
    assert parse('items=[1,"a"]', 'items={"k":1}', "items=word") == {
        "items": [1, "a", {"k": 1}, "word"]
    }
    assert parse('options={"k":[1]}') == {"options": {"k": [1]}}


def test_batch_items_are_json_objects() -> None:
    payload = parse('batch={"prompt":"a"}', 'batch=[{"n":2},{"n":3}]')
    assert payload == {"batch": [{"prompt": "a"}, {"n": 2}, {"n": 3}]}
    assert SIG.validate(payload)["batch"][0] == {"prompt": "a", "n": 1}


def test_files_are_local_paths_or_urls(tmp_path: pathlib.Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG fake")
    payload = parse(
        "image=p.png", "files=https://example.com/a.png", "files=@p.png", "files=data:,x"
    )
    assert payload == {
        "image": str(picture),
        "files": ["https://example.com/a.png", str(picture), "data:,x"],
    }


def test_at_file_reads_by_kind(tmp_path: pathlib.Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xffbinary")
    numbers = tmp_path / "numbers.json"
    numbers.write_text("[4, 5]")
    payload = parse(f"text=@{blob}", f"sizes=@{numbers}", f"options=@{numbers}")
    assert payload["text"] == base64.b64encode(b"\x00\xffbinary").decode()
    assert payload["sizes"] == [4, 5]
    assert payload["options"] == [4, 5]  # read as JSON; validation says it is not an object


@pytest.mark.parametrize(
    ("pair", "message"),
    [
        ("count", "write inputs as name=value"),
        ("=3", "write inputs as name=value"),
        ("count=@/no/such/file", "no such file"),
        ("image=@/no/such/file", "no such file"),
    ],
)
def test_cli_mistakes_are_input_errors(pair: str, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse(pair)


def test_a_binary_file_for_a_json_input_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x89PNG\xff\xfe")
    with pytest.raises(InputError, match="is not a text file; this input takes JSON"):
        parse(f"count=@{blob}")


def test_unknown_names_are_read_as_json_or_text() -> None:
    assert parse("bogus=3", "other=word") == {"bogus": 3, "other": "word"}


def test_image_inputs_read_the_served_schema_the_same_way(tmp_path: pathlib.Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(b"\x89PNG fake")
    document = model_schema("m", {"predict": SIG})
    payload = parse_image_inputs(
        [
            "text=42",
            "count=3",
            f"image={picture}",
            f"files=@{picture}",
            "files=https://example.com/a.png",
            'tags=["a","b"]',
            'batch={"n":2}',
        ],
        document,
    )
    uri = "data:image/png;base64," + base64.b64encode(picture.read_bytes()).decode()
    assert payload == {
        "text": "42",
        "count": 3,
        "image": uri,  # the container cannot read the host's paths
        "files": [uri, "https://example.com/a.png"],
        "tags": ["a", "b"],
        "batch": [{"n": 2}],
    }
    with pytest.raises(InputError, match="no such file"):
        parse_image_inputs(["image=/no/such/file.png"], document)
