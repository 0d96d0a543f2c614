"""The docker CLI: which client and builder to use, its failures in one line, inspect/pull/tag.

Builds and pushes (with live logs) are :mod:`kservehelper.build.engine`; running a built image is
:mod:`kservehelper.build.container`.

Three builders, detected once per process and client binary:

* ``buildx``   - ``docker buildx build --load`` (the buildx plugin is installed);
* ``buildkit`` - ``DOCKER_BUILDKIT=1 docker build`` with a pre-23 client, which has BuildKit
  built in (from 23.0 the client delegates BuildKit to buildx);
* ``legacy``   - the classic builder: no ``RUN --mount``, so the Dockerfile is rendered
  without cache, bind or secret mounts.

Every failure becomes a :class:`BuildError` with one line of explanation and a hint.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from kservehelper.errors import BuildError
from kservehelper.settings import env_name, get_settings

Builder = Literal["buildx", "buildkit", "legacy"]
DOCKER_ENV = env_name("docker")
BUILDER_ENV = env_name("builder")
DEFAULT_PLATFORM = "linux/amd64"


@dataclass(frozen=True)
class Engine:
    """A docker client binary, its daemon, and the builder to use."""

    binary: str
    client_version: str
    server_version: str
    builder: Builder
    #: Why this client, when another docker on PATH came first (one line, or empty).
    note: str = field(default="", compare=False)

    @property
    def buildkit(self) -> bool:
        """Whether builds support ``RUN --mount`` (cache, bind, secret)."""
        return self.builder != "legacy"

    def describe(self) -> str:
        """``buildkit (/usr/bin/docker 20.10.24)``, plus why this client when there was a choice."""
        text = f"{self.builder} ({self.binary} {self.client_version})"
        return f"{text}; {self.note}" if self.note else text


def _parse_version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:2])


def choose_binary(explicit: str | None = None) -> str:
    """The docker client: ``explicit``, else $KSERVEHELPER_DOCKER, else ``docker`` on PATH."""
    name = explicit or get_settings().docker or "docker"
    path = shutil.which(name)
    if path is None:
        raise BuildError(
            f"docker client '{name}' not found; hint: install Docker, or point --docker / "
            f"${DOCKER_ENV} at the client binary"
        )
    return path


def docker_clients() -> list[str]:
    """Every ``docker`` executable on PATH, in PATH order (one per real file)."""
    found: dict[str, str] = {}
    for folder in os.environ.get("PATH", "").split(os.pathsep):
        candidate = os.path.join(folder or ".", "docker")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            found.setdefault(os.path.realpath(candidate), candidate)
    return list(found.values())


_PREFERENCE: dict[str, int] = {"buildx": 0, "buildkit": 1, "legacy": 2}


def detect_engine(binary: str | None = None, builder: str | None = None) -> Engine:
    """Find the client and its daemon, and the best builder they offer (cached per process).

    With no client named (``binary``, $KSERVEHELPER_DOCKER), every ``docker`` on PATH is
    considered and the first offering BuildKit (buildx, else a client with it built in) wins
    over one with only the legacy builder. ``builder`` (or $KSERVEHELPER_BUILDER) forces one of
    buildx, buildkit, legacy.
    """
    forced = builder or get_settings().builder
    named = binary or get_settings().docker
    if named or forced:
        return _detect(choose_binary(named), forced)
    candidates = docker_clients()
    if not candidates:
        choose_binary(None)  # raises the "not found" error
    engines: list[Engine] = []
    failure: BuildError | None = None
    for candidate in candidates:
        try:
            engines.append(_detect(candidate, None))
        except BuildError as error:
            failure = failure or error
    if not engines:
        assert failure is not None
        raise failure
    best = min(engines, key=lambda engine: _PREFERENCE[engine.builder])
    first = engines[0]
    if best is first:
        return best
    note = (
        f"the first docker on PATH, {first.binary} {first.client_version}, has only the "
        f"{first.builder} builder"
    )
    return dataclasses.replace(best, note=note)


@functools.lru_cache(maxsize=8)
def _detect(binary: str, forced: str | None) -> Engine:
    try:
        done = subprocess.run(
            [binary, "version", "--format", "{{json .}}"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BuildError(
            f"cannot run '{binary} version': {error}; hint: check the client"
        ) from None
    try:
        info = json.loads(done.stdout.strip().splitlines()[0]) if done.stdout.strip() else {}
    except json.JSONDecodeError:
        info = {}
    client = (info.get("Client") or {}).get("Version", "")
    server = (info.get("Server") or {}).get("Version", "") if info.get("Server") else ""
    if done.returncode != 0 or not server:
        reason = (done.stderr.strip().splitlines() or ["no answer"])[-1]
        raise BuildError(
            f"the Docker daemon is not reachable ({reason}); hint: start Docker, or set "
            "DOCKER_HOST to a daemon you can reach"
        )
    if forced is not None:
        if forced not in ("buildx", "buildkit", "legacy"):
            raise BuildError(f"${BUILDER_ENV}='{forced}': use buildx, buildkit or legacy")
        return Engine(binary, client, server, forced)  # type: ignore[arg-type]
    buildx = subprocess.run([binary, "buildx", "version"], capture_output=True, timeout=30)
    chosen: Builder
    if buildx.returncode == 0:
        chosen = "buildx"
    elif _parse_version(client) < (23, 0) and _parse_version(server) >= (18, 9):
        chosen = "buildkit"
    else:
        chosen = "legacy"
    return Engine(binary, client, server, chosen)


_CAUSES: tuple[tuple[str, str, str], ...] = (
    (
        r"no space left on device",
        "the Docker daemon's disk is full (no space left on device)",
        "free space: `docker system prune` (and `docker builder prune` for the build cache)",
    ),
    (
        r"manifest unknown|manifest for \S+ not found|not found: manifest",
        "the registry has no such image or tag (manifest unknown)",
        "check the name and tag; build and push it first (`kservehelper build`, `push`)",
    ),
    (
        r"pull access denied|unauthorized|authentication required|denied: ",
        "the registry refused access (pull access denied / unauthorized)",
        "check the name, or log in: `docker login REGISTRY`",
    ),
    (
        r"HTTP response to HTTPS client",
        "the registry speaks plain HTTP",
        "add it to the daemon's insecure-registries",
    ),
    (
        r"connection refused|no such host|i/o timeout|TLS handshake timeout|network is unreachable",
        "the registry cannot be reached",
        "check that it runs and the daemon can reach it",
    ),
    (
        r"No such image|Unable to find image",
        "there is no such image here",
        "build it first with `kservehelper build`",
    ),
)
_NOISE = re.compile(r"^(See '.*--help'|Run '.*--help' for more information)\.?$")


def known_cause(text: str) -> tuple[str, str] | None:
    """(what it means, what to do) for a failure the daemon's output names, else None."""
    for pattern, cause, hint in _CAUSES:
        if re.search(pattern, text, re.IGNORECASE):
            return cause, hint
    return None


