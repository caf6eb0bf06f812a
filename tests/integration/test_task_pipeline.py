"""The task pipeline end to end on the real stack: CreateUpload / CreateTask → Kafka → worker →
blob store + MongoDB → WatchTask / GetTaskResult, through the generated stubs, directly and
through Envoy. Every test runs twice: with the filesystem blob backend and with S3 (SeaweedFS)."""

from __future__ import annotations

import asyncio
import hashlib
import io
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest
from google.api import httpbody_pb2
from PIL import Image
from pixelflow.v1 import auth_pb2, auth_pb2_grpc, task_pb2, task_pb2_grpc, worker_pb2, worker_pb2_grpc
from pymongo import AsyncMongoClient

from api_svc.repository import TaskRepository
from api_svc.service import idempotency_fingerprint
from common.blobstore.keys import inline_source_key, result_key, upload_key
from infra.stack import Stack
from tasks.model import message_to_document
from tests.conftest import (
    TEST_ENVIRONMENT,
    bearer,
    blob_store_of,
    register_and_login,
    result_bytes,
    running_stack,
    wait_for_worker_verdict,
    wait_until,
)
from tests.images import ImageServer, bomb_png, encoded, image_bytes

pytestmark = pytest.mark.integration

TERMINAL = {task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_FAILED, task_pb2.TASK_STATUS_CANCELLED}


@pytest.fixture(scope="module", params=["filesystem", "s3"])
def pipeline(request: pytest.FixtureRequest, stack: Stack) -> Iterator[Stack]:
    """The session's stack (filesystem blobs), then a stack of its own on S3 (SeaweedFS)."""
    if request.param == "filesystem":
        yield stack
        return
    with running_stack("pipeline-s3", {**TEST_ENVIRONMENT, "PIXELFLOW_BLOB_BACKEND": "s3"}) as on_s3:
        yield on_s3


@pytest.fixture(scope="module")
def auth(pipeline: Stack) -> Iterator[auth_pb2_grpc.AuthServiceStub]:
    with grpc.insecure_channel(pipeline.address("auth_svc")) as channel:
        yield auth_pb2_grpc.AuthServiceStub(channel)


@pytest.fixture(scope="module")
def images() -> Iterator[ImageServer]:
    server = ImageServer()
    server.serve_bytes("/photo.png", image_bytes(640, 480, "PNG"), "image/png")
    server.serve_bytes("/slow.jpg", image_bytes(320, 240, "JPEG"), "image/jpeg", delay=1.0)
    server.serve_bytes("/truncated.jpg", image_bytes(320, 240, "JPEG")[:400], "image/jpeg")
    server.serve_bytes("/text.png", b"this is not an image at all", "image/png")
    server.serve_bytes("/bomb.png", bomb_png(), "image/png")
    server.redirect("/to-private", "http://10.0.0.1/secret.png")
    server.redirect("/to-loopback", "http://127.0.0.2/secret.png")
    with server.running():
        yield server


class Client:
    """One logged-in user's view of TaskService."""

    def __init__(self, channel: grpc.Channel, auth: auth_pb2_grpc.AuthServiceStub) -> None:
        self.login = register_and_login(auth)
        self.metadata = bearer(self.login.access_token)
        self.tasks = task_pb2_grpc.TaskServiceStub(channel)

    def create(self, **fields: Any) -> task_pb2.Task:
        task: task_pb2.Task = self.tasks.CreateTask(task_pb2.CreateTaskRequest(**fields), metadata=self.metadata)
        return task

    def watch(self, task_id: str, timeout: float = 30) -> list[task_pb2.Task]:
        seen = []
        for update in self.tasks.WatchTask(
            task_pb2.WatchTaskRequest(task_id=task_id), metadata=self.metadata, timeout=timeout
        ):
            seen.append(update.task)
        return seen

    def finished(self, task_id: str) -> task_pb2.Task:
        return self.watch(task_id)[-1]


@pytest.fixture(scope="module")
def client(pipeline: Stack, auth: auth_pb2_grpc.AuthServiceStub) -> Iterator[Client]:
    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        yield Client(channel, auth)


def resize(
    width: int, height: int = 0, fit: task_pb2.ResizeFit.ValueType = task_pb2.RESIZE_FIT_INSIDE
) -> task_pb2.Operation:
    return task_pb2.Operation(resize=task_pb2.Resize(width=width, height=height, fit=fit))


