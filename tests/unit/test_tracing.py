"""Which exporter the standard OTEL_* variables choose, and the collector Envoy is given."""

from __future__ import annotations

import pytest

from common import tracing
from gateway.envoy_config import otlp_endpoint

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("environment", "exporter"),
    [
        ({}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317"}, "otlp"),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4317"}, "otlp"),
        ({"OTEL_TRACES_EXPORTER": "console"}, "console"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_TRACES_EXPORTER": "none"}, "none"),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4317", "OTEL_SDK_DISABLED": "true"}, "none"),
    ],
)
def test_the_exporter_follows_the_standard_variables(
    monkeypatch: pytest.MonkeyPatch, environment: dict[str, str], exporter: str
) -> None:
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("OTEL_SDK_DISABLED", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert tracing._exporter_name() == exporter


def test_an_unknown_exporter_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="'zipkin' is not one of otlp, console, none"):
        tracing._exporter("zipkin")


@pytest.mark.parametrize(
    ("environment", "endpoint"),
    [
        ({}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317"}, ("127.0.0.1", 4317)),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector"}, ("collector", 4317)),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:5555"}, ("collector", 5555)),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_TRACES_EXPORTER": "console"}, None),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://c:4317", "OTEL_SDK_DISABLED": "true"}, None),
    ],
)
def test_envoy_sends_its_spans_where_the_services_do(
    environment: dict[str, str], endpoint: tuple[str, int] | None
) -> None:
    assert otlp_endpoint(environment) == endpoint


def test_kafka_headers_round_trip_the_context() -> None:
    carrier = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
    context = tracing.extract([(name, value.encode()) for name, value in carrier.items()])
    assert tracing.inject({}, context) == carrier
