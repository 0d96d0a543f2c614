"""A destination that fails, hangs or hangs up: the client gets a clear error in time, and no
output file stays on the server."""

from __future__ import annotations

import httpx
import pytest

from tests.faults.conftest import FaultPeer, Marks, ServeFault, post


@pytest.mark.parametrize(
    ("path", "status", "kind"),
    [
        ("/status500/upload", 502, "UploadError"),
        ("/close/upload", 502, "UploadError"),
        ("/hang/upload", 504, "DeadlineExceeded"),
    ],
)
def test_a_failing_webhook_is_an_error_in_time_and_leaves_no_file(
    serve_fault: ServeFault,
    marks: Marks,
    fault_peer: FaultPeer,
    path: str,
    status: int,
    kind: str,
) -> None:
    env = {
        "KSERVEHELPER_UPLOAD_TO": f"{fault_peer.url}{path}",
        "KSERVEHELPER_UPLOAD_ATTEMPTS": "1",
        "KSERVEHELPER_UPLOAD_DEADLINE": "2",
    }
    server = serve_fault("Files", env=env)
    answer = post(server.predict_url, {"copies": 2, "marks": str(marks)})
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert body["type"] == kind
    if status == 504:
        assert "KSERVEHELPER_UPLOAD_DEADLINE" in body["error"]
    assert marks.has("files", "started")
    assert server.leftover_files() == []
    # The server goes on serving: ready, and the next request fails the same clean way.
    assert httpx.get(f"{server.url}/v1/models/fault", timeout=10).status_code == 200
    assert post(server.predict_url, {"copies": 1}).status_code == status
    assert server.leftover_files() == []
