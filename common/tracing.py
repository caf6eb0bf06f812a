"""OpenTelemetry traces for every service, configured by the standard OTEL_* variables.

Off unless asked for: `OTEL_TRACES_EXPORTER` (`otlp`, `console` or `none`) chooses the exporter,
and it is `otlp` by default only when `OTEL_EXPORTER_OTLP_ENDPOINT` (or the traces-only
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set; `OTEL_SDK_DISABLED=true` turns everything off. The
SDK reads the rest itself: `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`, the sampler
(`OTEL_TRACES_SAMPLER`), the batch processor (`OTEL_BSP_*`), the propagators (`OTEL_PROPAGATORS`,
W3C trace context by default). Decision 0023 says which spans exist and how one task's trace
crosses Envoy, Kafka and the worker.

Kafka carries the context in each message's headers (`traceparent`), written by `inject` and
read by `extract`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any

import grpc
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.grpc import aio_client_interceptors, aio_server_interceptor, filters
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SpanExporter

log = logging.getLogger(__name__)

# What Kafka spans say about themselves (OpenTelemetry's messaging conventions).
MESSAGING_SYSTEM = "messaging.system"
MESSAGING_DESTINATION = "messaging.destination.name"
MESSAGING_OPERATION = "messaging.operation.type"


def _exporter_name() -> str:
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return "none"
    endpoint = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    return os.environ.get("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none").strip().lower()


def _exporter(name: str) -> SpanExporter | None:
    match name:
        case "none" | "":
            return None
        case "console":
            return ConsoleSpanExporter()
        case "otlp":
            return OTLPSpanExporter()  # it reads OTEL_EXPORTER_OTLP_* itself
    raise ValueError(f"OTEL_TRACES_EXPORTER={name!r} is not one of otlp, console, none")


def configure_tracing(service: str) -> None:
    """Installs the tracer provider of this process (once, at start-up). Without an exporter
    the API's no-op provider stays: spans cost next to nothing."""
    exporter = _exporter(_exporter_name())
    if exporter is None:
        return
    attributes = {} if os.environ.get("OTEL_SERVICE_NAME") else {SERVICE_NAME: service}
    provider = TracerProvider(resource=Resource.create(attributes))
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    log.info("tracing on", extra={"exporter": type(exporter).__name__})


def inject(headers: MutableMapping[str, str], context: Context | None = None) -> MutableMapping[str, str]:
    """`headers` with the current span's context (or `context`) added, for a Kafka message."""
    propagate.inject(headers, context=context)
    return headers


def extract(headers: Iterable[tuple[str, bytes | str | None]] | Mapping[str, bytes | str | None] | None) -> Context:
    """The context a Kafka message's headers carry (an empty one when they carry none)."""
    pairs = headers.items() if isinstance(headers, Mapping) else (headers or ())
    carrier: dict[str, str] = {}
    for key, value in pairs:
        if isinstance(value, bytes):
            carrier[key] = value.decode(errors="replace")
        elif value is not None:
            carrier[key] = value
    return propagate.extract(carrier)


def kafka_attributes(topic: str, operation: str, **more: Any) -> dict[str, Any]:
    return {MESSAGING_SYSTEM: "kafka", MESSAGING_DESTINATION: topic, MESSAGING_OPERATION: operation, **more}


def server_interceptor() -> grpc.aio.ServerInterceptor[Any, Any]:
    """A server span per call, child of the caller's `traceparent` (metadata). Health checks and
    reflection make none: probes every few seconds would drown the traces."""
    untraced = filters.any_of(filters.health_check(), filters.service_prefix("grpc.reflection"))
    interceptor: grpc.aio.ServerInterceptor[Any, Any] = aio_server_interceptor(  # type: ignore[no-untyped-call]
        filter_=filters.negate(untraced)
    )
    return interceptor


def client_interceptors() -> list[grpc.aio.ClientInterceptor]:
    """A client span per call, its context sent along (`traceparent`)."""
    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors()  # type: ignore[no-untyped-call]
    return interceptors
