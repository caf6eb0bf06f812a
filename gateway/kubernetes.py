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
  JSON list built from the chart's `gateway.corsOrigins`.

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
from gateway.envoy_config import GatewaySettings, Upstream, build

ROOT = Path(__file__).resolve().parent.parent
CONFIG_PATH = ROOT / "deploy" / "helm" / "pixelflow" / "files" / "envoy.json"
CORS_PLACEHOLDER = "__PIXELFLOW_CORS_ORIGINS__"


def host_placeholder(cluster: str) -> str:
    """The placeholder the chart replaces with the cluster's Service name (auth_svc → AUTH_SVC)."""
    return f"__PIXELFLOW_{cluster.upper()}_HOST__"


def settings(
    hosts: dict[str, str] | None = None, cors_origins: tuple[str, ...] = (CORS_PLACEHOLDER,)
) -> GatewaySettings:
    """The compose gateway's settings with these upstream hosts (by cluster; placeholders when
    None) and CORS origins."""
    upstreams = tuple(
        Upstream(u.cluster, u.services, (hosts or {}).get(u.cluster, host_placeholder(u.cluster)), u.port)
        for u in compose.UPSTREAMS
    )
    return dataclasses.replace(compose.settings(), upstreams=upstreams, cors_origins=cors_origins)


def _with_cors_placeholder(node: Any) -> Any:
    """The config with the one-placeholder origin list turned into the placeholder string."""
    if isinstance(node, dict):
        return {key: _with_cors_placeholder(value) for key, value in node.items()}
    if isinstance(node, list):
        if node == [{"exact": CORS_PLACEHOLDER}]:
            return CORS_PLACEHOLDER
        return [_with_cors_placeholder(value) for value in node]
    return node


def template() -> dict[str, Any]:
    config = _with_cors_placeholder(build(settings()))
    assert isinstance(config, dict)
    text = json.dumps(config)
    if text.count(f'"{CORS_PLACEHOLDER}"') != 1:
        raise RuntimeError("the CORS origins are not in exactly one place of Envoy's config")
    return config


def main(path: Path = CONFIG_PATH) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(template(), indent=2) + "\n")
    return path


if __name__ == "__main__":
    print(f"wrote {main()}")  # noqa: T201
