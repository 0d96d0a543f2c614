"""The outbound policy: which URLs a request may make the server reach, and how it reaches them.

A URL that comes from a request (a file input, ``upload_webhook``) is untrusted. Before the
server connects anywhere on a request's behalf:

1. The URL is parsed strictly (:mod:`kservehelper.storage.urls`): credentials in it,
   backslashes, ``.``/``..`` path segments (also spelled ``%2e``), encoded slashes and unusual
   spellings of an IP address (``2130706433``, ``127.1``, ``0x7f.1``) are refused; host names
   are lower-cased, IPv6 written canonically, default ports filled in.
2. If the operator set an allow-list (``KSERVEHELPER_ALLOWED_INPUTS`` /
   ``KSERVEHELPER_ALLOWED_DESTINATIONS``), the URL must fall under one of its entries
   (``scheme://host[:port][/path-prefix]``, ``s3://bucket/prefix``, ``gs://bucket/prefix``;
   host exact, no port = any port, the prefix compared on whole path segments).
3. At connection time (:class:`PinnedTransport`), the host name is resolved, **every** address it
   resolves to is checked, and the connection goes to a checked address (so DNS cannot answer
   differently between the check and the connection). Loopback, private (RFC 1918, ULA),
   shared (CGNAT), link-local (cloud metadata), multicast, reserved and unspecified addresses
   are refused unless an allow-list entry names that host.

The operator's own destination (``KSERVEHELPER_UPLOAD_TO`` / ``upload_to=``) is trusted: it is
checked once at start-up (:func:`trust_operator_destination`) and exempt from these rules. The
upload token goes only to origins the operator named (:func:`token_allowed`).
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import os
import socket
import ssl
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import httpx

from kservehelper.errors import ConfigError
from kservehelper.settings import env_name, get_settings
from kservehelper.storage.urls import (
    DEFAULT_PORTS,
    AddressRefused,
    AllowList,
    Target,
    UrlRefused,
    allow_list,
    parse_target,
    refusal,
)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_REDIRECTS = 5
"""Redirects followed when downloading an input (each one checked like the first URL)."""

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def check_request_url(url: str, allowed: AllowList, *, field: str) -> Target:
    """Parse a request-supplied URL and check it against ``allowed``; HTTP 400 naming ``field``
    otherwise.

    A host written as an IP address (or ``localhost``) is checked here, before any work is
    done for the request; a host name is checked when connecting (:class:`PinnedTransport`).
    """
    try:
        target = parse_target(url.strip())
        if target.scheme in DEFAULT_PORTS:
            ConnectRule.for_list(allowed).check_literal(target)
    except UrlRefused as error:
        raise refusal(field, error) from None
    if not allowed.admits(target):
        raise refusal(
            field,
            UrlRefused(
                f"{target.origin}{target.path} is not allowed on this server "
                f"({allowed.variable}: {allowed.describe()})",
                allowed.refused_kind,
            ),
        )
    return target


# -- addresses --------------------------------------------------------------------------------


def non_public_reason(address: IPAddress) -> str | None:
    """Why ``address`` is not a public one a request may reach, or ``None`` if it is."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return non_public_reason(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
        if address.is_site_local:
            return "a site-local address"
    checks = (
        (address.is_unspecified, "the unspecified address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address (cloud metadata lives there)"),
        (address.is_multicast, "a multicast address"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT,
         "a shared (CGNAT) address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )  # fmt: skip
    return next((reason for failed, reason in checks if failed), None)


async def resolve_host(host: str, port: int) -> list[IPAddress]:
    """Every address ``host`` resolves to (an IP literal is itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise httpx.ConnectError(f"cannot resolve {host!r}: {error.strerror}") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise httpx.ConnectError(f"cannot resolve {host!r}: no addresses")
    return addresses


@dataclass(frozen=True)
class ConnectRule:
    """What :class:`PinnedTransport` lets a connection reach.

    ``private_hosts``: host names (or IP texts) that may resolve to non-public addresses, i.e.
    the hosts an allow-list entry names. ``variable`` is named in refusals.
    """

    private_hosts: frozenset[str] = frozenset()
    variable: str = ""

    @classmethod
    def for_list(cls, allowed: AllowList) -> ConnectRule:
        return cls(frozenset(entry.host for entry in allowed.entries), allowed.variable)

    def check_literal(self, target: Target) -> None:
        """Refuse at once a host that is a non-public IP address or a ``localhost`` name."""
        if target.host in self.private_hosts:
            return
        address = target.ip
        if address is None and (target.host == "localhost" or target.host.endswith(".localhost")):
            address = ipaddress.IPv4Address("127.0.0.1")
        reason = non_public_reason(address) if address is not None else None
        if reason is not None:
            hint = _allow_hint(target.host, target.port or 80, self.variable, target.scheme)
            raise AddressRefused(f"{target.host} is {reason}, which requests may not reach; {hint}")

    async def checked_addresses(
        self, host: str, port: int, scheme: str = "http"
    ) -> list[IPAddress]:
        """The addresses to connect to for ``host``: all it resolves to, each one checked.
        :class:`AddressRefused` if any is not public and no allow-list entry names the host."""
        name = host.lower().strip("[]")
        addresses = await resolve_host(name, port)
        if name in self.private_hosts:
            return addresses
        for address in addresses:
            reason = non_public_reason(address)
            if reason is not None:
                what = name if str(address) == name else f"{name} ({address})"
                hint = _allow_hint(name, port, self.variable, scheme)
                raise AddressRefused(f"{what} is {reason}, which requests may not reach; {hint}")
        return addresses


def _allow_hint(host: str, port: int, variable: str, scheme: str) -> str:
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    name = variable or env_name("allowed_inputs")
    return f"to allow it, add an entry naming the host to {name}, e.g. {scheme}://{shown}:{port}"


class PinnedTransport(httpx.AsyncBaseTransport):
    """An httpx transport that checks where each request goes, then connects to the checked
    address (Host header and TLS server name stay the host name's)."""

    def __init__(self, rule: ConnectRule, **options: Any) -> None:
        self.rule = rule
        self.inner = httpx.AsyncHTTPTransport(**options)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or DEFAULT_PORTS.get(request.url.scheme, 80)
        addresses = await self.rule.checked_addresses(host, port, request.url.scheme)
        if request.url.scheme == "https":
            request.extensions = {**request.extensions, "sni_hostname": host}
        failure: httpx.ConnectError | None = None
        for address in addresses:  # in resolver order, as a plain client would try them
            request.url = request.url.copy_with(host=str(address))
            try:
                return await self.inner.handle_async_request(request)
            except httpx.ConnectError as error:
                failure = error
        raise failure or httpx.ConnectError(f"no address to connect to for {host!r}")

    async def aclose(self) -> None:
        await self.inner.aclose()


def tls_context() -> ssl.SSLContext:
    """The TLS settings every outbound client shares: certificates verified against the
    system's CA bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR`` when set.

    Built once per bundle: loading a CA bundle takes tens of milliseconds of CPU, which a
    context per download or delivery would spend on the event loop of every request.
    """
    return _tls_context(os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))


@functools.lru_cache(maxsize=4)
def _tls_context(cert_file: str | None, cert_dir: str | None) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=True)  # reads the two variables


def pinned_client(
    rule: ConnectRule | None, *, limits: httpx.Limits | None = None, **options: Any
) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient`` whose connections obey ``rule`` (``None``: a trusted peer,
    connected as is). Proxy variables are ignored: a proxy would resolve names itself."""
    limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
    verify = tls_context()
    transport: httpx.AsyncBaseTransport = (
        PinnedTransport(rule, limits=limits, verify=verify)
        if rule is not None
        else httpx.AsyncHTTPTransport(limits=limits, verify=verify)
    )
    return httpx.AsyncClient(transport=transport, trust_env=False, **options)


def check_settings() -> None:
    """Parse the allow-lists and token origins of the environment now (at start-up), so a
    malformed entry stops the server with a one-line :class:`ConfigError`."""
    settings = get_settings()
    allow_list(settings.allowed_inputs, env_name("allowed_inputs"), "input_not_allowed")
    allow_list(settings.allowed_destinations, env_name("allowed_destinations"),
               "destination_not_allowed")  # fmt: skip
    for origin in settings.upload_token_origins:
        try:
            target = parse_target(origin)
        except UrlRefused as error:
            raise ConfigError(f"{env_name('upload_token_origins')}: {origin!r}: {error}") from None
        if target.scheme not in DEFAULT_PORTS:
            raise ConfigError(
                f"{env_name('upload_token_origins')}: {origin!r} is not an http(s) origin"
            )


# -- the operator's destination and credentials ----------------------------------------------

_trusted: set[str] = set()
_trusted_lock = threading.Lock()


def trust_operator_destination(uri: str | None) -> None:
    """Check the operator's default destination at start-up and exempt it from the request rules.

    Raises :class:`ConfigError` (one line: the server does not start) for an unknown scheme, a
    malformed URL or bucket, or a local folder that cannot be created or written.
    """
    if not uri:
        return
    uri = uri.strip()
    variable = f"{env_name('upload_to')} / upload_to"
    scheme = urlsplit(uri).scheme.lower()
    if scheme in ("", "file"):
        folder = Path(unquote(urlsplit(uri).path) if scheme else uri)
        if not folder.is_absolute():
            raise ConfigError(f"{variable}: {uri!r} must be an absolute folder path")
        _check_writable(folder, variable)
    else:
        try:
            parse_target(uri)
        except UrlRefused as error:
            raise ConfigError(
                f"{variable}: {uri!r} is not a destination ({error}); expected an http(s) "
                "webhook URL, s3://bucket/prefix, gs://bucket/prefix or an absolute folder"
            ) from None
    with _trusted_lock:
        _trusted.add(uri)


def _check_writable(folder: Path, variable: str) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".kservehelper-write-check-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ConfigError(
            f"{variable}: cannot write to {folder}: {error.strerror or error}"
        ) from None


def is_trusted_destination(uri: str) -> bool:
    """Whether ``uri`` is the operator's own destination (checked at start-up)."""
    uri = uri.strip()
    return bool(uri) and (uri in _trusted or uri == (get_settings().upload_to or "").strip())


def token_origins() -> set[str]:
    """The origins the upload token may be sent to: the operator's destinations and
    ``KSERVEHELPER_UPLOAD_TOKEN_ORIGINS``."""
    settings = get_settings()
    origins: set[str] = set()
    for uri in [*_trusted, settings.upload_to or "", *settings.upload_token_origins]:
        try:
            target = parse_target(uri.strip())
        except UrlRefused:
            continue
        if target.scheme in DEFAULT_PORTS:
            origins.add(target.origin)
    return origins


def token_allowed(url: str, extra_origins: Iterable[str] = ()) -> bool:
    """Whether the upload token may be sent with a request to ``url``."""
    try:
        target = parse_target(url)
    except UrlRefused:
        return False
    allowed = token_origins()
    for uri in extra_origins:
        try:
            allowed.add(parse_target(uri).origin)
        except UrlRefused:
            continue
    return target.origin in allowed
