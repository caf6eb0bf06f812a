"""Delivery guarantees of the worker on the shared stack: retries with backoff ending in the
dead-letter topic, poison messages, redelivery of finished tasks, stale workers, scaling out."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import grpc
import pytest
from confluent_kafka import Producer
from pixelflow.v1 import task_pb2, task_pb2_grpc, worker_pb2, worker_pb2_grpc
from pymongo import AsyncMongoClient

from common.kafka import TASKS_TOPIC
from infra.stack import Stack
from tasks.lifecycle import TASK_LOCKS, ClaimOutcome, TaskClaims
from tasks.model import TASKS, Status, utcnow
from tests.conftest import (
    bearer,
    dead_letters,
    eventually,
    register_and_login,
    wait_for_worker_verdict,
    wait_until,
    worker_verdicts,
)
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_status("/flaky.png", 503)
    server.serve_bytes("/ok.png", image_bytes(50, 40), "image/png")
    with server.running():
        yield server


@pytest.fixture(scope="module")
def user(stack: Stack, auth: Any) -> Iterator[tuple[task_pb2_grpc.TaskServiceStub, tuple[tuple[str, str]]]]:
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        yield task_pb2_grpc.TaskServiceStub(channel), bearer(register_and_login(auth).access_token)


def _final(user: tuple[task_pb2_grpc.TaskServiceStub, Any], task_id: str) -> task_pb2.Task:
    tasks, metadata = user
    updates = list(tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task_id), metadata=metadata, timeout=60))
    return updates[-1].task


def test_transient_failures_are_retried_then_dead_lettered(stack: Stack, user: Any, images: ImageServer) -> None:
    tasks, metadata = user
    task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/flaky.png")), metadata=metadata)
    final = _final(user, task.id)
    assert final.status == task_pb2.TASK_STATUS_FAILED
    assert final.error.code == "SOURCE_HTTP_ERROR" and final.error.retryable
    assert final.attempts == 3  # PIXELFLOW_WORKER_MAX_ATTEMPTS' default
    assert images.hits["/flaky.png"] == 3
    [record] = dead_letters(stack, task.id)
    assert record["code"] == "SOURCE_HTTP_ERROR" and record["attempts"] == 3


def test_poison_messages_are_dead_lettered_and_do_not_block(stack: Stack, user: Any, images: ImageServer) -> None:
    producer = Producer({"bootstrap.servers": stack.infra.kafka_bootstrap})
    unknown = uuid.uuid4().hex
    # Key "0" and the unknown id hash to some partition; a good task follows on every partition.
    producer.produce(TASKS_TOPIC, key=b"poison", value=b"\x00\xff not json")
    producer.produce(TASKS_TOPIC, key=unknown.encode(), value=json.dumps({"task_id": unknown}).encode())
    producer.flush(10)
    [record] = dead_letters(stack, unknown)
    assert record["code"] == "UNKNOWN_TASK" and record["task_id"] == unknown
    poison = dead_letters(stack, "poison")[0]
    assert poison["code"] == "UNDECODABLE_MESSAGE" and poison["task_id"] is None
    # Everything needed to understand and replay the message is in the record.
    source = poison["source"]
    assert source["topic"] == TASKS_TOPIC and source["key"] == "poison"
    assert isinstance(source["partition"], int) and isinstance(source["offset"], int)
    assert base64.b64decode(source["payload_base64"]) == b"\x00\xff not json"
    assert poison["worker_id"] and poison["at"]
    tasks, metadata = user
    ids = [
        tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/ok.png")), metadata=metadata).id
        for _ in range(6)
    ]
    assert all(_final(user, task_id).status == task_pb2.TASK_STATUS_COMPLETED for task_id in ids)


def test_redelivery_of_a_finished_task_does_no_work(stack: Stack, user: Any, images: ImageServer) -> None:
    tasks, metadata = user
    task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/ok.png")), metadata=metadata)
    assert _final(user, task.id).status == task_pb2.TASK_STATUS_COMPLETED
    hits = images.hits["/ok.png"]
    decided = len(wait_for_worker_verdict(stack, task.id))
    producer = Producer({"bootstrap.servers": stack.infra.kafka_bootstrap})
    producer.produce(TASKS_TOPIC, key=task.id.encode(), value=json.dumps({"task_id": task.id}).encode())
    producer.flush(10)
    # The sentinel: the worker's verdict on the second delivery (the work must not be redone).
    wait_until(lambda: len(worker_verdicts(stack, task.id)) > decided, "the redelivery was never handled")
    assert worker_verdicts(stack, task.id)[decided:] == ["task already finished; acknowledging the redelivery"]
    again = tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.id), metadata=metadata)
    assert again.attempts == 1 and again.status == task_pb2.TASK_STATUS_COMPLETED
    assert images.hits["/ok.png"] == hits


async def test_a_stale_worker_cannot_overwrite_a_newer_attempt(stack: Stack) -> None:
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.infra.mongo_uri, tz_aware=True)
    try:
        collection = mongo["claims_test"][TASKS]
        locks = mongo["claims_test"][TASK_LOCKS]
        task_id = uuid.uuid4().hex
        await collection.insert_one(
            {"_id": task_id, "status": Status.PENDING.value, "attempts": 0, "created_at": utcnow()}
        )
        slow = TaskClaims(collection, locks, "worker-slow", timedelta(milliseconds=300), max_attempts=3)
        fast = TaskClaims(collection, locks, "worker-fast", timedelta(seconds=60), max_attempts=3)
        first = await slow.claim(task_id)
        assert first.outcome is ClaimOutcome.CLAIMED and first.attempt == 1
        assert (await fast.claim(task_id)).outcome is ClaimOutcome.LEASED
        # The slow worker "hung": the fast one claims the task as soon as that lease runs out.
        second = await eventually(
            lambda: fast.claim(task_id),
            lambda claim: claim.outcome is not ClaimOutcome.LEASED,
            "the slow worker's lease never ran out",
            within=10,
        )
        assert second.outcome is ClaimOutcome.CLAIMED and second.attempt == 2
        assert not await slow.complete(first, {"from": "stale"})
        assert await fast.complete(second, {"from": "fresh"})
        stored = await collection.find_one({"_id": task_id})
        assert stored is not None and stored["result"] == {"from": "fresh"} and stored["worker_id"] == "worker-fast"
        assert (await slow.claim(task_id)).outcome is ClaimOutcome.FINISHED
    finally:
        await mongo.close()


async def test_racing_claims_have_exactly_one_winner(stack: Stack) -> None:
    """FerretDB's find_one_and_update is not atomic under concurrency; the claim locks are."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.infra.mongo_uri, tz_aware=True, maxPoolSize=20)
    try:
        database = mongo["claims_race"]
        for _ in range(10):
            task_id = uuid.uuid4().hex
            await database[TASKS].insert_one(
                {"_id": task_id, "status": Status.PENDING.value, "attempts": 0, "created_at": utcnow()}
            )
            claimers = [
                TaskClaims(database[TASKS], database[TASK_LOCKS], f"worker-{i}", timedelta(seconds=30), max_attempts=3)
                for i in range(8)
            ]
            claims = await asyncio.gather(*(claimer.claim(task_id) for claimer in claimers))
            assert [c.outcome for c in claims].count(ClaimOutcome.CLAIMED) == 1
            winner = next(i for i, c in enumerate(claims) if c.outcome is ClaimOutcome.CLAIMED)
            finishes = await asyncio.gather(
                *(claimer.complete(claims[winner], {"by": i}) for i, claimer in enumerate(claimers))
            )
            assert sum(finish is not None for finish in finishes) == 1
    finally:
        await mongo.close()


