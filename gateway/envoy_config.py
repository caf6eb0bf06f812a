"""Builds Envoy's configuration as data, written out as JSON (Envoy reads JSON as YAML).

One listener serves native gRPC (HTTP/2, cleartext) to clients and routes each service's
path prefix (/pixelflow.v1.<Service>/) to that service's cluster. Envoy does not route the
reflection service: clients describe the API with the descriptor set from `make proto`.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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


DEFAULT_DESCRIPTOR = str(Path(__file__).resolve().parent.parent / "gen" / "pixelflow.protoset")
# Large enough for an upload at the API's 25 MB limit as base64 inside JSON (×4/3) or as gRPC.
UPLOAD_BODY_BYTES = 36 * 1024 * 1024
# Everything else is small JSON or protobuf.
SMALL_BODY_BYTES = 1024 * 1024
# Routes (after transcoding, i.e. gRPC paths) that carry image bytes: an inline upload inside
# CreateTask (buffered, bounded), and CreateUpload, streamed through unbuffered at any size (the
# API counts the bytes and refuses past its limit).
UPLOAD_METHODS = ("/pixelflow.v1.TaskService/CreateTask",)
STREAMED_UPLOAD_METHODS = ("/pixelflow.v1.TaskService/CreateUpload",)
DOWNLOAD_METHODS = ("/pixelflow.v1.TaskService/GetTaskResult", "/pixelflow.v1.TaskService/GetVariantResult")
# Routes that pay bcrypt: throttled at the gateway so a flood never reaches auth_svc.
THROTTLED_METHODS = ("/pixelflow.v1.AuthService/Login", "/pixelflow.v1.AuthService/Register")
# Browser-facing REST paths (before transcoding), for CORS and body-size lookups.
REST_PREFIXES = ("/v1/", "/api/", "/register", "/login", "/validate")
REST_UPLOAD_PATHS = ("/v1/tasks", "/api/upload")
REST_STREAMED_UPLOAD_PATHS = ("/v1/uploads",)


@dataclass(frozen=True)
class GatewaySettings:
    listen_host: str
    listen_port: int
    admin_port: int
    upstreams: tuple[Upstream, ...]
    max_message_bytes: int = UPLOAD_BODY_BYTES
    descriptor_path: str = DEFAULT_DESCRIPTOR
    # Exact origins allowed to call from a browser (the UI's).
    cors_origins: tuple[str, ...] = ("http://localhost:3000", "http://127.0.0.1:3000")
    # Token bucket for Login/Register through the gateway, one per client address: burst size
    # and refill per second. Everyone together gets `auth_total_factor` times as much (a ceiling
    # on what bcrypt may be asked to do at once, whoever asks).
    auth_burst: int = 20
    auth_refill_per_second: int = 10
    auth_total_factor: int = 10
    # Client addresses with a bucket of their own at once (least recently seen ones forgotten).
    auth_tracked_addresses: int = 10_000
    # Where Envoy sends its spans (an OTLP/gRPC collector: host, port); None: no tracing.
    otlp_endpoint: tuple[str, int] | None = None


OTLP_CLUSTER = "otlp"


def otlp_endpoint(environment: Mapping[str, str]) -> tuple[str, int] | None:
    """The collector the services' standard OTEL_* variables name, for Envoy's tracer too (one
    setting for the whole stack); None when tracing is off or not over OTLP."""
    if environment.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    if environment.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() != "otlp":
        return None
    url = environment.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or environment.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not url:
        return None
    parsed = urlsplit(url if "//" in url else f"http://{url}")
    if not parsed.hostname:
        raise ValueError(f"the OTLP endpoint {url!r} names no host")
    return parsed.hostname, parsed.port or 4317


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


def _typed(name: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "typed_config": config}


_CORS = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"
_CORS_POLICY = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy"
_GRPC_WEB = "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb"
_TRANSCODER = "type.googleapis.com/envoy.extensions.filters.http.grpc_json_transcoder.v3.GrpcJsonTranscoder"
_BUFFER = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer"
_BUFFER_PER_ROUTE = "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.BufferPerRoute"
_RATELIMIT = "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit"
_LUA = "type.googleapis.com/envoy.extensions.filters.http.lua.v3.Lua"

# Two jobs at the edge, in Lua:
# - GET /health (the seed's path) answers with the gateway's own liveness and each upstream's
#   gRPC health (grpc.health.v1 Check, asked through its cluster): 200 when all are SERVING.
# - Every request header becomes gRPC metadata, and gRPC refuses keys outside [0-9a-z-_.]: a
#   header such as "x!: 1" (legal in HTTP) would fail the whole call with INTERNAL. Such headers
#   carry nothing a service reads, so they are dropped.
_EDGE_LUA = """
local UPSTREAMS = {%(clusters)s}
-- An empty HealthCheckRequest in a gRPC frame; the reply's field 1 is the status enum.
local CHECK = string.char(0, 0, 0, 0, 0)
local STATUS = {[0] = "UNKNOWN", [1] = "SERVING", [2] = "NOT_SERVING", [3] = "SERVICE_UNKNOWN"}