def code_of(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.RpcError) as caught:
        call()
    error: Any = caught.value
    return error.code(), error.details()


def test_url_task_streams_its_states_and_yields_the_requested_image(client: Client, images: ImageServer) -> None:
    created = client.create(
        source_url=images.url("/slow.jpg"),
        operations=[resize(160), task_pb2.Operation(grayscale=task_pb2.Grayscale())],
        output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_PNG),
    )
    assert created.status == task_pb2.TASK_STATUS_PENDING and len(created.id) == 32
    states = [task.status for task in client.watch(created.id)]
    assert states[-1] == task_pb2.TASK_STATUS_COMPLETED
    assert task_pb2.TASK_STATUS_PROCESSING in states
    assert states.index(task_pb2.TASK_STATUS_PROCESSING) < states.index(task_pb2.TASK_STATUS_COMPLETED)

    done = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=created.id), metadata=client.metadata)
    assert (done.result.width, done.result.height, done.result.format) == (160, 120, task_pb2.IMAGE_FORMAT_PNG)
    assert done.processed_url.endswith(f"/v1/tasks/{created.id}/result")
    assert done.attempts == 1 and done.worker_id and done.result.timings.total_ms > 0

    content_type, data = result_bytes(client.tasks, created.id, client.metadata)
    assert content_type == "image/png"
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size, image.mode) == ("PNG", (160, 120), "L")


def test_upload_task_through_the_gateway(pipeline: Stack, client: Client) -> None:
    with grpc.insecure_channel(pipeline.gateway_address) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        created = tasks.CreateTask(
            task_pb2.CreateTaskRequest(
                upload=task_pb2.InlineUpload(content=image_bytes(400, 300, "JPEG"), filename="holiday.jpg"),
                operations=[resize(100, 100, task_pb2.RESIZE_FIT_COVER)],
                output=task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_WEBP, quality=80),
            ),
            metadata=client.metadata,
        )
        assert created.upload.filename == "holiday.jpg" and created.upload.content_type == "image/jpeg"
        final = [
            u.task
            for u in tasks.WatchTask(
                task_pb2.WatchTaskRequest(task_id=created.id), metadata=client.metadata, timeout=30
            )
        ][-1]
        assert final.status == task_pb2.TASK_STATUS_COMPLETED, final.error
        _, data = result_bytes(tasks, created.id, client.metadata)
    image = Image.open(io.BytesIO(data))
    assert (image.format, image.size) == ("WEBP", (100, 100))


def test_tasks_are_listed_newest_first_and_private_to_their_owner(
    pipeline: Stack, client: Client, auth: auth_pb2_grpc.AuthServiceStub, images: ImageServer
) -> None:
    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        owner = Client(channel, auth)
        ids = [owner.create(source_url=images.url("/photo.png"), operations=[resize(32)]).id for _ in range(3)]
        first = owner.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=2), metadata=owner.metadata)
        assert [t.id for t in first.tasks] == ids[::-1][:2] and first.next_page_token
        rest = owner.tasks.ListTasks(
            task_pb2.ListTasksRequest(page_size=2, page_token=first.next_page_token), metadata=owner.metadata
        )
        assert [t.id for t in rest.tasks] == [ids[0]] and not rest.next_page_token
        owner.finished(ids[0])
        completed = owner.tasks.ListTasks(
            task_pb2.ListTasksRequest(status=task_pb2.TASK_STATUS_COMPLETED), metadata=owner.metadata
        )
        assert ids[0] in [t.id for t in completed.tasks]

        # Another user: every call about these tasks is NOT_FOUND, and their list is empty of them.
        stranger = client
        for call in (
            lambda: stranger.tasks.GetTask(task_pb2.GetTaskRequest(task_id=ids[0]), metadata=stranger.metadata),
            lambda: stranger.watch(ids[0]),
            lambda: result_bytes(stranger.tasks, ids[0], stranger.metadata),
            lambda: stranger.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=ids[1]), metadata=stranger.metadata),
            lambda: stranger.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=ids[1]), metadata=stranger.metadata),
        ):
            assert code_of(call)[0] == grpc.StatusCode.NOT_FOUND
        theirs = stranger.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=100), metadata=stranger.metadata)
        assert not set(ids) & {t.id for t in theirs.tasks}


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({}, "source"),
        ({"source_url": "ftp://example.com/a.png"}, "source_url"),
        ({"source_url": "http://user:secret@example.com/a.png"}, "source_url"),
        ({"source_url": "http://example.com/" + "a" * 3000}, "source_url"),
        ({"upload": task_pb2.InlineUpload(content=b"")}, "upload.content"),
        ({"upload": task_pb2.InlineUpload(content=b"definitely not an image")}, "upload.content"),
        ({"upload": task_pb2.InlineUpload(content=b'<svg xmlns="http://www.w3.org/2000/svg"/>')}, "upload.content"),
        ({"source_url": "https://example.com/a.png", "operations": [resize(100_000, 100_000)]}, "operations[0]"),
        (
            {
                "source_url": "https://example.com/a.png",
                "operations": [task_pb2.Operation(blur=task_pb2.Blur(sigma=10_000))],
            },
            "operations[0]",
        ),
        ({"source_url": "https://example.com/a.png", "operations": [task_pb2.Operation()]}, "operations[0]"),
        ({"source_url": "https://example.com/a.png", "output": task_pb2.OutputOptions(quality=101)}, "output"),
        ({"source_url": "https://example.com/a.png", "operations": [resize(10)] * 21}, "operations"),
    ],
)
def test_bad_requests_are_refused_before_anything_is_stored(client: Client, fields: dict[str, Any], field: str) -> None:
    before = client.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=100), metadata=client.metadata)
    with pytest.raises(grpc.RpcError) as caught:
        client.create(**fields)
    error: Any = caught.value
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error.details()
    after = client.tasks.ListTasks(task_pb2.ListTasksRequest(page_size=100), metadata=client.metadata)
    assert len(after.tasks) == len(before.tasks)


