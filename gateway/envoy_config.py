"""Builds Envoy's configuration as data, written out as JSON (Envoy reads JSON as YAML).

One listener serves native gRPC (HTTP/2, cleartext) to clients and routes each service's
path prefix (/pixelflow.v1.<Service>/) to that service's cluster. Envoy does not route the
reflection service: clients describe the API with the descriptor set from `make proto`.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_HCM = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
_ROUTER = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
_HTTP_OPTIONS = "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
_STDOUT_LOG = "type.googleapis.com/envoy.extensions.access_loggers.stream.v3.StdoutAccessLog"

# One JSON object per request; the request id is what ties it to the services' logs.
_ACCESS_LOG_FORMAT = {
    "time": "%START_TIME%",
    "request_id": "%REQ(X-REQUEST-ID)%",
    "method": "%REQ(:METHOD)%",
    "path": "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%",
    "protocol": "%PROTOCOL%",
    "status": "%RESPONSE_CODE%",
    "grpc_status": "%GRPC_STATUS%",
    "flags": "%RESPONSE_FLAGS%",
    "upstream": "%UPSTREAM_CLUSTER%",
    "duration_ms": "%DURATION%",
    "bytes_in": "%BYTES_RECEIVED%",
    "bytes_out": "%BYTES_SENT%",
}


@dataclass(frozen=True)
class Upstream:
    """A gRPC service behind the gateway."""

    cluster: str
    services: tuple[str, ...]  # fully qualified gRPC service names routed to it
    host: str
    port: int


@dataclass(frozen=True)
class GatewaySettings:
    listen_host: str
    listen_port: int
    admin_port: int
    upstreams: tuple[Upstream, ...]
    max_message_bytes: int = 32 * 1024 * 1024


def _cluster(upstream: Upstream, max_message_bytes: int) -> dict[str, Any]:
    try:
        ipaddress.ip_address(upstream.host)
        discovery = "STATIC"
    except ValueError:
        discovery = "STRICT_DNS"  # compose: service names resolve through Docker's DNS
    return {
        "name": upstream.cluster,
        "type": discovery,
        "connect_timeout": "1s",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": _HTTP_OPTIONS,
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "per_connection_buffer_limit_bytes": max_message_bytes,
        "load_assignment": {
            "cluster_name": upstream.cluster,
            "endpoints": [
                {
                    "lb_endpoints": [
                        {
                            "endpoint": {
                                "address": {"socket_address": {"address": upstream.host, "port_value": upstream.port}}
                            }
                        }
                    ]
                }
            ],
        },
        "health_checks": [
            {
                "timeout": "1s",
                "interval": "5s",
                "unhealthy_threshold": 2,
                "healthy_threshold": 1,
                # Without it a service that was down when Envoy started stays failed for 60 s.
                "no_traffic_interval": "2s",
                "grpc_health_check": {},
            }
        ],
    }


def _routes(upstreams: tuple[Upstream, ...]) -> list[dict[str, Any]]:
    return [
        # No route timeout: WatchTask streams for as long as the task runs, and clients set
        # their own deadlines (grpc-timeout) on unary calls.
        {"match": {"prefix": f"/{service}/"}, "route": {"cluster": upstream.cluster, "timeout": "0s"}}
        for upstream in upstreams
        for service in upstream.services
    ]


def build(settings: GatewaySettings) -> dict[str, Any]:
    connection_manager = {
        "@type": _HCM,
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "generate_request_id": True,
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {"@type": _STDOUT_LOG, "log_format": {"json_format": _ACCESS_LOG_FORMAT}},
            }
        ],
        "route_config": {
            "name": "pixelflow",
            "virtual_hosts": [{"name": "pixelflow", "domains": ["*"], "routes": _routes(settings.upstreams)}],
        },
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {"@type": _ROUTER}}],
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": settings.admin_port}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "gateway",
                    "address": {
                        "socket_address": {"address": settings.listen_host, "port_value": settings.listen_port}
                    },
                    "per_connection_buffer_limit_bytes": settings.max_message_bytes,
                    "filter_chains": [
                        {
                            "filters": [
                                {
                                    "name": "envoy.filters.network.http_connection_manager",
                                    "typed_config": connection_manager,
                                }
                            ]
                        }
                    ],
                }
            ],
            "clusters": [_cluster(upstream, settings.max_message_bytes) for upstream in settings.upstreams],
        },
    }


def write(settings: GatewaySettings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build(settings), indent=2) + "\n")
    return path
