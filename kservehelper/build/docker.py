"""The docker CLI: which builder it offers, build with live logs, push, pull, inspect.

Three builders, detected once per process and client binary:

* ``buildx``   - ``docker buildx build --load`` (the buildx plugin is installed);
* ``buildkit`` - ``DOCKER_BUILDKIT=1 docker build`` with a pre-23 client, which has BuildKit
  built in (from 23.0 the client delegates BuildKit to buildx);
* ``legacy``   - the classic builder: no ``RUN --mount``, so the Dockerfile is rendered
  without cache, bind or secret mounts.

Every failure becomes a :class:`BuildError` with one line of explanation and a hint.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal

import httpx

from kservehelper.errors import BuildError
from kservehelper.settings import env_name, get_settings

Builder = Literal["buildx", "buildkit", "legacy"]
DOCKER_ENV = env_name("docker")
BUILDER_ENV = env_name("builder")
DEFAULT_PLATFORM = "linux/amd64"
_TAIL_LINES = 25
_BUILDKIT_STEP = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")
_BUILDKIT_CACHED = re.compile(r"^#(\d+) CACHED$")
_BUILDKIT_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_LEGACY_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass(frozen=True)
class Engine:
    """A docker client binary, its daemon, and the builder to use."""

    binary: str
    client_version: str
    server_version: str
    builder: Builder

    @property
    def buildkit(self) -> bool:
        """Whether builds support ``RUN --mount`` (cache, bind, secret)."""
        return self.builder != "legacy"


@dataclass
class BuildResult:
    """What a build printed, and which steps came from the cache."""

    lines: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    cached_steps: list[str] = field(default_factory=list)

    def step_cached(self, fragment: str) -> bool:
        """Whether the (first) step whose text contains ``fragment`` was a cache hit."""
        return any(fragment in step for step in self.cached_steps)


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


def detect_engine(binary: str | None = None, builder: str | None = None) -> Engine:
    """Find the client and its daemon, and the best builder they offer (cached per process).

    ``builder`` (or $KSERVEHELPER_BUILDER) forces one of buildx, buildkit, legacy.
    """
    return _detect(choose_binary(binary), builder or get_settings().builder)


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


def _stream(
    command: Sequence[str],
    env: dict[str, str] | None = None,
    echo: Callable[[str], None] | None = None,
    cwd: str | None = None,
) -> tuple[int, list[str]]:
    """Run a command, passing each output line to ``echo`` as it comes; return (rc, lines)."""
    lines: list[str] = []
    process = subprocess.Popen(
        list(command),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        env={**os.environ, **(env or {})},
        cwd=cwd,
    )
    assert process.stdout is not None
    try:
        for raw in process.stdout:
            line = raw.rstrip("\n")
            lines.append(line)
            if echo is not None:
                echo(line)
    except BaseException:
        process.kill()
        raise
    finally:
        process.stdout.close()
    return process.wait(), lines


def build_image(
    engine: Engine,
    context: str,
    tag: str,
    *,
    platform: str = DEFAULT_PLATFORM,
    network: str = "host",
    no_cache: bool = False,
    progress: str = "plain",
    secrets: Sequence[str] = (),
    echo: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``context/Dockerfile`` as ``tag``, streaming the log; BuildError on failure."""
    if progress == "auto":
        progress = "tty" if sys.stdout.isatty() else "plain"
    command = [engine.binary]
    env: dict[str, str] = {}
    if engine.builder == "buildx":
        command += ["buildx", "build", "--load", f"--progress={progress}"]
    elif engine.builder == "buildkit":
        command += ["build", f"--progress={progress}"]
        env["DOCKER_BUILDKIT"] = "1"
    else:
        command += ["build"]
        env["DOCKER_BUILDKIT"] = "0"
        if secrets:
            raise BuildError(
                "build secrets need BuildKit, and this docker client only has the legacy "
                "builder; hint: install the buildx plugin or choose another client with --docker"
            )
    for secret in secrets:
        command += ["--secret", secret]
    if platform:
        command += ["--platform", platform]
    if network:
        command += ["--network", network]
    if no_cache:
        command.append("--no-cache")
    command += ["--tag", tag, "--file", os.path.join(context, "Dockerfile"), context]

    if progress == "tty" and engine.buildkit:
        # BuildKit's interactive display needs the terminal: no capture, no step tracking.
        code = subprocess.run(command, env={**os.environ, **env}).returncode
        if code != 0:
            raise BuildError(
                "docker build failed (the failing step is shown above); hint: rerun with "
                "--progress plain for the full log"
            )
        return BuildResult()

    result = BuildResult()
    step_names: dict[str, str] = {}
    tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
    failed_step: list[str] = []
    current: list[str] = []

    def on_line(line: str) -> None:
        tail.append(line)
        if echo is not None:
            echo(line)
        if match := _BUILDKIT_STEP.match(line):
            step_names.setdefault(match.group(1), match.group(2))
            if match.group(2) not in result.steps:
                result.steps.append(match.group(2))
        elif match := _BUILDKIT_CACHED.match(line):
            result.cached_steps.append(step_names.get(match.group(1), "?"))
        elif match := _BUILDKIT_ERROR.match(line):
            failed_step.append(step_names.get(match.group(1), match.group(2)))
        elif match := _LEGACY_STEP.match(line):
            current[:] = [match.group(2)]
            result.steps.append(match.group(2))
        elif line.strip() == "---> Using cache" and current:
            result.cached_steps.append(current[0])

    try:
        code, lines = _stream(command, env=env, echo=on_line)
    except OSError as error:
        raise BuildError(f"cannot run {engine.binary}: {error}") from None
    result.lines = lines
    if code != 0:
        step = failed_step[0] if failed_step else (current[0] if current else "(before any step)")
        raise BuildError(
            f"docker build failed at step: {step}\n--- last lines of the build log ---\n"
            + "\n".join(tail)
            + "\nhint: fix the step above in config.yaml (or run `kservehelper dockerfile` to "
            "see the Dockerfile)"
        )
    return result


