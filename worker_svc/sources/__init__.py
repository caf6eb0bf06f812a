"""Fetching task sources from URLs, refusing addresses a user must not reach through us."""

from worker_svc.sources.addresses import (
    IPAddress,
    IPNetwork,
    blocked_reason,
    parse_allowed_networks,
    parse_ip_host,
    refusal_reason,
)
from worker_svc.sources.errors import SourceError, SourceErrorCode
from worker_svc.sources.fetcher import FetchedSource, FetchPolicy, SourceFetcher
from worker_svc.sources.network import GuardedNetworkBackend, PinnedTransport

__all__ = [
    "FetchPolicy",
    "FetchedSource",
    "GuardedNetworkBackend",
    "IPAddress",
    "IPNetwork",
    "PinnedTransport",
    "SourceError",
    "SourceErrorCode",
    "SourceFetcher",
    "blocked_reason",
    "parse_allowed_networks",
    "parse_ip_host",
    "refusal_reason",
]
