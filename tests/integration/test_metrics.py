"""Prometheus metrics on the real stack (decision 0022): two tasks (one completes, one fails) and
a refused login move each service's counters by exactly that, with the right labels; the
histograms observe; the queue's gauges exist; no label carries an id; Envoy's statistics answer
in Prometheus' format; and the alert rules and the Grafana dashboard name only metrics that a
live scrape shows."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
import yaml
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from infra.stack import REPO_ROOT, Stack
from tests.conftest import TEST_PASSWORD, bearer, register_and_login, unique_email, wait_until
from tests.images import image_bytes

pytestmark = pytest.mark.integration

SERVICES = ("auth_svc", "api_svc", "worker_svc")
ALERTS = REPO_ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = REPO_ROOT / "deploy" / "grafana" / "pixelflow-dashboard.json"
HEX_ID = re.compile(r"[0-9a-fA-F]{32}")
UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def scrape(url: str) -> list[Sample]:
    response = httpx.get(url, timeout=5)
    assert response.status_code == 200, url
    return [sample for family in text_string_to_metric_families(response.text) for sample in family.samples]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The sample's value (0 when the series does not exist yet: a counter never moved)."""
    found = [s.value for s in samples if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) <= 1 or not labels, (name, labels, found)
    return sum(found)


@dataclass(frozen=True)
class Scrapes:
    before: dict[str, list[Sample]]
    after: dict[str, list[Sample]]

    def moved(self, service: str, name: str, **labels: str) -> float:
        return value(self.after[service], name, **labels) - value(self.before[service], name, **labels)


def scrape_all(stack: Stack) -> dict[str, list[Sample]]:
    return {service: scrape(stack.metrics_url(service)) for service in SERVICES}


def _watch_to_the_end(tasks: task_pb2_grpc.TaskServiceStub, task_id: str, metadata: Any) -> task_pb2.Task:
    final = None
    for update in tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task_id), metadata=metadata, timeout=60):
        final = update.task
    assert final is not None
    return final


@pytest.fixture(scope="module")
def scrapes(stack: Stack) -> Iterator[Scrapes]:
    """What the counters were, then one refused login, one task that completes (resize and
    grayscale) and one that fails (a truncated JPEG), then what they are once the worker has
    observed the completed one."""
    before = scrape_all(stack)
    with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
        auth = auth_pb2_grpc.AuthServiceStub(auth_channel)
        email = unique_email("metrics")
        login = register_and_login(auth, email)
        with pytest.raises(grpc.RpcError) as refused:
            auth.Login(auth_pb2.LoginRequest(email=email, password=TEST_PASSWORD + "!"))
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
    metadata = bearer(login.access_token)
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        operations = [
            task_pb2.Operation(resize=task_pb2.Resize(width=16)),
            task_pb2.Operation(grayscale=task_pb2.Grayscale()),
        ]
        good = tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                upload=task_pb2.InlineUpload(content=image_bytes(64, 48)), operations=operations
            ),
            metadata=metadata,
        )
        bad = tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                upload=task_pb2.InlineUpload(content=image_bytes(320, 240, "JPEG")[:400]), operations=operations
            ),
            metadata=metadata,
        )
        assert _watch_to_the_end(tasks, good.id, metadata).status == task_pb2.TASK_STATUS_COMPLETED
        failed = _watch_to_the_end(tasks, bad.id, metadata)
        assert failed.status == task_pb2.TASK_STATUS_FAILED and failed.error.code == "CORRUPT_IMAGE"
    latency = "pixelflow_task_latency_seconds_count"
    wait_until(
        lambda: value(scrape(stack.metrics_url("worker_svc")), latency) > value(before["worker_svc"], latency),
        "the worker never observed the completed task's latency",
    )
    yield Scrapes(before, scrape_all(stack))


