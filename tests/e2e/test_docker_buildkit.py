"""BuildKit end to end, on the real engine: build examples/blur-image, run it, predict over
HTTP (the output file goes through the bundled upload server), rebuild after a code-only
change from the layer cache, push, drop the local image, pull by digest and predict again."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import pathlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from PIL import Image

from kservehelper import __version__
from kservehelper.build import docker
from kservehelper.build.context import WHEEL_ENV, build_own_wheel
from kservehelper.build.project import build_project
from kservehelper.errors import BuildError
from tests.e2e.conftest import cli, copy_example

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


@contextlib.contextmanager
def pinned_wheel(tmp: pathlib.Path) -> Iterator[None]:
    """One kservehelper wheel for all builds of a test module: the working tree may change
    under a long test run, and the layer-cache assertions are about the model's files."""
    wheel = build_own_wheel(tmp / "wheel")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WHEEL_ENV, str(wheel))
        yield


def red_square_b64() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 32), (200, 10, 10)).save(buffer, "PNG")
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def blur(
    buildkit_engine: docker.Engine, registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[pathlib.Path, str, str]]:
    """examples/blur-image copied, built once with the BuildKit client; (folder, image, log)."""
    image = f"{registry}/kservehelper-e2e/blur-image:{uuid.uuid4().hex[:8]}"
    tmp = tmp_path_factory.mktemp("bk")
    folder = copy_example("blur-image", tmp, image)
    with pinned_wheel(tmp):
        done = cli("build", str(folder), "--docker", buildkit_engine.binary)
        yield folder, image, done.stdout
    docker.remove_image(buildkit_engine, image)


@pytest.fixture
def upload_server(tmp_path: pathlib.Path) -> Iterator[tuple[str, pathlib.Path]]:
    """The bundled upload webhook server, storing into a folder; (upload URL, folder)."""
    port = docker.free_port()
    dest = tmp_path / "uploads"
    dest.mkdir()
    code = "from kservehelper.cli import main; main()"
    command = [sys.executable, "-c", code, "upload-server", "--dest", str(dest)]
    process = subprocess.Popen([*command, "--port", str(port)], stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}/upload", dest
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_build_streams_steps_and_labels_the_image(
    blur: tuple[pathlib.Path, str, str], buildkit_engine: docker.Engine
) -> None:
    _, image, log = blur
    assert f"with {buildkit_engine.builder}" in log
    assert "RUN --mount=type=cache" in log  # BuildKit steps, streamed as they ran
    assert f"Built {image}" in log
    labels = docker.image_labels(buildkit_engine, image)
    assert labels["ai.kservehelper.version"] == __version__
    assert json.loads(labels["ai.kservehelper.config"])["name"] == "blur-image"
    schema = json.loads(labels["ai.kservehelper.input-schema"])
    assert set(schema["input"]["properties"]) == {"image", "radius"}
    config = docker.inspect_image(buildkit_engine, image)["Config"]
    assert isinstance(config, dict) and config["User"] == "10001:10001"
    assert "8080/tcp" in config["ExposedPorts"]


def test_container_predicts_a_file_through_the_upload_server(
    blur: tuple[pathlib.Path, str, str],
    buildkit_engine: docker.Engine,
    upload_server: tuple[str, pathlib.Path],
) -> None:
    _, image, _ = blur
    webhook, uploads = upload_server
    payload = {"image": red_square_b64(), "radius": 2, "upload_webhook": webhook}
    # The upload server is on loopback: one allow-list entry admits it (docs/security.md).
    allowed = {"KSERVEHELPER_ALLOWED_DESTINATIONS": webhook.rsplit("/", 1)[0]}
    with docker.running_model(buildkit_engine, image, "blur-image", env=allowed) as url:
        [line] = docker.predict_over_http(url, "blur-image", payload)
    answer = json.dumps(json.loads(line))
    stored = [p for p in uploads.rglob("*") if p.is_file()]
    assert len(stored) == 1 and stored[0].suffix == ".jpg", answer
    assert Image.open(stored[0]).size == (32, 32)
    assert "data:" not in answer


def test_code_only_change_rebuilds_only_the_code_layers(
    blur: tuple[pathlib.Path, str, str], buildkit_engine: docker.Engine
) -> None:
    folder, _, _ = blur
    model = folder / "model.py"
    model.write_text(model.read_text() + "\n# a code-only change\n")
    outcome = build_project(folder, docker_binary=buildkit_engine.binary, echo=None)
    result = outcome.result
    assert result.step_cached("requirements/requirements.txt"), result.cached_steps
    assert result.step_cached("kservehelper/dist"), result.cached_steps
    assert result.step_cached("runtime/requirements.txt"), result.cached_steps
    assert not result.step_cached("COPY --chown=10001:10001 app/ /app/")


def test_push_pull_by_digest_and_predict_again(
    blur: tuple[pathlib.Path, str, str], buildkit_engine: docker.Engine
) -> None:
    folder, image, _ = blur
    done = cli("push", str(folder), "--docker", buildkit_engine.binary)
    record = json.loads((folder / ".kservehelper" / "last-push.json").read_text())
    assert record["image"] == image and record["digest"].startswith("sha256:")
    assert done.stdout.strip().splitlines()[-1] == record["digest"]
    reference = record["reference"]
    assert reference == image.rsplit(":", 1)[0] + "@" + record["digest"]

    docker.remove_image(buildkit_engine, image)
    with pytest.raises(BuildError):
        docker.inspect_image(buildkit_engine, image)
    docker.pull_image(buildkit_engine, reference)
    try:
        payload = {"image": red_square_b64(), "radius": 1}
        with docker.running_model(buildkit_engine, reference, "blur-image") as url:
            [line] = docker.predict_over_http(url, "blur-image", payload)
        assert json.loads(line)
    finally:
        docker.remove_image(buildkit_engine, reference)


def test_failed_push_explains_itself(buildkit_engine: docker.Engine) -> None:
    with pytest.raises(BuildError, match="hint"):
        docker.push_image(buildkit_engine, f"127.0.0.1:{docker.free_port()}/nothing/here:1")


def test_streaming_example_streams_over_http(
    buildkit_engine: docker.Engine, registry: str, tmp_path: pathlib.Path
) -> None:
    image = f"{registry}/kservehelper-e2e/streaming:{uuid.uuid4().hex[:8]}"
    folder = copy_example("streaming", tmp_path, image)
    build_project(folder, docker_binary=buildkit_engine.binary, echo=None)
    try:
        with docker.running_model(buildkit_engine, image, "streaming") as url:
            lines = docker.predict_over_http(url, "streaming", {"repeat": 3, "delay": 0})
        assert len(lines) == 3 and all("Hello World!" in line for line in lines)
    finally:
        docker.remove_image(buildkit_engine, image)
