"""File inputs and outputs without a destination: data: URIs in, data: URIs out."""

from __future__ import annotations

import base64
import io
import json
import os
import pathlib

import httpx
import pytest
from PIL import Image

from tests.conftest import EXAMPLES, TEST_MODELS, RunningServer, ServeFactory


def data_uri(content: bytes, mime: str = "application/octet-stream") -> str:
    return f"data:{mime};base64,{base64.b64encode(content).decode()}"


def decode_data_uri(uri: str) -> bytes:
    assert uri.startswith("data:")
    return base64.b64decode(uri.split(",", 1)[1])


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def files(serve_model: ServeFactory, output_dir: pathlib.Path) -> RunningServer:
    env = {"KSERVEHELPER_OUTPUT_DIR": str(output_dir), "KSERVEHELPER_INLINE_OUTPUT_LIMIT": "4096"}
    return serve_model(TEST_MODELS / "behaviours", "files", "--class", "Files", env=env)


def test_data_uri_input_and_inline_outputs(files: RunningServer, output_dir: pathlib.Path) -> None:
    body = {"source": data_uri(b"payload"), "copies": 2}
    answer = httpx.post(files.predict_url, json=body, timeout=30).json()
    assert [decode_data_uri(u) for u in answer["output"]] == [b"payload", b"payload"]
    assert os.listdir(output_dir) == []  # delivered files are removed


def test_outputs_too_large_to_inline_ask_for_an_upload_webhook(
    files: RunningServer, output_dir: pathlib.Path
) -> None:
    response = httpx.post(files.predict_url, json={"source": data_uri(b"x" * 3000), "copies": 2})
    assert response.status_code == 400
    assert "upload_webhook" in response.json()["error"]
    assert os.listdir(output_dir) == []


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ("data:text/plain;base64,@@@", "file_input"),
        ("/etc/hostname", "local_path_refused"),
        ("ftp://example.invalid/file", "unsupported_scheme"),
    ],
)
def test_bad_file_inputs_are_400_naming_the_field(
    files: RunningServer, value: str, kind: str
) -> None:
    response = httpx.post(files.predict_url, json={"source": value})
    assert response.status_code == 400
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["source"]
    assert detail["type"] == kind


def test_seed_blur_example_returns_a_blurred_jpeg(serve_model: ServeFactory) -> None:
    server = serve_model(EXAMPLES / "blur-image", "blur-image")
    buffer = io.BytesIO()
    image = Image.new("RGB", (32, 32), "white")
    image.paste((0, 0, 0), (0, 0, 16, 32))
    image.save(buffer, format="PNG")
    body = {"image": base64.b64encode(buffer.getvalue()).decode(), "radius": 4}
    answer = httpx.post(server.predict_url, json=body, timeout=60).json()
    [uri] = answer["output"]
    assert uri.startswith("data:image/jpeg;base64,")
    blurred = Image.open(io.BytesIO(decode_data_uri(uri)))
    assert blurred.format == "JPEG" and blurred.size == (32, 32)
    edge = blurred.convert("L").getpixel((16, 16))
    assert 20 < edge < 235  # the hard edge is now a gradient
    missing = httpx.post(server.predict_url, json={})
    assert missing.status_code == 400
    assert missing.json()["error"] == "The input image is not set"


@pytest.mark.parametrize("folder", ["/tmp/evil", "file:///tmp/evil", "relative/dir"])
def test_a_request_cannot_send_outputs_to_a_server_folder(
    files: RunningServer, output_dir: pathlib.Path, folder: str
) -> None:
    body = {"source": data_uri(b"x"), "upload_webhook": folder}
    response = httpx.post(files.predict_url, json=body)
    assert response.status_code == 400
    [detail] = response.json()["detail"]
    assert detail["loc"] == ["upload_webhook"]
    assert detail["type"] == "local_destination_refused"
    assert os.listdir(output_dir) == []
    assert not pathlib.Path("/tmp/evil").exists()


def test_streamed_files_arrive_as_they_are_made_and_none_are_left(
    serve_model: ServeFactory, tmp_path: pathlib.Path
) -> None:
    output_dir = tmp_path / "stream-outputs"
    env = {"KSERVEHELPER_OUTPUT_DIR": str(output_dir)}
    server = serve_model(TEST_MODELS / "behaviours", "filestream", "--class", "FileStream", env=env)
    response = httpx.post(server.predict_url, json={"count": 3}, timeout=30)
    records = [json.loads(line) for line in response.text.splitlines()]
    assert [decode_data_uri(r["data"]) for r in records] == [b"part 0", b"part 1", b"part 2"]
    assert os.listdir(output_dir) == []  # the unyielded scratch file too
