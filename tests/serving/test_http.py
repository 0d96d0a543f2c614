"""Requests and responses over real HTTP to the real KServe model server."""

from __future__ import annotations

import httpx
import jsonschema
import pytest

from tests.conftest import EXAMPLES, TEST_MODELS, RunningServer, ServeFactory


@pytest.fixture(scope="module")
def hello(serve_model: ServeFactory) -> RunningServer:
    return serve_model(EXAMPLES / "hello", "hello")


@pytest.fixture(scope="module")
def values(serve_model: ServeFactory) -> RunningServer:
    return serve_model(TEST_MODELS / "behaviours", "values", "--class", "Values")


@pytest.fixture(scope="module")
def failing(serve_model: ServeFactory) -> RunningServer:
    return serve_model(TEST_MODELS / "behaviours", "failing", "--class", "Failing")


def post(server: RunningServer, body: object, **kwargs: object) -> httpx.Response:
    return httpx.post(server.predict_url, json=body, timeout=30, **kwargs)  # type: ignore[arg-type]


def test_dict_output_is_returned_as_is_with_running_time(hello: RunningServer) -> None:
    response = post(hello, {"name": "Ada", "times": 2, "tags": ["x"]})
    assert response.status_code == 200
    body = response.json()
    assert body["greeting"] == "Hello, Ada! Hello, Ada!"
    assert body["tags"] == ["x"]
    assert body["code"] == "AA-000"  # the default
    assert body["running_time"].endswith("s")
    assert float(body["running_time"][:-1]) >= 0


def test_upload_webhook_is_accepted_and_not_passed_to_predict(hello: RunningServer) -> None:
    response = post(hello, {"name": "Ada", "upload_webhook": "https://uploads.example.com/upload"})
    assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("str", "hello"),
        ("int", 42),
        ("list", [1, "two", 3.0]),
        ("pydantic", {"label": "cat", "score": 0.9}),
        ("none", None),
    ],
)
def test_non_dict_outputs_are_wrapped(values: RunningServer, kind: str, expected: object) -> None:
    body = post(values, {"kind": kind}).json()
    assert body["output"] == expected
    assert "running_time" in body


def test_unjsonable_output_is_a_500_naming_the_problem(values: RunningServer) -> None:
    response = post(values, {"kind": "unjsonable"})
    assert response.status_code == 500
    assert "cannot be sent as JSON" in response.json()["error"]
    assert post(values, {"kind": "dict"}).json()["answer"] == 42


@pytest.mark.parametrize(
    ("body", "field", "error_type", "message_part"),
    [
        ({"name": "Ada", "times": "two"}, "times", "int_type", "valid integer"),
        ({"name": "Ada", "times": 9}, "times", "less_than_equal", "less than or equal to 5"),
        ({"name": "Ada", "times": 0}, "times", "greater_than_equal", "greater than or equal to 1"),
        ({"name": "Ada", "excitement": 1.5}, "excitement", "less_than_equal", "1"),
        ({"name": "Ada", "language": "es"}, "language", "choice", "'en', 'fr', 'de'"),
        ({"name": "Ada", "code": "ab-12"}, "code", "string_pattern_mismatch", "regular expression"),
        ({"name": ""}, "name", "string_too_short", "at least 1 character"),
        ({"name": "x" * 41}, "name", "string_too_long", "at most 40"),
        ({"name": "Ada", "tags": ["a", "b", "c", "d"]}, "tags", "too_long", "at most 3"),
        ({"name": "Ada", "shout": "yes"}, "shout", "bool_type", "valid boolean"),
        ({}, "name", "missing", "required"),
        ({"name": "Ada", "colour": "red"}, "colour", "unknown_input", "valid inputs are: name"),
    ],
)
def test_invalid_inputs_answer_400_with_details(
    hello: RunningServer,
    body: dict[str, object],
    field: str,
    error_type: str,
    message_part: str,
) -> None:
    response = post(hello, body)
    assert response.status_code == 400
    answer = response.json()
    assert field in answer["error"]
    assert "\n" not in answer["error"]
    [detail] = answer["detail"]
    assert detail["loc"] == [field]
    assert detail["type"] == error_type
    assert message_part in detail["msg"]


