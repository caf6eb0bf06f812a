"""The test harness: one real stack per test session, on free ports, in a throwaway directory.

Unit tests never touch it (the fixture is lazy). If any part of the stack cannot start, every
test that needs it errors with the component's log tail: nothing is skipped.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import shutil
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any, TypeVar

import grpc
import pytest
from confluent_kafka import Consumer
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc
from pymongo import AsyncMongoClient
from tenacity import AsyncRetrying, RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from api_svc.blob_sweep import SweepReport, sweep
from api_svc.config import ApiSettings
from api_svc.repository import TaskRepository
from common.blobstore import BlobStore, open_blob_store
from common.blobstore.keys import task_prefix
from common.kafka import DEAD_LETTER_TOPIC
from infra.infrastructure import make_temp_root
from infra.stack import REPO_ROOT, Stack, StackPorts
from tests.webhook_receiver import Receiver

ARTIFACTS = REPO_ROOT / "artifacts"
TEST_PASSWORD = "correct horse battery"
MAX_RESULT_BYTES = 16 * 1024 * 1024
TEST_ENVIRONMENT = {
    # bcrypt at cost 4: the tests check behaviour, bench/ measures the production cost.
    "PIXELFLOW_BCRYPT_ROUNDS": "4",
    # Test image servers listen on 127.0.0.1; every other private address stays refused
    # (the SSRF tests use 127.0.0.2, 10.0.0.1, ... and assert nothing connects).
    "PIXELFLOW_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
    # Small enough for the browser test to offer a file over it (test_large_transfers raises it).
    "PIXELFLOW_MAX_UPLOAD_BYTES": str(25 * 1024 * 1024),
    # Small enough for a test to pass it with an upscaled image (test_large_transfers raises it).
    "PIXELFLOW_IMAGE_MAX_RESULT_BYTES": str(MAX_RESULT_BYTES),
    # A crashed worker's task is taken over after this long (kill -9 test).
    "PIXELFLOW_WORKER_LEASE_SECONDS": "8",
    "PIXELFLOW_WORKER_TASK_DEADLINE_SECONDS": "6",
    "PIXELFLOW_WORKER_RETRY_BACKOFF_SECONDS": "0.2",
    "PIXELFLOW_STRANDED_TASK_SECONDS": "10",
    # A stopped worker leaves ListWorkers within seconds.
    "PIXELFLOW_WORKER_HEARTBEAT_SECONDS": "1",
    "PIXELFLOW_WORKER_DEAD_AFTER_SECONDS": "4",
    # Webhook receivers listen on 127.0.0.1 too; retries are seconds apart and given up after
    # a few seconds (production: 5 s doubling, for a day).
    "PIXELFLOW_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.1/32",
    "PIXELFLOW_WEBHOOK_RETRY_SECONDS": "8",
    "PIXELFLOW_WEBHOOK_FIRST_BACKOFF_SECONDS": "0.3",
    "PIXELFLOW_WEBHOOK_TIMEOUT_SECONDS": "2",
    "PIXELFLOW_WEBHOOK_POLL_SECONDS": "0.5",
}


@contextlib.contextmanager
def running_stack(name: str, environment: dict[str, str]) -> Iterator[Stack]:
    """A whole stack on free ports in a throwaway directory; its logs are kept in artifacts/."""
    root = make_temp_root(f"pixelflow-{name}-")
    running = Stack(root, StackPorts.free(), throwaway=True, environment=environment)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        # Keep the services' and Envoy's logs for whoever reads a failed run.
        for logs in (root / "logs", root / "gateway"):
            if logs.exists():
                shutil.copytree(logs, ARTIFACTS / f"{name}-logs" / logs.name, dirs_exist_ok=True)
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    with running_stack("stack", TEST_ENVIRONMENT) as running:
        yield running


@pytest.fixture(scope="session")
def auth_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.address("auth_svc")) as channel:
        yield channel


@pytest.fixture(scope="session")
def gateway_channel(stack: Stack) -> Iterator[grpc.Channel]:
    with grpc.insecure_channel(stack.gateway_address) as channel:
        yield channel


@pytest.fixture(scope="session")
def auth(auth_channel: grpc.Channel) -> auth_pb2_grpc.AuthServiceStub:
    return auth_pb2_grpc.AuthServiceStub(auth_channel)


def unique_email(prefix: str = "user") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}@example.com"


def bearer(token: str) -> tuple[tuple[str, str]]:
    return (("authorization", f"Bearer {token}"),)


def register_and_login(
    auth: auth_pb2_grpc.AuthServiceStub, email: str | None = None, password: str = TEST_PASSWORD
) -> auth_pb2.LoginResponse:
    email = email or unique_email()
    auth.Register(auth_pb2.RegisterRequest(email=email, password=password, display_name="Test User"))
    response: auth_pb2.LoginResponse = auth.Login(auth_pb2.LoginRequest(email=email, password=password))
    return response


T = TypeVar("T")
POLL_SECONDS = 0.01


def wait_until(condition: Callable[[], bool], message: str, timeout: float = 30) -> None:
    """Waits for a state to arrive (a file, a task status), failing with `message` after
    `timeout`. For states no stream announces; it never stands in for "nothing happened"."""
    polling = Retrying(
        stop=stop_after_delay(timeout), wait=wait_fixed(POLL_SECONDS), retry=retry_if_result(lambda met: not met)
    )
    try:
        polling(condition)
    except RetryError:
        raise AssertionError(message) from None


async def eventually(
    probe: Callable[[], Awaitable[T]], accept: Callable[[T], bool], message: str, within: float = 30
) -> T:
    """wait_until for asynchronous probes: the first value of `probe()` that `accept` takes
    within `within` seconds."""
    polling = AsyncRetrying(
        stop=stop_after_delay(within), wait=wait_fixed(POLL_SECONDS), retry=retry_if_result(lambda v: not accept(v))
    )

    async def probed() -> T:  # tenacity awaits only a coroutine function's result
        return await probe()

    try:
        return await polling(probed)
    except RetryError:
        raise AssertionError(message) from None


# What a worker logs when it is done with one delivery of a task (worker_svc.processor): the
# sentinel a test waits for before it checks that something did *not* happen to the task.
WORKER_VERDICTS = frozenset(
    {
        "task completed",
        "task failed",
        "task changed hands while processing; result discarded",
        "task already finished; acknowledging the redelivery",
        "task leased by another worker; acknowledging",
        "task ended elsewhere before its retry; nothing recorded",
        "task ended elsewhere; its failure not recorded",
    }
)


def worker_verdicts(stack: Stack, task_id: str, worker: str = "worker_svc") -> list[str]:
    """The verdicts the stack's worker (or the one named) has logged for `task_id` so far."""
    found = []
    for line in stack.services[worker].log_path.read_text(errors="replace").splitlines():
        if task_id not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("task_id") == task_id and record.get("message") in WORKER_VERDICTS:
            found.append(record["message"])
    return found


