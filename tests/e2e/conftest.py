"""The Docker engine for end-to-end tests: the sandbox's dockerd and registry on 127.0.0.1:5000.

When the engine is unavailable the tests skip, except when KSERVEHELPER_REQUIRE_DOCKER=1 (CI),
where they fail: CI starts the engine with ``../shared/tools/docker-sandbox up``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import httpx
import pytest

from kservehelper.build.engine import Engine, detect_engine
from kservehelper.errors import BuildError

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
