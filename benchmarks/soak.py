"""Soak: a model server under mixed traffic with faults injected, for minutes on end.

Starts a real ``kservehelper serve`` of ``benchmarks/models/soak`` (``max_concurrency`` 2,
``max_queue`` 32, its own ``$TMPDIR``) and a misbehaving peer on 127.0.0.1 that serves input
files and receives output files: it answers, fails (500), hangs or hangs up. Then ``--clients``
threads send a weighted mix of requests for ``--duration`` seconds: fast, slow and async
predictions, invalid inputs, model errors, output files to every kind of webhook, input
downloads, streams read to the end, and clients that leave while queued, while the model
runs, mid-download and mid-stream. Bursts overflow the queue: 503s are expected, and clients
wait as ``Retry-After`` tells them (at most 2 s) before their next request.

Reported:
  * requests, by outcome (status and error type) and per second;
  * leftover files under the server's temp folder once traffic stopped (goal 0), and after
    SIGTERM (goal: none, exit status 0);
  * RSS drift of the server process: median of the last fifth minus median of the first
    fifth after warm-up (goal < 10 MB);
  * health p99: readiness answered while the model is loaded, against the same probe with
    no traffic, measured in this run (ratio).

Usage: python benchmarks/soak.py [--duration 600] [--clients 16] [--json out.json]
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import pathlib
import random
import signal
import statistics
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import psutil

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.conftest import RunningServer, free_port, leftover_files, start_server  # noqa: E402

MAX_CONCURRENCY = 2
MAX_QUEUE = 32
UPLOAD_DEADLINE = 3


class Peer(BaseHTTPRequestHandler):
    """Input files (GET /file/N, GET /slow/N) and webhooks (POST /ok|fail|hang|close/upload)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        parts = self.path.strip("/").split("/")
        size = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 1024
        self.send_response(200)
        self.send_header("Content-Length", str(size))
        self.end_headers()
        with contextlib.suppress(OSError):
            chunk = 64 * 1024
            for start in range(0, size, chunk):
                self.wfile.write(b"i" * min(chunk, size - start))
                if parts[0] == "slow":
                    time.sleep(0.05)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        kind = self.path.strip("/").split("/")[0]
        if kind == "hang":
            time.sleep(UPLOAD_DEADLINE * 3)
        if kind == "close":
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)
            return
        status = 500 if kind == "fail" else 200
        body = json.dumps({"url": "http://files.invalid/x"} if status == 200 else {}).encode()
        with contextlib.suppress(OSError):
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)


