"""The asynchronous client: every PixelFlow call over the generated stubs, typed, with access
tokens attached and refreshed, UNAVAILABLE waited out (uploads and downloads start over, a watch
re-opens: WatchTask answers the current state first), and streams both ways."""

from __future__ import annotations

import contextlib
import mimetypes
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, TypeVar

import grpc
from google.api import httpbody_pb2
from pixelflow.v1 import (
    admin_pb2,
    admin_pb2_grpc,
    auth_pb2,
    auth_pb2_grpc,
    quota_pb2,
    quota_pb2_grpc,
    task_pb2,
    task_pb2_grpc,
    webhook_pb2,
    webhook_pb2_grpc,
    worker_pb2,
    worker_pb2_grpc,
)

from pixelflow_client.credentials import CredentialStore
from pixelflow_client.errors import PixelFlowError
from pixelflow_client.retrying import retrying
from pixelflow_client.tokens import Tokens

DEFAULT_SERVER = "127.0.0.1:8080"  # the gateway of `make run`
CHUNK_BYTES = 256 * 1024  # what one upload message carries; the service's own chunk size
TERMINAL = frozenset({task_pb2.TASK_STATUS_COMPLETED, task_pb2.TASK_STATUS_FAILED, task_pb2.TASK_STATUS_CANCELLED})

Source = Path | bytes | BinaryIO
Response = TypeVar("Response")
Metadata = tuple[tuple[str, str], ...]


def default_server(saved: str | None = None) -> str:
    """`PIXELFLOW_SERVER`, else the server a saved session names, else the local stack's gateway."""
    return os.environ.get("PIXELFLOW_SERVER") or saved or DEFAULT_SERVER


def open_channel(server: str) -> grpc.aio.Channel:
    """`host:port` or `http://host:port` in plaintext; `https://host[:port]` over TLS with the
    system's roots."""
    if server.startswith("https://"):
        target = server.removeprefix("https://").rstrip("/")
        return grpc.aio.secure_channel(target if ":" in target else f"{target}:443", grpc.ssl_channel_credentials())
    return grpc.aio.insecure_channel(server.removeprefix("http://").rstrip("/"))


def is_terminal(task: task_pb2.Task) -> bool:
    return task.status in TERMINAL