def push_image(engine: Engine, image: str, echo: Callable[[str], None] | None = None) -> str:
    """Push ``image``; return its digest (``sha256:...``)."""
    code, lines = _stream([engine.binary, "push", image], echo=echo)
    text = "\n".join(lines)
    if code != 0:
        last = next((line for line in reversed(lines) if line.strip()), "no output")
        if re.search(r"unauthorized|denied|authentication required", text, re.IGNORECASE):
            hint = f"log in with `docker login {image.split('/')[0]}`"
        elif "HTTP response to HTTPS client" in text:
            hint = "the registry speaks plain HTTP: add it to the daemon's insecure-registries"
        elif re.search(r"connection refused|no such host|timeout", text, re.IGNORECASE):
            hint = "check that the registry is running and reachable from the Docker daemon"
        elif "does not exist" in text or "No such image" in text:
            hint = "build it first with `kservehelper build`"
        else:
            hint = "check the registry address in config.yaml's `image`"
        raise BuildError(f"docker push {image} failed: {last}; hint: {hint}")
    digests = _DIGEST.findall(text)
    if not digests:
        raise BuildError(f"docker push {image} printed no digest; hint: rerun the push")
    return digests[-1]


def run_docker(engine: Engine, *args: str, timeout: float = 600) -> str:
    """Run ``docker ARGS`` to completion; return stdout, or raise BuildError with stderr."""
    try:
        done = subprocess.run(
            [engine.binary, *args], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise BuildError(f"docker {' '.join(args)} timed out after {timeout:.0f}s") from None
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        raise BuildError(f"docker {' '.join(args[:2])} failed: {last}")
    return done.stdout


def inspect_image(engine: Engine, image: str) -> dict[str, object]:
    """``docker image inspect`` of one image."""
    data = json.loads(run_docker(engine, "image", "inspect", image))
    return dict(data[0])


def image_labels(engine: Engine, image: str) -> dict[str, str]:
    """An image's labels."""
    config = inspect_image(engine, image).get("Config") or {}
    assert isinstance(config, dict)
    return dict(config.get("Labels") or {})


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def pull_image(engine: Engine, reference: str) -> None:
    """``docker pull`` (by tag or digest)."""
    run_docker(engine, "pull", "--quiet", reference)


def remove_image(engine: Engine, image: str) -> None:
    """``docker image rm --force``; an image that is not there is fine."""
    subprocess.run([engine.binary, "image", "rm", "--force", image], capture_output=True)


@contextlib.contextmanager
def running_model(
    engine: Engine,
    image: str,
    name: str,
    class_name: str = "Model",
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    startup_timeout: float = 180,
) -> Iterator[str]:
    """Run the image's model server with host networking on a free port; yield its base URL.

    Waits for ``GET /v1/models/NAME`` to answer 200; the container is stopped and removed on
    exit, also on failure. If it exits early, BuildError carries its last log lines.
    """
    port = port or free_port()
    container = f"kservehelper-predict-{uuid.uuid4().hex[:12]}"
    command = [engine.binary, "run", "--detach", "--network", "host", "--name", container]
    for key, value in (env or {}).items():
        command += ["--env", f"{key}={value}"]
    # Host networking: listen on the loopback address only, this is a one-off local run.
    command += [image, "kservehelper", "serve", "/app", "--port", str(port), "--host", "127.0.0.1"]
    command += ["--name", name, "--class", class_name]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["failed"])[-1]
        hint = (
            "build it with `kservehelper build`"
            if "No such image" in last or ("Unable to find image" in done.stderr)
            else "check the image name"
        )
        subprocess.run([engine.binary, "rm", "--force", container], capture_output=True)
        raise BuildError(f"docker run {image} failed: {last}; hint: {hint}")
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(engine, container, f"{base_url}/v1/models/{name}", startup_timeout)
        yield base_url
    finally:
        subprocess.run([engine.binary, "rm", "--force", container], capture_output=True)


