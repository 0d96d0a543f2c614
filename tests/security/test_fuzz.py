"""Schemathesis over ``/openapi.json`` of the examples and the security test models.

Each server is fuzzed with a fixed seed and a bounded number of cases per operation (and a time
budget per run). The run must find no server error (5xx) and no answer outside the documented
schemas; every 4xx/5xx body seen (from the HAR report) is checked for the error shape.

Checks left out, and why: ``positive_data_acceptance`` (a schema-valid input may still be
refused: the outbound policy, a model's own ``ValueError``), and the checks for authentication
and stateful APIs, which this server does not have. The streaming example is not fuzzed: its
inputs allow requests that run for hours by design (1000 items, 10 s apart).
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import sys

import pytest

from tests.conftest import EXAMPLES, RunningServer, ServeFactory
from tests.security.checks import MODELS, assert_error_shape

CHECKS = (
    "not_a_server_error,status_code_conformance,content_type_conformance,"
    "response_headers_conformance,response_schema_conformance,negative_data_rejection,"
    "missing_required_header,unsupported_method,allow_header_conformance"
)
# For a longer campaign (the figures in docs/security.md): FUZZ_MAX_EXAMPLES raises the bound
# per operation, FUZZ_MAX_TIME (seconds per server) keeps fuzzing until the time is spent.
EXAMPLES_PER_OPERATION = int(os.environ.get("FUZZ_MAX_EXAMPLES", "25"))
TIME_PER_SERVER = os.environ.get("FUZZ_MAX_TIME")
SEED = 20261130
# Requests may name no URL the server would fetch: the allow-lists name a closed loopback port,
# so every generated URL is refused before any name is resolved or connection made.
CLOSED_POLICY = {
    "KSERVEHELPER_ALLOWED_INPUTS": "http://127.0.0.1:9",
    "KSERVEHELPER_ALLOWED_DESTINATIONS": "http://127.0.0.1:9",
}

TARGETS = {
    "hello": (EXAMPLES / "hello", []),
    "blur-image": (EXAMPLES / "blur-image", []),
    "text-stats": (EXAMPLES / "predictor", []),
    "filesize": (MODELS, ["--class", "FileSize"]),
    "echo": (MODELS, ["--class", "Echo"]),
    "textfile": (MODELS, ["--class", "TextFile"]),
}


def fuzz(server: RunningServer, folder: pathlib.Path) -> tuple[dict, list[dict], str]:
    """Run schemathesis against ``server``; the JSON summary, the HAR entries and the output."""
    report, har = folder / "run.json", folder / "run.har"
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", f"{server.url}/openapi.json",
        "--checks", CHECKS, "--max-examples", str(EXAMPLES_PER_OPERATION), "--seed", str(SEED),
        "--workers", "1", "--request-timeout", "60",
        "--report", "json,har", "--report-json-path", str(report), "--report-har-path", str(har),
    ]  # fmt: skip
    if TIME_PER_SERVER:
        command += ["--max-time", TIME_PER_SERVER]
    # Straight to 127.0.0.1, whatever proxy the machine has.
    env = {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
    limit = 600 + int(TIME_PER_SERVER or 0)
    result = subprocess.run(command, capture_output=True, text=True, timeout=limit, env=env)
    entries = json.loads(har.read_text())["log"]["entries"]
    return json.loads(report.read_text()), entries, result.stdout[-6000:]


@pytest.fixture(scope="module")
def transformer(serve_model: ServeFactory) -> RunningServer:
    predictor = serve_model(EXAMPLES / "predictor", "text-stats")
    return serve_model(
        EXAMPLES / "transformer", "text-stats", "--predictor-host", f"127.0.0.1:{predictor.port}"
    )


def check_run(server: RunningServer, tmp_path: pathlib.Path) -> None:
    summary, entries, output = fuzz(server, tmp_path)
    statuses = [entry["response"]["status"] for entry in entries]
    print(
        f"\n{server.name}: {summary['test_cases']['generated']} test cases, {len(entries)} "
        f"requests, {sum(s >= 500 for s in statuses)} 5xx, "
        f"{sum(400 <= s < 500 for s in statuses)} 4xx"
    )
    assert summary["failures"] == [] and summary["errors"] == [], output
    assert summary["test_cases"]["generated"] > 0
    for entry in entries:
        response = entry["response"]
        if response["status"] >= 400:
            content = response["content"]
            assert_error_shape(response["status"], content.get("mimeType", ""),
                               content.get("text", ""))  # fmt: skip
    assert not [status for status in statuses if status >= 500]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_fuzzing_finds_no_server_error(
    serve_model: ServeFactory, tmp_path: pathlib.Path, name: str
) -> None:
    folder, args = TARGETS[name]
    server = serve_model(folder, name, *args, env=CLOSED_POLICY)
    check_run(server, tmp_path)


def test_fuzzing_a_transformer_finds_no_server_error(
    transformer: RunningServer, tmp_path: pathlib.Path
) -> None:
    check_run(transformer, tmp_path)
