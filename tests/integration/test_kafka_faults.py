"""A fatal error of a Kafka client is noticed: the producer, the worker's group consumer and the
listeners report it through ClientFaults, and `serve` turns health NOT_SERVING and stops with
ServiceFailed (the process exits with code 1 and the supervisor restarts it with fresh clients).

The clients are real (librdkafka against the stack's broker) and so is the error: librdkafka's
own `rd_kafka_test_fatal_error` raises it inside the client, which then behaves exactly as after
a real one (producing refused, the error callback called from poll)."""

from __future__ import annotations

import asyncio
import ctypes
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import confluent_kafka
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from common.kafka import STATUS_TOPIC, AsyncProducer, ClientFaults, PublishError, TopicListener
from common.server import ServiceFailed, serve
from common.settings import CommonSettings
from infra.process import free_port
from infra.stack import Stack

pytestmark = pytest.mark.integration

# rd_kafka_resp_err_t RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER: what a broken idempotent
# producer sequence raises.
OUT_OF_ORDER_SEQUENCE_NUMBER = 45


@pytest.fixture(scope="module")
def librdkafka() -> Iterator[Any]:
    libs = Path(confluent_kafka.__file__).parent.parent / "confluent_kafka.libs"
    found = sorted(libs.glob("librdkafka-*.so*"))
    assert found, f"no librdkafka next to confluent_kafka in {libs}"
    library = ctypes.CDLL(str(found[0]))  # the copy cimpl already loaded: same handle
    library.rd_kafka_test_fatal_error.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p]
    library.rd_kafka_test_fatal_error.restype = ctypes.c_int
    yield library


def inject_fatal(library: Any, client: confluent_kafka.Producer | confluent_kafka.Consumer) -> None:
    # confluent-kafka's Handle struct starts with PyObject_HEAD, then `rd_kafka_t *rk`.
    handle = ctypes.c_void_p.from_address(id(client) + 16).value
    assert handle, "no rd_kafka_t behind the client"
    assert library.rd_kafka_test_fatal_error(handle, OUT_OF_ORDER_SEQUENCE_NUMBER, b"injected by the test") == 0


def test_a_fatal_producer_error_is_reported_and_publishing_stops(stack: Stack, librdkafka: Any) -> None:
    async def scenario() -> str:
        faults = ClientFaults(asyncio.get_running_loop())
        producer = AsyncProducer(stack.infra.kafka_bootstrap, client_id="fault-test", faults=faults)
        try:
            await producer.publish(STATUS_TOPIC, "fault-test", b"before")
            assert not faults.fatal.done()
            inject_fatal(librdkafka, producer._producer)
            reason = await asyncio.wait_for(faults.fatal, 10)
            with pytest.raises(PublishError):
                await producer.publish(STATUS_TOPIC, "fault-test", b"after")
            return reason
        finally:
            producer.close(timeout=1)

    reason = asyncio.run(scenario())
    assert reason.startswith("producer fault-test:") and "injected by the test" in reason


def test_a_fatal_consumer_error_is_reported(stack: Stack, librdkafka: Any) -> None:
    async def scenario() -> str:
        faults = ClientFaults(asyncio.get_running_loop())
        listener = TopicListener(
            stack.infra.kafka_bootstrap,
            [STATUS_TOPIC],
            lambda _message: None,
            asyncio.get_running_loop(),
            name="fault-test",
            faults=faults,
        )
        listener.start()
        try:
            assert await asyncio.to_thread(listener.ready.wait, 15)
            inject_fatal(librdkafka, listener._consumer)
            return await asyncio.wait_for(faults.fatal, 10)
        finally:
            await asyncio.to_thread(listener.stop)

    assert asyncio.run(scenario()).startswith("listener fault-test:")


def test_serve_turns_not_serving_and_exits_with_code_1_on_a_fatal_error() -> None:
    port = free_port()

    async def scenario() -> list[int]:
        fatal: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        ready = asyncio.Event()
        server = asyncio.create_task(
            serve(
                settings=CommonSettings(shutdown_grace_seconds=1),
                port=port,
                service_names=[],
                register=lambda _server: None,
                ready=ready,
                fatal=fatal,
            )
        )
        await asyncio.wait_for(ready.wait(), 10)
        seen: list[int] = []
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            seen.append((await watch.read()).status)
            fatal.set_result("producer test: broken sequence")
            with pytest.raises(ServiceFailed, match="broken sequence"):
                await asyncio.wait_for(server, 10)
            seen.append((await watch.read()).status)
            watch.cancel()
        return seen

    assert asyncio.run(scenario()) == [
        health_pb2.HealthCheckResponse.SERVING,
        health_pb2.HealthCheckResponse.NOT_SERVING,
    ]
