"""Running a built image: its model server with host networking, until the block ends.

Used by ``kservehelper predict --image`` and ``kservehelper build`` (which reads the model's
input schema inside the image, so the host never imports the model).
"""

from __future__ import annotations

import contextlib
import json
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from kservehelper.build.docker import Engine, daemon_failure
from kservehelper.errors import BuildError

_TAIL_LINES = 25


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def read_schema(engine: Engine, image: str, name: str, class_name: str) -> dict[str, Any]:
    """The model's input/output schema, computed inside ``image`` (no network, its own user):
    ``kservehelper schema /app``. BuildError with the model's own error when it fails."""
    command = [engine.binary, "run", "--rm", "--network", "none", "--entrypoint", "kservehelper"]
    command += [image, "schema", "/app", "--name", name, "--class", class_name]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise BuildError(
            f"reading the model's schema in {image} took over 300 s; hint: importing model.py "
            "should not do heavy work (do it in load())"
        ) from None
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        if any("Error response from daemon" in line for line in lines):
            raise daemon_failure(f"docker run {image}", done.stderr)
        last = lines[-1] if lines else f"exit code {done.returncode}"
        raise BuildError(
            f"the image {image} was built, but its model fails to import there: "
            f"{last.removeprefix('error: ')}; hint: fix model.py (run `kservehelper schema` on "
            "it), then build again"
        )
    try:
        document = json.loads(done.stdout)
    except json.JSONDecodeError:
        raise BuildError(
            f"`kservehelper schema` in {image} printed no JSON document; hint: does model.py "
            "print to stdout when imported?"
        ) from None
    if not isinstance(document, dict):
        raise BuildError(f"`kservehelper schema` in {image} printed no JSON object")
    return document


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
    with running_container(
        engine, image, name, class_name, port=port, env=env, startup_timeout=startup_timeout
    ) as (url, _):
        yield url


@contextlib.contextmanager
def running_container(
    engine: Engine,
    image: str,
    name: str,
    class_name: str = "Model",
    *,
    port: int | None = None,
    env: dict[str, str] | None = None,
    startup_timeout: float = 180,
) -> Iterator[tuple[str, str]]:
    """:func:`running_model`, yielding (base URL, container name)."""
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
        subprocess.run([engine.binary, "rm", "--force", container], capture_output=True)
        raise daemon_failure(f"docker run {image}", done.stderr)
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(engine, container, f"{base_url}/v1/models/{name}", startup_timeout)
        yield base_url, container
    finally:
        subprocess.run([engine.binary, "rm", "--force", container], capture_output=True)


def copy_from_container(engine: Engine, container: str, source: str, target: str) -> None:
    """``docker cp CONTAINER:SOURCE TARGET`` (files land owned by the calling user)."""
    done = subprocess.run(
        [engine.binary, "cp", f"{container}:{source}", target], capture_output=True, text=True
    )
    if done.returncode != 0:
        raise daemon_failure(f"docker cp {source}", done.stderr)


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
            raise BuildError(_http_error(url, response))
        for line in response.iter_lines():
            if line.strip():
                lines.append(line)
                if echo is not None:
                    echo(line)
    return lines


def post_prediction(
    base_url: str,
    name: str,
    payload: dict[str, object],
    method: str = "predict",
    timeout: float = 600,
) -> Iterator[tuple[str, Any]]:
    """POST one request; yield ``("result", body)`` for a JSON answer, or ``("item", data)``
    per stream item as it arrives (NDJSON). A stream's error record raises BuildError."""
    url = f"{base_url}/v1/models/{name}:{method}"
    with httpx.stream("POST", url, json=payload, timeout=timeout) as response:
        if response.status_code >= 400:
            response.read()
            raise BuildError(_http_error(url, response))
        kind = response.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/x-ndjson":
            response.read()
            yield "result", response.json()
            return
        for line in response.iter_lines():
            if not line.strip():
                continue
            record = json.loads(line)
            if "error" in record:
                error = record["error"]
                raise BuildError(
                    f"{method}() failed after {record.get('id', 0)} item(s): "
                    f"{error.get('type')}: {error.get('message')}"
                )
            yield "item", record.get("data")


def _http_error(url: str, response: httpx.Response) -> str:
    """The server's error body in one or a few lines (our shape: error + detail)."""
    try:
        body = response.json()
    except ValueError:
        return f"POST {url} answered {response.status_code}: {response.text.strip()[:500]}"
    if isinstance(body, dict) and "error" in body:
        lines = [f"{response.status_code}: {body['error']}"]
        for item in body.get("detail") or []:
            if isinstance(item, dict):
                loc = ".".join(str(part) for part in item.get("loc", ())) or "request"
                lines.append(f"  - {loc}: {item.get('msg', '')}")
        return "\n".join(lines)
    return f"POST {url} answered {response.status_code}: {json.dumps(body)[:500]}"
