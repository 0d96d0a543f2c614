"""kservehelper 2.0's model shapes and clients, over real HTTP and the command line.

The model (tests/models/shapes_2_0) is written as for 2.0: a batch input, bare list/dict
inputs, and a name given only by its `KServeModel.serve("test-shapes", Model)` call.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import httpx
import jsonschema
import pytest

from tests.conftest import EXAMPLES, TEST_MODELS, RunningServer, free_port, run_cli, start_server

FOLDER = TEST_MODELS / "shapes_2_0"
NAME = "test-shapes"  # from KServeModel.serve("test-shapes", Model); the folder says shapes-2-0
BATCH = [{"prompt": "test a", "param_a": 3}, {"prompt": "test b", "param_b": 2}]
FILLED = [
    {"prompt": "test a", "param_a": 3, "param_b": 1},
    {"prompt": "test b", "param_a": 1, "param_b": 2},
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """`kservehelper serve FOLDER` as a 2.0 user runs it: no --name, no config.yaml."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("shapes") / "server.log"
    args = [sys.executable, "-m", "kservehelper", "serve", str(FOLDER), "--port", str(port)]
    running = start_server([*args, "--host", "127.0.0.1"], NAME, log_path, port)
    yield running
    running.stop()


def test_the_model_is_served_under_its_serve_call_name(server: RunningServer) -> None:
    response = httpx.post(f"{server.url}/v1/models/{NAME}:predict", json={"batch": BATCH})
    assert response.status_code == 200, response.text
    folder_named = httpx.post(f"{server.url}/v1/models/shapes-2-0:predict", json={"batch": BATCH})
    assert folder_named.status_code == 404
    assert NAME in folder_named.json()["error"]  # "served models: test-shapes"


