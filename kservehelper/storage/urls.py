"""Request-supplied URLs as the outbound policy sees them: strict parsing and allow-lists.

:func:`parse_target` refuses the shapes that let a URL mean something else to the server than
to the check (credentials, backslashes, ``.``/``..`` segments also spelled ``%2e``, encoded
slashes, IPv4 addresses spelled ``2130706433``, ``127.1`` or ``0x7f.1``) and normalises the rest
(lower-cased host, canonical IPv6, default port). An :class:`AllowList` holds the entries of
``KSERVEHELPER_ALLOWED_INPUTS`` / ``KSERVEHELPER_ALLOWED_DESTINATIONS``
(``scheme://host[:port][/path-prefix]``, ``s3://bucket/prefix``, ``gs://bucket/prefix``).
What is done with a parsed URL is :mod:`kservehelper.storage.policy`'s business.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from kservehelper.errors import ConfigError, InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

DEFAULT_PORTS = {"http": 80, "https": 443}
BUCKET_SCHEMES = ("s3", "gs")

_CANONICAL_IPV4 = re.compile(
    r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$"
)
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$")
_HOST_LABEL = re.compile(r"^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


class UrlRefused(ValueError):
    """A URL the policy refuses; ``kind`` is the error type reported to the client."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind


class AddressRefused(UrlRefused):
    """A host that resolves to an address requests may not reach (raised at connect time)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, "address_not_allowed")


def refusal(field: str, error: UrlRefused) -> InputError:
    """The HTTP 400 for a refused URL, naming the request field."""
    return InputError(
        f"invalid input {field!r}: {error}",
        [{"loc": [field], "msg": str(error), "type": error.kind}],
    )


# -- parsing ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """A URL as the policy compares it.

    ``host`` is the lower-cased host name, the canonical text of an IP address, or the bucket
    of an ``s3://`` / ``gs://`` URI. ``port`` is the effective port (``None`` for buckets).
    ``segments`` are the decoded path segments (object keys for buckets).
    """

    scheme: str
    host: str
    port: int | None
    segments: tuple[str, ...]

    @property
    def origin(self) -> str:
        """``scheme://host:port`` (IPv6 in brackets), for comparing where credentials go."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}" + (f":{self.port}" if self.port is not None else "")

    @property
    def path(self) -> str:
        """The decoded path (``""`` if none)."""
        return "/" + "/".join(self.segments) if self.segments else ""

    @property
    def ip(self) -> IPAddress | None:
        """The host as an IP address, if it is one."""
        try:
            return ipaddress.ip_address(self.host)
        except ValueError:
            return None


def parse_target(url: str) -> Target:
    """Parse ``url`` strictly (see the module docs); raises :class:`UrlRefused`."""
    if any(char in url for char in "\\\t\r\n ") or any(ord(char) < 32 for char in url):
        raise UrlRefused("backslashes, spaces and control characters are not allowed in URLs",
                         "url_malformed")  # fmt: skip
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in DEFAULT_PORTS and scheme not in BUCKET_SCHEMES:
            raise UrlRefused(f"unsupported URL scheme {scheme!r}", "unsupported_scheme")
        if "@" in parts.netloc:
            raise UrlRefused(
                "URLs with credentials (user:password@) are not accepted", "url_credentials"
            )
        if scheme in BUCKET_SCHEMES:
            return Target(scheme, _bucket(parts.netloc), None, _segments(parts.path))
        host = _host(parts.netloc, parts.hostname)
        port = parts.port if parts.port is not None else DEFAULT_PORTS[scheme]
    except ValueError as error:  # urlsplit / .port on malformed input
        if isinstance(error, UrlRefused):
            raise
        raise UrlRefused(f"malformed URL: {error}", "url_malformed") from None
    return Target(scheme, host, port, _segments(parts.path))


def _bucket(netloc: str) -> str:
    if not _BUCKET.match(netloc):
        raise UrlRefused(f"{netloc!r} is not a valid bucket name", "url_malformed")
    return netloc


