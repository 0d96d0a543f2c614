"""Checking that the server can listen where it was asked to, before the model loads.

A model's ``load()`` can take minutes (weights); a port that is already taken would otherwise
be found only after it, when the server binds. The check binds and releases the address the
way the server will (``SO_REUSEADDR``, as uvicorn does, so a port in TIME_WAIT counts as free).
"""

from __future__ import annotations

import errno
import socket

from kservehelper.errors import ServeError

ALL_INTERFACES = ("", "0.0.0.0", "::")


def check_port_free(host: str, port: int, *, what: str, fix: str) -> None:
    """Raise :class:`ServeError` if ``host:port`` cannot be listened on right now.

    ``what`` names the listener (``"HTTP port"``); ``fix`` says how to pick another port.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    where = f"{what} {port} on {_describe(host)}"
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise ServeError(
                f"{where} is already in use: stop the program listening there, or {fix}"
            ) from None
        if error.errno == errno.EACCES:
            raise ServeError(
                f"{where}: permission denied (ports below 1024 need root); {fix}"
            ) from None
        if error.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            raise ServeError(
                f"cannot listen on {host!r}: not an address of this machine; use --host "
                "127.0.0.1 (this machine only) or 0.0.0.0 (all interfaces)"
            ) from None
        raise ServeError(f"{where}: cannot listen there: {error.strerror or error}") from None


def _describe(host: str) -> str:
    return "all interfaces" if host in ALL_INTERFACES else host