def _container_logs(engine: Engine, container: str) -> str:
    done = subprocess.run(
        [engine.binary, "logs", "--tail", str(_TAIL_LINES), container],
        capture_output=True,
        text=True,
    )
    return (done.stdout + done.stderr).strip()


def _wait_ready(engine: Engine, container: str, url: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        state = subprocess.run(
            [engine.binary, "inspect", "--format", "{{.State.Running}}", container],
            capture_output=True,
            text=True,
        )
        if state.stdout.strip() != "true":
            raise BuildError(
                f"the model container exited before it was ready:\n"
                f"{_container_logs(engine, container)}\nhint: fix the error above, rebuild"
            )
        time.sleep(0.5)
    raise BuildError(
        f"the model was not ready at {url} after {timeout:.0f}s:\n"
        f"{_container_logs(engine, container)}"
    )


def predict_over_http(
    base_url: str,
    name: str,
    payload: dict[str, object],
    echo: Callable[[str], None] | None = None,
    timeout: float = 600,
    method: str = "predict",
) -> list[str]:
    """POST ``payload`` to ``/v1/models/NAME:METHOD``; echo and return the response lines
    (one for a JSON answer; one per item for a stream). BuildError on an HTTP error."""
    lines: list[str] = []
    url = f"{base_url}/v1/models/{name}:{method}"
    with httpx.stream("POST", url, json=payload, timeout=timeout) as response:
        if response.status_code >= 400:
            response.read()
            raise BuildError(f"POST {url} answered {response.status_code}: {response.text}")
        for line in response.iter_lines():
            if line.strip():
                lines.append(line)
                if echo is not None:
                    echo(line)
    return lines
