"""The worker's side of a task's lifecycle, asked of its owner: api_svc's TaskLifecycleService.
The same calls as tasks.lifecycle.TaskClaims (claim, retrying, renew, complete, fail,
hand_back), so the processor reads the same either way, and the queue's counts: the worker
reads and writes no task store itself."""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import grpc
from buf.validate import validate_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from pixelflow.internal.v1 import lifecycle_pb2, lifecycle_pb2_grpc

from common.internal_auth import internal_metadata
from tasks.lifecycle import Claim, ClaimOutcome
from tasks.model import from_bson, to_bson

Document = dict[str, Any]

# Longer than a claim's few store commands can take under the store's own timeouts (10 s).
CALL_TIMEOUT_SECONDS = 30.0

_OUTCOMES = {lifecycle_pb2.ClaimOutcome.Value(f"CLAIM_OUTCOME_{outcome.name}"): outcome for outcome in ClaimOutcome}


@dataclass(frozen=True)
class QueueCounts:
    pending: int
    processing: int
    completed_since: int
    failed_since: int


class LifecycleUnavailable(Exception):
    """api_svc did not answer, or cannot now (it is restarting, its store is down, or the
    internal secret does not match): the worker waits it out (worker_svc.retry) instead of
    deciding anything about the task."""


class LifecycleRejected(Exception):
    """api_svc refused the request itself (a bug on one side): not retried in place; the
    processor records the task as failed (INTERNAL) if it can."""


# What waiting can cure; anything else is a rejection.
_TRANSIENT = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.UNAUTHENTICATED,  # a secret being rotated, or set wrong: say so in the log, and wait
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)

# The proto's own bound on a failure's message (Failure.message's max_len rule).
MAX_FAILURE_MESSAGE = (
    lifecycle_pb2.Failure.DESCRIPTOR.fields_by_name["message"]
    .GetOptions()
    .Extensions[validate_pb2.field]
    .string.max_len
)


class LifecycleClient:
    def __init__(
        self, channel: grpc.aio.Channel, secret: str, worker_id: str, lease: timedelta, max_attempts: int
    ) -> None:
        self._stub = lifecycle_pb2_grpc.TaskLifecycleServiceStub(channel)
        self._metadata = internal_metadata(secret)
        self._claimant = lifecycle_pb2.Claimant(
            worker_id=worker_id, lease_seconds=lease.total_seconds(), max_attempts=max_attempts
        )
        self._task_locks: dict[str, asyncio.Lock] = {}
        self._task_lock_users: collections.Counter[str] = collections.Counter()

    async def _call(self, method: Any, request: Any, task_id: str | None = None) -> Any:
        async with self._one_at_a_time(task_id):
            try:
                return await method(request, metadata=self._metadata, timeout=CALL_TIMEOUT_SECONDS)
            except grpc.aio.AioRpcError as exc:
                error = LifecycleUnavailable if exc.code() in _TRANSIENT else LifecycleRejected
                raise error(f"{exc.code().name}: {exc.details()}") from exc

    @contextlib.asynccontextmanager
    async def _one_at_a_time(self, task_id: str | None) -> AsyncIterator[None]:
        """One call at a time per task from this worker. FerretDB applies an update as a
        read-modify-write of the whole document: a lease renewal running beside the finish
        could write back the document it read before the outcome (PROCESSING, no result)."""
        if task_id is None:
            yield
            return
        lock = self._task_locks.setdefault(task_id, asyncio.Lock())
        self._task_lock_users[task_id] += 1
        try:
            async with lock:
                yield
        finally:
            self._task_lock_users[task_id] -= 1
            if not self._task_lock_users[task_id]:
                del self._task_lock_users[task_id], self._task_locks[task_id]

    def _held(self, claim: Claim) -> lifecycle_pb2.HeldAttempt:
        assert claim.task is not None
        return lifecycle_pb2.HeldAttempt(
            task_id=claim.task["_id"],
            claimant=self._claimant,
            attempt=claim.attempt,
            callback_url=claim.task.get("callback_url") or "",
        )

    @staticmethod
    def _claim(reply: lifecycle_pb2.ClaimTaskResponse, held: Document | None = None) -> Claim:
        task = from_bson(reply.task) if reply.task else None
        if task is not None and held is not None:
            task = {**held, **task}  # RetryTask answers only the fields it wrote
        return Claim(_OUTCOMES[reply.outcome], task, own_outcome=reply.own_outcome)

    async def claim(self, task_id: str) -> Claim:
        request = lifecycle_pb2.ClaimTaskRequest(task_id=task_id, claimant=self._claimant)
        return self._claim(await self._call(self._stub.ClaimTask, request, task_id))

    async def retrying(self, claim: Claim) -> Claim:
        assert claim.task is not None
        request = lifecycle_pb2.RetryTaskRequest(held=self._held(claim))
        reply = await self._call(self._stub.RetryTask, request, claim.task["_id"])
        return self._claim(reply, held=claim.task)

    async def renew(self, claim: Claim) -> bool:
        request = lifecycle_pb2.RenewLeaseRequest(held=self._held(claim))
        return bool((await self._call(self._stub.RenewLease, request, request.held.task_id)).renewed)

    async def complete(self, claim: Claim, result: Document) -> Document | None:
        return await self._finish(claim, result=to_bson(result))

    async def fail(
        self, claim: Claim, code: str, message: str, *, retryable: bool, attempts: int | None = None
    ) -> Document | None:
        # A message can quote a hostile origin (an HTTP reason phrase of any length).
        clipped = message if len(message) <= MAX_FAILURE_MESSAGE else message[: MAX_FAILURE_MESSAGE - 1] + "…"
        failure = lifecycle_pb2.Failure(code=code, message=clipped, retryable=retryable, attempts=attempts)
        return await self._finish(claim, failure=failure)

    async def _finish(self, claim: Claim, **outcome: Any) -> Document | None:
        request = lifecycle_pb2.FinishTaskRequest(held=self._held(claim), **outcome)
        reply = await self._call(self._stub.FinishTask, request, request.held.task_id)
        return from_bson(reply.written) if reply.recorded else None

    async def hand_back(self, claim: Claim) -> bool:
        request = lifecycle_pb2.HandBackTaskRequest(held=self._held(claim))
        return bool((await self._call(self._stub.HandBackTask, request, request.held.task_id)).handed_back)

    async def queue_counts(self, finished_since: datetime) -> QueueCounts:
        """How many tasks wait, run, and completed or failed since `finished_since`."""
        stamp = Timestamp()
        stamp.FromDatetime(finished_since)
        reply = await self._call(self._stub.CountTasks, lifecycle_pb2.CountTasksRequest(finished_since=stamp))
        return QueueCounts(reply.pending, reply.processing, reply.completed_since, reply.failed_since)
