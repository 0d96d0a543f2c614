"""Building and pushing with the docker CLI, streaming the log as it comes.

The builder (buildx, BuildKit, legacy) is :func:`kservehelper.build.docker.detect_engine`'s
choice; a failed build names the failing step and its last lines, a failed push the cause.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from kservehelper.build.docker import DEFAULT_PLATFORM, Engine, known_cause
from kservehelper.errors import BuildError

_TAIL_LINES = 25
_BUILDKIT_STEP = re.compile(r"^#(\d+) (\[[^\]]+\] .*)$")
_BUILDKIT_CACHED = re.compile(r"^#(\d+) CACHED$")
_BUILDKIT_ERROR = re.compile(r"^#(\d+) ERROR: (.*)$")
_LEGACY_STEP = re.compile(r"^Step (\d+/\d+) : (.*)$")
_DIGEST = re.compile(r"digest: (sha256:[0-9a-f]{64})")


@dataclass
class BuildResult:
    """What a build printed, and which steps came from the cache."""

    lines: list[str] = field(default_factory=list)
    steps: list[str] = field(default_factory=list)
    cached_steps: list[str] = field(default_factory=list)

    def step_cached(self, fragment: str) -> bool:
        """Whether the (first) step whose text contains ``fragment`` was a cache hit."""
        return any(fragment in step for step in self.cached_steps)


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
    build_args: Mapping[str, str | None] | None = None,
    echo: Callable[[str], None] | None = None,
) -> BuildResult:
    """Build ``context/Dockerfile`` as ``tag``, streaming the log; BuildError on failure.

    ``build_args`` values of None pass the variable through from this process's environment.
    """
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
    for name, value in (build_args or {}).items():
        command += ["--build-arg", name if value is None else f"{name}={value}"]
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
        explained = _script_error(lines)
        if explained:
            raise BuildError(f"docker build failed at step: {step}\n" + "\n".join(explained))
        log = "\n".join(tail)
        cause = known_cause(log)
        # The daemon's causes: a full disk at any step; a base image it cannot pull before any
        # RUN step (later, such words come from the user's own commands).
        if cause is not None and ("no space left" in log or "RUN " not in step):
            raise BuildError(f"docker build failed at step: {step}: {cause[0]}; hint: {cause[1]}")
        raise BuildError(
            f"docker build failed at step: {step}\n--- last lines of the build log ---\n"
            + "\n".join(tail)
            + "\nhint: fix the step above in config.yaml (or run `kservehelper dockerfile` to "
            "see the Dockerfile)"
        )
    return result


# Causes the daemon reports, as (pattern, what it means, what to do).
_SCRIPT_LINE = re.compile(r"^(?:#\d+ [\d.]+ )?(kservehelper: .*)$")


def _script_error(lines: list[str]) -> list[str]:
    """The explanation kservehelper's own build scripts printed (``kservehelper: error: ...``
    and the lines after it), without BuildKit's prefixes; empty when they printed none."""
    found: list[str] = []
    for line in lines:
        match = _SCRIPT_LINE.match(line)
        if match and (found or match.group(1).startswith("kservehelper: error:")):
            found.append(match.group(1))
    return list(dict.fromkeys(found))


def push_image(engine: Engine, image: str, echo: Callable[[str], None] | None = None) -> str:
    """Push ``image``; return its digest (``sha256:...``)."""
    code, lines = _stream([engine.binary, "push", image], echo=echo)
    text = "\n".join(lines)
    if code != 0:
        last = next((line for line in reversed(lines) if line.strip()), "no output")
        cause = known_cause(text)
        if cause is None:
            raise BuildError(
                f"docker push {image} failed: {last}; hint: check the registry address in "
                "config.yaml's `image`"
            )
        hint = cause[1]
        if "docker login" in hint:
            hint = f"log in with `docker login {image.split('/')[0]}`"
        raise BuildError(f"docker push {image} failed: {cause[0]}: {last}; hint: {hint}")
    digests = _DIGEST.findall(text)
    if not digests:
        raise BuildError(f"docker push {image} printed no digest; hint: rerun the push")
    return digests[-1]