def test_task_counters_move_once_per_task_with_status_and_code(scrapes: Scrapes) -> None:
    assert scrapes.moved("api_svc", "pixelflow_tasks_created_total") == 2
    assert scrapes.moved("api_svc", "pixelflow_tasks_finished_total", status="COMPLETED", code="NONE") == 1
    assert scrapes.moved("api_svc", "pixelflow_tasks_finished_total", status="FAILED", code="CORRUPT_IMAGE") == 1
    assert scrapes.moved("api_svc", "pixelflow_tasks_finished_total") == 2  # no other outcome, no retry counted


def test_grpc_server_metrics_per_method_and_code(scrapes: Scrapes) -> None:
    create = {"grpc_type": "unary", "grpc_service": "pixelflow.v1.TaskService", "grpc_method": "CreateTask"}
    assert scrapes.moved("api_svc", "grpc_server_started_total", **create) == 2
    assert scrapes.moved("api_svc", "grpc_server_handled_total", **create, grpc_code="OK") == 2
    assert scrapes.moved("api_svc", "grpc_server_handling_seconds_count", **create) == 2
    assert scrapes.moved("api_svc", "grpc_server_handling_seconds_bucket", **create, le="+Inf") == 2
    watch = {"grpc_type": "server_stream", "grpc_service": "pixelflow.v1.TaskService", "grpc_method": "WatchTask"}
    assert scrapes.moved("api_svc", "grpc_server_handled_total", **watch, grpc_code="OK") == 2
    finish = {"grpc_service": "pixelflow.internal.v1.TaskLifecycleService", "grpc_method": "FinishTask"}
    assert scrapes.moved("api_svc", "grpc_server_handled_total", **finish, grpc_code="OK") == 2
    login = {"grpc_service": "pixelflow.v1.AuthService", "grpc_method": "Login"}
    assert scrapes.moved("auth_svc", "grpc_server_handled_total", **login, grpc_code="OK") == 1
    assert scrapes.moved("auth_svc", "grpc_server_handled_total", **login, grpc_code="UNAUTHENTICATED") == 1
    assert scrapes.moved("auth_svc", "grpc_server_started_total", **login) == 2


def test_logins_refused_are_counted(scrapes: Scrapes) -> None:
    assert scrapes.moved("auth_svc", "pixelflow_login_failures_total") == 1
    assert scrapes.moved("auth_svc", "pixelflow_login_throttled_total") == 0


def test_the_worker_observes_latency_stages_and_operations(scrapes: Scrapes) -> None:
    assert scrapes.moved("worker_svc", "pixelflow_task_latency_seconds_count") == 1
    assert scrapes.moved("worker_svc", "pixelflow_task_latency_seconds_sum") > 0
    # The failed task's decode failed: only the completed one went through every stage.
    for stage in ("fetch", "decode", "operations", "encode", "store"):
        assert scrapes.moved("worker_svc", "pixelflow_task_stage_seconds_count", stage=stage) == 1, stage
    for operation in ("resize", "grayscale"):
        assert scrapes.moved("worker_svc", "pixelflow_engine_operation_seconds_count", operation=operation) == 1
    assert scrapes.moved("worker_svc", "pixelflow_engine_operation_seconds_count", operation="blur") == 0
    slots = {s.labels["state"]: s.value for s in scrapes.after["worker_svc"] if s.name == "pixelflow_worker_pool_slots"}
    assert set(slots) == {"busy", "idle"} and slots["busy"] + slots["idle"] >= 1


def test_the_queue_and_store_gauges(stack: Stack, scrapes: Scrapes) -> None:
    def gauges() -> list[Sample]:
        return scrape(stack.metrics_url("api_svc"))

    # Every partition of image-tasks, by number, and back to no lag once the tasks are done.
    def caught_up() -> bool:
        lag = {s.labels["partition"]: s.value for s in gauges() if s.name == "pixelflow_kafka_consumer_lag_messages"}
        return set(lag) == {str(p) for p in range(6)} and not any(lag.values())

    wait_until(caught_up, "no lag gauge per partition of image-tasks, or the lag never went back to 0")
    names = {s.name for s in gauges()}
    assert {"pixelflow_dead_letter_messages", "pixelflow_outbox_tasks", "pixelflow_blob_stored_bytes"} <= names
    # The completed task's inline source and result are held (the failed one's source too).
    wait_until(lambda: value(gauges(), "pixelflow_blob_stored_bytes") > 0, "no stored bytes counted")