def daemon_failure(action: str, stderr: str) -> BuildError:
    """One line for a failed docker command: the daemon's own words, what they mean, a fix."""
    lines = [line.strip() for line in stderr.strip().splitlines() if line.strip()]
    lines = [line for line in lines if not _NOISE.match(line)]
    said = next((line for line in lines if "Error response from daemon" in line), None)
    said = (said or (lines[-1] if lines else "no output")).split("Error response from daemon:")[-1]
    said = said.strip().removeprefix("docker:").strip().rstrip(".")
    cause = known_cause(stderr)
    if cause is None:
        return BuildError(f"{action} failed: {said}")
    return BuildError(f"{action} failed: {cause[0]}: {said}; hint: {cause[1]}")


def run_docker(engine: Engine, *args: str, timeout: float = 600) -> str:
    """Run ``docker ARGS`` to completion; return stdout, or raise BuildError with stderr."""
    try:
        done = subprocess.run(
            [engine.binary, *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"docker {' '.join(args)} timed out after {timeout:.0f}s") from None
    if done.returncode != 0:
        raise daemon_failure(f"docker {' '.join(args[:2])}", done.stderr)
    return done.stdout


def image_id(engine: Engine, image: str) -> str | None:
    """The local image's id (``sha256:...``), or None when there is no such local image."""
    done = subprocess.run(
        [engine.binary, "image", "inspect", "--format", "{{.Id}}", image],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() or None if done.returncode == 0 else None


def add_labels(engine: Engine, image: str, labels: Mapping[str, str]) -> None:
    """Give the local ``image`` more labels, in place (same tag, no new layer).

    A one-line ``FROM image`` + ``LABEL`` build with the classic builder, which reads ``FROM``
    from the local image store whatever builder the engine uses for real builds.
    """
    from kservehelper.build.dockerfile import label_instruction

    dockerfile = f"FROM {image}\n{label_instruction(labels)}\n"
    done = subprocess.run(
        [engine.binary, "build", "--quiet", "--tag", image, "-"],
        input=dockerfile,
        capture_output=True,
        text=True,
        env={**os.environ, "DOCKER_BUILDKIT": "0"},
    )
    if done.returncode != 0:
        raise daemon_failure(f"labelling {image}", done.stderr)


def inspect_image(engine: Engine, image: str) -> dict[str, object]:
    """``docker image inspect`` of one image."""
    data = json.loads(run_docker(engine, "image", "inspect", image))
    return dict(data[0])


def image_labels(engine: Engine, image: str) -> dict[str, str]:
    """An image's labels."""
    config = inspect_image(engine, image).get("Config") or {}
    assert isinstance(config, dict)
    return dict(config.get("Labels") or {})


def pull_image(engine: Engine, reference: str) -> None:
    """``docker pull`` (by tag or digest)."""
    run_docker(engine, "pull", "--quiet", reference)


def remove_image(engine: Engine, image: str) -> None:
    """``docker image rm --force``; an image that is not there is fine."""
    subprocess.run([engine.binary, "image", "rm", "--force", image], capture_output=True)
