"""The legacy builder end to end (a docker client without BuildKit), and build secrets kept
out of every image layer (BuildKit)."""

from __future__ import annotations

import json
import os
import pathlib
import ssl
import subprocess
import tarfile
import uuid

import pytest

from kservehelper.build import container, docker, engine
from kservehelper.build.context import WHEEL_ENV, build_own_wheel
from kservehelper.build.project import build_project
from kservehelper.errors import BuildError
from tests.e2e.conftest import cli, copy_example

pytestmark = [pytest.mark.docker, pytest.mark.timeout(900)]


def test_legacy_builder_builds_runs_and_caches(
    legacy_engine: docker.Engine,
    registry: str,
    tmp_path: pathlib.Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(WHEEL_ENV, str(build_own_wheel(tmp_path / "wheel")))
    image = f"{registry}/kservehelper-e2e/streaming-legacy:{uuid.uuid4().hex[:8]}"
    folder = copy_example("streaming", tmp_path, image)
    dockerfile = cli("dockerfile", str(folder), "--builder", "legacy").stdout
    assert "--mount" not in dockerfile
    try:
        done = cli("build", str(folder), "--docker", legacy_engine.binary)
        assert "with legacy" in done.stdout and "Step 1/" in done.stdout
        with container.running_model(legacy_engine, image, "streaming") as url:
            lines = container.predict_over_http(url, "streaming", {"repeat": 2, "delay": 0})
        assert len(lines) == 2

        model = folder / "model.py"
        model.write_text(model.read_text() + "\n# a code-only change\n")
        result = build_project(folder, docker_binary=legacy_engine.binary, echo=None).result
        assert result.step_cached("/tmp/kservehelper/runtime/requirements.txt"), result.steps
        assert not result.step_cached("COPY app/ /app/")
    finally:
        docker.remove_image(legacy_engine, image)


def test_legacy_builder_refuses_secrets(
    legacy_engine: docker.Engine, tmp_path: pathlib.Path
) -> None:
    with pytest.raises(BuildError, match="BuildKit"):
        engine.build_image(legacy_engine, str(tmp_path), "x:1", secrets=["id=a,src=/dev/null"])


def test_build_failure_names_the_step(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path
) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    (folder / "model.py").write_text("class Model:\n    pass\n")
    (folder / "config.yaml").write_text("build:\n  commands: ['echo about to fail; exit 3']\n")
    done = cli("build", str(folder), "--docker", buildkit_engine.binary, check=False)
    assert done.returncode != 0
    assert "failed at step" in done.stderr and "exit 3" in done.stderr
    assert "about to fail" in done.stderr  # the step's last lines


def _layers_containing(
    engine: docker.Engine, image: str, base: str, marker: bytes, tmp: pathlib.Path
) -> list[str]:
    """Files, in the layers the build added on top of ``base``, whose bytes hold ``marker``;
    also returns a sentinel entry when the build added no file at all."""
    base_layers = len(docker.inspect_image(engine, base)["RootFS"]["Layers"])  # type: ignore[index]
    archive = tmp / "image.tar"
    subprocess.run([engine.binary, "save", "-o", str(archive), image], check=True)
    found: list[str] = []
    scanned = 0
    with tarfile.open(archive) as saved:
        manifest = json.load(saved.extractfile("manifest.json"))  # type: ignore[arg-type]
        for layer in manifest[0]["Layers"][base_layers:]:
            with tarfile.open(fileobj=saved.extractfile(layer)) as layer_tar:
                for member in layer_tar:
                    if member.isfile():
                        scanned += 1
                        data = layer_tar.extractfile(member).read()  # type: ignore[union-attr]
                        if marker in data:
                            found.append(f"{layer}:{member.name}")
    archive.unlink()
    return found if scanned else ["<no files scanned>"]


def test_secrets_reach_pip_but_no_layer(
    buildkit_engine: docker.Engine, tmp_path: pathlib.Path
) -> None:
    marker = f"kservehelper-secret-{uuid.uuid4().hex}"
    folder = tmp_path / "secret-model"
    folder.mkdir()
    model = "class Model:\n    def predict(self) -> str:\n        return 'ok'\n"
    (folder / "model.py").write_text(model)
    (folder / "config.yaml").write_text("build:\n  python_packages: [tomli-w]\n")
    pip_conf = tmp_path / "pip.conf"
    pip_conf.write_text(f"# {marker}\n[global]\ntimeout = 60\n")
    ca_source = os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().cafile
    assert ca_source, "no CA bundle on this machine"
    ca_cert = tmp_path / "ca.pem"
    ca_cert.write_text(pathlib.Path(ca_source).read_text() + f"\n# {marker}\n")
    image = f"kservehelper-e2e/secrets:{uuid.uuid4().hex[:8]}"
    done = cli(
        "build", str(folder), "--tag", image, "--docker", buildkit_engine.binary,
        "--secret", f"id=pip.conf,src={pip_conf}", "--ca-cert", str(ca_cert), "--no-cache",
    )  # fmt: skip
    try:
        assert "PIP_CONFIG_FILE=/run/secrets/pip.conf" in done.stdout
        # pip (uv does not read pip.conf) ran with the CA bundle from the secret:
        assert "Successfully installed tomli" in done.stdout
        leaks = _layers_containing(
            buildkit_engine, image, "python:3.11-slim", marker.encode(), tmp_path
        )
        assert leaks == []
        history = docker.run_docker(buildkit_engine, "history", "--no-trunc", image)
        assert marker not in history
    finally:
        docker.remove_image(buildkit_engine, image)