def wait_for_worker_verdict(stack: Stack, task_id: str, timeout: float = 30) -> list[str]:
    """Waits until the worker is done with a delivery of `task_id` (whatever it decided)."""
    wait_until(lambda: bool(worker_verdicts(stack, task_id)), f"the worker never finished with {task_id}", timeout)
    return worker_verdicts(stack, task_id)


def run_task_as_new_user(stack: Stack, request: task_pb2.CreateTaskRequest, timeout: float = 60) -> task_pb2.Task:
    """Registers a user, creates the task and follows WatchTask to its last state. A CreateTask
    answered UNAVAILABLE ("try again shortly": the store has just restarted) is tried again,
    as a client would."""
    with grpc.insecure_channel(stack.address("auth_svc")) as auth_channel:
        login = register_and_login(auth_pb2_grpc.AuthServiceStub(auth_channel))
    metadata = bearer(login.access_token)
    with grpc.insecure_channel(stack.address("api_svc")) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        created: list[task_pb2.Task] = []

        def create() -> bool:
            try:
                created.append(tasks.CreateTask(request, metadata=metadata))
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                return False
            return True

        wait_until(create, "CreateTask stayed UNAVAILABLE", timeout=30)
        final = None
        watch = task_pb2.WatchTaskRequest(task_id=created[0].id)
        for update in tasks.WatchTask(watch, metadata=metadata, timeout=timeout):
            final = update.task
    assert final is not None
    return final


def dead_letters(stack: Stack, task_id: str, timeout: float = 15) -> list[dict[str, Any]]:
    """The records of `image-tasks-dlq` about `task_id` (or, for a message that named no task,
    with that key), read from the beginning until one arrives or `timeout` passes."""
    consumer = Consumer(
        {
            "bootstrap.servers": stack.infra.kafka_bootstrap,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([DEAD_LETTER_TOPIC])
    found: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and not found:
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                record = json.loads(message.value() or b"{}")
                key = (record.get("source") or {}).get("key")
                if task_id in (record["task_id"], key):
                    found.append(record)
    finally:
        consumer.close()
    return found


def blob_store_of(stack: Stack) -> BlobStore:
    """The blob store the stack's services use, opened from the test the way they open it."""
    environment = {"PIXELFLOW_BLOB_BACKEND": stack.blob_backend, **stack.blob_environment()}
    fields = {name.removeprefix("PIXELFLOW_").lower(): value for name, value in environment.items()}
    return open_blob_store(ApiSettings.model_validate(fields))


def result_bytes(
    tasks: task_pb2_grpc.TaskServiceStub, task_id: str, metadata: tuple[tuple[str, str], ...]
) -> tuple[str, bytes]:
    """GetTaskResult's stream put together: (content type, bytes)."""
    chunks = list(tasks.GetTaskResult(task_pb2.GetTaskResultRequest(task_id=task_id), metadata=metadata))
    return chunks[0].content_type, b"".join(chunk.data for chunk in chunks)


def signing_key_path(stack: Stack) -> Path:
    return stack.root / "services" / "auth" / "jwt-ed25519.pem"


def result_blobs(stack: Stack, task_id: str) -> list[str]:
    """The result blobs of the task in the stack's (filesystem) blob store, one per attempt that stored one."""
    return sorted(path.name for path in (stack.blob_dir / task_prefix(task_id)).glob("result-*"))


def sweep_orphans(stack: Stack, grace: timedelta) -> SweepReport:
    """api_svc's orphan sweep, run now against the stack's store and blobs."""

    async def run() -> SweepReport:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(stack.infra.mongo_uri, tz_aware=True)
        try:
            return await sweep(TaskRepository(mongo["pixelflow"]), blob_store_of(stack), grace)
        finally:
            await mongo.close()

    return asyncio.run(run())


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1 for the tests of a module."""
    with Receiver().serving() as running:
        yield running
