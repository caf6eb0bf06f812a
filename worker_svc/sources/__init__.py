"""Fetching task sources from URLs, refusing addresses a user must not reach through us (the
guard itself is common.egress, shared with api_svc's webhooks)."""

from common.egress import (
    GuardedNetworkBackend,
    IPAddress,
    IPNetwork,
    PinnedTransport,
    blocked_reason,
    parse_allowed_networks,
    parse_ip_host,
    refusal_reason,
)
from tasks.failures import FailureCode
from worker_svc.sources.errors import SourceError
from worker_svc.sources.fetcher import FetchedSource, FetchPolicy, SourceFetcher

__all__ = [
    "FailureCode",
    "FetchPolicy",
    "FetchedSource",
    "GuardedNetworkBackend",
    "IPAddress",
    "IPNetwork",
    "PinnedTransport",
    "SourceError",
    "SourceFetcher",
    "blocked_reason",
    "parse_allowed_networks",
    "parse_ip_host",
    "refusal_reason",
]
