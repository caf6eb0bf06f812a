"""Kafka for asyncio services: a producer whose deliveries can be awaited, and a listener that
hands every record of some topics to the event loop. confluent-kafka is callback-and-thread
based; these are the only two places that bridge it to asyncio."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from opentelemetry import trace

from common.tracing import inject, kafka_attributes

log = logging.getLogger(__name__)
_tracer = trace.get_tracer(__name__)
Headers = list[tuple[str, str | bytes | None]]

TASKS_TOPIC = "image-tasks"
STATUS_TOPIC = "task-status"
DEAD_LETTER_TOPIC = "image-tasks-dlq"
HEARTBEATS_TOPIC = "worker-heartbeats"
WORKER_GROUP = "worker-group-1"

# Measured on this broker (produce → a subscribed consumer's poll, p50; decision 0013):
# linger 1 ms + fetch wait 500 ms (the earlier settings) 4.8–5.7 ms; linger 0 3.4–3.6 ms; linger 0
# + fetch wait 100 ms 2.6–3.2 ms. A task crosses Kafka twice on its way to a watcher, and at tens
# of records a second there is little to batch. An idle consumer then asks the broker ten times a
# second instead of twice (~0.1 ms of broker CPU each).
PRODUCER_LINGER_MS = 0
CONSUMER_LATENCY = {"fetch.wait.max.ms": 100}


class PublishError(Exception):
    """Kafka did not confirm a delivery in time (down, or the topic is missing)."""


class ClientFaults:
    """Where the Kafka clients of a process report trouble. Transient trouble (a broker down, a
    connection reset) reaches the error callback, and librdkafka recovers from it by itself. A
    *fatal* error (the idempotent producer's sequence broken, a consumer fenced) leaves the client
    unusable for good, and confluent-kafka raises it from `poll` instead: every poll loop hands
    what it raises to `fatal_in`. The first fatal error resolves `fatal`, which
    `common.server.serve` follows: health turns NOT_SERVING, the service drains and exits with
    code 1, and its supervisor starts a fresh process with fresh clients (decision 0014)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self.fatal: asyncio.Future[str] = loop.create_future()

    def config(self, name: str) -> dict[str, Any]:
        """Client configuration entries that route the client's errors here."""
        return {"error_cb": lambda error: self.on_error(name, error)}

    def on_error(self, client: str, error: KafkaError) -> None:
        """Called on the thread that polls the client."""
        if error.fatal():
            self._report(client, error)
        else:
            log.warning("kafka client error", extra={"client": client, "error": str(error)})

    def fatal_in(self, client: str, raised: KafkaException | KafkaError) -> bool:
        """True, and reported, if what a client's `poll` raised (a producer's) or returned (a
        consumer's message error) is a fatal error: the caller stops using the client. False
        for anything else (the caller logs it and goes on)."""
        error = raised.args[0] if isinstance(raised, KafkaException) and raised.args else raised
        if isinstance(error, KafkaError) and (error.fatal() or error.code() == KafkaError._FATAL):
            self._report(client, error)
            return True
        return False

    def _report(self, client: str, error: KafkaError) -> None:
        log.error("fatal kafka client error", extra={"client": client, "error": str(error)})
        self._loop.call_soon_threadsafe(self._fail, f"{client}: {error.str()}")

    def _fail(self, reason: str) -> None:
        if not self.fatal.done():
            self.fatal.set_result(reason)


class AsyncProducer:
    """Idempotent producer (acks=all); `publish` returns once the broker has the record."""

    def __init__(
        self, bootstrap: str, *, client_id: str, faults: ClientFaults, delivery_timeout_ms: int = 5000
    ) -> None:
        self._name = f"producer {client_id}"
        self._faults = faults
        self._producer = Producer(
            {
                **faults.config(self._name),
                "bootstrap.servers": bootstrap,
                "client.id": client_id,
                "enable.idempotence": True,
                "acks": "all",
                # Latency over batching: a task waits for this before it is sent.
                "linger.ms": PRODUCER_LINGER_MS,
                # After this a record is given up (the outbox publishes it again later).
                "message.timeout.ms": delivery_timeout_ms,
                "socket.connection.setup.timeout.ms": 2000,
            }
        )
        self._timeout = delivery_timeout_ms / 1000 + 1
        self._running = True
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-delivery", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while self._running:
            try:
                self._producer.poll(0.1)
            except KafkaException as exc:
                if self._faults.fatal_in(self._name, exc):
                    return  # finished for good: publish fails from now on, the process is stopping
                log.warning("kafka producer poll failed", extra={"error": str(exc)})

    async def publish(self, topic: str, key: str, value: bytes, headers: dict[str, str] | None = None) -> None:
        with _producing(topic, headers) as traced:
            await self._publish(topic, key, value, traced)

    async def _publish(self, topic: str, key: str, value: bytes, headers: Headers) -> None:
        loop = asyncio.get_running_loop()
        delivered: asyncio.Future[None] = loop.create_future()

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            def settle() -> None:
                if delivered.done():
                    return
                if error is None:
                    delivered.set_result(None)
                else:
                    delivered.set_exception(PublishError(str(error)))

            loop.call_soon_threadsafe(settle)

        try:
            self._producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
        except (BufferError, KafkaException) as exc:
            raise PublishError(str(exc)) from exc
        try:
            await asyncio.wait_for(delivered, self._timeout)
        except TimeoutError as exc:
            raise PublishError("no delivery confirmation in time") from exc

    def send(self, topic: str, key: str, value: bytes) -> None:
        """Fire and forget (status events: a lost one costs a watcher a re-read, not a task)."""

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                log.warning("event not delivered", extra={"topic": topic, "error": str(error)})

        with _producing(topic, None) as headers:
            try:
                self._producer.produce(topic, key=key.encode(), value=value, headers=headers, on_delivery=on_delivery)
            except (BufferError, KafkaException) as exc:
                log.warning("event not queued", extra={"topic": topic, "error": str(exc)})

    def close(self, timeout: float = 5.0) -> None:
        self._producer.flush(timeout)
        self._running = False
        self._poller.join(timeout=2)


@contextlib.contextmanager
def _producing(topic: str, headers: dict[str, str] | None) -> Iterator[Headers]:
    """The headers of a record produced now: within a trace (a task's), a producer span of it
    whose context the record carries (`traceparent`); outside one (heartbeats) no span at all."""
    carrier = dict(headers or {})
    if not trace.get_current_span().get_span_context().is_valid:
        yield [(name, value) for name, value in carrier.items()]
        return
    attributes = kafka_attributes(topic, "publish")
    with _tracer.start_as_current_span(f"{topic} publish", kind=trace.SpanKind.PRODUCER, attributes=attributes):
        yield [(name, value) for name, value in inject(carrier).items()]


class TopicListener:
    """Reads every partition of `topics` from their end, or their beginning (no consumer group
    offsets: each replica sees every record) and calls `handle` on the event loop for each."""

    def __init__(
        self,
        bootstrap: str,
        topics: Sequence[str],
        handle: Callable[[Message], None],
        loop: asyncio.AbstractEventLoop,
        *,
        name: str,
        faults: ClientFaults,
        from_beginning: bool = False,
    ) -> None:
        self._start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        self._name = f"listener {name}"
        self._faults = faults
        self._consumer = Consumer(
            {
                **faults.config(self._name),
                "bootstrap.servers": bootstrap,
                # Required by the client; never joined (assign, not subscribe) and never committed.
                "group.id": f"{name}-{uuid.uuid4().hex[:8]}",
                "enable.auto.commit": False,
                "auto.offset.reset": "latest",
                **CONSUMER_LATENCY,
            }
        )
        self._topics = list(topics)
        self._handle = handle
        self._loop = loop
        self._running = True
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.ready = threading.Event()

    def start(self) -> None:
        self._thread.start()

    def _assign(self) -> None:
        metadata = self._consumer.list_topics(timeout=10)
        partitions = [
            TopicPartition(topic, partition, self._start)
            for topic in self._topics
            for partition in metadata.topics[topic].partitions
        ]
        self._consumer.assign(partitions)

    def _run(self) -> None:
        while self._running and not self.ready.is_set():
            try:
                self._assign()
                self.ready.set()
            except (KafkaException, KeyError) as exc:
                log.warning("waiting for Kafka topics", extra={"topics": self._topics, "error": str(exc)})
                self._sleep(1.0)
        while self._running:
            try:
                message: Any = self._consumer.poll(0.2)
            except KafkaException as exc:
                if self._faults.fatal_in(self._name, exc):
                    return  # finished for good; the process is stopping
                log.warning("kafka listener poll failed", extra={"error": str(exc)})
                continue
            if message is None:
                continue
            if message.error():
                if self._faults.fatal_in(self._name, message.error()):
                    return  # finished for good; the process is stopping
                log.warning("kafka listener error", extra={"error": str(message.error())})
                continue
            self._loop.call_soon_threadsafe(self._handle, message)
        self._consumer.close()

    def _sleep(self, seconds: float) -> None:
        threading.Event().wait(seconds)

    def stop(self) -> None:
        self._running = False
        self._thread.join(timeout=5)
