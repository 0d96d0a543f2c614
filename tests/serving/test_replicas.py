"""``num_replicas`` on a real Ray Serve: two replicas answer in parallel, from two processes,
and every answer (errors, streams, files, schema) is the one a single-process server gives.

Ray's services and each Serve replica listen on all interfaces (a replica's internal gRPC
server binds ``[::]``), so the servers here run in a private network namespace whose only
interface is loopback; the clients run in it too (``netns_client.py``).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, TEST_MODELS, run_cli

pytest.importorskip("ray", reason="num_replicas needs Ray: pip install 'kservehelper[ray]'")

pytestmark = pytest.mark.timeout(1500)  # each Ray start takes 20-60 s, minutes when loaded

CLIENT = Path(__file__).with_name("netns_client.py")
READY_TIMEOUT = 600  # starting Ray and two replicas on a loaded 2-core machine


def _netns_problem() -> str | None:
    for tool in ("unshare", "nsenter", "ip"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"cannot make a network namespace: {probe.stderr.strip()}"
    return None


@dataclass
class NetNS:
    """A private network namespace (loopback only), kept open by a holder process."""

    holder: subprocess.Popen[bytes]
    ray_tmp: str  # Ray's session folders (short: Ray puts unix sockets there)
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, *args: str) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", *args]

    def start(self, *args: str, log: Path, env: dict[str, str] | None = None) -> Any:
        """Start a process inside; it and its children are stopped with the namespace."""
        process = subprocess.Popen(
            self.command(*args),
            stdout=log.open("wb"),
            stderr=subprocess.STDOUT,
            env={**os.environ, "RAY_TMPDIR": self.ray_tmp, **(env or {})},
            cwd=REPO,
            start_new_session=True,  # its own process group: Ray's processes included
        )
        self.processes.append(process)
        return process

    def wait_ready(self, urls: list[str], watched: list[Any], logs: list[Path]) -> None:
        """Wait until every URL answers 200; fail at once, with the logs, if a server exits."""
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                self.client({"wait": urls, "timeout": 5})
                return
            except AssertionError:
                pass
            exited = [process for process in watched if process.poll() is not None]
            if exited or time.monotonic() > deadline:
                ray_logs = sorted(Path(self.ray_tmp).glob("session_*/logs/*.out"))[-6:]
                tails = "\n".join(
                    f"== {log}\n{log.read_text(errors='replace')[-4000:]}"
                    for log in [*logs, *ray_logs]
                )
                state = "exited" if exited else f"not ready after {READY_TIMEOUT}s"
                raise AssertionError(f"model server {state}:\n{tails}")

    def client(self, job: dict[str, Any], timeout: float = READY_TIMEOUT + 60) -> list[Any]:
        done = subprocess.run(
            self.command(sys.executable, str(CLIENT)),
            input=json.dumps(job),
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
        )
        assert done.returncode == 0, done.stderr
        return list(json.loads(done.stdout))

    def python(self, code: str, env: dict[str, str]) -> str:
        done = subprocess.run(
            self.command(sys.executable, "-c", code),
            capture_output=True,
            text=True,
            timeout=180,
            env={**os.environ, **env},
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout


def stop_group(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Stop a process we started and what it started (its own process group)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, sig)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)  # leftovers (Ray's daemons) of that group


@pytest.fixture(scope="module")
def netns() -> Iterator[NetNS]:
    problem = _netns_problem()
    if problem:
        pytest.skip(f"needs a private network namespace for Ray's listeners: {problem}")
    holder = subprocess.Popen(
        ["unshare", "-n", "sh", "-c", "ip link set lo up && exec sleep 3600"],
        start_new_session=True,
    )
    space = NetNS(holder, tempfile.mkdtemp(prefix="ksh-ray-"))
    try:
        yield space
    finally:
        for process in space.processes:
            stop_group(process)
        holder.kill()
        holder.wait(10)
        shutil.rmtree(space.ray_tmp, ignore_errors=True)


def post(url: str, body: str | dict[str, Any], **headers: str) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"url": url, "body": text, "headers": {"Content-Type": "application/json", **headers}}


@dataclass
class Servers:
    replicated: str  # base URLs
    single: str
    replicated_process: subprocess.Popen[bytes]
    log: Path  # its folder is the replicas' gate folder too

    def predict(self, base: str) -> str:
        return f"{base}/v1/models/replicas:predict"


@pytest.fixture(scope="module")
def servers(netns: NetNS, tmp_path_factory: pytest.TempPathFactory) -> Servers:
    """The same model served as ``replicas`` twice: on two Ray replicas, and in one process."""
    logs = tmp_path_factory.mktemp("replicas")
    folder = str(TEST_MODELS / "replicas")
    common = ["--host", "127.0.0.1", "--name", "replicas"]
    serve = [sys.executable, "-m", "kservehelper", "serve", folder, *common]
    replicated = netns.start(
        *serve, "--port", "8081", "--replicas", "2", "--max-queue", "1", log=logs / "ray.log",
        env={"REPLICAS_TEST_GATE": str(logs)},
    )  # fmt: skip
    netns.start(*serve, "--port", "8082", log=logs / "single.log")
    found = Servers("http://127.0.0.1:8081", "http://127.0.0.1:8082", replicated, logs / "ray.log")
    urls = [f"{url}/v1/models/replicas" for url in (found.replicated, found.single)]
    netns.wait_ready(urls, netns.processes, [logs / "ray.log", logs / "single.log"])
    return found


def test_two_replicas_answer_two_predictions_in_parallel(netns: NetNS, servers: Servers) -> None:
    url = servers.predict(servers.replicated)
    first, second = netns.client(
        {
            "requests": [
                post(url, {"seconds": 2, "label": "a"}),
                post(url, {"seconds": 2, "label": "b"}),
            ]
        }
    )
    assert first["status"] == second["status"] == 200, (first, second)
    a, b = json.loads(first["body"]), json.loads(second["body"])
    # Two processes, neither the server, each having loaded its own copy of the model...
    assert a["pid"] != b["pid"]
    assert servers.replicated_process.pid not in (a["pid"], b["pid"])
    assert a["loaded_in"] == a["pid"] and b["loaded_in"] == b["pid"]
    # ...working at the same time: each started before the other finished (the model's clocks).
    assert a["started"] < b["finished"] and b["started"] < a["finished"]


def test_a_request_beyond_the_queue_is_refused_with_503(netns: NetNS, servers: Servers) -> None:
    """Two replicas held busy and one request waiting (--max-queue 1): a fourth
    request is refused at once; its answer opens the gate, and the other three complete."""
    url = servers.predict(servers.replicated)
    gate = servers.log.parent / "open"
    held = {**post(url, {"mode": "gate"}), "then_create": str(gate)}
    try:
        answers = netns.client({"requests": [held] * 4})
    finally:
        gate.touch()
        gate.unlink()
    assert sorted(answer["status"] for answer in answers) == [200, 200, 200, 503], answers
    (refused,) = [json.loads(a["body"]) for a in answers if a["status"] == 503]
    assert refused["error"].startswith("every replica of replicas is busy and the queue is full")


# Requests whose answers must be the same from two replicas as from one process.
SAME_ANSWERS = {
    "out of range": {"seconds": 99},
    "unknown input": {"bogus": 1},
    "wrong type": {"label": 5},
    "not a JSON object": [1, 2],
    "the model's ValueError": {"mode": "reject", "label": "no"},
    "the model crashes": {"mode": "crash"},
    "a file": {"mode": "file", "label": "made"},
    "a stream": {"mode": "stream", "label": "s"},
}


@pytest.mark.parametrize("case", sorted(SAME_ANSWERS))
def test_answers_are_those_of_one_process(netns: NetNS, servers: Servers, case: str) -> None:
    body = SAME_ANSWERS[case]
    replicated, single = netns.client(
        {
            "requests": [
                post(servers.predict(base), body) for base in (servers.replicated, servers.single)
            ]
        }
    )
    assert replicated["status"] == single["status"], (replicated, single)
    assert replicated["content_type"] == single["content_type"]
    if single["content_type"].startswith("application/json"):
        got, expected = json.loads(replicated["body"]), json.loads(single["body"])
        got.pop("running_time", None), expected.pop("running_time", None)
        assert got == expected
    else:
        assert replicated["body"] == single["body"]


def test_streams_and_errors_keep_their_framing(netns: NetNS, servers: Servers) -> None:
    sse = {"Accept": "text/event-stream"}
    requests = [
        post(servers.predict(base), {"mode": "stream", "label": "e"}, **sse)
        for base in (servers.replicated, servers.single)
    ] + [post(servers.predict(base), "{not json") for base in (servers.replicated, servers.single)]
    sse_replicated, sse_single, bad_replicated, bad_single = netns.client({"requests": requests})
    assert sse_replicated["body"] == sse_single["body"]
    assert sse_replicated["body"].startswith('data: {"id":0,"data":"e-0"}')
    assert bad_replicated["status"] == bad_single["status"] == 400
    assert bad_replicated["body"] == bad_single["body"]


def test_schema_and_docs_are_those_of_one_process(netns: NetNS, servers: Servers) -> None:
    paths = ["/v1/models/replicas/schema", "/v1/docs/replicas"]
    requests = [
        {"method": "GET", "url": base + path}
        for path in paths
        for base in (servers.replicated, servers.single)
    ]
    schema_r, schema_s, docs_r, docs_s = netns.client({"requests": requests})
    assert schema_r == schema_s and docs_r == docs_s
    assert schema_r["status"] == 200 and "seconds" in schema_r["body"]


def test_replicas_refuse_workers_and_transformers() -> None:
    both = run_cli("serve", str(TEST_MODELS / "replicas"), "--replicas", "2", "--workers", "2")
    assert both.returncode != 0
    assert "choose one" in both.stderr and "replicas" in both.stderr
    transformer = run_cli("serve", str(REPO / "examples" / "transformer"), "--replicas", "2")
    assert transformer.returncode != 0
    assert "transformer" in transformer.stderr and "num_replicas" in transformer.stderr


def test_2_0_model_joins_an_existing_ray_cluster(netns: NetNS, tmp_path: Path) -> None:
    """``RAY_ADDRESS``: a 2.0 model (``KServeModel.serve(name, Model, num_replicas=2)`` run
    as ``python model.py``) puts its replicas on that cluster and removes them when it stops."""
    ray_bin = Path(sys.executable).with_name("ray")
    # A cluster of its own, as an operator would run it (no token auth: a test cluster).
    cluster_env = {
        "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",  # its services on 127.0.0.1
        "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled",
    }
    cluster = netns.start(
        str(ray_bin), "start", "--head", "--block", "--port", "6380", "--num-cpus", "2",
        "--include-dashboard=false", "--disable-usage-stats",
        log=tmp_path / "cluster.log", env=cluster_env,
    )  # fmt: skip
    address = {"RAY_ADDRESS": "127.0.0.1:6380", "RAY_AUTH_MODE": "disabled"}
    model = TEST_MODELS / "replicas_v2" / "model.py"
    server = netns.start(
        sys.executable, str(model), "--http_port", "8083", "--enable_grpc", "false",
        "--name", "joined",
        log=tmp_path / "server.log",
        env={**address, "KSERVEHELPER_HOST": "127.0.0.1", "PYTHONWARNINGS": "default"},
    )  # fmt: skip
    url = "http://127.0.0.1:8083/v1/models/joined"
    netns.wait_ready([url], [cluster, server], [tmp_path / "cluster.log", tmp_path / "server.log"])
    answers = netns.client(
        {"requests": [post(url + ":predict", {"text": t}) for t in ("a", "b", "c", "d")]}
    )
    bodies = [json.loads(answer["body"]) for answer in answers]
    assert [body["text"] for body in bodies] == ["a", "b", "c", "d"]
    assert all(body["pid"] == body["loaded_in"] != server.pid for body in bodies)
    status = (
        "import ray; from ray import serve; ray.init(); print(sorted(serve.status().applications))"
    )
    assert "kservehelper-joined" in netns.python(status, address)
    stop_group(server)
    log = (tmp_path / "server.log").read_text()
    assert "Started a local Ray instance" not in log
    assert "cluster 127.0.0.1:6380" in log
    assert "kservehelper.model.KServeModel is kservehelper 2.0's API" in log
    assert "kservehelper-joined" not in netns.python(status, address)  # removed, cluster kept


def test_a_private_ray_instance_binds_loopback_and_a_cluster_is_left_alone() -> None:
    """Without RAY_ADDRESS, Ray (imported by the replicas module) picks 127.0.0.1 as this node's
    address, so the instance a server starts for itself is reachable from this machine only."""
    code = (
        "import kservehelper.serving.replicas, os\n"
        "from ray._private import services\n"
        "print(services.get_node_ip_address(), os.environ.get('RAY_USAGE_STATS_ENABLED'))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    private = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, timeout=120)  # fmt: skip
    assert private.stdout.split() == ["127.0.0.1", "0"], private.stderr[-2000:]
    joined = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**env, "RAY_ADDRESS": "127.0.0.1:1"}, timeout=120)  # fmt: skip
    assert joined.stdout.split()[1] == "None", joined.stderr[-2000:]


def test_sigterm_drains_the_replicas(netns: NetNS, servers: Servers) -> None:
    """Last in this module: it stops the replicated server. A request running on a replica
    finishes; meanwhile the server is not ready and refuses new requests; then it exits 0."""
    url = servers.predict(servers.replicated)
    folder = servers.log.parent
    for marker in folder.glob("started-*"):
        marker.unlink()
    (folder / "open").unlink(missing_ok=True)
    get = {"method": "GET", "url": f"{servers.replicated}/v1/models/replicas"}
    with concurrent.futures.ThreadPoolExecutor() as pool:
        held = pool.submit(netns.client, {"requests": [post(url, {"mode": "gate"})]})
        deadline = time.monotonic() + 120
        while not list(folder.glob("started-*")):
            assert time.monotonic() < deadline and not held.done(), "the request never started"
            time.sleep(0.1)
        before = len(servers.log.read_bytes())
        servers.replicated_process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 60
        while netns.client({"requests": [get]})[0]["status"] != 503:
            assert time.monotonic() < deadline, "still ready after SIGTERM"
            time.sleep(0.2)
        (late,) = netns.client({"requests": [post(url, {"mode": "value"})]})
        assert late["status"] == 503 and json.loads(late["body"])["type"] == "ShuttingDown"
        assert not held.done()
        (folder / "open").touch()
        (answer,) = held.result(timeout=120)
    assert answer["status"] == 200, answer
    assert servers.replicated_process.wait(120) == 0
    during = servers.log.read_bytes()[before:].decode(errors="replace")
    assert "Traceback" not in during, during