class AsyncClient:
    """`AsyncClient.from_saved()` for the session `pixelflow login` saved (refreshed and written
    back as needed); `AsyncClient(server, access_token=...)` for a token of your own. Use it as
    an async context manager, or call `close()`."""

    def __init__(
        self,
        server: str | None = None,
        *,
        access_token: str | None = None,
        store: CredentialStore | None = None,
        timeout: float = 30.0,
        transfer_timeout: float = 600.0,
        retry_seconds: float = 30.0,
    ) -> None:
        """`timeout` bounds each call, `transfer_timeout` each upload or download; UNAVAILABLE is
        retried for `retry_seconds`."""
        saved = store.load() if store is not None else None
        self.server = server or default_server(saved.server if saved else None)
        self._channel = open_channel(self.server)
        self._auth = auth_pb2_grpc.AuthServiceStub(self._channel)
        self._tasks = task_pb2_grpc.TaskServiceStub(self._channel)
        self._admin = admin_pb2_grpc.AdminServiceStub(self._channel)
        self._workers = worker_pb2_grpc.WorkerStatusServiceStub(self._channel)
        self._quota = quota_pb2_grpc.QuotaServiceStub(self._channel)
        self._webhooks = webhook_pb2_grpc.WebhookServiceStub(self._channel)
        # A saved session for another server is not this server's.
        usable = saved if saved is not None and saved.server == self.server else None
        self._tokens = Tokens(self._auth, store=store, session=usable, access_token=access_token, timeout=timeout)
        self._timeout = timeout
        self._transfer_timeout = transfer_timeout
        self._retry_seconds = retry_seconds

    @classmethod
    def from_saved(cls, server: str | None = None, *, store: CredentialStore | None = None) -> Self:
        return cls(server, store=store or CredentialStore())

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close(grace=None)

    @property
    def email(self) -> str | None:
        session = self._tokens.session
        return session.email if session else None

    # --- accounts -------------------------------------------------------------------------

    async def register(self, email: str, password: str, display_name: str = "") -> auth_pb2.User:
        request = auth_pb2.RegisterRequest(email=email, password=password, display_name=display_name)
        return await self._call(self._auth.Register, request, authenticated=False)

    async def login(self, email: str, password: str) -> auth_pb2.User:
        """Signs in; the tokens are kept (and saved, for a client with a store)."""
        request = auth_pb2.LoginRequest(email=email, password=password)
        response: auth_pb2.LoginResponse = await self._call(self._auth.Login, request, authenticated=False)
        self._tokens.adopt(self.server, response.user.email, response)
        return response.user

    async def logout(self) -> None:
        """Ends the session on the server (when there is one) and forgets it here."""
        session = self._tokens.session
        try:
            if session is not None:
                request = auth_pb2.LogoutRequest(refresh_token=session.refresh_token)
                await self._call(self._auth.Logout, request, authenticated=False)
        finally:
            self._tokens.forget()

    async def whoami(self) -> auth_pb2.User:
        return await self._call(self._auth.GetMe, auth_pb2.GetMeRequest())

    # --- tasks ----------------------------------------------------------------------------

    async def upload(self, source: Source, *, filename: str = "", content_type: str = "") -> task_pb2.Upload:
        """Streams an image into the blob store. A path or bytes (or a seekable file) is sent
        again from the start if the connection drops."""
        if isinstance(source, Path):
            filename = filename or source.name
        content_type = content_type or (mimetypes.guess_type(filename)[0] or "application/octet-stream")

        async def attempt() -> task_pb2.Upload:
            metadata = await self._metadata()
            messages = _upload_messages(source, filename, content_type)
            try:
                response: task_pb2.Upload = await self._tasks.CreateUpload(
                    messages, metadata=metadata, timeout=self._transfer_timeout
                )
            except grpc.aio.AioRpcError as error:
                raise PixelFlowError.from_rpc(error) from None
            return response

        one_shot = not isinstance(source, Path | bytes) and not source.seekable()
        return await self._retried(attempt, once=one_shot)

    async def create_task(
        self,
        *,
        source_url: str = "",
        upload_id: str = "",
        operations: Sequence[task_pb2.Operation] = (),
        output: task_pb2.OutputOptions | None = None,
        idempotency_key: str = "",
        skip_auto_orient: bool = False,
        variants: Sequence[task_pb2.Variant] = (),
        callback_url: str = "",
    ) -> task_pb2.Task:
        """Queues a task. Without an idempotency key it gets a fresh one, so a retry after a lost
        answer returns the same task instead of queueing a second."""
        return await self.submit(
            task_request(
                source_url=source_url,
                upload_id=upload_id,
                operations=operations,
                output=output,
                idempotency_key=idempotency_key,
                skip_auto_orient=skip_auto_orient,
                variants=variants,
                callback_url=callback_url,
            )
        )

    async def submit(self, request: task_pb2.CreateTaskRequest) -> task_pb2.Task:
        """CreateTask with a request built by the caller (`task_request`)."""
        if not request.idempotency_key:
            request = _copy(request)
            request.idempotency_key = uuid.uuid4().hex
        return await self._call(self._tasks.CreateTask, request)

    async def get_task(self, task_id: str) -> task_pb2.Task:
        return await self._call(self._tasks.GetTask, task_pb2.GetTaskRequest(task_id=task_id))

    async def list_tasks(
        self, status: task_pb2.TaskStatus.ValueType = task_pb2.TASK_STATUS_UNSPECIFIED, page_size: int = 100
    ) -> AsyncIterator[task_pb2.Task]:
        """The caller's tasks, newest first, page after page."""
        token = ""
        while True:
            request = task_pb2.ListTasksRequest(page_size=page_size, page_token=token, status=status)
            page: task_pb2.ListTasksResponse = await self._call(self._tasks.ListTasks, request)
            for task in page.tasks:
                yield task
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def watch_task(self, task_id: str) -> AsyncIterator[task_pb2.Task]:
        """The task's state now, then each change, ending with its terminal state. A dropped
        stream is re-opened (the state may then repeat)."""
        async for attempt in retrying(self._retry_seconds):
            with attempt:
                metadata = await self._metadata()
                stream = self._tasks.WatchTask(task_pb2.WatchTaskRequest(task_id=task_id), metadata=metadata)
                try:
                    async for message in stream:
                        yield message.task
                        if is_terminal(message.task):
                            return
                except grpc.aio.AioRpcError as error:
                    raise PixelFlowError.from_rpc(error) from None
                finally:
                    stream.cancel()
                # The server ended the stream without a terminal state: it is shutting down.
                raise PixelFlowError(grpc.StatusCode.UNAVAILABLE, "the watch ended early")

    async def wait_for(self, task_id: str) -> task_pb2.Task:
        """Blocks until the task is COMPLETED, FAILED or CANCELLED, and returns it."""
        last: task_pb2.Task | None = None
        async for task in self.watch_task(task_id):
            last = task
        assert last is not None and is_terminal(last)
        return last

    async def cancel_task(self, task_id: str) -> task_pb2.Task:
        return await self._call(self._tasks.CancelTask, task_pb2.CancelTaskRequest(task_id=task_id))

    async def delete_task(self, task_id: str) -> None:
        await self._call(self._tasks.DeleteTask, task_pb2.DeleteTaskRequest(task_id=task_id))

    async def download(self, task_id: str, destination: Path | BinaryIO, *, variant: str = "") -> str:
        """Streams the result (or the named variant's) into a file and answers its content type.
        A path is written whole or not at all (a temporary file beside it, renamed when complete)."""
        if isinstance(destination, Path):
            return await self._download_to_path(task_id, destination, variant)

        file: BinaryIO = destination

        async def attempt() -> str:
            file.seek(0)
            file.truncate()
            return await self._stream_result(task_id, variant, file)

        return await self._retried(attempt, once=not file.seekable())

    async def result_bytes(self, task_id: str, *, variant: str = "") -> bytes:
        chunks: list[bytes] = []

        async def attempt() -> bytes:
            chunks.clear()
            async for chunk in self._result_chunks(task_id, variant):
                chunks.append(chunk.data)
            return b"".join(chunks)

        return await self._retried(attempt)

    # --- the pool and operators -----------------------------------------------------------

    async def list_workers(self) -> Sequence[worker_pb2.Worker]:
        response: worker_pb2.ListWorkersResponse = await self._call(
            self._workers.ListWorkers, worker_pb2.ListWorkersRequest()
        )
        return list(response.workers)

    async def queue_stats(self) -> worker_pb2.QueueStats:
        return await self._call(self._workers.GetQueueStats, worker_pb2.GetQueueStatsRequest())

    async def list_dead_letters(self, page_size: int = 100) -> AsyncIterator[admin_pb2.DeadLetter]:
        """Oldest first (admins only)."""
        token = ""
        while True:
            request = admin_pb2.ListDeadLettersRequest(page_size=page_size, page_token=token)
            page: admin_pb2.ListDeadLettersResponse = await self._call(self._admin.ListDeadLetters, request)
            for letter in page.dead_letters:
                yield letter
            if not page.next_page_token:
                return
            token = page.next_page_token

    async def replay_dead_letter(self, partition: int, offset: int) -> admin_pb2.ReplayDeadLetterResponse:
        request = admin_pb2.ReplayDeadLetterRequest(partition=partition, offset=offset)
        return await self._call(self._admin.ReplayDeadLetter, request)

    async def usage(self) -> quota_pb2.Usage:
        """The caller's limits and what they use of each now."""
        return await self._call(self._quota.GetUsage, quota_pb2.GetUsageRequest())

    async def get_quota(self, user_id: str) -> admin_pb2.UserQuota:
        """A user's overrides and usage (admins only)."""
        return await self._call(self._admin.GetQuota, admin_pb2.GetQuotaRequest(user_id=user_id))

    async def set_quota(self, user_id: str, overrides: quota_pb2.QuotaOverrides) -> admin_pb2.UserQuota:
        """Replaces a user's overrides; a limit left unset is the default again (admins only)."""
        request = admin_pb2.SetQuotaRequest(user_id=user_id, overrides=overrides)
        return await self._call(self._admin.SetQuota, request)

    async def webhook_settings(self) -> webhook_pb2.WebhookSettings:
        """Your default callback URL and which signing secret is in force."""
        return await self._call(self._webhooks.GetWebhookSettings, webhook_pb2.GetWebhookSettingsRequest())

    async def set_webhook_url(self, default_url: str) -> webhook_pb2.WebhookSettings:
        """The callback URL of your tasks that name none ("" clears it); needs a secret first."""
        request = webhook_pb2.UpdateWebhookSettingsRequest(default_url=default_url)
        return await self._call(self._webhooks.UpdateWebhookSettings, request)

    async def rotate_webhook_secret(self) -> webhook_pb2.RotateWebhookSecretResponse:
        """A new signing secret (`whsec_…`), in force at once; this answer is the only time it is shown."""
        return await self._call(self._webhooks.RotateWebhookSecret, webhook_pb2.RotateWebhookSecretRequest())

    # --- plumbing -------------------------------------------------------------------------

    async def _metadata(self) -> Metadata:
        return (("authorization", f"Bearer {await self._tokens.current()}"),)

    async def _call(
        self, method: Callable[..., Awaitable[Response]], request: object, *, authenticated: bool = True
    ) -> Response:
        async def attempt() -> Response:
            metadata = await self._metadata() if authenticated else ()
            try:
                return await method(request, metadata=metadata, timeout=self._timeout)
            except grpc.aio.AioRpcError as error:
                if not (authenticated and error.code() == grpc.StatusCode.UNAUTHENTICATED and self._tokens.can_refresh):
                    raise PixelFlowError.from_rpc(error) from None
            # The token was refused before its time (revoked keys, a clock apart): once more
            # with a fresh one; a second refusal is the answer.
            metadata = (("authorization", f"Bearer {await self._tokens.refresh(stale=metadata[0][1][7:])}"),)
            try:
                return await method(request, metadata=metadata, timeout=self._timeout)
            except grpc.aio.AioRpcError as error:
                raise PixelFlowError.from_rpc(error) from None

        return await self._retried(attempt)

    async def _retried(self, attempt: Callable[[], Awaitable[Response]], *, once: bool = False) -> Response:
        async for trial in retrying(0 if once else self._retry_seconds):
            with trial:
                return await attempt()
        raise AssertionError("unreachable: tenacity reraises the last error")

    async def _result_chunks(self, task_id: str, variant: str) -> AsyncIterator[httpbody_pb2.HttpBody]:
        metadata = await self._metadata()
        stream: grpc.aio.UnaryStreamCall[Any, httpbody_pb2.HttpBody]
        if variant:
            stream = self._tasks.GetVariantResult(
                task_pb2.GetVariantResultRequest(task_id=task_id, name=variant),
                metadata=metadata,
                timeout=self._transfer_timeout,
            )
        else:
            stream = self._tasks.GetTaskResult(
                task_pb2.GetTaskResultRequest(task_id=task_id), metadata=metadata, timeout=self._transfer_timeout
            )
        try:
            async for chunk in stream:
                yield chunk
        except grpc.aio.AioRpcError as error:
            raise PixelFlowError.from_rpc(error) from None
        finally:
            stream.cancel()

    async def _stream_result(self, task_id: str, variant: str, file: BinaryIO) -> str:
        content_type = ""
        async for chunk in self._result_chunks(task_id, variant):
            content_type = content_type or chunk.content_type
            file.write(chunk.data)
        return content_type

    async def _download_to_path(self, task_id: str, destination: Path, variant: str) -> str:
        destination.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=destination.parent, prefix=f".{destination.name}.")
        try:
            with os.fdopen(descriptor, "wb") as file:

                async def attempt() -> str:
                    file.seek(0)
                    file.truncate()
                    return await self._stream_result(task_id, variant, file)

                content_type = await self._retried(attempt)
            os.replace(temporary, destination)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
            raise
        return content_type


