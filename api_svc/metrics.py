"""api_svc's Prometheus metrics: tasks created and ended (counted where each is committed), and
the gauges of what waits — the consumer group's lag on image-tasks per partition, the dead
letters, the outbox — and of the blob bytes stored, computed every few seconds by one loop
(`refresh_gauges`), never on a scrape. Decision 0022 says where each is counted and why."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from confluent_kafka import Consumer, TopicPartition
from prometheus_client import Counter, Gauge

from api_svc.config import ApiSettings
from api_svc.quota_repository import QuotaRepository
from api_svc.repository import TaskRepository
from common.kafka import DEAD_LETTER_TOPIC, TASKS_TOPIC, WORKER_GROUP
from common.metrics import refresh_forever
from tasks.failures import FailureCode

TASKS_CREATED = Counter("pixelflow_tasks_created_total", "Tasks stored by CreateTask (an idempotent retry is not one).")
TASKS_FINISHED = Counter(
    "pixelflow_tasks_finished_total",
    "Task outcomes committed (once each, when the final lock is taken), by status and failure code.",
    ["status", "code"],
)
CONSUMER_LAG = Gauge(
    "pixelflow_kafka_consumer_lag_messages",
    "Messages of the topic's partition the workers' consumer group has not committed yet.",
    ["topic", "partition"],
)
DEAD_LETTERS = Gauge("pixelflow_dead_letter_messages", f"Records kept in {DEAD_LETTER_TOPIC} (the DLQ's depth).")
OUTBOX = Gauge("pixelflow_outbox_tasks", "Stored tasks waiting in the outbox for Kafka to take them.")
STORED_BYTES = Gauge(
    "pixelflow_blob_stored_bytes", "Bytes of uploads, results (every variant) and inline sources the tasks hold."
)

# For a task that did not fail: the code label is always there, so one selector reads them all.
NO_FAILURE = "NONE"
_CODES = frozenset(FailureCode)


def outcome_committed(fields: dict[str, Any]) -> None:
    """tasks.lifecycle's on_commit: one committed outcome (COMPLETED, FAILED or CANCELLED)."""
    code = (fields.get("error") or {}).get("code") or NO_FAILURE
    # The code comes from a worker: anything outside the proto's list is one label, not a new one.
    TASKS_FINISHED.labels(fields["status"], code if code in _CODES or code == NO_FAILURE else "OTHER").inc()


class QueueGauges:
    """Reads the workers' group's committed offsets and the watermarks of image-tasks and the
    DLQ. A consumer with the group's id that never subscribes: it reads, it never joins."""

    def __init__(self, bootstrap: str) -> None:
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": WORKER_GROUP, "enable.auto.commit": False}
        )

    def read(self) -> None:
        """Blocking (the Kafka client's calls): run in a thread."""
        metadata = self._consumer.list_topics(timeout=5)
        partitions = [TopicPartition(TASKS_TOPIC, p) for p in sorted(metadata.topics[TASKS_TOPIC].partitions)]
        for committed in self._consumer.committed(partitions, timeout=5):
            low, high = self._consumer.get_watermark_offsets(committed, timeout=5, cached=False)
            position = committed.offset if committed.offset >= 0 else low
            CONSUMER_LAG.labels(TASKS_TOPIC, str(committed.partition)).set(max(0, high - position))
        depth = 0
        for partition in metadata.topics[DEAD_LETTER_TOPIC].partitions:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(DEAD_LETTER_TOPIC, partition), timeout=5, cached=False
            )
            depth += max(0, high - low)
        DEAD_LETTERS.set(depth)

    def close(self) -> None:
        self._consumer.close()


async def refresh_gauges(settings: ApiSettings, tasks: TaskRepository, quotas: QuotaRepository) -> None:
    """Runs for the service's life (cancelled at shutdown): the queue's gauges every
    metrics_refresh_seconds, the stored bytes (a sum over every task and upload) every
    metrics_stored_bytes_seconds."""
    queue = QueueGauges(settings.kafka_bootstrap)

    async def waiting() -> None:
        await asyncio.to_thread(queue.read)
        OUTBOX.set(await tasks.outbox_size())

    async def stored() -> None:
        STORED_BYTES.set(await quotas.stored_bytes(None))

    try:
        async with asyncio.TaskGroup() as group:
            group.create_task(refresh_forever("queue", settings.metrics_refresh_seconds, waiting))
            group.create_task(refresh_forever("stored bytes", settings.metrics_stored_bytes_seconds, stored))
    finally:
        with contextlib.suppress(Exception):
            await asyncio.to_thread(queue.close)
