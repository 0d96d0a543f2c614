"""A serving process imports nothing it does not use: no image build, deploy, object-store
clients or templates, no second HTTP implementation; the command-line toolkit only when
started by the command line."""

from __future__ import annotations

import pathlib
import sys

import httpx
import pytest

from tests.conftest import RunningServer, ServeFactory, free_port, start_server

MODEL = pathlib.Path(__file__).resolve().parent / "models" / "modules"


def _loaded(server: RunningServer) -> tuple[set[str], bool]:
    response = httpx.post(server.predict_url, json={}, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    return set(body["loaded"]), body["rich_by_httpx"]


def _check(loaded: set[str], rich_by_httpx: bool, allowed: set[str]) -> None:
    if rich_by_httpx:
        allowed = allowed | {"rich"}  # httpx's own command line, not ours
    assert loaded <= allowed, f"the serving process imported {sorted(loaded - allowed)}"


def test_python_model_py_imports_no_build_deploy_cli_or_storage_clients(
    tmp_path: pathlib.Path,
) -> None:
    port = free_port()
    server = start_server(
        [sys.executable, str(MODEL / "model.py"), str(port)], "modules", tmp_path / "log", port
    )
    try:
        _check(*_loaded(server), allowed=set())
    finally:
        server.stop()


@pytest.mark.parametrize("upload_to", [None, "s3://bucket/outputs"])
def test_kservehelper_serve_imports_only_its_command_line_on_top(
    serve_model: ServeFactory, upload_to: str | None
) -> None:
    env = {"KSERVEHELPER_UPLOAD_TO": upload_to} if upload_to else None
    server = serve_model(MODEL, "modules", env=env)
    loaded, rich_by_httpx = _loaded(server)
    # Parsing `kservehelper serve ...` is the command line's job (typer, and rich with it).
    _check(loaded, rich_by_httpx, allowed={"kservehelper.cli", "typer", "rich"})
