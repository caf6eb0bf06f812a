"""Worker heartbeats and WorkerStatusService.

Every worker publishes a heartbeat to `worker-heartbeats`; every worker also answers
WorkerStatusService from what it has read of that topic (so any of them can serve it), plus
queue numbers from MongoDB and the consumer group's lag from Kafka.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from confluent_kafka import Consumer, KafkaException, TopicPartition
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import worker_pb2, worker_pb2_grpc
from pymongo.asynchronous.collection import AsyncCollection

from common.auth_client import TokenVerifier
from common.kafka import HEARTBEATS_TOPIC, TASKS_TOPIC, WORKER_GROUP, AsyncProducer, PublishError
from common.tasks import Status, utcnow
from worker_svc.processor import WorkerStats

log = logging.getLogger(__name__)
VERSION = "0.1.0"
Context = grpc.aio.ServicerContext[Any, Any]


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


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


class WorkerStatusServicer(worker_pb2_grpc.WorkerStatusServiceServicer):
    def __init__(
        self,
        registry: WorkerRegistry,
        tasks: AsyncCollection[dict[str, Any]],
        lag: ConsumerLag,
        verifier: TokenVerifier,
    ) -> None:
        self._registry = registry
        self._tasks = tasks
        self._lag = lag
        # Host names, pids and load are for signed-in users, not for anyone who can reach the port.
        self._verifier = verifier

    async def ListWorkers(
        self, request: worker_pb2.ListWorkersRequest, context: Context
    ) -> worker_pb2.ListWorkersResponse:
        await self._verifier.verify(context.invocation_metadata())
        return worker_pb2.ListWorkersResponse(
            workers=[
                worker_pb2.Worker(
                    id=str(beat["id"]),
                    host=str(beat["host"]),
                    pid=int(beat["pid"]),
                    started_at=_stamp(beat["started_at"]),
                    last_heartbeat=_stamp(beat["sent_at"]),
                    in_flight=int(beat["in_flight"]),
                    capacity=int(beat["capacity"]),
                    processed=int(beat["processed"]),
                    failed=int(beat["failed"]),
                    version=str(beat["version"]),
                )
                for beat in self._registry.live()
            ]
        )

    async def GetQueueStats(self, request: worker_pb2.GetQueueStatsRequest, context: Context) -> worker_pb2.QueueStats:
        await self._verifier.verify(context.invocation_metadata())
        now = utcnow()
        minute_ago = now - timedelta(minutes=1)

        async def count(query: dict[str, Any]) -> int:
            return await self._tasks.count_documents(query)

        completed = await count({"status": Status.COMPLETED.value, "completed_at": {"$gte": minute_ago}})
        try:
            lag = await asyncio.to_thread(self._lag.read)
        except (KafkaException, KeyError) as exc:
            log.warning("consumer lag unavailable", extra={"error": str(exc)})
            lag = 0
        return worker_pb2.QueueStats(
            pending=await count({"status": Status.PENDING.value}),
            processing=await count({"status": Status.PROCESSING.value}),
            consumer_lag=lag,
            completed_last_minute=completed,
            failed_last_minute=await count({"status": Status.FAILED.value, "completed_at": {"$gte": minute_ago}}),
            throughput_per_second=completed / 60,
            live_workers=len(self._registry.live()),
            as_of=_stamp(now),
        )
