"""The Envoy configuration of the Helm chart (deploy/helm/pixelflow), as a template.

`python -m gateway.kubernetes` writes deploy/helm/pixelflow/files/envoy.json, committed because
the chart reads it (`.Files.Get`). It is `gateway.compose`'s configuration — the same
`gateway.envoy_config.build`, listener on 0.0.0.0:8080, admin on 127.0.0.1:9901 inside the pod,
the descriptor set baked into the Dockerfile's `envoy` image — with two facts left for the
chart to fill in, because only the release knows them:

- each upstream's host is a placeholder (`__PIXELFLOW_AUTH_SVC_HOST__`, ...) that the chart
  replaces with the DNS name of the release's headless Service for that service (Envoy's
  STRICT_DNS clusters then see every ready pod and health-check each);
- the CORS allowlist is the placeholder string `"__PIXELFLOW_CORS_ORIGINS__"`, replaced by the
  JSON list built from the chart's `gateway.corsOrigins`;
- in `files/envoy-traced.json`, the variant with Envoy's OpenTelemetry tracer (the chart's
  `tracing.otlpEndpoint`), the collector's host `__PIXELFLOW_OTLP_HOST__` and its port, the
  placeholder string `"__PIXELFLOW_OTLP_PORT__"` where Envoy wants a number.

Cluster names, gRPC services and ports are the compose ones (one list: `gateway.compose.UPSTREAMS`).
tests/unit/test_helm_chart.py fails when the committed file differs from what this writes, and
checks that the rendered ConfigMap is `build()` of the release's hosts and origins.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from gateway import compose
from gateway.envoy_config import OTLP_CLUSTER, GatewaySettings, Upstream, build

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "deploy" / "helm" / "pixelflow" / "files" / "envoy.json"
TRACED_CONFIG_PATH = CONFIG_PATH.with_name("envoy-traced.json")
CORS_PLACEHOLDER = "__PIXELFLOW_CORS_ORIGINS__"
OTLP_HOST_PLACEHOLDER = "__PIXELFLOW_OTLP_HOST__"
OTLP_PORT_PLACEHOLDER = "__PIXELFLOW_OTLP_PORT__"


def host_placeholder(cluster: str) -> str:
    """The placeholder the chart replaces with the cluster's Service name (auth_svc → AUTH_SVC)."""
    return f"__PIXELFLOW_{cluster.upper()}_HOST__"


def settings(
    hosts: dict[str, str] | None = None,
    cors_origins: tuple[str, ...] = (CORS_PLACEHOLDER,),
    otlp_endpoint: tuple[str, int] | None = None,
) -> GatewaySettings:
    """The compose gateway's settings with these upstream hosts (by cluster; placeholders when
    None), CORS origins and collector of its spans (none: no tracer)."""
    upstreams = tuple(
        Upstream(u.cluster, u.services, (hosts or {}).get(u.cluster, host_placeholder(u.cluster)), u.port)
        for u in compose.UPSTREAMS
    )
    return dataclasses.replace(
        compose.settings(), upstreams=upstreams, cors_origins=cors_origins, otlp_endpoint=otlp_endpoint
    )


def _with_cors_placeholder(node: Any) -> Any:
    """The config with the one-placeholder origin list turned into the placeholder string."""
    if isinstance(node, dict):
        return {key: _with_cors_placeholder(value) for key, value in node.items()}
    if isinstance(node, list):
        if node == [{"exact": CORS_PLACEHOLDER}]:
            return CORS_PLACEHOLDER
        return [_with_cors_placeholder(value) for value in node]
    return node


# A port no collector listens on, swapped for the port placeholder once the config is built.
_OTLP_PORT_MARK = 1


def _with_otlp_port_placeholder(config: dict[str, Any]) -> dict[str, Any]:
    for cluster in config["static_resources"]["clusters"]:
        if cluster["name"] == OTLP_CLUSTER:
            [endpoint] = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"]
            address = endpoint["endpoint"]["address"]["socket_address"]
            assert address["port_value"] == _OTLP_PORT_MARK
            address["port_value"] = OTLP_PORT_PLACEHOLDER
    return config


def template(traced: bool = False) -> dict[str, Any]:
    otlp = (OTLP_HOST_PLACEHOLDER, _OTLP_PORT_MARK) if traced else None
    config: dict[str, Any] = _with_cors_placeholder(build(settings(otlp_endpoint=otlp)))
    assert isinstance(config, dict)
    if traced:
        config = _with_otlp_port_placeholder(config)
    text = json.dumps(config)
    if text.count(f'"{CORS_PLACEHOLDER}"') != 1:
        raise RuntimeError("the CORS origins are not in exactly one place of Envoy's config")
    if traced and text.count(f'"{OTLP_PORT_PLACEHOLDER}"') != 1:
        raise RuntimeError("the collector's port is not in exactly one place of Envoy's config")
    return config


def main(path: Path = CONFIG_PATH, traced_path: Path | None = None) -> Path:
    """Writes both variants (without and with the tracer) beside each other."""
    traced_path = traced_path or path.with_name(TRACED_CONFIG_PATH.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template(), indent=2) + "\n")
    traced_path.write_text(json.dumps(template(traced=True), indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {main()}")  # noqa: T201
