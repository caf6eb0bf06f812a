"""One task's trace across the whole stack (decision 0023), received by an OTLP/gRPC collector
of the test's own: the client's span → Envoy's → api_svc's CreateTask → the Kafka publish → the
worker's processing of the message (its claim a call into api_svc, then fetch, process, store)
→ the status event reaching api_svc's watchers; every span in one trace, each with the right
parent; and the services' log lines name the trace."""

from __future__ import annotations

import json
import secrets
import threading
from collections.abc import Iterator
from concurrent import futures
from dataclasses import dataclass

import grpc
import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.trace.v1 import trace_pb2

from infra.process import free_ports
from infra.stack import Stack
from tests.conftest import TEST_ENVIRONMENT, TEST_PASSWORD, running_stack, unique_email, wait_until
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration

SERVER, CLIENT, PRODUCER, CONSUMER = (
    trace_pb2.Span.SPAN_KIND_SERVER,
    trace_pb2.Span.SPAN_KIND_CLIENT,
    trace_pb2.Span.SPAN_KIND_PRODUCER,
    trace_pb2.Span.SPAN_KIND_CONSUMER,
)


@dataclass(frozen=True)
class Received:
    service: str
    span: trace_pb2.Span

    @property
    def id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent(self) -> str:
        return self.span.parent_span_id.hex()


class Collector(trace_service_pb2_grpc.TraceServiceServicer):
    """Keeps every span exported to it, with the service.name of its resource."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spans: list[Received] = []

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        with self._lock:
            for resource_spans in request.resource_spans:
                names = [a.value.string_value for a in resource_spans.resource.attributes if a.key == "service.name"]
                for scope_spans in resource_spans.scope_spans:
                    self._spans += [Received(names[0] if names else "", span) for span in scope_spans.spans]
        return trace_service_pb2.ExportTraceServiceResponse()

    def of_trace(self, trace_id: str) -> list[Received]:
        with self._lock:
            return [received for received in self._spans if received.span.trace_id.hex() == trace_id]


@pytest.fixture(scope="module")
def collector() -> Iterator[tuple[Collector, int]]:
    servicer = Collector()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port(f"127.0.0.1:{free_ports(1)[0]}")
    server.start()
    try:
        yield servicer, port
    finally:
        server.stop(grace=None)


@pytest.fixture(scope="module")
def traced_stack(collector: tuple[Collector, int]) -> Iterator[Stack]:
    environment = {
        **TEST_ENVIRONMENT,
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector[1]}",
        "OTEL_EXPORTER_OTLP_INSECURE": "true",
        "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach the collector soon after they end
    }
    with running_stack("traces", environment) as stack:
        yield stack


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(64, 48), "image/png")
    with server.running():
        yield server


def _the(spans: list[Received], service: str, name: str, kind: int, parent: str | None = None) -> Received:
    found = [s for s in spans if s.service == service and s.span.name == name and s.span.kind == kind]
    if parent is not None:
        found = [s for s in found if s.parent == parent]
    assert len(found) == 1, f"{service} {name} (parent {parent}): {[(s.service, s.span.name) for s in spans]}"
    return found[0]


def _descends(spans: list[Received], span: Received, ancestor: Received) -> bool:
    by_id = {s.id: s for s in spans}
    current: Received | None = span
    while current is not None:
        if current.parent == ancestor.id:
            return True
        current = by_id.get(current.parent)
    return False


def test_one_task_is_one_trace_from_the_gateway_to_the_watchers(
    traced_stack: Stack, collector: tuple[Collector, int], images: ImageServer
) -> None:
    received, _ = collector
    gateway = f"http://{traced_stack.gateway_address}"
    with httpx.Client(base_url=gateway, timeout=30) as rest:
        email = unique_email("traces")
        assert rest.post("/v1/auth/register", json={"email": email, "password": TEST_PASSWORD}).status_code == 200
        token = rest.post("/v1/auth/login", json={"email": email, "password": TEST_PASSWORD}).json()["accessToken"]
        headers = {"authorization": f"Bearer {token}"}
        # The caller's own span: Envoy continues its trace, so the test knows the trace's id.
        trace_id, client_span = secrets.token_hex(16), secrets.token_hex(8)
        created = rest.post(
            "/v1/tasks",
            headers={**headers, "traceparent": f"00-{trace_id}-{client_span}-01"},
            json={"sourceUrl": images.url("/photo.png"), "operations": [{"grayscale": {}}]},
        )
        assert created.status_code == 200, created.text
        task_id = created.json()["id"]
        wait_until(
            lambda: rest.get(f"/v1/tasks/{task_id}", headers=headers).json()["status"] == "TASK_STATUS_COMPLETED",
            "the task never completed",
        )

    expected = {
        ("gateway", SERVER),
        ("api_svc", SERVER),
        ("api_svc", PRODUCER),
        ("worker_svc", CONSUMER),
        ("worker_svc", CLIENT),
        ("api_svc", CONSUMER),
    }
    names = ("fetch source", "process image", "store result")

    def complete() -> bool:
        spans = received.of_trace(trace_id)
        kinds = {(s.service, s.span.kind) for s in spans}
        return expected <= kinds and all(any(s.span.name == name for s in spans) for name in names)

    wait_until(complete, f"the trace lacks spans: {[(s.service, s.span.name) for s in received.of_trace(trace_id)]}")
    spans = received.of_trace(trace_id)
    envoy = next(s for s in spans if s.service == "gateway" and s.parent == client_span)
    create = _the(spans, "api_svc", "/pixelflow.v1.TaskService/CreateTask", SERVER, parent=envoy.id)
    publish = _the(spans, "api_svc", "image-tasks publish", PRODUCER, parent=create.id)
    process = _the(spans, "worker_svc", "image-tasks process", CONSUMER, parent=publish.id)
    claim = _the(spans, "worker_svc", "/pixelflow.internal.v1.TaskLifecycleService/ClaimTask", CLIENT)
    assert _descends(spans, claim, process)
    _the(spans, "api_svc", "/pixelflow.internal.v1.TaskLifecycleService/ClaimTask", SERVER, parent=claim.id)
    for name in names:
        assert _descends(spans, _the(spans, "worker_svc", name, trace_pb2.Span.SPAN_KIND_INTERNAL), process)
    engine = _the(spans, "worker_svc", "process image", trace_pb2.Span.SPAN_KIND_INTERNAL)
    assert any(a.key == "pixelflow.decode_ms" for a in engine.span.attributes)
    # The status event of the end reaches api_svc's watchers within the same trace.
    delivered = [s for s in spans if s.service == "api_svc" and s.span.name == "task-status deliver"]
    assert delivered and all(_descends(spans, s, process) or _descends(spans, s, create) for s in delivered)

    # The worker's log lines about the task name its trace.
    lines = traced_stack.services["worker_svc"].log_path.read_text(errors="replace").splitlines()
    records = [json.loads(line) for line in lines if task_id in line and line.startswith("{")]
    completed = [r for r in records if r.get("message") == "task completed" and r.get("task_id") == task_id]
    assert [r.get("trace_id") for r in completed] == [trace_id]
