"""WorkerStatusService: the live workers (from the heartbeats every worker reads) and the
queue's numbers (task counts from api_svc, which owns the tasks; the consumer group's lag from
Kafka)."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta
from typing import Any

import grpc
from confluent_kafka import KafkaException
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.v1 import worker_pb2, worker_pb2_grpc

from common.auth_client import TokenVerifier
from common.errors import Unavailable
from tasks.model import utcnow
from worker_svc.lifecycle_client import LifecycleClient, LifecycleUnavailable
from worker_svc.status import ConsumerLag, WorkerRegistry

log = logging.getLogger(__name__)
Context = grpc.aio.ServicerContext[Any, Any]


def _stamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


class WorkerStatusServicer(worker_pb2_grpc.WorkerStatusServiceServicer):
    def __init__(
        self,
        registry: WorkerRegistry,
        counts: LifecycleClient,
        lag: ConsumerLag,
        verifier: TokenVerifier,
    ) -> None:
        self._registry = registry
        self._counts = counts
        self._lag = lag
        # Host names, pids and load are for signed-in users, not for anyone who can reach the port.
        self._verifier = verifier

    async def ListWorkers(
        self, request: worker_pb2.ListWorkersRequest, context: Context
    ) -> worker_pb2.ListWorkersResponse:
        await self._verifier.caller(context.invocation_metadata())
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
        await self._verifier.caller(context.invocation_metadata())
        now = utcnow()
        try:
            counts = await self._counts.queue_counts(now - timedelta(minutes=1))
        except LifecycleUnavailable as exc:
            raise Unavailable("the task counts are unavailable (api_svc did not answer); try again shortly") from exc
        try:
            lag = await asyncio.to_thread(self._lag.read)
        except (KafkaException, KeyError) as exc:
            log.warning("consumer lag unavailable", extra={"error": str(exc)})
            lag = 0
        return worker_pb2.QueueStats(
            pending=counts.pending,
            processing=counts.processing,
            consumer_lag=lag,
            completed_last_minute=counts.completed_since,
            failed_last_minute=counts.failed_since,
            throughput_per_second=counts.completed_since / 60,
            live_workers=len(self._registry.live()),
            as_of=_stamp(now),
        )
