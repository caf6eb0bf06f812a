"""What must survive crashes and outages, on a stack of its own (these tests break things):
a worker killed mid-task, and Kafka down while tasks are created."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import grpc
import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition
from google.api import httpbody_pb2
from PIL import Image
from pixelflow.v1 import auth_pb2_grpc, task_pb2, task_pb2_grpc
from pymongo import AsyncMongoClient, MongoClient

from common.blobstore.filesystem import FilesystemBlobStore
from common.blobstore.keys import result_key, upload_key
from common.kafka import TASKS_TOPIC, WORKER_GROUP
from infra.stack import Stack, is_serving
from tasks.lifecycle import TASK_LOCKS, take_final, terminal_write
from tasks.model import Status
from tests.conftest import (
    TEST_ENVIRONMENT,
    bearer,
    dead_letters,
    register_and_login,
    result_blobs,
    result_bytes,
    running_stack,
    sweep_orphans,
    wait_until,
    worker_verdicts,
)
from tests.images import ImageServer, image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fragile_stack() -> Iterator[Stack]:
    environment = {
        **TEST_ENVIRONMENT,
        "PIXELFLOW_KAFKA_DELIVERY_TIMEOUT_MS": "500",
        "PIXELFLOW_OUTBOX_INTERVAL_SECONDS": "1",
        "PIXELFLOW_MONGO_SOCKET_TIMEOUT_MS": "3000",
    }
    with running_stack("resilience", environment) as stack:
        yield stack


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/quick.png", image_bytes(120, 80), "image/png")
    server.serve_bytes("/slow.png", image_bytes(120, 80), "image/png", delay=3.0)
    with server.running():
        yield server


def _user(stack: Stack) -> tuple[task_pb2_grpc.TaskServiceStub, tuple[tuple[str, str]], grpc.Channel]:
    channel = grpc.insecure_channel(stack.address("api_svc"))
    with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
        login = register_and_login(auth_pb2_grpc.AuthServiceStub(auth_channel))
    return task_pb2_grpc.TaskServiceStub(channel), bearer(login.access_token), channel


def _wait_for(
    tasks: task_pb2_grpc.TaskServiceStub, metadata: tuple[tuple[str, str]], task_id: str, timeout: float
) -> task_pb2.Task:
    final = None
    for update in tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task_id), metadata=metadata, timeout=timeout):
        final = update.task
    assert final is not None
    return final


_ENDED = (task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_FAILED, task_pb2.TASK_STATUS_CANCELLED)


def _all_ended(
    stack: Stack,
    tasks: task_pb2_grpc.TaskServiceStub,
    metadata: tuple[tuple[str, str]],
    ids: list[str],
    timeout: float,
) -> list[task_pb2.Task]:
    """Every task of `ids` once all have ended, in order. If some have not within `timeout`, the
    failure tells their story (status, and what api_svc and the worker logged about them, and
    the worker's Kafka client): a run on a loaded machine that fails says why."""
    ended: dict[str, task_pb2.Task] = {}

    def all_ended() -> bool:
        for task_id in ids:
            if task_id in ended:
                continue
            try:
                task = tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), metadata=metadata, timeout=10)
            except grpc.RpcError:
                return False  # api_svc busy or restarting: ask again
            if task.status in _ENDED:
                ended[task_id] = task
        return len(ended) == len(ids)

    try:
        wait_until(all_ended, "", timeout)
    except AssertionError:
        raise AssertionError(_story(stack, [task_id for task_id in ids if task_id not in ended])) from None
    return [ended[task_id] for task_id in ids]


def _story(stack: Stack, task_ids: list[str]) -> str:
    lines = [f"{len(task_ids)} task(s) never ended: {', '.join(task_ids)}"]
    for name in ("api_svc", "worker_svc"):
        logged = stack.services[name].log_path.read_text(errors="replace").splitlines()
        mentions = [line[:240] for line in logged if any(task_id in line for task_id in task_ids)]
        kafka = [line[:240] for line in logged if line.startswith("%")]
        lines += [f"--- {name}: {len(mentions)} lines about them (last 12)", *mentions[-12:]]
        lines += [f"--- {name}: its Kafka client (last 5)", *kafka[-5:]]
    return "\n".join(lines)


