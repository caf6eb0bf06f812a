"""Fetching task sources from URLs, refusing addresses a user must not reach through us."""

from tasks.failures import FailureCode
from worker_svc.sources.addresses import (
    IPAddress,
    IPNetwork,
    blocked_reason,
    parse_allowed_networks,
    parse_ip_host,
    refusal_reason,
)
from worker_svc.sources.errors import SourceError
from worker_svc.sources.fetcher import FetchedSource, FetchPolicy, SourceFetcher
from worker_svc.sources.network import GuardedNetworkBackend, PinnedTransport

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