class QuietServer(ThreadingHTTPServer):
    """Clients hanging up on the peer is what the soak does on purpose: not worth a traceback."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


# (weight, name, method, body, how the client behaves)
def traffic(peer: str) -> list[tuple[int, str, str, dict[str, Any], str]]:
    download = {"mode": "input", "source": f"{peer}/file/200000"}
    slow_download = {"mode": "input", "source": f"{peer}/slow/9999999"}
    long_stream = {"mode": "file-stream", "count": 30, "seconds": 3}
    return [
        (30, "fast", "predict", {"mode": "fast"}, "wait"),
        (8, "slow", "predict", {"mode": "slow", "seconds": 0.3}, "wait"),
        (8, "async", "generate", {"seconds": 0.05}, "wait"),
        (5, "invalid input", "predict", {"mode": "nonsense"}, "wait"),
        (3, "model ValueError", "predict", {"mode": "fail"}, "wait"),
        (2, "model crash", "predict", {"mode": "crash"}, "wait"),
        (6, "files to webhook", "predict", _files(f"{peer}/ok/upload"), "wait"),
        (2, "files, webhook 500", "predict", _files(f"{peer}/fail/upload"), "wait"),
        (1, "files, webhook hangs", "predict", _files(f"{peer}/hang/upload"), "wait"),
        (2, "files, webhook hangs up", "predict", _files(f"{peer}/close/upload"), "wait"),
        (5, "input download", "predict", download, "wait"),
        (2, "leaves mid-download", "predict", slow_download, "leave"),
        (5, "stream", "predict", {"mode": "stream", "count": 20, "seconds": 0.2}, "wait"),
        (3, "file stream", "predict", _files(f"{peer}/ok/upload", "file-stream"), "wait"),
        (3, "leaves mid-stream", "predict", long_stream, "leave-stream"),
        (4, "leaves while slow", "predict", {"mode": "slow", "seconds": 2}, "leave"),
        (1, "burst", "predict", {"mode": "slow", "seconds": 0.2}, "burst"),
    ]


def _files(webhook: str, mode: str = "files") -> dict[str, Any]:
    return {"mode": mode, "count": 3, "seconds": 0.1, "upload_webhook": webhook}


def outcome(response: httpx.Response) -> str:
    if response.status_code == 200:
        return "200"
    try:
        kind = response.json().get("type") or "error"
    except ValueError:
        kind = "not JSON"
    return f"{response.status_code} {kind}"


class Soak:
    def __init__(self, server: RunningServer, peer: str, seed: int) -> None:
        self.server = server
        self.plan = traffic(peer)
        self.weights = [w for w, *_ in self.plan]
        self.outcomes: collections.Counter[str] = collections.Counter()
        self.by_name: dict[str, collections.Counter[str]] = collections.defaultdict(
            collections.Counter
        )
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.random = random.Random(seed)

    def record(self, name: str, result: str) -> None:
        with self.lock:
            self.outcomes[result] += 1
            self.by_name[name][result] += 1

    def client(self) -> None:
        url = self.server.url
        with httpx.Client(timeout=60) as client:
            while not self.stop.is_set():
                with self.lock:
                    _, name, method, body, how = self.random.choices(self.plan, self.weights)[0]
                target = f"{url}/v1/models/soak:{method}"
                try:
                    self.one(client, name, target, body, how)
                except httpx.HTTPError as exc:
                    self.record(name, f"client {type(exc).__name__}")

    def one(
        self, client: httpx.Client, name: str, target: str, body: dict[str, Any], how: str
    ) -> None:
        if how == "wait":
            response = client.post(target, json=body)
            self.record(name, outcome(response))
            if response.status_code == 503:  # a well-behaved client backs off as told
                self.stop.wait(min(2.0, float(response.headers.get("Retry-After", "1"))))
        elif how == "leave":
            try:
                response = client.post(target, json=body, timeout=httpx.Timeout(60, read=0.3))
            except httpx.ReadTimeout:
                self.record(name, "left")
            else:
                self.record(name, outcome(response))  # answered first (e.g. 503 when busy)
        elif how == "leave-stream":
            with client.stream("POST", target, json=body) as response:
                if response.status_code == 200:
                    next(response.iter_lines())
                    self.record(name, "left")
                else:
                    response.read()
                    self.record(name, outcome(response))
        elif how == "burst":  # more at once than the queue holds: some get 503

            def send() -> None:
                self.record(name, outcome(httpx.post(target, json=body, timeout=60)))

            threads = [threading.Thread(target=send) for _ in range(MAX_QUEUE + 4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()


def probe_health(url: str, stop: threading.Event, latencies: list[float]) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            began = time.perf_counter()
            try:
                ok = client.get(url).status_code == 200
            except httpx.HTTPError:
                ok = False
            latencies.append(time.perf_counter() - began if ok else float("inf"))
            time.sleep(0.05)


def sample_rss(pid: int, stop: threading.Event, samples: list[tuple[float, int]]) -> None:
    process = psutil.Process(pid)
    while not stop.wait(1.0):
        with contextlib.suppress(psutil.Error):
            samples.append((time.monotonic(), process.memory_info().rss))


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=600, help="seconds of traffic")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args()

    work = pathlib.Path(tempfile.mkdtemp(prefix="kservehelper-soak-"))
    server_tmp = work / "tmp"
    server_tmp.mkdir()
    peer = QuietServer(("127.0.0.1", 0), Peer)
    peer.daemon_threads = True
    threading.Thread(target=peer.serve_forever, daemon=True).start()
    peer_url = f"http://127.0.0.1:{peer.server_address[1]}"

    port = free_port()
    command = [sys.executable, "-m", "kservehelper", "serve", str(HERE / "models" / "soak")]
    command += ["--port", str(port), "--host", "127.0.0.1", "--name", "soak"]
    command += ["--max-concurrency", str(MAX_CONCURRENCY), "--max-queue", str(MAX_QUEUE)]
    env = {
        "TMPDIR": str(server_tmp),
        "KSERVEHELPER_ALLOWED_INPUTS": peer_url,
        "KSERVEHELPER_ALLOWED_DESTINATIONS": peer_url,
        "KSERVEHELPER_UPLOAD_ATTEMPTS": "1",
        "KSERVEHELPER_UPLOAD_DEADLINE": str(UPLOAD_DEADLINE),
        "KSERVEHELPER_SHUTDOWN_GRACE": "10",
    }
    server = start_server(command, "soak", work / "server.log", port, env=env)
    health_url = f"{server.url}/v1/models/soak"
    figures: dict[str, Any] = {}
    try:
        # Baseline: the same readiness probe with no traffic.
        idle: list[float] = []
        stop_idle = threading.Event()
        prober = threading.Thread(target=probe_health, args=(health_url, stop_idle, idle))
        prober.start()
        time.sleep(min(10.0, max(2.0, args.duration / 20)))
        stop_idle.set()
        prober.join()

        soak = Soak(server, peer_url, args.seed)
        busy: list[float] = []
        rss: list[tuple[float, int]] = []
        background = [
            threading.Thread(target=probe_health, args=(health_url, soak.stop, busy)),
            threading.Thread(target=sample_rss, args=(server.process.pid, soak.stop, rss)),
        ]
        clients = [threading.Thread(target=soak.client) for _ in range(args.clients)]
        began = time.monotonic()
        for thread in background + clients:
            thread.start()
        time.sleep(args.duration)
        soak.stop.set()
        for thread in clients + background:
            thread.join()
        elapsed = time.monotonic() - began

        # Let abandoned work finish (a slow predict that was left runs to its next check).
        deadline = time.monotonic() + 30
        while leftover_files(server_tmp) and time.monotonic() < deadline:
            time.sleep(0.2)
        leftovers = leftover_files(server_tmp)

        server.process.send_signal(signal.SIGTERM)
        exit_status = server.process.wait(60)
        after_exit = sorted(p.name for p in server_tmp.iterdir())

        warm = [value for moment, value in rss if moment - began > elapsed * 0.2]
        fifth = max(1, len(warm) // 5)
        drift = (statistics.median(warm[-fifth:]) - statistics.median(warm[:fifth])) if warm else 0
        total = sum(soak.outcomes.values())
        figures = {
            "duration_s": round(elapsed, 1),
            "clients": args.clients,
            "requests": total,
            "requests_per_s": round(total / elapsed, 1),
            "outcomes": dict(soak.outcomes.most_common()),
            "by_request": {k: dict(v) for k, v in sorted(soak.by_name.items())},
            "leftover_files": len(leftovers),
            "leftover_examples": [str(p.relative_to(server_tmp)) for p in leftovers[:5]],
            "exit_status": exit_status,
            "left_in_tmp_after_exit": after_exit,
            "rss_start_mb": round(statistics.median(warm[:fifth]) / 2**20, 1) if warm else None,
            "rss_drift_mb": round(drift / 2**20, 2),
            "health_p99_ms_idle": round(p99(idle) * 1000, 2),
            "health_p99_ms_busy": round(p99(busy) * 1000, 2),
            "health_failures": sum(1 for v in busy if v == float("inf")),
        }
    finally:
        server.stop()
        peer.shutdown()

    f = figures
    print(f"soak: {f['duration_s']} s, {f['clients']} clients, {os.cpu_count()} cores")
    print("| measure | value | goal |")
    print("|---|---:|---|")
    print(f"| requests | {f['requests']} ({f['requests_per_s']}/s) | |")
    for result, count in f["outcomes"].items():
        print(f"| outcome {result} | {count} | |")
    print(f"| leftover files after traffic | {f['leftover_files']} | 0 |")
    print(f"| exit status after SIGTERM | {f['exit_status']} | 0 |")
    print(f"| left in the temp folder after exit | {len(f['left_in_tmp_after_exit'])} | 0 |")
    print(f"| RSS drift (MB, from {f['rss_start_mb']} MB) | {f['rss_drift_mb']} | < 10 |")
    ratio = f["health_p99_ms_busy"] / f["health_p99_ms_idle"]
    print(
        f"| health p99 (ms): idle / under soak | {f['health_p99_ms_idle']} / "
        f"{f['health_p99_ms_busy']} ({ratio:.1f}x) | |"
    )
    print(f"| health checks failed | {f['health_failures']} | 0 |")
    print("\nper request kind:")
    for name, results in f["by_request"].items():
        print(f"  {name}: {results}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))
    ok = (
        f["leftover_files"] == 0
        and f["exit_status"] == 0
        and not f["left_in_tmp_after_exit"]
        and f["health_failures"] == 0
    )
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