def _wait_until_processing(
    tasks: task_pb2_grpc.TaskServiceStub, metadata: tuple[tuple[str, str]], task_id: str
) -> None:
    request = task_pb2.GetTaskRequest(task_id=task_id)
    processing = task_pb2.TASK_STATUS_PROCESSING
    wait_until(lambda: tasks.GetTask(request, metadata=metadata).status == processing, "never picked up", 20)


def test_a_worker_killed_mid_task_leaves_exactly_one_result(fragile_stack: Stack, images: ImageServer) -> None:
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        task = tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                source_url=images.url("/slow.png"), operations=[task_pb2.Operation(grayscale=task_pb2.Grayscale())]
            ),
            metadata=metadata,
        )
        _wait_until_processing(tasks, metadata, task.id)
        fragile_stack.kill_service("worker_svc")  # kill -9 while it waits for the slow source
        fragile_stack.restart_service("worker_svc")
        final = _wait_for(tasks, metadata, task.id, timeout=60)
    assert final.status == task_pb2.TASK_STATUS_COMPLETED, final.error
    assert final.attempts == 2  # the crashed attempt and the one that finished
    assert result_blobs(fragile_stack, task.id) == ["result-2"]


def test_a_worker_killed_between_storing_and_finishing_leaves_no_orphan(
    fragile_stack: Stack, images: ImageServer
) -> None:
    """kill -9 after the result blob is written and before the task records it: the task is
    taken over and completes with its own result; the sweep removes the dead attempt's blob."""
    images.serve_bytes("/store-then-die.png", image_bytes(120, 80), "image/png", delay=1.0)
    ferretdb = fragile_stack.infra.ferretdb.process
    assert ferretdb is not None and ferretdb.pid is not None
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        task = tasks.CreateTask(
            task_pb2.CreateTaskRequest(source_url=images.url("/store-then-die.png")), metadata=metadata
        )
        # The claim is written before the fetch starts: freeze the task store once the worker
        # fetches, so the worker processes and stores its result but cannot record it.
        wait_until(lambda: images.hits.get("/store-then-die.png", 0) > 0, "the worker never fetched the source")
        os.kill(ferretdb.pid, signal.SIGSTOP)
        try:
            wait_until(lambda: result_blobs(fragile_stack, task.id) == ["result-1"], "the result was never stored")
            fragile_stack.kill_service("worker_svc")
        finally:
            os.kill(ferretdb.pid, signal.SIGCONT)
        fragile_stack.restart_service("worker_svc")
        final = _wait_for(tasks, metadata, task.id, timeout=90)  # after the lease, the relay republishes it
        assert final.status == task_pb2.TASK_STATUS_COMPLETED and final.attempts == 2, final
        assert result_blobs(fragile_stack, task.id) == ["result-1", "result-2"]  # the orphan is there
        sweep_orphans(fragile_stack, timedelta(0))
        assert result_blobs(fragile_stack, task.id) == ["result-2"]
        _, data = result_bytes(tasks, task.id, metadata)
        assert hashlib.sha256(data).hexdigest() == final.result.sha256


def test_the_sweep_removes_blobs_nothing_references(fragile_stack: Stack) -> None:
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        kept = tasks.CreateUpload(
            iter([task_pb2.CreateUploadRequest(body=httpbody_pb2.HttpBody(data=image_bytes(20, 20)))]),
            metadata=metadata,
        )
    blobs = FilesystemBlobStore(fragile_stack.blob_dir)
    crashed_upload = upload_key(uuid.uuid4().hex)  # stored, then the process died before the record
    deleted_task = result_key(uuid.uuid4().hex, 1)  # a result whose task is gone
    for key in (crashed_upload, deleted_task):
        asyncio.run(blobs.put(key, b"orphan"))
    assert sweep_orphans(fragile_stack, timedelta(hours=1)).deleted == 0  # too young: maybe a write in flight
    assert sweep_orphans(fragile_stack, timedelta(0)).deleted >= 2
    assert not blobs.path(crashed_upload).exists() and not blobs.path(deleted_task).exists()
    assert blobs.path(upload_key(kept.id)).exists()


