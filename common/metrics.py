"""Prometheus metrics every service shares: the /metrics endpoint, gRPC server metrics named as
go-grpc-prometheus names them (counted by the one interceptor, common.interceptors), and a loop
for gauges that are read from elsewhere every few seconds rather than on each scrape.

Label values are bounded sets (methods, codes, statuses, stages, operation kinds, partitions):
never a task, user or request id (decision 0022).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from wsgiref.simple_server import WSGIServer

import grpc
from prometheus_client import Counter, Histogram, disable_created_metrics, start_http_server

log = logging.getLogger("pixelflow.metrics")

# Each counter and histogram would otherwise carry a `_created` series beside it: twice the
# series for a timestamp no dashboard or alert here reads.
disable_created_metrics()  # type: ignore[no-untyped-call]  # untyped in prometheus-client

RPC_STARTED = Counter(
    "grpc_server_started_total",
    "RPCs started on the server.",
    ["grpc_type", "grpc_service", "grpc_method"],
)
RPC_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, whatever their status.",
    ["grpc_type", "grpc_service", "grpc_method", "grpc_code"],
)
RPC_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from an RPC's start to its status (a stream's whole life).",
    ["grpc_type", "grpc_service", "grpc_method"],
)


class RpcLabels:
    """One method's series, from its path ("/pixelflow.v1.TaskService/CreateTask"). Kept per
    method (`of`: the interceptor wraps each call anew), so that a call looks up no label but
    its code's. Only methods the server serves get here: the set is bounded."""

    def __init__(self, method: str, grpc_type: str) -> None:
        service, _, name = method.lstrip("/").rpartition("/")
        self.names = (grpc_type, service, name)
        self._started = RPC_STARTED.labels(*self.names)
        self._seconds = RPC_SECONDS.labels(*self.names)
        self._handled: dict[grpc.StatusCode, Any] = {}

    @classmethod
    def of(cls, method: str, grpc_type: str) -> RpcLabels:
        labels = _BY_METHOD.get((method, grpc_type))
        if labels is None:
            labels = _BY_METHOD[method, grpc_type] = cls(method, grpc_type)
        return labels

    def started(self) -> float:
        self._started.inc()
        return time.perf_counter()

    def handled(self, code: grpc.StatusCode, started: float) -> None:
        handled = self._handled.get(code)
        if handled is None:
            handled = self._handled[code] = RPC_HANDLED.labels(*self.names, code.name)
        handled.inc()
        self._seconds.observe(time.perf_counter() - started)


_BY_METHOD: dict[tuple[str, str], RpcLabels] = {}


def serve_metrics(host: str, port: int) -> WSGIServer:
    """/metrics (any path, in fact) on a port of its own, from a daemon thread: a scrape never
    waits for the event loop, and reads only values already computed."""
    server, _ = start_http_server(port, addr=host)
    log.info("metrics listening", extra={"address": f"{host}:{server.server_port}", "path": "/metrics"})
    return server


async def refresh_forever(name: str, every_seconds: float, refresh: Callable[[], Awaitable[None]]) -> None:
    """Runs `refresh` (which sets gauges) now and then every `every_seconds` for the service's
    life; a failed round is logged and the gauges keep their last values until the next."""
    while True:
        try:
            await refresh()
        except Exception as exc:  # noqa: BLE001 - a metric must never stop the service
            log.warning("metrics refresh failed", extra={"metrics": name, "error": str(exc)[:300]})
        await asyncio.sleep(every_seconds)