local function upstream_health(handle, cluster)
  local ok, headers, body = pcall(function()
    return handle:httpCall(cluster, {
      [":method"] = "POST", [":path"] = "/grpc.health.v1.Health/Check", [":authority"] = cluster,
      ["content-type"] = "application/grpc", ["te"] = "trailers",
    }, CHECK, 1000)
  end)
  if not ok or headers == nil or headers[":status"] ~= "200" or body == nil or #body < 5 then
    return "UNREACHABLE"
  end
  if #body >= 7 and string.byte(body, 6) == 8 then
    return STATUS[string.byte(body, 7)] or "UNKNOWN"
  end
  return "UNKNOWN"
end

local function health(handle)
  local parts, all_serving = {}, true
  for _, cluster in ipairs(UPSTREAMS) do
    local state = upstream_health(handle, cluster)
    all_serving = all_serving and state == "SERVING"
    table.insert(parts, string.format('"%%s":"%%s"', cluster, state))
  end
  local body = string.format('{"status":"%%s","gateway":"SERVING","upstreams":{%%s}}',
    all_serving and "SERVING" or "DEGRADED", table.concat(parts, ","))
  handle:respond({[":status"] = all_serving and "200" or "503", ["content-type"] = "application/json"}, body)
end

function envoy_on_request(handle)
  if handle:headers():get(":path") == "/health" and handle:headers():get(":method") == "GET" then
    health(handle)
    return
  end
  local unusable = {}
  for key, _ in pairs(handle:headers()) do
    if not string.match(key, "^:?[0-9a-z_.-]+$") then
      table.insert(unusable, key)
    end
  end
  for _, key in ipairs(unusable) do
    handle:headers():remove(key)
  end
