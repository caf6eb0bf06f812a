"""The Kafka side of a worker: consumer group `worker-group-1` on `image-tasks`, up to
`capacity` tasks at once, offsets committed only once a task's outcome is recorded.

Tasks of one partition can finish out of order, so per partition we store the lowest offset
still in flight (or one past the highest finished): a crash never skips an unfinished task,
and a redelivered finished one is acknowledged without work (see TaskProcessor.handle).

Stored offsets are committed by librdkafka every COMMIT_INTERVAL_MS, on a rebalance and on
close, not once per task: a commit is a write to `__consumer_offsets` and a round trip, and a
kill -9 only redelivers the tasks of the last interval, each acknowledged by one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from opentelemetry import trace

from common.kafka import CONSUMER_LATENCY, TASKS_TOPIC, WORKER_GROUP, ClientFaults
from common.logging import request_id_var, task_id_var
from common.tracing import extract, kafka_attributes
from tasks.failures import FailureCode
from worker_svc.delivery import Delivery, delivery_var
from worker_svc.processor import TaskProcessor
from worker_svc.retry import until_available

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)

Partition = tuple[str, int]
COMMIT_INTERVAL_MS = 1000


class OffsetTracker:
    def __init__(self) -> None:
        self._in_flight: dict[Partition, set[int]] = {}
        self._finished: dict[Partition, int] = {}

    def start(self, partition: Partition, offset: int) -> None:
        self._in_flight.setdefault(partition, set()).add(offset)

    def finish(self, partition: Partition, offset: int) -> int:
        """Marks `offset` done; returns the offset to commit for the partition."""
        in_flight = self._in_flight.setdefault(partition, set())
        in_flight.discard(offset)
        self._finished[partition] = max(self._finished.get(partition, -1), offset)
        return min(in_flight) if in_flight else self._finished[partition] + 1

    def forget(self, partitions: list[Partition]) -> None:
        for partition in partitions:
            self._in_flight.pop(partition, None)
            self._finished.pop(partition, None)


class TaskConsumer:
    def __init__(
        self, bootstrap: str, processor: TaskProcessor, capacity: int, client_id: str, faults: ClientFaults
    ) -> None:
        self._name = f"consumer {client_id}"
        self._faults = faults
        self._consumer = Consumer(
            {
                **faults.config(self._name),
                "bootstrap.servers": bootstrap,
                "group.id": WORKER_GROUP,
                "client.id": client_id,
                # Commit what _finish stores, periodically (at-least-once: never before the outcome).
                "enable.auto.commit": True,
                "enable.auto.offset.store": False,
                "auto.commit.interval.ms": COMMIT_INTERVAL_MS,
                "auto.offset.reset": "earliest",
                # Cooperative rebalancing: a worker joining or leaving does not stop the others.
                "partition.assignment.strategy": "cooperative-sticky",
                "session.timeout.ms": 10000,
                "max.poll.interval.ms": 600000,
                **CONSUMER_LATENCY,
            }
        )
        self._processor = processor
        self._slots = asyncio.Semaphore(capacity)
        self._offsets = OffsetTracker()
        self._running: set[asyncio.Task[None]] = set()
        self._stopping = asyncio.Event()
        self._polling_done = asyncio.Event()

    async def run(self) -> None:
        self._consumer.subscribe([TASKS_TOPIC], on_revoke=self._on_revoke)
        try:
            await self._poll_loop()
        finally:
            self._polling_done.set()

    async def _poll_loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._slots.acquire(), 0.5)
            except TimeoutError:
                continue  # every slot busy: look at _stopping again
            message: Any = None
            try:
                message = await asyncio.to_thread(self._consumer.poll, 0.5)
            except KafkaException as exc:
                if self._faults.fatal_in(self._name, exc):
                    return  # the client is finished; serve() stops the process
                log.warning("kafka consumer poll failed", extra={"error": str(exc)})
            finally:
                if message is None or message.error():
                    self._slots.release()
            if message is None:
                continue
            if message.error():
                if self._faults.fatal_in(self._name, message.error()):
                    return  # the client is finished; serve() stops the process
                log.warning("kafka consumer error", extra={"error": str(message.error())})
                continue
            partition, offset = (message.topic(), message.partition()), message.offset()
            self._offsets.start(partition, offset)
            job = asyncio.create_task(self._handle(message, partition, offset))
            self._running.add(job)
            job.add_done_callback(self._running.discard)

    async def _handle(self, message: Any, partition: Partition, offset: int) -> None:
        headers = dict(message.headers() or [])
        # The task's trace goes on here (api_svc's publish span is this span's parent).
        attributes = kafka_attributes(partition[0], "process", **{"messaging.kafka.partition": partition[1]})
        with _tracer.start_as_current_span(
            f"{partition[0]} process", context=extract(headers), kind=trace.SpanKind.CONSUMER, attributes=attributes
        ):
            await self._handle_in_span(message, headers, partition, offset)

    async def _handle_in_span(self, message: Any, headers: dict[str, Any], partition: Partition, offset: int) -> None:
        commit = True
        try:
            request_id_var.set((headers.get("x-request-id") or b"").decode(errors="replace") or None)
            delivery_var.set(Delivery.of(message))
            task_id = _task_id(message.value())
            if task_id is None:
                task_id_var.set(None)
                await until_available(
                    lambda: self._processor.dead_letter(None, FailureCode.UNDECODABLE_MESSAGE, "not a task message")
                )
            else:
                await self._processor.handle(task_id)  # waits out outages itself
        except asyncio.CancelledError:
            commit = False  # handed back: the next owner of the partition gets the message again
            raise
        except Exception:
            log.exception("unexpected error handling a task message")
        finally:
            self._slots.release()
            if commit:
                self._store(partition, self._offsets.finish(partition, offset))

    def _store(self, partition: Partition, offset: int) -> None:
        topic, number = partition
        try:
            self._consumer.store_offsets(offsets=[TopicPartition(topic, number, offset)])
        except KafkaException as exc:
            # Lost the partition in a rebalance: its new owner sees the message and acknowledges it.
            log.info("offset not stored", extra={"error": str(exc)})

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self._offsets.forget([(p.topic, p.partition) for p in partitions])

    async def stop(self, grace_seconds: float) -> None:
        """Stops polling, lets in-flight tasks finish for `grace_seconds`, hands back the rest,
        and leaves the group so the partitions move to the other workers at once."""
        self._stopping.set()
        await self._polling_done.wait()
        if self._running:
            _done, pending = await asyncio.wait(set(self._running), timeout=grace_seconds)
            for job in pending:
                job.cancel()
            for job in pending:
                with contextlib.suppress(asyncio.CancelledError):
                    await job
        await asyncio.to_thread(self._consumer.close)


def _task_id(value: bytes | None) -> str | None:
    try:
        task_id = json.loads(value or b"")["task_id"]
    except (ValueError, KeyError, TypeError):
        return None
    return task_id if isinstance(task_id, str) and len(task_id) == 32 else None
