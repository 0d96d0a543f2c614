"""The Docker engine for end-to-end tests: the sandbox's dockerd and registry on 127.0.0.1:5000.

When the engine is unavailable the tests skip, except when KSERVEHELPER_REQUIRE_DOCKER=1 (CI),
where they fail: CI starts the engine with ``../shared/tools/docker-sandbox up``.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from kservehelper.build.docker import Engine, detect_engine, run_docker
from kservehelper.build.wheel import WHEEL_ENV, build_own_wheel
from kservehelper.errors import BuildError

REPO = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
#: CI provides the sandbox tool beside the repository (it tags GPU stand-in base images).
SANDBOX_TOOL = REPO.parent / "shared" / "tools" / "docker-sandbox"
REGISTRY = "127.0.0.1:5000"
BUILDKIT_CLIENT = "/usr/bin/docker"  # the 20.10 client: BuildKit built in


def _unavailable(reason: str) -> None:
    if os.environ.get("KSERVEHELPER_REQUIRE_DOCKER") == "1":
        pytest.fail(f"Docker is required (KSERVEHELPER_REQUIRE_DOCKER=1): {reason}")
    pytest.skip(f"Docker engine unavailable: {reason}")


def _engine(binary: str | None, expected: str) -> Engine:
    try:
        engine = detect_engine(binary)
    except BuildError as error:
        _unavailable(str(error))
        raise
    if engine.builder not in expected.split("|"):
        _unavailable(f"{engine.binary} offers {engine.builder}, this test needs {expected}")
    return engine


@pytest.fixture(scope="session")
def registry() -> str:
    """The sandbox registry's address, checked to answer."""
    try:
        httpx.get(f"http://{REGISTRY}/v2/", timeout=5).raise_for_status()
    except httpx.HTTPError as error:
        _unavailable(f"no registry on {REGISTRY}: {error}")
    return REGISTRY


@pytest.fixture(scope="session")
def buildkit_engine() -> Engine:
    """A client with BuildKit (buildx, or the 20.10 client's built-in BuildKit)."""
    binary = BUILDKIT_CLIENT if os.path.exists(BUILDKIT_CLIENT) else None
    return _engine(binary, "buildx|buildkit")


@pytest.fixture(scope="session")
def legacy_engine() -> Engine:
    """A client with only the legacy builder: the first `docker` on PATH without buildx."""
    for candidate in ("docker", BUILDKIT_CLIENT):
        path = shutil.which(candidate)
        if path is None:
            continue
        buildx = subprocess.run([path, "buildx", "version"], capture_output=True)
        if buildx.returncode != 0:
            try:
                engine = detect_engine(path)
            except BuildError as error:
                _unavailable(str(error))
            if engine.builder == "legacy":
                return engine
    # Every client has BuildKit: force the legacy builder on the default one.
    return _engine_forced_legacy()


def _engine_forced_legacy() -> Engine:
    try:
        return detect_engine(None, "legacy")
    except BuildError as error:
        _unavailable(str(error))
        raise


def cli(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the `kservehelper` command exactly as a user would."""
    code = "from kservehelper.cli import main; main()"
    done = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=900
    )
    if check:
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def copy_example(name: str, tmp: pathlib.Path, image: str) -> pathlib.Path:
    folder = tmp / name
    shutil.copytree(EXAMPLES / name, folder)
    config = folder / "config.yaml"
    lines = [
        f'image: "{image}"' if line.startswith("image:") else line
        for line in config.read_text().splitlines()
    ]
    config.write_text("\n".join(lines) + "\n")
    return folder


@contextlib.contextmanager
def pinned_wheel(tmp: pathlib.Path) -> Iterator[None]:
    """One kservehelper wheel for all builds of a test module: the working tree may change
    under a long test run, and the layer-cache assertions are about the model's files."""
    wheel = build_own_wheel(tmp / "wheel")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(WHEEL_ENV, str(wheel))
        yield


def stand_in(engine: Engine, kind: str, reference: str) -> None:
    """Make sure the local image ``reference`` is a sandbox stand-in of ``kind`` (cuda, ngc):
    GPU base images cannot be pulled here, so the sandbox tool builds one laid out like it."""
    try:
        labels = run_docker(
            engine, "image", "inspect", "--format", "{{json .Config.Labels}}", reference
        )
        if json.loads(labels or "null") and kind in labels:
            return
    except BuildError:
        pass
    if not SANDBOX_TOOL.is_file():
        _unavailable(f"no sandbox tool at {SANDBOX_TOOL} to build a {kind} stand-in")
    done = subprocess.run(
        [str(SANDBOX_TOOL), "stand-in", kind, reference], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.fail(f"could not build a {kind} stand-in {reference}:\n{done.stderr[-2000:]}")