def test_tasks_created_while_kafka_is_down_all_complete_once(fragile_stack: Stack, images: ImageServer) -> None:
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        fragile_stack.infra.kafka.stop()
        try:

            def create(i: int) -> str:
                request = task_pb2.CreateTaskRequest(
                    source_url=images.url("/quick.png"),
                    operations=[task_pb2.Operation(resize=task_pb2.Resize(width=10 + i))],
                )
                return str(tasks.CreateTask(request, metadata=metadata, timeout=30).id)

            with ThreadPoolExecutor(10) as pool:
                ids = list(pool.map(create, range(50)))
            assert len(set(ids)) == 50  # every CreateTask succeeded, none was lost
            states = {tasks.GetTask(task_pb2.GetTaskRequest(task_id=i), metadata=metadata).status for i in ids}
            assert states == {task_pb2.TASK_STATUS_PENDING}
        finally:
            fragile_stack.infra.kafka.start()
        finals = [_wait_for(tasks, metadata, task_id, timeout=90) for task_id in ids]
    assert all(t.status == task_pb2.TASK_STATUS_COMPLETED for t in finals), [t.error for t in finals if t.error.code]
    assert all(t.attempts == 1 for t in finals)
    assert [t.result.width for t in finals] == [10 + i for i in range(50)]
    assert all(result_blobs(fragile_stack, t.id) == ["result-1"] for t in finals)


def _end_offsets(stack: Stack) -> int:
    consumer = Consumer({"bootstrap.servers": stack.infra.kafka_bootstrap, "group.id": "offsets-probe"})
    try:
        metadata = consumer.list_topics(TASKS_TOPIC, timeout=10)
        return sum(
            consumer.get_watermark_offsets(TopicPartition(TASKS_TOPIC, p), timeout=10)[1]
            for p in metadata.topics[TASKS_TOPIC].partitions
        )
    finally:
        consumer.close()


def test_create_task_is_unavailable_while_the_task_store_is_down(fragile_stack: Stack, images: ImageServer) -> None:
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        before = _end_offsets(fragile_stack)
        fragile_stack.infra.ferretdb.stop()
        try:
            with pytest.raises(grpc.RpcError) as caught:
                tasks.CreateTask(
                    task_pb2.CreateTaskRequest(source_url=images.url("/quick.png")), metadata=metadata, timeout=30
                )
            error: Any = caught.value
            assert error.code() == grpc.StatusCode.UNAVAILABLE and "try again" in error.details()
        finally:
            fragile_stack.infra.ferretdb.start()
        assert _end_offsets(fragile_stack) == before  # nothing was queued
        task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/quick.png")), metadata=metadata)
        assert _wait_for(tasks, metadata, task.id, timeout=60).status == task_pb2.TASK_STATUS_COMPLETED


def test_sigterm_hands_in_flight_tasks_back(fragile_stack: Stack, images: ImageServer) -> None:
    """A worker told to stop finishes what it can within its grace period and hands the rest
    back (PENDING, offset not committed), so the next worker takes them over at once."""
    images.serve_bytes("/slower.png", image_bytes(120, 80), "image/png", delay=6.0)
    fragile_stack.environment["PIXELFLOW_SHUTDOWN_GRACE_SECONDS"] = "1"
    fragile_stack.restart_service("worker_svc")
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/slower.png")), metadata=metadata)
        _wait_until_processing(tasks, metadata, task.id)
        started = time.monotonic()
        assert fragile_stack.services["worker_svc"].stop() == 0  # SIGTERM: a clean exit
        assert time.monotonic() - started < 6  # it did not wait for the slow source
        handed_back = tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.id), metadata=metadata)
        assert handed_back.status == task_pb2.TASK_STATUS_PENDING
        del fragile_stack.environment["PIXELFLOW_SHUTDOWN_GRACE_SECONDS"]
        fragile_stack.restart_service("worker_svc")
        final = _wait_for(tasks, metadata, task.id, timeout=60)
    assert final.status == task_pb2.TASK_STATUS_COMPLETED and final.attempts == 2
    assert result_blobs(fragile_stack, task.id) == ["result-2"]


