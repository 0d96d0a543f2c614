"""Request-supplied URLs: strict parsing (IP spellings, dot segments, credentials) and the
allow-list grammar."""

from __future__ import annotations

import pytest

from kservehelper.errors import ConfigError
from kservehelper.storage import policy, urls

# -- parsing ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://2130706433/",  # 127.0.0.1 as one number
        "http://127.1/",
        "http://0x7f.1/",
        "http://0x7f000001/",
        "http://0177.0.0.1/",
        "http://127.0.0.01/",
        "http://1.2.3/",
    ],
)
def test_unusual_ip_spellings_are_refused(url: str) -> None:
    with pytest.raises(urls.UrlRefused) as caught:
        urls.parse_target(url)
    assert caught.value.kind == "url_ip_spelling"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://user:pw@example.com/x", "url_credentials"),
        ("http://example.com@127.0.0.1/x", "url_credentials"),
        ("http://example.com\\@127.0.0.1/", "url_malformed"),
        ("http://example.com/files/../admin", "url_path_traversal"),
        ("http://example.com/files/%2e%2e/admin", "url_path_traversal"),
        ("http://example.com/files/%2E/admin", "url_path_traversal"),
        ("http://example.com/files%2f..%2fadmin", "url_path_traversal"),
        ("http://example.com/a%5cb", "url_path_traversal"),
        ("http://[fe80::1%25eth0]/", "url_malformed"),
        ("http://exämple.com/", "url_malformed"),
        ("http://exa mple.com/", "url_malformed"),
        ("http:///nohost", "url_malformed"),
        ("http://example.com:99999/", "url_malformed"),
        ("ftp://example.com/x", "unsupported_scheme"),
        ("s3://../x", "url_malformed"),
        ("s3://bucket/a/../secret", "url_path_traversal"),
    ],
)
def test_dangerous_url_shapes_are_refused(url: str, kind: str) -> None:
    with pytest.raises(urls.UrlRefused) as caught:
        urls.parse_target(url)
    assert caught.value.kind == kind, caught.value


def test_urls_are_normalised() -> None:
    target = urls.parse_target("HTTP://Files.Example.COM./a/%7Euser/b.png?x=1#f")
    assert (target.scheme, target.host, target.port) == ("http", "files.example.com", 80)
    assert target.segments == ("a", "~user", "b.png")
    v6 = urls.parse_target("https://[0:0:0:0:0:ffff:7f00:1]:8443/")
    assert (v6.host, v6.port, v6.origin) == ("::ffff:7f00:1", 8443, "https://[::ffff:7f00:1]:8443")
    assert urls.parse_target("s3://bucket/a/b").segments == ("a", "b")


# -- allow-lists ------------------------------------------------------------------------------


def admits(entry: str, url: str) -> bool:
    return urls.AllowEntry.parse(entry, "TEST").admits(urls.parse_target(url))


@pytest.mark.parametrize(
    ("entry", "url", "expected"),
    [
        ("http://127.0.0.1", "http://127.0.0.1:8000/upload", True),  # no port: any port
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000/upload", True),
        ("http://127.0.0.1:8000", "http://127.0.0.1:8001/upload", False),
        ("https://files.example.com", "https://files.example.com/x", True),
        ("https://files.example.com", "http://files.example.com/x", False),  # scheme
        ("https://files.example.com", "https://evil.files.example.com/x", False),  # host exact
        ("https://example.com/files", "https://example.com/files", True),
        ("https://example.com/files", "https://example.com/files/a/b.png", True),
        ("https://example.com/files/", "https://example.com/files/a", True),
        ("https://example.com/files", "https://example.com/files-private/a", False),
        ("https://example.com/files", "https://example.com/filesx", False),
        ("https://example.com/files", "https://example.com/other", False),
        ("https://example.com/a%20b", "https://example.com/a b/c".replace(" ", "%20"), True),
        ("s3://models/out", "s3://models/out/run1/x.png", True),
        ("s3://models/out", "s3://models/output/x.png", False),
        ("s3://models", "gs://models/x", False),
        ("s3://", "s3://anything/x", True),
    ],
)
def test_allow_list_entries(entry: str, url: str, expected: bool) -> None:
    assert admits(entry, url) is expected


@pytest.mark.parametrize(
    "entry",
    ["127.0.0.1:8000", "http://", "http://x/../y", "ftp://x", "http://x/?q=1", "http://a@b"],
)
def test_malformed_allow_list_entries_are_config_errors(entry: str) -> None:
    with pytest.raises(ConfigError, match="KSERVEHELPER_ALLOWED_INPUTS: entry"):
        urls.AllowEntry.parse(entry, "KSERVEHELPER_ALLOWED_INPUTS")


def test_settings_are_checked_at_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    from kservehelper.settings import reset_settings

    monkeypatch.setenv("KSERVEHELPER_ALLOWED_DESTINATIONS", "http://ok.example.com, bad entry")
    reset_settings()
    with pytest.raises(ConfigError, match="KSERVEHELPER_ALLOWED_DESTINATIONS: entry 'bad'"):
        policy.check_settings()
    monkeypatch.delenv("KSERVEHELPER_ALLOWED_DESTINATIONS")
    monkeypatch.setenv("KSERVEHELPER_UPLOAD_TOKEN_ORIGINS", "s3://bucket")
    reset_settings()
    with pytest.raises(ConfigError, match="KSERVEHELPER_UPLOAD_TOKEN_ORIGINS"):
        policy.check_settings()
