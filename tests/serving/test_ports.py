"""The port check that runs before a model loads: real sockets on this machine."""

from __future__ import annotations

import socket

import pytest

from kservehelper.errors import ServeError
from kservehelper.serving.ports import check_port_free
from tests.conftest import free_port


def test_a_free_port_passes_and_stays_free() -> None:
    port = free_port()
    check_port_free("127.0.0.1", port, what="HTTP port", fix="use another")
    check_port_free("127.0.0.1", port, what="HTTP port", fix="use another")  # released


def test_a_listening_port_is_refused_with_the_fix() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        with pytest.raises(ServeError) as caught:
            check_port_free("127.0.0.1", port, what="HTTP port", fix="choose another: --port N")
        assert str(caught.value) == (
            f"HTTP port {port} on 127.0.0.1 is already in use: stop the program listening "
            "there, or choose another: --port N"
        )
        # All interfaces include 127.0.0.1.
        with pytest.raises(ServeError, match=f"HTTP port {port} on all interfaces"):
            check_port_free("0.0.0.0", port, what="HTTP port", fix="")


def test_an_address_this_machine_does_not_have() -> None:
    # 192.0.2.1 is reserved for documentation (TEST-NET-1): no machine has it. Binding sends
    # nothing anywhere.
    with pytest.raises(ServeError, match="not an address of this machine; use --host"):
        check_port_free("192.0.2.1", free_port(), what="HTTP port", fix="")
