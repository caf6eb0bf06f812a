"""Who is calling: the client's network address, as the gateway saw it.

Envoy runs with `use_remote_address` and trusts no forwarded headers from clients: it appends the
address of the connection it accepted to X-Forwarded-For, so the *last* entry is the client (any
earlier ones are whatever the client wrote). A call that did not come through the gateway (grpcurl
on the internal network, a test) has no such header and is known by its own connection's peer.
The services are reachable only through the gateway in every deployment (README, compose, Helm);
a caller inside that network can claim any address, which is why the address only ever narrows
a limit (a lockout per account and address) and never grants anything.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def client_address(metadata: Iterable[tuple[str, str | bytes]], peer: str) -> str:
    """The client's IP address in canonical text form, or "unknown"."""
    forwarded = [value for key, value in metadata if key == "x-forwarded-for"]
    if forwarded:
        last = forwarded[-1]
        text = last.decode(errors="replace") if isinstance(last, bytes) else last
        found = _address(text.rsplit(",", 1)[-1].strip())
        if found is not None:
            return found
    return _peer_address(peer) or "unknown"


def _peer_address(peer: str) -> str | None:
    """gRPC's peer string: "ipv4:1.2.3.4:5678", "ipv6:[::1]:5678", "unix:/path"."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return _address(rest.rsplit(":", 1)[0])
    if kind == "ipv6":
        return _address(rest.rsplit(":", 1)[0].strip("[]"))
    return None


def _address(text: str) -> str | None:
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None
