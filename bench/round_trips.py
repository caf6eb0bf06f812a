"""Counts what a task costs in round trips, measured rather than read off the code:

- store commands: a MongoDB wire-protocol proxy between the services and the task store that
  counts each OP_MSG command by name and collection (`find tasks`, `insert task_locks`, …);
- Kafka records: the end offsets of every partition of every topic (offset commits included:
  they are records of `__consumer_offsets`) before and after.

The proxy adds a hop, so the bench uses it only in a phase of its own, never while timing.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import threading
from collections.abc import Iterator

import bson
from confluent_kafka import Consumer, TopicPartition

OP_MSG = 2013
_HEADER = 16
# The drivers' own traffic (server monitoring, sessions), not the task's.
_BACKGROUND = frozenset({"hello", "ismaster", "isMaster", "ping", "endSessions", "buildInfo", "saslStart"})


class CommandCountingProxy:
    """Forwards 127.0.0.1:`port` to `upstream_port`, counting the commands clients send."""

    def __init__(self, upstream_port: int) -> None:
        self.upstream_port = upstream_port
        self.commands: collections.Counter[str] = collections.Counter()
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mongo-proxy", daemon=True)
        self._lock = threading.Lock()

    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    @contextlib.contextmanager
    def running(self) -> Iterator[CommandCountingProxy]:
        self._thread.start()
        self._ready.wait(10)
        try:
            yield self
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def snapshot(self) -> collections.Counter[str]:
        with self._lock:
            return collections.Counter(self.commands)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            await asyncio.gather(
                self._forward(client_reader, upstream_writer, count=True),
                self._forward(upstream_reader, client_writer, count=False),
            )
        finally:
            for writer in (client_writer, upstream_writer):
                writer.close()

    async def _forward(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, count: bool) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                header = await reader.readexactly(_HEADER)
                length = int.from_bytes(header[:4], "little")
                body = await reader.readexactly(length - _HEADER)
                if count and int.from_bytes(header[12:16], "little") == OP_MSG:
                    self._count(body)
                writer.write(header + body)
                await writer.drain()
        writer.close()

    def _count(self, body: bytes) -> None:
        # flagBits (4 bytes), then a kind-0 section: one BSON document, the command itself.
        if len(body) < 5 or body[4] != 0:
            return
        size = int.from_bytes(body[5:9], "little")
        command = bson.decode(body[5 : 5 + size])
        name = next(iter(command), "?")
        if name in _BACKGROUND:
            return
        target = command[name]
        key = f"{name} {target}" if isinstance(target, str) else name
        with self._lock:
            self.commands[key] += 1


def kafka_records(bootstrap: str) -> collections.Counter[str]:
    """Records ever written per topic (the sum of the partitions' end offsets)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "bench-offsets", "enable.auto.commit": False})
    try:
        counts: collections.Counter[str] = collections.Counter()
        for topic, metadata in consumer.list_topics(timeout=10).topics.items():
            for partition in metadata.partitions:
                _low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
                counts[topic] += high
        return counts
    finally:
        consumer.close()


def per_task(before: collections.Counter[str], after: collections.Counter[str], tasks: int) -> dict[str, float]:
    return {name: (after[name] - before[name]) / tasks for name in sorted(after) if after[name] != before[name]}
