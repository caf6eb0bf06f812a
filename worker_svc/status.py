"""Worker heartbeats, the registry of live workers, and the consumer group's lag.

Every worker publishes a heartbeat to `worker-heartbeats` and reads that topic into its
registry, so any worker can answer WorkerStatusService (servicer.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from common.kafka import HEARTBEATS_TOPIC, TASKS_TOPIC, WORKER_GROUP, AsyncProducer, PublishError
from worker_svc.processor import WorkerStats

log = logging.getLogger(__name__)
VERSION = "0.1.0"


async def publish_heartbeats(producer: AsyncProducer, worker_id: str, stats: WorkerStats, every: float) -> None:
    host, pid = socket.gethostname(), os.getpid()
    while True:
        beat = {
            "id": worker_id,
            "host": host,
            "pid": pid,
            "started_at": stats.started_at.isoformat(),
            "sent_at": datetime.now(tz=UTC).isoformat(),
            "in_flight": stats.in_flight,
            "capacity": stats.capacity,
            "processed": stats.processed,
            "failed": stats.failed,
            "version": VERSION,
        }
        try:
            await producer.publish(HEARTBEATS_TOPIC, worker_id, json.dumps(beat).encode())
        except PublishError as exc:
            log.warning("heartbeat not published", extra={"error": str(exc)})
        await asyncio.sleep(every)


class WorkerRegistry:
    """The last heartbeat of every worker seen on the topic."""

    def __init__(self, dead_after: timedelta) -> None:
        self._dead_after = dead_after
        self._beats: dict[str, dict[str, Any]] = {}

    def on_record(self, record: Any) -> None:
        try:
            beat = json.loads(record.value())
            beat["sent_at"] = datetime.fromisoformat(beat["sent_at"])
            beat["started_at"] = datetime.fromisoformat(beat["started_at"])
        except (ValueError, KeyError, TypeError):
            return
        self._beats[str(beat["id"])] = beat

    def live(self) -> list[dict[str, Any]]:
        cutoff = datetime.now(tz=UTC) - self._dead_after
        return sorted((b for b in self._beats.values() if b["sent_at"] >= cutoff), key=lambda b: str(b["id"]))


class ConsumerLag:
    """Messages in image-tasks that worker-group-1 has not committed yet."""

    def __init__(self, bootstrap: str) -> None:
        # Same group id only to read its committed offsets: it never subscribes, so it never joins.
        self._consumer = Consumer(
            {"bootstrap.servers": bootstrap, "group.id": WORKER_GROUP, "enable.auto.commit": False}
        )

    def read(self) -> int:
        metadata = self._consumer.list_topics(TASKS_TOPIC, timeout=5)
        partitions = [TopicPartition(TASKS_TOPIC, p) for p in metadata.topics[TASKS_TOPIC].partitions]
        lag = 0
        for committed in self._consumer.committed(partitions, timeout=5):
            low, high = self._consumer.get_watermark_offsets(committed, timeout=5, cached=False)
            position = committed.offset if committed.offset >= 0 else low
            lag += max(0, high - position)
        return lag

    def close(self) -> None:
        self._consumer.close()
