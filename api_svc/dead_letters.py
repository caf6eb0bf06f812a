"""Reading the dead-letter topic for operators: pages of records in (partition, offset) order,
or the one record at a place. A short-lived consumer per call, assigned (never subscribed, never
committing), so reading changes nothing for anyone else."""

from __future__ import annotations

import asyncio
import base64
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from common.errors import InvalidArgument, NotFound, Unavailable
from common.kafka import DEAD_LETTER_TOPIC
from tasks.failures import FailureCode

_TIMEOUT = 10.0


@dataclass(frozen=True)
class DeadLetter:
    partition: int
    offset: int
    record: dict[str, Any]  # as the worker wrote it (worker_svc.processor.dead_letter)

    @property
    def task_id(self) -> str | None:
        value = self.record.get("task_id")
        return value if isinstance(value, str) and value else None

    @property
    def at(self) -> datetime | None:
        try:
            return datetime.fromisoformat(str(self.record.get("at")))
        except ValueError:
            return None

    def source_payload(self) -> bytes:
        encoded = (self.record.get("source") or {}).get("payload_base64")
        return base64.b64decode(encoded) if isinstance(encoded, str) else b""


def page_token(partition: int, offset: int) -> str:
    return f"{partition}.{offset}"


def parse_page_token(token: str) -> tuple[int, int] | None:
    if not token:
        return None
    partition, _, offset = token.partition(".")
    if not (partition.isdigit() and offset.isdigit()):
        raise InvalidArgument(
            "page_token is not one this service gave out", field="page_token", rule="page_token.known"
        )
    return int(partition), int(offset)


class DeadLetters:
    def __init__(self, bootstrap: str) -> None:
        self._bootstrap = bootstrap

    async def page(self, start: tuple[int, int] | None, limit: int) -> tuple[list[DeadLetter], tuple[int, int] | None]:
        """Up to `limit` records from `start` (a page token's place) on, and where the next page starts."""
        return await asyncio.to_thread(self._read_page, start, limit)

    async def at(self, partition: int, offset: int) -> DeadLetter:
        return await asyncio.to_thread(self._read_one, partition, offset)

    def _consumer(self) -> Consumer:
        return Consumer(
            {
                "bootstrap.servers": self._bootstrap,
                "group.id": f"pixelflow-admin-{uuid.uuid4().hex[:8]}",  # never joined or committed
                "enable.auto.commit": False,
                "socket.connection.setup.timeout.ms": 3000,
            }
        )

    def _read_page(self, start: tuple[int, int] | None, limit: int) -> tuple[list[DeadLetter], tuple[int, int] | None]:
        consumer = self._consumer()
        try:
            found: list[DeadLetter] = []
            for partition in _partitions(consumer):
                if start is not None and partition < start[0]:
                    continue
                low, high = _watermarks(consumer, partition)
                offset = max(low, start[1]) if start is not None and partition == start[0] else low
                if offset >= high:
                    continue
                consumer.assign([TopicPartition(DEAD_LETTER_TOPIC, partition, offset)])
                while offset < high:
                    if len(found) == limit:
                        return found, (partition, offset)
                    message = _poll(consumer)
                    if message is None:
                        break  # nothing more to read here (the end moved back: retention)
                    found.append(_decode(message))
                    offset = message.offset() + 1
            return found, None
        finally:
            consumer.close()

    def _read_one(self, partition: int, offset: int) -> DeadLetter:
        consumer = self._consumer()
        try:
            if partition not in _partitions(consumer):
                raise NotFound(f"the dead-letter topic has no partition {partition}")
            low, high = _watermarks(consumer, partition)
            if not low <= offset < high:
                holds = f"it holds offsets {low}–{high - 1}" if high > low else "it holds none"
                raise NotFound(f"no dead letter at partition {partition} offset {offset} ({holds})")
            consumer.assign([TopicPartition(DEAD_LETTER_TOPIC, partition, offset)])
            message = _poll(consumer)
            if message is None or message.offset() != offset:
                raise NotFound(f"no dead letter at partition {partition} offset {offset}")
            return _decode(message)
        finally:
            consumer.close()


def _partitions(consumer: Consumer) -> list[int]:
    try:
        metadata = consumer.list_topics(DEAD_LETTER_TOPIC, timeout=_TIMEOUT)
    except KafkaException as exc:
        raise Unavailable(f"Kafka is unavailable: {exc}") from exc
    topic = metadata.topics.get(DEAD_LETTER_TOPIC)
    if topic is None or topic.error is not None:
        return []
    return sorted(topic.partitions)


def _watermarks(consumer: Consumer, partition: int) -> tuple[int, int]:
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition(DEAD_LETTER_TOPIC, partition), timeout=_TIMEOUT)
    except KafkaException as exc:
        raise Unavailable(f"Kafka is unavailable: {exc}") from exc
    return int(low), int(high)


def _poll(consumer: Consumer) -> Any:
    message = consumer.poll(_TIMEOUT)
    if message is not None and message.error():
        raise Unavailable(f"Kafka is unavailable: {message.error()}")
    return message


def _decode(message: Any) -> DeadLetter:
    try:
        record = json.loads(message.value() or b"")
    except ValueError:
        record = None
    if not isinstance(record, dict):
        record = {
            "code": FailureCode.UNREADABLE_DEAD_LETTER.value,
            "message": "the record is not the JSON a worker writes",
        }
    return DeadLetter(message.partition(), message.offset(), record)
