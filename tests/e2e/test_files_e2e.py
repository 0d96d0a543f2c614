"""Files in and out of a real model server, as a user drives it over HTTP.

The seed's blur example uploads through the bundled upload server into SeaweedFS; other test
models cover List[Path], streams of files, direct s3:// delivery, failures, URL inputs and
the output folder staying empty.
"""

from __future__ import annotations

import base64
import io
import json
import pathlib
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from tests.conftest import EXAMPLES, RunningServer, ServeFactory
from tests.fixtures_storage import BadPeer, SeaweedS3, UploadServer

FILES_MODEL = pathlib.Path(__file__).resolve().parent / "files_model"


@pytest.fixture(scope="module")
def output_dir(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def server_env(
    seaweedfs: SeaweedS3,
    upload_server_s3: UploadServer,
    bad_peer: BadPeer,
    output_dir: pathlib.Path,
) -> dict[str, str]:
    # Local development: the loopback upload server and test peer are one allow-list entry
    # each; the upload token goes to the upload server only.
    return {
        **seaweedfs.env,
        "AWS_ENDPOINT_URL": seaweedfs.endpoint,
        "KSERVEHELPER_UPLOAD_TOKEN": upload_server_s3.token or "",
        "KSERVEHELPER_UPLOAD_TOKEN_ORIGINS": upload_server_s3.url,
        "KSERVEHELPER_ALLOWED_DESTINATIONS": f"{upload_server_s3.url} {bad_peer.url} s3://",
        "KSERVEHELPER_ALLOWED_INPUTS": f"{bad_peer.url},s3://",
        "KSERVEHELPER_OUTPUT_DIR": str(output_dir),
        "KSERVEHELPER_UPLOAD_ATTEMPTS": "2",
    }


@pytest.fixture(scope="module")
def blur(serve_model: ServeFactory, server_env: dict[str, str]) -> RunningServer:
    return serve_model(EXAMPLES / "blur-image", "blur-image", env=server_env)


@pytest.fixture(scope="module")
def many(serve_model: ServeFactory, server_env: dict[str, str]) -> RunningServer:
    return serve_model(FILES_MODEL, "many", "--class", "ManyFiles", env=server_env)


def jpeg_b64(size: tuple[int, int] = (64, 48)) -> str:
    image = Image.new("RGB", size)
    for x in range(size[0]):
        for y in range(size[1]):
            image.putpixel((x, y), ((x * 37) % 256, (y * 91) % 256, ((x + y) * 13) % 256))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_blur_uploads_through_the_upload_server_to_s3(
    blur: RunningServer, upload_server_s3: UploadServer, output_dir: pathlib.Path
) -> None:
    body = {"image": jpeg_b64(), "radius": 3, "upload_webhook": upload_server_s3.url + "/upload"}
    response = httpx.post(blur.predict_url, json=body, timeout=60)
    assert response.status_code == 200, response.text
    result = response.json()
    assert set(result) == {"output", "running_time"}
    (url,) = result["output"]
    assert url.split("?")[0].endswith("/image.jpg") and "/outputs/" in url
    download = httpx.get(url)
    assert download.status_code == 200
    blurred = Image.open(io.BytesIO(download.content))
    assert blurred.format == "JPEG" and blurred.size == (64, 48)
    assert not list(output_dir.iterdir())


def test_list_of_files_straight_to_s3(
    many: RunningServer, seaweedfs: SeaweedS3, output_dir: pathlib.Path
) -> None:
    bucket = seaweedfs.new_bucket()
    body = {"count": 5, "size": 3000, "upload_webhook": f"s3://{bucket}/run"}
    response = httpx.post(many.predict_url, json=body, timeout=60)
    assert response.status_code == 200, response.text
    urls = response.json()["output"]
    assert [url.split("?")[0].rsplit("/", 1)[1] for url in urls] == [
        f"part-{i}.bin" for i in range(5)
    ]
    assert all(len(httpx.get(url).content) == 3000 for url in urls)


def test_upload_failure_is_502_naming_the_file(many: RunningServer, bad_peer: BadPeer) -> None:
    body = {"count": 1, "upload_webhook": bad_peer.url + "/badjson/e2e/upload"}
    response = httpx.post(many.predict_url, json=body, timeout=60)
    assert response.status_code == 502, response.text
    assert "part-0.bin" in response.text and "invalid JSON" in response.text


def test_bad_destination_is_400(many: RunningServer) -> None:
    response = httpx.post(many.predict_url, json={"upload_webhook": "ftp://x/y"}, timeout=60)
    assert response.status_code == 400, response.text
    assert "upload_webhook" in response.text


def test_no_output_files_remain_after_100_requests(
    many: RunningServer, upload_server_s3: UploadServer, bad_peer: BadPeer, output_dir
) -> None:
    good = upload_server_s3.url + "/upload_batch"
    statuses: dict[int, int] = {}
    with httpx.Client(timeout=60) as client:
        for index in range(100):
            body: dict[str, object] = {"count": 2, "size": 2000, "upload_webhook": good}
            if index % 4 == 1:
                body["upload_webhook"] = bad_peer.url + f"/badjson/{index}/upload"
            elif index % 4 == 2:
                body["fail"] = True
            elif index % 4 == 3:
                body.pop("upload_webhook")
            status = client.post(many.predict_url, json=body).status_code
            statuses[status] = statuses.get(status, 0) + 1
    assert statuses[200] == 50 and statuses[502] == 25 and sum(statuses.values()) == 100
    assert not list(output_dir.iterdir())


@pytest.fixture(scope="module")
def streams(serve_model: ServeFactory, server_env: dict[str, str]) -> RunningServer:
    return serve_model(FILES_MODEL, "frames", "--class", "FileStream", env=server_env)


def test_stream_of_files_streams_urls(
    streams: RunningServer, upload_server_s3: UploadServer
) -> None:
    body = {"count": 3, "upload_webhook": upload_server_s3.url + "/upload"}
    with httpx.stream("POST", streams.predict_url, json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
    urls = [record["data"] for record in lines]
    assert len(urls) == 3
    assert [httpx.get(url).text for url in urls] == [f"frame {i}" for i in range(3)]


@pytest.fixture(scope="module")
def echo(serve_model: ServeFactory, server_env: dict[str, str]) -> Iterator[RunningServer]:
    yield serve_model(FILES_MODEL, "echo", "--class", "EchoFile", env=server_env)


def test_url_inputs(echo: RunningServer, seaweedfs: SeaweedS3, bad_peer: BadPeer) -> None:
    bucket = seaweedfs.new_bucket()
    seaweedfs.client().put_object(Bucket=bucket, Key="docs/report.pdf", Body=b"%PDF" * 100)
    for uri, name, size in (
        (f"s3://{bucket}/docs/report.pdf", "report.pdf", 400),
        (bad_peer.url + "/bytes/777/notes.txt", "notes.txt", 777),
    ):
        response = httpx.post(echo.predict_url, json={"document": uri}, timeout=60)
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["size"], body["name"]) == (size, name)
    missing = httpx.post(echo.predict_url, json={"document": bad_peer.url + "/nope.txt"})
    assert missing.status_code == 400 and "document" in missing.text
