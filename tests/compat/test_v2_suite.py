"""kservehelper 2.0's own unit tests and examples, fetched from the package index, run
unchanged against this package.

The 2.0.0 sdist is downloaded with pip (its code is never copied into this repository); its
``tests/`` run with pytest against the installed kservehelper, and its examples are served with
``python model.py`` and called the way 2.0's clients call them (``curl URL -d @input.json``).
The only things added are files 2.0's tests and examples expect but the sdist does not ship:
``tests/data/models.json`` (read by its ``test_cache.py``) and ``rotate-image/dog.jpg``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import RunningServer, free_port, start_server
from tests.fixtures_storage import start_upload_server, stop_process

# 2.0's tests that need no cloud account: each must pass.
MUST_PASS = [
    "test_batch_inputs.TestKServeModel.test_model",
    "test_cache.TestMemoryCache.test_get",
    "test_cache.TestDiskLRUCache.test_get",
    "test_cache.TestDiskCache.test_shard_index",
    "test_predict.TestKServeModel.test_model",
    "test_predict.TestKServeModel.test_default",
    "test_transform.TestKServeModel.test_tansform",
]
# Skipped by 2.0 itself (they need its author's S3 account or files on his machine).
SKIPPED_BY_2_0 = {
    "test_cache.TestDiskCache.test_set",
    "test_cache.TestDiskCache.test_get",
    "test_model_cache.TestModelCache.test_set",
    "test_model_cache.TestModelCache.test_get",
    "test_s3.TestS3Storage.test",
    "test_upload.TestKServeModel.test_model",
}


def _clean_env(tmp: Path) -> dict[str, str]:
    """No cloud credentials or buckets from the machine; temporary files in ``tmp``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("AWS_", "KSERVEHELPER_", "STORAGE_EMULATOR")) and key != "BUCKET"
    }
    return {**env, "TMPDIR": str(tmp), "PYTHONWARNINGS": "default"}


@pytest.fixture(scope="module")
def sdist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """kservehelper 2.0.0's tests/ and examples/, from its sdist on the package index."""
    download = tmp_path_factory.mktemp("sdist")
    fetched = subprocess.run(
        [sys.executable, "-m", "pip", "download", "kservehelper==2.0.0", "--no-deps",
         "--no-binary", ":all:", "--disable-pip-version-check", "-d", str(download)],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    if fetched.returncode != 0:
        pytest.skip(f"the kservehelper 2.0.0 sdist cannot be fetched: {fetched.stderr[-500:]}")
    (archive,) = download.glob("kservehelper-2.0.0.tar.gz")
    root = tmp_path_factory.mktemp("kservehelper-2.0.0")
    with tarfile.open(archive) as tar:
        wanted = [
            member
            for member in tar.getmembers()
            if member.name.split("/")[1:2] in (["tests"], ["examples"])
        ]
        tar.extractall(root, members=wanted, filter="data")
    (source,) = root.iterdir()
    # Only its tests and examples: its own kservehelper/ package must not shadow ours.
    assert not (source / "kservehelper").exists()
    return source


@pytest.fixture(scope="module")
def v2_results(sdist: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Run 2.0's test suite once; the outcome of each test by ``module.Class.test``."""
    data = sdist / "tests" / "data"
    data.mkdir(exist_ok=True)
    # test_cache.py's MemoryCache test reads tests/data/models.json, absent from the sdist;
    # its assertions expect a -> 1, b -> 2, c -> 3.
    (data / "models.json").write_text(json.dumps({"a": "1", "b": "2", "c": "3"}))
    (sdist / "pytest.ini").write_text("[pytest]\n")  # nothing of ours configures the run
    report = tmp_path_factory.mktemp("v2-report") / "junit.xml"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "tests", "-p", "no:cacheprovider", "-rA",
         f"--junitxml={report}", "-o", "junit_family=xunit1"],
        cwd=sdist, capture_output=True, text=True, timeout=600,
        env=_clean_env(tmp_path_factory.mktemp("v2-tmp")),
    )  # fmt: skip
    if not report.exists():
        pytest.fail(f"2.0's test suite did not run:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}")
    outcomes: dict[str, str] = {}
    for case in ElementTree.parse(report).getroot().iter("testcase"):
        name = f"{case.get('classname', '').removeprefix('tests.')}.{case.get('name')}"
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        if failed is not None:
            outcomes[name] = "failed: " + (failed.get("message") or "") + "\n" + (failed.text or "")
        elif case.find("skipped") is not None:
            outcomes[name] = "skipped"
        else:
            outcomes[name] = "passed"
    return outcomes


@pytest.mark.parametrize("test", MUST_PASS)
def test_2_0_unit_test_passes_unchanged(v2_results: dict[str, str], test: str) -> None:
    assert v2_results.get(test) == "passed", v2_results.get(test, "not collected")[:3000]