def test_oversized_upload_is_refused(client: Client) -> None:
    big = image_bytes(8, 8, "PNG") + b"\x00" * (25 * 1024 * 1024)
    code, message = code_of(lambda: client.create(upload=task_pb2.InlineUpload(content=big)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "limit" in message


def test_calls_without_a_valid_token_are_unauthenticated(pipeline: Stack) -> None:
    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        tasks = task_pb2_grpc.TaskServiceStub(channel)
        for metadata in ((), bearer("garbage"), (("authorization", "Basic dXNlcjpwYXNz"),)):
            code, _ = code_of(lambda m=metadata: tasks.ListTasks(task_pb2.ListTasksRequest(), metadata=m))
            assert code == grpc.StatusCode.UNAUTHENTICATED


def test_logout_stops_task_calls_within_seconds(pipeline: Stack, auth: auth_pb2_grpc.AuthServiceStub) -> None:
    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        user = Client(channel, auth)
        user.tasks.ListTasks(task_pb2.ListTasksRequest(), metadata=user.metadata)
        auth.Logout(auth_pb2.LogoutRequest(refresh_token=user.login.refresh_token))

        def refused() -> bool:
            try:
                user.tasks.ListTasks(task_pb2.ListTasksRequest(), metadata=user.metadata)
            except grpc.RpcError as error:
                assert error.code() == grpc.StatusCode.UNAUTHENTICATED
                return True
            return False

        wait_until(refused, "a revoked session still works after 10 s", timeout=10)


@pytest.mark.parametrize(
    ("path_or_url", "code"),
    [
        ("http://127.0.0.2:9/x.png", "SOURCE_BLOCKED"),
        ("http://169.254.169.254/latest/meta-data/", "SOURCE_BLOCKED"),
        ("http://10.0.0.1/x.png", "SOURCE_BLOCKED"),
        ("http://[::ffff:127.0.0.1]:9/x.png", "SOURCE_BLOCKED"),
        ("/to-private", "SOURCE_BLOCKED"),
        ("/to-loopback", "SOURCE_BLOCKED"),
        ("/missing.png", "SOURCE_NOT_FOUND"),
        ("/truncated.jpg", "CORRUPT_IMAGE"),
        ("/text.png", "UNSUPPORTED_IMAGE"),
        ("/bomb.png", "IMAGE_TOO_LARGE"),
    ],
)
def test_bad_sources_fail_with_a_stable_code(client: Client, images: ImageServer, path_or_url: str, code: str) -> None:
    url = images.url(path_or_url) if path_or_url.startswith("/") else path_or_url
    final = client.finished(client.create(source_url=url, operations=[resize(50)]).id)
    assert final.status == task_pb2.TASK_STATUS_FAILED
    assert final.error.code == code, final.error
    assert task_pb2.FailureCode.Name(final.error.failure) == f"FAILURE_CODE_{code}"  # the same, to switch on
    assert final.error.message and not final.error.retryable
    # The worker goes on serving: a good task right after completes.
    good = client.finished(client.create(source_url=images.url("/photo.png"), operations=[resize(20)]).id)
    assert good.status == task_pb2.TASK_STATUS_COMPLETED


def test_cancel_and_delete(client: Client, images: ImageServer, pipeline: Stack) -> None:
    task = client.create(source_url=images.url("/slow.jpg"))
    cancelled = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task.id), metadata=client.metadata)
    assert cancelled.status == task_pb2.TASK_STATUS_CANCELLED
    # The worker must not complete it: wait until it is done with the task, whatever it decided.
    assert "task completed" not in wait_for_worker_verdict(pipeline, task.id)
    current = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.id), metadata=client.metadata)
    assert current.status == task_pb2.TASK_STATUS_CANCELLED
    code, _ = code_of(
        lambda: client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task.id), metadata=client.metadata)
    )
    assert code == grpc.StatusCode.FAILED_PRECONDITION
    code, _ = code_of(lambda: result_bytes(client.tasks, task.id, client.metadata))
    assert code == grpc.StatusCode.FAILED_PRECONDITION

    client.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=task.id), metadata=client.metadata)
    code, _ = code_of(lambda: client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task.id), metadata=client.metadata))
    assert code == grpc.StatusCode.NOT_FOUND
    code, _ = code_of(
        lambda: client.tasks.GetTask(task_pb2.GetTaskRequest(task_id="not-an-id"), metadata=client.metadata)
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_idempotency_key(client: Client, images: ImageServer) -> None:
    fields: dict[str, Any] = {
        "source_url": images.url("/photo.png"),
        "operations": [resize(40)],
        "idempotency_key": "order-17",
    }
    first = client.create(**fields)
    again = client.create(**fields)
    assert again.id == first.id
    code, message = code_of(lambda: client.create(**{**fields, "operations": [resize(41)]}))
    assert code == grpc.StatusCode.ALREADY_EXISTS and "idempotency_key" in message


def test_a_create_cut_short_between_the_key_and_the_task_is_completed_by_its_retry(
    pipeline: Stack, client: Client, images: ImageServer
) -> None:
    """The state api_svc leaves when it dies after claiming the idempotency key and before
    storing the task: the key points at a task id that does not exist. The retry creates the
    task under that id — one task, never two."""
    request = task_pb2.CreateTaskRequest(
        source_url=images.url("/photo.png"), operations=[resize(42)], idempotency_key="order-cut-short"
    )
    owner_id = client.create(source_url=images.url("/photo.png"), operations=[resize(43)]).owner_id
    reserved = uuid.uuid4().hex
    fingerprint = idempotency_fingerprint(
        request, None, [message_to_document(op) for op in request.operations], message_to_document(request.output)
    )

    async def claim_the_key_and_die() -> None:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(pipeline.infra.mongo_uri, tz_aware=True)
        try:
            repository = TaskRepository(mongo["pixelflow"])
            assert (
                await repository.claim_idempotency_key(owner_id, request.idempotency_key, reserved, fingerprint) is None
            )
        finally:
            await mongo.close()

    asyncio.run(claim_the_key_and_die())
    first = client.tasks.CreateTask(request, metadata=client.metadata)
    again = client.tasks.CreateTask(request, metadata=client.metadata)
    assert first.id == again.id == reserved
    assert client.finished(first.id).status == task_pb2.TASK_STATUS_COMPLETED


def test_worker_status(pipeline: Stack, client: Client, images: ImageServer) -> None:
    client.finished(client.create(source_url=images.url("/photo.png"), operations=[resize(30)]).id)
    with grpc.insecure_channel(pipeline.address("worker_svc")) as channel:
        status = worker_pb2_grpc.WorkerStatusServiceStub(channel)
        request = worker_pb2.ListWorkersRequest()
        wait_until(lambda: bool(status.ListWorkers(request, metadata=client.metadata).workers), "no heartbeat", 15)
        worker = status.ListWorkers(request, metadata=client.metadata).workers[0]
        assert worker.capacity >= 1 and worker.pid > 0 and worker.version
        stats = status.GetQueueStats(worker_pb2.GetQueueStatsRequest(), metadata=client.metadata)
        assert stats.live_workers >= 1 and stats.completed_last_minute >= 1
        # Host names and pids are for signed-in users only.
        assert code_of(lambda: status.ListWorkers(request))[0] == grpc.StatusCode.UNAUTHENTICATED
        assert (
            code_of(lambda: status.GetQueueStats(worker_pb2.GetQueueStatsRequest()))[0]
            == grpc.StatusCode.UNAUTHENTICATED
        )


def test_cancels_racing_the_worker_stay_cancelled(client: Client, images: ImageServer, pipeline: Stack) -> None:
    """Cancel right after create, while a worker is claiming: whatever the interleaving, a
    cancelled task stays CANCELLED and never gets a result."""
    cancelled = []
    for _ in range(12):
        task = client.create(source_url=images.url("/slow.jpg"))
        try:
            reply = client.tasks.CancelTask(task_pb2.CancelTaskRequest(task_id=task.id), metadata=client.metadata)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION  # it finished first
            continue
        assert reply.status == task_pb2.TASK_STATUS_CANCELLED
        cancelled.append(task.id)
    for task_id in cancelled:
        # every one delivered and decided on by the worker before it is looked at
        assert "task completed" not in wait_for_worker_verdict(pipeline, task_id, timeout=60)
        current = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=task_id), metadata=client.metadata)
        assert current.status == task_pb2.TASK_STATUS_CANCELLED, current
        assert not current.HasField("result")