def test_health_names_the_upstream_that_is_down(fragile_stack: Stack) -> None:
    url = f"http://{fragile_stack.gateway_address}/health"
    fragile_stack.services["worker_svc"].stop()
    try:
        response = httpx.get(url, timeout=10)
        assert response.status_code == 503
        assert response.json()["upstreams"] == {
            "auth_svc": "SERVING",
            "api_svc": "SERVING",
            "worker_svc": "UNREACHABLE",
        }
    finally:
        fragile_stack.restart_service("worker_svc")
    assert httpx.get(url, timeout=10).status_code == 200


def test_the_deadline_stops_the_process_working_on_a_slow_image(fragile_stack: Stack, images: ImageServer) -> None:
    """A task over its deadline fails, and the process working on it is stopped: with one pool
    process, the next task runs at once instead of waiting for the abandoned image."""
    heavy = io.BytesIO()
    Image.new("RGB", (7000, 7000), (120, 30, 200)).save(heavy, "PNG")  # 49 MP, under the 50 MP limit
    fragile_stack.environment["PIXELFLOW_WORKER_CONCURRENCY"] = "1"
    fragile_stack.restart_service("worker_svc")
    tasks, metadata, channel = _user(fragile_stack)
    try:
        with channel:
            blurs = [task_pb2.Operation(blur=task_pb2.Blur(sigma=100))] * 20  # ~35 s of work here
            slow = tasks.CreateTask(
                task_pb2.CreateTaskRequest(upload=task_pb2.InlineUpload(content=heavy.getvalue()), operations=blurs),
                metadata=metadata,
            )
            final = _wait_for(tasks, metadata, slow.id, timeout=60)
            assert final.status == task_pb2.TASK_STATUS_FAILED and final.error.code == "DEADLINE_EXCEEDED", final
            started = time.monotonic()
            quick = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/quick.png")), metadata=metadata)
            assert _wait_for(tasks, metadata, quick.id, timeout=60).status == task_pb2.TASK_STATUS_COMPLETED
            assert time.monotonic() - started < 10  # not stuck behind the abandoned image
    finally:
        del fragile_stack.environment["PIXELFLOW_WORKER_CONCURRENCY"]
        fragile_stack.restart_service("worker_svc")


def test_a_task_that_kills_every_worker_ends_failed_after_the_attempt_cap(
    fragile_stack: Stack, images: ImageServer
) -> None:
    """Each time the task is PROCESSING its worker is killed (as an out-of-memory kill by a
    hostile image would): after PIXELFLOW_WORKER_MAX_ATTEMPTS (3) such attempts, the next claim
    ends it FAILED, dead-lettered, instead of taking workers down forever."""
    images.serve_bytes("/kills-workers.png", image_bytes(40, 40), "image/png", delay=30.0)
    tasks, metadata, channel = _user(fragile_stack)
    request = task_pb2.GetTaskRequest(task_id="")
    with channel:
        task = tasks.CreateTask(
            task_pb2.CreateTaskRequest(source_url=images.url("/kills-workers.png")), metadata=metadata
        )
        request.task_id = task.id
        for attempt in (1, 2, 3):

            def started(attempt: int = attempt) -> bool:
                current = tasks.GetTask(request, metadata=metadata)
                return current.status == task_pb2.TASK_STATUS_PROCESSING and current.attempts == attempt

            # Each attempt after the first starts once the killed one's lease (8 s) runs out
            # and the relay republishes the task.
            wait_until(started, f"attempt {attempt} never started", timeout=60)
            fragile_stack.kill_service("worker_svc")
            fragile_stack.restart_service("worker_svc")
        final = _wait_for(tasks, metadata, task.id, timeout=60)
    assert final.status == task_pb2.TASK_STATUS_FAILED, final
    assert final.error.code == "ATTEMPTS_EXHAUSTED" and not final.error.retryable
    assert final.attempts == 3 and "attempted 3 times" in final.error.message
    [record] = dead_letters(fragile_stack, task.id)
    assert record["code"] == "ATTEMPTS_EXHAUSTED" and record["attempts"] == 3
    # Killed as soon as it was PROCESSING, an attempt may not have fetched yet; the fourth claim
    # never fetches.
    assert images.hits.get("/kills-workers.png", 0) <= 3


