"""Adaptive batching against the same model unbatched, measured in the same run.

The model (benchmarks/models/batching) costs 20 ms + 0.5 ms per item per call, with the GIL
released (``time.sleep``). Both servers run it one call at a time (``max_concurrency=1``):

  unbatched  a plain ``def predict`` (one request per call)
  batched    the same under ``@batch(max_size=32, max_wait_ms=10)``

Measures, rounds interleaved, medians:
  1. requests/s with 64 concurrent connections (wrk, 10 s; `apt-get install wrk`): goal >= 10x;
  2. p50 / p99 latency of one client sending requests one after another (httpx): goal batched
     p50 <= unbatched p50 + max_wait (10 ms); a lone request should not wait at all.

Usage: python benchmarks/batching.py [--rounds 3] [--requests 200] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import sys
import tempfile
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

from serving_overhead import percentile, sequential_latencies, wrk_throughput  # noqa: E402

from tests.conftest import RunningServer, free_port, start_server  # noqa: E402

BODY = {"x": 1.5}
MAX_WAIT_MS = 10


def start(cls: str, logs: pathlib.Path) -> RunningServer:
    port = free_port()
    args = [sys.executable, "-m", "kservehelper", "serve", str(HERE / "models" / "batching")]
    args += ["--port", str(port), "--host", "127.0.0.1", "--name", "work", "--class", cls]
    return start_server(args, "work", logs / f"{cls}.log", port)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--wrk-seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--json", type=pathlib.Path, help="also write the figures here")
    args = parser.parse_args()

    logs = pathlib.Path(tempfile.mkdtemp(prefix="kservehelper-batching-"))
    kinds = {"unbatched": "Unbatched", "batched": "Batched"}
    servers = {kind: start(cls, logs) for kind, cls in kinds.items()}
    rps: dict[str, list[float]] = {kind: [] for kind in kinds}
    p50: dict[str, list[float]] = {kind: [] for kind in kinds}
    p99: dict[str, list[float]] = {kind: [] for kind in kinds}
    try:
        for _ in range(args.rounds):
            for kind in kinds:
                rps[kind].append(
                    wrk_throughput(servers[kind], args.wrk_seconds, args.connections, BODY)
                )
            for kind in kinds:
                latencies = sequential_latencies(servers[kind], args.requests, BODY, warmup=10)
                p50[kind].append(percentile(latencies, 0.5) * 1000)
                p99[kind].append(percentile(latencies, 0.99) * 1000)
    finally:
        for server in servers.values():
            server.stop()
    med = statistics.median
    figures: dict[str, Any] = {
        "requests_per_s": {k: med(v) for k, v in rps.items()},
        "p50_ms": {k: med(v) for k, v in p50.items()},
        "p99_ms": {k: med(v) for k, v in p99.items()},
        "rounds": {"requests_per_s": rps, "p50_ms": p50},
    }
    f = figures
    speedup = f["requests_per_s"]["batched"] / f["requests_per_s"]["unbatched"]
    added = f["p50_ms"]["batched"] - f["p50_ms"]["unbatched"]
    print("| measure | unbatched | batched | ratio / difference | goal |")
    print("|---|---:|---:|---:|---|")
    print(
        f"| requests/s at {args.connections} connections | {f['requests_per_s']['unbatched']:.1f}"
        f" | {f['requests_per_s']['batched']:.1f} | {speedup:.1f}x | >= 10x |"
    )
    print(
        f"| p50 latency (ms), 1 client | {f['p50_ms']['unbatched']:.2f} | "
        f"{f['p50_ms']['batched']:.2f} | {added:+.2f} ms | <= +{MAX_WAIT_MS} ms |"
    )
    print(
        f"| p99 latency (ms), 1 client | {f['p99_ms']['unbatched']:.2f} | "
        f"{f['p99_ms']['batched']:.2f} | | |"
    )
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