def _host(netloc: str, hostname: str | None) -> str:
    if not hostname:
        raise UrlRefused("the URL has no host", "url_malformed")
    if netloc.startswith("["):
        if "%" in hostname:
            raise UrlRefused("IPv6 zone identifiers are not accepted", "url_malformed")
        try:
            return ipaddress.IPv6Address(hostname).compressed
        except ValueError:
            raise UrlRefused(f"{hostname!r} is not an IPv6 address", "url_malformed") from None
    if not hostname.isascii():
        raise UrlRefused(
            "write internationalised host names in their ASCII (xn--) form", "url_malformed"
        )
    host = hostname.lower().removesuffix(".")
    labels = host.split(".")
    if _NUMERIC_LABEL.match(labels[-1]):
        if _CANONICAL_IPV4.match(host):
            return host
        # What WHATWG URL parsers and inet_aton read as an IPv4 address in another spelling.
        raise UrlRefused(
            f"{hostname!r} is an unusual spelling of an IP address; write it as a.b.c.d",
            "url_ip_spelling",
        )
    if not all(_HOST_LABEL.match(label) for label in labels):
        raise UrlRefused(f"{hostname!r} is not a valid host name", "url_malformed")
    return host


def _segments(path: str) -> tuple[str, ...]:
    raw = path.split("/")[1:] if path.startswith("/") else ([path] if path else [])
    segments = []
    for segment in raw:
        lowered = segment.lower()
        if "%2f" in lowered or "%5c" in lowered:
            raise UrlRefused("encoded slashes (%2F, %5C) are not allowed in URL paths",
                             "url_path_traversal")  # fmt: skip
        decoded = unquote(segment)
        if decoded in (".", ".."):
            raise UrlRefused("'.' and '..' path segments are not allowed in URLs",
                             "url_path_traversal")  # fmt: skip
        segments.append(decoded)
    return tuple(segments)


# -- allow-lists ------------------------------------------------------------------------------


@dataclass(frozen=True)
class AllowEntry:
    """One allow-list entry: ``scheme://host[:port][/path-prefix]`` or ``s3|gs://bucket[/prefix]``.

    ``port`` ``None`` allows any port; ``prefix`` is compared on whole path segments; ``host``
    empty (the entry ``s3://`` or ``gs://``) allows every bucket.
    """

    scheme: str
    host: str
    port: int | None
    prefix: tuple[str, ...]
    text: str

    @classmethod
    def parse(cls, text: str, variable: str) -> AllowEntry:
        """Parse one entry of ``variable``; a malformed entry is a :class:`ConfigError`.

        ``s3://`` or ``gs://`` alone admits every bucket of that store.
        """
        if text.lower() in ("s3://", "gs://"):
            return cls(text[:2].lower(), "", None, (), text)
        try:
            target = parse_target(text)
            parts = urlsplit(text)
            if parts.query or parts.fragment:
                raise UrlRefused("an entry has no query string or fragment", "url_malformed")
            explicit_port = parts.port if target.scheme in DEFAULT_PORTS else None
        except (UrlRefused, ValueError) as error:
            raise ConfigError(
                f"{variable}: entry {text!r} is not scheme://host[:port][/path] "
                f"(or s3://bucket/prefix, gs://bucket/prefix): {error}"
            ) from None
        prefix = target.segments[:-1] if target.segments[-1:] == ("",) else target.segments
        return cls(target.scheme, target.host, explicit_port, prefix, text)

    def admits(self, target: Target) -> bool:
        """Whether ``target`` falls under this entry."""
        return (
            self.scheme == target.scheme
            and (self.host == target.host or (not self.host and self.scheme in BUCKET_SCHEMES))
            and (self.port is None or self.port == target.port)
            and target.segments[: len(self.prefix)] == self.prefix
        )


class AllowList:
    """The parsed entries of one allow-list variable (empty: no restriction by prefix).

    ``refused_kind`` is the error type of a URL outside the list.
    """

    def __init__(self, entries: Iterable[str], variable: str, refused_kind: str) -> None:
        self.variable = variable
        self.refused_kind = refused_kind
        self.entries = tuple(AllowEntry.parse(entry, variable) for entry in entries)

    def __bool__(self) -> bool:
        return bool(self.entries)

    def admits(self, target: Target) -> bool:
        """Whether ``target`` is under an entry (always, when the list is empty)."""
        return not self.entries or any(entry.admits(target) for entry in self.entries)

    def names_host(self, host: str) -> bool:
        """Whether an entry names ``host`` (which may then resolve to a private address)."""
        return any(entry.host == host for entry in self.entries)

    def describe(self) -> str:
        return ", ".join(entry.text for entry in self.entries)


_lists: dict[tuple[tuple[str, ...], str, str], AllowList] = {}


def allow_list(entries: Sequence[str], variable: str, refused_kind: str) -> AllowList:
    """The parsed allow-list (cached: each list is parsed once per process)."""
    key = (tuple(entries), variable, refused_kind)
    if key not in _lists:
        _lists[key] = AllowList(entries, variable, refused_kind)
    return _lists[key]
