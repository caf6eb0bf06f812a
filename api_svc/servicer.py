"""Translates TaskService RPCs to the domain service and back; nothing else."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
from google.api import httpbody_pb2
from pixelflow.v1 import task_pb2, task_pb2_grpc

from api_svc.service import TaskService
from api_svc.webhooks.servicer import delivery_to_proto
from common.auth_client import TokenVerifier
from common.blobstore import Blob
from tasks.model import task_to_proto, upload_to_proto

Context = grpc.aio.ServicerContext[Any, Any]


class TaskServicer(task_pb2_grpc.TaskServiceServicer):
    def __init__(self, service: TaskService, verifier: TokenVerifier, public_base_url: str) -> None:
        self._service = service
        self._verifier = verifier
        self._base_url = public_base_url

    async def _owner(self, context: Context) -> str:
        return (await self._verifier.caller(context.invocation_metadata())).user_id

    def _task(self, document: dict[str, Any]) -> task_pb2.Task:
        return task_to_proto(document, self._base_url)

    async def CreateUpload(
        self, request_iterator: AsyncIterator[task_pb2.CreateUploadRequest], context: Context
    ) -> task_pb2.Upload:
        owner = await self._owner(context)
        first = await anext(aiter(request_iterator), None)
        filename = first.filename if first is not None else ""

        async def chunks() -> AsyncIterator[bytes]:
            if first is None:
                return
            yield first.body.data
            async for message in request_iterator:
                yield message.body.data

        return upload_to_proto(await self._service.uploads.create(owner, filename, chunks()))

    async def CreateTask(self, request: task_pb2.CreateTaskRequest, context: Context) -> task_pb2.Task:
        return self._task(await self._service.create(await self._owner(context), request))

    async def GetTask(self, request: task_pb2.GetTaskRequest, context: Context) -> task_pb2.Task:
        document = await self._service.get(await self._owner(context), request.task_id)
        task = self._task(document)
        deliveries = await self._service.webhook_deliveries(document)
        task.webhook_deliveries.extend(delivery_to_proto(delivery) for delivery in deliveries)
        return task

    async def ListTasks(self, request: task_pb2.ListTasksRequest, context: Context) -> task_pb2.ListTasksResponse:
        documents, next_token = await self._service.list(
            await self._owner(context), request.page_size, request.page_token, request.status
        )
        return task_pb2.ListTasksResponse(tasks=[self._task(d) for d in documents], next_page_token=next_token)

    async def WatchTask(
        self, request: task_pb2.WatchTaskRequest, context: Context
    ) -> AsyncIterator[task_pb2.WatchTaskResponse]:
        owner = await self._owner(context)
        async for document in self._service.watch(owner, request.task_id):
            yield task_pb2.WatchTaskResponse(task=self._task(document))

    async def CancelTask(self, request: task_pb2.CancelTaskRequest, context: Context) -> task_pb2.Task:
        return self._task(await self._service.cancel(await self._owner(context), request.task_id))

    async def DeleteTask(self, request: task_pb2.DeleteTaskRequest, context: Context) -> task_pb2.DeleteTaskResponse:
        await self._service.delete(await self._owner(context), request.task_id)
        return task_pb2.DeleteTaskResponse()

    async def GetTaskResult(
        self, request: task_pb2.GetTaskResultRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        blob, content_type = await self._service.result(await self._owner(context), request.task_id)
        async for chunk in _streamed(blob, content_type):
            yield chunk

    async def GetVariantResult(
        self, request: task_pb2.GetVariantResultRequest, context: Context
    ) -> AsyncIterator[httpbody_pb2.HttpBody]:
        owner = await self._owner(context)
        blob, content_type = await self._service.result(owner, request.task_id, variant=request.name)
        async for chunk in _streamed(blob, content_type):
            yield chunk


async def _streamed(blob: Blob, content_type: str) -> AsyncIterator[httpbody_pb2.HttpBody]:
    """A stored blob as HttpBody chunks; the content type rides on the first (the gateway sets
    the HTTP header from it), and an empty blob still answers its content type."""
    chunk_type = content_type
    async for chunk in blob.chunks():
        yield httpbody_pb2.HttpBody(content_type=chunk_type, data=chunk)
        chunk_type = ""
    if chunk_type:
        yield httpbody_pb2.HttpBody(content_type=chunk_type)