end
"""


def _edge_lua(settings: GatewaySettings) -> str:
    clusters = ", ".join(f'"{upstream.cluster}"' for upstream in settings.upstreams)
    return _EDGE_LUA % {"clusters": clusters}


def _buffer_limit(max_bytes: int) -> dict[str, Any]:
    return {"envoy.filters.http.buffer": {"@type": _BUFFER_PER_ROUTE, "buffer": {"max_request_bytes": max_bytes}}}


def _unbuffered() -> dict[str, Any]:
    # The body streams to the upstream under HTTP/2 flow control: Envoy holds at most its
    # connection buffer limits of it at a time.
    return {"envoy.filters.http.buffer": {"@type": _BUFFER_PER_ROUTE, "disabled": True}}


def _rate_limit(settings: GatewaySettings) -> dict[str, Any]:
    def bucket(factor: int) -> dict[str, Any]:
        return {
            "max_tokens": settings.auth_burst * factor,
            "tokens_per_fill": settings.auth_refill_per_second * factor,
            "fill_interval": "1s",
        }

    return {
        "envoy.filters.http.local_ratelimit": {
            "@type": _RATELIMIT,
            "stat_prefix": "auth_throttle",
            # A bucket per client address (the descriptor's empty value makes one per address
            # seen, kept in an LRU of auth_tracked_addresses): one client's burst does not throttle
            # everyone else's logins. The address is the connection's peer (use_remote_address;
            # X-Forwarded-For from clients is not trusted). The default bucket is the ceiling
            # for everyone together, taken only when an address's bucket lets a request through.
            "rate_limits": [{"actions": [{"remote_address": {}}]}],
            "descriptors": [{"entries": [{"key": "remote_address"}], "token_bucket": bucket(1)}],
            "max_dynamic_descriptors": settings.auth_tracked_addresses,
            "always_consume_default_token_bucket": True,
            "token_bucket": bucket(settings.auth_total_factor),
            "filter_enabled": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            "filter_enforced": {"default_value": {"numerator": 100, "denominator": "HUNDRED"}},
            # gRPC clients see RESOURCE_EXHAUSTED, REST clients 429.
            "rate_limited_as_resource_exhausted": True,
        }
    }


def _routes(settings: GatewaySettings) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    for upstream in settings.upstreams:
        for service in upstream.services:
            for method in (*UPLOAD_METHODS, *STREAMED_UPLOAD_METHODS, *DOWNLOAD_METHODS, *THROTTLED_METHODS):
                if method.startswith(f"/{service}/"):
                    per_filter = _buffer_limit(UPLOAD_BODY_BYTES) if method in UPLOAD_METHODS else {}
                    if method in STREAMED_UPLOAD_METHODS:
                        per_filter = _unbuffered()
                    if method in THROTTLED_METHODS:
                        per_filter |= _rate_limit(settings)
                    routes.append(
                        {
                            "match": {"path": method},
                            "route": {"cluster": upstream.cluster, "timeout": "0s"},
                            "typed_per_filter_config": per_filter,
                        }
                    )
            # No route timeout: WatchTask streams for as long as the task runs, and clients
            # set their own deadlines (grpc-timeout) on unary calls.
            routes.append(
                {"match": {"prefix": f"/{service}/"}, "route": {"cluster": upstream.cluster, "timeout": "0s"}}
            )
    # REST paths as they arrive, before the transcoder rewrites them to gRPC paths: CORS and the
    # buffer filter find their per-route settings here. Anything the transcoder does not know
    # is refused by it (reject_unknown_method), so these routes never reach a cluster as REST.
    fallback = settings.upstreams[0].cluster
    for path in REST_UPLOAD_PATHS:
        routes.append(
            {
                "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
                "route": {"cluster": fallback, "timeout": "0s"},
                "typed_per_filter_config": _buffer_limit(UPLOAD_BODY_BYTES),
            }
        )
    for path in REST_STREAMED_UPLOAD_PATHS:
        routes.append(
            {
                "match": {"path": path, "headers": [{"name": ":method", "string_match": {"exact": "POST"}}]},
                "route": {"cluster": fallback, "timeout": "0s"},
                "typed_per_filter_config": _unbuffered(),
            }
        )
    routes.extend(
        {"match": {"prefix": prefix}, "route": {"cluster": fallback, "timeout": "0s"}} for prefix in REST_PREFIXES
    )
    return routes


def _http_filters(settings: GatewaySettings) -> list[dict[str, Any]]:
    services = [service for upstream in settings.upstreams for service in upstream.services]
    return [
        _typed("envoy.filters.http.cors", {"@type": _CORS}),
        _typed(
            "envoy.filters.http.lua", {"@type": _LUA, "default_source_code": {"inline_string": _edge_lua(settings)}}
        ),
        # Small bodies everywhere but the upload routes: a 30 MB JSON body is a 413 here and
        # the upstream is never called.
        _typed("envoy.filters.http.buffer", {"@type": _BUFFER, "max_request_bytes": SMALL_BODY_BYTES}),
        # gRPC-web before the transcoder: the transcoder would otherwise take gRPC-web calls for
        # unknown REST methods and refuse them.
        _typed("envoy.filters.http.grpc_web", {"@type": _GRPC_WEB}),
        _typed(
            "envoy.filters.http.grpc_json_transcoder",
            {
                "@type": _TRANSCODER,
                "proto_descriptor": settings.descriptor_path,
                "services": services,
                "print_options": {
                    "always_print_primitive_fields": True,
                    # WatchTask over REST: one JSON object per line, flushed as each arrives.
                    "stream_newline_delimited": True,
                },
                "convert_grpc_status": True,
                "request_validation_options": {
                    "reject_unknown_method": True,
                    "reject_unknown_query_parameters": True,
                    "reject_binding_body_field_collisions": True,
                },
                "max_request_body_size": UPLOAD_BODY_BYTES,
                "max_response_body_size": UPLOAD_BODY_BYTES,
            },
        ),
        # Disabled by default; switched on per route (Login, Register) above.
        _typed("envoy.filters.http.local_ratelimit", {"@type": _RATELIMIT, "stat_prefix": "gateway_ratelimit"}),
        _typed("envoy.filters.http.router", {"@type": _ROUTER}),
    ]


def _cors_policy(settings: GatewaySettings) -> dict[str, Any]:
    return {
        "envoy.filters.http.cors": {
            "@type": _CORS_POLICY,
            "allow_origin_string_match": [{"exact": origin} for origin in settings.cors_origins],
            "allow_methods": "GET, POST, DELETE, OPTIONS",
            "allow_headers": "authorization, content-type, x-grpc-web, x-user-agent, grpc-timeout, x-request-id",
            "expose_headers": "grpc-status, grpc-message, grpc-status-details-bin, x-request-id",
            "max_age": "600",
        }
    }


REQUEST_HEADERS_TIMEOUT_SECONDS = 10
MAX_REQUEST_HEADERS = 100
MAX_REQUEST_HEADERS_KB = 60
MAX_DOWNSTREAM_CONNECTIONS = 10000
MAX_HEAP_BYTES = 512 * 1024 * 1024


def _overload_manager() -> dict[str, Any]:
    """Past 90% of its heap budget Envoy returns memory and stops keeping connections alive;
    at 95% it refuses new requests (503) rather than being killed; and it never holds more than
    MAX_DOWNSTREAM_CONNECTIONS client connections."""
    heap = "envoy.resource_monitors.fixed_heap"
    return {
        "refresh_interval": "0.25s",
        "resource_monitors": [
            {
                "name": heap,
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.fixed_heap.v3.FixedHeapConfig",
                    "max_heap_size_bytes": MAX_HEAP_BYTES,
                },
            },
            {
                "name": "envoy.resource_monitors.global_downstream_max_connections",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.resource_monitors.downstream_connections.v3."
                    "DownstreamConnectionsConfig",
                    "max_active_downstream_connections": MAX_DOWNSTREAM_CONNECTIONS,
                },
            },
        ],
        "actions": [
            {"name": "envoy.overload_actions.shrink_heap", "triggers": [{"name": heap, "threshold": {"value": 0.90}}]},
            {
                "name": "envoy.overload_actions.disable_http_keepalive",
                "triggers": [{"name": heap, "threshold": {"value": 0.90}}],
            },
            {
                "name": "envoy.overload_actions.stop_accepting_requests",
                "triggers": [{"name": heap, "threshold": {"value": 0.95}}],
            },
        ],
    }


def _tracing(settings: GatewaySettings) -> dict[str, Any]:
    """Envoy's OpenTelemetry tracer: a span per request, its context sent upstream (W3C
    `traceparent`) so api_svc's span of the call is its child; every request sampled (the
    services follow the parent's decision, OTEL_TRACES_SAMPLER's default)."""
    if settings.otlp_endpoint is None:
        return {}
    return {
        "tracing": {
            "provider": {
                "name": "envoy.tracers.opentelemetry",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.config.trace.v3.OpenTelemetryConfig",
                    "grpc_service": {"envoy_grpc": {"cluster_name": OTLP_CLUSTER}, "timeout": "2s"},
                    "service_name": "gateway",
                },
            },
            "random_sampling": {"value": 100},
        }
    }


def _otlp_cluster(settings: GatewaySettings) -> list[dict[str, Any]]:
    if settings.otlp_endpoint is None:
        return []
    host, port = settings.otlp_endpoint
    cluster = _cluster(Upstream(OTLP_CLUSTER, (), host, port), SMALL_BODY_BYTES)
    del cluster["health_checks"]  # a collector need not serve grpc.health.v1
    return [cluster]


def build(settings: GatewaySettings) -> dict[str, Any]:
    connection_manager = {
        "@type": _HCM,
        "stat_prefix": "gateway",
        "codec_type": "AUTO",
        "generate_request_id": True,
        # Streams (WatchTask) stay open as long as the task runs; idle ones close after an hour.
        "stream_idle_timeout": "3600s",
        # The public edge (Envoy's edge-proxy recommendations): a client must send its headers
        # within 10 s (slowloris), at most 100 of them in 60 KiB; header names with underscores
        # are refused (they can alias dash-spelled ones upstream); an idle connection closes.
        "request_headers_timeout": f"{REQUEST_HEADERS_TIMEOUT_SECONDS}s",
        "max_request_headers_kb": MAX_REQUEST_HEADERS_KB,
        "common_http_protocol_options": {
            "idle_timeout": "900s",
            "max_headers_count": MAX_REQUEST_HEADERS,
            "headers_with_underscores_action": "REJECT_REQUEST",
        },
        "http2_protocol_options": {
            "max_concurrent_streams": 100,
            # 1 MiB a stream: bounded memory, and still fast for large uploads over a long RTT.
            "initial_stream_window_size": 1024 * 1024,
            "initial_connection_window_size": 4 * 1024 * 1024,
        },
        "use_remote_address": True,
        "access_log": [
            {
                "name": "envoy.access_loggers.stdout",
                "typed_config": {"@type": _STDOUT_LOG, "log_format": {"json_format": _ACCESS_LOG_FORMAT}},
            }
        ],
        "route_config": {
            "name": "pixelflow",
            # Every request header becomes gRPC metadata: the services have no use for cookies.
            "request_headers_to_remove": ["cookie"],
            "virtual_hosts": [
                {
                    "name": "pixelflow",
                    "domains": ["*"],
                    "routes": _routes(settings),
                    "typed_per_filter_config": _cors_policy(settings),
                }
            ],
        },
        "http_filters": _http_filters(settings),
        **_tracing(settings),
    }
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": settings.admin_port}}},
        "overload_manager": _overload_manager(),
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
            "clusters": [
                *(_cluster(upstream, settings.max_message_bytes) for upstream in settings.upstreams),
                *_otlp_cluster(settings),
            ],
        },
    }


def write(settings: GatewaySettings, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build(settings), indent=2) + "\n")
    return path
