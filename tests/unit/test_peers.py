"""The client's address from what the gateway forwards, or from the connection: pure logic."""

from __future__ import annotations

import pytest

from common.peers import client_address

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("metadata", "peer", "expected"),
    [
        # Through Envoy: the last X-Forwarded-For entry is the one Envoy appended.
        ([("x-forwarded-for", "203.0.113.9")], "ipv4:127.0.0.1:5000", "203.0.113.9"),
        ([("x-forwarded-for", "6.6.6.6, 198.51.100.4")], "ipv4:127.0.0.1:5000", "198.51.100.4"),
        ([("x-forwarded-for", b"2001:db8::1")], "ipv4:127.0.0.1:5000", "2001:db8::1"),
        # Directly: the connection's own peer.
        ([], "ipv4:192.0.2.7:41000", "192.0.2.7"),
        ([], "ipv6:[2001:db8::2]:41000", "2001:db8::2"),
        ([], "unix:/tmp/socket", "unknown"),
        # A header that is not an address falls back to the peer.
        ([("x-forwarded-for", "not an address")], "ipv4:192.0.2.8:1", "192.0.2.8"),
    ],
)
def test_client_address(metadata: list[tuple[str, str | bytes]], peer: str, expected: str) -> None:
    assert client_address(metadata, peer) == expected
