"""Source URL syntax checks (API side) and the address classifier (worker side): pure logic."""

from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address

import pytest

from common.errors import InvalidArgument
from tasks.source_urls import validate_source_url
from worker_svc.sources import (
    FailureCode,
    IPNetwork,
    SourceError,
    blocked_reason,
    parse_allowed_networks,
    parse_ip_host,
    refusal_reason,
)

pytestmark = pytest.mark.unit


# --- validate_source_url -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com/image.jpg",
        "http://example.com",
        "HTTP://Example.COM:8080/a/b.png?size=large&x=1#frag",
        "https://bücher.example/bild.png",
        "https://cdn_1.example.com/x.webp",
        "http://93.184.216.34/x.png",
        "http://[2606:2800:220:1:248:1893:25c8:1946]/x.png",
        "https://example.com./trailing-dot",
        "https://example.com:65535/",
        "http://example.com/a%20b.png",
        # Syntactically fine: the worker refuses these at connect time (addresses are not its job here).
        "http://127.0.0.1/x",
        "http://2130706433/",
        "http://[::ffff:127.0.0.1]/",
    ],
)
def test_good_urls_pass(url: str) -> None:
    assert validate_source_url(url) == url


def test_surrounding_whitespace_is_removed() -> None:
    assert validate_source_url("  https://example.com/x.png\n") == "https://example.com/x.png"