def test_2_0_suite_has_no_other_outcome(v2_results: dict[str, str]) -> None:
    skipped = {name for name, outcome in v2_results.items() if outcome == "skipped"}
    assert skipped == SKIPPED_BY_2_0
    assert set(v2_results) == set(MUST_PASS) | SKIPPED_BY_2_0


# -- 2.0's examples, served with `python model.py`, called as 2.0's clients call them --------


@pytest.fixture(scope="module")
def upload_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    server, process = start_upload_server(str(tmp_path_factory.mktemp("uploads")))
    yield server.url
    stop_process(process)


def serve_example(
    folder: Path, name: str, log: Path, env: dict[str, str] | None = None
) -> RunningServer:
    """``python model.py`` in the example's folder, as 2.0's README runs it (here on a free
    port of 127.0.0.1 and without KServe's gRPC server)."""
    port = free_port()
    return start_server(
        [sys.executable, "model.py", "--http_port", str(port), "--enable_grpc", "false"],
        name, log, port, env={"KSERVEHELPER_HOST": "127.0.0.1", **(env or {})}, cwd=folder,
    )  # fmt: skip


def requests_json(url: str, payload: dict, folder: Path) -> tuple[int, dict]:
    """2.0's client script (examples/stable-diffusion/test.py): ``requests.post(url,
    json=payload)`` with the payload read from ``input.json``."""
    import requests

    (folder / "input.json").write_text(json.dumps(payload))
    with open(folder / "input.json") as handle:
        response = requests.post(url, json=json.load(handle), timeout=120)
    return response.status_code, response.json()


def curl_input_json(url: str, payload: dict, folder: Path) -> tuple[int, dict]:
    """2.0's examples' client: ``curl URL -d @input.json`` (curl's default content type)."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    (folder / "input.json").write_text(json.dumps(payload))
    done = subprocess.run(
        ["curl", "-s", "-w", "\n%{http_code}", url, "-d", "@input.json"],
        cwd=folder, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    return int(status), json.loads(body)


CLIENTS = {"curl -d @input.json": curl_input_json, "requests.post(json=...)": requests_json}


def jpeg_base64(size: tuple[int, int]) -> str:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="JPEG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_2_0_dummy_example_answers_its_clients(sdist: Path, tmp_path: Path, client: str) -> None:
    folder = sdist / "examples" / "dummy"
    server = serve_example(folder, "test-dummy", tmp_path / "server.log")
    try:
        batch = [{"prompt": "a", "param_a": 3}, {"prompt": "b", "param_b": 2}]
        status, body = CLIENTS[client](
            server.predict_url, {"param": "p", "batch": batch, "upload_webhook": "http://localhost"},
            tmp_path,
        )  # fmt: skip
        assert status == 200, body
        assert body["outputs"] == [
            {"prompt": "a", "param_a": 3, "param_b": 1},
            {"prompt": "b", "param_a": 1, "param_b": 2},
        ]
        assert body["extra"] == "p" and body["after_predict"] is True
        status, body = CLIENTS[client](server.predict_url, {"batch": [{"param_b": 5}]}, tmp_path)
        assert status == 400 and body["detail"][0]["loc"] == ["batch", 0, "param_b"], body
    finally:
        server.stop()


@pytest.mark.parametrize("client", sorted(CLIENTS))
@pytest.mark.parametrize("example", ["blur-image", "rotate-image"])
def test_2_0_image_examples_upload_to_the_webhook(
    sdist: Path, tmp_path: Path, upload_server: str, example: str, client: str
) -> None:
    pytest.importorskip("PIL", reason="2.0's image examples need Pillow")
    from PIL import Image

    folder = sdist / "examples" / example
    if example == "rotate-image":  # it rotates dog.jpg, which the sdist does not ship
        Image.open(io.BytesIO(base64.b64decode(jpeg_base64((64, 48))))).save(folder / "dog.jpg")
        payload: dict = {"angle": 90}
    else:
        payload = {"image": jpeg_base64((64, 48)), "radius": 3}
    name = {"blur-image": "test-blur-image", "rotate-image": "test-rotate-image"}[example]
    # The upload server is on loopback: one allow-list entry admits it (docs/security.md).
    admitted = {"KSERVEHELPER_ALLOWED_DESTINATIONS": upload_server}
    server = serve_example(folder, name, tmp_path / "server.log", env=admitted)
    try:
        payload["upload_webhook"] = f"{upload_server}/upload"
        status, body = CLIENTS[client](server.predict_url, payload, tmp_path)
        assert status == 200, body
        (url,) = body["output"]
        image = Image.open(io.BytesIO(httpx.get(url, timeout=30).content))
        assert image.format == "JPEG" and image.size == (64, 48)
    finally:
        server.stop()
