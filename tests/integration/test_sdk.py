"""The Python SDK against the real stack: both clients, token refresh, retries while a service
restarts, streamed uploads and downloads, and the errors a caller can act on."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest
from PIL import Image
from pixelflow.v1 import task_pb2

from infra.stack import Stack
from pixelflow_client import AsyncClient, Client, CredentialStore, NotLoggedIn, PixelFlowError, is_terminal
from pixelflow_client.operations import parse
from tests.conftest import TEST_PASSWORD, unique_email
from tests.images import image_bytes

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> CredentialStore:
    return CredentialStore(tmp_path / "config")


@pytest.fixture
def client(stack: Stack, store: CredentialStore) -> Iterator[Client]:
    """A blocking client signed in as a new user, its session saved in `store`."""
    with Client(stack.gateway_address, store=store) as signed_in:
        email = unique_email("sdk")
        signed_in.register(email, TEST_PASSWORD)
        signed_in.login(email, TEST_PASSWORD)
        yield signed_in


def test_the_blocking_client_uploads_processes_and_downloads(client: Client, tmp_path: Path) -> None:
    upload = client.upload(image_bytes(300, 200), filename="wide.png")
    assert upload.size_bytes > 0 and upload.content_type == "image/png"
    task = client.create_task(upload_id=upload.id, operations=[parse("resize=150")])
    assert task.idempotency_key  # given one, so a retried CreateTask cannot queue a second task
    statuses = [watched.status for watched in client.watch_task(task.id)]
    assert statuses[-1] == task_pb2.TASK_STATUS_COMPLETED and all(not is_terminal_status(s) for s in statuses[:-1])
    done = client.wait_for(task.id)  # a finished task's watch answers at once
    assert (done.result.width, done.result.height) == (150, 100)

    target = tmp_path / "result" / "wide.png"
    assert client.download(task.id, target) == "image/png"
    with Image.open(target) as result:
        assert result.size == (150, 100)
    assert client.result_bytes(task.id) == target.read_bytes()
    assert [listed.id for listed in client.list_tasks()] == [task.id]

    client.delete_task(task.id)
    with pytest.raises(PixelFlowError) as gone:
        client.get_task(task.id)
    assert gone.value.code == grpc.StatusCode.NOT_FOUND


def is_terminal_status(status: int) -> bool:
    return is_terminal(task_pb2.Task(status=status))  # type: ignore[arg-type]


def test_a_path_is_streamed_and_a_failed_download_leaves_no_file(client: Client, tmp_path: Path) -> None:
    source = tmp_path / "big.png"
    source.write_bytes(image_bytes(1500, 1000))  # several upload messages
    upload = client.upload(source)
    assert upload.filename == "big.png" and upload.size_bytes == source.stat().st_size
    task = client.create_task(upload_id=upload.id, operations=[parse("crop=10x10+5000+5000")])
    failed = client.wait_for(task.id)
    assert failed.status == task_pb2.TASK_STATUS_FAILED and failed.error.code == "INVALID_OPERATION"
    target = tmp_path / "out" / "never.png"
    with pytest.raises(PixelFlowError) as refused:
        client.download(task.id, target)
    assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert not target.exists() and list(target.parent.iterdir()) == []  # no partial file either


def test_a_refused_request_names_its_fields(client: Client) -> None:
    with pytest.raises(PixelFlowError) as refused:
        client.create_task(source_url="https://example.com/a.jpg", operations=[parse("resize=0x0")])
    error = refused.value
    assert error.code == grpc.StatusCode.INVALID_ARGUMENT
    assert [(v.field, v.rule) for v in error.violations] == [("operations[0].resize", "resize.size_required")]


async def test_the_async_client_runs_tasks_side_by_side(stack: Stack, store: CredentialStore) -> None:
    async with AsyncClient(stack.gateway_address, store=store) as client:
        email = unique_email("sdk")
        await client.register(email, TEST_PASSWORD)
        await client.login(email, TEST_PASSWORD)
        assert (await client.whoami()).email == email

        async def one(width: int) -> task_pb2.Task:
            upload = await client.upload(image_bytes(width, 50))
            task = await client.create_task(upload_id=upload.id, operations=[parse("grayscale")])
            return await client.wait_for(task.id)

        done = await asyncio.gather(*(one(width) for width in (40, 50, 60, 70, 80)))
        assert [task.result.width for task in done] == [40, 50, 60, 70, 80]
        assert {task.status for task in done} == {task_pb2.TASK_STATUS_COMPLETED}
        listed = [task.id async for task in client.list_tasks(page_size=2)]  # three pages
        assert sorted(listed) == sorted(task.id for task in done)


def test_a_refused_access_token_is_refreshed_once(client: Client, store: CredentialStore) -> None:
    saved = store.load()
    assert saved is not None
    # Unexpired by its clock, refused by the server (as after a key rotation): refresh and retry.
    store.path.write_text(json.dumps({**json.loads(store.path.read_text()), "access_token": "not-a-token"}))
    with Client.from_saved(client.server, store=store) as again:
        assert again.whoami().email == saved.email
    after = store.load()
    assert after is not None and after.access_token not in ("not-a-token", saved.access_token)


def test_clients_sharing_a_session_refresh_it_once(client: Client, store: CredentialStore) -> None:
    store.path.write_text(json.dumps({**json.loads(store.path.read_text()), "access_expires_at": 0}))
    clients = [Client.from_saved(client.server, store=store) for _ in range(3)]
    try:
        with ThreadPoolExecutor(len(clients)) as pool:
            users = list(pool.map(lambda each: each.whoami(), clients))
        assert len({user.id for user in users}) == 1
        # One refresh under the lock; the others read the token it saved.
        tokens = {each._client._tokens.session.access_token for each in clients}  # type: ignore[union-attr]
        assert len(tokens) == 1 and tokens == {store.load().access_token}  # type: ignore[union-attr]
    finally:
        for each in clients:
            each.close()


def test_without_a_session_the_client_says_to_log_in(stack: Stack, tmp_path: Path) -> None:
    with (
        Client.from_saved(stack.gateway_address, store=CredentialStore(tmp_path / "empty")) as client,
        pytest.raises(NotLoggedIn, match="pixelflow login"),
    ):
        client.list_workers()
    with Client(stack.gateway_address, access_token="forged") as forged:
        with pytest.raises(PixelFlowError) as refused:
            forged.whoami()
        assert refused.value.code == grpc.StatusCode.UNAUTHENTICATED


class _Retries(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.seen = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "UNAVAILABLE" in record.getMessage():
            self.seen.set()


def test_a_call_waits_out_a_restarting_service(stack: Stack, client: Client) -> None:
    task = client.create_task(source_url="https://example.com/a.jpg")
    retries = _Retries()
    logger = logging.getLogger("pixelflow_client.retrying")
    logger.addHandler(retries)
    logger.setLevel(logging.INFO)
    stack.services["api_svc"].stop()
    try:
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(client.get_task, task.id)
            # The gateway answers UNAVAILABLE while api_svc is down: the SDK backs off and retries.
            assert retries.seen.wait(30), "the SDK never retried an UNAVAILABLE call"
            assert not pending.done()
            started = time.monotonic()
            stack.restart_service("api_svc")
            assert pending.result(timeout=60).id == task.id
            assert time.monotonic() - started < 60
    finally:
        logger.removeHandler(retries)
        if not stack.services["api_svc"].running:
            stack.restart_service("api_svc")