def test_an_outcome_committed_by_a_worker_that_then_died_is_settled(fragile_stack: Stack, images: ImageServer) -> None:
    """kill -9 between the terminal lock and the task write: the state it leaves is a final lock
    holding the outcome and a task still PROCESSING. The relay settles it once the lease runs
    out, without running the task again."""
    images.serve_bytes("/dies-after-lock.png", image_bytes(40, 40), "image/png", delay=30.0)
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        task = tasks.CreateTask(
            task_pb2.CreateTaskRequest(source_url=images.url("/dies-after-lock.png")), metadata=metadata
        )
        _wait_until_processing(tasks, metadata, task.id)
        fragile_stack.kill_service("worker_svc")
        error = {"code": "CORRUPT_IMAGE", "message": "the committed outcome", "retryable": False}

        async def commit_as_the_dead_worker() -> None:
            mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(fragile_stack.infra.mongo_uri, tz_aware=True)
            try:
                terminal = terminal_write(Status.FAILED.value, {"error": error, "attempts": 1})
                assert await take_final(mongo["pixelflow"][TASK_LOCKS], task.id, "dead#1", terminal)
            finally:
                await mongo.close()

        asyncio.run(commit_as_the_dead_worker())
        try:
            final = _wait_for(tasks, metadata, task.id, timeout=60)
        finally:
            fragile_stack.restart_service("worker_svc")
    assert final.status == task_pb2.TASK_STATUS_FAILED and final.error.message == "the committed outcome"
    assert final.attempts == 1
    assert images.hits.get("/dies-after-lock.png", 0) <= 1  # settled, not run again


def _committed_lag(stack: Stack) -> int:
    """Records of image-tasks the worker group has not committed yet."""
    consumer = Consumer({"bootstrap.servers": stack.infra.kafka_bootstrap, "group.id": WORKER_GROUP})
    try:
        metadata = consumer.list_topics(TASKS_TOPIC, timeout=10)
        partitions = [TopicPartition(TASKS_TOPIC, p) for p in metadata.topics[TASKS_TOPIC].partitions]
        committed = consumer.committed(partitions, timeout=10)
        ends = [consumer.get_watermark_offsets(p, timeout=10)[1] for p in partitions]
        return sum(end - max(c.offset, 0) for c, end in zip(committed, ends, strict=True))
    finally:
        consumer.close()


def test_a_store_outage_mid_task_is_waited_out_by_the_same_attempt(fragile_stack: Stack, images: ImageServer) -> None:
    """The task store stops while a worker processes a task: the worker retries in place until
    it is back and finishes the same attempt (no takeover, no redelivery needed), and the
    group's commits move past the task."""
    images.serve_bytes("/outage.png", image_bytes(40, 40), "image/png", delay=2.0)
    worker_log = fragile_stack.services["worker_svc"].log_path
    retries_before = worker_log.read_text().count("retrying the message in place")
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/outage.png")), metadata=metadata)
        _wait_until_processing(tasks, metadata, task.id)
        ferretdb = fragile_stack.infra.ferretdb
        assert ferretdb.process is not None and ferretdb.process.pid is not None
        os.killpg(ferretdb.process.pid, signal.SIGKILL)  # gone at once (a clean stop drains first)
        ferretdb.stop()
        try:
            wait_until(
                lambda: worker_log.read_text().count("retrying the message in place") > retries_before,
                "the worker never noticed the outage",
                timeout=30,
            )
        finally:
            fragile_stack.infra.ferretdb.start()
        request = task_pb2.GetTaskRequest(task_id=task.id)
        final: list[task_pb2.Task] = []

        def finished() -> bool:
            try:
                current = tasks.GetTask(request, metadata=metadata)
            except grpc.RpcError as exc:  # the first call after the restart may be UNAVAILABLE
                assert exc.code() == grpc.StatusCode.UNAVAILABLE, exc
                return False
            final[:] = [current]
            return current.status == task_pb2.TASK_STATUS_COMPLETED

        wait_until(finished, "the task did not complete after the outage", timeout=60)
    assert final[0].attempts == 1, final[0]
    wait_until(lambda: _committed_lag(fragile_stack) == 0, "the group's commits did not move on", timeout=30)


