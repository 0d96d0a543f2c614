"""A transformer whose predictor stops answering: requests fail in time, readiness says so."""

from __future__ import annotations

import pathlib
import signal
import sys

import httpx

from tests.conftest import EXAMPLES, free_port, start_server
from tests.faults.conftest import WAIT, wait_until


def test_a_frozen_predictor_is_a_504_in_time_and_fails_readiness(tmp_path: pathlib.Path) -> None:
    predictor_port, transformer_port = free_port(), free_port()
    serve = [sys.executable, "-m", "kservehelper", "serve", "--host", "127.0.0.1"]
    predictor = start_server(
        [*serve, str(EXAMPLES / "predictor"), "--port", str(predictor_port)],
        "text-stats",
        tmp_path / "predictor.log",
        predictor_port,
    )
    try:
        transformer = start_server(
            [
                *serve,
                str(EXAMPLES / "transformer"),
                "--port",
                str(transformer_port),
                "--predictor-host",
                f"127.0.0.1:{predictor_port}",
            ],
            "text-stats",
            tmp_path / "transformer.log",
            transformer_port,
            env={"KSERVEHELPER_PREDICTOR_TIMEOUT": "2"},
        )
        try:
            ready_url = f"{transformer.url}/v1/models/text-stats"
            body = {"text": "a b a"}
            assert httpx.post(transformer.predict_url, json=body, timeout=WAIT).status_code == 200

            predictor.process.send_signal(signal.SIGSTOP)  # alive, but answers nothing
            try:
                frozen = httpx.post(transformer.predict_url, json=body, timeout=WAIT)
                assert frozen.status_code == 504
                assert frozen.json()["type"] == "PredictorTimeout"
                assert "KSERVEHELPER_PREDICTOR_TIMEOUT" in frozen.json()["error"]
                assert httpx.get(ready_url, timeout=WAIT).status_code == 503
                assert httpx.get(f"{transformer.url}/", timeout=WAIT).status_code == 200  # live
            finally:
                predictor.process.send_signal(signal.SIGCONT)
            wait_until(lambda: httpx.get(ready_url, timeout=WAIT).status_code == 200, "ready again")
            answer = httpx.post(transformer.predict_url, json=body, timeout=WAIT)
            assert answer.json()["top_words"] == ["a", "b"]
        finally:
            transformer.stop()
    finally:
        predictor.stop()