def test_a_second_worker_process_joins_and_shares_the_work(stack: Stack, user: Any, images: ImageServer) -> None:
    extra = stack.add_worker()
    try:
        with grpc.insecure_channel(stack.address("worker_svc")) as channel:
            status = worker_pb2_grpc.WorkerStatusServiceStub(channel)
            _, metadata = user
            listed = worker_pb2.ListWorkersRequest()
            wait_until(
                lambda: len(status.ListWorkers(listed, metadata=metadata).workers) >= 2,
                "the second worker never reported",
                timeout=20,
            )
        tasks, metadata = user
        # The group rebalances once the new member joins; keep submitting until both have worked.
        workers: set[str] = set()
        deadline = time.monotonic() + 40
        while len(workers) < 2:
            assert time.monotonic() < deadline, f"only {workers} processed tasks"
            ids = [
                tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/ok.png")), metadata=metadata).id
                for _ in range(12)
            ]
            finals = [_final(user, task_id) for task_id in ids]
            assert all(task.status == task_pb2.TASK_STATUS_COMPLETED for task in finals)
            workers |= {task.worker_id for task in finals}
    finally:
        extra.stop()
    # A worker that stopped heartbeating leaves the list after PIXELFLOW_WORKER_DEAD_AFTER_SECONDS.
    with grpc.insecure_channel(stack.address("worker_svc")) as channel:
        status = worker_pb2_grpc.WorkerStatusServiceStub(channel)
        listed = worker_pb2.ListWorkersRequest()
        wait_until(
            lambda: len(status.ListWorkers(listed, metadata=metadata).workers) == 1,
            "the stopped worker is still listed",
            timeout=15,
        )