def _first(stream: Any) -> Any:
    for item in stream:
        return item
    raise AssertionError("the stream ended without a message")


def _close(stream: Any) -> None:
    stream.cancel()


def _reopened(user: Client, task_id: str) -> bool:
    """Whether a new watch of `task_id` opens (and sends the task); False while over the bound."""
    stream = user.tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task_id), metadata=user.metadata, timeout=30)
    try:
        first = _first(stream)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.RESOURCE_EXHAUSTED, error
        return False
    _close(stream)
    assert first.task.id == task_id
    return True


def test_watches_per_user_are_bounded(
    pipeline: Stack, auth: auth_pb2_grpc.AuthServiceStub, images: ImageServer
) -> None:
    """Each open WatchTask holds a stream and a queue: a user gets 32 at once (the default), the
    33rd is RESOURCE_EXHAUSTED, and closing one frees its place."""
    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        user = Client(channel, auth)
        slow = user.create(source_url=images.url("/slow.jpg"))
        watches = [
            user.tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=slow.id), metadata=user.metadata, timeout=30)
            for _ in range(32)
        ]
        try:
            for watch in watches:
                _first(watch)  # each is open and has sent the current state
            extra = user.tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=slow.id), metadata=user.metadata, timeout=30)
            code, message = code_of(lambda: _first(extra))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "at most 32" in message
            _close(watches.pop())
            # once the server has noticed the cancelled stream, a new watch takes its place
            wait_until(lambda: _reopened(user, slow.id), "a closed watch never freed its place", timeout=10)
        finally:
            for watch in watches:
                _close(watch)


