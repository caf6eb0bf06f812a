"""The SSRF guard of every connection PixelFlow makes to a URL a user named: which addresses
may be reached (`addresses`) and an httpx transport that checks each connection's resolved
address when it is made (`network`). worker_svc fetches sources through it, api_svc sends
webhooks through it; neither knows the other."""

from common.egress.addresses import (
    IPAddress,
    IPNetwork,
    blocked_reason,
    parse_allowed_networks,
    parse_ip_host,
    refusal_reason,
)
from common.egress.network import (
    EgressRefused,
    GuardedNetworkBackend,
    PinnedTransport,
    Refusal,
    Resolver,
    resolve_with_event_loop,
)

__all__ = [
    "EgressRefused",
    "GuardedNetworkBackend",
    "IPAddress",
    "IPNetwork",
    "PinnedTransport",
    "Refusal",
    "Resolver",
    "blocked_reason",
    "parse_allowed_networks",
    "parse_ip_host",
    "refusal_reason",
    "resolve_with_event_loop",
]
