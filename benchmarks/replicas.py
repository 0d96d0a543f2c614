"""What ``num_replicas`` (Ray Serve) costs and buys, against one process in the same run.

Servers (the same model, ``tests/models/replicas``, each ``kservehelper serve``):
  single    one process, max_concurrency 1
  replicas  ``--replicas 2`` on a private Ray instance

Measures:
  1. sequential latency of a no-op prediction, median over N requests (the extra hop);
  2. wall time of 4 concurrent 1 s predictions (two replicas should take half as long).

Ray's replicas listen on all interfaces, so both servers and the client run in a private
network namespace (``unshare -n``, loopback only; needs root, as on the CI machine).

Usage: python benchmarks/replicas.py [--requests 200] [--json out.json]
Prints a Markdown table with the ratios replicas / single.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
MODEL = HERE.parent / "tests" / "models" / "replicas"
PORTS = {"single": 8091, "replicas": 8092}


def measure(requests: int) -> dict[str, Any]:
    """Run inside the namespace: both servers are up; time them."""
    import httpx

    figures: dict[str, Any] = {}
    for kind, port in PORTS.items():
        url = f"http://127.0.0.1:{port}/v1/models/replicas:predict"
        with httpx.Client(timeout=60) as client:
            for _ in range(10):  # warm-up
                client.post(url, json={})
            latencies = []
            for _ in range(requests):
                started = time.perf_counter()
                client.post(url, json={}).raise_for_status()
                latencies.append(time.perf_counter() - started)
        done: list[float] = []

        def one(url: str = url, done: list[float] = done) -> None:
            httpx.post(url, json={"seconds": 1}, timeout=60).raise_for_status()
            done.append(time.perf_counter())

        started = time.perf_counter()
        threads = [threading.Thread(target=one) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        figures[kind] = {
            "latency_ms": statistics.median(latencies) * 1000,
            "parallel_s": max(done) - started,
        }
    return figures


def wait_ready(namespace: list[str], timeout: float = 400) -> None:
    code = (
        "import httpx,sys,time\n"
        f"deadline=time.monotonic()+{timeout}\n"
        f"for port in {list(PORTS.values())}:\n"
        "    while True:\n"
        "        try:\n"
        "            url = f'http://127.0.0.1:{port}/v1/models/replicas'\n"
        "            if httpx.get(url).status_code == 200: break\n"
        "        except httpx.HTTPError: pass\n"
        "        if time.monotonic() > deadline: sys.exit(f'port {port} not ready')\n"
        "        time.sleep(0.5)\n"
    )
    subprocess.run([*namespace, sys.executable, "-c", code], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--measure", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        json.dump(measure(args.requests), sys.stdout)
        return
    holder = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"],
        start_new_session=True,
    )
    namespace = ["nsenter", f"--net=/proc/{holder.pid}/ns/net"]
    ray_tmp = tempfile.mkdtemp(prefix="ksh-ray-")
    logs = Path(tempfile.mkdtemp(prefix="replicas-bench-"))
    servers = []
    try:
        for kind, port in PORTS.items():
            extra = ["--replicas", "2"] if kind == "replicas" else []
            command = [sys.executable, "-m", "kservehelper", "serve", str(MODEL), "--port",
                       str(port), "--host", "127.0.0.1", "--name", "replicas", *extra]  # fmt: skip
            servers.append(
                subprocess.Popen(
                    [*namespace, *command],
                    stdout=(logs / f"{kind}.log").open("wb"),
                    stderr=subprocess.STDOUT,
                    env={**os.environ, "RAY_TMPDIR": ray_tmp},
                    start_new_session=True,
                )
            )
        started = time.perf_counter()
        wait_ready(namespace)
        ready_s = time.perf_counter() - started
        run = subprocess.run(
            [*namespace, sys.executable, __file__, "--measure", "--requests", str(args.requests)],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        figures = json.loads(run.stdout)
    finally:
        for server in servers:
            try:
                os.killpg(server.pid, signal.SIGTERM)
                server.wait(60)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGKILL)  # what Ray left in that group
        holder.kill()
        holder.wait()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    single, replicas = figures["single"], figures["replicas"]
    print("| figure | single process | 2 Ray replicas | ratio |\n|---|---|---|---|")
    print(
        f"| no-op latency, median of {args.requests} | {single['latency_ms']:.2f} ms | "
        f"{replicas['latency_ms']:.2f} ms | {replicas['latency_ms'] / single['latency_ms']:.2f}x |"
    )
    print(
        f"| 4 concurrent 1 s predictions, wall time | {single['parallel_s']:.2f} s | "
        f"{replicas['parallel_s']:.2f} s | {replicas['parallel_s'] / single['parallel_s']:.2f}x |"
    )
    print(f"\nboth servers ready after {ready_s:.0f} s (Ray start + two replicas loading)")
    if args.json:
        args.json.write_text(json.dumps({**figures, "ready_s": ready_s}, indent=2))


if __name__ == "__main__":
    main()