def _upload_messages(data: bytes, filename: str, chunk: int = 64 * 1024) -> Iterator[task_pb2.CreateUploadRequest]:
    for start in range(0, max(len(data), 1), chunk):
        yield task_pb2.CreateUploadRequest(
            filename=filename if start == 0 else "", body=httpbody_pb2.HttpBody(data=data[start : start + chunk])
        )


def test_one_streamed_upload_feeds_several_tasks(pipeline: Stack, client: Client, auth: Any) -> None:
    photo = image_bytes(500, 400, "PNG")
    upload = client.tasks.CreateUpload(_upload_messages(photo, "beach.png"), metadata=client.metadata)
    assert len(upload.id) == 32 and upload.filename == "beach.png" and upload.content_type == "image/png"
    assert upload.size_bytes == len(photo) and upload.sha256 == hashlib.sha256(photo).hexdigest()

    widths = (50, 120)
    created = [client.create(upload_id=upload.id, operations=[resize(width)]) for width in widths]
    assert all(task.upload.upload_id == upload.id and task.upload.sha256 == upload.sha256 for task in created)
    for task, width in zip(created, widths, strict=True):
        assert client.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED
        _, data = result_bytes(client.tasks, task.id, client.metadata)
        assert Image.open(io.BytesIO(data)).size[0] == width

    # Deleting a task deletes its result, never the upload that other tasks share.
    blobs = blob_store_of(pipeline)
    done = client.tasks.GetTask(task_pb2.GetTaskRequest(task_id=created[0].id), metadata=client.metadata)
    assert asyncio.run(blobs.exists(result_key(done.id, done.attempts)))
    client.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=done.id), metadata=client.metadata)
    assert not asyncio.run(blobs.exists(result_key(done.id, done.attempts)))
    assert asyncio.run(blobs.exists(upload_key(upload.id)))
    again = client.create(upload_id=upload.id, operations=[resize(10)])
    assert client.finished(again.id).status == task_pb2.TASK_STATUS_COMPLETED

    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        stranger = Client(channel, auth)
        assert code_of(lambda: stranger.create(upload_id=upload.id))[0] == grpc.StatusCode.NOT_FOUND