def test_a_frozen_task_store_answers_unavailable_instead_of_hanging(fragile_stack: Stack) -> None:
    """SIGSTOP of FerretDB: connections stay open and nothing answers. A call fails UNAVAILABLE
    after the socket timeout (3 s here) rather than waiting for the caller's deadline."""
    tasks, metadata, channel = _user(fragile_stack)
    ferretdb = fragile_stack.infra.ferretdb.process
    assert ferretdb is not None and ferretdb.pid is not None
    with channel:
        tasks.ListTasks(task_pb2.ListTasksRequest(), metadata=metadata)  # a pooled connection is open
        os.kill(ferretdb.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(grpc.RpcError) as caught:
                tasks.ListTasks(task_pb2.ListTasksRequest(), metadata=metadata, timeout=30)
            waited = time.monotonic() - started
        finally:
            os.kill(ferretdb.pid, signal.SIGCONT)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.UNAVAILABLE and "try again" in error.details(), error
    assert waited < 20, waited


def test_a_task_held_past_its_lease_keeps_it(fragile_stack: Stack, images: ImageServer) -> None:
    """A source slower than the lease (8 s): the worker renews the lease while it holds the
    task, so the task is never seen stranded, and finishes as its first attempt."""
    images.serve_bytes("/slower-than-the-lease.png", image_bytes(40, 40), "image/png", delay=11.0)
    tasks, metadata, channel = _user(fragile_stack)

    store: MongoClient[dict[str, Any]] = MongoClient(fragile_stack.infra.mongo_uri, tz_aware=True)

    def lease_of(task_id: str) -> Any:
        document = store["pixelflow"]["tasks"].find_one({"_id": task_id})
        return None if document is None else document.get("lease_until")

    with channel:
        task = tasks.CreateTask(
            task_pb2.CreateTaskRequest(source_url=images.url("/slower-than-the-lease.png")), metadata=metadata
        )
        _wait_until_processing(tasks, metadata, task.id)
        try:
            first = lease_of(task.id)
            wait_until(lambda: lease_of(task.id) != first, "the lease was never renewed", timeout=8)
            assert lease_of(task.id) > first
        finally:
            store.close()
        final = _wait_for(tasks, metadata, task.id, timeout=60)
    assert final.status == task_pb2.TASK_STATUS_COMPLETED and final.attempts == 1, final
    assert images.hits["/slower-than-the-lease.png"] == 1


def test_a_worker_paused_past_its_lease_writes_nothing_when_it_resumes(
    fragile_stack: Stack, images: ImageServer
) -> None:
    """Two workers. The one holding a task is paused (SIGSTOP to its process group, as a VM
    pause or a stop-the-world stall would) until its lease runs out; the other takes the task
    over and completes it. Resumed (SIGCONT), the first finishes its own work, and the fence
    (the next attempt's lock) stops it: it records nothing and removes the result it stored."""
    images.serve_bytes("/pause.png", image_bytes(50, 30), "image/png", delay=6.0)
    extra = fragile_stack.add_worker()
    tasks, metadata, channel = _user(fragile_stack)
    try:
        with channel:
            task = tasks.CreateTask(task_pb2.CreateTaskRequest(source_url=images.url("/pause.png")), metadata=metadata)
            _wait_until_processing(tasks, metadata, task.id)
            held = tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.id), metadata=metadata)
            pid = int(held.worker_id.rsplit("-", 2)[1])  # worker ids are host-pid-random
            paused = next(p for p in (fragile_stack.services["worker_svc"], extra) if p.pid == pid)
            os.killpg(pid, signal.SIGSTOP)
            try:
                images.serve_bytes("/pause.png", image_bytes(50, 30), "image/png")  # quick for the next attempt
                final = _wait_for(tasks, metadata, task.id, timeout=90)
            finally:
                os.killpg(pid, signal.SIGCONT)
            assert final.status == task_pb2.TASK_STATUS_COMPLETED and final.attempts == 2, final
            assert final.worker_id != held.worker_id
            # Resumed, it either finishes its work and meets the fence, or its fetch timed out
            # while it was stopped and it finds the task ended (before a retry, at its failure,
            # or at the claim after api_svc did not answer in time): it records nothing.
            wait_until(
                lambda: bool(worker_verdicts(fragile_stack, task.id, paused.name)),
                "the resumed worker never finished with the task",
                timeout=60,
            )
            assert set(worker_verdicts(fragile_stack, task.id, paused.name)) <= {
                "task changed hands while processing; result discarded",
                "task ended elsewhere before its retry; nothing recorded",
                "task ended elsewhere; its failure not recorded",
                "task already finished; acknowledging the redelivery",
            }
            after = tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.id), metadata=metadata)
            assert (after.status, after.attempts, after.worker_id, after.result.sha256) == (
                final.status,
                2,
                final.worker_id,
                final.result.sha256,
            )
            assert result_blobs(fragile_stack, task.id) == ["result-2"]
            _, data = result_bytes(tasks, task.id, metadata)
            assert hashlib.sha256(data).hexdigest() == final.result.sha256
    finally:
        extra.stop()
        fragile_stack.services.pop(extra.name, None)


