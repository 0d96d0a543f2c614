"""BuildKit end to end, on the real engine: build examples/blur-image, run it, predict over
HTTP (the output file goes through the bundled upload server), rebuild after a code-only
change from the layer cache, push, drop the local image, pull by digest and predict again."""

from __future__ import annotations

import base64
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
from kservehelper.build import container, docker, engine
from kservehelper.build.project import build_project
from kservehelper.errors import BuildError
from tests.e2e.conftest import EXAMPLES, cli, copy_example, pinned_wheel

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


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
    port = container.free_port()
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
    with container.running_model(buildkit_engine, image, "blur-image", env=allowed) as url:
        [line] = container.predict_over_http(url, "blur-image", payload)
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
    assert not result.step_cached("COPY app/ /app/")


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
        with container.running_model(buildkit_engine, reference, "blur-image") as url:
            [line] = container.predict_over_http(url, "blur-image", payload)
        assert json.loads(line)
    finally:
        docker.remove_image(buildkit_engine, reference)


def test_failed_push_explains_itself(buildkit_engine: docker.Engine) -> None:
    with pytest.raises(BuildError, match="hint"):
        engine.push_image(buildkit_engine, f"127.0.0.1:{container.free_port()}/nothing/here:1")


def test_streaming_example_streams_over_http(
    buildkit_engine: docker.Engine, registry: str, tmp_path: pathlib.Path
) -> None:
    image = f"{registry}/kservehelper-e2e/streaming:{uuid.uuid4().hex[:8]}"
    folder = copy_example("streaming", tmp_path, image)
    build_project(folder, docker_binary=buildkit_engine.binary, echo=None)
    try:
        with container.running_model(buildkit_engine, image, "streaming") as url:
            lines = container.predict_over_http(url, "streaming", {"repeat": 3, "delay": 0})
        assert len(lines) == 3 and all("Hello World!" in line for line in lines)
    finally:
        docker.remove_image(buildkit_engine, image)


def test_predict_image_writes_files_like_local_predict(
    blur: tuple[pathlib.Path, str, str], tmp_path: pathlib.Path
) -> None:
    folder, image, _ = blur
    picture = tmp_path / "red.png"
    picture.write_bytes(base64.b64decode(red_square_b64()))
    out = tmp_path / "out"
    done = cli("predict", str(folder), "--image", image, "-i", f"image=@{picture}", "-o", str(out))
    answer = json.loads(done.stdout)
    (written,) = out.iterdir()
    assert answer["output"] == [str(written)] and written.suffix == ".jpg"
    assert Image.open(written).size == (32, 32)
    assert "data:" not in done.stdout
    # The same answer, file name included, as local predict gives.
    local_out = tmp_path / "local"
    local = cli("predict", str(folder), "-i", f"image=@{picture}", "-o", str(local_out))
    (local_file,) = local_out.iterdir()
    assert json.loads(local.stdout)["output"] == [str(local_file)]
    assert local_file.name == written.name


def test_predict_image_prints_streams_as_local_predict_does(
    buildkit_engine: docker.Engine, registry: str, tmp_path: pathlib.Path
) -> None:
    image = f"{registry}/kservehelper-e2e/streaming-print:{uuid.uuid4().hex[:8]}"
    folder = copy_example("streaming", tmp_path, image)
    with pinned_wheel(tmp_path):
        build_project(folder, docker_binary=buildkit_engine.binary, echo=None)
    try:
        inputs = ["-i", "repeat=2", "-i", "delay=0"]
        local = cli("predict", str(folder), *inputs).stdout
        remote = cli("predict", str(folder), "--image", image, *inputs).stdout
        assert remote == local and len(local.splitlines()) == 2
    finally:
        docker.remove_image(buildkit_engine, image)


def test_a_missing_image_is_one_line_with_the_daemons_cause(registry: str) -> None:
    missing = f"{registry}/kservehelper-e2e/nothing-here:{uuid.uuid4().hex[:8]}"
    done = cli("predict", str(EXAMPLES / "hello"), "--image", missing, "-i", "name=x", check=False)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert "manifest unknown" in line and "hint:" in line
    assert "--help" not in line and "Traceback" not in done.stderr


def test_a_buildkit_client_is_preferred_to_the_first_docker_on_path(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A folder first on PATH whose `docker` is a client with only the legacy builder.
    legacy = next(
        (c for c in docker.docker_clients() if docker._detect(c, None).builder == "legacy"), None
    )
    if legacy is None:
        pytest.skip("no legacy-only docker client on this machine to put first on PATH")
    first = tmp_path / "first"
    first.mkdir()
    (first / "docker").symlink_to(legacy)
    monkeypatch.setenv("PATH", f"{first}:{pathlib.Path(buildkit_engine.binary).parent}")
    monkeypatch.delenv("KSERVEHELPER_DOCKER", raising=False)
    chosen = docker.detect_engine()
    assert chosen.buildkit and chosen.binary == buildkit_engine.binary
    assert "has only the legacy builder" in chosen.describe()


def test_deploy_refuses_a_rebuilt_image_until_it_is_pushed(
    buildkit_engine: docker.Engine, registry: str, tmp_path: pathlib.Path
) -> None:
    image = f"{registry}/kservehelper-e2e/deploy-check:{uuid.uuid4().hex[:8]}"
    folder = copy_example("hello", tmp_path, image)
    docker_args = ("--docker", buildkit_engine.binary)
    with pinned_wheel(tmp_path):
        try:
            cli("build", str(folder), *docker_args)
            cli("push", str(folder), *docker_args)
            first = json.loads((folder / ".kservehelper" / "last-push.json").read_text())
            assert first["image_id"].startswith("sha256:")
            assert first["reference"] in cli("deploy", str(folder), *docker_args).stdout
            model = folder / "model.py"
            model.write_text(model.read_text() + "\n# changed after the push\n")
            cli("build", str(folder), *docker_args)
            refused = cli("deploy", str(folder), *docker_args, check=False)
            assert refused.returncode == 1 and refused.stdout == ""
            assert "rebuilt since" in refused.stderr and "kservehelper push" in refused.stderr
            cli("push", str(folder), *docker_args)
            second = json.loads((folder / ".kservehelper" / "last-push.json").read_text())
            assert second["digest"] != first["digest"]
            assert second["reference"] in cli("deploy", str(folder), *docker_args).stdout
        finally:
            docker.remove_image(buildkit_engine, image)