def test_an_inline_upload_is_deleted_with_its_task(pipeline: Stack, client: Client) -> None:
    task = client.create(upload=task_pb2.InlineUpload(content=image_bytes(64, 64, "PNG")), operations=[resize(8)])
    client.finished(task.id)
    blobs = blob_store_of(pipeline)
    assert asyncio.run(blobs.exists(inline_source_key(task.id)))
    client.tasks.DeleteTask(task_pb2.DeleteTaskRequest(task_id=task.id), metadata=client.metadata)
    assert not asyncio.run(blobs.exists(inline_source_key(task.id)))
    assert not asyncio.run(blobs.exists(result_key(task.id, 1)))


@pytest.mark.parametrize(
    ("data", "message"),
    [(b"", "empty"), (b"%PDF-1.7 not an image" * 100, "not an image"), (b"\x89PNG", "not an image")],
)
def test_bad_streamed_uploads_are_refused_and_store_nothing(
    pipeline: Stack, client: Client, data: bytes, message: str
) -> None:
    before = _upload_blobs(pipeline)
    code, details = code_of(lambda: client.tasks.CreateUpload(_upload_messages(data, "x"), metadata=client.metadata))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and message in details
    assert _upload_blobs(pipeline) == before


def test_bad_upload_ids(client: Client) -> None:
    assert code_of(lambda: client.create(upload_id="nope"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert code_of(lambda: client.create(upload_id="0" * 32))[0] == grpc.StatusCode.NOT_FOUND


def _upload_blobs(stack: Stack) -> set[str]:
    async def keys() -> set[str]:
        return {stored.key async for stored in blob_store_of(stack).list("uploads/")}

    return asyncio.run(keys())


def test_a_watermark_from_an_upload_is_laid_over_the_result(
    pipeline: Stack, client: Client, auth: auth_pb2_grpc.AuthServiceStub
) -> None:
    logo = encoded(Image.new("RGBA", (20, 10), (0, 0, 255, 255)))
    upload = client.tasks.CreateUpload(_upload_messages(logo, "logo.png"), metadata=client.metadata)
    source = task_pb2.InlineUpload(content=encoded(Image.new("RGB", (200, 100), (255, 255, 255))), filename="white.png")
    mark = task_pb2.Watermark(upload_id=upload.id, margin=5, opacity=0.5)
    png = task_pb2.OutputOptions(format=task_pb2.IMAGE_FORMAT_PNG)
    for _ in range(2):  # the second one finds the watermark in the worker's cache
        task = client.create(upload=source, operations=[task_pb2.Operation(watermark=mark)], output=png)
        assert client.finished(task.id).status == task_pb2.TASK_STATUS_COMPLETED
        _, data = result_bytes(client.tasks, task.id, client.metadata)
        with Image.open(io.BytesIO(data)) as result:
            corner = result.convert("RGB").getpixel((200 - 5 - 10, 100 - 5 - 5))  # inside the logo
            elsewhere = result.convert("RGB").getpixel((20, 20))
        assert isinstance(corner, tuple)
        assert all(abs(got - want) <= 2 for got, want in zip(corner, (128, 128, 255), strict=True)), corner
        assert elsewhere == (255, 255, 255)

    # Another user's upload is not there for them; a malformed id is refused as such.
    with grpc.insecure_channel(pipeline.address("api_svc")) as channel:
        stranger = Client(channel, auth)
        code, details = code_of(lambda: stranger.create(upload=source, operations=[task_pb2.Operation(watermark=mark)]))
        assert code == grpc.StatusCode.NOT_FOUND and upload.id in details
        bad = task_pb2.Watermark(upload_id="../../etc/passwd")
        code, details = code_of(lambda: stranger.create(upload=source, operations=[task_pb2.Operation(watermark=bad)]))
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "upload_id" in details