@pytest.mark.parametrize(
    ("url", "expected_words"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("ftp://example.com/x.png", "only http and https"),
        ("file:///etc/passwd", "only http and https"),
        ("gopher://example.com/", "only http and https"),
        ("javascript:alert(1)", "only http and https"),
        ("example.com/x.png", "only http and https"),
        ("//example.com/x.png", "only http and https"),
        ("http:example.com/x.png", "must start with http://"),
        ("http:/example.com/x.png", "must start with http://"),
        ("http:///x.png", "needs a host"),
        ("http://:80/x.png", "needs a host"),
        ("http://user:secret@example.com/x.png", "credentials"),
        ("http://user@example.com/x.png", "credentials"),
        ("http://@example.com/x.png", "credentials"),
        ("http://example.com/a b.png", "whitespace"),
        ("http://exa mple.com/", "whitespace"),
        ("http://example.com/\tx", "whitespace"),
        ("http://example.com/\x00", "control character"),
        ("http://example.com/\x7f", "control character"),
        ("http://example.com/\u200bx", "control character"),
        ("http://evil.example\\@good.example/", "backslash"),
        ("http://example.com:0/", "out of range"),
        ("http://example.com:65536/", "out of range"),
        ("http://example.com:99999/", "out of range"),
        ("http://example.com:port/", "not valid"),
        ("http://a..b/", "not a valid host name"),
        ("http://-leading.example/", "not a valid host name"),
        ("http://exa%41mple.com/", "contains '%'"),
        ("http://[fe80::1%25eth0]/", "contains '%'"),
        ("http://[::ffff:zz]/", "not valid"),
        ("http://[::1/", "not valid"),
        ("https://example.com/" + "a" * 2048, "at most 2048"),
    ],
)
def test_bad_urls_are_refused_with_a_reason(url: str, expected_words: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_source_url(url)
    assert caught.value.field == "source_url"
    assert expected_words in caught.value.message


def test_length_limit_is_inclusive() -> None:
    prefix = "https://example.com/"
    exactly = prefix + "a" * (2048 - len(prefix))
    assert validate_source_url(exactly) == exactly


# --- address classifier --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        # IPv4
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("169.254.169.254", "metadata"),
        ("169.254.1.1", "link-local"),
        ("100.64.0.1", "carrier-grade NAT"),
        ("100.127.255.255", "carrier-grade NAT"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 - an address under test; nothing binds
        ("0.1.2.3", "unspecified"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("255.255.255.255", "broadcast"),
        ("240.0.0.1", "reserved"),
        ("192.0.0.8", "reserved"),
        ("192.0.2.10", "documentation"),
        ("198.51.100.7", "documentation"),
        ("203.0.113.9", "documentation"),
        ("198.18.0.1", "benchmarking"),
        # IPv6
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("fc00::1", "private"),
        ("fd12:3456:789a::1", "private"),
        ("fd00:ec2::254", "metadata"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("febf::1", "link-local"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast"),
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("100::1", "discard"),
        ("64:ff9b:1::1", "local NAT64"),
        # IPv6 forms that carry a forbidden IPv4 address
        ("::ffff:127.0.0.1", "IPv4-mapped IPv6 address carrying a loopback address (127.0.0.1)"),
        ("::ffff:10.0.0.1", "IPv4-mapped IPv6 address carrying a private address (10.0.0.1)"),
        ("::ffff:169.254.169.254", "carrying the cloud metadata address"),
        ("::ffff:0.0.0.0", "carrying an unspecified address"),
        ("::127.0.0.1", "IPv4-compatible"),
        ("::10.0.0.1", "IPv4-compatible"),
        ("::8.8.8.8", "IPv4-compatible"),
        ("2002:7f00:1::", "6to4 address carrying a loopback address (127.0.0.1)"),
        ("2002:a00:1::1", "6to4 address carrying a private address (10.0.0.1)"),
        ("2002:a9fe:a9fe::", "6to4 address carrying the cloud metadata address"),
        ("64:ff9b::7f00:1", "NAT64 address carrying a loopback address (127.0.0.1)"),
        ("64:ff9b::a9fe:a9fe", "NAT64 address carrying the cloud metadata address"),
        ("64:ff9b::c0a8:101", "NAT64 address carrying a private address (192.168.1.1)"),
        # Teredo: server 65.54.227.120, client 127.0.0.1 (stored inverted)
        ("2001:0:4136:e378:8000:63bf:80ff:fffe", "Teredo tunnel address (carrying 127.0.0.1)"),
        ("2001::1", "Teredo"),
    ],
)
def test_forbidden_addresses_are_classified(address: str, reason: str) -> None:
    found = blocked_reason(ip_address(address))
    assert found is not None
    assert reason in found


@pytest.mark.parametrize(
    "address",
    [
        "93.184.216.34",
        "8.8.8.8",
        "1.1.1.1",
        "172.32.0.1",
        "100.128.0.1",
        "169.253.255.255",
        "2606:2800:220:1:248:1893:25c8:1946",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",
        "2002:808:808::1",
    ],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(ip_address(address)) is None


def test_allowlist_overrides_only_what_it_contains() -> None:
    allowed: list[IPNetwork] = [IPv4Network("127.0.0.1/32"), IPv6Network("::1/128")]
    assert refusal_reason(ip_address("127.0.0.1"), allowed) is None
    assert refusal_reason(ip_address("::1"), allowed) is None
    assert refusal_reason(ip_address("127.0.0.2"), allowed) == "a loopback address"
    assert refusal_reason(ip_address("10.0.0.1"), allowed) == "a private address"
    assert refusal_reason(ip_address("::ffff:127.0.0.1"), allowed) is not None
    assert refusal_reason(ip_address("10.0.0.1"), []) == "a private address"


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104 - an address under test; nothing binds
        ("0xa9.0xfe.0xa9.0xfe", "169.254.169.254"),
        ("10.0.0.1.", "10.0.0.1"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1"),
        ("[::1]", "::1"),
        ("fe80::1%eth0", "fe80::1%eth0"),
    ],
)
def test_numeric_hosts_are_read_as_the_address_they_reach(host: str, expected: str) -> None:
    parsed = parse_ip_host(host)
    assert parsed == ip_address(expected)
    assert blocked_reason(parsed) is not None


@pytest.mark.parametrize("host", ["example.com", "0x7f.example", "1e100.net", "localhost", "123.example"])
def test_host_names_are_not_mistaken_for_addresses(host: str) -> None:
    assert parse_ip_host(host) is None


@pytest.mark.parametrize("host", ["09.1", "1.2.3.4.5", "example.1", "4294967296", "::ffff:zz"])
def test_invalid_numeric_hosts_are_errors(host: str) -> None:
    with pytest.raises(ValueError, match="not a valid"):
        parse_ip_host(host)


def test_allowlist_from_configuration() -> None:
    assert parse_allowed_networks(" 127.0.0.0/8, ::1 ,,10.1.2.3/24") == [
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
        IPv4Network("10.1.2.0/24"),
    ]
    assert parse_allowed_networks("") == []


def test_source_errors_know_whether_to_retry() -> None:
    assert SourceError(FailureCode.SOURCE_UNREACHABLE, "x").retryable
    assert SourceError(FailureCode.SOURCE_TIMEOUT, "x").retryable
    assert not SourceError(FailureCode.SOURCE_BLOCKED, "x").retryable
    assert not SourceError("SOURCE_NOT_FOUND", "x").retryable
    assert SourceError(FailureCode.SOURCE_HTTP_ERROR, "x", True).retryable
    assert SourceError(FailureCode.SOURCE_HTTP_ERROR, "x", True).code == "SOURCE_HTTP_ERROR"
