"""worker_svc's Prometheus metrics: a task's stages and the engine's operations (from the
timings each task records), the submit-to-completed latency and the image pool's slots.
Observed in the worker process (the pool's processes return their timings with the image)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING

from prometheus_client import Gauge, Histogram

from tasks.model import as_utc

if TYPE_CHECKING:
    from worker_svc.processor import WorkerStats

# From a millisecond to a minute (the processing deadline's order).
_STAGE_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGES = ("fetch", "decode", "operations", "encode", "store")

STAGE_SECONDS = Histogram(
    "pixelflow_task_stage_seconds",
    "Time of each stage of a task's attempt that completed (fetch, decode, operations, encode, store).",
    ["stage"],
    buckets=_STAGE_BUCKETS,
)
ENGINE_OPERATION_SECONDS = Histogram(
    "pixelflow_engine_operation_seconds",
    "Engine time of one kind of operation in one task (every step of that kind, all variants).",
    ["operation"],
    buckets=_STAGE_BUCKETS,
)
TASK_LATENCY = Histogram(
    "pixelflow_task_latency_seconds",
    "From CreateTask storing the task (created_at) to its COMPLETED outcome (completed_at).",
    buckets=(0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0),
)
POOL_SLOTS = Gauge("pixelflow_worker_pool_slots", "The image process pool's processes, busy or idle.", ["state"])


def watch_pool(stats: WorkerStats, size: int) -> None:
    """The pool's gauges, read from `stats` when scraped (two integers: no work on a scrape)."""
    POOL_SLOTS.labels("busy").set_function(lambda: min(stats.in_pool, size))
    POOL_SLOTS.labels("idle").set_function(lambda: max(0, size - stats.in_pool))


def observe_stages(fetch_seconds: float, engine_ms: Mapping[str, float], operation_ms: Mapping[str, float]) -> None:
    STAGE_SECONDS.labels("fetch").observe(fetch_seconds)
    for stage, name in (("decode", "decode_ms"), ("operations", "process_ms"), ("encode", "encode_ms")):
        STAGE_SECONDS.labels(stage).observe(engine_ms.get(name, 0.0) / 1000)
    for operation, spent in operation_ms.items():
        ENGINE_OPERATION_SECONDS.labels(operation).observe(spent / 1000)


def observe_store(seconds: float) -> None:
    STAGE_SECONDS.labels("store").observe(seconds)


def observe_completed(created_at: datetime, completed_at: datetime) -> None:
    TASK_LATENCY.observe(max(0.0, (as_utc(completed_at) - as_utc(created_at)).total_seconds()))
