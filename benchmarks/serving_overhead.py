"""kservehelper's serving overhead, measured against raw KServe in the same run.

Servers (each a real KServe ModelServer on a free 127.0.0.1 port):
  raw          benchmarks/raw_kserve.py: a hand-written kserve.Model validating by hand
               (an async predict, as KServe's examples write it)
  floor        the same with its validation in a worker thread (raw_kserve.py --thread): one
               bare thread round trip per request, the least any server pays to keep its
               event loop free while sync model code runs
  helper-sync  benchmarks/models/noop Model: the no-op model with Input(...) and a sync
               predict (the seed's style), which kservehelper runs in a thread, one at a time
               (max_concurrency=1)
  helper       benchmarks/models/noop AsyncModel: the same with an async predict

Measures:
  1. sequential latency, p50 / p99 over N keep-alive requests (httpx), rounds interleaved;
  2. requests/s at 16 concurrent connections (wrk; `apt-get install wrk`);
  3. health (GET /v1/models/NAME) p50 / p99 while a 3 s sync predict holding the GIL runs
     (benchmarks/models/noop Busy), one health check every 10 ms; goal p99 < 50 ms;
  4. items/s for a 10,000-item stream: raw async generator vs kservehelper (sync generator,
     the seed's style, and async generator).

Usage: python benchmarks/serving_overhead.py [--requests 2000] [--rounds 3] [--json out.json]
Prints a Markdown table of figures and ratios (kservehelper / raw).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

import httpx

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from tests.conftest import RunningServer, free_port, start_server  # noqa: E402

BODY = {"text": "hello world", "count": 3, "ratio": 0.25}


def start(kind: str, logs: pathlib.Path) -> RunningServer:
    port = free_port()
    if kind in ("raw", "floor"):
        args = [sys.executable, str(HERE / "raw_kserve.py"), "--http_port", str(port)]
        args += ["--enable_grpc", "false"] + (["--thread"] if kind == "floor" else [])
        return start_server(args, "noop", logs / f"{kind}.log", port)
    class_name = {
        "helper": "AsyncModel",
        "helper-sync": "Model",
        "helper-sync-stream": "SyncStream",
        "helper-async-stream": "AsyncStream",
        "helper-busy": "Busy",
    }[kind]
    args = [sys.executable, "-m", "kservehelper", "serve", str(HERE / "models" / "noop")]
    args += ["--port", str(port), "--host", "127.0.0.1", "--name", "noop", "--class", class_name]
    return start_server(args, "noop", logs / f"{kind}.log", port)


def sequential_latencies(
    server: RunningServer, requests: int, body: dict[str, Any] = BODY, warmup: int = 50
) -> list[float]:
    latencies = []
    with httpx.Client(timeout=30) as client:
        for _ in range(warmup):
            client.post(server.predict_url, json=body).raise_for_status()
        for _ in range(requests):
            began = time.perf_counter()
            response = client.post(server.predict_url, json=body)
            latencies.append(time.perf_counter() - began)
            response.raise_for_status()
    return latencies


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def wrk_throughput(
    server: RunningServer, seconds: int, connections: int, body: dict[str, Any] = BODY
) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed: apt-get install wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(
            'wrk.method = "POST"\n'
            f"wrk.body = '{json.dumps(body)}'\n"
            'wrk.headers["Content-Type"] = "application/json"\n'
        )
    result = subprocess.run(
        [wrk, "-t2", f"-c{connections}", f"-d{seconds}s", "-s", script.name, server.predict_url],
        capture_output=True,
        text=True,
        check=True,
    )
    pathlib.Path(script.name).unlink()
    if "Non-2xx" in result.stdout:
        raise RuntimeError(f"wrk saw failed requests:\n{result.stdout}")
    match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
    if match is None:
        raise RuntimeError(f"cannot read wrk's output:\n{result.stdout}")
    return float(match.group(1))


def health_during_long_predict(server: RunningServer, seconds: float) -> list[float]:
    """Health-check latencies (s) while one ``seconds``-long sync predict runs."""
    latencies: list[float] = []
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        running = pool.submit(
            httpx.post, server.predict_url, json={"seconds": seconds}, timeout=seconds + 60
        )
        time.sleep(0.2)  # the predict has started
        with httpx.Client(timeout=30) as client:
            while not running.done():
                began = time.perf_counter()
                client.get(f"{server.url}/v1/models/{server.name}").raise_for_status()
                latencies.append(time.perf_counter() - began)
                time.sleep(0.01)
        running.result().raise_for_status()
    return latencies


def stream_items_per_second(server: RunningServer, items: int, raw: bool) -> float:
    body = {"stream": items} if raw else {"count": items}
    began = time.perf_counter()
    received = 0
    with httpx.stream("POST", server.predict_url, json=body, timeout=120) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if line:
                received += 1
    elapsed = time.perf_counter() - began
    if received != items:
        raise RuntimeError(f"expected {items} items, received {received}")
    return items / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--stream-items", type=int, default=10000)
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args()

    logs = pathlib.Path(tempfile.mkdtemp(prefix="kservehelper-bench-"))
    kinds = ["raw", "floor", "helper-sync", "helper", "helper-sync-stream", "helper-async-stream"]
    kinds.append("helper-busy")
    servers = {kind: start(kind, logs) for kind in kinds}
    figures: dict[str, Any] = {}
    try:
        unary = ("raw", "floor", "helper-sync", "helper")
        p50: dict[str, list[float]] = {kind: [] for kind in unary}
        p99: dict[str, list[float]] = {kind: [] for kind in unary}
        rps: dict[str, list[float]] = {kind: [] for kind in unary}
        for _ in range(args.rounds):
            for kind in unary:
                latencies = sequential_latencies(servers[kind], args.requests)
                p50[kind].append(percentile(latencies, 0.50) * 1000)
                p99[kind].append(percentile(latencies, 0.99) * 1000)
            for kind in unary:
                rps[kind].append(wrk_throughput(servers[kind], args.wrk_seconds, 16))
        streams: dict[str, list[float]] = {
            "raw": [],
            "helper-sync-stream": [],
            "helper-async-stream": [],
        }
        for _ in range(max(args.rounds, 5)):
            for kind in streams:
                streams[kind].append(
                    stream_items_per_second(servers[kind], args.stream_items, kind == "raw")
                )
        health: list[float] = []
        for _ in range(args.rounds):
            health += health_during_long_predict(servers["helper-busy"], 3.0)
        med = statistics.median
        figures = {
            "health_during_long_predict_ms": {
                "p50": percentile(health, 0.5) * 1000,
                "p99": percentile(health, 0.99) * 1000,
                "checks": len(health),
            },
            "p50_ms": {k: med(v) for k, v in p50.items()},
            "p99_ms": {k: med(v) for k, v in p99.items()},
            "requests_per_s": {k: med(v) for k, v in rps.items()},
            "stream_items_per_s": {k: med(v) for k, v in streams.items()},
        }
    finally:
        for server in servers.values():
            server.stop()

    f = figures
    rows = [
        (
            "sync predict: requests/s at 16 connections",
            "requests_per_s",
            "helper-sync",
            "raw",
            0.90,
            ">=",
        ),
        ("sync predict: p50 latency (ms)", "p50_ms", "helper-sync", "raw", 1.10, "<="),
        ("sync predict: p99 latency (ms)", "p99_ms", "helper-sync", "raw", None, ""),
        (
            "sync predict vs the floor: requests/s",
            "requests_per_s",
            "helper-sync",
            "floor",
            0.95,
            ">=",
        ),
        ("sync predict vs the floor: p50 latency (ms)", "p50_ms", "helper-sync", "floor", None, ""),
        ("the floor: requests/s", "requests_per_s", "floor", "raw", None, ""),
        (
            "async predict: requests/s at 16 connections",
            "requests_per_s",
            "helper",
            "raw",
            0.90,
            ">=",
        ),
        ("async predict: p50 latency (ms)", "p50_ms", "helper", "raw", 1.10, "<="),
        ("async predict: p99 latency (ms)", "p99_ms", "helper", "raw", None, ""),
        (
            "stream items/s, sync generator",
            "stream_items_per_s",
            "helper-sync-stream",
            "raw",
            0.8,
            ">=",
        ),
        (
            "stream items/s, async generator",
            "stream_items_per_s",
            "helper-async-stream",
            "raw",
            0.8,
            ">=",
        ),
    ]
    names = {"raw": "raw KServe", "floor": "floor"}
    print("| measure | baseline | baseline's figure | measured | ratio | target |")
    print("|---|---|---:|---:|---:|---|")
    for label, key, ours, base, target, op in rows:
        ratio = f[key][ours] / f[key][base]
        goal = f"{op} {target}x" if target else ""
        print(
            f"| {label} | {names[base]} | {f[key][base]:.2f} | {f[key][ours]:.2f} | "
            f"{ratio:.3f}x | {goal} |"
        )
    h = f["health_during_long_predict_ms"]
    print(
        f"\nhealth during a 3 s sync predict holding the GIL: p50 {h['p50']:.2f} ms, "
        f"p99 {h['p99']:.2f} ms over {h['checks']} checks (goal p99 < 50 ms)"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
