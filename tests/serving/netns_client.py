"""An HTTP client run inside a test's private network namespace (see test_replicas.py).

``python netns_client.py`` reads ``{"wait": [url, ...], "timeout": s, "requests": [...]}`` as
JSON on stdin: it waits until every ``wait`` URL answers 200, then sends all ``requests``
(``{"method", "url", "body", "headers"}``, and optionally ``"then_create": path``, a file made
once the answer came) at the same time, one thread each, and prints one JSON list of
``{"status", "body", "content_type"}`` in the same order.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx


def wait_ready(urls: list[str], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    for url in urls:
        while True:
            try:
                if httpx.get(url, timeout=5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"{url} not ready after {timeout}s")
            time.sleep(0.5)


def send(request: dict, results: list, index: int) -> None:
    response = httpx.request(
        request.get("method", "POST"),
        request["url"],
        content=request.get("body"),
        headers=request.get("headers", {}),
        timeout=120,
    )
    results[index] = {
        "status": response.status_code,
        "body": response.text,
        "content_type": response.headers.get("content-type", ""),
    }
    if request.get("then_create"):
        with open(request["then_create"], "w"):
            pass


def main() -> None:
    job = json.load(sys.stdin)
    wait_ready(job.get("wait", []), job.get("timeout", 60))
    requests = job.get("requests", [])
    results: list = [None] * len(requests)
    threads = [
        threading.Thread(target=send, args=(request, results, i))
        for i, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