def test_several_invalid_inputs_are_all_reported(hello: RunningServer) -> None:
    answer = post(hello, {"times": 99, "nope": 1}).json()
    assert answer["error"].startswith("3 invalid inputs")
    assert {d["loc"][0] for d in answer["detail"]} == {"name", "times", "nope"}


def test_malformed_json_is_a_400(hello: RunningServer) -> None:
    response = httpx.post(
        hello.predict_url, content=b'{"name": ', headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json()["error"].startswith("the request body is not valid JSON")


@pytest.mark.parametrize("body", [[1, 2], "text", 3])
def test_non_object_json_is_a_400(hello: RunningServer, body: object) -> None:
    response = post(hello, body)
    assert response.status_code == 400
    assert "JSON object of named inputs" in response.json()["error"]


def test_non_json_content_type_is_a_400_with_a_fix(hello: RunningServer) -> None:
    response = httpx.post(hello.predict_url, data={"name": "Ada"})
    assert response.status_code == 400
    assert "Content-Type: application/json" in response.json()["error"]


def test_value_error_is_400_other_errors_500_and_server_keeps_serving(
    failing: RunningServer,
) -> None:
    response = post(failing, {"mode": "value"})
    assert response.status_code == 400
    assert response.json()["error"] == "the prompt is empty; write something"
    response = post(failing, {"mode": "runtime"})
    assert response.status_code == 500
    assert response.json() == {"error": "RuntimeError: CUDA out of memory (simulated)"}
    assert post(failing, {"mode": "ok"}).json()["ok"] is True
    assert httpx.get(f"{failing.url}/v1/models/failing").json()["ready"] is True


def test_unknown_model_is_a_404_naming_served_models(hello: RunningServer) -> None:
    response = httpx.post(f"{hello.url}/v1/models/nope:predict", json={})
    assert response.status_code == 404
    assert "hello" in response.json()["error"]


def test_schema_route_is_a_valid_json_schema_that_matches_validation(hello: RunningServer) -> None:
    document = httpx.get(f"{hello.url}/v1/models/hello/schema").json()
    assert document["name"] == "hello"
    assert document["output"] == {"kind": "value"}
    schema = document["input"]
    jsonschema.Draft202012Validator.check_schema(schema)
    props = schema["properties"]
    assert schema["required"] == ["name"]
    assert props["times"] == {
        "default": 1,
        "description": "How many greetings",
        "maximum": 5,
        "minimum": 1,
        "title": "Times",
        "type": "integer",
        "x-order": 1,
        "x-kind": "int",
    }
    assert props["language"]["enum"] == ["en", "fr", "de"]
    assert props["code"]["pattern"] == r"^(?:[A-Z]{2}-\d{3})$"
    assert props["tags"]["maxItems"] == 3
    validator = jsonschema.Draft202012Validator(schema)
    assert validator.is_valid({"name": "Ada", "code": "AB-123"})
    assert not validator.is_valid({"name": "Ada", "code": "AB-1234"})
    assert not validator.is_valid({"name": "Ada", "extra": 1})


def test_docs_route_lists_input_descriptions(hello: RunningServer) -> None:
    docs = httpx.get(f"{hello.url}/v1/docs/hello").json()
    assert docs["times"] == {
        "type": "int",
        "description": "How many greetings",
        "required": False,
        "default": 1,
        "ge": 1,
        "le": 5,
    }
    assert docs["language"]["choices"] == ["en", "fr", "de"]
    assert list(docs) == [
        "name",
        "times",
        "excitement",
        "language",
        "code",
        "tags",
        "shout",
        "note",
    ]


def test_kserve_routes_still_work(hello: RunningServer) -> None:
    assert httpx.get(f"{hello.url}/").json() == {"status": "alive"}
    assert httpx.get(f"{hello.url}/v1/models").json() == {"models": ["hello"]}
    assert httpx.get(f"{hello.url}/v2/health/ready").status_code == 200
