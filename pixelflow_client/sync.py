"""The blocking client: the same calls as AsyncClient, for scripts and notebooks. It runs an
AsyncClient on an event loop of its own in a background thread, so the two behave alike
(tokens, retries, streams) and there is one implementation of each call."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, BinaryIO, Self, TypeVar

from pixelflow.v1 import admin_pb2, auth_pb2, quota_pb2, task_pb2, webhook_pb2, worker_pb2

from pixelflow_client.aio import AsyncClient, Source
from pixelflow_client.credentials import CredentialStore

T = TypeVar("T")


class Client:
    """`Client.from_saved()` for the session `pixelflow login` saved; `Client(server,
    access_token=...)` otherwise. A context manager, or call `close()`."""

    def __init__(self, server: str | None = None, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="pixelflow-client", daemon=True)
        self._thread.start()

        async def make() -> AsyncClient:  # grpc.aio objects belong to the loop they are made on
            return AsyncClient(server, **options)

        self._client = self._run(make())

    @classmethod
    def from_saved(cls, server: str | None = None, *, store: CredentialStore | None = None) -> Self:
        return cls(server, store=store or CredentialStore())

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._run(self._client.close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
        self._loop.close()

    @property
    def server(self) -> str:
        return self._client.server

    def register(self, email: str, password: str, display_name: str = "") -> auth_pb2.User:
        return self._run(self._client.register(email, password, display_name))

    def login(self, email: str, password: str) -> auth_pb2.User:
        return self._run(self._client.login(email, password))

    def logout(self) -> None:
        self._run(self._client.logout())

    def whoami(self) -> auth_pb2.User:
        return self._run(self._client.whoami())

    def upload(self, source: Source, *, filename: str = "", content_type: str = "") -> task_pb2.Upload:
        return self._run(self._client.upload(source, filename=filename, content_type=content_type))

    def create_task(self, **fields: Any) -> task_pb2.Task:
        """The keyword arguments of AsyncClient.create_task."""
        return self._run(self._client.create_task(**fields))

    def submit(self, request: task_pb2.CreateTaskRequest) -> task_pb2.Task:
        return self._run(self._client.submit(request))

    def get_task(self, task_id: str) -> task_pb2.Task:
        return self._run(self._client.get_task(task_id))

    def list_tasks(
        self, status: task_pb2.TaskStatus.ValueType = task_pb2.TASK_STATUS_UNSPECIFIED, page_size: int = 100
    ) -> Iterator[task_pb2.Task]:
        return self._iterate(self._client.list_tasks(status, page_size))

    def watch_task(self, task_id: str) -> Iterator[task_pb2.Task]:
        return self._iterate(self._client.watch_task(task_id))

    def wait_for(self, task_id: str) -> task_pb2.Task:
        return self._run(self._client.wait_for(task_id))

    def cancel_task(self, task_id: str) -> task_pb2.Task:
        return self._run(self._client.cancel_task(task_id))

    def delete_task(self, task_id: str) -> None:
        self._run(self._client.delete_task(task_id))

    def download(self, task_id: str, destination: Path | BinaryIO, *, variant: str = "") -> str:
        return self._run(self._client.download(task_id, destination, variant=variant))

    def result_bytes(self, task_id: str, *, variant: str = "") -> bytes:
        return self._run(self._client.result_bytes(task_id, variant=variant))

    def list_workers(self) -> Sequence[worker_pb2.Worker]:
        return self._run(self._client.list_workers())

    def queue_stats(self) -> worker_pb2.QueueStats:
        return self._run(self._client.queue_stats())

    def list_dead_letters(self, page_size: int = 100) -> Iterator[admin_pb2.DeadLetter]:
        return self._iterate(self._client.list_dead_letters(page_size))

    def replay_dead_letter(self, partition: int, offset: int) -> admin_pb2.ReplayDeadLetterResponse:
        return self._run(self._client.replay_dead_letter(partition, offset))

    def usage(self) -> quota_pb2.Usage:
        return self._run(self._client.usage())

    def get_quota(self, user_id: str) -> admin_pb2.UserQuota:
        return self._run(self._client.get_quota(user_id))

    def set_quota(self, user_id: str, overrides: quota_pb2.QuotaOverrides) -> admin_pb2.UserQuota:
        return self._run(self._client.set_quota(user_id, overrides))

    def webhook_settings(self) -> webhook_pb2.WebhookSettings:
        return self._run(self._client.webhook_settings())

    def set_webhook_url(self, default_url: str) -> webhook_pb2.WebhookSettings:
        return self._run(self._client.set_webhook_url(default_url))

    def rotate_webhook_secret(self) -> webhook_pb2.RotateWebhookSecretResponse:
        return self._run(self._client.rotate_webhook_secret())

    def _run(self, call: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(call, self._loop).result()

    def _iterate(self, stream: AsyncIterator[T]) -> Iterator[T]:
        try:
            while True:
                try:
                    yield self._run(anext(stream))  # type: ignore[arg-type]
                except StopAsyncIteration:
                    return
        finally:
            # An abandoned iteration closes its stream on the server too.
            closing = getattr(stream, "aclose", None)
            if closing is not None and not self._loop.is_closed():
                self._run(closing())