def test_kafka_down_past_the_message_timeout_with_the_api_restarted_meanwhile(
    fragile_stack: Stack, images: ImageServer
) -> None:
    """Kafka stays down longer than the producer's delivery timeout (500 ms here), and api_svc
    is restarted while it is down (its in-memory publishes are gone): every accepted task still
    completes, once — from the outbox, or from the stranded-task scan for one whose outbox write
    never happened."""
    tasks, metadata, channel = _user(fragile_stack)
    with channel:
        fragile_stack.infra.kafka.stop()
        try:
            ids = [
                tasks.CreateTask(
                    task_pb2.CreateTaskRequest(
                        source_url=images.url("/quick.png"),
                        operations=[task_pb2.Operation(resize=task_pb2.Resize(width=20 + i))],
                    ),
                    metadata=metadata,
                    timeout=30,
                ).id
                for i in range(8)
            ]
            fragile_stack.restart_service("api_svc")
        finally:
            fragile_stack.infra.kafka.start()
    with grpc.insecure_channel(fragile_stack.address("api_svc")) as channel:  # to the restarted api_svc
        finals = _all_ended(fragile_stack, task_pb2_grpc.TaskServiceStub(channel), metadata, ids, timeout=120)
    assert [t.status for t in finals] == [task_pb2.TASK_STATUS_COMPLETED] * 8, [t.error for t in finals]
    assert all(t.attempts == 1 for t in finals)
    assert [t.result.width for t in finals] == [20 + i for i in range(8)]
    assert all(result_blobs(fragile_stack, t.id) == ["result-1"] for t in finals)


def test_without_auth_svc_tokens_fail_closed_and_health_says_so(fragile_stack: Stack) -> None:
    """auth_svc gone: after PIXELFLOW_REVOCATION_MAX_STALENESS_SECONDS (10 s) api_svc cannot know
    whether a session was revoked, so it refuses calls (UNAVAILABLE) and reports NOT_SERVING
    instead of trusting stale revocations; both recover once auth_svc is back."""
    tasks, metadata, channel = _user(fragile_stack)
    request = task_pb2.ListTasksRequest()

    def outcome() -> grpc.StatusCode:
        try:
            tasks.ListTasks(request, metadata=metadata, timeout=10)
        except grpc.RpcError as exc:
            code: grpc.StatusCode = exc.code()
            return code
        return grpc.StatusCode.OK

    with channel:
        assert outcome() == grpc.StatusCode.OK
        fragile_stack.kill_service("auth_svc")
        try:
            wait_until(lambda: outcome() == grpc.StatusCode.UNAVAILABLE, "calls were still trusted", timeout=30)
            # Health is re-read every second.
            wait_until(lambda: not is_serving(fragile_stack.address("api_svc")), "health stayed SERVING", timeout=5)
        finally:
            fragile_stack.restart_service("auth_svc")
        wait_until(lambda: outcome() == grpc.StatusCode.OK, "calls did not recover", timeout=30)
        wait_until(lambda: is_serving(fragile_stack.address("api_svc")), "health did not recover", timeout=10)
