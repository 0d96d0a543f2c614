"""The HTTP surface of a real model server: which routes answer, and how every error looks."""

from __future__ import annotations

import functools

import httpx
import pytest

from tests.conftest import RunningServer, ServeFactory
from tests.security.checks import MODELS, assert_error_shape, error_of, parse_raw, raw_exchange

NAME = "secretive"


@pytest.fixture(scope="module")
def server(serve_model: ServeFactory) -> RunningServer:
    return serve_model(MODELS, NAME, "--class", "Secretive")


@pytest.fixture(scope="module")
def repository_server(serve_model: ServeFactory) -> RunningServer:
    env = {"KSERVEHELPER_ENABLE_MODEL_REPOSITORY": "1"}
    return serve_model(MODELS, "unloadable", "--class", "Secretive", env=env)


def predict(server: RunningServer) -> httpx.Response:
    return httpx.post(server.predict_url, json={"session": "s-1234"}, timeout=30)


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/v2/health/live",
        "/v2/health/ready",
        "/v2",
        "/v1/models",
        f"/v1/models/{NAME}",
        "/v2/models",
        f"/v2/models/{NAME}",
        f"/v2/models/{NAME}/ready",
        f"/v1/models/{NAME}/schema",
        f"/v1/docs/{NAME}",
        "/openapi.json",
        "/metrics",
    ],
)
def test_read_only_routes_answer(server: RunningServer, path: str) -> None:
    assert httpx.get(server.url + path, timeout=30).status_code == 200


def test_liveness_answers_json(server: RunningServer) -> None:
    for path in ("/", "/v2/health/live"):
        assert httpx.get(server.url + path).json() == {"status": "alive"}


def test_model_repository_routes_are_off_by_default(server: RunningServer) -> None:
    for action in ("unload", "load"):
        response = httpx.post(f"{server.url}/v2/repository/models/{NAME}/{action}")
        body = error_of(response, 404)
        assert "KSERVEHELPER_ENABLE_MODEL_REPOSITORY=1" in body["error"]
    assert predict(server).status_code == 200
    assert httpx.get(server.url + "/v2/health/live").status_code == 200


def test_unload_when_enabled_fails_liveness_so_the_pod_restarts(
    repository_server: RunningServer,
) -> None:
    server = repository_server
    assert httpx.get(server.url + "/v2/health/live").status_code == 200
    response = httpx.post(f"{server.url}/v2/repository/models/unloadable/unload")
    assert response.status_code == 200, response.text
    assert "unloadable" in error_of(httpx.get(server.url + "/v2/health/live"), 503)["error"]
    assert "not ready" in error_of(predict(server), 503)["error"]
    paths = httpx.get(server.url + "/openapi.json").json()["paths"]
    assert "/v2/repository/models/{model_name}/unload" in paths


def test_v2_infer_is_a_404_pointing_at_predict(server: RunningServer) -> None:
    for path in (f"/v2/models/{NAME}/infer", f"/v2/models/{NAME}/versions/1/infer"):
        response = httpx.post(server.url + path, json={"inputs": []})
        assert f"/v1/models/{NAME}:predict" in error_of(response, 404)["error"]


def test_framework_errors_are_in_the_error_shape(server: RunningServer) -> None:
    error_of(httpx.get(server.url + "/nope"), 404)
    error_of(httpx.post(f"{server.url}/v1/models/{NAME}:explain", json={}), 404)
    error_of(httpx.get(f"{server.url}/v1/models/{NAME}:predict"), 405)
    response = httpx.put(server.predict_url, json={})
    assert "POST" in error_of(response, 405)["error"] and response.headers["allow"] == "POST"
    error_of(httpx.delete(server.url + "/"), 405)
    error_of(httpx.post(f"{server.url}/v1/models/other:predict", json={}), 404)


def test_connection_level_errors_are_in_the_error_shape(server: RunningServer) -> None:
    port = server.port
    cases = [
        (b"NOT HTTP AT ALL\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET /\x00 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431),
        (b"GET / HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 700_000 + b"\r\n\r\n", 431),
        (b"POST /v1/models/secretive:predict HTTP/1.1\r\nHost: x\r\nContent-Length: x\r\n\r\n",
         400),
    ]  # fmt: skip
    for data, status in cases:
        answer = parse_raw(raw_exchange(port, data))
        assert answer[0] == status, (data[:60], answer)
        assert_error_shape(*answer)
    assert predict(server).status_code == 200


def test_openapi_describes_each_model_route_with_its_input_schema(server: RunningServer) -> None:
    document = httpx.get(server.url + "/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    operation = document["paths"][f"/v1/models/{NAME}:predict"]["post"]
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][reference.rsplit("/", 1)[1]]
    expected = httpx.get(f"{server.url}/v1/models/{NAME}/schema").json()["input"]
    assert schema.pop("properties").pop("upload_webhook")["type"] == ["string", "null"]
    expected_properties = expected.pop("properties")
    assert {k: v for k, v in schema.items()} == expected
    assert set(expected_properties) == {"session", "api_key", "mode"}
    assert operation["responses"]["400"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }
    assert not any(path.startswith("/v2/repository") for path in document["paths"])


# -- requests from other origins' web pages ---------------------------------------------------


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://127.0.0.1:1", "null", "http://localhost"]
)
def test_a_page_of_another_origin_cannot_post(server: RunningServer, origin: str) -> None:
    # What a page's fetch(url, {method: "POST", body: text}) sends: text/plain, no preflight.
    headers = {"Origin": origin, "Content-Type": "text/plain"}
    response = httpx.post(server.predict_url, content=b'{"session": "s"}', headers=headers)
    body = error_of(response, 403)
    assert origin in body["error"] and "KSERVEHELPER_ALLOWED_ORIGINS" in body["error"]
    assert httpx.get(server.url + "/v2/health/live").status_code == 200


def test_the_servers_own_pages_and_non_browser_clients_may_post(server: RunningServer) -> None:
    own = httpx.post(server.predict_url, json={"session": "s-1"}, headers={"Origin": server.url})
    assert own.status_code == 200, own.text
    assert predict(server).status_code == 200  # no Origin: curl, httpx, SDKs


def test_read_only_routes_answer_any_origin(server: RunningServer) -> None:
    response = httpx.get(server.url + "/openapi.json", headers={"Origin": "https://evil.example"})
    assert response.status_code == 200


def test_allowed_origins_let_a_web_app_post(serve_model: ServeFactory) -> None:
    env = {"KSERVEHELPER_ALLOWED_ORIGINS": "https://app.example.com, https://other.example"}
    allowing = serve_model(MODELS, "allowing", "--class", "Secretive", env=env)
    post = functools.partial(httpx.post, allowing.predict_url, json={"session": "s-1"})
    assert post(headers={"Origin": "https://app.example.com"}).status_code == 200
    assert post(headers={"Origin": "https://other.example"}).status_code == 200
    error_of(post(headers={"Origin": "https://app.example.com:8443"}), 403)