def task_request(
    *,
    source_url: str = "",
    upload_id: str = "",
    operations: Sequence[task_pb2.Operation] = (),
    output: task_pb2.OutputOptions | None = None,
    idempotency_key: str = "",
    skip_auto_orient: bool = False,
    variants: Sequence[task_pb2.Variant] = (),
    callback_url: str = "",
) -> task_pb2.CreateTaskRequest:
    """A CreateTaskRequest from one source (a URL or an upload's id) and the pipeline (with
    variants: the shared operations, then each variant's own operations and output)."""
    if bool(source_url) == bool(upload_id):
        raise ValueError("give exactly one source: source_url or upload_id")
    request = task_pb2.CreateTaskRequest(
        operations=list(operations),
        idempotency_key=idempotency_key,
        skip_auto_orient=skip_auto_orient,
        variants=list(variants),
        callback_url=callback_url,
    )
    if output is not None:
        request.output.CopyFrom(output)
    if source_url:
        request.source_url = source_url
    else:
        request.upload_id = upload_id
    return request


def _copy(request: task_pb2.CreateTaskRequest) -> task_pb2.CreateTaskRequest:
    copy = task_pb2.CreateTaskRequest()
    copy.CopyFrom(request)
    return copy


async def _upload_messages(
    source: Source, filename: str, content_type: str
) -> AsyncIterator[task_pb2.CreateUploadRequest]:
    first = True
    for chunk in _chunks(source):
        yield task_pb2.CreateUploadRequest(
            filename=filename if first else "",
            body=httpbody_pb2.HttpBody(content_type=content_type if first else "", data=chunk),
        )
        first = False
    if first:  # an empty source still names itself; the service answers what is wrong with it
        yield task_pb2.CreateUploadRequest(filename=filename, body=httpbody_pb2.HttpBody(content_type=content_type))


def _chunks(source: Source) -> Iterator[bytes]:
    if isinstance(source, bytes):
        for start in range(0, len(source), CHUNK_BYTES):
            yield source[start : start + CHUNK_BYTES]
    elif isinstance(source, Path):
        with source.open("rb") as file:
            yield from iter(lambda: file.read(CHUNK_BYTES), b"")
    else:
        if source.seekable():
            source.seek(0)
        yield from iter(lambda: source.read(CHUNK_BYTES), b"")
