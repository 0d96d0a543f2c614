"""The server listens where it is told (``--host`` / ``KSERVEHELPER_HOST``): HTTP and gRPC both.

127.0.0.2 is another address of this machine's loopback interface: a server bound to
127.0.0.1 only must refuse connections there, one bound to all interfaces would accept them.
"""

from __future__ import annotations

import os
import socket
import sys

import grpc
import pytest
from kserve.protocol.grpc import grpc_predict_v2_pb2 as pb
from kserve.protocol.grpc import grpc_predict_v2_pb2_grpc as services

from tests.conftest import EXAMPLES, free_port, start_server

OTHER_LOOPBACK = "127.0.0.2"


def accepts(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        try:
            sock.connect((host, port))
        except OSError:
            return False
        return True


def test_python_model_py_puts_grpc_on_kservehelper_host_too(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    http, grpc_port = free_port(), free_port()
    server = start_server(
        [
            *(sys.executable, str(EXAMPLES / "hello" / "model.py")),
            *("--http_port", str(http), "--grpc_port", str(grpc_port)),
        ],
        "hello",
        tmp_path_factory.mktemp("grpc") / "server.log",
        http,
        env={**os.environ, "KSERVEHELPER_HOST": "127.0.0.1"},
    )
    try:
        with grpc.insecure_channel(f"127.0.0.1:{grpc_port}") as channel:
            stub = services.GRPCInferenceServiceStub(channel)
            assert stub.ServerLive(pb.ServerLiveRequest(), timeout=30).live
        assert accepts("127.0.0.1", http)
        assert not accepts(OTHER_LOOPBACK, grpc_port), "gRPC listens beyond 127.0.0.1"
        assert not accepts(OTHER_LOOPBACK, http), "HTTP listens beyond 127.0.0.1"
    finally:
        server.stop()
    assert f"Starting gRPC server on 127.0.0.1:{grpc_port}" in server.log()


def test_serve_takes_kservehelper_host_when_no_host_option(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    port = free_port()
    server = start_server(
        [sys.executable, "-m", "kservehelper", "serve", str(EXAMPLES / "hello"), "-p", str(port)],
        "hello",
        tmp_path_factory.mktemp("host") / "server.log",
        port,
        env={**os.environ, "KSERVEHELPER_HOST": "127.0.0.1"},
    )
    try:
        assert accepts("127.0.0.1", port)
        assert not accepts(OTHER_LOOPBACK, port)
    finally:
        server.stop()