def test_no_label_value_is_an_id(stack: Stack, scrapes: Scrapes) -> None:
    for service, samples in scrape_all(stack).items():
        for sample in samples:
            for label, text in sample.labels.items():
                assert not HEX_ID.search(text) and not UUID.search(text), (service, sample.name, label, text)


def test_envoy_serves_its_statistics_in_prometheus_format(stack: Stack) -> None:
    samples = scrape(stack.envoy_stats_url)
    assert any(sample.name.startswith("envoy_cluster_upstream_rq") for sample in samples)


# -- the alert rules and the dashboard -----------------------------------------------------------
_STRINGS = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'')
_MATCHERS = re.compile(r"\{[^}]*\}")
_GROUPINGS = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_RANGES = re.compile(r"\[[^\]]*\]")
_IDENTIFIER = re.compile(r"(?<![\w.$:])[a-zA-Z_:][a-zA-Z0-9_:]*(?![\w:]|\s*\()")
_KEYWORDS = frozenset(
    {"and", "or", "unless", "offset", "bool", "by", "without", "on", "ignoring", "inf", "nan", "Inf", "NaN"}
)
# Made by Prometheus itself for every target it scrapes.
_SYNTHETIC = frozenset({"up"})


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects: what is left once strings, label matchers,
    groupings, ranges, functions and keywords are taken out."""
    text = _STRINGS.sub(" ", expression)
    text = _MATCHERS.sub(" ", text)
    text = _GROUPINGS.sub(" ", text)
    text = _RANGES.sub(" ", text)
    return {name for name in _IDENTIFIER.findall(text) if name not in _KEYWORDS}


def test_metric_names_are_found_in_promql() -> None:
    expression = 'sum by (le, stage) (rate(x_bucket{a="b",c=~"d|e"}[5m])) / on (job) y_total offset 5m > 1e3'
    assert metric_names(expression) == {"x_bucket", "y_total"}
    assert metric_names("histogram_quantile(0.95, rate(z[$__rate_interval:1m]))") == {"z"}


@pytest.fixture(scope="module")
def exposed(stack: Stack, scrapes: Scrapes) -> set[str]:
    names = {sample.name for samples in scrape_all(stack).values() for sample in samples}
    return names | {sample.name for sample in scrape(stack.envoy_stats_url)} | _SYNTHETIC


def alert_rules() -> list[dict[str, Any]]:
    loaded = yaml.safe_load(ALERTS.read_text())
    rules = [rule for group in loaded["groups"] for rule in group["rules"]]
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule
        assert rule["alert"] and isinstance(rule["expr"], str) and rule["annotations"]["summary"]
    return rules


def test_the_alert_rules_parse_and_name_only_exposed_metrics(exposed: set[str]) -> None:
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "PixelFlowServiceDown",
        "PixelFlowConsumerLagGrowing",
        "PixelFlowDeadLettersGrowing",
        "PixelFlowGrpcErrorRate",
        "PixelFlowTaskFailureRate",
    }
    for rule in rules:
        names = metric_names(rule["expr"])
        assert names, rule["alert"]
        assert names <= exposed, (rule["alert"], names - exposed)


def test_the_dashboard_queries_name_only_exposed_metrics(exposed: set[str]) -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    expressions = [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]
    assert len(expressions) >= 10
    for expression in expressions:
        names = metric_names(expression)
        assert names and names <= exposed, (expression, names - exposed)
