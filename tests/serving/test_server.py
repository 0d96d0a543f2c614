"""Starting a server: once the model is loaded, what is alive is left out of garbage
collection (``gc.freeze``), in a single process and in each worker of a multi-process one."""

from __future__ import annotations

import pathlib

import httpx
import pytest

from tests.conftest import ServeFactory

MODEL = pathlib.Path(__file__).resolve().parent / "models" / "heap"


@pytest.mark.parametrize("workers", [1, 2])
def test_objects_alive_after_load_are_frozen(serve_model: ServeFactory, workers: int) -> None:
    server = serve_model(MODEL, "heap", "--workers", str(workers))
    with httpx.Client(timeout=30) as client:
        answers = [client.post(server.predict_url, json={}) for _ in range(4 * workers)]
    assert all(a.status_code == 200 for a in answers), [a.text for a in answers]
    # KServe alone brings over 100,000 objects; nothing frozen would be 0.
    assert all(a.json()["frozen"] > 50_000 for a in answers), [a.json() for a in answers]
