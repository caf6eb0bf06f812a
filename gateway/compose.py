"""The Envoy configuration of the Docker Compose deployment (docker-compose.yml).

`python -m gateway.compose` writes gateway/envoy.compose.json, which is committed because
compose mounts it into the envoy container. It is the same configuration `make run` generates
(gateway.envoy_config.build), with two differences: the upstreams are compose service names,
resolved through Docker's DNS (STRICT_DNS clusters, so every replica of a scaled service gets
traffic); the listener binds 0.0.0.0 inside the container so the published port reaches it; and
the transcoder's descriptor set is the one the Dockerfile's `envoy` target bakes into the image
(generated from proto/ during the build), so the file holds no path of the machine that wrote
it. Envoy's admin interface stays on 127.0.0.1:9901 inside the container and is not published.

tests/unit/test_compose.py fails when the committed file differs from what this writes.
"""

from __future__ import annotations

from pathlib import Path

from gateway.envoy_config import GatewaySettings, Upstream, write

CONFIG_PATH = Path(__file__).resolve().parent / "envoy.compose.json"

# Where the Dockerfile's `envoy` target puts gen/pixelflow.protoset.
DESCRIPTOR_PATH = "/etc/envoy/pixelflow.protoset"
# The browser UI's origins (the commented `ui` slot in docker-compose.yml, port 3000).
CORS_ORIGINS = ("http://localhost:3000", "http://127.0.0.1:3000")

# Ports inside the containers: the documented defaults (infra.stack.StackPorts).
GATEWAY_PORT = 8080
ENVOY_ADMIN_PORT = 9901

# (cluster = the Python package run as `python -m <cluster>`, compose service name, port, gRPC services)
UPSTREAMS: tuple[Upstream, ...] = (
    Upstream("auth_svc", ("pixelflow.v1.AuthService",), "auth", 50051),
    Upstream(
        "api_svc",
        (
            "pixelflow.v1.TaskService",
            "pixelflow.v1.AdminService",
            "pixelflow.v1.PresetService",
            "pixelflow.v1.QuotaService",
            "pixelflow.v1.WebhookService",
        ),
        "api",
        50052,
    ),
    Upstream("worker_svc", ("pixelflow.v1.WorkerStatusService",), "worker", 50053),
)


def settings() -> GatewaySettings:
    return GatewaySettings(
        listen_host="0.0.0.0",  # noqa: S104 - inside the envoy container; compose publishes the port
        listen_port=GATEWAY_PORT,
        admin_port=ENVOY_ADMIN_PORT,
        upstreams=UPSTREAMS,
        descriptor_path=DESCRIPTOR_PATH,
        cors_origins=CORS_ORIGINS,
    )


def main(path: Path = CONFIG_PATH) -> Path:
    return write(settings(), path)


if __name__ == "__main__":
    print(f"wrote {main()}")  # noqa: T201
