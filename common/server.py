"""Serves a set of gRPC servicers the same way in every service.

Health (grpc.health.v1) and reflection are always on, errors are mapped (and calls counted) by
one interceptor, Prometheus metrics are served on a port of their own, and SIGTERM/SIGINT drain
the server: health turns NOT_SERVING, in-flight calls get a grace period, then the service's own
resources are closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Iterator, Mapping, Sequence
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1.health import aio as health_aio  # type: ignore[attr-defined]  # stubs lag the package
from grpc_reflection.v1alpha import reflection

from common.interceptors import Authenticate, ErrorAndLoggingInterceptor
from common.metrics import serve_metrics
from common.settings import CommonSettings
from common.tracing import server_interceptor

log = logging.getLogger("pixelflow.server")

Registrar = Callable[[grpc.aio.Server], None]


class ServiceFailed(Exception):
    """`serve` stopped the service after a fatal error (drained, health NOT_SERVING): the
    process exits with code 1 so that its supervisor starts it again (`run_service`)."""


def run_service(main: Coroutine[Any, Any, None]) -> None:
    """A service's `main()`: runs it, and exits with code 1 after a fatal error (serve logged why)."""
    try:
        asyncio.run(main)
    except ServiceFailed:
        sys.exit(1)


# What one stream may have sent ahead of the servicer reading it. gRPC's default grows the window
# with bandwidth-delay probes, and a 100 MiB upload through Envoy then grew api_svc by 20-60 MiB
# (52 MiB on CI); with a fixed 1 MiB window it grows by 14 MiB, at the same ~100 MB/s.
STREAM_WINDOW_BYTES = 1024 * 1024


def grpc_options(settings: CommonSettings) -> list[tuple[str, int]]:
    return [
        ("grpc.max_receive_message_length", settings.grpc_max_message_bytes),
        ("grpc.max_send_message_length", settings.grpc_max_message_bytes),
        ("grpc.http2.bdp_probe", 0),
        ("grpc.http2.lookahead_bytes", STREAM_WINDOW_BYTES),
    ]


async def serve(
    *,
    settings: CommonSettings,
    port: int,
    service_names: Sequence[str],
    register: Registrar,
    on_shutdown: Callable[[], Awaitable[None]] | None = None,
    ready: asyncio.Event | None = None,
    healthy: Callable[[], bool] | None = None,
    fatal: asyncio.Future[str] | None = None,
    authenticate: Authenticate | None = None,
    internal: Mapping[str, Authenticate] | None = None,
    metrics_port: int | None = None,
) -> None:
    """Runs until SIGTERM or SIGINT, then drains and returns. With `healthy`, health follows
    it (checked every second): NOT_SERVING while it is False, so load balancers and the
    gateway's /health see a service that cannot do its job. When `fatal` resolves (a client
    that cannot recover, with the reason), health turns NOT_SERVING at once, the service drains
    and raises ServiceFailed (the process exits with code 1 so that its supervisor starts it
    again). `authenticate` checks the credentials of every call to the named services before its
    request is validated (health and reflection stay open). `internal` names services for
    PixelFlow's own callers, each with its own check (common.internal_auth). `metrics_port`
    serves Prometheus' /metrics (common.metrics) until the service has stopped."""
    authenticators = {name: authenticate for name in service_names} if authenticate else {}
    interceptor = ErrorAndLoggingInterceptor({**authenticators, **(internal or {})})
    # The trace's span first (it reads the caller's `traceparent`), so refusals are traced too.
    server = grpc.aio.server(interceptors=[server_interceptor(), interceptor], options=grpc_options(settings))
    register(server)

    health = health_aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health, server)
    reflection.enable_server_reflection(
        [
            *service_names,
            *(internal or {}),
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )

    metrics = serve_metrics(settings.bind_host, metrics_port) if metrics_port is not None else None
    address = f"{settings.bind_host}:{port}"
    bound = server.add_insecure_port(address)
    if bound == 0:
        raise RuntimeError(f"cannot listen on {address}")
    await server.start()
    for name in ("", *service_names):
        await health.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("listening", extra={"address": f"{settings.bind_host}:{bound}", "services": list(service_names)})

    stop = asyncio.Event()
    watcher = asyncio.create_task(_follow(health, ["", *service_names], healthy, stop)) if healthy else None
    # Installed until the drain is over: a second signal meanwhile only sets `stop` again.
    with stop_signals(stop):
        if ready is not None:
            ready.set()
        stopped = asyncio.ensure_future(stop.wait())
        waits: list[asyncio.Future[Any]] = [stopped] if fatal is None else [stopped, fatal]
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        failure = fatal.result() if fatal is not None and fatal.done() else None
        if watcher is not None:
            watcher.cancel()
        if failure is not None:
            log.error("stopping after a fatal error; exiting with code 1", extra={"error": failure})
            for name in ("", *service_names):
                await health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)

        log.info("shutting down", extra={"grace_seconds": settings.shutdown_grace_seconds})
        await health.enter_graceful_shutdown()
        await server.stop(settings.shutdown_grace_seconds)
        if on_shutdown is not None:
            await on_shutdown()
        if metrics is not None:
            await asyncio.to_thread(metrics.shutdown)
            metrics.server_close()
        log.info("stopped")
        if failure is not None:
            raise ServiceFailed(failure)


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


@contextlib.contextmanager
def stop_signals(stop: asyncio.Event) -> Iterator[None]:
    """Sets `stop` on SIGTERM or SIGINT while inside (the handlers before are restored after).

    Not `loop.add_signal_handler`: asyncio learns of those signals only from a byte the C
    handler writes into the loop's self-pipe, which `call_soon_threadsafe` (the consumer's poll
    thread, the image pool's futures) fills too. Once that pipe is full the byte is dropped
    ("Exception ignored when trying to write to the signal wakeup fd") and the signal is lost:
    a worker ignored SIGTERM that way for 15 s in a test run. A Python handler always runs in
    the main thread, and `call_soon_threadsafe` wakes the loop even when the pipe is full (a
    full pipe is readable)."""
    loop = asyncio.get_running_loop()

    def handler(signum: int, frame: FrameType | None) -> None:
        loop.call_soon_threadsafe(stop.set)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, before in previous.items():
            signal.signal(sig, before)


async def _follow(health: Any, names: list[str], healthy: Callable[[], bool], stop: asyncio.Event) -> None:
    serving = True
    while not stop.is_set():
        await asyncio.sleep(1.0)
        now_serving = healthy()
        if now_serving != serving:
            serving = now_serving
            status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
            log.warning("health changed", extra={"serving": serving})
            for name in names:
                await health.set(name, status)