def test_batch_items_are_validated_and_filled_with_their_defaults(server: RunningServer) -> None:
    payload = {"batch": BATCH, "param": "test", "items": [1, "a", {"b": None}], "options": {"k": 1}}
    response = httpx.post(server.predict_url, json=payload, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["outputs"] == FILLED
    assert body["extra"] == "test"
    assert body["items"] == [1, "a", {"b": None}] and body["options"] == {"k": 1}


@pytest.mark.parametrize(
    ("payload", "loc", "kind"),
    [
        ({"batch": [{"prompt": "a"}, {"param_b": 3}]}, ["batch", 1, "param_b"], "less_than_equal"),
        ({"batch": [{"promt": "a"}]}, ["batch", 0, "promt"], "unknown_key"),
        ({"batch": []}, None, None),  # an empty batch is valid
        ({"batch": [{}], "items": [1, 2, 3, 4]}, ["items"], "too_long"),
        ({"batch": [{}], "options": [1]}, ["options"], "dict_type"),
        ({}, ["batch"], "missing"),
    ],
)
def test_bad_shapes_are_400s_located_by_item_and_key(
    server: RunningServer, payload: dict[str, object], loc: list[object] | None, kind: str | None
) -> None:
    response = httpx.post(server.predict_url, json=payload, timeout=30)
    if loc is None:
        assert response.status_code == 200, response.text
        return
    assert response.status_code == 400, response.text
    [detail] = response.json()["detail"]
    assert (detail["loc"], detail["type"]) == (loc, kind)


def test_the_served_schema_describes_the_batch_item(server: RunningServer) -> None:
    document = httpx.get(f"{server.url}/v1/models/{NAME}/schema", timeout=30).json()
    schema = document["input"]
    jsonschema.Draft202012Validator.check_schema(schema)
    item = schema["properties"]["batch"]["items"]
    assert item["properties"]["param_b"]["maximum"] == 2
    assert schema["properties"]["items"]["maxItems"] == 3
    assert jsonschema.Draft202012Validator(schema).is_valid({"batch": BATCH})
    docs = httpx.get(f"{server.url}/v1/docs/{NAME}", timeout=30).json()
    assert docs["batch"]["items"]["param_b"]["le"] == 2


JSON_BODY = json.dumps({"batch": BATCH, "param": "test"}).encode()


@pytest.mark.parametrize(
    "content_type",
    [
        None,
        "application/x-www-form-urlencoded",  # curl -d's default
        "text/plain; charset=utf-8",
        "application/json",
        "application/octet-stream",
    ],
)
def test_a_json_body_is_accepted_whatever_its_content_type(
    server: RunningServer, content_type: str | None
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = httpx.post(server.predict_url, content=JSON_BODY, headers=headers, timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["outputs"] == FILLED


@pytest.mark.parametrize(
    ("body", "content_type", "says"),
    [
        (b"batch=1&param=x", "application/x-www-form-urlencoded", "sent as application/x-www"),
        (b"hello", "text/plain", "sent as text/plain"),
        (b'{"batch": [', "application/json", "not valid JSON"),
    ],
)
def test_a_body_that_is_not_json_is_a_400_saying_how_to_send_it(
    server: RunningServer, body: bytes, content_type: str, says: str
) -> None:
    headers = {"Content-Type": content_type}
    response = httpx.post(server.predict_url, content=body, headers=headers, timeout=30)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("the request body is not valid JSON")
    assert says in error and "Content-Type: application/json" in error
    assert httpx.post(server.predict_url, json={"batch": []}).status_code == 200  # still serving


def test_2_0_clients_curl_d_at_input_json(server: RunningServer, tmp_path: pathlib.Path) -> None:
    """The 2.0 examples' test.sh: `curl URL -d @input.json` (form content type, newlines
    stripped by curl)."""
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("curl is not installed")
    (tmp_path / "input.json").write_text(json.dumps({"batch": BATCH}, indent=2))
    done = subprocess.run(
        [curl, "-s", "-w", "\n%{http_code}", server.predict_url, "-d", "@input.json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    body, _, status = done.stdout.rpartition("\n")
    assert status == "200", done.stdout
    assert json.loads(body)["outputs"] == FILLED


# -- the command line ----------------------------------------------------------------------


def test_predict_reads_batch_items_lists_and_objects_as_json() -> None:
    result = run_cli(
        "predict",
        str(FOLDER),
        "-i",
        'batch={"prompt": "test a", "param_a": 3}',
        "-i",
        'batch={"prompt": "test b", "param_b": 2}',
        "-i",
        'items=[1, "a"]',
        "-i",
        "items=7",
        "-i",
        'options={"k": [1]}',
    )
    assert result.returncode == 0, result.stderr
    body = json.loads(result.stdout)
    assert body["outputs"] == FILLED
    assert body["items"] == [1, "a", 7]
    assert body["options"] == {"k": [1]}


def test_predict_reports_a_bad_batch_item_by_item_and_key() -> None:
    result = run_cli("predict", str(FOLDER), "-i", 'batch={"param_b": 5}')
    assert result.returncode != 0
    assert "batch.0.param_b" in result.stderr
    assert "Traceback" not in result.stderr


def test_predict_takes_a_json_array_for_a_list_of_strings() -> None:
    result = run_cli("predict", str(EXAMPLES / "hello"), "-i", "name=Ada", "-i", 'tags=["a","b"]')
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tags"] == ["a", "b"]


def test_schema_names_the_model_and_reports_wrap_generator_as_a_stream() -> None:
    shapes = run_cli("schema", str(FOLDER))
    assert shapes.returncode == 0, shapes.stderr
    assert json.loads(shapes.stdout)["name"] == NAME
    streaming = run_cli("schema", str(EXAMPLES / "streaming"))
    assert streaming.returncode == 0, streaming.stderr
    document = json.loads(streaming.stdout)
    assert document["output"] == {"kind": "stream", "items": "value"}  # predict: wrap_generator
    assert document["methods"]["generate"]["output"]["kind"] == "stream"
