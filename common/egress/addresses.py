"""Which IP addresses PixelFlow may connect to on a user's behalf (a task's source, a webhook).

Everything that is not a public unicast address is refused unless an allowlisted network contains
it. IPv6 forms that carry an IPv4 address (mapped, compatible, 6to4, NAT64, Teredo) are judged by
the address they carry, so ::ffff:127.0.0.1 is as loopback as 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Callable, Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

_v4 = IPv4Network
_v6 = IPv6Network

# First match wins, so the specific entries come before the ranges that contain them.
_IPV4_RULES: tuple[tuple[IPv4Network, str], ...] = (
    (_v4("169.254.169.254/32"), "the cloud metadata address"),
    (_v4("255.255.255.255/32"), "the broadcast address"),
    (_v4("0.0.0.0/8"), "an unspecified address"),
    (_v4("10.0.0.0/8"), "a private address"),
    (_v4("100.64.0.0/10"), "a carrier-grade NAT address"),
    (_v4("127.0.0.0/8"), "a loopback address"),
    (_v4("169.254.0.0/16"), "a link-local address"),
    (_v4("172.16.0.0/12"), "a private address"),
    (_v4("192.0.0.0/24"), "a reserved address"),
    (_v4("192.0.2.0/24"), "a documentation address"),
    (_v4("192.88.99.0/24"), "a reserved address"),
    (_v4("192.168.0.0/16"), "a private address"),
    (_v4("198.18.0.0/15"), "a reserved (benchmarking) address"),
    (_v4("198.51.100.0/24"), "a documentation address"),
    (_v4("203.0.113.0/24"), "a documentation address"),
    (_v4("224.0.0.0/4"), "a multicast address"),
    (_v4("240.0.0.0/4"), "a reserved address"),
)

_IPV6_RULES: tuple[tuple[IPv6Network, str], ...] = (
    (_v6("::/128"), "an unspecified address"),
    (_v6("::1/128"), "a loopback address"),
    (_v6("fd00:ec2::254/128"), "the cloud metadata address"),
    (_v6("64:ff9b:1::/48"), "a private (local NAT64) address"),
    (_v6("100::/64"), "a reserved (discard) address"),
    (_v6("2001:db8::/32"), "a documentation address"),
    (_v6("3fff::/20"), "a documentation address"),
    (_v6("2001::/23"), "a reserved address"),
    (_v6("fc00::/7"), "a private address"),
    (_v6("fe80::/10"), "a link-local address"),
    (_v6("fec0::/10"), "a private (site-local) address"),
    (_v6("ff00::/8"), "a multicast address"),
    (_v6("::/8"), "a reserved address"),
)


def _low32(address: IPv6Address) -> IPv4Address:
    return IPv4Address(int(address) & 0xFFFFFFFF)


def _sixtofour(address: IPv6Address) -> IPv4Address:
    embedded = address.sixtofour
    assert embedded is not None  # callers only pass addresses inside 2002::/16
    return embedded


# IPv6 ranges whose addresses carry an IPv4 address, and how to extract it.
_EMBEDDING: tuple[tuple[IPv6Network, str, Callable[[IPv6Address], IPv4Address]], ...] = (
    (_v6("::ffff:0:0/96"), "an IPv4-mapped IPv6 address", _low32),
    (_v6("64:ff9b::/96"), "a NAT64 address", _low32),
    (_v6("2002::/16"), "a 6to4 address", _sixtofour),
)
_IPV4_COMPATIBLE = _v6("::/96")  # deprecated ::a.b.c.d; :: and ::1 are judged by the rules above
_TEREDO = _v6("2001::/32")

# A host made only of numbers (decimal, 0-prefixed octal or 0x hex), as inet_aton reads them:
# 2130706433, 0x7f.1, 017700000001, 127.1.
_NUMERIC_HOST = re.compile(r"^(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}\.?$", re.IGNORECASE)


def blocked_reason(address: IPAddress) -> str | None:
    """Why we may not connect to this address ("a private address"), or None if it may."""
    if isinstance(address, IPv6Address):
        return _ipv6_blocked_reason(address)
    for network, reason in _IPV4_RULES:
        if address in network:
            return reason
    return None if address.is_global else "a reserved address"


def _ipv6_blocked_reason(address: IPv6Address) -> str | None:
    address = IPv6Address(int(address))  # drop any %scope: it does not change what is reached
    if address in _TEREDO:
        _server, client = address.teredo or (None, None)
        return f"a Teredo tunnel address (carrying {client})"
    if address not in _v6("::/127") and address in _IPV4_COMPATIBLE:
        return f"an IPv4-compatible IPv6 address (carrying {_low32(address)})"
    for network, form, extract in _EMBEDDING:
        if address in network:
            embedded = extract(address)
            inner = blocked_reason(embedded)
            return None if inner is None else f"{form} carrying {inner} ({embedded})"
    reasons = (reason for network, reason in _IPV6_RULES if address in network)
    return next(reasons, None if address.is_global else "a reserved address")


def refusal_reason(address: IPAddress, allowed_networks: Iterable[IPNetwork]) -> str | None:
    """blocked_reason, except that addresses inside an allowlisted network are always allowed."""
    if any(address in network for network in allowed_networks):
        return None
    return blocked_reason(address)


def parse_ip_host(host: str) -> IPAddress | None:
    """The address a URL host names without DNS: a literal, or a numeric IPv4 spelling.

    Numeric spellings (2130706433, 0x7f.1, 017700000001) are read the way the C library reads
    them, so the check sees the address a connection would actually reach. Raises ValueError for
    a numeric host that is not a valid address (09.1, 1.2.3.4.5); returns None for a host name.
    """
    host = host.removeprefix("[").removesuffix("]")
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if ":" in host:
        raise ValueError(f"{host!r} is not a valid IPv6 address")
    last_label = host.removesuffix(".").rpartition(".")[2]
    if _NUMERIC_HOST.match(last_label):
        # A name ending in a number is an address or nothing (as in the WHATWG URL standard):
        # never hand something like 1.2.3.4.5 to DNS.
        if not _NUMERIC_HOST.match(host):
            raise ValueError(f"{host!r} is not a valid IPv4 address")
        try:
            return IPv4Address(socket.inet_aton(host.removesuffix(".")))
        except OSError:
            raise ValueError(f"{host!r} is not a valid IPv4 address") from None
    return None


def parse_allowed_networks(text: str) -> list[IPNetwork]:
    """Parse a comma-separated allowlist ("127.0.0.0/8, ::1/128") from configuration."""
    networks: list[IPNetwork] = []
    for item in text.split(","):
        if item.strip():
            networks.append(ipaddress.ip_network(item.strip(), strict=False))
    return networks
